/* The postgres detector (plug-in recoverd-postgres.so) against a real
 * PostgreSQL 15 from the Debian package, started once for the file in a
 * temporary directory; and the loading of check kinds from plug-ins. */
#include <errno.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/cfgmap.h"
#include "config/config.h"
#include "dbfix.h"
#include "detect/detector.h"
#include "detect/plugin.h"
#include "lib/secret.h"
#include "loopwait.h"

#define PG_BIN "/usr/lib/postgresql/15/bin"
#define PG_PASSWORD "Sekr1t-pg" /* the role's real password */
#define PG_WRONG "Wr0ngPw-zz"   /* a password the server rejects */

/* The real check kinds; every strategy counts as implemented, without
 * params (this test reads checks, not chains), and nothing of recover/ is
 * linked. */
static int test_strategy_kind(int st, struct cfg_strategy *out)
{
    *out = (struct cfg_strategy){0};
    return st >= 0 ? 0 : -ENOENT;
}
static const struct cfg_registry test_registry = {detector_cfg_kind, test_strategy_kind};

static struct {
    bool up;           /* the server runs: tests that need it run */
    char dir[64];      /* temporary directory, owned by postgres */
    char data[128];    /* its data directory */
    char pwfile[128];  /* the real password, for password_file */
    char badfile[128]; /* a wrong one */
    int port;          /* 127.0.0.1 port */
    pid_t pid;         /* the postmaster; 0 while stopped */
    int starts;        /* one log file per start */
} pg;

/* ---- the server ---- */

static int pg_start(void)
{
    char port[16], log[160];
    snprintf(port, sizeof port, "%d", pg.port);
    snprintf(log, sizeof log, "%s/postgres-%d.log", pg.dir, ++pg.starts);
    const char *argv[] = {PG_BIN "/postgres",
                          "-D",
                          pg.data,
                          "-k",
                          pg.dir,
                          "-p",
                          port,
                          "-c",
                          "listen_addresses=127.0.0.1",
                          "-c",
                          "fsync=off",
                          "-c",
                          "max_connections=20",
                          NULL};
    pg.pid = dbfix_spawn(argv, log, true);
    if (dbfix_wait_log(log, "ready to accept connections", 20000) < 0) {
        fprintf(stderr, "# postgres did not start; see %s\n", log);
        return -1;
    }
    return 0;
}

static void pg_stop(void)
{
    dbfix_stop(pg.pid, SIGINT, 10000); /* fast shutdown: backends hang up on clients */
    pg.pid = 0;
}

static int group_setup(void **state)
{
    char log[160];
    if (!dbfix_have(PG_BIN "/initdb") || !dbfix_have(PG_BIN "/postgres") ||
        (getuid() == 0 && !getpwnam("postgres"))) {
        fprintf(stderr, "# PostgreSQL 15 is not installed: tests skipped\n");
        return 0;
    }
    if (dbfix_tmpdir(pg.dir, sizeof pg.dir, true) < 0)
        return -1;
    snprintf(pg.data, sizeof pg.data, "%s/data", pg.dir);
    snprintf(pg.pwfile, sizeof pg.pwfile, "%s/pw", pg.dir);
    snprintf(pg.badfile, sizeof pg.badfile, "%s/badpw", pg.dir);
    snprintf(log, sizeof log, "%s/initdb.log", pg.dir);
    dbfix_write(pg.pwfile, PG_PASSWORD "\n", true);
    dbfix_write(pg.badfile, PG_WRONG "\n", false);
    const char *initdb[] = {PG_BIN "/initdb", "-D",      pg.data, "-U",   "recoverd",  "--auth=md5",
                            "--pwfile",       pg.pwfile, "-E",    "UTF8", "--no-sync", NULL};
    if (dbfix_run(initdb, log, true, 60000) != 0) {
        fprintf(stderr, "# initdb failed; see %s\n", log);
        return -1;
    }
    pg.port = dbfix_free_port();
    if (pg_start() < 0)
        return -1;
    pg.up = true;
    return 0;
}

static int group_teardown(void **state)
{
    pg_stop();
    dbfix_rmdir(pg.dir);
    return 0;
}

/* ---- per test: a loop with the detectors started ---- */

static int setup(void **state)
{
    *state = dbfix_loop_new();
    return 0;
}

static int teardown(void **state)
{
    dbfix_loop_free(*state, pg.pid);
    return 0;
}

#define NEED_SERVER()                                                                              \
    do {                                                                                           \
        if (!pg.up)                                                                                \
            skip();                                                                                \
    } while (0)

