/* Unit tests of the table-driven YAML mapper (config/cfgmap.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>

#include <libfyaml.h>
#include <cmocka.h>

#include "config/cfgmap.h"
#include "lib/model-t.h"

struct inner {
    uint64_t wait_ms; /* ms */
    unsigned tries;   /* count */
};

struct sample {
    char *text;                   /* string */
    uint64_t delay_ms;            /* ms */
    unsigned count;               /* count */
    bool flag;                    /* bool */
    char **argv;                  /* NULL-terminated */
    char **env;                   /* "K=v", NULL-terminated */
    struct sockaddr_storage addr; /* address */
    int sig;                      /* signal number */
    int sev;                      /* enum severity, -1 unset */
    struct inner in;              /* nested */
};

static const struct cfg_field inner_fields[] = {
    {"wait", CFG_DURATION, offsetof(struct inner, wait_ms), 0, NULL},
    {"tries", CFG_UINT, offsetof(struct inner, tries), 1, NULL},
    {NULL, 0, 0, 0, NULL},
};

static const struct cfg_field sample_fields[] = {
    {"text", CFG_STRING, offsetof(struct sample, text), 0, NULL},
    {"delay", CFG_DURATION, offsetof(struct sample, delay_ms), 0, NULL},
    {"count", CFG_UINT, offsetof(struct sample, count), 0, NULL},
    {"flag", CFG_BOOL, offsetof(struct sample, flag), 0, NULL},
    {"argv", CFG_ARGV, offsetof(struct sample, argv), 0, NULL},
    {"env", CFG_ENV, offsetof(struct sample, env), 0, NULL},
    {"addr", CFG_ADDRESS, offsetof(struct sample, addr), 0, NULL},
    {"sig", CFG_SIGNAL, offsetof(struct sample, sig), 0, NULL},
    {"sev", CFG_SEVERITY, offsetof(struct sample, sev), 0, NULL},
    {"inner", CFG_MAP, offsetof(struct sample, in), 0, inner_fields},
    {"reserved", CFG_MAP, 0, 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

static const struct cfg_field required_fields[] = {
    {"text", CFG_STRING, offsetof(struct sample, text), 1, NULL},
    {"count", CFG_UINT, offsetof(struct sample, count), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

/* Parse yaml and map its root with fields into s; returns cfg_map's result. */
static int map_yaml(const char *yaml, const struct cfg_field *fields, struct sample *s,
                    struct cfg_err *err)
{
    struct fy_parse_cfg pc = {.flags = FYPCF_QUIET | FYPCF_ALLOW_DUPLICATE_KEYS};
    struct fy_document *doc = fy_document_build_from_string(&pc, yaml, strlen(yaml));
    int r;

    assert_non_null(doc);
    memset(err, 0, sizeof(*err));
    snprintf(err->file, sizeof(err->file), "t.yaml");
    r = cfg_map(fy_document_root(doc), fields, s, err);
    fy_document_destroy(doc);
    return r;
}

/* Map yaml expecting failure at line:col with msg containing `want`; frees s. */
static void expect_error(const char *yaml, int line, int col, const char *want)
{
    struct sample s = {.sev = -1};
    struct cfg_err err;

    assert_int_equal(map_yaml(yaml, sample_fields, &s, &err), -EINVAL);
    cfg_fields_free(sample_fields, &s);
    if (err.line != line || err.col != col)
        print_message("%s -> %d:%d %s\n", yaml, err.line, err.col, err.msg);
    if (!strstr(err.msg, want))
        fail_msg("message '%s' lacks '%s'", err.msg, want);
    assert_int_equal(err.line, line);
    assert_int_equal(err.col, col);
}

static void cfg_map_fills_every_type(void **state)
{
    struct sample s = {.sev = -1};
    struct cfg_err err;
    const struct sockaddr_in *in4 = (const struct sockaddr_in *)&s.addr;
    const char *yaml = "text: hello\n"
                       "delay: 250ms\n"
                       "count: 42\n"
                       "flag: true\n"
                       "argv: [a, \"b c\", 3]\n"
                       "env: { A: x, B_2: \"\" , C: 7 }\n"
                       "addr: 10.1.2.3:8080\n"
                       "sig: SIGUSR1\n"
                       "sev: critical\n"
                       "inner: { wait: 2m, tries: 7 }\n"
                       "reserved: [anything, {goes: here}]\n";

    assert_int_equal(map_yaml(yaml, sample_fields, &s, &err), 0);
    assert_string_equal(s.text, "hello");
    assert_int_equal(s.delay_ms, 250);
    assert_int_equal(s.count, 42);
    assert_true(s.flag);
    assert_string_equal(s.argv[0], "a");
    assert_string_equal(s.argv[1], "b c");
    assert_string_equal(s.argv[2], "3");
    assert_null(s.argv[3]);
    assert_string_equal(s.env[0], "A=x");
    assert_string_equal(s.env[1], "B_2=");
    assert_string_equal(s.env[2], "C=7");
    assert_null(s.env[3]);
    assert_int_equal(in4->sin_family, AF_INET);
    assert_int_equal(ntohs(in4->sin_port), 8080);
    assert_int_equal(ntohl(in4->sin_addr.s_addr), 0x0a010203);
    assert_int_equal(s.sig, SIGUSR1);
    assert_int_equal(s.sev, SEVERITY_CRITICAL);
    assert_int_equal(s.in.wait_ms, 120000);
    assert_int_equal(s.in.tries, 7);
    cfg_fields_free(sample_fields, &s);
    assert_null(s.text);
    assert_null(s.argv);
    assert_null(s.env);
}

static void cfg_map_keeps_preset_values_of_absent_keys(void **state)
{
    struct sample s = {.delay_ms = 99, .count = 5, .flag = true, .sig = SIGTERM, .sev = -1};
    struct cfg_err err;

    assert_int_equal(map_yaml("text: x\n", sample_fields, &s, &err), 0);
    assert_int_equal(s.delay_ms, 99);
    assert_int_equal(s.count, 5);
    assert_true(s.flag);
    assert_int_equal(s.sig, SIGTERM);
    assert_int_equal(s.sev, -1);
    assert_null(s.argv);
    cfg_fields_free(sample_fields, &s);
}

static void cfg_map_replaces_a_heap_preset_string(void **state)
{
    struct sample s = {.text = strdup("default"), .sev = -1};
    struct cfg_err err;

    assert_int_equal(map_yaml("text: mine\n", sample_fields, &s, &err), 0);
    assert_string_equal(s.text, "mine");
    cfg_fields_free(sample_fields, &s); /* LeakSanitizer: "default" was freed */
}

static void cfg_map_reads_ipv6_and_localhost_addresses(void **state)
{
    struct sample s = {.sev = -1};
    struct cfg_err err;
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&s.addr;
    const struct sockaddr_in *in4 = (const struct sockaddr_in *)&s.addr;

    assert_int_equal(map_yaml("addr: \"[::1]:9\"\n", sample_fields, &s, &err), 0);
    assert_int_equal(in6->sin6_family, AF_INET6);
    assert_int_equal(ntohs(in6->sin6_port), 9);
    assert_true(IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr));
    assert_int_equal(map_yaml("addr: localhost:0\n", sample_fields, &s, &err), 0);
    assert_int_equal(in4->sin_family, AF_INET);
    assert_int_equal(ntohs(in4->sin_port), 0);
    assert_int_equal(ntohl(in4->sin_addr.s_addr), INADDR_LOOPBACK);
}

static void cfg_map_accepts_every_signal_name_with_or_without_sig(void **state)
{
    static const struct {
        const char *yaml;
        int sig;
    } cases[] = {
        {"sig: TERM\n", SIGTERM}, {"sig: SIGINT\n", SIGINT}, {"sig: HUP\n", SIGHUP},
        {"sig: KILL\n", SIGKILL}, {"sig: QUIT\n", SIGQUIT},  {"sig: USR1\n", SIGUSR1},
        {"sig: USR2\n", SIGUSR2},
    };
    struct sample s = {.sev = -1};
    struct cfg_err err;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(map_yaml(cases[i].yaml, sample_fields, &s, &err), 0);
        assert_int_equal(s.sig, cases[i].sig);
    }
}

static void cfg_map_resolves_aliases(void **state)
{
    struct sample s = {.sev = -1};
    struct cfg_err err;

    assert_int_equal(map_yaml("text: &t shared\ninner: &i {tries: 2}\nreserved: [*t]\n",
                              sample_fields, &s, &err),
                     0);
    cfg_fields_free(sample_fields, &s);
    s = (struct sample){.sev = -1};
    assert_int_equal(map_yaml("argv: &a [x]\nreserved: *a\ntext: *a\n", sample_fields, &s, &err),
                     -EINVAL);
    cfg_fields_free(sample_fields, &s);
    assert_int_equal(err.line, 3);
    assert_int_equal(err.col, 7);
    assert_non_null(strstr(err.msg, "expected a string, got a list"));
}

static void cfg_map_rejects_unknown_key_listing_the_known_ones(void **state)
{
    expect_error("text: a\n  \ncolour: red\n", 3, 1,
                 "unknown key 'colour' (expected one of: text, delay, count");
}

static void cfg_map_rejects_duplicate_key(void **state)
{
    expect_error("count: 1\ntext: a\ncount: 2\n", 3, 1, "duplicate key 'count'");
}

static void cfg_map_reports_missing_required_key_at_the_mapping(void **state)
{
    struct sample s = {.sev = -1};
    struct cfg_err err;

    assert_int_equal(map_yaml("# comment\n\ncount: 3\n", required_fields, &s, &err), -EINVAL);
    assert_string_equal(err.msg, "missing required key 'text'");
    assert_int_equal(err.line, 3);
    assert_int_equal(err.col, 1);
    expect_error("inner:\n  wait: 1s\n", 2, 3, "missing required key 'tries'");
    expect_error("inner: {}\n", 1, 8, "missing required key 'tries'");
}

static void cfg_map_rejects_a_non_mapping(void **state)
{
    expect_error("- a\n- b\n", 1, 1, "expected a mapping, got a list");
    expect_error("inner: 5\n", 1, 8, "expected a mapping, got '5'");
}

static void cfg_map_rejects_bad_durations(void **state)
{
    expect_error("delay: 5\n", 1, 8, "expected a duration like 200ms, 2s or 1m, got '5'");
    expect_error("delay: 1.5s\n", 1, 8, "expected a duration");
    expect_error("delay: -1s\n", 1, 8, "expected a duration");
    expect_error("delay: 10 s\n", 1, 8, "expected a duration");
    expect_error("delay: [1s]\n", 1, 8, "expected a duration like 200ms, 2s or 1m, got a list");
    expect_error("delay: 99999999999999999999ms\n", 1, 8, "expected a duration");
}

static void cfg_map_rejects_negative_and_huge_integers(void **state)
{
    expect_error("count: -3\n", 1, 8, "expected a non-negative integer, got negative -3");
    expect_error("count: 4294967296\n", 1, 8, "too large");
    expect_error("count: 3x\n", 1, 8, "expected a non-negative integer, got '3x'");
    expect_error("count: \"\"\n", 1, 8, "expected a non-negative integer");
}

static void cfg_map_accepts_only_true_and_false(void **state)
{
    expect_error("flag: yes\n", 1, 7, "expected true or false, got 'yes'");
    expect_error("flag: 1\n", 1, 7, "expected true or false");
    expect_error("flag: True\n", 1, 7, "expected true or false");
}

static void cfg_map_rejects_bad_argv(void **state)
{
    expect_error("argv: ls -l\n", 1, 7, "expected a list of strings, got 'ls -l'");
    expect_error("argv: []\n", 1, 7, "expected a non-empty list of strings");
    expect_error("argv:\n  - ls\n  - {a: b}\n", 3, 5, "expected a list of strings, got a mapping");
    expect_error("argv: [ls, ~]\n", 1, 12, "expected a list of strings, got nothing");
}

static void cfg_map_rejects_bad_env(void **state)
{
    expect_error("env: [A]\n", 1, 6, "expected a mapping of NAME: value");
    expect_error("env: {\"1X\": a}\n", 1, 7, "expected an environment variable name");
    expect_error("env:\n  A: 1\n  A: 2\n", 3, 3, "duplicate key 'A'");
    expect_error("env:\n  A:\n", 2, 3, "expected a string value");
    expect_error("env: {A: [x]}\n", 1, 10, "expected a string value");
}

static void cfg_map_rejects_bad_addresses(void **state)
{
    static const char *const bad[] = {
        "addr: 127.0.0.1\n", "addr: 127.0.0.1:99999\n", "addr: example.com:80\n",
        "addr: \"[::1]\"\n", "addr: \"::1:80\"\n",      "addr: 1.2.3.4:-1\n",
        "addr: :80\n",       "addr: 1.2.3.4:8x\n",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_error(bad[i], 1, 7, "expected an address like 127.0.0.1:8080");
}

static void cfg_map_rejects_unknown_signal_and_severity(void **state)
{
    expect_error("sig: STOP\n", 1, 6, "unknown signal 'STOP' (expected TERM, INT, HUP");
    expect_error("sev: urgent\n", 1, 6,
                 "unknown severity 'urgent' (expected low, medium, high or critical)");
}

static void cfg_map_rejects_a_string_that_is_not_a_scalar(void **state)
{
    expect_error("text: {a: b}\n", 1, 7, "expected a string, got a mapping");
    expect_error("text: null\n", 1, 7, "expected a string, got nothing");
}

static void cfg_map_points_an_empty_value_at_its_key(void **state)
{
    expect_error("count: 1\ndelay:\nflag: true\n", 2, 1, "expected a duration like 200ms");
    expect_error("inner:\n  tries:\n", 2, 3, "expected a non-negative integer, got nothing");
}

static void cfg_map_rejects_a_complex_key(void **state)
{
    expect_error("? [a, b]\n: 1\n", 1, 3, "expected a plain key");
}

static void cfg_map_error_frees_what_was_allocated(void **state)
{
    /* LeakSanitizer fails this test if the strings mapped before the error leak. */
    expect_error("text: x\nargv: [a, b]\nenv: {A: b}\ncount: -1\n", 4, 8, "negative");
}

static void duration_parse_reads_each_unit(void **state)
{
    uint64_t ms = 1;

    assert_int_equal(duration_parse("0", &ms), 0);
    assert_int_equal(ms, 0);
    assert_int_equal(duration_parse("100ms", &ms), 0);
    assert_int_equal(ms, 100);
    assert_int_equal(duration_parse("2s", &ms), 0);
    assert_int_equal(ms, 2000);
    assert_int_equal(duration_parse("1m", &ms), 0);
    assert_int_equal(ms, 60000);
    assert_int_equal(duration_parse("3h", &ms), 0);
    assert_int_equal(ms, 3 * 3600000);
    assert_int_equal(duration_parse("0s", &ms), 0);
    assert_int_equal(ms, 0);
}

static void duration_parse_rejects_junk_and_overflow(void **state)
{
    static const char *const bad[] = {"",
                                      "ms",
                                      "5",
                                      "1.5s",
                                      "-1s",
                                      "1 s",
                                      "1sec",
                                      "1S",
                                      "18446744073709551615s",
                                      "99999999999999999999ms",
                                      "5124095576030432h"};
    uint64_t ms = 7;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (duration_parse(bad[i], &ms) != -EINVAL)
            fail_msg("'%s' was accepted", bad[i]);
    }
    assert_int_equal(ms, 7);
    assert_int_equal(duration_parse(NULL, &ms), -EINVAL);
}

static void cfg_err_format_names_file_line_and_column(void **state)
{
    struct cfg_err e = {.file = "a/b.yaml", .line = 3, .col = 14, .msg = "bad thing"};
    char buf[128];

    assert_string_equal(cfg_err_format(&e, buf, sizeof(buf)), "a/b.yaml:3:14: error: bad thing");
    e.line = 0;
    assert_string_equal(cfg_err_format(&e, buf, sizeof(buf)), "a/b.yaml: error: bad thing");
}

static void cfg_err_at_without_node_has_no_position(void **state)
{
    struct cfg_err e = {.file = "f", .line = 9, .col = 9};

    cfg_err_at(&e, NULL, "x=%d", 5);
    assert_int_equal(e.line, 0);
    assert_int_equal(e.col, 0);
    assert_string_equal(e.msg, "x=5");
    cfg_err_at(NULL, NULL, "ignored"); /* NULL-safe */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cfg_map_fills_every_type),
        cmocka_unit_test(cfg_map_keeps_preset_values_of_absent_keys),
        cmocka_unit_test(cfg_map_replaces_a_heap_preset_string),
        cmocka_unit_test(cfg_map_reads_ipv6_and_localhost_addresses),
        cmocka_unit_test(cfg_map_accepts_every_signal_name_with_or_without_sig),
        cmocka_unit_test(cfg_map_resolves_aliases),
        cmocka_unit_test(cfg_map_rejects_unknown_key_listing_the_known_ones),
        cmocka_unit_test(cfg_map_rejects_duplicate_key),
        cmocka_unit_test(cfg_map_reports_missing_required_key_at_the_mapping),
        cmocka_unit_test(cfg_map_rejects_a_non_mapping),
        cmocka_unit_test(cfg_map_rejects_bad_durations),
        cmocka_unit_test(cfg_map_rejects_negative_and_huge_integers),
        cmocka_unit_test(cfg_map_accepts_only_true_and_false),
        cmocka_unit_test(cfg_map_rejects_bad_argv),
        cmocka_unit_test(cfg_map_rejects_bad_env),
        cmocka_unit_test(cfg_map_rejects_bad_addresses),
        cmocka_unit_test(cfg_map_rejects_unknown_signal_and_severity),
        cmocka_unit_test(cfg_map_rejects_a_string_that_is_not_a_scalar),
        cmocka_unit_test(cfg_map_points_an_empty_value_at_its_key),
        cmocka_unit_test(cfg_map_rejects_a_complex_key),
        cmocka_unit_test(cfg_map_error_frees_what_was_allocated),
        cmocka_unit_test(duration_parse_reads_each_unit),
        cmocka_unit_test(duration_parse_rejects_junk_and_overflow),
        cmocka_unit_test(cfg_err_format_names_file_line_and_column),
        cmocka_unit_test(cfg_err_at_without_node_has_no_position),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
