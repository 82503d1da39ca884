/* lib/srcport and daemon/ports: reading the kernel's ephemeral range, the
 * warning at load for a service port inside it, and the run of the range
 * recoverd's own connections are kept in. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/config.h"
#include "daemon/daemon.h"
#include "daemon/ports.h"
#include "lib/srcport.h"

static struct srcport_sys sys_;

static void parse_range_and_reserved(void **state)
{
    (void)state;
    assert_int_equal(srcport_sys_parse("32768\t60999\n", "40000,40010-40012\n", &sys_), 0);
    assert_int_equal(sys_.lo, 32768);
    assert_int_equal(sys_.hi, 60999);
    assert_true(srcport_exposed(&sys_, 32768));
    assert_true(srcport_exposed(&sys_, 60999));
    assert_false(srcport_exposed(&sys_, 32767)); /* below the range */
    assert_false(srcport_exposed(&sys_, 61000));
    assert_false(srcport_exposed(&sys_, 40000)); /* reserved */
    assert_false(srcport_exposed(&sys_, 40011));
    assert_true(srcport_exposed(&sys_, 40013));
    assert_int_equal(srcport_sys_parse("1024 65535\n", "", &sys_), 0);
    assert_true(srcport_exposed(&sys_, 8080));
}

static void parse_refuses_garbage(void **state)
{
    (void)state;
    assert_int_equal(srcport_sys_parse("", "", &sys_), -EINVAL);
    assert_int_equal(srcport_sys_parse("60999 32768", "", &sys_), -EINVAL); /* lo > hi */
    assert_int_equal(srcport_sys_parse("32768 70000", "", &sys_), -EINVAL);
    assert_int_equal(srcport_sys_parse("32768 60999", "40012-40010", &sys_), -EINVAL);
    assert_int_equal(srcport_sys_parse("32768 60999", "4x", &sys_), -EINVAL);
}

static void read_host_agrees_with_proc(void **state)
{
    (void)state;
    assert_int_equal(srcport_sys_read(&sys_), 0);
    assert_true(sys_.lo > 0 && sys_.lo <= sys_.hi && sys_.hi <= 65535);
}

static void run_is_longest_gap_between_exposed_ports(void **state)
{
    unsigned lo, hi;
    (void)state;
    assert_int_equal(srcport_sys_parse("1000 1999", "1500-1700", &sys_), 0);
    /* Nothing exposed to avoid: no restriction. */
    const uint16_t outside[] = {80, 1600, 5000}; /* below, reserved, above */
    assert_false(srcport_run_for(&sys_, outside, 3, &lo, &hi));
    assert_false(srcport_run_for(&sys_, NULL, 0, &lo, &hi));
    const uint16_t some[] = {1900, 1100, 1400, 1100};
    assert_true(srcport_run_for(&sys_, some, 4, &lo, &hi));
    assert_int_equal(lo, 1401); /* 1401..1899 beats 1101..1399 and 1000..1099 */
    assert_int_equal(hi, 1899);
    const uint16_t ends[] = {1000, 1999, 1001};
    assert_true(srcport_run_for(&sys_, ends, 3, &lo, &hi));
    assert_int_equal(lo, 1002);
    assert_int_equal(hi, 1998);
}

/* A socket given the run connects from a port inside it. */
static void apply_keeps_source_port_in_run(void **state)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    (void)state;
    assert_int_equal(srcport_sys_read(&sys_), 0);
    unsigned lo = sys_.lo + 100, hi = sys_.lo + 131;
    assert_true(hi <= sys_.hi);
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(l, 64), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &len), 0);
    srcport_use(true, lo, hi);
    for (int i = 0; i < 20; i++) {
        struct sockaddr_in me;
        socklen_t ml = sizeof me;
        int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_int_equal(srcport_apply(c, AF_INET), 0);
        assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof a), 0);
        assert_int_equal(getsockname(c, (struct sockaddr *)&me, &ml), 0);
        assert_in_range(ntohs(me.sin_port), lo, hi);
        close(c);
    }
    srcport_use(false, 0, 0);
    close(l);
}

