/* lib/program: real programs (sh, echo, yes, sleep) run in a private loop. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/clock.h"
#include "lib/program.h"
#include "lib/spawn.h"
#include "loopwait.h"
#include "procfs.h"

/* libuv's loop clock counts whole milliseconds (and is CLOCK_MONOTONIC_COARSE
 * where that ticks every ms or finer), so a timer may fire up to a couple of
 * ms before the precise clock that measures duration_ms says it is due. A
 * busy host only ever makes timers later. */
#define CLOCK_SLACK_MS 2

/* ---- fixture ---- */

struct fx {
    uv_loop_t loop;
    int calls;               /* cb invocations */
    bool in_run;             /* inside program_run: cb must not come from there */
    bool cb_during_run;      /* it did */
    struct program_result r; /* copy of the last result */
    char out[1 << 16];       /* copy of its output */
};

static void done_cb(const struct program_result *r, void *arg)
{
    struct fx *f = arg;
    f->calls++;
    f->cb_during_run |= f->in_run;
    f->r = *r;
    assert_true(r->output_len < sizeof f->out);
    memcpy(f->out, r->output, r->output_len + 1);
    assert_int_equal(r->output[r->output_len], '\0');
    f->r.output = f->out;
}

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

static struct program *fx_start(struct fx *f, char *const argv[], uint64_t timeout_ms,
                                size_t max_output)
{
    f->in_run = true;
    struct program *p = program_run(&f->loop, argv, NULL, NULL, timeout_ms, max_output, done_cb, f);
    f->in_run = false;
    assert_non_null(p);
    assert_int_equal(f->calls, 0);
    return p;
}

/* Run until the callback came; asserts exactly one call. */
static void fx_wait(struct fx *f)
{
    loopwait_until(&f->loop, f->calls > 0);
    assert_int_equal(f->calls, 1);
    assert_false(f->cb_during_run);
}

/* duration_ms is this run's: no longer than the test saw it take. */
static void assert_duration_within(const struct fx *f, uint64_t t0_us)
{
    assert_true(f->r.duration_ms <= (clock_mono_us() - t0_us) / 1000);
}

/* ---- tests ---- */

static void program_echo_output_is_captured(void **state)
{
    struct fx *f = *state;
    char *argv[] = {"/bin/echo", "hello", "world", NULL};
    uint64_t t0 = clock_mono_us();
    fx_start(f, argv, 5000, 4096);
    fx_wait(f);
    assert_int_equal(f->r.spawn_error, 0);
    assert_false(f->r.timed_out);
    assert_int_equal(f->r.signal, 0);
    assert_int_equal(f->r.exit_code, 0);
    assert_string_equal(f->r.output, "hello world\n");
    assert_int_equal(f->r.output_len, 12);
    assert_false(f->r.truncated);
    assert_duration_within(f, t0);
}

static void program_exit_code_and_stderr_are_reported(void **state)
{
    struct fx *f = *state;
    char *argv[] = {"sh", "-c", "echo out; echo err >&2; exit 3", NULL};
    fx_start(f, argv, 5000, 4096);
    fx_wait(f);
    assert_int_equal(f->r.exit_code, 3);
    assert_int_equal(f->r.signal, 0);
    assert_false(f->r.timed_out);
    assert_string_equal(f->r.output, "out\nerr\n");
}

static void program_killed_by_signal_reports_it(void **state)
{
    struct fx *f = *state;
    char *argv[] = {"/bin/sh", "-c", "kill -TERM $$; sleep 5", NULL};
    fx_start(f, argv, 5000, 4096);
    fx_wait(f);
    assert_int_equal(f->r.signal, SIGTERM);
    assert_false(f->r.timed_out);
    assert_int_equal(f->r.spawn_error, 0);
}

static void program_missing_binary_reports_enoent_from_loop(void **state)
{
    struct fx *f = *state;
    char *argv[] = {"/nonexistent/check_nothing", "-x", NULL};
    fx_start(f, argv, 5000, 4096);
    fx_wait(f);
    assert_int_equal(f->r.spawn_error, -ENOENT);
    assert_false(f->r.timed_out);
    assert_int_equal(f->r.output_len, 0);
    assert_string_equal(f->r.output, "");
}

