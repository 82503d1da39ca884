/* daemon/loopwatch: the stall gauge's arithmetic on given times, and on a
 * real loop: a callback that busy-waits a known time is a stall of at least
 * that long, a wait for a timer is none. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <uv.h>

#include "daemon/loopwatch.h"
#include "lib/clock.h"
#include "loopwait.h"

#define MS 1000000ull

#define HOLD_MS 30  /* how long the busy callback holds the loop */
#define WAIT_MS 300 /* how long the loop waits for a timer, idle */

struct fx {
    uv_loop_t loop;
    struct loopwatch w;
    uv_timer_t hold; /* busy-waits HOLD_MS when it fires */
    bool held;       /* hold ran */
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(loopwatch_init(&f->w, &f->loop), 0);
    uv_timer_init(&f->loop, &f->hold);
    f->hold.data = f;
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    loopwatch_close(&f->w);
    uv_close((uv_handle_t *)&f->hold, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0); /* nothing left open */
    free(f);
    return 0;
}

static void loopwatch_counts_busy_time_less_the_wait_and_stalls_over_5ms(void **state)
{
    struct fx *f = *state;
    uint64_t since = f->w.since_ms;
    assert_true(since > 0 && since <= clock_wall_ms());
    f->w.turn_ns = 1000 * MS;
    f->w.idle_ns = 0;
    /* 20 ms, 17 of them waiting: 3 busy. */
    assert_int_equal(loopwatch_turn(&f->w, 1020 * MS, 17 * MS), 3 * MS);
    assert_int_equal(f->w.max_busy_ns, 3 * MS);
    assert_int_equal(f->w.stalls, 0);
    /* 5 ms busy exactly: not over. */
    assert_int_equal(loopwatch_turn(&f->w, 1030 * MS, 22 * MS), LOOPWATCH_STALL_NS);
    assert_int_equal(f->w.stalls, 0);
    assert_int_equal(loopwatch_turn(&f->w, 1035 * MS + 1, 22 * MS), LOOPWATCH_STALL_NS + 1);
    assert_int_equal(f->w.stalls, 1);
    /* A wait only: no time busy (and never below zero). */
    assert_int_equal(loopwatch_turn(&f->w, 1100 * MS, 88 * MS), 0);
    assert_int_equal(loopwatch_turn(&f->w, 1142 * MS, 88 * MS), 42 * MS);
    assert_int_equal(f->w.stalls, 2);
    /* A shorter turn after a longer one leaves the maximum alone. */
    assert_int_equal(loopwatch_turn(&f->w, 1144 * MS, 88 * MS), 2 * MS);
    assert_int_equal(f->w.max_busy_ns, 42 * MS);
    assert_int_equal(f->w.stalls, 2);
    assert_int_equal(f->w.since_ms, since);
}

/* A mark starts a span's own maximum; the overall one stays. */
static void loopwatch_mark_starts_a_span(void **state)
{
    struct fx *f = *state;
    f->w.turn_ns = 1000 * MS;
    f->w.idle_ns = 0;
    loopwatch_turn(&f->w, 1040 * MS, 0); /* 40 ms busy */
    assert_int_equal(f->w.mark_max_ns, 40 * MS);
    loopwatch_mark(&f->w);
    assert_int_equal(f->w.mark_max_ns, 0);
    loopwatch_turn(&f->w, 1043 * MS, 0); /* 3 ms */
    loopwatch_turn(&f->w, 1050 * MS, 0); /* 7 ms */
    loopwatch_turn(&f->w, 1052 * MS, 0); /* 2 ms */
    assert_int_equal(f->w.mark_max_ns, 7 * MS);
    assert_int_equal(f->w.max_busy_ns, 40 * MS);
}

/* A turn of a second or more is to be logged, at most once in ten
 * seconds; the next line counts the ones held back meanwhile. */
static void loopwatch_warns_of_a_held_loop_once_in_ten_seconds(void **state)
{
    struct fx *f = *state;
    uint64_t more = 99, t = 5000 * MS;
    assert_false(loopwatch_warn_due(&f->w, t, LOOPWATCH_WARN_NS - 1, &more));
    assert_true(loopwatch_warn_due(&f->w, t, LOOPWATCH_WARN_NS, &more));
    assert_int_equal(more, 0);
    assert_false(loopwatch_warn_due(&f->w, t + 2000 * MS, 7000 * MS, &more));
    assert_false(loopwatch_warn_due(&f->w, t + 9000 * MS, 1500 * MS, &more));
    assert_false(loopwatch_warn_due(&f->w, t + 9500 * MS, 900 * MS, &more)); /* not long */
    assert_true(loopwatch_warn_due(&f->w, t + 10000 * MS, 1200 * MS, &more));
    assert_int_equal(more, 2);
    assert_true(loopwatch_warn_due(&f->w, t + 20000 * MS, 1000 * MS, &more));
    assert_int_equal(more, 0);
}

