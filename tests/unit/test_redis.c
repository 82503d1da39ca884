/* The redis detector (plug-in recoverd-redis.so) against a real
 * redis-server from the Debian package, started once for the file on a
 * free 127.0.0.1 port with a password. */
#include <errno.h>
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

#include "dbfix.h"
#include "detect/detector.h"
#include "loopwait.h"

#define REDIS_BIN "/usr/bin/redis-server"
#define RD_PASSWORD "Sekr1t-rd" /* requirepass */
#define RD_WRONG "Wr0ngPw-rd"   /* a password the server rejects */

static struct {
    bool up;          /* the server runs: tests that need it run */
    char dir[64];     /* temporary directory */
    char log[128];    /* the server's output */
    char pwfile[128]; /* the real password, for password_file */
    int port;         /* 127.0.0.1 port */
    pid_t pid;        /* redis-server; 0 while stopped */
} rd;

/* ---- the server ---- */

static int rd_start(void)
{
    char port[16];
    snprintf(port, sizeof port, "%d", rd.port);
    const char *argv[] = {REDIS_BIN,   "--port",
                          port,        "--bind",
                          "127.0.0.1", "--save",
                          "",          "--appendonly",
                          "no",        "--requirepass",
                          RD_PASSWORD, "--daemonize",
                          "no",        "--dir",
                          rd.dir,      "--busy-reply-threshold",
                          "50",        NULL};
    rd.pid = dbfix_spawn(argv, rd.log, false);
    if (dbfix_wait_port(rd.port, 10000) < 0) {
        fprintf(stderr, "# redis-server did not start; see %s\n", rd.log);
        return -1;
    }
    return 0;
}

static void rd_stop(void)
{
    dbfix_stop(rd.pid, SIGTERM, 10000);
    rd.pid = 0;
}

static int group_setup(void **state)
{
    if (!dbfix_have(REDIS_BIN)) {
        fprintf(stderr, "# redis-server is not installed: tests skipped\n");
        return 0;
    }
    if (dbfix_tmpdir(rd.dir, sizeof rd.dir, false) < 0)
        return -1;
    snprintf(rd.log, sizeof rd.log, "%s/redis.log", rd.dir);
    snprintf(rd.pwfile, sizeof rd.pwfile, "%s/pw", rd.dir);
    dbfix_write(rd.pwfile, RD_PASSWORD "\n", false);
    rd.port = dbfix_free_port();
    if (rd_start() < 0)
        return -1;
    rd.up = true;
    return 0;
}

static int group_teardown(void **state)
{
    rd_stop();
    dbfix_rmdir(rd.dir);
    return 0;
}

static int setup(void **state)
{
    *state = dbfix_loop_new();
    return 0;
}

static int teardown(void **state)
{
    dbfix_loop_free(*state, rd.pid);
    return 0;
}

#define NEED_SERVER()                                                                              \
    do {                                                                                           \
        if (!rd.up)                                                                                \
            skip();                                                                                \
    } while (0)

/* A check with "{address: 127.0.0.1:port, more}" params. */
static struct check *rd_check(const char *more, uint64_t timeout_ms)
{
    char yaml[512];
    snprintf(yaml, sizeof yaml, "{address: '127.0.0.1:%d'%s%s}", rd.port, more ? ", " : "",
             more ? more : "");
    return dbfix_check_new("redis", yaml, timeout_ms);
}

static struct observation probe(uv_loop_t *loop, struct check *c)
{
    struct observation o;
    dbfix_probe(loop, c, 0, &o, NULL);
    return o;
}

static void probe_ok(uv_loop_t *loop, struct check *c)
{
    struct observation o = probe(loop, c);
    if (!o.ok)
        fail_msg("probe failed: %s", o.reason);
    assert_string_equal(o.reason, "PONG");
}

/* A number from INFO, asked on a connection of our own. */
static long rd_info(const char *field)
{
    char out[8192], *at;
    assert_true(dbfix_talk(rd.port, "AUTH " RD_PASSWORD "\r\nINFO\r\n", field, out, sizeof out,
                           LOOPWAIT_MS) > 0);
    assert_non_null(at = strstr(out, field));
    return atol(at + strlen(field) + 1);
}

/* Whether the answer to command (after AUTH), on a connection of our own,
 * holds words within 200 ms: one look, for poll_until. */
static bool rd_says(const char *command, const char *words)
{
    char send[256], out[1024];
    snprintf(send, sizeof send, "AUTH " RD_PASSWORD "\r\n%s\r\n", command);
    return dbfix_talk(rd.port, send, words, out, sizeof out, 200) > 0 && strstr(out, words);
}

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

