/* Unit tests of a set of checks (detect/check.c): the fall/rise threshold,
 * the start period, inconclusive observations, probe scheduling, stop,
 * replace and close. A fake detector and a recording sink; the test's own
 * loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config-t.h"
#include "detect/check.h"
#include "detect/detector.h"
#include "lib/clock.h"
#include "lib/wheel.h"
#include "loopwait.h"

#define N_CHECKS 2
#define GRID_MS 10 /* check.c's CHECK_GRID_MS: intervals' probes start on it */

/* What the fakes and the sink saw. Reset by the fixture. */
static struct {
    int starts;                  /* fake start() calls */
    int start_result;            /* what fake start() returns */
    int cancels;                 /* fake cancel() calls */
    int releases;                /* fake release() calls */
    int failing_calls;           /* sink.failing calls */
    size_t failing_index;        /* its check index */
    char failing_reason[200];    /* its observation's reason */
    int reported_calls;          /* sink.reported calls */
    struct check *reported_last; /* the check of the last sink.reported */
    int closed_calls;            /* sink.closed calls */
    bool async_ok;               /* what the async fake reports */
    int async_reports;           /* reports the async fake made */
} seen;

static int fake_start(struct check *c)
{
    (void)c;
    seen.starts++;
    return seen.start_result;
}

static void fake_cancel(struct check *c)
{
    (void)c;
    seen.cancels++;
}

static void fake_release(struct check *c)
{
    (void)c;
    seen.releases++;
}

static const struct detector_ops fake_ops = {
    .name = "fake",
    .start = fake_start,
    .cancel = fake_cancel,
    .release = fake_release,
};

/* A fake that reports from a loop callback (as a real detector must): its
 * priv is a timer that fires at once with seen.async_ok. */
static void async_report_cb(uv_timer_t *t)
{
    struct check *c = t->data;
    struct observation o = {.ok = seen.async_ok,
                            .type = FAULT_NETWORK,
                            .severity = SEVERITY_HIGH,
                            .code = seen.async_ok ? 200 : -1};
    snprintf(o.reason, sizeof o.reason, "%s", seen.async_ok ? "" : "refused");
    seen.async_reports++;
    check_report(c, &o);
}

static void async_closed_cb(uv_handle_t *h)
{
    free(h);
}

static int async_start(struct check *c)
{
    seen.starts++;
    if (!c->priv) {
        uv_timer_t *t = calloc(1, sizeof *t);
        if (!t)
            return -ENOMEM;
        uv_timer_init(c->set->loop, t);
        c->priv = t;
    }
    uv_timer_t *t = c->priv;
    t->data = c;
    uv_timer_start(t, async_report_cb, 0, 0);
    return 0;
}

static void async_cancel(struct check *c)
{
    seen.cancels++;
    if (c->priv)
        uv_timer_stop(c->priv);
}

static void async_release(struct check *c)
{
    seen.releases++;
    if (c->priv)
        uv_close(c->priv, async_closed_cb);
    c->priv = NULL;
}

static const struct detector_ops async_ops = {
    .name = "async",
    .start = async_start,
    .cancel = async_cancel,
    .release = async_release,
};

/* ---- the sink ---- */

static void sink_failing(void *ctx, struct check *c, const struct observation *o)
{
    (void)ctx;
    seen.failing_calls++;
    seen.failing_index = check_index(c);
    snprintf(seen.failing_reason, sizeof seen.failing_reason, "%s", o->reason);
}

static void sink_reported(void *ctx, struct check *c)
{
    (void)ctx;
    seen.reported_calls++;
    seen.reported_last = c;
}

static void sink_closed(void *ctx)
{
    (void)ctx;
    seen.closed_calls++;
}

struct fixture {
    uv_loop_t loop;                  /* the test's own */
    struct check_cfg ccfg[N_CHECKS]; /* fall 3, rise 2 */
    struct check_cfg ncfg[N_CHECKS]; /* a reload's, for replace */
    struct check_set set;            /* under test */
};

static struct check_cfg cfg_make(const char *name, const struct detector_ops *ops)
{
    return (struct check_cfg){.name = (char *)name,
                              .kind = ops->name,
                              .ops = ops,
                              .interval_ms = 1000,
                              .timeout_ms = 1000,
                              .fall = 3,
                              .rise = 2,
                              .severity = -1,
                              .type = -1,
                              .impact = -1};
}

