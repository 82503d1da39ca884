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

#include <cmocka.h>

#include "config/config.h"
#include "detect/detector.h"
#include "detect/http.h"
#include "detect/tcp.h"
#include "lib/model-t.h"
#include "mutate.h"

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
};

static const struct cfg_field fake_fields[] = {
    {"url", CFG_STRING, offsetof(struct fake_params, url), 1, NULL},
    {"address", CFG_ADDRESS, offsetof(struct fake_params, address), 0, NULL},
    {"n", CFG_UINT, offsetof(struct fake_params, n), 0, NULL},
    {"mode", CFG_STRING, offsetof(struct fake_params, mode), 0, NULL},
    {"args", CFG_ARGV, offsetof(struct fake_params, args), 0, NULL},
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
    static const struct detector_ops *const all[] = {&fake_ops, &http_ops, &tcp_ops};

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

/* As this build: restart and repair exist, the others not yet. */
static bool fake_strategy_exists(int st)
{
    return st == STRATEGY_RESTART || st == STRATEGY_REPAIR;
}

static const struct cfg_registry fake_registry = {fake_check_kind, fake_strategy_exists};

/* ---- helpers ---- */

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
    assert_string_equal(c->state_dir, "./var");
    assert_int_equal(addr4(&c->api, &port), INADDR_LOOPBACK);
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
    assert_int_equal(s->restart.max, 5);
    assert_int_equal(s->restart.window_ms, 60000);
    assert_int_equal(s->restart.stable_ms, 1000);
    assert_int_equal(s->restart.backoff_initial_ms, 100);
    assert_int_equal(s->restart.backoff_max_ms, 10000);
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
    assert_int_equal(c->services[0].restart.max, 5);
    assert_int_equal(c->services[0].restart.backoff_initial_ms, 100);
    assert_int_equal(c->services[0].restart.backoff_max_ms, 60000);
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
    assert_int_equal(addr4(&c->api, &port), INADDR_LOOPBACK);
    assert_int_equal(port, 7499);
    assert_int_equal(c->quiet_ms, 30000);
    assert_int_equal(c->n_services, 2);

    s = config_service(c, "web");
    assert_ptr_equal(s, &c->services[0]);
    assert_int_equal(s->line, 6);
    assert_string_equal(s->command[0], "./build/recoverd-demo");
    assert_string_equal(s->command[1], "--port");
    assert_string_equal(s->command[2], "18080");
    assert_null(s->command[3]);
    assert_string_equal(s->cwd, "/tmp");
    assert_string_equal(s->env[0], "GREETING=hello");
    assert_string_equal(s->env[1], "EMPTY=");
    assert_null(s->env[2]);
    assert_int_equal(s->log_max_bytes, 2 * 1024 * 1024);
    assert_int_equal(s->restart.max, 3);
    assert_int_equal(s->restart.window_ms, 120000);
    assert_int_equal(s->restart.stable_ms, 5000);
    assert_int_equal(s->restart.backoff_initial_ms, 250);
    assert_int_equal(s->restart.backoff_max_ms, 20000);
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
                 "max_concurrent_recoveries, action_timeout, rules, alerts, services)");
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
    expect_error(SVC "api: { port: 1 }\n", 4, 8, "unknown key 'port' (expected one of: listen)");
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
                 "severity, type, impact, url, address, n, mode, args)");
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
            assert_true(fake_strategy_exists(c->rules[t][i]));
    }
    assert_int_equal(c->rules[FAULT_HARDWARE][0], STRATEGY_RESTART);
    config_free(c);
}

static void config_check_names_follow_the_service_name_rule(void **state)
{
    expect_error(SVC "    checks:\n      - fake: { url: x, name: \"a b\" }\n", 5, 31,
                 "invalid check name");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(config_defaults_apply_when_keys_are_absent),
        cmocka_unit_test(check_defaults_apply_when_keys_are_absent),
        cmocka_unit_test(restart_keys_override_only_what_they_name),
        cmocka_unit_test(config_load_maps_every_field_of_the_valid_example),
        cmocka_unit_test(unnamed_checks_get_kind_then_numbered_names),
        cmocka_unit_test(user_given_name_wins_over_an_automatic_one),
        cmocka_unit_test(the_same_check_name_in_two_services_is_fine),
        cmocka_unit_test(duplicate_user_check_names_are_rejected),
        cmocka_unit_test(log_max_accepts_bytes_and_binary_suffixes),
        cmocka_unit_test(log_max_rejects_other_sizes),
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
        cmocka_unit_test(quiet_must_be_a_duration),
        cmocka_unit_test(duplicate_service_is_rejected_at_the_second_key),
        cmocka_unit_test(service_names_must_be_short_and_plain),
        cmocka_unit_test(missing_command_is_reported_at_the_service_mapping),
        cmocka_unit_test(service_body_must_be_a_mapping),
        cmocka_unit_test(unknown_service_key_is_rejected),
        cmocka_unit_test(command_must_be_a_list_of_strings),
        cmocka_unit_test(env_must_be_names_and_strings),
        cmocka_unit_test(restart_values_are_checked),
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
        cmocka_unit_test(mutated_configs_load_or_fail_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
