/* daemon/preflight: user and group names resolved through this host's
 * NSS (root, nobody, daemon exist on Debian), and the programs, files and
 * directories a configuration names checked for whoever uses them. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "daemon/daemon.h"
#include "daemon/preflight.h"

static struct config *load(const char *yaml)
{
    struct cfg_err err;
    struct config *c = config_load_string("t.yaml", yaml, strlen(yaml), &daemon_registry, &err);
    if (!c) {
        char buf[1024];
        fail_msg("%s", cfg_err_format(&err, buf, sizeof buf));
    }
    return c;
}

/* Load, preflight, and return the report (c kept for inspection). */
static struct config *preflight(const char *yaml, struct preflight_report *rep)
{
    struct config *c = load(yaml);
    assert_int_equal(preflight_run(c, rep), 0);
    assert_true(c->preflighted);
    return c;
}

static void user_resolves_to_its_ids_and_groups(void **state)
{
    if (geteuid() != 0)
        skip();
    struct preflight_report rep;
    struct config *c = preflight("services:\n"
                                 "  a:\n"
                                 "    command: [/bin/true]\n"
                                 "    user: daemon\n",
                                 &rep);
    assert_int_equal(rep.n, 0);
    const struct spawn_cred *cr = &c->services[0].ident.cred;
    assert_int_equal(cr->error, 0);
    assert_true(cr->set_ids);
    assert_int_equal(cr->uid, 1); /* Debian's daemon */
    assert_int_equal(cr->gid, 1);
    /* initgroups: the primary group is among them. */
    bool primary = false;
    for (size_t i = 0; i < cr->n_groups; i++)
        primary |= cr->groups[i] == 1;
    assert_true(primary);
    assert_null(c->services[0].problem);
    preflight_report_free(&rep);
    config_free(c);
}

/* A group alone: recoverd's user in that group, supplementary groups
 * dropped. A numeric user is looked up by uid. */
static void group_alone_drops_supplementary_groups(void **state)
{
    if (geteuid() != 0)
        skip();
    struct preflight_report rep;
    struct config *c = preflight("services:\n"
                                 "  a:\n"
                                 "    command: [/bin/true]\n"
                                 "    group: nogroup\n"
                                 "  b:\n"
                                 "    command: [/bin/true]\n"
                                 "    user: \"65534\"\n",
                                 &rep);
    assert_int_equal(rep.n, 0);
    const struct spawn_cred *a = &c->services[0].ident.cred, *b = &c->services[1].ident.cred;
    assert_true(a->set_ids);
    assert_int_equal(a->uid, 0);
    assert_int_equal(a->gid, 65534);
    assert_int_equal(a->n_groups, 0);
    assert_true(b->set_ids);
    assert_int_equal(b->uid, 65534);
    preflight_report_free(&rep);
    config_free(c);
}

/* Unknown names fail their service with the position of the name; the
 * other services are untouched, and every problem is reported, in file
 * order. */
static void unknown_names_fail_only_their_service(void **state)
{
    struct preflight_report rep;
    struct config *c = preflight("services:\n"
                                 "  a:\n"
                                 "    command: [/bin/true]\n"
                                 "    user: recoverd-no-such-user\n"
                                 "  ok:\n"
                                 "    command: [/bin/true]\n"
                                 "  b:\n"
                                 "    command: [/bin/true]\n"
                                 "    group: recoverd-no-such-group\n"
                                 "    repair: { command: [/bin/true], user: recoverd-nobody-2 }\n",
                                 &rep);
    assert_int_equal(rep.n, 3);
    assert_string_equal(rep.lines[0], "t.yaml:4:11: error: user 'recoverd-no-such-user' does not "
                                      "exist");
    assert_string_equal(rep.lines[1], "t.yaml:9:12: error: group 'recoverd-no-such-group' does "
                                      "not exist");
    assert_string_equal(rep.lines[2], "t.yaml:10:43: error: user 'recoverd-nobody-2' does not "
                                      "exist");
    assert_string_equal(c->services[0].problem, rep.lines[0]);
    assert_null(c->services[1].problem);
    assert_string_equal(c->services[2].problem, rep.lines[1]);
    /* Nothing of theirs may run. */
    assert_int_equal(c->services[0].ident.cred.error, -ENOENT);
    assert_int_equal(c->services[2].strategy_ident[STRATEGY_REPAIR]->cred.error, -ENOENT);
    assert_int_equal(c->services[1].ident.cred.error, 0);
    preflight_report_free(&rep);
    config_free(c);
}

/* The same from a file t.yaml in dir, its relative paths made absolute
 * as recoverd loads them. */
