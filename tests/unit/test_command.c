/* The command detector: shell one-liners speaking the Nagios plugin API,
 * and Debian's real monitoring plugins where installed. */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "detect/command.h"
#include "detect/detector.h"
#include "detect/kinds.h"
#include "loopwait.h"
#include "procfs.h"

#define PLUGINS "/usr/lib/nagios/plugins"

/* ---- the fake of detect/check.c ---- */

#define GOT_MAX 16

/* The real check kinds; every strategy counts as implemented, without
 * params (this test reads checks, not chains), and nothing of recover/ is
 * linked. */
static int test_strategy_kind(int st, struct cfg_strategy *out)
{
    *out = (struct cfg_strategy){0};
    return st >= 0 ? 0 : -ENOENT;
}
static const struct cfg_registry test_registry = {detector_cfg_kind, test_strategy_kind};

static struct observation got[GOT_MAX]; /* reports in arrival order */
static int n_got;
static void (*report_hook)(struct check *c); /* run inside check_report */

void check_report(struct check *c, struct observation *obs)
{
    assert_true(n_got < GOT_MAX);
    got[n_got++] = *obs;
    if (report_hook)
        report_hook(c);
}

/* ---- fixture ---- */

struct fx {
    uv_loop_t loop;
    struct check c;
    struct check_cfg cfg;
    struct command_params cp;
    char *argv[16]; /* what cp.argv points to */
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(command_detector.init(&f->loop), 0);
    f->cp.argv = f->argv;
    f->cfg.name = "command";
    f->cfg.ops = &command_detector;
    f->cfg.params = &f->cp;
    f->cfg.timeout_ms = 5000;
    f->cfg.severity = -1;
    f->cfg.type = -1;
    f->cfg.impact = -1;
    f->c.cfg = &f->cfg;
    f->c.ops = &command_detector;
    n_got = 0;
    report_hook = NULL;
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    command_detector.release(&f->c);
    command_detector.shutdown();
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

/* argv for the next probe; NULL-terminated list of strings. */
static void fx_argv(struct fx *f, ...)
{
    va_list ap;
    int i = 0;
    va_start(ap, f);
    while ((f->argv[i] = va_arg(ap, char *)))
        assert_true(++i < 15);
    va_end(ap);
}

static void fx_sh(struct fx *f, const char *script)
{
    fx_argv(f, "/bin/sh", "-c", script, NULL);
}

/* One probe; asserts it did not report from inside start. */
static const struct observation *fx_probe(struct fx *f)
{
    int before = n_got;
    assert_int_equal(command_detector.start(&f->c), 0);
    assert_int_equal(n_got, before);
    assert_non_null(f->c.priv);
    loopwait_until(&f->loop, n_got > before);
    assert_int_equal(n_got, before + 1);
    assert_null(f->c.priv);
    return &got[before];
}

static void need_plugin(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, PLUGINS "/%s", name);
    if (access(path, X_OK) != 0) {
        fprintf(stderr, "  %s absent (apt-get install monitoring-plugins-basic): skipped\n", path);
        skip();
    }
}

/* ---- the Nagios exit codes, with shell one-liners ---- */

static void command_exit_0_is_ok_and_drops_perfdata(void **state)
{
    struct fx *f = *state;
    fx_sh(f, "echo 'DISK OK - free space | /=1MB'; echo 'long text'; exit 0");
    const struct observation *o = fx_probe(f);
    assert_true(o->ok);
    assert_int_equal(o->code, 0);
    assert_string_equal(o->reason, "DISK OK - free space");
}

static void command_exit_1_warning_passes_but_says_so(void **state)
{
    struct fx *f = *state;
    fx_sh(f, "echo 'DISK WARNING - free space | /=1MB'; exit 1");
    const struct observation *o = fx_probe(f);
    assert_true(o->ok);
    assert_int_equal(o->code, 1);
    assert_string_equal(o->reason, "WARNING: DISK WARNING - free space");
}