/* A spawn error found while timers run (a check's probe started from its
 * timer) is reported after the loop polled, not in that timers phase
 * (lib/uvclock.h). */
struct in_timers {
    struct fx *f;
    uv_check_t polled;    /* runs after each poll for I/O */
    bool started;         /* the program was started */
    int calls_first_poll; /* reports seen at the first poll after; -1: none yet */
};

static void in_timers_polled_cb(uv_check_t *c)
{
    struct in_timers *it = c->data;
    if (it->started && it->calls_first_poll < 0)
        it->calls_first_poll = it->f->calls;
}

static void in_timers_start_cb(uv_timer_t *t)
{
    struct in_timers *it = t->data;
    char *argv[] = {"/nonexistent/check_nothing", NULL};
    fx_start(it->f, argv, 5000, 4096);
    it->started = true;
    uv_close((uv_handle_t *)t, NULL);
}

static void program_spawn_error_found_while_timers_run_is_reported_after_a_poll(void **state)
{
    struct fx *f = *state;
    struct in_timers it = {.f = f, .calls_first_poll = -1};
    uv_timer_t t;
    uv_check_init(&f->loop, &it.polled);
    it.polled.data = &it;
    uv_check_start(&it.polled, in_timers_polled_cb);
    uv_unref((uv_handle_t *)&it.polled);
    uv_timer_init(&f->loop, &t);
    t.data = &it;
    uv_timer_start(&t, in_timers_start_cb, 0, 0);
    fx_wait(f);
    uv_close((uv_handle_t *)&it.polled, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(f->r.spawn_error, -ENOENT);
    assert_int_equal(it.calls_first_poll, 0);
}

static void program_missing_in_path_reports_enoent(void **state)
{
    struct fx *f = *state;
    char *argv[] = {"recoverd-no-such-program", NULL};
    fx_start(f, argv, 5000, 4096);
    fx_wait(f);
    assert_int_equal(f->r.spawn_error, -ENOENT);
}

static void program_timeout_kills_the_whole_group(void **state)
{
    struct fx *f = *state;
    /* The shell prints its background sleep's pid, then waits for it; the
     * sleep outlives any wait here: only the group kill can end it. */
    char *argv[] = {"/bin/sh", "-c", "sleep 1000 & echo $!; wait", NULL};
    uint64_t t0 = clock_mono_us();
    fx_start(f, argv, 200, 4096);
    fx_wait(f);
    assert_true(f->r.timed_out);
    assert_int_equal(f->r.signal, SIGKILL);
    assert_true(f->r.duration_ms >= 200 - CLOCK_SLACK_MS);
    assert_duration_within(f, t0);
    pid_t sleeper = (pid_t)atoi(f->r.output);
    assert_true(sleeper > 1);
    assert_true(procfs_dies(sleeper));
}

static void program_plain_sleep_times_out(void **state)
{
    struct fx *f = *state;
    char *argv[] = {"/bin/sh", "-c", "sleep 1000", NULL};
    uint64_t t0 = clock_mono_us();
    fx_start(f, argv, 200, 4096);
    fx_wait(f);
    assert_true(f->r.timed_out);
    assert_true(f->r.duration_ms >= 200 - CLOCK_SLACK_MS);
    assert_duration_within(f, t0);
}

static uint64_t tick_last_us, tick_max_gap_us;
static unsigned ticks;
static void tick_cb(uv_timer_t *t)
{
    uint64_t now = clock_mono_us();
    if (tick_last_us && now - tick_last_us > tick_max_gap_us)
        tick_max_gap_us = now - tick_last_us;
    tick_last_us = now;
    ticks++;
}

static void program_output_flood_is_truncated_and_bounded(void **state)
{
    struct fx *f = *state;
    uv_timer_t tick;
    char *argv[] = {"yes", "flood", NULL};
    uv_timer_init(&f->loop, &tick);
    tick_last_us = tick_max_gap_us = 0;
    ticks = 0;
    uv_timer_start(&tick, tick_cb, 5, 5);
    uint64_t t0 = clock_mono_us();
    fx_start(f, argv, 300, 1000);
    fx_wait(f);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT); /* tick lives on this stack */
    assert_true(f->r.timed_out);
    assert_true(f->r.truncated);
    assert_int_equal(f->r.output_len, 1000);
    assert_int_equal(strlen(f->r.output), 1000);
    assert_memory_equal(f->r.output, "flood\nflood\n", 12);
    assert_true(f->r.duration_ms >= 300 - CLOCK_SLACK_MS);
    assert_duration_within(f, t0);
    /* The loop kept turning, and running other timers, while the pipe was
     * drained (how promptly is a figure for a benchmark, not a verdict). */
    print_message("flood: %u ticks of 5 ms, longest gap %llu ms, over %llu ms\n", ticks,
                  (unsigned long long)tick_max_gap_us / 1000, (unsigned long long)f->r.duration_ms);
    assert_true(ticks >= 2);
}

