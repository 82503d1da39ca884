/* daemon/loopwatch: the stall gauge's arithmetic on given times, and on a
 * real loop held by a callback that busy-waits a known time. */
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

/* How long the busy callback holds the loop: three periods, so a tick
 * falls due while it runs whatever the phase, and waits at least two. */
#define HOLD_MS (3 * LOOPWATCH_PERIOD_MS)

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
    loopwatch_init(&f->w, &f->loop);
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

static void loopwatch_counts_lateness_past_due_and_stalls_over_5ms(void **state)
{
    struct fx *f = *state;
    uint64_t since = f->w.since_ms;
    assert_true(since > 0 && since <= clock_wall_ms());
    f->w.due_ns = 1000 * MS;
    assert_int_equal(loopwatch_tick(&f->w, 999 * MS), 0); /* early: libuv's whole ms */
    assert_int_equal(f->w.max_late_ns, 0);
    assert_int_equal(loopwatch_tick(&f->w, 1003 * MS), 3 * MS);
    assert_int_equal(f->w.max_late_ns, 3 * MS);
    assert_int_equal(f->w.stalls, 0);
    assert_int_equal(loopwatch_tick(&f->w, 1005 * MS), LOOPWATCH_STALL_NS); /* at, not over */
    assert_int_equal(f->w.stalls, 0);
    assert_int_equal(loopwatch_tick(&f->w, 1005 * MS + 1), LOOPWATCH_STALL_NS + 1);
    assert_int_equal(f->w.stalls, 1);
    assert_int_equal(loopwatch_tick(&f->w, 1042 * MS), 42 * MS);
    assert_int_equal(f->w.stalls, 2);
    /* A shorter lateness after a longer one leaves the maximum alone. */
    assert_int_equal(loopwatch_tick(&f->w, 1002 * MS), 2 * MS);
    assert_int_equal(f->w.max_late_ns, 42 * MS);
    assert_int_equal(f->w.stalls, 2);
    assert_int_equal(f->w.since_ms, since);
}

static void hold_cb(uv_timer_t *t)
{
    struct fx *f = t->data;
    uint64_t until = uv_hrtime() + HOLD_MS * MS;
    while (uv_hrtime() < until)
        ;
    f->held = true;
}

/* The pending tick was armed before the hold began, so it was due at most
 * a period after; it runs only once the hold is over: at least
 * HOLD_MS - LOOPWATCH_PERIOD_MS late, however busy the host. */
static void loopwatch_sees_a_callback_that_holds_the_loop(void **state)
{
    struct fx *f = *state;
    loopwatch_start(&f->w);
    uv_update_time(&f->loop);
    uv_timer_start(&f->hold, hold_cb, 2 * LOOPWATCH_PERIOD_MS, 0);
    loopwait_until(&f->loop, f->held && f->w.stalls > 0);
    assert_true(f->w.max_late_ns >= (HOLD_MS - LOOPWATCH_PERIOD_MS) * MS);
    /* It keeps ticking after a stall: the tick re-arms itself. */
    uint64_t due = f->w.due_ns;
    loopwait_until(&f->loop, f->w.due_ns != due);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(loopwatch_counts_lateness_past_due_and_stalls_over_5ms,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(loopwatch_sees_a_callback_that_holds_the_loop, fx_setup,
                                        fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