/* A check with "{dsn: '<base> extra', more}" params. */
static struct check *pg_check(const char *extra, const char *more, uint64_t timeout_ms)
{
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "{dsn: 'host=127.0.0.1 port=%d dbname=postgres user=recoverd %s'%s%s}", pg.port, extra,
             more && *more ? ", " : "", more ? more : "");
    return dbfix_check_new("postgres", yaml, timeout_ms);
}

static void probe_ok(uv_loop_t *loop, struct check *c)
{
    struct observation o;
    dbfix_probe(loop, c, 0, &o, NULL);
    if (!o.ok)
        fail_msg("probe failed: %s", o.reason);
}

/* The postmaster's children serving user recoverd (their title names it). */
static int pg_backends(pid_t *one)
{
    char buf[256];
    int n = 0;
    FILE *ps = popen("ps -e -o pid=,ppid=,args=", "r");
    assert_non_null(ps);
    while (fgets(buf, sizeof buf, ps)) {
        int pid, ppid;
        char args[200];
        if (sscanf(buf, "%d %d %199[^\n]", &pid, &ppid, args) == 3 && ppid == pg.pid &&
            strstr(args, "postgres: recoverd ")) {
            n++;
            *one = pid;
        }
    }
    pclose(ps);
    return n;
}

/* Turn the loop until no backend of ours is left, from this test or an
 * earlier one: a released connection's backend exits a moment after the
 * hang-up. */
static void pg_wait_no_backends(uv_loop_t *loop)
{
    pid_t one;
    loopwait_until(loop, pg_backends(&one) == 0);
}

/* ---- plug-in loading ---- */

static bool maps_hold(const char *lib)
{
    char line[512];
    bool found = false;
    FILE *f = fopen("/proc/self/maps", "r");
    assert_non_null(f);
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, lib) != NULL;
    fclose(f);
    return found;
}

static bool names_hold(const char *kind)
{
    for (const char *const *k = detector_names(); *k; k++)
        if (!strcmp(*k, kind))
            return true;
    return false;
}

/* Runs first: nothing has asked for postgres yet. */
static void plugin_loads_libpq_only_when_a_check_names_postgres(void **state)
{
    assert_false(maps_hold("libpq.so"));
    assert_false(names_hold("postgres"));
    const struct detector_ops *ops = detector_find("postgres");
    assert_non_null(ops);
    assert_string_equal(ops->name, "postgres");
    assert_null(detector_find_error());
    assert_true(maps_hold("libpq.so"));
    assert_true(maps_hold("recoverd-postgres.so"));
    assert_true(names_hold("postgres"));
    assert_ptr_equal(detector_find("postgres"), ops); /* cached: loaded once */
}

static void plugin_missing_is_named_in_the_error(void **state)
{
    assert_null(detector_find("nosuchkind"));
    assert_non_null(detector_find_error());
    assert_string_equal(detector_find_error(), "plugin recoverd-nosuchkind.so not found");
    /* A name that cannot be a plug-in is simply unknown: no path is built. */
    assert_null(detector_find("../../tmp/x"));
    assert_null(detector_find_error());
    assert_null(detector_find("Postgres"));
    assert_null(detector_find_error());
    assert_non_null(detector_find("tcp"));
    assert_null(detector_find_error());
}

static void plugin_without_entry_point_is_refused(void **state)
{
    /* recoverd-https.so is a plug-in of http.c, with no recoverd_detector_https. */
    assert_null(detector_find("https"));
    assert_non_null(detector_find_error());
    assert_non_null(strstr(detector_find_error(), "no recoverd_detector_https"));
}

static void plugin_dir_override_finds_nothing_elsewhere(void **state)
{
    plugin_dir_set("/nonexistent");
    assert_null(detector_find("redis2"));
    assert_string_equal(detector_find_error(), "plugin recoverd-redis2.so not found");
    plugin_dir_set(NULL);
}

static void config_error_names_the_missing_plugin(void **state)
{
    static const char yaml[] = "services:\n"
                               "  db:\n"
                               "    checks:\n"
                               "      - nosuchkind: {x: 1}\n";
    struct cfg_err err;
    struct config *c = config_load_string("t.yaml", yaml, sizeof yaml - 1, &test_registry, &err);
    assert_null(c);
    assert_int_equal(err.line, 4);
    if (!strstr(err.msg, "unknown check kind 'nosuchkind' (plugin recoverd-nosuchkind.so not "
                         "found)"))
        fail_msg("message: %s", err.msg);
}

