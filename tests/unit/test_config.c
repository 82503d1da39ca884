/* Unit tests of the configuration loader (config/config.c), with fake check kinds. */
#include <errno.h>
#include <glob.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>

#include <cmocka.h>

#include "config/config.h"
#include "detect/detector.h"
#include "detect/http.h"
#include "detect/tcp.h"
#include "lib/model-t.h"
#include "lib/statedir.h"
#include "mutate.h"
#include "recover/restart.h"
#include "recover/strategy.h"

#ifndef RECOVERD_SOURCE_DIR
#error "tests/unit/config.cmake defines RECOVERD_SOURCE_DIR"
#endif

/* ---- fake check kinds: the real ones live in detect/, linked by the daemon ---- */

struct fake_params {
    char *url;                       /* required */
    struct sockaddr_storage address; /* optional */
    unsigned n;                      /* default 9 */
    char *mode;                      /* heap default "auto" from params_init */
    char **args;                     /* optional argv */
    char *file;                      /* optional path */
    char **prog;                     /* optional program argv */
};

static const struct cfg_field fake_fields[] = {
    {"url", CFG_STRING, offsetof(struct fake_params, url), 1, NULL},
    {"address", CFG_ADDRESS, offsetof(struct fake_params, address), 0, NULL},
    {"n", CFG_UINT, offsetof(struct fake_params, n), 0, NULL},
    {"mode", CFG_STRING, offsetof(struct fake_params, mode), 0, NULL},
    {"args", CFG_ARGV, offsetof(struct fake_params, args), 0, NULL},
    {"file", CFG_PATH, offsetof(struct fake_params, file), 0, NULL},
    {"prog", CFG_COMMAND, offsetof(struct fake_params, prog), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

static void fake_params_init(void *params)
{
    struct fake_params *p = params;

    p->n = 9;
    p->mode = strdup("auto");
}

static int fake_validate(const void *params, char *why, size_t len)
{
    const struct fake_params *p = params;

    if (strcmp(p->url, "reject"))
        return 0;
    snprintf(why, len, "url must not be 'reject'");
    return -EINVAL;
}

static const struct detector_ops fake_ops = {
    .name = "fake",
    .fields = fake_fields,
    .params_size = sizeof(struct fake_params),
    .params_init = fake_params_init,
    .validate = fake_validate,
};

/* A kind that runs a program and reads a file, as command and postgres do. */
struct prog_params {
    char **argv;  /* required */
    char *secret; /* optional */
};

static const struct cfg_field prog_fields[] = {
    {"argv", CFG_COMMAND, offsetof(struct prog_params, argv), 1, NULL},
    {"secret", CFG_PATH, offsetof(struct prog_params, secret), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

static const struct detector_ops prog_ops = {
    .name = "prog",
    .fields = prog_fields,
    .params_size = sizeof(struct prog_params),
};

/* Mirrors of detect/http.c and detect/tcp.c tables, for the sample files. */
static const struct cfg_field http_fields[] = {
    {"url", CFG_STRING, offsetof(struct http_params, url), 1, NULL},
    {"status", CFG_UINT, offsetof(struct http_params, expect_status), 0, NULL},
    {"body", CFG_STRING, offsetof(struct http_params, expect_body), 0, NULL},
    {"tls_verify", CFG_BOOL, offsetof(struct http_params, tls_verify), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

static void http_init(void *params)
{
    ((struct http_params *)params)->tls_verify = true;
}

static const struct detector_ops http_ops = {
    .name = "http",
    .fields = http_fields,
    .params_size = sizeof(struct http_params),
    .params_init = http_init,
};

static const struct cfg_field tcp_fields[] = {
    {"address", CFG_ADDRESS, offsetof(struct tcp_params, address), 1, NULL},
    {NULL, 0, 0, 0, NULL},
};

static const struct detector_ops tcp_ops = {
    .name = "tcp",
    .fields = tcp_fields,
    .params_size = sizeof(struct tcp_params),
};

static int fake_check_kind(const char *name, struct cfg_kind *out, const char **why)
{
    static const struct detector_ops *const all[] = {&fake_ops, &http_ops, &tcp_ops, &prog_ops};

    *why = NULL;
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (!strcmp(all[i]->name, name)) {
            *out = (struct cfg_kind){all[i],
                                     all[i]->name,
                                     all[i]->fields,
                                     all[i]->params_size,
                                     all[i]->params_init,
                                     all[i]->validate};
            return 0;
        }
    return -ENOENT;
}

/* The strategies are the real ones (recover/strategy.c): restart and
 * repair, with their own keys; the others not yet. */
static const struct cfg_registry fake_registry = {fake_check_kind, strategy_cfg_kind};

/* ---- helpers ---- */

static const struct restart_cfg *restart_of(const struct service_cfg *s)
{
    const struct restart_cfg *rc = config_strategy(s, STRATEGY_RESTART);
    assert_non_null(rc);
    return rc;
}

static struct config *load(const char *yaml, struct cfg_err *err)
{
    return config_load_string("t.yaml", yaml, strlen(yaml), &fake_registry, err);
}

/* Load yaml expecting an error at line:col whose message contains want. */
static void expect_error(const char *yaml, int line, int col, const char *want)
{
    struct cfg_err err;
    struct config *c = load(yaml, &err);

    if (c)
        config_free(c);
    assert_null(c);
    assert_string_equal(err.file, "t.yaml");
    if (!strstr(err.msg, want) || err.line != line || err.col != col)
        fail_msg("got %d:%d '%s', want %d:%d '%s' for:\n%s", err.line, err.col, err.msg, line, col,
                 want, yaml);
}

#define SVC "services:\n  web:\n    command: [./x]\n" /* lines 1-3 */

static uint32_t addr4(const struct sockaddr_storage *ss, uint16_t *port)
{
    const struct sockaddr_in *in = (const struct sockaddr_in *)ss;

    assert_int_equal(in->sin_family, AF_INET);
    *port = ntohs(in->sin_port);
    return ntohl(in->sin_addr.s_addr);
}

/* ---- defaults ---- */

static void config_defaults_apply_when_keys_are_absent(void **state)
{
    struct cfg_err err;
    struct config *c = load(SVC, &err);
    const struct service_cfg *s;
    uint16_t port;

    assert_non_null(c);
    assert_string_equal(c->path, "t.yaml");
    char *state_dir = statedir_default();
    assert_string_equal(c->state_dir, state_dir);
    free(state_dir);
    assert_int_equal(addr4(&c->api.listen, &port), INADDR_LOOPBACK);
    assert_int_equal(port, 7411);
    assert_int_equal(c->quiet_ms, 10000);
    assert_int_equal(c->n_services, 1);
    s = &c->services[0];
    assert_string_equal(s->name, "web");
    assert_int_equal(s->line, 2);
    assert_string_equal(s->command[0], "./x");
    assert_null(s->command[1]);
    assert_null(s->cwd);
    assert_null(s->env);
    assert_int_equal(s->n_checks, 0);
    assert_int_equal(restart_of(s)->max, 5);
    assert_int_equal(restart_of(s)->window_ms, 60000);
    assert_int_equal(restart_of(s)->stable_ms, 1000);
    assert_int_equal(restart_of(s)->backoff_initial_ms, 100);
    assert_int_equal(restart_of(s)->backoff_max_ms, 10000);
    assert_int_equal(s->stop.signal, SIGTERM);
    assert_int_equal(s->stop.grace_ms, 5000);
    assert_int_equal(s->log_max_bytes, 10 * 1024 * 1024);
    config_free(c);
}

static void check_defaults_apply_when_keys_are_absent(void **state)
{
    struct cfg_err err;
    struct config *c = load(SVC "    checks:\n      - fake: { url: u }\n", &err);
    const struct check_cfg *k;
    const struct fake_params *p;

    assert_non_null(c);
    assert_int_equal(c->services[0].n_checks, 1);
    k = &c->services[0].checks[0];
    assert_string_equal(k->name, "fake");
    assert_ptr_equal(k->ops, &fake_ops);
    assert_int_equal(k->interval_ms, 1000);
    assert_int_equal(k->timeout_ms, 1000);
    assert_int_equal(k->fall, 3);
    assert_int_equal(k->rise, 2);
    assert_int_equal(k->severity, -1);
    assert_int_equal(k->line, 5);
    p = k->params;
    assert_string_equal(p->url, "u");
    assert_int_equal(p->n, 9);
    assert_string_equal(p->mode, "auto");
    assert_null(p->args);
    config_free(c);
}

static void restart_keys_override_only_what_they_name(void **state)
{
    struct cfg_err err;
    struct config *c = load(SVC "    restart: { backoff: { max: 1m } }\n    stop: { grace: 0 }\n",
                            &err);

    assert_non_null(c);
    assert_int_equal(restart_of(&c->services[0])->max, 5);
    assert_int_equal(restart_of(&c->services[0])->backoff_initial_ms, 100);
    assert_int_equal(restart_of(&c->services[0])->backoff_max_ms, 60000);
    assert_int_equal(c->services[0].stop.signal, SIGTERM);
    assert_int_equal(c->services[0].stop.grace_ms, 0);
    config_free(c);
}

/* ---- the full example ---- */

static void config_load_maps_every_field_of_the_valid_example(void **state)
{
    struct cfg_err err;
    struct config *c = config_load(RECOVERD_SOURCE_DIR "/tests/configs/valid.yaml", &fake_registry,
                                   &err);
    const struct service_cfg *s, *db;
    const struct http_params *hp;
    const struct tcp_params *tp;
    uint16_t port;

    if (!c) {
        char buf[1024];
        fail_msg("%s", cfg_err_format(&err, buf, sizeof(buf)));
    }
    assert_string_equal(c->path, RECOVERD_SOURCE_DIR "/tests/configs/valid.yaml");
    assert_string_equal(c->state_dir, "/tmp/recoverd-test");
    assert_int_equal(addr4(&c->api.listen, &port), INADDR_LOOPBACK);
    assert_int_equal(port, 7499);
    assert_int_equal(c->quiet_ms, 30000);
    assert_int_equal(c->n_services, 2);

    s = config_service(c, "web");
    assert_ptr_equal(s, &c->services[0]);
    assert_int_equal(s->line, 6);
    assert_string_equal(s->command[0], "/bin/sleep");
    assert_string_equal(s->command[1], "--");
    assert_string_equal(s->command[2], "18080");
    assert_null(s->command[3]);
    assert_string_equal(s->cwd, "/tmp");
    assert_string_equal(s->env[0], "GREETING=hello");
    assert_string_equal(s->env[1], "EMPTY=");
    assert_null(s->env[2]);
    assert_int_equal(s->log_max_bytes, 2 * 1024 * 1024);
    assert_int_equal(restart_of(s)->max, 3);
    assert_int_equal(restart_of(s)->window_ms, 120000);
    assert_int_equal(restart_of(s)->stable_ms, 5000);
    assert_int_equal(restart_of(s)->backoff_initial_ms, 250);
    assert_int_equal(restart_of(s)->backoff_max_ms, 20000);
    assert_int_equal(s->stop.signal, SIGINT);
    assert_int_equal(s->stop.grace_ms, 2000);

    assert_int_equal(s->n_checks, 3);
    assert_string_equal(s->checks[0].name, "http");
    assert_ptr_equal(s->checks[0].ops, &http_ops);
    assert_int_equal(s->checks[0].interval_ms, 200);
    assert_int_equal(s->checks[0].timeout_ms, 100);
    assert_int_equal(s->checks[0].fall, 2);
    assert_int_equal(s->checks[0].rise, 1);
    assert_int_equal(s->checks[0].severity, SEVERITY_CRITICAL);
    assert_int_equal(s->checks[0].line, 12);
    hp = s->checks[0].params;
    assert_string_equal(hp->url, "http://127.0.0.1:18080/health");
    assert_int_equal(hp->expect_status, 200);
    assert_string_equal(hp->expect_body, "ok");
    assert_false(hp->tls_verify);

    assert_string_equal(s->checks[1].name, "port");
    assert_ptr_equal(s->checks[1].ops, &tcp_ops);
    assert_int_equal(s->checks[1].interval_ms, 1000);
    assert_int_equal(s->checks[1].timeout_ms, 500);
    assert_int_equal(s->checks[1].line, 22);
    tp = s->checks[1].params;
    assert_int_equal(addr4(&tp->address, &port), INADDR_LOOPBACK);
    assert_int_equal(port, 18080);

    assert_string_equal(s->checks[2].name, "http2");
    hp = s->checks[2].params;
    assert_true(hp->tls_verify); /* params_init default kept */
    assert_null(hp->expect_body);

    db = config_service(c, "db.primary-1");
    assert_ptr_equal(db, &c->services[1]);
    assert_string_equal(db->command[2], "18081");
    assert_null(db->command[3]);
    assert_int_equal(db->n_checks, 0);
    assert_string_equal(db->ident.user, "nobody");
    assert_string_equal(db->ident.group, "nogroup");
    assert_int_equal(db->ident.user_at.line, 28);
    assert_int_equal(db->ident.user_at.col, 11);
    assert_true(db->ident.cred.set_umask);
    assert_int_equal(db->ident.cred.umask, 027);
    assert_true(db->ident.cred.no_new_privs);
    /* Not resolved yet: nothing may run with it until the preflight. */
    assert_int_equal(db->ident.cred.error, -EAGAIN);
    assert_int_equal(db->ident.cred.n_limits, 4);
    assert_int_equal(db->ident.cred.limits[0].resource, RLIMIT_NOFILE);
    assert_int_equal(db->ident.cred.limits[0].value, 4096);
    assert_int_equal(db->ident.cred.limits[1].resource, RLIMIT_CORE);
    assert_int_equal(db->ident.cred.limits[1].value, 0);
    assert_int_equal(db->ident.cred.limits[2].resource, RLIMIT_AS);
    assert_int_equal(db->ident.cred.limits[2].value, 2ull << 30);
    assert_int_equal(db->ident.cred.limits[3].resource, RLIMIT_CPU);
    assert_true(db->ident.cred.limits[3].value == RLIM_INFINITY);
    assert_int_equal(db->limit_at[3].line, 32);
    assert_string_equal(db->strategy_ident[STRATEGY_REPAIR]->user, "daemon");
    assert_int_equal(db->strategy_ident[STRATEGY_REPAIR]->cred.error, -EAGAIN);
    assert_int_equal(db->strategy_ident[STRATEGY_REPAIR]->cred.umask,
                     027); /* the service's, with its own user */
    assert_null(config_service(c, "nope"));
    assert_null(config_service(c, NULL));
    config_free(c);
}

/* ---- check names ---- */

static void unnamed_checks_get_kind_then_numbered_names(void **state)
{
    struct cfg_err err;
    struct config *c = load(SVC "    checks:\n"
                                "      - fake: { url: a }\n"
                                "      - fake: { url: b }\n"
                                "      - fake: { url: c, name: fake2 }\n"
                                "      - fake: { url: d }\n"
                                "      - tcp: { address: \"1.2.3.4:5\" }\n",
                            &err);
    const struct service_cfg *s;

    assert_non_null(c);
    s = &c->services[0];
    assert_int_equal(s->n_checks, 5);
    assert_string_equal(s->checks[0].name, "fake");
    assert_string_equal(s->checks[1].name, "fake3");
    assert_string_equal(s->checks[2].name, "fake2");
    assert_string_equal(s->checks[3].name, "fake4");
    assert_string_equal(s->checks[4].name, "tcp");
    config_free(c);
}

static void user_given_name_wins_over_an_automatic_one(void **state)
{
    struct cfg_err err;
    struct config *c = load(SVC "    checks:\n"
                                "      - fake: { url: a }\n"
                                "      - tcp: { address: \"1.2.3.4:5\", name: fake }\n",
                            &err);

    assert_non_null(c);
    assert_string_equal(c->services[0].checks[0].name, "fake2");
    assert_string_equal(c->services[0].checks[1].name, "fake");
    config_free(c);
}

static void the_same_check_name_in_two_services_is_fine(void **state)
{
    struct cfg_err err;
    struct config *c = load("services:\n"
                            "  a: { command: [x], checks: [ fake: { url: u, name: up } ] }\n"
                            "  b: { command: [x], checks: [ fake: { url: u, name: up } ] }\n",
                            &err);

    assert_non_null(c);
    assert_string_equal(c->services[1].checks[0].name, "up");
    config_free(c);
}

static void duplicate_user_check_names_are_rejected(void **state)
{
    expect_error(SVC "    checks:\n"
                     "      - fake: { url: a, name: up }\n"
                     "      - fake: { url: b, name: up }\n",
                 6, 31, "duplicate check name 'up' in service 'web'");
}

/* ---- log_max ---- */

static void log_max_accepts_bytes_and_binary_suffixes(void **state)
{
    static const struct {
        const char *v;
        uint64_t bytes;
    } ok[] = {{"65536", 65536},    {"512K", 512 << 10}, {"512KiB", 512 << 10}, {"10M", 10 << 20},
              {"10MiB", 10 << 20}, {"2G", 2ull << 30},  {"3GiB", 3ull << 30}};
    char yaml[256];
    struct cfg_err err;
    struct config *c;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        snprintf(yaml, sizeof(yaml), SVC "    log_max: %s\n", ok[i].v);
        c = load(yaml, &err);
        assert_non_null(c);
        assert_int_equal(c->services[0].log_max_bytes, ok[i].bytes);
        config_free(c);
    }
}

static void log_max_rejects_other_sizes(void **state)
{
    static const char *const bad[] = {"10MB",        "0", "-1",  "1.5M",
                                      "10 M",        "k", "[1]", "99999999999999999999",
                                      "17179869184G"};
    char yaml[256];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(yaml, sizeof(yaml), SVC "    log_max: %s\n", bad[i]);
        expect_error(yaml, 4, 14, "expected a size like 10MiB, 512KiB or 65536");
    }
    expect_error(SVC "    log_max:\n", 4, 5, "expected a size");
}

/* ---- cgroup limits ---- */

static void cgroup_limits_are_read(void **state)
{
    struct cfg_err err;
    struct config *c =
        load(SVC "    cgroup: { memory_max: 256MiB, pids_max: 100, cpu_max: \"50000 100000\" }\n",
             &err);
    assert_non_null(c);
    const struct cgroup_cfg *cg = &c->services[0].cgroup;
    assert_int_equal(cg->memory_max, 256u << 20);
    assert_int_equal(cg->pids_max, 100);
    assert_int_equal(cg->cpu_quota_us, 50000);
    assert_int_equal(cg->cpu_period_us, 100000);
    config_free(c);
    /* A quota alone has the kernel's default period; "max" is no quota. */
    c = load(SVC "    cgroup: { cpu_max: \"max\" }\n", &err);
    assert_non_null(c);
    assert_true(c->services[0].cgroup.cpu_quota_us == UINT64_MAX);
    assert_int_equal(c->services[0].cgroup.cpu_period_us, 100000);
    assert_int_equal(c->services[0].cgroup.memory_max, 0);
    assert_int_equal(c->services[0].cgroup.pids_max, 0);
    config_free(c);
    c = load(SVC "    cgroup: { cpu_max: 20000 }\n", &err);
    assert_non_null(c);
    assert_int_equal(c->services[0].cgroup.cpu_quota_us, 20000);
    config_free(c);
    /* Absent: no limits at all. */
    c = load(SVC, &err);
    assert_non_null(c);
    assert_int_equal(c->services[0].cgroup.cpu_period_us, 0);
    assert_int_equal(c->services[0].cgroup.memory_max, 0);
    config_free(c);
}

static void cgroup_limits_reject_bad_values_with_their_position(void **state)
{
    expect_error(SVC "    cgroup: { memory_max: 10MB }\n", 4, 27, "expected memory_max as a size");
    expect_error(SVC "    cgroup: { pids_max: 0 }\n", 4, 25, "pids_max must be greater than 0");
    expect_error(SVC "    cgroup: { pids_max: -3 }\n", 4, 25, "expected a non-negative integer");
    static const char *const bad[] = {"\"50 100000\"",      "\"50000 100\"", "\"50000 2000000\"",
                                      "\"50000 100000 1\"", "\"half\"",      "\"5e4 100000\""};
    char yaml[256];
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(yaml, sizeof yaml, SVC "    cgroup: { cpu_max: %s }\n", bad[i]);
        expect_error(yaml, 4, 24, "expected cpu_max as \"QUOTA PERIOD\"");
    }
    expect_error(SVC "    cgroup: { memory: 1G }\n", 4, 15, "unknown key 'memory'");
    expect_error("services:\n  db:\n    pidfile: /run/db.pid\n    cgroup: { pids_max: 5 }\n", 4, 13,
                 "'cgroup' limits are for a supervised service");
}

/* A changed limit is a changed process: the service is restarted. */
static void cgroup_limits_are_part_of_the_process(void **state)
{
    struct cfg_err err;
    struct config *a = load(SVC "    cgroup: { pids_max: 5 }\n", &err);
    struct config *b = load(SVC "    cgroup: { pids_max: 6 }\n", &err);
    struct config *same = load(SVC "    cgroup: { pids_max: 5 }\n", &err);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(same);
    assert_false(config_process_equal(&a->services[0], &b->services[0]));
    assert_false(config_service_equal(&a->services[0], &b->services[0]));
    assert_true(config_process_equal(&a->services[0], &same->services[0]));
    assert_true(config_service_equal(&a->services[0], &same->services[0]));
    config_free(a);
    config_free(b);
    config_free(same);
}

/* ---- errors: document and top level ---- */

static void syntax_error_has_libfyaml_position_and_prints_nothing(void **state)
{
    static const char bad[] = "services:\n  web:\n    command: [a, b\n  db: 1\n";
    FILE *tmp = tmpfile();
    int saved = dup(STDERR_FILENO);
    struct cfg_err err;
    struct config *c;

    assert_non_null(tmp);
    fflush(stderr);
    dup2(fileno(tmp), STDERR_FILENO);
    c = load(bad, &err); /* asserted after stderr is back */
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    fseek(tmp, 0, SEEK_END);
    assert_int_equal(ftell(tmp), 0);
    fclose(tmp);
    assert_null(c);
    assert_int_equal(err.line, 4);
    assert_int_equal(err.col, 5);
    assert_string_equal(err.msg, "wrongly indented mapping value in flow mode");
    expect_error("a: b: c\n", 1, 5, "invalid nested block mapping on the same line");
}

static void empty_document_is_an_error(void **state)
{
    expect_error("", 1, 1, "empty configuration");
    expect_error("# only a comment\n", 1, 1, "empty configuration");
    expect_error("---\n...\n", 1, 1, "empty configuration");
}

/* libfyaml 0.7.12 never returns from a non-UTF-8 byte after a directive's
 * '%', and crashes on a tab after an explicit key's value (both found by
 * fuzz/config.c): the loader refuses any such byte first, at its place. */
static void bytes_libfyaml_fails_on_are_refused_at_their_place(void **state)
{
    expect_error("%\xf2\n", 1, 2, "byte 0xf2 is not UTF-8");
    expect_error("%\x80\n", 1, 2, "byte 0x80 is not UTF-8");
    expect_error(SVC "    cwd: \"caf\xc3\xa9\xc0\xaf\"\n", 4, 15, "byte 0xc0 is not UTF-8");
    expect_error(SVC "    cwd: \xed\xa0\x80\n", 4, 10, "byte 0xed is not UTF-8"); /* surrogate */
    expect_error("? a:\t:", 1, 5, "tab character");
    expect_error("?  :S:\t:\n", 1, 7, "tab character");
    expect_error(SVC "    cwd: \"a\tb\"\n", 4, 12, "tab character");
    struct cfg_err err;
    struct config *c = load(SVC "    cwd: \"caf\xc3\xa9\\tb\"\n", &err); /* UTF-8, \t: fine */
    assert_non_null(c);
    config_free(c);
}

/* An alias with a '/' is a path to libfyaml 0.7.12, parsed with a
 * diagnostic that prints to stderr, the daemon's log (found by
 * fuzz/config.c): it stays unresolved, an error at its place, and the
 * loader writes nothing. */
static void an_alias_with_a_slash_is_an_error_and_prints_nothing(void **state)
{
    static const char *const yamls[] = {"services:\n  a: */*/\n", "\nservices:\n vices:\n */*/",
                                        "services:\n  a: *a/b\n"};
    static const int where[][2] = {{2, 6}, {4, 2}, {2, 6}};
    for (size_t i = 0; i < sizeof yamls / sizeof *yamls; i++) {
        fflush(stderr);
        int saved = dup(STDERR_FILENO);
        FILE *f = tmpfile();
        assert_non_null(f);
        dup2(fileno(f), STDERR_FILENO);
        struct cfg_err err;
        struct config *c = load(yamls[i], &err);
        dup2(saved, STDERR_FILENO);
        close(saved);
        long printed = lseek(fileno(f), 0, SEEK_END);
        fclose(f);
        config_free(c);
        assert_null(c);
        assert_int_equal(printed, 0);
        assert_int_equal(err.line, where[i][0]);
        assert_int_equal(err.col, where[i][1]);
    }
}

static void a_second_document_is_rejected(void **state)
{
    expect_error(SVC "---\nservices: { db: { command: [y] } }\n", 4, 1,
                 "only one YAML document is allowed");
    expect_error(SVC "---\n- [unclosed\n", 6, 1, "flow sequence without a closing bracket");
}

static void root_must_be_a_mapping(void **state)
{
    expect_error("- a\n- b\n", 1, 1, "expected a mapping, got a list");
    expect_error("hello\n", 1, 1, "expected a mapping, got 'hello'");
}

static void unknown_top_level_key_is_rejected(void **state)
{
    expect_error(SVC "statedir: x\n", 4, 1,
                 "unknown key 'statedir' (expected one of: state_dir, api, quiet, "
                 "max_concurrent_recoveries, max_starting, action_timeout, rules, alerts, "
                 "services, journal)");
}

static void missing_services_is_reported_at_the_root(void **state)
{
    expect_error("# c\nstate_dir: x\nquiet: 1s\n", 2, 1, "missing required key 'services'");
}

static void services_must_be_a_non_empty_mapping(void **state)
{
    expect_error("services: {}\n", 1, 11, "no services defined");
    expect_error("services: [web]\n", 1, 11, "expected a mapping of service names to services");
    expect_error("quiet: 1s\nservices:\n", 2, 1, "expected a mapping of service names");
}

static void api_listen_must_be_an_address(void **state)
{
    expect_error(SVC "api: { listen: 7411 }\n", 4, 16, "expected an address like 127.0.0.1:8080");
    expect_error(SVC "api: { port: 1 }\n", 4, 8,
                 "unknown key 'port' (expected one of: listen, hostnames, allow_remote)");
}

/* The token and every answer travel in clear: off loopback only when asked. */
static void api_listen_off_loopback_needs_allow_remote(void **state)
{
    struct cfg_err err;
    expect_error(SVC "api: { listen: 0.0.0.0:7411 }\n", 4, 16,
                 "api.listen 0.0.0.0 is not a loopback address: the API token would cross");
    expect_error(SVC "api: { listen: \"[::]:7411\", allow_remote: false }\n", 4, 16,
                 "set api.allow_remote: true");
    struct config *c = load(SVC "api: { listen: 0.0.0.0:7411, allow_remote: true }\n", &err);
    assert_non_null(c);
    assert_true(c->api.allow_remote);
    assert_int_equal(c->n_warnings, 1);
    assert_non_null(strstr(c->warnings[0], "t.yaml:4:16: warning: the API listens on 0.0.0.0"));
    assert_non_null(strstr(c->warnings[0], "in clear"));
    config_free(c);
    c = load(SVC "api: { listen: \"127.0.0.2:1\" }\n", &err); /* all of 127/8 is loopback */
    assert_non_null(c);
    assert_int_equal(c->n_warnings, 0);
    config_free(c);
}

static void api_hostnames_must_be_names_or_addresses(void **state)
{
    struct cfg_err err;
    expect_error(SVC "api: { hostnames: [localhost, \"evil/x\"] }\n", 4, 31,
                 "'evil/x' is not a host name");
    expect_error(SVC "api: { hostnames: [] }\n", 4, 19, "expected a non-empty list");
    struct config *c = load(SVC "api: { hostnames: [box.example, \"[::1]:7411\"] }\n", &err);
    assert_non_null(c);
    assert_string_equal(c->api.hostnames[0], "box.example");
    assert_string_equal(c->api.hostnames[1], "[::1]:7411");
    assert_null(c->api.hostnames[2]);
    config_free(c);
}

static void quiet_must_be_a_duration(void **state)
{
    expect_error(SVC "quiet: soon\n", 4, 8, "expected a duration like 200ms, 2s or 1m");
}

/* ---- errors: services ---- */

static void duplicate_service_is_rejected_at_the_second_key(void **state)
{
    expect_error("services:\n  web: { command: [a] }\n  db: { command: [b] }\n"
                 "  web: { command: [c] }\n",
                 4, 3, "duplicate service 'web'");
}

static void service_names_must_be_short_and_plain(void **state)
{
    char yaml[256];
    struct cfg_err err;
    struct config *c;

    expect_error("services:\n  \"my web\": { command: [a] }\n", 2, 3,
                 "invalid service name 'my web' (expected 1-63 characters of A-Z a-z 0-9 _ . -)");
    expect_error("services:\n  \"\": { command: [a] }\n", 2, 3, "invalid service name ''");
    expect_error("services:\n  a/b: { command: [a] }\n", 2, 3, "invalid service name 'a/b'");
    snprintf(yaml, sizeof(yaml), "services:\n  %064d: { command: [a] }\n", 0);
    expect_error(yaml, 2, 3, "invalid service name");
    snprintf(yaml, sizeof(yaml), "services:\n  %063d: { command: [a] }\n", 0);
    c = load(yaml, &err);
    assert_non_null(c);
    assert_int_equal(strlen(c->services[0].name), 63);
    config_free(c);
    c = load("services:\n  A-z_0.9: { command: [a] }\n", &err);
    assert_non_null(c);
    config_free(c);
}

static void missing_command_is_reported_at_the_service_mapping(void **state)
{
    expect_error("services:\n  web:\n    cwd: /tmp\n", 3, 5, "missing required key 'command'");
    expect_error("services:\n  web: {cwd: /tmp}\n", 2, 8, "missing required key 'command'");
}

static void service_body_must_be_a_mapping(void **state)
{
    expect_error("services:\n  web:\n", 2, 3, "expected a mapping, got nothing");
    expect_error("services:\n  web: [a]\n", 2, 8, "expected a mapping, got a list");
}

static void unknown_service_key_is_rejected(void **state)
{
    expect_error(SVC "    comand: [b]\n", 4, 5, "unknown key 'comand' (expected one of: command");
}

static void command_must_be_a_list_of_strings(void **state)
{
    expect_error("services:\n  web:\n    command: ./x --port 1\n", 3, 14,
                 "expected a list of strings, got './x --port 1'");
    expect_error("services:\n  web:\n    command: []\n", 3, 14, "expected a non-empty list");
    expect_error("services:\n  web:\n    command:\n      - ./x\n      - [a]\n", 5, 9,
                 "expected a list of strings, got a list");
}

static void env_must_be_names_and_strings(void **state)
{
    expect_error(SVC "    env: { \"A=B\": x }\n", 4, 12, "expected an environment variable name");
    expect_error(SVC "    env: [A=B]\n", 4, 10, "expected a mapping of NAME: value");
}

static void restart_values_are_checked(void **state)
{
    expect_error(SVC "    restart: { max: -1 }\n", 4, 21, "got negative -1");
    expect_error(SVC "    restart: { window: 0 }\n", 4, 24, "window must be greater than 0");
    expect_error(SVC "    restart:\n      backoff: { initial: 20s, max: 10s }\n", 5, 16,
                 "backoff initial (20000 ms) must not exceed max (10000 ms)");
    expect_error(SVC "    restart: { backoff: { first: 1s } }\n", 4, 27, "unknown key 'first'");
    expect_error(SVC "    restart: { window: forever }\n", 4, 24, "expected a duration");
}

/* ---- a strategy's own keys (recover/restart.c, recover/repair.c) ---- */

/* A param of strategy st read through the strategy's own field table:
 * repair's struct is private to repair.c. */
static const void *param_at(const struct service_cfg *s, int st, const char *key)
{
    struct cfg_strategy k;
    assert_int_equal(strategy_cfg_kind(st, &k), 0);
    assert_non_null(config_strategy(s, st));
    for (const struct cfg_field *f = k.fields; f && f->key; f++)
        if (!strcmp(f->key, key))
            return (const char *)config_strategy(s, st) + f->offset;
    fail_msg("strategy %d has no key '%s'", st, key);
    return NULL;
}

static char *const *repair_command(const struct service_cfg *s)
{
    return *(char **const *)param_at(s, STRATEGY_REPAIR, "command");
}

static void strategy_params_get_defaults_when_their_key_is_absent(void **state)
{
    struct cfg_err err;
    struct config *c = load(SVC, &err);
    assert_non_null(c);
    const struct service_cfg *s = &c->services[0];
    assert_null(repair_command(s)); /* repair: absent: not configured */
    assert_int_equal(*(const uint64_t *)param_at(s, STRATEGY_REPAIR, "timeout"), 60000);
    assert_int_equal(restart_of(s)->max, 5);
    assert_null(config_strategy(s, STRATEGY_FAILOVER)); /* not implemented: no params */
    config_free(c);
}

static void repair_keys_fill_its_params(void **state)
{
    struct cfg_err err;
    struct config *c = load(SVC "    repair: { command: [/bin/clean, -v], timeout: 30s }\n", &err);
    assert_non_null(c);
    char *const *cmd = repair_command(&c->services[0]);
    assert_string_equal(cmd[0], "/bin/clean");
    assert_string_equal(cmd[1], "-v");
    assert_null(cmd[2]);
    assert_int_equal(*(const uint64_t *)param_at(&c->services[0], STRATEGY_REPAIR, "timeout"),
                     30000);
    config_free(c);
}

static void strategy_param_errors_point_at_the_value(void **state)
{
    expect_error(SVC "    repair: { command: [a], timeout: forever }\n", 4, 38,
                 "expected a duration");
    expect_error(SVC "    repair: { timeout: 1s }\n", 4, 13, "missing required key 'command'");
    expect_error(SVC "    repair: [a]\n", 4, 13, "expected a mapping, got a list");
    expect_error(SVC "    restart:\n      max: 2\n      window: 0\n", 6, 15,
                 "window must be greater than 0");
}

static void unknown_key_inside_a_strategy_is_rejected(void **state)
{
    expect_error(SVC "    repair: { command: [a], retries: 3 }\n", 4, 29,
                 "unknown key 'retries' (expected one of: command, timeout, user, group)");
    expect_error(SVC "    restart: { tries: 3 }\n", 4, 16,
                 "unknown key 'tries' (expected one of: max, window, stable, backoff)");
}

static void external_restart_program_is_still_read_as_argv(void **state)
{
    struct cfg_err err;
    struct config *c = load("services:\n  db:\n    pidfile: /run/db.pid\n"
                            "    restart: [/usr/bin/pg_ctl, restart]\n    stop: [/bin/stop]\n",
                            &err);
    assert_non_null(c);
    const struct service_cfg *s = &c->services[0];
    assert_string_equal(s->restart_cmd[0], "/usr/bin/pg_ctl");
    assert_string_equal(s->restart_cmd[1], "restart");
    assert_null(s->restart_cmd[2]);
    assert_string_equal(s->stop_cmd[0], "/bin/stop");
    assert_int_equal(restart_of(s)->max, 5); /* the policy keeps its defaults */
    assert_int_equal(s->stop.grace_ms, 5000);
    config_free(c);
    /* An external service may also take the policy, as a mapping. */
    c = load("services:\n  db:\n    pidfile: /run/db.pid\n    start: [/bin/start]\n"
             "    restart: { max: 2 }\n",
             &err);
    assert_non_null(c);
    assert_null(c->services[0].restart_cmd);
    assert_int_equal(restart_of(&c->services[0])->max, 2);
    config_free(c);
    expect_error(SVC "    restart: [x]\n", 4, 14,
                 "'restart' as a program is for external services");
}

static void service_equality_compares_strategy_params(void **state)
{
    struct cfg_err err;
    struct config *a = load(SVC "    repair: { command: [r], timeout: 1s }\n", &err);
    struct config *b = load(SVC "    repair: { command: [r], timeout: 1s }\n", &err);
    struct config *slower = load(SVC "    repair: { command: [r], timeout: 2s }\n", &err);
    struct config *policy = load(SVC "    repair: { command: [r], timeout: 1s }\n"
                                     "    restart: { max: 4 }\n",
                                 &err);
    assert_true(a && b && slower && policy);
    assert_true(config_service_equal(&a->services[0], &b->services[0]));
    assert_false(config_service_equal(&a->services[0], &slower->services[0]));
    assert_false(config_service_equal(&a->services[0], &policy->services[0]));
    assert_true(config_process_equal(&a->services[0], &policy->services[0]));
    config_free(a);
    config_free(b);
    config_free(slower);
    config_free(policy);
}

static void max_starting_defaults_to_64_and_must_be_at_least_1(void **state)
{
    struct cfg_err err;
    struct config *c = load(SVC, &err);
    assert_non_null(c);
    assert_int_equal(c->max_starting, 64);
    config_free(c);
    c = load("max_starting: 1\n" SVC, &err);
    assert_non_null(c);
    assert_int_equal(c->max_starting, 1);
    config_free(c);
    expect_error("max_starting: 0\n" SVC, 1, 15, "max_starting must be at least 1");
}

static void stop_signal_must_be_known(void **state)
{
    expect_error(SVC "    stop: { signal: STOP }\n", 4, 21, "unknown signal 'STOP'");
    expect_error(SVC "    stop: { signal: 15 }\n", 4, 21, "unknown signal '15'");
}

/* ---- errors: checks ---- */

static void checks_must_be_a_list(void **state)
{
    expect_error(SVC "    checks: { fake: { url: u } }\n", 4, 13, "expected a list of checks");
    expect_error(SVC "    checks:\n", 4, 5, "expected a list of checks");
}

static void a_check_is_a_one_key_mapping(void **state)
{
    expect_error(SVC "    checks:\n"
                     "      - fake: { url: u }\n"
                     "        tcp: { address: \"1.2.3.4:5\" }\n",
                 5, 9, "expected a check like '- http: {url: ...}'");
    expect_error(SVC "    checks: [ fake ]\n", 4, 15, "expected a check like");
}

static void unknown_check_kind_is_rejected_at_the_kind(void **state)
{
    expect_error(SVC "    checks:\n      - ping: { host: h }\n", 5, 9, "unknown check kind 'ping'");
}

static void check_missing_a_kind_key_is_reported_at_its_settings(void **state)
{
    expect_error(SVC "    checks:\n      - fake: { n: 3 }\n", 5, 15, "missing required key 'url'");
    expect_error(SVC "    checks:\n      - fake:\n          n: 3\n", 6, 11,
                 "missing required key 'url'");
}

static void check_settings_must_be_a_mapping(void **state)
{
    expect_error(SVC "    checks:\n      - fake:\n", 5, 9, "expected a mapping, got nothing");
    expect_error(SVC "    checks:\n      - fake: u\n", 5, 15, "expected a mapping, got 'u'");
}

static void check_rejects_a_key_of_neither_table(void **state)
{
    expect_error(SVC "    checks:\n      - fake: { url: u, port: 1 }\n", 5, 25,
                 "unknown key 'port' (expected one of: name, interval, timeout, fall, rise, "
                 "severity, type, impact, user, group, url, address, n, mode, args, file, prog)");
}

static void check_kind_keys_are_typed(void **state)
{
    expect_error(SVC "    checks:\n      - fake: { url: u, address: nowhere }\n", 5, 34,
                 "expected an address like 127.0.0.1:8080, got 'nowhere'");
    expect_error(SVC "    checks:\n      - fake: { url: u, args: x }\n", 5, 31,
                 "expected a list of strings");
    expect_error(SVC "    checks:\n      - http: { url: u, tls_verify: yes }\n", 5, 37,
                 "expected true or false, got 'yes'");
}

static void check_validate_error_is_reported_at_the_check(void **state)
{
    expect_error(SVC "    checks:\n      - fake: { url: ok }\n      - fake: { url: reject }\n", 6,
                 9, "invalid fake check: url must not be 'reject'");
}

static void check_common_limits_are_enforced(void **state)
{
    expect_error(SVC "    checks:\n      - fake: { url: u, timeout: 0 }\n", 5, 34,
                 "timeout must be greater than 0");
    expect_error(SVC "    checks:\n      - fake: { url: u, interval: 0ms }\n", 5, 35,
                 "interval must be greater than 0");
    expect_error(SVC "    checks:\n      - fake: { url: u, fall: 0 }\n", 5, 31,
                 "fall must be greater than 0");
    expect_error(SVC "    checks:\n      - fake: { url: u, rise: 0 }\n", 5, 31,
                 "rise must be greater than 0");
    expect_error(SVC "    checks:\n      - fake: { url: u, fall: -2 }\n", 5, 31, "negative -2");
    expect_error(SVC "    checks:\n      - fake: { url: u, severity: urgent }\n", 5, 35,
                 "unknown severity 'urgent'");
    expect_error(SVC "    checks:\n      - fake: { url: u, interval: 2 }\n", 5, 35,
                 "expected a duration like 200ms, 2s or 1m, got '2'");
}

static void check_error_in_a_later_service_frees_earlier_ones(void **state)
{
    /* LeakSanitizer fails the run if the first service or its checks leak. */
    expect_error("services:\n"
                 "  a:\n"
                 "    command: [x, y]\n"
                 "    env: { A: b }\n"
                 "    cwd: /\n"
                 "    checks: [ fake: { url: u, args: [p, q] }, tcp: { address: \"1.1.1.1:1\" } ]\n"
                 "  b:\n"
                 "    command: [x]\n"
                 "    checks: [ fake: { url: u, mode: m, args: [r] , n: -1 } ]\n",
                 9, 55, "negative -1");
}

/* ---- files ---- */

static void config_load_reports_a_missing_file(void **state)
{
    struct cfg_err err;
    char buf[512];

    assert_null(config_load("/nonexistent/recoverd.yaml", &fake_registry, &err));
    assert_string_equal(err.file, "/nonexistent/recoverd.yaml");
    assert_int_equal(err.line, 0);
    assert_string_equal(cfg_err_format(&err, buf, sizeof(buf)),
                        "/nonexistent/recoverd.yaml: error: cannot open: No such file or "
                        "directory");
}

/* Every tests/configs/bad/X.yaml starts "# expect: LINE:COL TEXT"; the loader
 * must fail there with TEXT in its message (the e2e suite checks the same
 * files through `recoverd --check-config`). */
static void every_bad_sample_fails_where_its_header_says(void **state)
{
    glob_t g;
    size_t checked = 0;

    assert_int_equal(glob(RECOVERD_SOURCE_DIR "/tests/configs/bad/*.yaml", 0, NULL, &g), 0);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        char head[256] = "", want[200] = "", buf[1024];
        int line = 0, col = 0;
        struct cfg_err err;
        struct config *c;
        FILE *f = fopen(g.gl_pathv[i], "r");

        assert_non_null(f);
        assert_non_null(fgets(head, sizeof(head), f));
        fclose(f);
        head[strcspn(head, "\n")] = '\0';
        if (sscanf(head, "# expect: %d:%d %199[^\n]", &line, &col, want) != 3)
            fail_msg("%s: bad header '%s'", g.gl_pathv[i], head);
        c = config_load(g.gl_pathv[i], &fake_registry, &err);
        if (c) {
            config_free(c);
            fail_msg("%s: loaded without error", g.gl_pathv[i]);
        }
        cfg_err_format(&err, buf, sizeof(buf));
        if (err.line != line || err.col != col || !strstr(err.msg, want) ||
            strcmp(err.file, g.gl_pathv[i]))
            fail_msg("%s: got '%s', want %d:%d '%s'", g.gl_pathv[i], buf, line, col, want);
        checked++;
    }
    globfree(&g);
    assert_true(checked >= 8);
}

static void config_free_accepts_null(void **state)
{
    config_free(NULL);
}

/* Thousands of damaged copies of the valid sample: each loads, or fails
 * with a message and a position inside the text. The input is not
 * NUL-terminated and sits in a buffer of exactly its size, so ASan (the
 * unit tests' build) sees any read past it. */
static void mutated_configs_load_or_fail_cleanly(void **state)
{
    FILE *f = fopen(RECOVERD_SOURCE_DIR "/tests/configs/valid.yaml", "r");
    assert_non_null(f);
    char base[8192];
    size_t n = fread(base, 1, sizeof base, f);
    fclose(f);
    assert_true(n > 0 && n < sizeof base);
    struct mutator m;
    mutate_seed(&m, 20261125);
    unsigned loaded = 0, refused = 0;
    for (int i = 0; i < 20000; i++) {
        size_t len;
        char *exact = mutate_copy(&m, base, n, ":-{}[]\"'#&*!|>,?%@`\n \t\\", &len);
        assert_non_null(exact);
        struct cfg_err err;
        memset(&err, 0, sizeof err);
        struct config *c = config_load_string("fuzz.yaml", exact, len, &fake_registry, &err);
        free(exact);
        if (c) {
            loaded++;
            config_free(c);
            continue;
        }
        refused++;
        if (!err.msg[0] || err.line < 0 || err.col < 0 || strcmp(err.file, "fuzz.yaml"))
            fail_msg("iteration %d: error without message or place: %s:%d:%d '%s'", i, err.file,
                     err.line, err.col, err.msg);
    }
    /* Neither all harmless nor all fatal: the edits reach the loader. */
    print_message("%u loaded, %u refused\n", loaded, refused);
    assert_true(loaded > 200 && refused > 2000);
}

/* ---- strategies this build does not implement ---- */

static void config_unimplemented_strategy_is_dropped_with_a_warning(void **state)
{
    struct cfg_err err;
    struct config *c = load(SVC "    recovery: [failover, restart]\n", &err);
    assert_non_null(c);
    assert_int_equal(c->services[0].n_chain, 1);
    assert_int_equal(c->services[0].chain[0], STRATEGY_RESTART);
    assert_int_equal(c->n_warnings, 1);
    assert_non_null(strstr(c->warnings[0], "t.yaml:4:16: warning: strategy 'failover'"));
    config_free(c);
}

static void config_chain_without_an_implemented_strategy_is_an_error(void **state)
{
    expect_error(SVC "    recovery: [failover, replace]\n", 4, 15, "no usable strategy");
}

static void config_rule_without_an_implemented_strategy_keeps_the_default(void **state)
{
    struct cfg_err err;
    struct config *c = load("rules: { hardware: [failover, replace] }\n" SVC, &err);
    assert_non_null(c);
    assert_int_equal(c->n_rules[FAULT_HARDWARE], 1);
    assert_int_equal(c->rules[FAULT_HARDWARE][0], STRATEGY_RESTART);
    assert_true(c->n_warnings >= 1);
    config_free(c);
}

static void config_default_chains_name_only_implemented_strategies(void **state)
{
    struct cfg_err err;
    struct config *c = load(SVC, &err);
    assert_non_null(c);
    assert_int_equal(c->n_warnings, 0);
    for (int t = 0; t < FAULT_TYPE__COUNT; t++) {
        assert_true(c->n_rules[t] >= 1);
        for (unsigned i = 0; i < c->n_rules[t]; i++)
            assert_non_null(strategy_find(c->rules[t][i]));
    }
    assert_int_equal(c->rules[FAULT_HARDWARE][0], STRATEGY_RESTART);
    config_free(c);
}

static void config_check_names_follow_the_service_name_rule(void **state)
{
    expect_error(SVC "    checks:\n      - fake: { url: x, name: \"a b\" }\n", 5, 31,
                 "invalid check name");
}

/* ---- paths ---- */

static const char path_yaml[] =
    "state_dir: var\n"
    "services:\n"
    "  a:\n"
    "    command: [./bin/a, ./an-argument]\n"
    "    checks:\n"
    "      - fake: { url: x, file: secret, prog: [./check.sh, ./arg] }\n"
    "  b:\n"
    "    cwd: work\n"
    "    command: [bin/b]\n"
    "    repair: { command: [../fix] }\n"
    "  c:\n"
    "    pidfile: ./run/c.pid\n"
    "    start: [/usr/bin/true]\n"
    "    stop: [kill-it]\n";

/* The need of s that what names (see struct cfg_need). */
static const struct cfg_need *need_of(const struct service_cfg *s, const char *what)
{
    for (size_t i = 0; i < s->n_needs; i++)
        if (!strcmp(s->needs[i].what, what))
            return &s->needs[i];
    fail_msg("no need '%s'", what);
    return NULL;
}

/* What path_yaml in dir must read as. */
static void assert_paths_under(const struct config *c, const char *dir)
{
    char want[512];
#define WANT(rel) (snprintf(want, sizeof want, "%s/%s", dir, rel), want)
    assert_string_equal(c->state_dir, WANT("var"));
    const struct service_cfg *a = config_service(c, "a"), *b = config_service(c, "b"),
                             *cs = config_service(c, "c");
    assert_string_equal(a->command[0], WANT("bin/a"));
    assert_string_equal(a->command[1], "./an-argument"); /* arguments are the program's business */
    assert_null(a->cwd);
    const struct fake_params *fp = a->checks[0].params;
    assert_string_equal(fp->file, WANT("secret"));
    assert_string_equal(fp->prog[0], WANT("check.sh"));
    assert_string_equal(fp->prog[1], "./arg");
    assert_string_equal(b->cwd, WANT("work"));
    assert_string_equal(b->command[0], WANT("work/bin/b")); /* programs: from the service's cwd */
    assert_string_equal(repair_command(b)[0], WANT("work/../fix"));
    assert_string_equal(cs->pidfile, WANT("run/c.pid"));
    assert_string_equal(cs->start_cmd[0], "/usr/bin/true");
    assert_string_equal(cs->stop_cmd[0], "kill-it"); /* a bare name is for PATH */
    /* The preflight checks the paths that will be used, as whoever uses them. */
    assert_string_equal(need_of(a, "check 'fake' file")->path, WANT("secret"));
    assert_null(need_of(a, "check 'fake' file")->as); /* recoverd reads it */
    assert_string_equal(need_of(a, "check 'fake' prog")->path, WANT("check.sh"));
    assert_string_equal(need_of(b, "cwd")->path, WANT("work"));
    const struct cfg_need *fix = need_of(b, "repair.command");
    assert_string_equal(fix->path, WANT("work/../fix"));
    assert_ptr_equal(fix->as, b->strategy_ident[STRATEGY_REPAIR]);
    assert_string_equal(need_of(cs, "pidfile directory")->path, WANT("run"));
    assert_string_equal(need_of(cs, "stop")->path, "kill-it");
#undef WANT
}

static void config_relative_paths_resolve_against_the_file_directory(void **state)
{
    char dir[64] = "/tmp/test_config.XXXXXX", file[128], cwd[4096];
    struct cfg_err err;
    assert_non_null(mkdtemp(dir));
    snprintf(file, sizeof file, "%s/r.yaml", dir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fputs(path_yaml, f);
    fclose(f);
    assert_non_null(getcwd(cwd, sizeof cwd));

    assert_int_equal(chdir("/"), 0); /* whoever starts recoverd, wherever */
    struct config *c = config_load(file, &fake_registry, &err);
    assert_non_null(c);
    assert_paths_under(c, dir);
    config_free(c);

    assert_int_equal(chdir(dir), 0); /* a relative name of the file itself */
    c = config_load("r.yaml", &fake_registry, &err);
    assert_int_equal(chdir(cwd), 0);
    assert_non_null(c);
    assert_paths_under(c, dir);
    config_free(c);

    c = load(path_yaml, &err); /* text without a file: left as written */
    assert_non_null(c);
    assert_string_equal(c->state_dir, "var");
    config_free(c);
    unlink(file);
    rmdir(dir);
}

static void config_journal_retention_reads_days_and_sizes(void **state)
{
    struct cfg_err err;
    struct config *c = load(SVC, &err);
    assert_non_null(c);
    assert_true(c->journal.max_age_ms == 30 * 86400000ULL);
    assert_true(c->journal.max_bytes == 256u << 20);
    config_free(c);
    c = load("journal: { max_age: 7d, max_size: 64MiB }\n" SVC, &err);
    assert_non_null(c);
    assert_true(c->journal.max_age_ms == 7 * 86400000ULL);
    assert_true(c->journal.max_bytes == 64u << 20);
    config_free(c);
    expect_error("journal: { max_size: 0 }\n" SVC, 1, 22, "expected a size like");
    expect_error("journal: { max_age: 0 }\n" SVC, 1, 21, "max_age must be greater than 0");
}

/* ---- least privilege ---- */

/* A check that runs a program takes its own user; the other keys of the
 * service (umask, limits) come with it, and a check without one takes the
 * service's cred whole. */
static void privileges_reach_checks_and_repair(void **state)
{
    struct cfg_err err;
    struct config *c = load(SVC "    user: nobody\n"
                                "    umask: \"077\"\n"
                                "    limits: { nproc: 50, fsize: 1MiB }\n"
                                "    repair: { command: [/bin/true] }\n"
                                "    checks:\n"
                                "      - prog: { argv: [/bin/true], user: daemon }\n"
                                "      - prog: { argv: [/bin/true], secret: /etc/pw }\n",
                            &err);
    assert_non_null(c);
    const struct service_cfg *s = &c->services[0];
    assert_int_equal(s->ident.cred.n_limits, 2);
    assert_int_equal(s->ident.cred.limits[1].value, 1u << 20);
    assert_string_equal(s->checks[0].ident.user, "daemon");
    assert_int_equal(s->checks[0].ident.cred.umask, 077);
    assert_int_equal(s->checks[0].ident.cred.n_limits, 2);
    assert_null(s->checks[1].ident.user);
    assert_memory_equal(&s->checks[1].ident.cred, &s->ident.cred, sizeof s->ident.cred);
    assert_memory_equal(&s->strategy_ident[STRATEGY_REPAIR]->cred, &s->ident.cred,
                        sizeof s->ident.cred);
    /* What the preflight will check: the service's command, the repair
     * program and both check programs, each as its user, and the file. */
    assert_int_equal(s->n_needs, 5);
    size_t programs = 0;
    for (size_t i = 0; i < s->n_needs; i++) {
        const struct cfg_need *n = &s->needs[i];
        programs += n->kind == CFG_NEED_PROGRAM;
        if (n->kind == CFG_NEED_FILE) {
            assert_string_equal(n->path, "/etc/pw");
            assert_null(n->as); /* recoverd reads it */
            assert_int_equal(n->at.line, 10);
        }
        if (n->as == &s->checks[0].ident) {
            assert_int_equal(n->at.line, 9);
            assert_int_equal(n->at.col, 24);
        }
    }
    assert_int_equal(programs, 4);
    /* repair's program runs as repair's ident, which lives in its params. */
    assert_ptr_equal(need_of(s, "repair.command")->as, s->strategy_ident[STRATEGY_REPAIR]);
    assert_ptr_equal(&s->strategy_ident[STRATEGY_REPAIR]->user,
                     param_at(s, STRATEGY_REPAIR, "user"));
    config_free(c);
}

/* Without user or group nothing waits for the preflight. */
static void privileges_without_a_user_need_no_resolution(void **state)
{
    struct cfg_err err;
    struct config *c = load(SVC "    no_new_privs: true\n", &err);
    assert_non_null(c);
    assert_int_equal(c->services[0].ident.cred.error, 0);
    assert_false(c->services[0].ident.cred.set_ids);
    assert_true(c->services[0].ident.cred.no_new_privs);
    config_free(c);
}

/* Rights are part of the process: a reload that changes them restarts it. */
static void privileges_changed_make_another_process(void **state)
{
    static const char *const variants[] = {
        "    user: nobody\n",       "    group: nogroup\n",
        "    umask: \"022\"\n",     "    limits: { nofile: 100 }\n",
        "    no_new_privs: true\n",
    };
    struct cfg_err err;
    struct config *plain = load(SVC, &err);
    assert_non_null(plain);
    for (size_t i = 0; i < sizeof variants / sizeof *variants; i++) {
        char yaml[256];
        snprintf(yaml, sizeof yaml, SVC "%s", variants[i]);
        struct config *c = load(yaml, &err), *again = load(yaml, &err);
        assert_non_null(c);
        assert_non_null(again);
        assert_false(config_process_equal(&plain->services[0], &c->services[0]));
        assert_false(config_service_equal(&plain->services[0], &c->services[0]));
        assert_true(config_process_equal(&again->services[0], &c->services[0]));
        config_free(c);
        config_free(again);
    }
    config_free(plain);
}

/* The fingerprint a child's record keeps (adoption after a restart of
 * recoverd) changes exactly when config_process_equal says the process
 * would be another, and is the same text for the same configuration. */
static void process_fingerprint_follows_process_equality(void **state)
{
    static const struct {
        const char *yaml;
        bool same_process;
    } variants[] = {
        {"services:\n  web:\n    command: [./x, a]\n", false},
        {"services:\n  web:\n    command: [\"./x a\"]\n", false},
        {SVC "    env: { A: \"1\" }\n", false},
        {SVC "    cwd: /tmp\n", false},
        {SVC "    log_max: 1M\n", false},
        {SVC "    umask: \"077\"\n", false},
        {SVC "    limits: { nofile: 100 }\n", false},
        {SVC "    no_new_privs: true\n", false},
        {SVC "    cgroup: { pids_max: 10 }\n", false},
        {SVC "    restart: { max: 4 }\n", true},
        {SVC "    stop: { grace: 9s }\n", true},
        {SVC "    checks: [ { tcp: { address: \"127.0.0.1:1\" } } ]\n", true},
    };
    struct cfg_err err;
    char fp_plain[CONFIG_FINGERPRINT_LEN], fp_again[CONFIG_FINGERPRINT_LEN];
    struct config *plain = load(SVC, &err), *again = load(SVC, &err);
    assert_true(plain && again);
    config_process_fingerprint(&plain->services[0], fp_plain);
    config_process_fingerprint(&again->services[0], fp_again);
    assert_int_equal(strlen(fp_plain), CONFIG_FINGERPRINT_LEN - 1);
    assert_string_equal(fp_plain, fp_again);
    for (size_t i = 0; i < sizeof variants / sizeof *variants; i++) {
        char fp[CONFIG_FINGERPRINT_LEN];
        struct config *c = load(variants[i].yaml, &err);
        if (!c)
            fail_msg("%s: %d:%d: %s", variants[i].yaml, err.line, err.col, err.msg);
        config_process_fingerprint(&c->services[0], fp);
        assert_int_equal(config_process_equal(&plain->services[0], &c->services[0]),
                         variants[i].same_process);
        if ((strcmp(fp, fp_plain) == 0) != variants[i].same_process)
            fail_msg("%s: fingerprint %s vs %s", variants[i].yaml, fp, fp_plain);
        config_free(c);
    }
    config_free(plain);
    config_free(again);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(config_defaults_apply_when_keys_are_absent),
        cmocka_unit_test(process_fingerprint_follows_process_equality),
        cmocka_unit_test(check_defaults_apply_when_keys_are_absent),
        cmocka_unit_test(restart_keys_override_only_what_they_name),
        cmocka_unit_test(config_load_maps_every_field_of_the_valid_example),
        cmocka_unit_test(unnamed_checks_get_kind_then_numbered_names),
        cmocka_unit_test(user_given_name_wins_over_an_automatic_one),
        cmocka_unit_test(the_same_check_name_in_two_services_is_fine),
        cmocka_unit_test(duplicate_user_check_names_are_rejected),
        cmocka_unit_test(log_max_accepts_bytes_and_binary_suffixes),
        cmocka_unit_test(log_max_rejects_other_sizes),
        cmocka_unit_test(cgroup_limits_are_read),
        cmocka_unit_test(cgroup_limits_reject_bad_values_with_their_position),
        cmocka_unit_test(cgroup_limits_are_part_of_the_process),
        cmocka_unit_test(syntax_error_has_libfyaml_position_and_prints_nothing),
        cmocka_unit_test(empty_document_is_an_error),
        cmocka_unit_test(bytes_libfyaml_fails_on_are_refused_at_their_place),
        cmocka_unit_test(an_alias_with_a_slash_is_an_error_and_prints_nothing),
        cmocka_unit_test(a_second_document_is_rejected),
        cmocka_unit_test(root_must_be_a_mapping),
        cmocka_unit_test(unknown_top_level_key_is_rejected),
        cmocka_unit_test(missing_services_is_reported_at_the_root),
        cmocka_unit_test(services_must_be_a_non_empty_mapping),
        cmocka_unit_test(api_listen_must_be_an_address),
        cmocka_unit_test(api_listen_off_loopback_needs_allow_remote),
        cmocka_unit_test(api_hostnames_must_be_names_or_addresses),
        cmocka_unit_test(quiet_must_be_a_duration),
        cmocka_unit_test(duplicate_service_is_rejected_at_the_second_key),
        cmocka_unit_test(service_names_must_be_short_and_plain),
        cmocka_unit_test(missing_command_is_reported_at_the_service_mapping),
        cmocka_unit_test(service_body_must_be_a_mapping),
        cmocka_unit_test(unknown_service_key_is_rejected),
        cmocka_unit_test(command_must_be_a_list_of_strings),
        cmocka_unit_test(env_must_be_names_and_strings),
        cmocka_unit_test(restart_values_are_checked),
        cmocka_unit_test(strategy_params_get_defaults_when_their_key_is_absent),
        cmocka_unit_test(repair_keys_fill_its_params),
        cmocka_unit_test(strategy_param_errors_point_at_the_value),
        cmocka_unit_test(unknown_key_inside_a_strategy_is_rejected),
        cmocka_unit_test(external_restart_program_is_still_read_as_argv),
        cmocka_unit_test(service_equality_compares_strategy_params),
        cmocka_unit_test(max_starting_defaults_to_64_and_must_be_at_least_1),
        cmocka_unit_test(stop_signal_must_be_known),
        cmocka_unit_test(checks_must_be_a_list),
        cmocka_unit_test(a_check_is_a_one_key_mapping),
        cmocka_unit_test(unknown_check_kind_is_rejected_at_the_kind),
        cmocka_unit_test(check_missing_a_kind_key_is_reported_at_its_settings),
        cmocka_unit_test(check_settings_must_be_a_mapping),
        cmocka_unit_test(check_rejects_a_key_of_neither_table),
        cmocka_unit_test(check_kind_keys_are_typed),
        cmocka_unit_test(check_validate_error_is_reported_at_the_check),
        cmocka_unit_test(check_common_limits_are_enforced),
        cmocka_unit_test(check_error_in_a_later_service_frees_earlier_ones),
        cmocka_unit_test(config_load_reports_a_missing_file),
        cmocka_unit_test(config_unimplemented_strategy_is_dropped_with_a_warning),
        cmocka_unit_test(config_chain_without_an_implemented_strategy_is_an_error),
        cmocka_unit_test(config_rule_without_an_implemented_strategy_keeps_the_default),
        cmocka_unit_test(config_default_chains_name_only_implemented_strategies),
        cmocka_unit_test(config_check_names_follow_the_service_name_rule),
        cmocka_unit_test(every_bad_sample_fails_where_its_header_says),
        cmocka_unit_test(config_free_accepts_null),
        cmocka_unit_test(config_relative_paths_resolve_against_the_file_directory),
        cmocka_unit_test(config_journal_retention_reads_days_and_sizes),
        cmocka_unit_test(mutated_configs_load_or_fail_cleanly),
        cmocka_unit_test(privileges_reach_checks_and_repair),
        cmocka_unit_test(privileges_without_a_user_need_no_resolution),
        cmocka_unit_test(privileges_changed_make_another_process),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
