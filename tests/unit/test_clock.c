/* lib/clock.h's injected clock and lib/uvclock.h: a libuv timer armed
 * after a callback that ran long counts from when it was armed, not from
 * the loop's stale cached time; and the fake clock of the unit tests
 * (fakeclock.h) keeps the contract the executor relies on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "fakeclock.h"
#include "lib/clock.h"
#include "lib/uvclock.h"
#include "loopwait.h"

/* A callback that runs this long before it arms a timer of TIMEOUT_MS. */
#define BLOCK_MS 50
#define TIMEOUT_MS 100
/* The loop's time may come from CLOCK_MONOTONIC_COARSE (libuv's choice
 * where it ticks every millisecond), which lags by up to one tick. */
#define GRAIN_MS 1

struct fx {
    uv_loop_t loop;
    uv_timer_t first;      /* runs long, then arms */
    uv_timer_t raw;        /* armed with uvclock_arm */
    struct clock_src src;  /* uvclock_src(&loop) */
    struct clock_timer ct; /* on src */
    uint64_t stale_ms;     /* the loop's time in the long callback */
    uint64_t fired_ms;     /* the loop's time when the timer fired; 0: not yet */
    int closed;            /* ct's closed() calls */
    bool closed_in_close;  /* closed() ran inside clock_timer_close */
    bool closing;          /* inside clock_timer_close */
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    uv_timer_init(&f->loop, &f->first);
    uv_timer_init(&f->loop, &f->raw);
    f->first.data = f->raw.data = f;
    f->src = uvclock_src(&f->loop);
    assert_int_equal(clock_timer_init(&f->ct, &f->src, f), 0);
    *state = f;
    return 0;
}

static void ct_closed(struct clock_timer *t)
{
    struct fx *f = t->data;
    f->closed++;
    f->closed_in_close |= f->closing;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    uv_close((uv_handle_t *)&f->first, NULL);
    uv_close((uv_handle_t *)&f->raw, NULL);
    if (f->ct.impl) {
        f->closing = true;
        clock_timer_close(&f->ct, ct_closed);
        f->closing = false;
    }
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    assert_int_equal(f->closed, 1);
    assert_false(f->closed_in_close);
    free(f);
    return 0;
}

static void raw_fired_cb(uv_timer_t *t)
{
    struct fx *f = t->data;
    f->fired_ms = uv_now(t->loop);
}

static void ct_fired_cb(struct clock_timer *t)
{
    struct fx *f = t->data;
    f->fired_ms = uv_now(&f->loop);
}

/* The long callback: the loop's cached time is this turn's; nothing
 * updates it while the callback runs. */
static void block_then_arm_raw_cb(uv_timer_t *t)
{
    struct fx *f = t->data;
    f->stale_ms = uv_now(t->loop);
    loopwait_nap(BLOCK_MS); /* the work of a long callback, not a wait for anything */
    uvclock_arm(&f->raw, raw_fired_cb, TIMEOUT_MS);
}

static void block_then_arm_ct_cb(uv_timer_t *t)
{
    struct fx *f = t->data;
    f->stale_ms = uv_now(t->loop);
    loopwait_nap(BLOCK_MS);
    clock_timer_start(&f->ct, ct_fired_cb, TIMEOUT_MS);
}

/* Counted from the stale time it would fire BLOCK_MS early, at about
 * stale + TIMEOUT_MS; counted from when it was armed, not before
 * stale + BLOCK_MS + TIMEOUT_MS on the loop's own clock. A busy host can
 * only make it later. */
static void uvclock_arm_counts_from_now_after_a_long_callback(void **state)
{
    struct fx *f = *state;
    uv_timer_start(&f->first, block_then_arm_raw_cb, 0, 0);
    loopwait_until(&f->loop, f->fired_ms != 0);
    assert_true(f->fired_ms - f->stale_ms >= BLOCK_MS + TIMEOUT_MS - GRAIN_MS);
}

static void uvclock_src_timer_counts_from_now_after_a_long_callback(void **state)
{
    struct fx *f = *state;
    uv_timer_start(&f->first, block_then_arm_ct_cb, 0, 0);
    loopwait_until(&f->loop, f->fired_ms != 0);
    assert_true(f->fired_ms - f->stale_ms >= BLOCK_MS + TIMEOUT_MS - GRAIN_MS);
    assert_false(clock_timer_armed(&f->ct));
}

