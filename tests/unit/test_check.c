/* Unit tests of the fall/rise threshold and probe bookkeeping (detect/check.c),
 * with a fake detector and fakes of the analyzer and executor entry points. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/analyzer.h"
#include "lib/clock.h"
#include "config/config-t.h"
#include "daemon/daemon.h"
#include "detect/check.h"
#include "detect/detector.h"
#include "recover/executor.h"

/* What the fakes saw. Reset by the fixture. */
static struct {
    int starts;                  /* fake start() calls */
    int start_result;            /* what fake start() returns */
    int cancels;                 /* fake cancel() calls */
    int failing_calls;           /* analyzer_check_failing calls */
    size_t failing_index;        /* its check index */
    char failing_reason[200];    /* its observation's reason */
    int reported_calls;          /* executor_check_reported calls */
} seen;

/* Fakes of other archive members: defining them here keeps analyzer.o and
 * executor.o (and all they pull in) out of this test. */
void analyzer_check_failing(struct service *s, size_t i, const struct observation *o)
{
    (void)s;
    seen.failing_calls++;
    seen.failing_index = i;
    snprintf(seen.failing_reason, sizeof seen.failing_reason, "%s", o->reason);
}

void executor_check_reported(struct service *s)
{
    (void)s;
    seen.reported_calls++;
}

/* check.c calls it for a retired service only; defining it keeps daemon.o
 * (which pulls in the real analyzer and executor) out of the link. */
void daemon_service_gone(struct daemon *d, struct service *s)
{
    (void)d;
    (void)s;
    fail_msg("daemon_service_gone called for a service that is not retired");
}

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

static const struct detector_ops fake_ops = {
    .name = "fake",
    .start = fake_start,
    .cancel = fake_cancel,
};

#define N_CHECKS 2

struct fixture {
    uv_loop_t loop;                    /* the test's own */
    struct daemon d;                   /* loop only */
    struct check_cfg ccfg[N_CHECKS];   /* fall 3, rise 2 */
    struct service_cfg scfg;
    struct service svc;
};

static int fixture_setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    memset(&seen, 0, sizeof seen);
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    fx->d.loop = &fx->loop;
    static const char *const names[N_CHECKS] = {"http", "tcp"};
    for (int i = 0; i < N_CHECKS; i++)
        fx->ccfg[i] = (struct check_cfg){.name = (char *)names[i], .ops = &fake_ops,
                                         .interval_ms = 1000, .timeout_ms = 1000,
                                         .fall = 3, .rise = 2, .severity = -1};
    fx->scfg.name = "web";
    fx->scfg.checks = fx->ccfg;
    fx->scfg.n_checks = N_CHECKS;
    fx->svc.d = &fx->d;
    fx->svc.cfg = &fx->scfg;
    snprintf(fx->svc.name, sizeof fx->svc.name, "web");
    fx->svc.proc_state = PROC_DOWN; /* no rescheduling unless a test asks */
    assert_int_equal(check_init_all(&fx->svc), 0);
    assert_int_equal(fx->svc.n_checks, N_CHECKS);
    assert_int_equal(fx->svc.handles_open, N_CHECKS);
    *state = fx;
    return 0;
}

static int fixture_teardown(void **state)
{
    struct fixture *fx = *state;
    check_free_all(&fx->svc);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(fx->svc.handles_open, 0);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    free(fx->svc.checks);
    free(fx);
    return 0;
}

/* One probe of check i that ends with ok (or a failure with reason). */
static void probe(struct fixture *fx, size_t i, bool ok, const char *reason)
{
    struct check *c = &fx->svc.checks[i];
    struct observation o = {.ok = ok, .type = FAULT_SOFTWARE, .severity = SEVERITY_HIGH,
                            .code = ok ? 200 : 500};
    snprintf(o.reason, sizeof o.reason, "%s", reason ? reason : "");
    c->in_flight = true;
    c->started_us = clock_mono_us();
    check_report(c, &o);
}