/* ---- secrets ---- */

static void scrub(const char *in, const char *secret, const char *want)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", in);
    secret_scrub(buf, sizeof buf, secret);
    assert_string_equal(buf, want);
}

static void secret_scrub_hides_passwords_in_every_form(void **state)
{
    scrub("host=h password=hunter2 dbname=x", NULL, "host=h password=*** dbname=x");
    scrub("password = 'a b\\' c' user=u", NULL, "password = *** user=u");
    scrub("PASSWORD=x", NULL, "PASSWORD=***");
    scrub("see \"password=hunter2\"", NULL, "see \"password=***\"");
    scrub("postgresql://u:hunter2@h:5/db", NULL, "postgresql://u:***@h:5/db");
    scrub("redis://:hunter2@h", NULL, "redis://:***@h");
    scrub("bad hunter2 here, hunter2!", "hunter2", "bad *** here, ***!");
    scrub("a1", "1", "a***"); /* shorter than the mask: still fits */
    /* Not passwords: left alone. */
    scrub("password authentication failed for user \"u\"", "",
          "password authentication failed for user \"u\"");
    scrub("mypassword=x", NULL, "mypassword=x");
    scrub("http://host/path", NULL, "http://host/path");
    scrub("no secret", NULL, "no secret");
}

static void secret_scrub_cuts_after_hiding(void **state)
{
    char buf[12] = "x=hunter2yz"; /* the secret reaches the end of the buffer */
    secret_scrub(buf, sizeof buf, "hunter2yz");
    assert_string_equal(buf, "x=***");
    char small[8] = "abcdefg";
    secret_scrub(small, sizeof small, "zz");
    assert_string_equal(small, "abcdefg");
}

/* ---- validate ---- */

static void validate_hides_dsn_pieces_in_parse_errors(void **state)
{
    char why[256];
    assert_int_equal(dbfix_validate("postgres", "{dsn: 'host=h password Sup3rS3cret'}", why,
                                    sizeof why),
                     -EINVAL);
    assert_null(strstr(why, "Sup3rS3cret"));
    assert_non_null(strstr(why, "dsn: missing \"=\""));
    /* The key of a bad option is named: it is not a secret. */
    assert_int_equal(dbfix_validate("postgres", "{dsn: 'hots=h password=Sup3rS3cret'}", why,
                                    sizeof why),
                     -EINVAL);
    assert_non_null(strstr(why, "\"hots\""));
    assert_null(strstr(why, "Sup3rS3cret"));
    /* URI errors quote the whole URI, or the bad piece: password included. */
    assert_int_equal(dbfix_validate("postgres", "{dsn: 'postgresql://u:Sup3rS3cret@[::1/db'}", why,
                                    sizeof why),
                     -EINVAL);
    assert_null(strstr(why, "Sup3rS3cret"));
    assert_non_null(strstr(why, "IPv6 host address"));
    assert_int_equal(dbfix_validate("postgres", "{dsn: 'postgresql://u:Sup%zzS3cret@h/db'}", why,
                                    sizeof why),
                     -EINVAL);
    assert_null(strstr(why, "S3cret"));
    assert_non_null(strstr(why, "invalid percent-encoded token"));
}

static void validate_wants_one_host_and_a_query(void **state)
{
    char why[256];
    assert_int_equal(dbfix_validate("postgres", "{dsn: 'host=a,b'}", why, sizeof why), -EINVAL);
    assert_non_null(strstr(why, "one host"));
    assert_int_equal(dbfix_validate("postgres", "{dsn: 'host=a', query: ' ; '}", why, sizeof why),
                     -EINVAL);
    assert_non_null(strstr(why, "query"));
    assert_int_equal(dbfix_validate("postgres", "{dsn: 'postgresql://u:p@db.example:5433/x'}", why,
                                    sizeof why),
                     0);
    assert_int_equal(dbfix_validate("postgres", "{}", why, sizeof why), -EINVAL);
}

/* ---- probes against the server ---- */

static void probe_passes_when_server_up(void **state)
{
    NEED_SERVER();
    struct check *c = pg_check("password=" PG_PASSWORD, NULL, 2000);
    struct observation o;
    dbfix_probe(*state, c, 0, &o, NULL);
    assert_true(o.ok);
    assert_string_equal(o.reason, "query ok (1 rows)");
    dbfix_check_free(c);
}