static void command_exit_2_critical_is_configured_type_high(void **state)
{
    struct fx *f = *state;
    f->cfg.type = FAULT_RESOURCE;
    fx_sh(f, "echo 'DISK CRITICAL - free space | /=1MB'; exit 2");
    const struct observation *o = fx_probe(f);
    assert_false(o->ok);
    assert_int_equal(o->code, 2);
    assert_int_equal(o->type, FAULT_RESOURCE);
    assert_int_equal(o->severity, SEVERITY_HIGH);
    assert_string_equal(o->reason, "DISK CRITICAL - free space");
}

static void command_critical_type_defaults_to_software(void **state)
{
    struct fx *f = *state;
    fx_sh(f, "echo 'PROCS CRITICAL'; exit 2");
    const struct observation *o = fx_probe(f);
    assert_false(o->ok);
    assert_int_equal(o->type, FAULT_SOFTWARE);
}

static void command_exit_3_unknown_is_medium(void **state)
{
    struct fx *f = *state;
    f->cfg.type = FAULT_NETWORK;
    fx_sh(f, "echo 'DISK UNKNOWN - cannot stat | /=1MB'; exit 3");
    const struct observation *o = fx_probe(f);
    assert_false(o->ok);
    assert_int_equal(o->code, 3);
    assert_int_equal(o->type, FAULT_NETWORK);
    assert_int_equal(o->severity, SEVERITY_MEDIUM);
    assert_string_equal(o->reason, "DISK UNKNOWN - cannot stat");
}

static void command_other_exit_code_is_unknown_medium(void **state)
{
    struct fx *f = *state;
    fx_sh(f, "echo '  spaced out  '; exit 42");
    const struct observation *o = fx_probe(f);
    assert_false(o->ok);
    assert_int_equal(o->code, 42);
    assert_int_equal(o->severity, SEVERITY_MEDIUM);
    assert_string_equal(o->reason, "spaced out");
}

static void command_no_output_says_exit_code(void **state)
{
    struct fx *f = *state;
    fx_sh(f, "exit 2");
    const struct observation *o = fx_probe(f);
    assert_false(o->ok);
    assert_string_equal(o->reason, "exit code 2");
    fx_sh(f, "echo '| only=perfdata'; exit 0");
    o = fx_probe(f);
    assert_true(o->ok);
    assert_string_equal(o->reason, "exit code 0");
}

static void command_long_line_is_trimmed_to_fit(void **state)
{
    struct fx *f = *state;
    fx_sh(f, "printf 'CRITICAL '; yes x | head -c 5000 | tr -d '\\n'; exit 2");
    const struct observation *o = fx_probe(f);
    assert_false(o->ok);
    assert_int_equal(strlen(o->reason), sizeof o->reason - 1);
    assert_memory_equal(o->reason, "CRITICAL xxx", 12);
    assert_string_equal(o->reason + sizeof o->reason - 5, "x..."); /* cut, and says so */
}

static void command_stderr_counts_as_output(void **state)
{
    struct fx *f = *state;
    fx_sh(f, "echo 'CRITICAL - from stderr' >&2; exit 2");
    assert_string_equal(fx_probe(f)->reason, "CRITICAL - from stderr");
}

static void command_killed_by_signal_is_unknown(void **state)
{
    struct fx *f = *state;
    fx_sh(f, "kill -TERM $$");
    const struct observation *o = fx_probe(f);
    assert_false(o->ok);
    assert_int_equal(o->severity, SEVERITY_MEDIUM);
    assert_int_equal(o->code, -1);
    assert_string_equal(o->reason, "killed by signal 15 (SIGTERM)");
}

/* ---- timeouts, broken checks, cancel ---- */

