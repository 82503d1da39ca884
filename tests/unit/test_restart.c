/* Unit tests of the restart policy (recover/restart.h: intensity limit
 * within a window, backoff with jitter, stable resets) and of the jitter
 * itself (lib/backoff.h). Pure bookkeeping: no loop, no process. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "config/config-t.h"
#include "lib/backoff.h"
#include "recover/restart.h"

static struct restart_cfg cfg_make(unsigned max, uint64_t window_ms, uint64_t stable_ms,
                                   uint64_t initial_ms, uint64_t cap_ms)
{
    return (struct restart_cfg){.max = max,
                                .window_ms = window_ms,
                                .stable_ms = stable_ms,
                                .backoff_initial_ms = initial_ms,
                                .backoff_max_ms = cap_ms};
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
    struct restart_cfg rc = cfg_make(5, 60000, 1000, 100, 1000);
    struct restart_policy p = {0};
    static const uint64_t nominal[] = {100, 200, 400, 800, 1000, 1000, 1000};
    for (size_t i = 0; i < sizeof nominal / sizeof *nominal; i++) {
        uint64_t d = restart_delay(&p, &rc, 10);
        assert_jittered(d, nominal[i]);
        uint64_t next = nominal[i] * 2 > 1000 ? 1000 : nominal[i] * 2;
        assert_int_equal(p.backoff_ms, next);
    }
    restart_policy_free(&p);
}

static void restart_stable_uptime_restarts_at_once_and_resets_backoff(void **state)
{
    (void)state;
    struct restart_cfg rc = cfg_make(5, 60000, 1000, 100, 10000);
    struct restart_policy p = {0};
    for (int i = 0; i < 3; i++)
        restart_delay(&p, &rc, 999); /* just short of stable: backs off */
    assert_int_equal(p.backoff_ms, 800);
    assert_int_equal(restart_delay(&p, &rc, 1000), 0);
    assert_int_equal(p.backoff_ms, 100);
    assert_int_equal(restart_delay(&p, &rc, 5000), 0);
    assert_int_equal(p.backoff_ms, 100);
    /* The next quick death starts the backoff from the beginning again. */
    assert_jittered(restart_delay(&p, &rc, 0), 100);
    assert_int_equal(p.backoff_ms, 200);
    restart_policy_free(&p);
}

static void restart_limit_counts_only_within_window(void **state)
{
    (void)state;
    struct restart_cfg rc = cfg_make(3, 1000, 1000, 100, 10000);
    struct restart_policy p = {0};
    const uint64_t t = 50000;
    assert_true(restart_allowed(&p, &rc, t));
    assert_int_equal(restart_record(&p, &rc, t), 0);
    assert_int_equal(restart_record(&p, &rc, t + 100), 0);
    assert_true(restart_allowed(&p, &rc, t + 150)); /* 2 of 3 */
    assert_int_equal(restart_record(&p, &rc, t + 200), 0);
    assert_false(restart_allowed(&p, &rc, t + 300)); /* 3 of 3 */
    assert_false(restart_allowed(&p, &rc, t + 999)); /* the first is still inside */
    assert_int_equal(p.len, 3);
    /* Exactly one window after the first restart, it no longer counts. */
    assert_true(restart_allowed(&p, &rc, t + 1000));
    assert_int_equal(p.len, 2);
    assert_int_equal(p.log[0], t + 100);
    assert_int_equal(p.log[1], t + 200);
    assert_true(restart_allowed(&p, &rc, t + 5000));
    assert_int_equal(p.len, 0);
    restart_policy_free(&p);
}

/* The log holds max + 1 entries, allocated to exactly that (ASan sees a
 * write past the end). */
