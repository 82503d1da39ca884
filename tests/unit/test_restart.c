/* Unit tests of the restart policy: intensity limit, backoff and jitter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "config/config-t.h"
#include "daemon/service-t.h"
#include "lib/backoff.h"

struct fixture {
    struct service_cfg cfg; /* restart policy under test */
    struct service svc;     /* restart_log and backoff_ms only */
};

/* A service whose restart log has exactly max + 1 slots, as service.c makes it,
 * so ASan catches a write past the end. */
static struct fixture *fixture_new(unsigned max, uint64_t window_ms, uint64_t stable_ms,
                                   uint64_t initial_ms, uint64_t cap_ms)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fx->cfg.restart = (struct restart_cfg){.max = max, .window_ms = window_ms,
                                           .stable_ms = stable_ms,
                                           .backoff_initial_ms = initial_ms,
                                           .backoff_max_ms = cap_ms};
    fx->svc.cfg = &fx->cfg;
    fx->svc.restart_log = calloc(max + 1, sizeof(uint64_t));
    assert_non_null(fx->svc.restart_log);
    fx->svc.backoff_ms = initial_ms;
    return fx;
}

static void fixture_free(struct fixture *fx)
{
    free(fx->svc.restart_log);
    free(fx);
}

/* v is within +-20% of nominal. */
static void assert_jittered(uint64_t v, uint64_t nominal)
{
    if (v * 5 < nominal * 4 || v * 5 > nominal * 6)
        fail_msg("%llu is not within 20%% of %llu", (unsigned long long)v,
                 (unsigned long long)nominal);
}

static void restart_backoff_doubles_until_max(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new(5, 60000, 1000, 100, 1000);
    static const uint64_t nominal[] = {100, 200, 400, 800, 1000, 1000, 1000};
    for (size_t i = 0; i < sizeof nominal / sizeof *nominal; i++) {
        uint64_t d = restart_delay(&fx->svc, 10);
        assert_jittered(d, nominal[i]);
        uint64_t next = nominal[i] * 2 > 1000 ? 1000 : nominal[i] * 2;
        assert_int_equal(fx->svc.backoff_ms, next);
    }
    fixture_free(fx);
}

static void restart_stable_uptime_restarts_at_once_and_resets_backoff(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new(5, 60000, 1000, 100, 10000);
    for (int i = 0; i < 3; i++)
        restart_delay(&fx->svc, 999); /* just short of stable: backs off */
    assert_int_equal(fx->svc.backoff_ms, 800);
    assert_int_equal(restart_delay(&fx->svc, 1000), 0);
    assert_int_equal(fx->svc.backoff_ms, 100);
    assert_int_equal(restart_delay(&fx->svc, 5000), 0);
    assert_int_equal(fx->svc.backoff_ms, 100);
    /* The next quick death starts the backoff from the beginning again. */
    assert_jittered(restart_delay(&fx->svc, 0), 100);
    assert_int_equal(fx->svc.backoff_ms, 200);
    fixture_free(fx);
}

static void restart_limit_counts_only_within_window(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new(3, 1000, 1000, 100, 10000);
    const uint64_t t = 50000;
    assert_true(restart_allowed(&fx->svc, t));
    restart_record(&fx->svc, t);
    restart_record(&fx->svc, t + 100);
    assert_true(restart_allowed(&fx->svc, t + 150)); /* 2 of 3 */
    restart_record(&fx->svc, t + 200);
    assert_false(restart_allowed(&fx->svc, t + 300)); /* 3 of 3 */
    assert_false(restart_allowed(&fx->svc, t + 999)); /* the first is still inside */
    assert_int_equal(fx->svc.restart_log_len, 3);
    /* Exactly one window after the first restart, it no longer counts. */
    assert_true(restart_allowed(&fx->svc, t + 1000));
    assert_int_equal(fx->svc.restart_log_len, 2);
    assert_int_equal(fx->svc.restart_log[0], t + 100);
    assert_int_equal(fx->svc.restart_log[1], t + 200);
    assert_true(restart_allowed(&fx->svc, t + 5000));
    assert_int_equal(fx->svc.restart_log_len, 0);
    fixture_free(fx);
}

static void restart_record_keeps_newest_when_full(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new(2, 1000000, 1000, 100, 10000);
    for (uint64_t t = 1; t <= 6; t++)
        restart_record(&fx->svc, t * 10);
    assert_int_equal(fx->svc.restart_log_len, 3); /* max + 1 */
    assert_int_equal(fx->svc.restart_log[0], 40);
    assert_int_equal(fx->svc.restart_log[1], 50);
    assert_int_equal(fx->svc.restart_log[2], 60);
    assert_false(restart_allowed(&fx->svc, 70));
    fixture_free(fx);
}

/* A service whose backoff was never set still backs off from the initial
 * delay rather than staying at zero. */
static void restart_backoff_unset_starts_at_initial(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new(5, 60000, 1000, 100, 10000);
    fx->svc.backoff_ms = 0;
    restart_delay(&fx->svc, 0);
    assert_int_equal(fx->svc.backoff_ms, 100);
    assert_jittered(restart_delay(&fx->svc, 0), 100);
    fixture_free(fx);
}

static void backoff_jitter_stays_within_20_percent(void **state)
{
    (void)state;
    static const uint64_t values[] = {5, 7, 100, 1000, 12345, 10000000};
    for (size_t k = 0; k < sizeof values / sizeof *values; k++) {
        uint64_t lo = UINT64_MAX, hi = 0;
        for (int i = 0; i < 5000; i++) {
            uint64_t v = backoff_jitter(values[k]);
            assert_jittered(v, values[k]);
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        /* Jitter exists: the samples spread, below and above the nominal. */
        assert_true(lo < values[k]);
        assert_true(hi > values[k]);
    }
}

static void backoff_jitter_spreads_over_the_whole_range(void **state)
{
    (void)state;
    /* 5000 samples of 80..120: each tenth of the range is hit. */
    unsigned buckets[10] = {0};
    for (int i = 0; i < 5000; i++) {
        uint64_t v = backoff_jitter(1000);
        buckets[v >= 1200 ? 9 : (v - 800) / 40]++;
    }
    for (int b = 0; b < 10; b++)
        assert_true(buckets[b] > 200);
}

static void backoff_jitter_keeps_tiny_delays(void **state)
{
    (void)state;
    for (uint64_t ms = 0; ms < 5; ms++)
        assert_int_equal(backoff_jitter(ms), ms);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(restart_backoff_doubles_until_max),
        cmocka_unit_test(restart_stable_uptime_restarts_at_once_and_resets_backoff),
        cmocka_unit_test(restart_limit_counts_only_within_window),
        cmocka_unit_test(restart_record_keeps_newest_when_full),
        cmocka_unit_test(restart_backoff_unset_starts_at_initial),
        cmocka_unit_test(backoff_jitter_stays_within_20_percent),
        cmocka_unit_test(backoff_jitter_spreads_over_the_whole_range),
        cmocka_unit_test(backoff_jitter_keeps_tiny_delays),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
