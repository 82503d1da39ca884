/* lib/wheel: timers on wheels of 1 ms slots (deadlines, to the ms) and of
 * 10 ms slots (a grid) run at the start of their slot, never before it:
 * slot by slot (due order across durations), in arming order within one; a
 * disarmed one never runs, wherever it sat in its bucket, even when another
 * timer of its slot disarms it mid-firing; re-arming moves one; one many
 * turns of the wheel ahead waits for its own turn, and does not wake the
 * loop on the turns before; a loop held past a whole turn runs every timer
 * once, in slot order; a timer armed from a callback waits for a later
 * slot, and one armed at 0 ms while timers run waits for a poll; a firing
 * runs callbacks for its budget, the rest after a poll; each loop
 * has its own wheels; and a loop with no wheel timer armed holds no handle
 * of the module. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "lib/uvclock.h"
#include "lib/wheel.h"

#define MAX_FIRED 16
#define GRID_MS 10 /* the checks' grid (detect/check.c) */

struct fx;

struct item {
    struct wheel_timer w; /* first: the callback finds its item */
    struct fx *f;
    int id;
    uint64_t slot_ms;    /* its wheel's width */
    uint64_t ms;         /* its delay */
    uint64_t armed_ms;   /* the real now (the loop's clock) just before arming */
    uint64_t slot;       /* the slot it was armed for */
    int fired;           /* times its callback ran */
    uint64_t fired_ms;   /* the loop's time then */
    int fired_polls;     /* the loop's polls done then */
    struct item *stop;   /* disarmed by this one's callback; NULL: none */
    uint64_t burn_ms;    /* its callback holds the loop this long (wall time) */
    int again;           /* times its callback re-arms it at 0 ms */
    uint64_t again_slot; /* the slot of the last re-arming */
};

struct fx {
    uv_loop_t loop;
    uv_check_t polled;    /* runs after each poll for I/O */
    int polls;            /* the loop's polls so far */
    int order[MAX_FIRED]; /* ids in firing order */
    int n;
};

static void fx_polled_cb(uv_check_t *c)
{
    ((struct fx *)c->data)->polls++;
}

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    uv_check_init(&f->loop, &f->polled);
    f->polled.data = f;
    uv_check_start(&f->polled, fx_polled_cb);
    uv_unref((uv_handle_t *)&f->polled); /* the loop ends with the timers */
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    uv_close((uv_handle_t *)&f->polled, NULL);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0); /* no wheel left open */
    free(f);
    return 0;
}

static void item_cb(struct wheel_timer *w)
{
    struct item *it = (struct item *)w;
    struct fx *f = it->f;
    it->fired++;
    it->fired_ms = uv_now(&f->loop);
    it->fired_polls = f->polls;
    assert_true(f->n < MAX_FIRED);
    f->order[f->n++] = it->id;
    if (it->stop)
        wheel_stop(&it->stop->w);
    for (uint64_t end = uv_hrtime() + it->burn_ms * 1000000; uv_hrtime() < end;)
        ;
    if (it->again-- > 0) {
        assert_int_equal(wheel_start(&it->w, &f->loop, item_cb, 0, it->slot_ms), 0);
        it->again_slot = it->w.slot;
        assert_true(it->again_slot > it->fired_ms / it->slot_ms);
    }
}

static void arm(struct fx *f, struct item *it, int id, uint64_t ms, uint64_t slot_ms)
{
    it->f = f;
    it->id = id;
    it->ms = ms;
    it->slot_ms = slot_ms;
    it->armed_ms = uvclock_now(&f->loop);
    assert_int_equal(wheel_start(&it->w, &f->loop, item_cb, ms, slot_ms), 0);
    assert_true(wheel_armed(&it->w));
    it->slot = it->w.slot;
}

/* Ran once, not before its slot began; to the ms on a wheel of 1 ms. */
static void assert_on_time(const struct item *it)
{
    assert_int_equal(it->fired, 1);
    assert_true(it->fired_ms >= it->slot * it->slot_ms);
    if (it->slot_ms == 1)
        assert_true(it->fired_ms >= it->armed_ms + it->ms);
    assert_false(wheel_armed(&it->w));
}