static void program_zero_max_output_keeps_nothing(void **state)
{
    struct fx *f = *state;
    char *argv[] = {"/bin/echo", "x", NULL};
    fx_start(f, argv, 5000, 0);
    fx_wait(f);
    assert_int_equal(f->r.output_len, 0);
    assert_string_equal(f->r.output, "");
    assert_true(f->r.truncated);
    assert_int_equal(f->r.exit_code, 0);
}

static void program_grandchild_holding_pipe_does_not_delay(void **state)
{
    struct fx *f = *state;
    /* The sleep would hold the pipe open for longer than any wait here:
     * the program finishing at all shows that its end is not awaited. */
    char *argv[] = {"/bin/sh", "-c", "sleep 1000 & echo $!", NULL};
    uint64_t t0 = clock_mono_us();
    fx_start(f, argv, 10000, 4096);
    fx_wait(f);
    uint64_t took_ms = (clock_mono_us() - t0) / 1000;
    assert_false(f->r.timed_out);
    assert_int_equal(f->r.exit_code, 0);
    assert_int_equal(f->r.signal, 0);
    assert_true(took_ms >= 100 - CLOCK_SLACK_MS); /* the linger */
    pid_t sleeper = (pid_t)atoi(f->r.output);
    assert_true(sleeper > 1);
    assert_true(procfs_dies(sleeper));
}

static void program_cancel_in_flight_calls_nothing(void **state)
{
    struct fx *f = *state;
    char path[64];
    snprintf(path, sizeof path, "/tmp/test_program.%d.pid", (int)getpid());
    unlink(path);
    char script[256];
    snprintf(script, sizeof script, "echo $$ > %s.tmp && mv %s.tmp %s; exec sleep 1000", path, path,
             path);
    char *argv[] = {"/bin/sh", "-c", script, NULL};
    struct program *p = fx_start(f, argv, 10000, 4096);
    FILE *fp = NULL;
    loopwait_until(&f->loop, (fp = fopen(path, "r")) != NULL);
    int pid = 0;
    assert_int_equal(fscanf(fp, "%d", &pid), 1);
    fclose(fp);
    unlink(path);
    assert_true(procfs_alive(pid));
    program_cancel(p);
    assert_true(procfs_dies(pid));
    loopwait_idle(&f->loop, 200); /* time for a callback that must not come */
    assert_int_equal(f->calls, 0);
}

static void program_cancel_at_once_and_after_spawn_error(void **state)
{
    struct fx *f = *state;
    char *sleep_argv[] = {"sleep", "10", NULL};
    char *bad_argv[] = {"/nonexistent/x", NULL};
    program_cancel(fx_start(f, sleep_argv, 10000, 4096));
    program_cancel(fx_start(f, bad_argv, 10000, 4096));
    program_cancel(NULL);
    loopwait_idle(&f->loop, 300); /* time for a callback that must not come */
    assert_int_equal(f->calls, 0);
}