static void check_fall_failures_set_failing_and_call_analyzer_once(void **state)
{
    struct fixture *fx = *state;
    struct check *c = &fx->svc.checks[1];
    probe(fx, 1, false, "HTTP 500");
    probe(fx, 1, false, "HTTP 500");
    assert_false(c->failing);
    assert_int_equal(seen.failing_calls, 0);
    probe(fx, 1, false, "HTTP 502");
    assert_true(c->failing);
    assert_int_equal(c->fails, 3);
    assert_int_equal(seen.failing_calls, 1);
    assert_int_equal(seen.failing_index, 1);
    assert_string_equal(seen.failing_reason, "HTTP 502");
    /* Further failures keep it failing without a new fault. */
    for (int k = 0; k < 5; k++)
        probe(fx, 1, false, "HTTP 500");
    assert_true(c->failing);
    assert_int_equal(seen.failing_calls, 1);
    assert_int_equal(seen.reported_calls, 8); /* every report reaches the executor */
    assert_false(fx->svc.checks[0].failing);
}

static void check_success_in_between_resets_the_streak(void **state)
{
    struct fixture *fx = *state;
    struct check *c = &fx->svc.checks[0];
    probe(fx, 0, false, "refused");
    probe(fx, 0, false, "refused");
    probe(fx, 0, true, NULL);
    assert_int_equal(c->fails, 0);
    assert_int_equal(c->oks, 1);
    probe(fx, 0, false, "refused");
    probe(fx, 0, false, "refused");
    assert_false(c->failing);
    assert_int_equal(seen.failing_calls, 0);
    probe(fx, 0, false, "refused");
    assert_true(c->failing);
    assert_int_equal(seen.failing_calls, 1);
}

static void check_rise_successes_clear_failing(void **state)
{
    struct fixture *fx = *state;
    struct check *c = &fx->svc.checks[0];
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
    /* Failing again later is a new fault. */
    for (int k = 0; k < 3; k++)
        probe(fx, 0, false, "down again");
    assert_true(c->failing);
    assert_int_equal(seen.failing_calls, 2);
}

static void check_while_verifying_does_not_call_analyzer(void **state)
{
    struct fixture *fx = *state;
    struct check *c = &fx->svc.checks[0];
    fx->svc.verifying = true;
    for (int k = 0; k < 4; k++)
        probe(fx, 0, false, "still starting");
    assert_true(c->failing);
    assert_int_equal(seen.failing_calls, 0);
    assert_int_equal(seen.reported_calls, 4); /* the executor judges instead */
}

static void check_all_passing_needs_rise_oks_on_every_check(void **state)
{
    struct fixture *fx = *state;
    assert_false(check_all_passing(&fx->svc)); /* nothing probed yet */
    probe(fx, 0, true, NULL);
    probe(fx, 0, true, NULL);
    probe(fx, 1, true, NULL);
    assert_false(check_all_passing(&fx->svc)); /* check 1: 1 of rise 2 */
    probe(fx, 1, true, NULL);
    assert_true(check_all_passing(&fx->svc));
    /* A failing check is not passing even with enough oks counted. */
    fx->svc.checks[1].failing = true;
    assert_false(check_all_passing(&fx->svc));
    fx->svc.checks[1].failing = false;
    /* After a reset (a new spawn) the oks must be earned again. */
    check_reset_streaks(&fx->svc);
    assert_int_equal(fx->svc.checks[0].oks, 0);
    assert_false(check_all_passing(&fx->svc));
}

static void check_all_passing_with_no_checks(void **state)
{
    struct fixture *fx = *state;
    size_t n = fx->svc.n_checks;
    fx->svc.n_checks = 0;
    assert_true(check_all_passing(&fx->svc));
    fx->svc.n_checks = n;
}

static void check_reset_streaks_keeps_failing(void **state)
{
    struct fixture *fx = *state;
    struct check *c = &fx->svc.checks[0];
    for (int k = 0; k < 3; k++)
        probe(fx, 0, false, "x");
    check_reset_streaks(&fx->svc);
    assert_int_equal(c->fails, 0);
    assert_int_equal(c->oks, 0);
    assert_true(c->failing);
}

static void check_report_after_cancel_is_ignored(void **state)
{
    struct fixture *fx = *state;
    struct check *c = &fx->svc.checks[0];
    c->in_flight = true;
    c->started_us = clock_mono_us();
    check_stop_all(&fx->svc);
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
    check_stop_all(&fx->svc);
    assert_int_equal(seen.cancels, 1);
}