/* v's index of the item that ran i-th. */
static int ran(const struct fx *f, struct item *const *v, int n, int i)
{
    for (int k = 0; k < n; k++)
        if (v[k]->id == f->order[i])
            return k;
    fail_msg("id %d ran, not one of the test's", f->order[i]);
    return -1;
}

/* Each of v ran once, in due order (the start of the slot it was armed
 * for), those of one wheel due together in arming order (their order in
 * v). The slots are read, not assumed: a busy host that held the arming
 * past a slot's end moved the later ones to later slots. The order the
 * comments name is the one of a host that armed them all at one instant. */
static void assert_due_order(const struct fx *f, struct item *const *v, int n)
{
    assert_int_equal(f->n, n);
    for (int i = 1; i < n; i++) {
        const struct item *a = v[ran(f, v, n, i - 1)], *b = v[ran(f, v, n, i)];
        assert_true(a->slot * a->slot_ms <= b->slot * b->slot_ms);
        if (a->slot * a->slot_ms == b->slot * b->slot_ms && a->slot_ms == b->slot_ms)
            assert_true(ran(f, v, n, i - 1) < ran(f, v, n, i));
    }
}

static void slots_run_in_order_and_never_early(void **state)
{
    struct fx *f = *state;
    struct item a = {0}, b = {0}, c = {0}, d = {0};
    arm(f, &a, 1, 60, GRID_MS);
    arm(f, &b, 2, 30, GRID_MS);
    arm(f, &c, 3, 30, GRID_MS); /* b's slot, armed after it */
    arm(f, &d, 4, 250, GRID_MS);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_on_time(&a);
    assert_on_time(&b);
    assert_on_time(&c);
    assert_on_time(&d);
    assert_due_order(f, (struct item *[]){&a, &b, &c, &d}, 4); /* b, c, a, d */
}

/* Deadlines of several durations on one wheel of 1 ms: due order, those
 * due together in arming order. */
static void deadlines_of_several_durations_run_in_due_order_and_never_early(void **state)
{
    struct fx *f = *state;
    struct item it[6] = {0};
    /* ids in the order they run, by due, then by arming */
    arm(f, &it[0], 4, 60, 1);
    arm(f, &it[1], 1, 20, 1);
    arm(f, &it[2], 0, 5, 1);
    arm(f, &it[3], 2, 20, 1);
    arm(f, &it[4], 5, 60, 1);
    arm(f, &it[5], 3, 40, 1);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_due_order(f, (struct item *[]){&it[0], &it[1], &it[2], &it[3], &it[4], &it[5]}, 6);
    for (int i = 0; i < 6; i++)
        assert_on_time(&it[i]);
}

/* Disarmed before the loop ran: the head, the middle or the tail of its
 * bucket (the wheel's timer stays armed for the head: it wakes for
 * nothing), or from the callback of one due with it. */
static void a_disarmed_timer_never_runs(void **state)
{
    struct fx *f = *state;
    struct item it[5] = {0}, a = {0}, b = {0};
    for (int i = 0; i < 5; i++)
        arm(f, &it[i], i, 10, 1);
    wheel_stop(&it[0].w); /* the head */
    wheel_stop(&it[2].w);
    wheel_stop(&it[4].w); /* the tail */
    wheel_stop(&it[4].w); /* twice is nothing */
    wheel_stop(NULL);
    assert_false(wheel_armed(&it[0].w));
    arm(f, &a, 5, 20, GRID_MS);
    arm(f, &b, 6, 20, GRID_MS); /* a's slot: a disarms it while the slot fires */
    a.stop = &b;
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_due_order(f, (struct item *[]){&it[1], &it[3], &a}, 3); /* 1, 3, 5 */
    assert_on_time(&it[1]);
    assert_on_time(&it[3]);
    assert_on_time(&a);
    assert_int_equal(it[0].fired + it[2].fired + it[4].fired + b.fired, 0);
}

/* The wheel's timer, armed for a head that went, wakes the loop for
 * nothing; the next timer still waits for its own time. */
struct swap {
    struct fx *f;
    struct item *first, *late;
};

static void swap_cb(uv_timer_t *t)
{
    struct swap *s = t->data;
    arm(s->f, s->late, 1, 5, 1); /* due after first was */
    wheel_stop(&s->first->w);
    uv_close((uv_handle_t *)t, NULL);
}