/* ---- tests ---- */

static void plugin_loads_hiredis_only_when_a_check_names_redis(void **state)
{
    assert_false(maps_hold("libhiredis"));
    assert_non_null(detector_find("redis"));
    assert_true(maps_hold("libhiredis"));
}

static void validate_wants_an_address_and_one_password(void **state)
{
    char why[256];
    assert_int_equal(dbfix_validate("redis",
                                    "{address: '127.0.0.1:1', password: a, "
                                    "password_file: /x}",
                                    why, sizeof why),
                     -EINVAL);
    assert_non_null(strstr(why, "one of them"));
    assert_int_equal(dbfix_validate("redis", "{password: a}", why, sizeof why), -EINVAL);
    assert_int_equal(dbfix_validate("redis", "{address: '127.0.0.1:1', db: 3}", why, sizeof why),
                     0);
}

static void probe_passes_with_the_password(void **state)
{
    NEED_SERVER();
    struct check *c = rd_check("password: " RD_PASSWORD, 2000);
    probe_ok(*state, c);
    dbfix_check_free(c);
}

static void probe_keeps_one_connection_across_probes(void **state)
{
    NEED_SERVER();
    struct check *c = rd_check("password: " RD_PASSWORD, 2000);
    long before = rd_info("total_connections_received");
    for (int i = 0; i < 5; i++)
        probe_ok(*state, c);
    /* ours, plus the one rd_info itself opens */
    assert_int_equal(rd_info("total_connections_received"), before + 2);
    dbfix_check_free(c);
}

static void password_file_supplies_the_password(void **state)
{
    NEED_SERVER();
    char more[200];
    snprintf(more, sizeof more, "password_file: '%s', db: 3", rd.pwfile);
    struct check *c = rd_check(more, 2000);
    probe_ok(*state, c);
    dbfix_check_free(c);
}

static void wrong_password_is_configuration_and_never_shown(void **state)
{
    NEED_SERVER();
    struct check *c = rd_check("password: " RD_WRONG, 2000);
    struct observation o = probe(*state, c);
    assert_false(o.ok);
    assert_int_equal(o.type, FAULT_CONFIGURATION);
    assert_int_equal(o.severity, SEVERITY_HIGH);
    assert_non_null(strstr(o.reason, "WRONGPASS"));
    assert_null(strstr(o.reason, RD_WRONG));
    dbfix_check_free(c);
}

static void missing_password_is_configuration(void **state)
{
    NEED_SERVER();
    struct check *c = rd_check(NULL, 2000);
    struct observation o = probe(*state, c);
    assert_false(o.ok);
    assert_int_equal(o.type, FAULT_CONFIGURATION);
    assert_non_null(strstr(o.reason, "NOAUTH"));
    dbfix_check_free(c);
}

static void bad_db_is_configuration(void **state)
{
    NEED_SERVER();
    struct check *c = rd_check("password: " RD_PASSWORD ", db: 999", 2000);
    struct observation o = probe(*state, c);
    assert_false(o.ok);
    assert_int_equal(o.type, FAULT_CONFIGURATION);
    assert_non_null(strstr(o.reason, "DB index is out of range"));
    dbfix_check_free(c);
}

static void closed_port_is_connection_refused(void **state)
{
    char yaml[128];
    snprintf(yaml, sizeof yaml, "{address: '127.0.0.1:%d'}", dbfix_free_port());
    struct check *c = dbfix_check_new("redis", yaml, 2000);
    struct observation o;
    dbfix_probe(*state, c, 0, &o, NULL);
    assert_false(o.ok);
    assert_int_equal(o.type, FAULT_NETWORK);
    assert_int_equal(o.severity, SEVERITY_HIGH);
    assert_string_equal(o.reason, "Connection refused"); /* told at once, not at the timeout */
    dbfix_check_free(c);
}

static void stopped_server_is_network_then_reconnects_after_restart(void **state)
{
    NEED_SERVER();
    struct check *c = rd_check("password: " RD_PASSWORD, 2000);
    probe_ok(*state, c);
    rd_stop();
    loopwait_idle(*state, 100); /* the kept connection may see the hang-up (either way: refused) */
    struct observation o = probe(*state, c);
    assert_false(o.ok);
    assert_int_equal(o.type, FAULT_NETWORK);
    assert_string_equal(o.reason, "Connection refused");
    assert_int_equal(rd_start(), 0);
    probe_ok(*state, c);
    dbfix_check_free(c);
}