/* now_us is CLOCK_MONOTONIC, the clock the supervisor stamps spawns with. */
static void uvclock_src_now_is_the_monotonic_clock(void **state)
{
    struct fx *f = *state;
    uint64_t a = clock_mono_us(), b = clock_src_now_us(&f->src), c = clock_mono_us();
    assert_true(a <= b && b <= c);
}

/* Stopped: it does not fire; re-armed: it fires once. Closed: closed()
 * runs from the loop, not inside clock_timer_close (teardown checks). */
static void uvclock_src_timer_stops_rearms_and_closes_later(void **state)
{
    struct fx *f = *state;
    clock_timer_start(&f->ct, ct_fired_cb, 10);
    assert_true(clock_timer_armed(&f->ct));
    clock_timer_stop(&f->ct);
    assert_false(clock_timer_armed(&f->ct));
    loopwait_idle(&f->loop, 50); /* time to fire, which it must not */
    assert_int_equal(f->fired_ms, 0);
    clock_timer_start(&f->ct, ct_fired_cb, 10);
    clock_timer_start(&f->ct, ct_fired_cb, 20); /* replaces */
    loopwait_until(&f->loop, f->fired_ms != 0);
    assert_false(clock_timer_armed(&f->ct));
}

/* ---- timers armed while timers run ---- */

#define RELAY_RUNS 8   /* callbacks of the two relay timers in all */
#define RELAY_NAP_MS 3 /* each holds the loop this long, past the 1 ms it arms */

/* Two timers that each hold the loop a moment and re-arm themselves at
 * 1 ms: libuv 1.44 runs every timer due by the loop's cached time in one
 * phase, so had arming moved that time, each would have come due again in
 * the same phase, which would only end with the relay, never polling. */
struct relay {
    uv_loop_t loop;
    uv_timer_t t[2];
    uv_check_t polled; /* runs after each poll for I/O */
    int polls;
    int runs;
    int poll_at[RELAY_RUNS]; /* polls done before each run */
};

static void relay_polled_cb(uv_check_t *c)
{
    ((struct relay *)c->data)->polls++;
}

static void relay_cb(uv_timer_t *t)
{
    struct relay *r = t->data;
    r->poll_at[r->runs++] = r->polls;
    loopwait_nap(RELAY_NAP_MS);    /* the work of a callback, not a wait for anything */
    if (r->runs <= RELAY_RUNS - 2) /* the other one is still armed */
        uvclock_arm(t, relay_cb, 1);
}

static void uvclock_timers_armed_while_timers_run_wait_for_a_poll(void **state)
{
    struct relay *r = calloc(1, sizeof *r);
    (void)state;
    assert_non_null(r);
    assert_int_equal(uv_loop_init(&r->loop), 0);
    uv_check_init(&r->loop, &r->polled);
    r->polled.data = r;
    uv_check_start(&r->polled, relay_polled_cb);
    uv_unref((uv_handle_t *)&r->polled); /* the loop ends with the relay */
    for (int i = 0; i < 2; i++) {
        uv_timer_init(&r->loop, &r->t[i]);
        r->t[i].data = r;
        uv_timer_start(&r->t[i], relay_cb, 0, 0);
    }
    uv_run(&r->loop, UV_RUN_DEFAULT);
    assert_int_equal(r->runs, RELAY_RUNS);
    /* Each timer's next run came after the loop polled once more. */
    for (int k = 2; k < RELAY_RUNS; k++)
        assert_true(r->poll_at[k] > r->poll_at[k - 2]);
    uv_close((uv_handle_t *)&r->polled, NULL);
    uv_close((uv_handle_t *)&r->t[0], NULL);
    uv_close((uv_handle_t *)&r->t[1], NULL);
    assert_int_equal(uv_run(&r->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&r->loop), 0);
    free(r);
}

/* A "later, from the loop" callback (0 ms, or a due already past) armed
 * while timers run: libuv 1.44 runs a timer due at the loop's cached time
 * in the timers phase that armed it, so a result meant for after the poll
 * (a probe's early failure, a spawn error) came before it, and a chain of
 * them never let the loop poll. Through lib/uvclock both wait for a poll. */