static void check_report_computes_latency_from_start(void **state)
{
    struct fixture *fx = *state;
    struct check *c = &fx->svc.checks[0];
    struct observation o = {.ok = true, .code = 200, .latency_us = 999999999};
    uint64_t before_ms = clock_wall_ms();
    c->in_flight = true;
    c->started_us = clock_mono_us() - 5000;
    check_report(c, &o);
    assert_true(o.latency_us >= 5000 && o.latency_us < 5000 + 500000);
    assert_int_equal(c->last.latency_us, o.latency_us);
    assert_int_equal(c->last.code, 200);
    assert_true(c->last.ok);
    assert_true(c->has_result);
    assert_int_equal(c->probes, 1);
    assert_true(c->last_ms >= before_ms);
    assert_false(c->in_flight);
}

/* Through the loop: the timer starts a probe via ops->start. */
static void check_start_all_probes_through_the_detector(void **state)
{
    struct fixture *fx = *state;
    check_start_all(&fx->svc, 0);
    uint64_t deadline = clock_mono_us() + 1000000;
    while (seen.starts < N_CHECKS && clock_mono_us() < deadline)
        uv_run(&fx->loop, UV_RUN_ONCE);
    assert_int_equal(seen.starts, N_CHECKS);
    assert_true(fx->svc.checks[0].in_flight);
    assert_true(fx->svc.checks[1].in_flight);
    check_stop_all(&fx->svc);
    assert_int_equal(seen.cancels, N_CHECKS);
}

/* A detector that cannot even start counts as a failed probe. */
static void check_start_failure_is_a_failed_probe(void **state)
{
    struct fixture *fx = *state;
    struct check *c = &fx->svc.checks[0];
    seen.start_result = -EMFILE;
    fx->svc.proc_state = PROC_RUNNING; /* so the check reschedules itself */
    fx->ccfg[0].interval_ms = 10;
    fx->ccfg[1].fall = 100; /* only check 0 may reach its threshold */
    check_start_all(&fx->svc, 0);
    uint64_t deadline = clock_mono_us() + 2000000;
    while (!c->failing && clock_mono_us() < deadline)
        uv_run(&fx->loop, UV_RUN_ONCE);
    assert_true(c->failing);
    assert_int_equal(c->last.type, FAULT_RESOURCE);
    assert_int_equal(seen.failing_calls, 1);
    assert_int_equal(seen.failing_index, 0);
    assert_non_null(strstr(seen.failing_reason, "cannot start probe"));
    assert_false(c->in_flight);
    check_stop_all(&fx->svc);
}

/* Between a first failure and fall, the next probe comes sooner. */
static void check_hurries_while_confirming_a_failure(void **state)
{
    struct fixture *fx = *state;
    struct check *c = &fx->svc.checks[0];
    fx->svc.proc_state = PROC_RUNNING;
    probe(fx, 0, true, NULL);
    uint64_t due = uv_timer_get_due_in(&c->timer);
    assert_true(due > 900 && due <= 1000); /* the interval */
    uv_timer_stop(&c->timer);
    probe(fx, 0, false, "timeout");
    assert_true(uv_timer_get_due_in(&c->timer) <= 50);
    uv_timer_stop(&c->timer);
    probe(fx, 0, false, "timeout");
    probe(fx, 0, false, "timeout");
    uv_timer_stop(&c->timer);
    assert_true(c->failing);
    probe(fx, 0, false, "timeout"); /* failing: back to the interval */
    assert_true(uv_timer_get_due_in(&c->timer) > 900);
    check_stop_all(&fx->svc);
}

int main(void)
{
#define FX(t) cmocka_unit_test_setup_teardown(t, fixture_setup, fixture_teardown)
    const struct CMUnitTest tests[] = {
        FX(check_fall_failures_set_failing_and_call_analyzer_once),
        FX(check_success_in_between_resets_the_streak),
        FX(check_rise_successes_clear_failing),
        FX(check_while_verifying_does_not_call_analyzer),
        FX(check_all_passing_needs_rise_oks_on_every_check),
        FX(check_all_passing_with_no_checks),
        FX(check_reset_streaks_keeps_failing),
        FX(check_report_after_cancel_is_ignored),
        FX(check_report_computes_latency_from_start),
        FX(check_start_all_probes_through_the_detector),
        FX(check_start_failure_is_a_failed_probe),
        FX(check_hurries_while_confirming_a_failure),
    };
#undef FX
    return cmocka_run_group_tests(tests, NULL, NULL);
}