static void restart_between_probes_is_not_a_failure(void **state)
{
    NEED_SERVER();
    struct check *c = rd_check("password: " RD_PASSWORD, 2000);
    probe_ok(*state, c);
    rd_stop();
    assert_int_equal(rd_start(), 0);
    probe_ok(*state, c);
    dbfix_check_free(c);
}

static void frozen_server_times_out_within_the_timeout(void **state)
{
    NEED_SERVER();
    struct check *c = rd_check("password: " RD_PASSWORD, 300);
    struct check *fresh = rd_check("password: " RD_PASSWORD, 300);
    struct observation o;
    uint64_t ms;
    /* Only the frozen probes get the short timeout: a healthy answer may
     * take longer than 300 ms on a busy host. */
    dbfix_check_timeout(c, 10000);
    probe_ok(*state, c);
    dbfix_check_timeout(c, 300);
    dbfix_freeze(rd.pid, true);
    /* Not before the timeout, on the loop's clock the probe's timer runs
     * on; and within it: reported before a mark due at twice the timeout,
     * armed at the same loop time (an order a late loop keeps). */
    assert_true(dbfix_probe(*state, c, 2 * 300, &o, &ms));
    assert_false(o.ok);
    assert_int_equal(o.type, FAULT_NETWORK);
    assert_string_equal(o.reason, "timeout after 300 ms");
    assert_true(ms >= 300);
    /* A new connection completes (the kernel accepts), AUTH never answers. */
    assert_true(dbfix_probe(*state, fresh, 2 * 300, &o, &ms));
    assert_false(o.ok);
    assert_string_equal(o.reason, "timeout after 300 ms");
    assert_true(ms >= 300);
    dbfix_freeze(rd.pid, false);
    dbfix_check_timeout(c, 10000);
    dbfix_check_timeout(fresh, 10000);
    probe_ok(*state, c);
    probe_ok(*state, fresh);
    dbfix_check_free(c);
    dbfix_check_free(fresh);
}

static void busy_script_is_software_medium(void **state)
{
    NEED_SERVER();
    char out[256];
    struct check *c = rd_check("password: " RD_PASSWORD, 2000);
    probe_ok(*state, c);
    /* A script that never ends: past busy-reply-threshold, others get BUSY. */
    dbfix_talk(rd.port, "AUTH " RD_PASSWORD "\r\nEVAL \"while true do end\" 0\r\n", NULL, out,
               sizeof out, 150);
    poll_until(rd_says("PING", "BUSY")); /* it runs, and long enough */
    struct observation o = probe(*state, c);
    assert_true(dbfix_talk(rd.port, "AUTH " RD_PASSWORD "\r\nSCRIPT KILL\r\n", "+OK\r\n+OK", out,
                           sizeof out, LOOPWAIT_MS) > 0);
    assert_non_null(strstr(out, "+OK\r\n+OK"));
    poll_until(rd_says("PING", "PONG")); /* the kill has landed */
    assert_false(o.ok);
    assert_int_equal(o.type, FAULT_SOFTWARE);
    assert_int_equal(o.severity, SEVERITY_MEDIUM);
    assert_non_null(strstr(o.reason, "BUSY"));
    probe_ok(*state, c);
    dbfix_check_free(c);
}

static void cancelled_probe_never_reports(void **state)
{
    NEED_SERVER();
    struct check *c = rd_check("password: " RD_PASSWORD, 2000);
    int before = dbfix_reports();
    assert_int_equal(c->ops->start(c), 0);
    assert_int_equal(c->ops->start(c), -EBUSY);
    c->ops->cancel(c);
    loopwait_idle(*state, 300); /* time for a report that must not come */
    assert_int_equal(dbfix_reports(), before);
    probe_ok(*state, c);
    dbfix_check_free(c);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(plugin_loads_hiredis_only_when_a_check_names_redis),
        T(validate_wants_an_address_and_one_password),
        T(probe_passes_with_the_password),
        T(probe_keeps_one_connection_across_probes),
        T(password_file_supplies_the_password),
        T(wrong_password_is_configuration_and_never_shown),
        T(missing_password_is_configuration),
        T(bad_db_is_configuration),
        T(closed_port_is_connection_refused),
        T(stopped_server_is_network_then_reconnects_after_restart),
        T(restart_between_probes_is_not_a_failure),
        T(frozen_server_times_out_within_the_timeout),
        T(busy_script_is_software_medium),
        T(cancelled_probe_never_reports),
    };
#undef T
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