static void restart_record_keeps_newest_when_full(void **state)
{
    (void)state;
    struct restart_cfg rc = cfg_make(2, 1000000, 1000, 100, 10000);
    struct restart_policy p = {0};
    for (uint64_t t = 1; t <= 6; t++)
        assert_int_equal(restart_record(&p, &rc, t * 10), 0);
    assert_int_equal(p.len, 3); /* max + 1 */
    assert_int_equal(p.cap, 3);
    assert_int_equal(p.log[0], 40);
    assert_int_equal(p.log[1], 50);
    assert_int_equal(p.log[2], 60);
    assert_false(restart_allowed(&p, &rc, 70));
    restart_policy_free(&p);
}

/* A reload may change max: a larger one grows the log, a smaller one drops
 * the oldest entries at the next record. */
static void restart_record_follows_a_changed_limit(void **state)
{
    (void)state;
    struct restart_cfg rc = cfg_make(1, 1000000, 1000, 100, 10000);
    struct restart_policy p = {0};
    restart_record(&p, &rc, 10);
    restart_record(&p, &rc, 20);
    restart_record(&p, &rc, 30);
    assert_int_equal(p.len, 2);
    rc.max = 4;
    for (uint64_t t = 40; t <= 90; t += 10)
        assert_int_equal(restart_record(&p, &rc, t), 0);
    assert_int_equal(p.len, 5);
    assert_int_equal(p.cap, 5);
    assert_int_equal(p.log[0], 50);
    assert_int_equal(p.log[4], 90);
    rc.max = 1;
    assert_int_equal(restart_record(&p, &rc, 100), 0);
    assert_int_equal(p.len, 2);
    assert_int_equal(p.log[0], 90);
    assert_int_equal(p.log[1], 100);
    assert_false(restart_allowed(&p, &rc, 110));
    restart_policy_free(&p);
}

/* Changed on purpose: a policy whose backoff is unset (0) now means "the
 * initial one" (restart.h), so the first quick death already waits the
 * initial backoff and the next one doubles it. The old service-level code
 * returned 0 for an unset backoff and only then set it to the initial. */
static void restart_backoff_unset_starts_at_initial(void **state)
{
    (void)state;
    struct restart_cfg rc = cfg_make(5, 60000, 1000, 100, 10000);
    struct restart_policy p = {0};
    assert_int_equal(p.backoff_ms, 0);
    assert_jittered(restart_delay(&p, &rc, 0), 100);
    assert_int_equal(p.backoff_ms, 200);
    assert_jittered(restart_delay(&p, &rc, 0), 200);
    restart_policy_free(&p);
}

/* An operator acted: the limit and the backoff start over. */
static void restart_policy_reset_forgets_restarts_and_backoff(void **state)
{
    (void)state;
    struct restart_cfg rc = cfg_make(2, 60000, 1000, 100, 10000);
    struct restart_policy p = {0};
    restart_record(&p, &rc, 10);
    restart_record(&p, &rc, 20);
    restart_delay(&p, &rc, 0);
    restart_delay(&p, &rc, 0);
    assert_false(restart_allowed(&p, &rc, 30));
    assert_int_equal(p.backoff_ms, 400);
    restart_policy_reset(&p);
    assert_true(restart_allowed(&p, &rc, 30));
    assert_int_equal(p.len, 0);
    assert_jittered(restart_delay(&p, &rc, 0), 100);
    /* The log's memory is kept for reuse, and freed by restart_policy_free. */
    assert_int_equal(restart_record(&p, &rc, 40), 0);
    restart_policy_free(&p);
    assert_null(p.log);
    assert_int_equal(p.len, 0);
    assert_int_equal(p.cap, 0);
    assert_int_equal(p.backoff_ms, 0);
    restart_policy_free(&p); /* twice is harmless */
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
        cmocka_unit_test(restart_record_follows_a_changed_limit),
        cmocka_unit_test(restart_backoff_unset_starts_at_initial),
        cmocka_unit_test(restart_policy_reset_forgets_restarts_and_backoff),
        cmocka_unit_test(backoff_jitter_stays_within_20_percent),
        cmocka_unit_test(backoff_jitter_spreads_over_the_whole_range),
        cmocka_unit_test(backoff_jitter_keeps_tiny_delays),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