static struct config *load(const char *yaml)
{
    struct cfg_err err;
    struct config *c = config_load_string("p.yaml", yaml, strlen(yaml), &daemon_registry, &err);
    if (!c)
        fail_msg("%s:%d:%d: %s", err.file, err.line, err.col, err.msg);
    return c;
}

static void warning_for_local_target_in_range(void **state)
{
    (void)state;
    assert_int_equal(srcport_sys_parse("32768 60999", "45000", &sys_), 0);
    struct config *c = load("services:\n"
                            "  a:\n"
                            "    command: [/bin/true]\n"
                            "    checks:\n"
                            "      - tcp: { address: \"127.0.0.1:40000\" }\n"
                            "      - http: { url: \"http://127.0.0.1:8080/\" }\n"
                            "      - http: { url: \"http://localhost:50000/\" }\n"
                            "      - tcp: { address: \"192.0.2.1:40001\" }\n"
                            "      - tcp: { address: \"127.0.0.1:45000\" }\n");
    size_t before = c->n_warnings;
    assert_int_equal(ports_review(c, &sys_), 0);
    assert_int_equal(c->n_warnings, before + 2); /* 40000 and 50000 only */
    const char *w = c->warnings[before];
    assert_non_null(strstr(w, "p.yaml:5:9: warning:"));
    assert_non_null(strstr(w, "port 40000"));
    assert_non_null(strstr(w, "ephemeral range 32768-60999"));
    assert_non_null(strstr(w, "ip_local_reserved_ports"));
    assert_non_null(strstr(c->warnings[before + 1], "p.yaml:7:9: warning:"));
    assert_non_null(strstr(c->warnings[before + 1], "port 50000"));
    /* The run recoverd's connections keep to avoids both: the longest of
     * 32768..39999, 40001..49999 and 50001..60999. */
    assert_true(c->src_ports.on);
    assert_int_equal(c->src_ports.lo, 50001);
    assert_int_equal(c->src_ports.hi, 60999);
    config_free(c);
}

/* The plug-in kinds name their targets too: a DSN's host and port, a
 * redis address; a socket directory is no TCP port. */
static void plugin_kinds_name_their_targets(void **state)
{
    (void)state;
    assert_int_equal(srcport_sys_parse("32768 60999", "", &sys_), 0);
    struct config *c = load("services:\n"
                            "  a:\n"
                            "    command: [/bin/true]\n"
                            "    checks:\n"
                            "      - postgres: { dsn: \"host=127.0.0.1 port=50001 user=x\" }\n"
                            "      - postgres: { dsn: \"host=/run/postgresql port=50003\" }\n"
                            "      - redis: { address: \"127.0.0.1:50002\" }\n");
    size_t before = c->n_warnings;
    assert_int_equal(ports_review(c, &sys_), 0);
    assert_int_equal(c->n_warnings, before + 2);
    assert_non_null(strstr(c->warnings[before], "p.yaml:5:9: warning: service 'a' check "
                                                "'postgres' targets local port 50001"));
    assert_non_null(strstr(c->warnings[before + 1], "port 50002"));
    config_free(c);
}

static void no_warning_below_range(void **state)
{
    (void)state;
    assert_int_equal(srcport_sys_parse("32768 60999", "", &sys_), 0);
    struct config *c = load("services:\n"
                            "  a:\n"
                            "    command: [/bin/true]\n"
                            "    checks:\n"
                            "      - tcp: { address: \"127.0.0.1:8080\" }\n");
    size_t before = c->n_warnings;
    assert_int_equal(ports_review(c, &sys_), 0);
    assert_int_equal(c->n_warnings, before);
    assert_false(c->src_ports.on);
    config_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_range_and_reserved),
        cmocka_unit_test(parse_refuses_garbage),
        cmocka_unit_test(read_host_agrees_with_proc),
        cmocka_unit_test(run_is_longest_gap_between_exposed_ports),
        cmocka_unit_test(apply_keeps_source_port_in_run),
        cmocka_unit_test(warning_for_local_target_in_range),
        cmocka_unit_test(plugin_kinds_name_their_targets),
        cmocka_unit_test(no_warning_below_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