static void hold_cb(uv_timer_t *t)
{
    struct fx *f = t->data;
    uint64_t until = uv_hrtime() + HOLD_MS * MS;
    while (uv_hrtime() < until)
        ;
    f->held = true;
}

/* The loop waits WAIT_MS for the timer (idle, not a stall), then the
 * callback holds it HOLD_MS within one turn: a stall at least that long,
 * however busy the host; and less than the wait, which is not counted. */
static void loopwatch_sees_a_callback_that_holds_the_loop(void **state)
{
    struct fx *f = *state;
    loopwatch_start(&f->w);
    uv_update_time(&f->loop);
    uv_timer_start(&f->hold, hold_cb, WAIT_MS, 0);
    uv_run(&f->loop, UV_RUN_ONCE); /* waits, then holds */
    if (!f->held)
        loopwait_until(&f->loop, f->held);
    uv_run(&f->loop, UV_RUN_NOWAIT); /* the turn after: its prepare ends the held one */
    assert_true(f->w.stalls >= 1);
    assert_true(f->w.max_busy_ns >= HOLD_MS * MS);
    assert_true(f->w.max_busy_ns < WAIT_MS * MS);
}

/* While marking, a turn's CPU time is counted too: a callback that spins
 * used the CPU (some of its span, on a shared host); after the unmark,
 * turns no longer count. */
static void loopwatch_mark_counts_cpu_time_per_turn(void **state)
{
    struct fx *f = *state;
    loopwatch_start(&f->w);
    loopwatch_mark(&f->w);
    uv_update_time(&f->loop);
    uv_timer_start(&f->hold, hold_cb, 0, 0);
    loopwait_until(&f->loop, f->held);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    uint64_t cpu = f->w.mark_max_cpu_ns;
    assert_true(cpu > 0);
    assert_true(f->w.mark_max_ns >= HOLD_MS * MS);
    loopwatch_unmark(&f->w);
    f->held = false;
    uv_update_time(&f->loop);
    uv_timer_start(&f->hold, hold_cb, 0, 0);
    loopwait_until(&f->loop, f->held);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->w.mark_max_cpu_ns, cpu);
}

static void hold_async_cb(uv_async_t *a)
{
    struct fx *f = a->data;
    hold_cb(&f->hold);
}

/* The longest turn is split where it went: a timer that holds the loop
 * counts as timers, an I/O callback (an async wake) as I/O, and the
 * journal's commit, as the daemon reports it, apart from both. */
static void loopwatch_splits_the_longest_turn_by_phase(void **state)
{
    struct fx *f = *state;
    loopwatch_start(&f->w);
    uv_update_time(&f->loop);
    uv_timer_start(&f->hold, hold_cb, 0, 0);
    loopwait_until(&f->loop, f->held);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_true(f->w.max_split.timers_ns >= HOLD_MS * MS);
    assert_true(f->w.max_split.io_ns < HOLD_MS * MS);

    uv_async_t wake;
    uv_async_init(&f->loop, &wake, hold_async_cb);
    wake.data = f;
    f->held = false;
    f->w.max_busy_ns = 0;
    uv_async_send(&wake);
    loopwait_until(&f->loop, f->held);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_true(f->w.max_split.io_ns >= HOLD_MS * MS);
    assert_true(f->w.max_split.timers_ns < HOLD_MS * MS);
    uv_close((uv_handle_t *)&wake, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT); /* its close, while wake is in scope */

    f->w.io_ns = 2 * MS;
    f->w.flush_ns = 0;
    loopwatch_flushed(&f->w, 3 * MS);
    loopwatch_flushed(&f->w, 1 * MS);
    struct loopwatch_split s = loopwatch_split(&f->w, 10 * MS);
    assert_int_equal(s.io_ns, 2 * MS);
    assert_int_equal(s.flush_ns, 4 * MS);
    assert_int_equal(s.timers_ns, 4 * MS);
    s = loopwatch_split(&f->w, 1 * MS); /* never more than the turn */
    assert_int_equal(s.io_ns + s.flush_ns + s.timers_ns, 1 * MS);
}

/* Before loopwatch_start, turns are not counted. */
static void loopwatch_counts_nothing_before_its_start(void **state)
{
    struct fx *f = *state;
    uv_update_time(&f->loop);
    uv_timer_start(&f->hold, hold_cb, 0, 0);
    loopwait_until(&f->loop, f->held);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->w.stalls, 0);
    assert_int_equal(f->w.max_busy_ns, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            loopwatch_counts_busy_time_less_the_wait_and_stalls_over_5ms, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(loopwatch_warns_of_a_held_loop_once_in_ten_seconds,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(loopwatch_mark_starts_a_span, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(loopwatch_mark_counts_cpu_time_per_turn, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(loopwatch_sees_a_callback_that_holds_the_loop, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(loopwatch_counts_nothing_before_its_start, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(loopwatch_splits_the_longest_turn_by_phase, fx_setup,
                                        fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
