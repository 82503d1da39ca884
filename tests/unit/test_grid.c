/* lib/grid: timers on a grid of the loop's clock run at the start of their
 * slot, never before it, slot by slot and in arming order within one; a
 * disarmed one never runs, even when another timer of its slot disarms it
 * mid-firing; re-arming moves one; one many turns of the wheel ahead waits
 * for its own turn; a loop held past a whole turn runs every timer once, in
 * slot order; a timer re-armed from its callback waits for a later slot;
 * and a loop with no grid timer armed holds no handle of the module. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include <uv.h>

#include "lib/grid.h"

#define MAX_FIRED 16

struct fx;

struct item {
    struct grid_timer g; /* first: the callback finds its item */
    struct fx *f;
    int id;
    uint64_t grid_ms;
    uint64_t slot;       /* the slot it was armed for */
    int fired;           /* times its callback ran */
    uint64_t fired_ms;   /* the loop's time then */
    struct item *stop;   /* disarmed by this one's callback; NULL: none */
    int again;           /* times its callback re-arms it at 0 ms */
    uint64_t again_slot; /* the slot of that re-arming */
};

struct fx {
    uv_loop_t loop;
    int order[MAX_FIRED]; /* ids in firing order */
    int n;
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0); /* no wheel left open */
    free(f);
    return 0;
}

static void item_cb(struct grid_timer *g)
{
    struct item *it = (struct item *)g;
    struct fx *f = it->f;
    it->fired++;
    it->fired_ms = uv_now(&f->loop);
    assert_true(f->n < MAX_FIRED);
    f->order[f->n++] = it->id;
    if (it->stop)
        grid_stop(&it->stop->g);
    if (it->again-- > 0) {
        assert_int_equal(grid_start(&it->g, &f->loop, item_cb, 0, it->grid_ms), 0);
        it->again_slot = it->g.slot;
        assert_true(it->again_slot > it->fired_ms / it->grid_ms);
    }
}

static void arm(struct fx *f, struct item *it, int id, uint64_t ms, uint64_t grid_ms)
{
    it->f = f;
    it->id = id;
    it->grid_ms = grid_ms;
    assert_int_equal(grid_start(&it->g, &f->loop, item_cb, ms, grid_ms), 0);
    assert_true(grid_armed(&it->g));
    it->slot = it->g.slot;
}

/* Ran once, not before its slot began. */
static void assert_on_time(const struct item *it)
{
    assert_int_equal(it->fired, 1);
    assert_true(it->fired_ms >= it->slot * it->grid_ms);
    assert_false(grid_armed(&it->g));
}

/* They ran in the order of the slots they were armed for, those of one
 * slot in arming order (their order in v). The slots are read, not
 * assumed: a busy host that held the arming past a slot's end moved the
 * later ones to later slots. */
static void assert_slot_order(const struct fx *f, struct item *const *v, int n)
{
    struct item *want[MAX_FIRED];
    assert_true(n <= MAX_FIRED && f->n == n);
    for (int i = 0; i < n; i++) {
        int at = i;
        while (at > 0 && want[at - 1]->slot > v[i]->slot) {
            want[at] = want[at - 1];
            at--;
        }
        want[at] = v[i];
    }
    for (int i = 0; i < n; i++)
        assert_int_equal(f->order[i], want[i]->id);
}

static void test_slots_run_in_order_and_never_early(void **state)
{
    struct fx *f = *state;
    struct item a = {0}, b = {0}, c = {0}, d = {0};
    arm(f, &a, 1, 60, 10);
    arm(f, &b, 2, 30, 10);
    arm(f, &c, 3, 30, 10); /* b's slot, armed after it */
    arm(f, &d, 4, 250, 10);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_on_time(&a);
    assert_on_time(&b);
    assert_on_time(&c);
    assert_on_time(&d);
    assert_slot_order(f, (struct item *[]){&a, &b, &c, &d}, 4); /* b, c, a, d */
}

static void test_disarmed_never_runs(void **state)
{
    struct fx *f = *state;
    struct item a = {0}, b = {0}, c = {0}, d = {0};
    arm(f, &a, 1, 20, 10);
    arm(f, &b, 2, 20, 10); /* a's slot: a disarms it while the slot fires */
    arm(f, &c, 3, 40, 10);
    arm(f, &d, 4, 40, 10);
    a.stop = &b;
    grid_stop(&c.g);
    grid_stop(&c.g); /* twice: a no-op */
    grid_stop(NULL);
    assert_false(grid_armed(&c.g));
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_on_time(&a);
    assert_int_equal(b.fired, 0);
    assert_int_equal(c.fired, 0);
    assert_on_time(&d);
    assert_int_equal(f->n, 2);
}

static void test_rearming_moves_a_timer(void **state)
{
    struct fx *f = *state;
    struct item a = {0}, b = {0};
    arm(f, &a, 1, 20, 10);
    arm(f, &b, 2, 40, 10);
    arm(f, &a, 1, 80, 10); /* later than b now */
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_on_time(&a);
    assert_on_time(&b);
    assert_slot_order(f, (struct item *[]){&b, &a}, 2); /* b, then a */
}

/* 256 slots of 1 ms a turn: 600 ms is two turns ahead of a 5 ms timer in
 * the same wheel, and must not run on the turns it shares a bucket with. */
static void test_many_turns_ahead_waits_its_turn(void **state)
{
    struct fx *f = *state;
    struct item far = {0}, near = {0}, next = {0};
    arm(f, &far, 1, 600, 1);
    arm(f, &near, 2, 5, 1);
    arm(f, &next, 3, 600 % 256, 1); /* far's bucket, one turn sooner */
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_on_time(&far);
    assert_on_time(&near);
    assert_on_time(&next);
    assert_slot_order(f, (struct item *[]){&far, &near, &next}, 3); /* near, next, far */
}

/* Held 300 ms (more than a turn of 1 ms slots) after arming: each runs
 * once, in slot order. */
static void test_loop_held_past_a_turn_runs_each_once(void **state)
{
    struct fx *f = *state;
    struct item a = {0}, b = {0}, c = {0};
    arm(f, &a, 1, 200, 1);
    arm(f, &b, 2, 10, 1);
    arm(f, &c, 3, 100, 1);
    nanosleep(&(struct timespec){.tv_nsec = 300 * 1000 * 1000}, NULL);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_on_time(&a);
    assert_on_time(&b);
    assert_on_time(&c);
    assert_slot_order(f, (struct item *[]){&a, &b, &c}, 3); /* b, c, a */
}

/* Re-armed at 0 ms from its own callback: due at a later slot, so each
 * firing runs it once and the loop is not held by it. */
static void test_rearmed_from_callback_waits_for_a_later_slot(void **state)
{
    struct fx *f = *state;
    struct item a = {0};
    a.again = 3;
    arm(f, &a, 1, 0, 10);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(a.fired, 4);
    assert_true(a.fired_ms >= a.again_slot * 10);
    assert_true(a.again_slot >= a.slot + 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_slots_run_in_order_and_never_early, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_disarmed_never_runs, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_rearming_moves_a_timer, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_many_turns_ahead_waits_its_turn, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_loop_held_past_a_turn_runs_each_once, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_rearmed_from_callback_waits_for_a_later_slot, fx_setup,
                                        fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