static void command_timeout_kills_the_group(void **state)
{
    struct fx *f = *state;
    char path[64], script[256];
    snprintf(path, sizeof path, "/tmp/test_command.%d.pid", (int)getpid());
    unlink(path);
    /* The sleep outlives any wait here: only the group kill can end it. */
    snprintf(script, sizeof script, "sleep 1000 & echo $! > %s; wait", path);
    fx_sh(f, script);
    f->cfg.timeout_ms = 200;
    /* Measured on the loop's clock, the one the timeout timer runs on. */
    uv_update_time(&f->loop);
    uint64_t t0 = uv_now(&f->loop);
    const struct observation *o = fx_probe(f);
    assert_false(o->ok);
    assert_int_equal(o->severity, SEVERITY_MEDIUM);
    assert_int_equal(o->type, FAULT_SOFTWARE);
    assert_int_equal(o->code, -1);
    assert_string_equal(o->reason, "timeout after 200 ms");
    assert_true(uv_now(&f->loop) - t0 >= 200); /* not before the timeout */
    FILE *fp = fopen(path, "r");
    int pid = 0;
    assert_non_null(fp);
    assert_int_equal(fscanf(fp, "%d", &pid), 1);
    fclose(fp);
    unlink(path);
    assert_true(pid > 1);
    assert_true(procfs_dies(pid));
}

static void command_missing_binary_is_configuration_high(void **state)
{
    struct fx *f = *state;
    f->cfg.type = FAULT_RESOURCE;
    fx_argv(f, "/usr/lib/nagios/plugins/check_nonexistent", "-w", "1", NULL);
    const struct observation *o = fx_probe(f);
    assert_false(o->ok);
    assert_int_equal(o->type, FAULT_CONFIGURATION);
    assert_int_equal(o->severity, SEVERITY_HIGH);
    assert_string_equal(o->reason, "cannot start /usr/lib/nagios/plugins/check_nonexistent: "
                                   "No such file or directory");
}

static void command_cancel_reports_nothing(void **state)
{
    struct fx *f = *state;
    fx_argv(f, "sleep", "10", NULL);
    assert_int_equal(command_detector.start(&f->c), 0);
    assert_int_equal(command_detector.start(&f->c), -EBUSY);
    loopwait_idle(&f->loop, 30); /* under way, or not yet: either is a cancel */
    command_detector.cancel(&f->c);
    assert_null(f->c.priv);
    command_detector.cancel(&f->c); /* twice is harmless */
    assert_int_equal(command_detector.start(&f->c), 0);
    command_detector.release(&f->c);
    loopwait_idle(&f->loop, 200); /* time for a report that must not come */
    assert_int_equal(n_got, 0);
}

static void restart_hook(struct check *c)
{
    if (n_got < 3)
        assert_int_equal(command_detector.start(c), 0);
}

static void command_start_from_inside_report_runs_next_probe(void **state)
{
    struct fx *f = *state;
    report_hook = restart_hook;
    fx_sh(f, "echo 'OK - again'");
    assert_int_equal(command_detector.start(&f->c), 0);
    loopwait_until(&f->loop, n_got >= 3);
    assert_int_equal(n_got, 3);
    for (int i = 0; i < 3; i++)
        assert_string_equal(got[i].reason, "OK - again");
    assert_null(f->c.priv);
}

/* ---- the YAML ---- */

static void command_yaml_reads_argv_and_check_keys(void **state)
{
    static const char yaml[] =
        "services:\n"
        "  db:\n"
        "    command: [./x]\n"
        "    checks:\n"
        "      - command: { argv: [\"" PLUGINS "/check_disk\", \"-w\", \"10%\", \"-p\", \"/\"],\n"
        "                   interval: 30s, timeout: 10s, type: resource, severity: high }\n";
    struct cfg_err err;
    struct config *c = config_load_string("t.yaml", yaml, sizeof yaml - 1, &test_registry, &err);
    if (!c)
        fail_msg("%s:%d:%d: %s", err.file, err.line, err.col, err.msg);
    const struct check_cfg *k = &c->services[0].checks[0];
    const struct command_params *cp = k->params;
    assert_ptr_equal(k->ops, &command_detector);
    assert_string_equal(k->name, "command");
    assert_string_equal(cp->argv[0], PLUGINS "/check_disk");
    assert_string_equal(cp->argv[4], "/");
    assert_null(cp->argv[5]);
    assert_int_equal(k->interval_ms, 30000);
    assert_int_equal(k->timeout_ms, 10000);
    assert_int_equal(k->type, FAULT_RESOURCE);
    assert_int_equal(k->severity, SEVERITY_HIGH);
    config_free(c);
}