static void after_its_head_went_a_wheel_runs_the_next_on_time(void **state)
{
    struct fx *f = *state;
    struct item first = {0}, late = {0};
    struct swap s = {f, &first, &late};
    uv_timer_t t;
    arm(f, &first, 0, 5, 1);
    uv_timer_init(&f->loop, &t);
    t.data = &s;
    uvclock_arm(&t, swap_cb, 2);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_due_order(f, (struct item *[]){&late}, 1);
    assert_on_time(&late);
    assert_int_equal(first.fired, 0);
}

/* Later on the same wheel, sooner, and onto another wheel: it runs once,
 * at its last arming's time. */
static void rearming_moves_a_timer_and_it_runs_once(void **state)
{
    struct fx *f = *state;
    struct item a = {0}, b = {0}, moved = {0}, mark = {0};
    arm(f, &a, 1, 20, GRID_MS);
    arm(f, &b, 2, 50, GRID_MS);
    arm(f, &a, 1, 90, GRID_MS); /* later than b now */
    arm(f, &moved, 0, 80, 1);
    arm(f, &mark, 3, 25, 1);
    arm(f, &moved, 0, 5, GRID_MS); /* sooner, and from one wheel to the other */
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    /* moved, mark, b, a */
    assert_due_order(f, (struct item *[]){&b, &a, &mark, &moved}, 4);
    assert_on_time(&a);
    assert_on_time(&b);
    assert_on_time(&moved); /* once: the old arming is gone */
    assert_on_time(&mark);
}

/* 256 slots of 1 ms a turn: 600 ms is two turns ahead of a 5 ms timer in
 * the same wheel, and must not run on the turns it shares a bucket with. */
static void many_turns_ahead_waits_its_turn(void **state)
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
    assert_due_order(f, (struct item *[]){&far, &near, &next}, 3); /* near, next, far */
}

/* A deadline four turns of 1 ms slots ahead, left alone once a near one
 * ran: the wheel sleeps until it (a wakeup per turn would be one for
 * nothing each 256 ms). */
static void a_timer_turns_ahead_does_not_wake_the_loop_before(void **state)
{
    struct fx *f = *state;
    struct item near = {0}, far = {0};
    arm(f, &near, 1, 5, 1);
    arm(f, &far, 2, 1000, 1);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_on_time(&near);
    assert_on_time(&far);
    assert_true(far.fired_polls - near.fired_polls <= 1);
}

/* Held 300 ms (more than a turn of 1 ms slots) after arming: each runs
 * once, in slot order. */
static void loop_held_past_a_turn_runs_each_once(void **state)
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
    assert_due_order(f, (struct item *[]){&a, &b, &c}, 3); /* b, c, a */
}

/* Timers due together whose callbacks each hold the loop past a firing's
 * budget (3 ms against 2): one runs per firing, with a poll between, in
 * due order, none lost; a quick one due with them still waits its turn. */
static void a_firing_runs_its_budget_and_the_rest_after_a_poll(void **state)
{
    struct fx *f = *state;
    struct item v[5];
    memset(v, 0, sizeof v);
    struct item *p[5];
    for (int i = 0; i < 5; i++) {
        v[i].burn_ms = i == 4 ? 0 : 3;
        arm(f, &v[i], i + 1, 20, GRID_MS);
        p[i] = &v[i];
    }
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_due_order(f, p, 5);
    for (int i = 0; i < 5; i++)
        assert_on_time(&v[i]);
    /* Each ran a poll or more after the one before it: every firing
     * ended with the callback that spent its budget. */
    for (int i = 1; i < 5; i++)
        assert_true(v[i].fired_polls > v[i - 1].fired_polls);
}

/* Re-armed at 0 ms from its own callback: due at a later slot, so each
 * firing runs it once and the loop is not held by it; one of its slot may
 * disarm another due with it. */