struct later {
    uv_loop_t loop;
    uv_timer_t arm, zero, past;
    uv_check_t polled; /* runs after each poll for I/O */
    int polls;         /* polls so far */
    int armed_polls;   /* polls when the two were armed */
    int zero_polls;    /* polls when the 0 ms one ran; -1: not yet */
    int past_polls;    /* polls when the past-due one ran; -1: not yet */
};

static void later_polled_cb(uv_check_t *c)
{
    ((struct later *)c->data)->polls++;
}

static void later_zero_cb(uv_timer_t *t)
{
    struct later *l = t->data;
    l->zero_polls = l->polls;
}

static void later_past_cb(uv_timer_t *t)
{
    struct later *l = t->data;
    l->past_polls = l->polls;
}

static void later_arm_cb(uv_timer_t *t)
{
    struct later *l = t->data;
    l->armed_polls = l->polls;
    uvclock_arm(&l->zero, later_zero_cb, 0);
    uvclock_arm_at(&l->past, later_past_cb, uv_now(&l->loop) - 1);
}

static void uvclock_0_ms_armed_while_timers_run_waits_for_a_poll(void **state)
{
    struct later *l = calloc(1, sizeof *l);
    (void)state;
    assert_non_null(l);
    l->zero_polls = l->past_polls = -1;
    assert_int_equal(uv_loop_init(&l->loop), 0);
    uv_check_init(&l->loop, &l->polled);
    l->polled.data = l;
    uv_check_start(&l->polled, later_polled_cb);
    uv_unref((uv_handle_t *)&l->polled); /* the loop ends with the timers */
    uv_timer_t *ts[] = {&l->arm, &l->zero, &l->past};
    for (size_t i = 0; i < 3; i++) {
        uv_timer_init(&l->loop, ts[i]);
        ts[i]->data = l;
    }
    uvclock_arm(&l->arm, later_arm_cb, 0);
    uv_run(&l->loop, UV_RUN_DEFAULT);
    assert_true(l->zero_polls > l->armed_polls);
    assert_true(l->past_polls > l->armed_polls);
    uv_close((uv_handle_t *)&l->polled, NULL);
    for (size_t i = 0; i < 3; i++)
        uv_close((uv_handle_t *)ts[i], NULL);
    assert_int_equal(uv_run(&l->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&l->loop), 0);
    free(l);
}

/* ---- the fake clock ---- */

struct fake_fx {
    struct fakeclock fc;
    struct clock_timer t[4];
    char order[16]; /* which fired, in order: '0'..'3' */
    size_t n;
    uint64_t at_us[16]; /* the clock's now at each firing */
    int closed;
};

static void fake_cb(struct clock_timer *t)
{
    struct fake_fx *x = t->data;
    size_t k = (size_t)(t - x->t);
    x->at_us[x->n] = clock_src_now_us(&x->fc.src);
    x->order[x->n++] = (char)('0' + k);
}

/* Timer 0 re-arms timer 3 when it fires. */
static void fake_rearm_cb(struct clock_timer *t)
{
    struct fake_fx *x = t->data;
    fake_cb(t);
    clock_timer_start(&x->t[3], fake_cb, 5);
}

static void fake_closed(struct clock_timer *t)
{
    ((struct fake_fx *)t->data)->closed++;
}

static struct fake_fx *fake_new(void)
{
    struct fake_fx *x = calloc(1, sizeof *x);
    assert_non_null(x);
    fakeclock_init(&x->fc, 1000000);
    for (int i = 0; i < 4; i++)
        assert_int_equal(clock_timer_init(&x->t[i], &x->fc.src, x), 0);
    return x;
}

static void fake_free(struct fake_fx *x)
{
    for (int i = 0; i < 4; i++)
        clock_timer_close(&x->t[i], fake_closed);
    assert_int_equal(x->closed, 0); /* later, never from inside close */
    assert_int_equal(fakeclock_open(&x->fc), 0);
    assert_int_equal(x->closed, 4);
    free(x);
}

/* Due order, ties in arming order, each at its own due time; a timer armed
 * by a callback during the advance fires in it if due by its end. */