static void probe_keeps_one_connection_across_probes(void **state)
{
    NEED_SERVER();
    struct check *c = pg_check("password=" PG_PASSWORD, NULL, 2000);
    pid_t first = 0, now = 0;
    pg_wait_no_backends(*state);
    probe_ok(*state, c);
    assert_int_equal(pg_backends(&first), 1);
    for (int i = 0; i < 4; i++) {
        probe_ok(*state, c);
        assert_int_equal(pg_backends(&now), 1);
        assert_int_equal(now, first);
    }
    dbfix_check_free(c);
    pg_wait_no_backends(*state); /* release hung up */
}

static void password_file_supplies_the_password(void **state)
{
    NEED_SERVER();
    char more[200];
    snprintf(more, sizeof more, "password_file: '%s'", pg.pwfile);
    struct check *c = pg_check("password=" PG_WRONG, more, 2000); /* the file wins */
    probe_ok(*state, c);
    dbfix_check_free(c);
}

static struct observation assert_config_failure(uv_loop_t *loop, struct check *c,
                                                const char *secret)
{
    struct observation o;
    dbfix_probe(loop, c, 0, &o, NULL);
    assert_false(o.ok);
    assert_int_equal(o.type, FAULT_CONFIGURATION);
    assert_int_equal(o.severity, SEVERITY_HIGH);
    if (secret && strstr(o.reason, secret))
        fail_msg("the password is in the reason: %s", o.reason);
    return o;
}

static void wrong_password_is_configuration_and_never_shown(void **state)
{
    NEED_SERVER();
    char more[200];
    struct check *c = pg_check("password=" PG_WRONG, NULL, 2000);
    struct observation o = assert_config_failure(*state, c, PG_WRONG);
    assert_non_null(strstr(o.reason, "password authentication failed"));
    dbfix_check_free(c);
    snprintf(more, sizeof more, "password_file: '%s'", pg.badfile);
    c = pg_check("", more, 2000);
    assert_config_failure(*state, c, PG_WRONG);
    dbfix_check_free(c);
}

static void unknown_database_is_configuration(void **state)
{
    NEED_SERVER();
    char yaml[256];
    snprintf(yaml, sizeof yaml, "{dsn: 'postgresql://recoverd:%s@127.0.0.1:%d/nosuchdb'}",
             PG_PASSWORD, pg.port);
    struct check *c = dbfix_check_new("postgres", yaml, 2000);
    struct observation o = assert_config_failure(*state, c, PG_PASSWORD);
    assert_non_null(strstr(o.reason, "\"nosuchdb\" does not exist"));
    dbfix_check_free(c);
}

static void query_error_is_software(void **state)
{
    NEED_SERVER();
    struct check *c = pg_check("password=" PG_PASSWORD, "query: 'SELECT * FROM nope'", 2000);
    struct observation o;
    pg_wait_no_backends(*state);
    dbfix_probe(*state, c, 0, &o, NULL);
    assert_false(o.ok);
    assert_int_equal(o.type, FAULT_SOFTWARE);
    assert_int_equal(o.severity, SEVERITY_HIGH);
    assert_string_equal(o.reason,
                        "query failed: relation \"nope\" does not exist (SQLSTATE 42P01)");
    /* The connection survives a failed query: the next probe reuses it. */
    pid_t first = 0, now = 0;
    assert_int_equal(pg_backends(&first), 1);
    dbfix_probe(*state, c, 0, &o, NULL);
    assert_int_equal(pg_backends(&now), 1);
    assert_int_equal(now, first);
    dbfix_check_free(c);
}

static void host_name_is_resolved_off_the_loop(void **state)
{
    NEED_SERVER();
    char yaml[256];
    /* localhost may resolve to ::1 first, where nobody listens: every
     * address is handed to libpq, which tries them in turn. */
    snprintf(yaml, sizeof yaml,
             "{dsn: 'host=localhost port=%d dbname=postgres user=recoverd password=%s'}", pg.port,
             PG_PASSWORD);
    struct check *c = dbfix_check_new("postgres", yaml, 2000);
    probe_ok(*state, c);
    dbfix_check_free(c);
    snprintf(yaml, sizeof yaml, "{dsn: 'host=nosuchhost.invalid port=%d user=recoverd'}", pg.port);
    c = dbfix_check_new("postgres", yaml, 3000);
    struct observation o;
    dbfix_probe(*state, c, 0, &o, NULL);
    assert_false(o.ok);
    assert_int_equal(o.type, FAULT_NETWORK);
    assert_non_null(strstr(o.reason, "cannot resolve the host"));
    dbfix_check_free(c);
}