static void a_callback_may_rearm_itself_or_disarm_one_due_with_it(void **state)
{
    struct fx *f = *state;
    struct item g = {0}, a = {0}, b = {0}, c = {0};
    g.again = 3;
    arm(f, &g, 9, 0, GRID_MS);
    arm(f, &a, 0, 10, 1);
    arm(f, &b, 1, 10, 1);
    arm(f, &c, 2, 10, 1);
    a.stop = &b; /* due together with a, after it */
    c.again = 3; /* then three more runs at 0 ms */
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(g.fired, 4);
    assert_true(g.fired_ms >= g.again_slot * GRID_MS);
    assert_true(g.again_slot >= g.slot + 3);
    assert_int_equal(a.fired, 1);
    assert_int_equal(b.fired, 0);
    assert_int_equal(c.fired, 4);
    assert_true(c.again_slot >= c.slot + 3);
    assert_int_equal(f->n, 9);
    int deadlines[5], k = 0; /* the order on the wheel of 1 ms */
    for (int i = 0; i < f->n; i++)
        if (f->order[i] != 9)
            deadlines[k++] = f->order[i];
    assert_int_equal(k, 5);
    assert_int_equal(deadlines[0], 0);
    for (int i = 1; i < 5; i++)
        assert_int_equal(deadlines[i], 2);
}

/* Armed at 0 ms from a plain timer's callback, in the millisecond the
 * turn began or later: libuv 1.44 would run a timer due at the loop's
 * cached time in that same timers phase, before the loop polled. */
struct zero {
    struct fx *f;
    struct item *it;
    int polls; /* the loop's polls when it was armed */
};

static void zero_cb(uv_timer_t *t)
{
    struct zero *z = t->data;
    z->polls = z->f->polls;
    arm(z->f, z->it, 0, 0, 1);
    uv_close((uv_handle_t *)t, NULL);
}

static void a_timer_armed_at_0_ms_while_timers_run_waits_for_a_poll(void **state)
{
    struct fx *f = *state;
    struct item it = {0};
    struct zero z = {f, &it, 0};
    uv_timer_t t;
    uv_timer_init(&f->loop, &t);
    t.data = &z;
    uvclock_arm(&t, zero_cb, 0);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_on_time(&it);
    assert_true(it.fired_polls > z.polls);
}

/* Each loop has its wheels: one loop's run never runs another's timers. */
static void each_loop_has_its_own_wheels(void **state)
{
    struct fx *f = *state;
    struct fx other = {0};
    struct item mine = {0}, theirs = {0};
    assert_int_equal(uv_loop_init(&other.loop), 0);
    arm(f, &mine, 1, 5, GRID_MS);
    arm(&other, &theirs, 2, 5, GRID_MS);
    assert_ptr_not_equal(mine.w.wheel, theirs.w.wheel);
    assert_int_equal(uv_run(&other.loop, UV_RUN_DEFAULT), 0);
    assert_on_time(&theirs);
    assert_int_equal(other.n, 1);
    assert_int_equal(mine.fired, 0);
    assert_true(wheel_armed(&mine.w));
    assert_int_equal(uv_loop_close(&other.loop), 0);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_on_time(&mine);
    assert_due_order(f, (struct item *[]){&mine}, 1);
}

/* Disarming the last timer closes its wheel: the loop has nothing left to
 * wait for and returns at once, not a minute later. */
static void no_timer_armed_no_handle_held(void **state)
{
    struct fx *f = *state;
    struct item it = {0}, g = {0};
    arm(f, &it, 0, 60000, 1);
    arm(f, &g, 1, 60000, GRID_MS);
    assert_true(uv_loop_alive(&f->loop));
    wheel_stop(&it.w);
    wheel_stop(&g.w);
    uv_update_time(&f->loop);
    uint64_t t0 = uv_now(&f->loop);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_false(uv_loop_alive(&f->loop));
    assert_true(uv_now(&f->loop) - t0 < 30000);
    assert_int_equal(it.fired + g.fired, 0);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(slots_run_in_order_and_never_early),
        T(deadlines_of_several_durations_run_in_due_order_and_never_early),
        T(a_disarmed_timer_never_runs),
        T(after_its_head_went_a_wheel_runs_the_next_on_time),
        T(rearming_moves_a_timer_and_it_runs_once),
        T(many_turns_ahead_waits_its_turn),
        T(a_timer_turns_ahead_does_not_wake_the_loop_before),
        T(loop_held_past_a_turn_runs_each_once),
        T(a_firing_runs_its_budget_and_the_rest_after_a_poll),
        T(a_callback_may_rearm_itself_or_disarm_one_due_with_it),
        T(a_timer_armed_at_0_ms_while_timers_run_waits_for_a_poll),
        T(each_loop_has_its_own_wheels),
        T(no_timer_armed_no_handle_held),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