static void fakeclock_fires_due_timers_in_time_order(void **state)
{
    (void)state;
    struct fake_fx *x = fake_new();
    clock_timer_start(&x->t[2], fake_cb, 30);
    clock_timer_start(&x->t[1], fake_cb, 10);
    clock_timer_start(&x->t[0], fake_rearm_cb, 10); /* same due as 1, armed later */
    assert_int_equal(fakeclock_due_in_ms(&x->fc, &x->t[2]), 30);
    assert_int_equal(fakeclock_advance(&x->fc, 9), 0);
    assert_int_equal(x->n, 0);
    assert_int_equal(fakeclock_due_in_ms(&x->fc, &x->t[2]), 21);
    assert_int_equal(fakeclock_advance(&x->fc, 21), 4);
    assert_string_equal(x->order, "1032");
    assert_int_equal(x->at_us[0], 1010000);
    assert_int_equal(x->at_us[1], 1010000);
    assert_int_equal(x->at_us[2], 1015000); /* 3: armed at 10 ms for 5 ms */
    assert_int_equal(x->at_us[3], 1030000);
    assert_int_equal(clock_src_now_us(&x->fc.src), 1030000);
    assert_int_equal(fakeclock_armed(&x->fc), 0);
    assert_int_equal(fakeclock_due_in_ms(&x->fc, &x->t[0]), -1);
    fake_free(x);
}

/* Stopped timers do not fire; re-arming replaces; next jumps to the
 * earliest and fires only it. */
static void fakeclock_stop_rearm_and_next(void **state)
{
    (void)state;
    struct fake_fx *x = fake_new();
    clock_timer_start(&x->t[0], fake_cb, 10);
    clock_timer_start(&x->t[1], fake_cb, 20);
    clock_timer_stop(&x->t[0]);
    assert_false(clock_timer_armed(&x->t[0]));
    clock_timer_start(&x->t[1], fake_cb, 50); /* replaces 20 */
    assert_true(fakeclock_next(&x->fc));
    assert_string_equal(x->order, "1");
    assert_int_equal(clock_src_now_us(&x->fc.src), 1050000);
    assert_false(fakeclock_next(&x->fc));
    assert_int_equal(fakeclock_advance(&x->fc, 1000), 0);
    fake_free(x);
}

/* clock_iso8601 as strftime writes it (what it was written with before):
 * every day from 1970 to 2500 at a time of day that moves with it, and
 * the instants around each new year, leap day and century. */
static void iso8601_is_what_strftime_writes(void **state)
{
    char got[40], want[48];
    for (uint64_t day = 0; day < 193000; day++) {
        for (int edge = 0; edge < 3; edge++) {
            uint64_t ms = day * 86400000 + (edge == 0   ? (day * 7919 * 1000 + day) % 86400000
                                            : edge == 1 ? 0
                                                        : 86399999);
            time_t s = (time_t)(ms / 1000);
            struct tm tm;
            gmtime_r(&s, &tm);
            size_t n = strftime(want, sizeof want, "%Y-%m-%dT%H:%M:%S", &tm);
            snprintf(want + n, sizeof want - n, ".%03uZ", (unsigned)(ms % 1000));
            assert_ptr_equal(clock_iso8601(ms, got, sizeof got), got);
            if (strcmp(got, want) != 0)
                fail_msg("%llu ms: %s, strftime %s", (unsigned long long)ms, got, want);
        }
    }
    /* Past year 9999 (five digits): still strftime's. */
    assert_string_equal(clock_iso8601(253402300800000ull, got, sizeof got),
                        "10000-01-01T00:00:00.000Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(uvclock_arm_counts_from_now_after_a_long_callback, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(uvclock_src_timer_counts_from_now_after_a_long_callback,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(uvclock_src_now_is_the_monotonic_clock, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(uvclock_src_timer_stops_rearms_and_closes_later, fx_setup,
                                        fx_teardown),
        cmocka_unit_test(uvclock_timers_armed_while_timers_run_wait_for_a_poll),
        cmocka_unit_test(uvclock_0_ms_armed_while_timers_run_waits_for_a_poll),
        cmocka_unit_test(fakeclock_fires_due_timers_in_time_order),
        cmocka_unit_test(fakeclock_stop_rearm_and_next),
        cmocka_unit_test(iso8601_is_what_strftime_writes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
