/* lib/deadline: deadlines of several durations on one loop run in due
 * order (those due together in arming order), never before they are due;
 * a disarmed one never runs, wherever it sat in its list; re-arming moves
 * one; a list whose head went still runs the rest on time; and a loop with
 * no deadline armed holds no handle of the module. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <uv.h>

#include "lib/deadline.h"

#define MAX_FIRED 16

struct fx;

struct item {
    struct deadline d; /* first: the callback finds its item */
    struct fx *f;
    int id;
    uint64_t armed_ms; /* the loop's time just before arming */
    uint64_t ms;       /* its duration */
    uint64_t due_ms;   /* when the module made it due (read at arming) */
    int fired;         /* times its callback ran */
    uint64_t fired_ms; /* the loop's time then */
    struct item *stop; /* disarmed by this one's callback; NULL: none */
    int again;         /* times its callback re-arms it at 0 ms */
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
    assert_int_equal(uv_loop_close(&f->loop), 0); /* no list left open */
    free(f);
    return 0;
}

static void item_cb(struct deadline *d)
{
    struct item *it = (struct item *)d;
    struct fx *f = it->f;
    it->fired++;
    it->fired_ms = uv_now(&f->loop);
    assert_true(f->n < MAX_FIRED);
    f->order[f->n++] = it->id;
    if (it->stop)
        deadline_stop(&it->stop->d);
    if (it->again-- > 0)
        assert_int_equal(deadline_start(&it->d, &f->loop, item_cb, 0), 0);
}

static void arm(struct fx *f, struct item *it, int id, uint64_t ms)
{
    it->f = f;
    it->id = id;
    it->ms = ms;
    uv_update_time(&f->loop);
    it->armed_ms = uv_now(&f->loop);
    assert_int_equal(deadline_start(&it->d, &f->loop, item_cb, ms), 0);
    assert_true(deadline_armed(&it->d));
    it->due_ms = it->d.due_ms;
}

/* Never early: the loop's time at the callback is at least the arming
 * time plus the duration. */
static void assert_on_time(const struct item *it)
{
    assert_int_equal(it->fired, 1);
    assert_true(it->fired_ms >= it->armed_ms + it->ms);
    assert_false(deadline_armed(&it->d));
}

static void deadlines_of_several_durations_run_in_due_order_and_never_early(void **state)
{
    struct fx *f = *state;
    struct item it[6] = {0};
    /* ids in the order they run when armed within a few ms; a busy host
     * that holds the arming longer moves the dues, and then the order
     * they must run in is theirs: by due, then by arming. */
    arm(f, &it[0], 4, 60);
    arm(f, &it[1], 1, 20);
    arm(f, &it[2], 0, 5);
    arm(f, &it[3], 2, 20);
    arm(f, &it[4], 5, 60);
    arm(f, &it[5], 3, 40);
    int want[6];
    for (int i = 0; i < 6; i++) {
        int at = i;
        while (at > 0 && it[want[at - 1]].due_ms > it[i].due_ms) {
            want[at] = want[at - 1];
            at--;
        }
        want[at] = i;
    }
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(f->n, 6);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(f->order[i], it[want[i]].id);
        assert_on_time(&it[i]);
    }
}

static void a_disarmed_deadline_never_runs_head_middle_or_tail(void **state)
{
    struct fx *f = *state;
    struct item it[5] = {0};
    for (int i = 0; i < 5; i++)
        arm(f, &it[i], i, 10);
    deadline_stop(&it[0].d); /* the head: its list's timer stays armed for it */
    deadline_stop(&it[2].d);
    deadline_stop(&it[4].d); /* the tail */
    deadline_stop(&it[4].d); /* twice is nothing */
    deadline_stop(NULL);
    assert_false(deadline_armed(&it[0].d));
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(f->n, 2);
    assert_int_equal(f->order[0], 1);
    assert_int_equal(f->order[1], 3);
    assert_on_time(&it[1]);
    assert_on_time(&it[3]);
    assert_int_equal(it[0].fired + it[2].fired + it[4].fired, 0);
}

/* The list's timer, armed for a head that went, wakes the loop for
 * nothing; the next deadline of that list still waits for its own time. */
struct swap {
    struct fx *f;
    struct item *first, *late;
};

static void swap_cb(uv_timer_t *t)
{
    struct swap *s = t->data;
    arm(s->f, s->late, 1, 5); /* due after first was */
    deadline_stop(&s->first->d);
    uv_close((uv_handle_t *)t, NULL);
}

static void after_its_head_went_a_list_runs_the_next_on_time(void **state)
{
    struct fx *f = *state;
    struct item first = {0}, late = {0};
    struct swap s = {f, &first, &late};
    uv_timer_t t;
    arm(f, &first, 0, 5);
    uv_timer_init(&f->loop, &t);
    t.data = &s;
    uv_timer_start(&t, swap_cb, 2, 0);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(f->n, 1);
    assert_int_equal(f->order[0], 1);
    assert_on_time(&late);
    assert_int_equal(first.fired, 0);
}

static void rearming_moves_a_deadline_and_it_runs_once(void **state)
{
    struct fx *f = *state;
    struct item moved = {0}, mark = {0};
    arm(f, &moved, 0, 80);
    arm(f, &mark, 1, 30);
    arm(f, &moved, 0, 5); /* from the 80 ms list to the 5 ms one */
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(f->n, 2);
    /* by their dues: moved's first unless the host held the arming 25 ms */
    bool moved_first = moved.due_ms <= mark.due_ms;
    assert_int_equal(f->order[0], moved_first ? 0 : 1);
    assert_int_equal(f->order[1], moved_first ? 1 : 0);
    assert_on_time(&moved); /* once: the old arming is gone */
    assert_on_time(&mark);
}

static void a_callback_may_disarm_one_due_with_it_or_rearm_itself(void **state)
{
    struct fx *f = *state;
    struct item a = {0}, b = {0}, c = {0};
    arm(f, &a, 0, 10);
    arm(f, &b, 1, 10);
    arm(f, &c, 2, 10);
    a.stop = &b; /* due together with a, after it */
    c.again = 3; /* then three more runs at 0 ms */
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(a.fired, 1);
    assert_int_equal(b.fired, 0);
    assert_int_equal(c.fired, 4);
    assert_int_equal(f->n, 5);
    assert_int_equal(f->order[0], 0);
    for (int i = 1; i < 5; i++)
        assert_int_equal(f->order[i], 2);
}

/* Disarming the last deadline closes its list: the loop has nothing left
 * to wait for and returns at once, not a minute later. */
static void no_deadline_armed_no_handle_held(void **state)
{
    struct fx *f = *state;
    struct item it = {0};
    arm(f, &it, 0, 60000);
    assert_true(uv_loop_alive(&f->loop));
    deadline_stop(&it.d);
    uv_update_time(&f->loop);
    uint64_t t0 = uv_now(&f->loop);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_false(uv_loop_alive(&f->loop));
    assert_true(uv_now(&f->loop) - t0 < 30000);
    assert_int_equal(it.fired, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            deadlines_of_several_durations_run_in_due_order_and_never_early, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(a_disarmed_deadline_never_runs_head_middle_or_tail,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(after_its_head_went_a_list_runs_the_next_on_time, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(rearming_moves_a_deadline_and_it_runs_once, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(a_callback_may_disarm_one_due_with_it_or_rearm_itself,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(no_deadline_armed_no_handle_held, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