static void stopped_server_is_network_then_reconnects_after_restart(void **state)
{
    NEED_SERVER();
    struct check *c = pg_check("password=" PG_PASSWORD, NULL, 2000);
    struct observation o;
    probe_ok(*state, c);
    pg_stop();
    loopwait_idle(*state, 100); /* the kept connection may see the hang-up (either way: refused) */
    dbfix_probe(*state, c, 0, &o, NULL);
    assert_false(o.ok);
    assert_int_equal(o.type, FAULT_NETWORK);
    assert_int_equal(o.severity, SEVERITY_HIGH);
    assert_string_equal(o.reason, "Connection refused");
    assert_int_equal(pg_start(), 0);
    probe_ok(*state, c);
    dbfix_check_free(c);
}

/* The kept connection died while nobody looked (no loop turn between the
 * restart and the probe): the probe connects anew instead of failing. */
static void restart_between_probes_is_not_a_failure(void **state)
{
    NEED_SERVER();
    struct check *c = pg_check("password=" PG_PASSWORD, NULL, 3000);
    probe_ok(*state, c);
    pg_stop();
    assert_int_equal(pg_start(), 0);
    probe_ok(*state, c);
    dbfix_check_free(c);
}

static void frozen_server_times_out_within_the_timeout(void **state)
{
    NEED_SERVER();
    struct check *c = pg_check("password=" PG_PASSWORD, NULL, 300);
    struct check *fresh = pg_check("password=" PG_PASSWORD, NULL, 300);
    struct observation o;
    uint64_t ms;
    /* Only the frozen probes get the short timeout: a healthy answer may
     * take longer than 300 ms on a busy host. */
    dbfix_check_timeout(c, 10000);
    probe_ok(*state, c);
    dbfix_check_timeout(c, 300);
    dbfix_freeze(pg.pid, true);
    /* Not before the timeout, on the loop's clock the probe's timer runs
     * on; and within it: reported before a mark due at twice the timeout,
     * armed at the same loop time (an order a late loop keeps). */
    /* On the kept connection: the query never answers. */
    assert_true(dbfix_probe(*state, c, 2 * 300, &o, &ms));
    assert_false(o.ok);
    assert_int_equal(o.type, FAULT_NETWORK);
    assert_string_equal(o.reason, "timeout after 300 ms waiting for the query");
    assert_true(ms >= 300);
    /* On a new connection: the startup never answers. */
    assert_true(dbfix_probe(*state, fresh, 2 * 300, &o, &ms));
    assert_false(o.ok);
    assert_string_equal(o.reason, "timeout after 300 ms connecting");
    assert_true(ms >= 300);
    dbfix_freeze(pg.pid, false);
    dbfix_check_timeout(c, 10000);
    dbfix_check_timeout(fresh, 10000);
    probe_ok(*state, c);
    probe_ok(*state, fresh);
    dbfix_check_free(c);
    dbfix_check_free(fresh);
}

static void cancelled_probe_never_reports(void **state)
{
    NEED_SERVER();
    struct check *c = pg_check("password=" PG_PASSWORD, NULL, 2000);
    int before = dbfix_reports();
    assert_int_equal(c->ops->start(c), 0);
    assert_int_equal(c->ops->start(c), -EBUSY);
    c->ops->cancel(c);
    loopwait_idle(*state, 300); /* time for a report that must not come */
    assert_int_equal(dbfix_reports(), before);
    probe_ok(*state, c); /* and the check works after */
    dbfix_check_free(c);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(plugin_loads_libpq_only_when_a_check_names_postgres),
        T(plugin_missing_is_named_in_the_error),
        T(plugin_without_entry_point_is_refused),
        T(plugin_dir_override_finds_nothing_elsewhere),
        T(config_error_names_the_missing_plugin),
        cmocka_unit_test(secret_scrub_hides_passwords_in_every_form),
        cmocka_unit_test(secret_scrub_cuts_after_hiding),
        T(validate_hides_dsn_pieces_in_parse_errors),
        T(validate_wants_one_host_and_a_query),
        T(probe_passes_when_server_up),
        T(probe_keeps_one_connection_across_probes),
        T(password_file_supplies_the_password),
        T(wrong_password_is_configuration_and_never_shown),
        T(unknown_database_is_configuration),
        T(query_error_is_software),
        T(host_name_is_resolved_off_the_loop),
        T(stopped_server_is_network_then_reconnects_after_restart),
        T(restart_between_probes_is_not_a_failure),
        T(frozen_server_times_out_within_the_timeout),
        T(cancelled_probe_never_reports),
    };
#undef T
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