static void command_yaml_requires_argv(void **state)
{
    static const char yaml[] = "services:\n  db:\n    command: [./x]\n"
                               "    checks:\n      - command: { timeout: 1s }\n";
    struct cfg_err err;
    struct config *c = config_load_string("t.yaml", yaml, sizeof yaml - 1, &test_registry, &err);
    assert_null(c);
    assert_non_null(strstr(err.msg, "argv"));
}

/* ---- Debian's monitoring-plugins ---- */

static void command_check_dummy_critical_says_boom(void **state)
{
    struct fx *f = *state;
    need_plugin("check_dummy");
    fx_argv(f, PLUGINS "/check_dummy", "2", "boom", NULL);
    const struct observation *o = fx_probe(f);
    assert_false(o->ok);
    assert_int_equal(o->code, 2);
    assert_int_equal(o->severity, SEVERITY_HIGH);
    assert_non_null(strstr(o->reason, "boom"));
    fx_argv(f, PLUGINS "/check_dummy", "1", "meh", NULL);
    o = fx_probe(f);
    assert_true(o->ok);
    assert_string_equal(o->reason, "WARNING: WARNING: meh");
}

static void command_check_disk_ok_and_critical(void **state)
{
    struct fx *f = *state;
    need_plugin("check_disk");
    /* Thresholds are free space: 0% never alerts, 100% always does. */
    fx_argv(f, PLUGINS "/check_disk", "-w", "0%", "-c", "0%", "-p", "/", NULL);
    const struct observation *o = fx_probe(f);
    assert_true(o->ok);
    assert_int_equal(o->code, 0);
    assert_memory_equal(o->reason, "DISK OK", 7);
    assert_null(strchr(o->reason, '|'));
    fx_argv(f, PLUGINS "/check_disk", "-w", "100%", "-c", "100%", "-p", "/", NULL);
    o = fx_probe(f);
    assert_false(o->ok);
    assert_int_equal(o->code, 2);
    assert_memory_equal(o->reason, "DISK CRITICAL", 13);
    assert_null(strchr(o->reason, '|'));
}

static void command_check_tcp_against_a_listener(void **state)
{
    struct fx *f = *state;
    need_plugin("check_tcp");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(l, (struct sockaddr *)&a, len), 0);
    assert_int_equal(listen(l, 16), 0); /* the kernel completes the handshake */
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &len), 0);
    char port[16];
    snprintf(port, sizeof port, "%d", ntohs(a.sin_port));
    fx_argv(f, PLUGINS "/check_tcp", "-H", "127.0.0.1", "-p", port, NULL);
    const struct observation *o = fx_probe(f);
    assert_true(o->ok);
    assert_memory_equal(o->reason, "TCP OK", 6);
    close(l);
    o = fx_probe(f); /* same port, nobody listening */
    assert_false(o->ok);
    assert_int_equal(o->code, 2);
    assert_non_null(strstr(o->reason, "Connection refused"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)
        T(command_exit_0_is_ok_and_drops_perfdata),
        T(command_exit_1_warning_passes_but_says_so),
        T(command_exit_2_critical_is_configured_type_high),
        T(command_critical_type_defaults_to_software),
        T(command_exit_3_unknown_is_medium),
        T(command_other_exit_code_is_unknown_medium),
        T(command_no_output_says_exit_code),
        T(command_long_line_is_trimmed_to_fit),
        T(command_stderr_counts_as_output),
        T(command_killed_by_signal_is_unknown),
        T(command_timeout_kills_the_group),
        T(command_missing_binary_is_configuration_high),
        T(command_cancel_reports_nothing),
        T(command_start_from_inside_report_runs_next_probe),
        cmocka_unit_test(command_yaml_reads_argv_and_check_keys),
        cmocka_unit_test(command_yaml_requires_argv),
        T(command_check_dummy_critical_says_boom),
        T(command_check_disk_ok_and_critical),
        T(command_check_tcp_against_a_listener),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