static struct config *preflight_file(const char *dir, const char *yaml,
                                     struct preflight_report *rep)
{
    char path[256];
    struct cfg_err err;
    snprintf(path, sizeof path, "%s/t.yaml", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(yaml, f);
    fclose(f);
    struct config *c = config_load(path, &daemon_registry, &err);
    unlink(path);
    if (!c) {
        char buf[1024];
        fail_msg("%s", cfg_err_format(&err, buf, sizeof buf));
    }
    assert_int_equal(preflight_run(c, rep), 0);
    return c;
}

/* Programs as spawn finds them: by path (a relative one from the service's
 * cwd, made absolute by the loader), or a bare name in PATH; missing, not
 * executable, or not executable by the user. */
static void programs_are_checked_for_their_user(void **state)
{
    char dir[] = "/tmp/recoverd-preflight-XXXXXX";
    assert_non_null(mkdtemp(dir));
    assert_int_equal(chmod(dir, 0755), 0);
    char owner_only[128], yaml[2048];
    snprintf(owner_only, sizeof owner_only, "%s/owner-only", dir);
    FILE *f = fopen(owner_only, "w");
    assert_non_null(f);
    fputs("#!/bin/sh\n", f);
    fclose(f);
    assert_int_equal(chmod(owner_only, 0700), 0);
    snprintf(yaml, sizeof yaml,
             "services:\n"
             "  a:\n"
             "    command: [./owner-only]\n" /* 3 */
             "    cwd: %s\n"
             "    user: nobody\n"
             "    checks:\n"
             "      - command: { argv: [sh, -c, exit 0] }\n"           /* 7: found in PATH */
             "      - command: { argv: [recoverd-no-such-plugin] }\n"  /* 8 */
             "      - command: { argv: [./owner-only], user: root }\n" /* 9: root may */
             "      - command: { argv: [./missing] }\n"                /* 10 */
             "  b:\n"
             "    pidfile: /nonexistent-recoverd/b.pid\n" /* 12 */
             "    start: [/bin/true]\n"
             "    checks:\n"
             "      - postgres: { dsn: \"host=127.0.0.1\", password_file: . }\n", /* 15 */
             dir);
    struct preflight_report rep;
    struct config *c = preflight_file(dir, yaml, &rep);
    /* Every path as the loader made it: absolute. */
    const char *want[] = {
        "%s/t.yaml:3:15: error: command: '%s/owner-only' is not executable by user 'nobody'",
        "%s/t.yaml:8:27: error: check 'command2' argv: 'recoverd-no-such-plugin' not found in "
        "PATH",
        "%s/t.yaml:10:27: error: check 'command4' argv: '%s/missing' does not exist",
        "%s/t.yaml:12:14: error: pidfile directory: '/nonexistent-recoverd' does not exist",
        "%s/t.yaml:15:59: error: check 'postgres' password_file: '%s' is not a regular file",
    };
    if (geteuid() != 0)
        want[0] = NULL; /* without root, user nobody is its own problem */
    size_t k = 0;
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        if (!want[i])
            continue;
        char line[512];
        snprintf(line, sizeof line, want[i], dir, dir);
        assert_true(k < rep.n);
        if (strncmp(rep.lines[k], line, strlen(line)) != 0)
            fail_msg("got '%s', want '%s'", rep.lines[k], line);
        k++;
    }
    assert_int_equal(rep.n, k + (geteuid() != 0));
    preflight_report_free(&rep);
    config_free(c);
    unlink(owner_only);
    rmdir(dir);
}

/* What passes: a program in PATH by name, an absolute one, the user's
 * cwd, a readable file, an existing pidfile directory. */
static void usable_paths_pass(void **state)
{
    struct preflight_report rep;
    struct config *c =
        preflight("services:\n"
                  "  a:\n"
                  "    command: [sleep, \"1\"]\n"
                  "    cwd: /tmp\n"
                  "    repair: { command: [/bin/true] }\n"
                  "  b:\n"
                  "    pidfile: /tmp/b.pid\n"
                  "    restart: [/bin/true]\n"
                  "    checks:\n"
                  "      - postgres: { dsn: \"host=127.0.0.1\", password_file: /etc/hostname }\n",
                  &rep);
    for (size_t i = 0; i < rep.n; i++)
        print_message("%s\n", rep.lines[i]);
    assert_int_equal(rep.n, 0);
    preflight_report_free(&rep);
    config_free(c);
}

/* A limit the kernel would refuse (an fd limit above fs.nr_open). */
static void impossible_limits_are_reported(void **state)
{
    struct preflight_report rep;
    struct config *c = preflight("services:\n"
                                 "  a:\n"
                                 "    command: [/bin/true]\n"
                                 "    limits: { core: 0, nofile: infinity }\n",
                                 &rep);
    unsigned long long nr_open = 0;
    FILE *f = fopen("/proc/sys/fs/nr_open", "r");
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%llu", &nr_open), 1);
    fclose(f);
    char want[256];
    snprintf(want, sizeof want,
             "t.yaml:4:32: error: limits: nofile above the kernel's fs.nr_open (%llu)", nr_open);
    assert_int_equal(rep.n, 1);
    assert_string_equal(rep.lines[0], want);
    preflight_report_free(&rep);
    config_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(user_resolves_to_its_ids_and_groups),
        cmocka_unit_test(group_alone_drops_supplementary_groups),
        cmocka_unit_test(unknown_names_fail_only_their_service),
        cmocka_unit_test(programs_are_checked_for_their_user),
        cmocka_unit_test(usable_paths_pass),
        cmocka_unit_test(impossible_limits_are_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