static int fixture_setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    memset(&seen, 0, sizeof seen);
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    fx->ccfg[0] = cfg_make("http", &fake_ops);
    fx->ccfg[1] = cfg_make("tcp", &fake_ops);
    fx->set.loop = &fx->loop;
    fx->set.service = "web";
    fx->set.sink = (struct check_sink){sink_failing, sink_reported, sink_closed, fx};
    assert_int_equal(check_set_init(&fx->set, fx->ccfg, N_CHECKS), 0);
    assert_int_equal(fx->set.n, N_CHECKS);
    assert_int_equal(fx->set.handles_open, N_CHECKS);
    assert_false(fx->set.probing); /* nothing reschedules unless a test starts the set */
    *state = fx;
    return 0;
}

/* Close the set: every handle closes (one sink.closed each) and the loop
 * ends empty. */
static int fixture_teardown(void **state)
{
    struct fixture *fx = *state;
    int open = fx->set.handles_open;
    int closed_before = seen.closed_calls;
    check_set_close(&fx->set);
    assert_null(fx->set.checks);
    assert_int_equal(fx->set.n, 0);
    assert_int_equal(uv_run(&fx->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(fx->set.handles_open, 0);
    assert_int_equal(seen.closed_calls - closed_before, open);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    free(fx);
    return 0;
}

/* One probe of check i that ends with obs (the check is put in flight
 * first, as check.c does before calling start). */
static void report(struct fixture *fx, size_t i, struct observation o)
{
    struct check *c = &fx->set.checks[i];
    c->in_flight = true;
    c->started_us = clock_mono_us();
    check_report(c, &o);
}

/* The check's next probe is on the grid (a delay of 200 ms or more) or on
 * its own timer (sooner): armed, due in, disarmed, whichever holds it. */
static bool armed(const struct check *c)
{
    return wheel_armed(&c->slot) || uv_is_active((const uv_handle_t *)&c->timer);
}

/* When the check's next probe is due, on the loop's clock (uv_now's scale,
 * ms): the grid's slot, or its own timer's due. */
static uint64_t due_at(const struct check *c)
{
    const struct wheel_timer *g = &c->slot;
    if (wheel_armed(g))
        return g->slot * GRID_MS;
    return uv_now(c->set->loop) + uv_timer_get_due_in(&c->timer);
}

/* Counted from the real now (loopwait_due_in). */
static uint64_t due_in(const struct check *c)
{
    return wheel_armed(&c->slot) ? wheel_due_in(&c->slot) : loopwait_due_in(&c->timer);
}

static void unarm(struct check *c)
{
    uv_timer_stop(&c->timer);
    wheel_stop(&c->slot);
}

static void probe(struct fixture *fx, size_t i, bool ok, const char *reason)
{
    struct observation o = {.ok = ok,
                            .type = FAULT_SOFTWARE,
                            .severity = SEVERITY_HIGH,
                            .code = ok ? 200 : 500};
    snprintf(o.reason, sizeof o.reason, "%s", reason ? reason : "");
    report(fx, i, o);
}

static void inconclusive(struct fixture *fx, size_t i)
{
    struct observation o = {.inconclusive = true, .code = -1};
    snprintf(o.reason, sizeof o.reason, "over the limit, not for long enough");
    report(fx, i, o);
}

/* ---- fall and rise ---- */

static void check_fall_failures_set_failing_and_tell_the_sink_once(void **state)
{
    struct fixture *fx = *state;
    struct check *c = &fx->set.checks[1];
    probe(fx, 1, false, "HTTP 500");
    uint64_t first = c->started_us; /* the streak's first failed probe: detection starts */
    probe(fx, 1, false, "HTTP 500");
    assert_false(c->failing);
    assert_int_equal(seen.failing_calls, 0);
    probe(fx, 1, false, "HTTP 502");
    assert_true(c->failing);
    assert_true(c->fails_since_us == first && first != 0);
    assert_int_equal(c->fails, 3);
    assert_int_equal(seen.failing_calls, 1);
    assert_int_equal(seen.failing_index, 1);
    assert_string_equal(seen.failing_reason, "HTTP 502");
    /* Further failures keep it failing without telling the sink again. */
    for (int k = 0; k < 5; k++)
        probe(fx, 1, false, "HTTP 500");
    assert_true(c->failing);
    assert_int_equal(seen.failing_calls, 1);
    assert_int_equal(seen.reported_calls, 8); /* every report reaches the sink */
    assert_ptr_equal(seen.reported_last, c);
    assert_false(fx->set.checks[0].failing);
    assert_int_equal(c->probes, 8);
}

static void check_success_in_between_resets_the_streak(void **state)
{
    struct fixture *fx = *state;
    struct check *c = &fx->set.checks[0];
    probe(fx, 0, false, "refused");
    probe(fx, 0, false, "refused");
    probe(fx, 0, true, NULL);
    assert_int_equal(c->fails, 0);
    assert_int_equal(c->oks, 1);
    probe(fx, 0, false, "refused");
    uint64_t again = c->started_us; /* a new streak: its detection starts here */
    probe(fx, 0, false, "refused");
    assert_false(c->failing);
    assert_int_equal(seen.failing_calls, 0);
    probe(fx, 0, false, "refused");
    assert_true(c->failing);
    assert_int_equal(seen.failing_calls, 1);
    assert_true(c->fails_since_us == again);
}

static void check_rise_successes_clear_failing(void **state)
{
    struct fixture *fx = *state;
    struct check *c = &fx->set.checks[0];
    for (int k = 0; k < 3; k++)
        probe(fx, 0, false, "down");
    assert_true(c->failing);
    probe(fx, 0, true, NULL);
    assert_true(c->failing); /* 1 of rise 2 */
    assert_int_equal(c->fails, 0);
    probe(fx, 0, false, "down"); /* the passing streak starts over */
    assert_int_equal(c->oks, 0);
    probe(fx, 0, true, NULL);
    assert_true(c->failing);
    probe(fx, 0, true, NULL);
    assert_false(c->failing);
    assert_int_equal(seen.failing_calls, 1);
    /* Failing again later is a new crossing. */
    for (int k = 0; k < 3; k++)
        probe(fx, 0, false, "down again");
    assert_true(c->failing);
    assert_int_equal(seen.failing_calls, 2);
}

/* Changed on purpose: the check layer used to keep quiet (no call to the
 * analyzer) while a recovery was being verified. It now only detects: the
 * crossing reaches the sink whether or not the set is verifying, and the
 * owner (the recovery's VERIFYING state) decides what it means. */
static void check_while_verifying_still_tells_the_sink(void **state)
{
    struct fixture *fx = *state;
    struct check *c = &fx->set.checks[0];
    fx->set.verifying = true;
    for (int k = 0; k < 4; k++)
        probe(fx, 0, false, "still starting");
    assert_true(c->failing);
    assert_int_equal(seen.failing_calls, 1);
    assert_int_equal(seen.reported_calls, 4);
}

static void check_all_passing_needs_rise_oks_on_every_check(void **state)
{
    struct fixture *fx = *state;
    assert_false(check_set_all_passing(&fx->set)); /* nothing probed yet */
    probe(fx, 0, true, NULL);
    probe(fx, 0, true, NULL);
    probe(fx, 1, true, NULL);
    assert_false(check_set_all_passing(&fx->set)); /* check 1: 1 of rise 2 */
    probe(fx, 1, true, NULL);
    assert_true(check_set_all_passing(&fx->set));
    /* A failing check is not passing even with enough oks counted. */
    fx->set.checks[1].failing = true;
    assert_false(check_set_all_passing(&fx->set));
    fx->set.checks[1].failing = false;
    /* After a reset (a new spawn) the oks must be earned again. */
    check_set_reset_streaks(&fx->set);
    assert_int_equal(fx->set.checks[0].oks, 0);
    assert_false(fx->set.checks[0].passed);
    assert_false(check_set_all_passing(&fx->set));
}

static void check_all_passing_with_no_checks(void **state)
{
    struct fixture *fx = *state;
    size_t n = fx->set.n;
    fx->set.n = 0;
    assert_true(check_set_all_passing(&fx->set));
    fx->set.n = n;
}

static void check_reset_streaks_keeps_failing(void **state)
{
    struct fixture *fx = *state;
    struct check *c = &fx->set.checks[0];
    for (int k = 0; k < 3; k++)
        probe(fx, 0, false, "x");
    check_set_reset_streaks(&fx->set);
    assert_int_equal(c->fails, 0);
    assert_int_equal(c->oks, 0);
    assert_true(c->failing);
}

static void check_index_is_the_position_in_the_set(void **state)
{
    struct fixture *fx = *state;
    for (size_t i = 0; i < N_CHECKS; i++) {
        assert_int_equal(check_index(&fx->set.checks[i]), i);
        assert_ptr_equal(fx->set.checks[i].set, &fx->set);
        assert_ptr_equal(fx->set.checks[i].cfg, &fx->ccfg[i]);
        assert_ptr_equal(fx->set.checks[i].ops, &fake_ops);
    }
}

/* ---- the start period ---- */

/* Failures while the process is starting, before any probe passed, do not
 * count; after a first pass, or once the period is over, they do. */
static void check_start_period_ignores_failures_before_a_first_pass(void **state)
{
    struct fixture *fx = *state;
    struct check *c = &fx->set.checks[0];
    fx->set.start_until_us = clock_mono_us() + 60 * 1000000ull;
    for (int k = 0; k < 5; k++)
        probe(fx, 0, false, "connection refused");
    assert_int_equal(c->fails, 0);
    assert_false(c->failing);
    assert_int_equal(seen.failing_calls, 0);
    assert_int_equal(seen.reported_calls, 5); /* reported all the same */
    assert_true(c->has_result);
    assert_false(c->last.ok);
    /* A first pass: from now on a failure counts, period or not. */
    probe(fx, 0, true, NULL);
    assert_true(c->passed);
    for (int k = 0; k < 3; k++)
        probe(fx, 0, false, "HTTP 503");
    assert_true(c->failing);
    assert_int_equal(seen.failing_calls, 1);
}

static void check_start_period_over_counts_failures(void **state)
{
    struct fixture *fx = *state;
    struct check *c = &fx->set.checks[0];
    fx->set.start_until_us = clock_mono_us() - 1; /* just over */
    for (int k = 0; k < 3; k++)
        probe(fx, 0, false, "connection refused");
    assert_true(c->failing);
    assert_int_equal(seen.failing_calls, 1);
}

/* A reset (a new spawn) forgets the first pass: the new process gets its
 * own start period. */
static void check_start_period_applies_again_after_a_reset(void **state)
{
    struct fixture *fx = *state;
    struct check *c = &fx->set.checks[0];
    probe(fx, 0, true, NULL);
    check_set_reset_streaks(&fx->set);
    fx->set.start_until_us = clock_mono_us() + 60 * 1000000ull;
    for (int k = 0; k < 4; k++)
        probe(fx, 0, false, "connection refused");
    assert_int_equal(c->fails, 0);
    assert_false(c->failing);
}

/* ---- inconclusive observations ---- */

/* It ends a passing streak and adds nothing to a failing one (the streak
 * neither grows nor starts over). */
static void check_inconclusive_ends_passing_streak_only(void **state)
{
    struct fixture *fx = *state;
    struct check *c = &fx->set.checks[0];
    probe(fx, 0, true, NULL);
    assert_int_equal(c->oks, 1);
    inconclusive(fx, 0);
    assert_int_equal(c->oks, 0);
    assert_int_equal(c->fails, 0);
    assert_true(c->has_result);
    assert_true(c->last.inconclusive);
    assert_int_equal(c->probes, 2);
    assert_int_equal(seen.reported_calls, 2);

    probe(fx, 0, false, "over");
    probe(fx, 0, false, "over");
    for (int k = 0; k < 5; k++)
        inconclusive(fx, 0);
    assert_int_equal(c->fails, 2); /* kept, not grown */
    assert_false(c->failing);
    assert_int_equal(seen.failing_calls, 0);
    probe(fx, 0, false, "over");
    assert_true(c->failing); /* the third real failure */
    assert_int_equal(seen.failing_calls, 1);
}

/* A failing check needs rise real passes in a row: an inconclusive one in
 * between starts the count over, and never clears it by itself. */
static void check_inconclusive_does_not_clear_failing(void **state)
{
    struct fixture *fx = *state;
    struct check *c = &fx->set.checks[0];
    for (int k = 0; k < 3; k++)
        probe(fx, 0, false, "down");
    probe(fx, 0, true, NULL);
    inconclusive(fx, 0);
    probe(fx, 0, true, NULL);
    assert_true(c->failing);
    for (int k = 0; k < 4; k++)
        inconclusive(fx, 0);
    assert_true(c->failing);
    probe(fx, 0, true, NULL);
    probe(fx, 0, true, NULL);
    assert_false(c->failing);
    assert_int_equal(seen.failing_calls, 1);
}

/* An inconclusive probe is no first pass for the start period. */
static void check_inconclusive_is_no_first_pass(void **state)
{
    struct fixture *fx = *state;
    struct check *c = &fx->set.checks[0];
    fx->set.start_until_us = clock_mono_us() + 60 * 1000000ull;
    inconclusive(fx, 0);
    assert_false(c->passed);
    for (int k = 0; k < 3; k++)
        probe(fx, 0, false, "refused");
    assert_int_equal(c->fails, 0);
    assert_false(c->failing);
}

/* ---- probes in flight, stop, latency ---- */

static void check_report_after_stop_is_ignored(void **state)
{
    struct fixture *fx = *state;
    struct check *c = &fx->set.checks[0];
    c->in_flight = true;
    c->started_us = clock_mono_us();
    check_set_stop(&fx->set);
    assert_int_equal(seen.cancels, 1);
    assert_false(c->in_flight);
    struct observation o = {.ok = false, .code = -1};
    snprintf(o.reason, sizeof o.reason, "late");
    for (int k = 0; k < 5; k++)
        check_report(c, &o);
    assert_int_equal(c->fails, 0);
    assert_int_equal(c->probes, 0);
    assert_false(c->has_result);
    assert_false(c->failing);
    assert_int_equal(seen.failing_calls, 0);
    assert_int_equal(seen.reported_calls, 0);
    /* A check with no probe in flight is not cancelled. */
    check_set_stop(&fx->set);
    assert_int_equal(seen.cancels, 1);
}

/* Stop keeps the last results but marks them stale (the process went
 * down); a check that never reported has nothing to be stale. A new
 * result is fresh again. */
static void check_stop_marks_results_stale(void **state)
{
    struct fixture *fx = *state;
    struct check *c0 = &fx->set.checks[0], *c1 = &fx->set.checks[1];
    probe(fx, 0, true, NULL);
    check_set_start(&fx->set, 1000);
    assert_true(fx->set.probing);
    check_set_stop(&fx->set);
    assert_false(fx->set.probing);
    assert_true(c0->stale);
    assert_true(c0->has_result);
    assert_true(c0->last.ok);
    assert_int_equal(c0->last.code, 200);
    assert_false(c1->stale);
    assert_false(c1->has_result);
    assert_false(armed(c0));
    assert_false(armed(c1));
    probe(fx, 0, false, "refused");
    assert_false(c0->stale);
    assert_false(armed(c0)); /* stopped: no rescheduling */
}

static void check_report_computes_latency_from_start(void **state)
{
    struct fixture *fx = *state;
    struct check *c = &fx->set.checks[0];
    struct observation o = {.ok = true, .code = 200, .latency_us = 999999999};
    uint64_t before_ms = clock_wall_ms();
    c->in_flight = true;
    c->started_us = clock_mono_us() - 5000;
    check_report(c, &o);
    assert_true(o.latency_us >= 5000);
    assert_int_equal(c->last.latency_us, o.latency_us);
    assert_int_equal(c->last.code, 200);
    assert_true(c->last.ok);
    assert_true(c->has_result);
    assert_int_equal(c->probes, 1);
    assert_true(c->last_ms >= before_ms);
    assert_false(c->in_flight);
}

/* ---- through the loop ---- */

static bool both_started(struct fixture *fx)
{
    return seen.starts >= N_CHECKS;
}

/* The timer starts a probe via ops->start. */
static void check_set_start_probes_through_the_detector(void **state)
{
    struct fixture *fx = *state;
    check_set_start(&fx->set, 0);
    assert_true(fx->set.probing);
    loopwait_until(&fx->loop, both_started(fx));
    assert_int_equal(seen.starts, N_CHECKS);
    assert_true(fx->set.checks[0].in_flight);
    assert_true(fx->set.checks[1].in_flight);
    /* Starting again while probes are in flight starts nothing new. */
    check_set_start(&fx->set, 0);
    assert_false(armed(&fx->set.checks[0]));
    check_set_stop(&fx->set);
    assert_int_equal(seen.cancels, N_CHECKS);
}

static bool check0_failing(struct fixture *fx)
{
    return fx->set.checks[0].failing;
}

/* A detector that cannot even start counts as a failed probe. */
static void check_start_failure_is_a_failed_probe(void **state)
{
    struct fixture *fx = *state;
    struct check *c = &fx->set.checks[0];
    seen.start_result = -EMFILE;
    fx->ccfg[0].interval_ms = 10;
    fx->ccfg[1].fall = 100; /* only check 0 may reach its threshold */
    check_set_start(&fx->set, 0);
    loopwait_until(&fx->loop, check0_failing(fx));
    assert_int_equal(c->last.type, FAULT_RESOURCE);
    assert_int_equal(seen.failing_calls, 1);
    assert_int_equal(seen.failing_index, 0);
    assert_non_null(strstr(seen.failing_reason, "cannot start probe"));
    assert_false(c->in_flight);
    check_set_stop(&fx->set);
}

/* Between a first failure and fall, the next probe comes sooner. */
static void check_hurries_while_confirming_a_failure(void **state)
{
    struct fixture *fx = *state;
    struct check *c = &fx->set.checks[0];
    fx->set.probing = true;
    uv_update_time(&fx->loop);
    probe(fx, 0, true, NULL);
    uint64_t due = due_in(c);
    assert_true(due > 900 && due <= 1000); /* the interval */
    unarm(c);
    probe(fx, 0, false, "timeout");
    assert_true(due_in(c) <= 50);
    unarm(c);
    probe(fx, 0, false, "timeout");
    unarm(c);
    probe(fx, 0, false, "timeout");
    unarm(c);
    assert_true(c->failing);
    probe(fx, 0, false, "timeout"); /* failing: back to the interval */
    assert_true(due_in(c) > 900);
    check_set_stop(&fx->set);
}

/* While verifying, a check probes fast until it has passed rise times;
 * then (and while it is failing) at its interval. */
static void check_hurries_while_verifying(void **state)
{
    struct fixture *fx = *state;
    struct check *c = &fx->set.checks[0];
    fx->set.probing = true;
    fx->set.verifying = true;
    probe(fx, 0, true, NULL);
    assert_true(due_in(c) <= 50); /* 1 of rise 2 */
    unarm(c);
    probe(fx, 0, true, NULL);
    assert_true(due_in(c) > 900); /* verified */
    unarm(c);
    for (int k = 0; k < 3; k++) {
        probe(fx, 0, false, "down");
        unarm(c);
    }
    assert_true(c->failing);
    probe(fx, 0, false, "down");
    assert_true(due_in(c) > 900); /* failing: the interval */
    unarm(c);
    /* Not verifying: a pass comes at the interval. */
    fx->set.verifying = false;
    probe(fx, 0, true, NULL);
    assert_true(due_in(c) > 900);
    check_set_stop(&fx->set);
}

/* While verifying, a probe that has not passed rise times yet is followed
 * soon, then later each time: 5, 10, 20, 40 ms, then the fast cadence
 * (50 ms); a new verification (its streaks reset) starts over at 5 ms.
 * Upper bounds only: the probe's own time comes off each delay. */
static void check_verification_probes_back_off_from_5_ms(void **state)
{
    struct fixture *fx = *state;
    struct check *c = &fx->set.checks[0];
    static const uint64_t want[] = {5, 10, 20, 40, 50, 50};
    fx->set.probing = true;
    fx->set.verifying = true;
    fx->set.start_until_us = clock_mono_us() + 3600ull * 1000000; /* failures do not count */
    for (size_t k = 0; k < sizeof want / sizeof *want; k++) {
        probe(fx, 0, false, "refused"); /* not listening yet */
        uint64_t due = due_in(c);
        assert_true(due <= want[k]);
        unarm(c);
    }
    assert_false(c->failing);
    probe(fx, 0, false, "refused");
    assert_true(due_in(c) > 25); /* capped, not back to 5 */
    unarm(c);
    check_set_reset_streaks(&fx->set); /* the next verification */
    probe(fx, 0, true, NULL);
    assert_true(due_in(c) <= 5); /* 1 of rise 2, soon */
    unarm(c);
    probe(fx, 0, true, NULL);
    assert_int_equal(c->oks, c->cfg->rise);
    assert_true(due_in(c) > 900); /* verified: the interval */
    check_set_stop(&fx->set);
}

/* Probes at an interval start on the loop's 10 ms grid, whenever the one
 * before reported: the loop wakes once for every check due in a slot. */
static void check_probes_start_on_the_shared_grid(void **state)
{
    struct fixture *fx = *state;
    struct check *c = &fx->set.checks[0];
    fx->set.probing = true;
    for (int k = 0; k < 4; k++) {
        probe(fx, 0, true, NULL);
        uint64_t due = due_in(c);
        assert_int_equal(due_at(c) % GRID_MS, 0);
        assert_true(due > 900 && due <= 1000); /* the interval, less what a busy host took */
        unarm(c);
        uv_sleep(3); /* another phase of the loop's clock for the next report */
        uv_update_time(&fx->loop);
    }
    check_set_stop(&fx->set);
}

/* An interval shorter than the fast cadence is kept as it is. */
static void check_short_interval_is_not_slowed_down(void **state)
{
    struct fixture *fx = *state;
    struct check *c = &fx->set.checks[0];
    fx->ccfg[0].interval_ms = 20;
    fx->set.probing = true;
    probe(fx, 0, false, "x");
    assert_true(due_in(c) <= 20);
    check_set_stop(&fx->set);
}

static bool async_failing(struct fixture *fx)
{
    return fx->set.checks[0].failing;
}

static bool async_passing(struct fixture *fx)
{
    return check_set_all_passing(&fx->set);
}

/* A detector reporting from the loop: probes repeat by themselves, the
 * failing crossing comes once, and rise passes clear it. */
static void check_probes_repeat_through_the_loop(void **state)
{
    struct fixture *fx = *state;
    check_set_close(&fx->set);
    fx->ccfg[0] = cfg_make("async", &async_ops);
    fx->ccfg[0].interval_ms = 5;
    assert_int_equal(check_set_init(&fx->set, fx->ccfg, 1), 0);
    seen.async_ok = false;
    check_set_start(&fx->set, 0);
    loopwait_until(&fx->loop, async_failing(fx));
    assert_int_equal(seen.failing_calls, 1);
    assert_true(seen.async_reports >= 3);
    seen.async_ok = true;
    loopwait_until(&fx->loop, async_passing(fx));
    assert_false(fx->set.checks[0].failing);
    assert_int_equal(seen.failing_calls, 1);
    /* Stopped with a probe possibly in flight: nothing reports after. */
    check_set_stop(&fx->set);
    int reports = seen.reported_calls;
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    assert_int_equal(seen.reported_calls, reports);
}

/* ---- replace, rebind, close ---- */

/* A reload's set: an unchanged check keeps its last result (not its
 * streaks), a changed one starts empty; the old checks are stopped,
 * released and freed once their timers close. */
static void check_replace_keeps_unchanged_checks_results(void **state)
{
    struct fixture *fx = *state;
    struct check *old = fx->set.checks;
    probe(fx, 0, false, "HTTP 500");
    probe(fx, 0, false, "HTTP 500");
    probe(fx, 0, false, "HTTP 503");
    probe(fx, 1, true, NULL);
    assert_true(old[0].failing);
    old[1].in_flight = true; /* a probe in flight is cancelled */
    /* New order: the changed tcp check first, the unchanged http one second. */
    fx->ncfg[0] = cfg_make("tcp", &fake_ops);
    fx->ncfg[0].fall = 5;
    fx->ncfg[1] = cfg_make("http", &fake_ops);
    int open = fx->set.handles_open;
    int closed = seen.closed_calls;
    assert_int_equal(check_set_replace(&fx->set, fx->ncfg, N_CHECKS), 0);
    assert_ptr_not_equal(fx->set.checks, old);
    assert_int_equal(fx->set.n, N_CHECKS);
    assert_int_equal(seen.cancels, 1);
    assert_int_equal(seen.releases, N_CHECKS);
    struct check *tcp = &fx->set.checks[0], *http = &fx->set.checks[1];
    assert_ptr_equal(http->cfg, &fx->ncfg[1]);
    assert_true(http->has_result);
    assert_false(http->last.ok);
    assert_string_equal(http->last.reason, "HTTP 503");
    assert_int_equal(http->probes, 3);
    assert_int_equal(http->fails, 0); /* streaks start over */
    assert_false(http->failing);
    assert_false(tcp->has_result);
    assert_int_equal(tcp->probes, 0);
    /* Not started: nothing probes until the owner starts the set. */
    assert_false(armed(tcp));
    assert_false(armed(http));
    /* The old timers close; the new ones stay. */
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    assert_int_equal(seen.closed_calls - closed, N_CHECKS);
    assert_int_equal(fx->set.handles_open, open);
    /* The new checks work: index and reports. */
    assert_int_equal(check_index(http), 1);
    probe(fx, 1, true, NULL);
    assert_int_equal(http->probes, 4);
}

/* Replacing with fewer checks, or none, and back. */
static void check_replace_with_no_checks_and_back(void **state)
{
    struct fixture *fx = *state;
    probe(fx, 0, true, NULL);
    assert_int_equal(check_set_replace(&fx->set, fx->ccfg, 0), 0);
    assert_int_equal(fx->set.n, 0);
    assert_true(check_set_all_passing(&fx->set));
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    assert_int_equal(fx->set.handles_open, 0);
    assert_int_equal(check_set_replace(&fx->set, fx->ccfg, 1), 0);
    assert_int_equal(fx->set.n, 1);
    assert_false(fx->set.checks[0].has_result); /* nothing left to carry over */
    assert_int_equal(fx->set.handles_open, 1);
}

static void check_rebind_points_at_the_new_cfgs(void **state)
{
    struct fixture *fx = *state;
    fx->ncfg[0] = fx->ccfg[0];
    fx->ncfg[1] = fx->ccfg[1];
    probe(fx, 0, true, NULL);
    check_set_rebind(&fx->set, fx->ncfg);
    for (size_t i = 0; i < N_CHECKS; i++)
        assert_ptr_equal(fx->set.checks[i].cfg, &fx->ncfg[i]);
    assert_int_equal(fx->set.checks[0].oks, 1); /* nothing else changes */
}

/* Close with probes in flight and timers armed: each is cancelled and
 * released, every timer closes, and the loop ends empty (the teardown
 * asserts the rest). */
static void check_close_with_probes_in_flight_empties_the_loop(void **state)
{
    struct fixture *fx = *state;
    check_set_start(&fx->set, 0);
    loopwait_until(&fx->loop, both_started(fx));
    fx->set.checks[1].in_flight = false; /* one in flight, one armed */
    fx->set.probing = true;
    probe(fx, 1, true, NULL);
    assert_true(armed(&fx->set.checks[1]));
    check_set_close(&fx->set);
    assert_false(fx->set.probing);
    assert_int_equal(seen.cancels, 1);
    assert_int_equal(seen.releases, N_CHECKS);
    assert_int_equal(uv_run(&fx->loop, UV_RUN_NOWAIT), 0); /* nothing active is left */
    assert_int_equal(fx->set.handles_open, 0);
    assert_int_equal(seen.closed_calls, N_CHECKS);
}

/* A set replaced, then closed while the old checks' timers still close:
 * both batches go, nothing leaks (ASan), the loop ends empty. */
static void check_close_right_after_replace(void **state)
{
    struct fixture *fx = *state;
    fx->ncfg[0] = cfg_make("other", &fake_ops);
    assert_int_equal(check_set_replace(&fx->set, fx->ncfg, 1), 0);
    check_set_close(&fx->set);
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    assert_int_equal(fx->set.handles_open, 0);
    assert_int_equal(seen.closed_calls, N_CHECKS + 1);
}

int main(void)
{
#define FX(t) cmocka_unit_test_setup_teardown(t, fixture_setup, fixture_teardown)
    const struct CMUnitTest tests[] = {
        FX(check_fall_failures_set_failing_and_tell_the_sink_once),
        FX(check_success_in_between_resets_the_streak),
        FX(check_rise_successes_clear_failing),
        FX(check_while_verifying_still_tells_the_sink),
        FX(check_all_passing_needs_rise_oks_on_every_check),
        FX(check_all_passing_with_no_checks),
        FX(check_reset_streaks_keeps_failing),
        FX(check_index_is_the_position_in_the_set),
        FX(check_start_period_ignores_failures_before_a_first_pass),
        FX(check_start_period_over_counts_failures),
        FX(check_start_period_applies_again_after_a_reset),
        FX(check_inconclusive_ends_passing_streak_only),
        FX(check_inconclusive_does_not_clear_failing),
        FX(check_inconclusive_is_no_first_pass),
        FX(check_report_after_stop_is_ignored),
        FX(check_stop_marks_results_stale),
        FX(check_report_computes_latency_from_start),
        FX(check_set_start_probes_through_the_detector),
        FX(check_start_failure_is_a_failed_probe),
        FX(check_hurries_while_confirming_a_failure),
        FX(check_hurries_while_verifying),
        FX(check_verification_probes_back_off_from_5_ms),
        FX(check_short_interval_is_not_slowed_down),
        FX(check_probes_start_on_the_shared_grid),
        FX(check_probes_repeat_through_the_loop),
        FX(check_replace_keeps_unchanged_checks_results),
        FX(check_replace_with_no_checks_and_back),
        FX(check_rebind_points_at_the_new_cfgs),
        FX(check_close_with_probes_in_flight_empties_the_loop),
        FX(check_close_right_after_replace),
    };
#undef FX
    return cmocka_run_group_tests(tests, NULL, NULL);
}