static void cancel_inside_cb(const struct program_result *r, void *arg)
{
    struct program **pp = arg;
    program_cancel(*pp); /* documented as a no-op here */
    *pp = NULL;
}

static void program_cancel_inside_callback_is_noop(void **state)
{
    struct fx *f = *state;
    char *argv[] = {"/bin/true", NULL};
    struct program *p = program_run(&f->loop, argv, NULL, NULL, 5000, 64, cancel_inside_cb, &p);
    assert_non_null(p);
    loopwait_until(&f->loop, p == NULL);
}

static void program_env_and_cwd_are_applied(void **state)
{
    struct fx *f = *state;
    char *argv[] = {"/bin/sh", "-c", "echo \"$GREETING\"; pwd", NULL};
    char *envp[] = {"GREETING=hi there", "PATH=/usr/bin:/bin", NULL};
    f->in_run = true;
    assert_non_null(program_run(&f->loop, argv, envp, "/tmp", 5000, 4096, done_cb, f));
    f->in_run = false;
    fx_wait(f);
    assert_string_equal(f->r.output, "hi there\n/tmp\n");
}

/* A service's programs run as its user; one whose user could not be
 * resolved is a spawn error reported from the loop, and runs nothing. */
static void program_runs_with_the_credentials_given(void **state)
{
    struct fx *f = *state;
    char *argv[] = {"/bin/sh", "-c", "id -u; id -g; umask", NULL};
    struct spawn_cred c = {.set_ids = geteuid() == 0,
                           .uid = 65534,
                           .gid = 65534,
                           .set_umask = true,
                           .umask = 077};
    assert_non_null(program_run_as(&f->loop, argv, NULL, NULL, &c, 5000, 4096, done_cb, f));
    fx_wait(f);
    char want[64];
    snprintf(want, sizeof want, "%u\n%u\n0077\n", geteuid() == 0 ? 65534 : (unsigned)geteuid(),
             geteuid() == 0 ? 65534 : (unsigned)getegid());
    assert_string_equal(f->r.output, want);

    struct spawn_cred unknown = {.error = -ENOENT};
    f->calls = 0;
    f->in_run = true;
    assert_non_null(program_run_as(&f->loop, argv, NULL, NULL, &unknown, 5000, 64, done_cb, f));
    f->in_run = false;
    fx_wait(f);
    assert_false(f->cb_during_run);
    assert_int_equal(f->r.spawn_error, -ENOENT);
    assert_int_equal(f->r.output_len, 0);
}

static void program_many_in_parallel_each_report_once(void **state)
{
    struct fx *f = *state;
    char *argv[] = {"/bin/sh", "-c", "exit 1", NULL};
    for (int i = 0; i < 20; i++)
        assert_non_null(program_run(&f->loop, argv, NULL, NULL, 5000, 64, done_cb, f));
    loopwait_until(&f->loop, f->calls >= 20);
    assert_int_equal(f->calls, 20);
    assert_int_equal(f->r.exit_code, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)
        T(program_echo_output_is_captured),
        T(program_exit_code_and_stderr_are_reported),
        T(program_killed_by_signal_reports_it),
        T(program_missing_binary_reports_enoent_from_loop),
        T(program_spawn_error_found_while_timers_run_is_reported_after_a_poll),
        T(program_missing_in_path_reports_enoent),
        T(program_timeout_kills_the_whole_group),
        T(program_plain_sleep_times_out),
        T(program_output_flood_is_truncated_and_bounded),
        T(program_zero_max_output_keeps_nothing),
        T(program_grandchild_holding_pipe_does_not_delay),
        T(program_cancel_in_flight_calls_nothing),
        T(program_cancel_at_once_and_after_spawn_error),
        T(program_cancel_inside_callback_is_noop),
        T(program_env_and_cwd_are_applied),
        T(program_runs_with_the_credentials_given),
        T(program_many_in_parallel_each_report_once),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
