/* Waiting in unit tests: turn a loop (or poll) until a condition holds,
 * with a deadline far beyond what a busy 2-core host under ASan needs,
 * instead of sleeping a guessed time or racing a short timer (STYLE 16b).
 * Header only: every test program can include it without a build change. */
#ifndef RECOVERD_TESTS_LOOPWAIT_H
#define RECOVERD_TESTS_LOOPWAIT_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <uv.h>

#include <cmocka.h>

#include "lib/uvclock.h"

/* How long a wait gives its condition before the test fails, ms: far above
 * what a working build needs on a loaded host, well below ctest's 300 s per
 * program. A wait that runs out is a failure, never a normal outcome. */
#define LOOPWAIT_MS 15000

#define LOOPWAIT__TICK_MS 5 /* how often a wait wakes the loop to look again */

/* One wait in progress; see loopwait_until. */
struct loopwait {
    uv_loop_t *loop;   /* borrowed */
    uv_timer_t *tick;  /* wakes uv_run; on the heap, freed by its close callback */
    uint64_t until_ns; /* uv_hrtime() deadline */
};

static void loopwait__tick_cb(uv_timer_t *t)
{
    (void)t;
}

/* Frees a wait's tick, or a mark (its timer is its first member). */
static void loopwait__close_cb(uv_handle_t *h)
{
    free(h);
}

/* The tick is on the heap so that the wait can end without running the
 * loop again (a turn could deliver what the test means to look at next);
 * it is freed by whatever runs the loop after, the teardown at the latest. */
static inline void loopwait_begin(struct loopwait *w, uv_loop_t *loop, uint64_t ms)
{
    w->loop = loop;
    w->tick = malloc(sizeof *w->tick);
    assert_non_null(w->tick);
    uv_timer_init(loop, w->tick);
    uv_timer_start(w->tick, loopwait__tick_cb, LOOPWAIT__TICK_MS, LOOPWAIT__TICK_MS);
    w->until_ns = uv_hrtime() + ms * 1000000;
}

/* One turn of the loop; false once the deadline has passed. */
static inline bool loopwait_turn(struct loopwait *w)
{
    if (uv_hrtime() >= w->until_ns)
        return false;
    uv_run(w->loop, UV_RUN_ONCE);
    return true;
}

static inline void loopwait_end(struct loopwait *w)
{
    uv_close((uv_handle_t *)w->tick, loopwait__close_cb);
    w->tick = NULL;
}

/* Turn loop until cond holds or ms have passed, and go on either way: for
 * a teardown that must clean up whatever happened (look at cond after).
 * cond is evaluated between turns, so callbacks have run in full. */
#define loopwait_try_ms(loop, cond, ms)                                                            \
    do {                                                                                           \
        struct loopwait lw__;                                                                      \
        loopwait_begin(&lw__, (loop), (ms));                                                       \
        while (!(cond) && loopwait_turn(&lw__))                                                    \
            ;                                                                                      \
        loopwait_end(&lw__);                                                                       \
    } while (0)

#define loopwait_try(loop, cond) loopwait_try_ms(loop, cond, LOOPWAIT_MS)

/* Turn loop until cond holds; fail the test if it does not within ms. */
#define loopwait_until_ms(loop, cond, ms)                                                          \
    do {                                                                                           \
        loopwait_try_ms(loop, cond, ms);                                                           \
        if (!(cond))                                                                               \
            fail_msg("%s:%d: no (%s) within %llu ms", __FILE__, __LINE__, #cond,                   \
                     (unsigned long long)(ms));                                                    \
    } while (0)

#define loopwait_until(loop, cond) loopwait_until_ms(loop, cond, LOOPWAIT_MS)

/* Turn loop for ms whatever happens: only to give something that must NOT
 * happen (a cancelled callback) the chance to show up; never to wait for
 * something that must. A busy host can only make this weaker, not fail.
 * At least one turn, however late: handles closed before it are closed
 * after it (libuv runs close callbacks at the end of every turn). */
static inline void loopwait_idle(uv_loop_t *loop, uint64_t ms)
{
    struct loopwait w;
    loopwait_begin(&w, loop, ms);
    uv_run(loop, UV_RUN_ONCE);
    while (loopwait_turn(&w))
        ;
    loopwait_end(&w);
}

/* A timer that only notes that it fired: a point in loop time to order an
 * event against. "The probe's timeout reports within T" becomes "it reports
 * before a mark due at T, armed at the same loop time as the probe's own
 * deadline timer": libuv runs the timers due in one turn in due order, so
 * the order holds however late a busy host runs the loop. Look at fired
 * when the event happens (in the test's callback), not after uv_run
 * returns: by then a late turn may have run both. */
struct loopwait_mark {
    uv_timer_t timer; /* data = this; the memory is freed by its close callback */
    bool fired;       /* the timer ran */
};

static void loopwait__mark_cb(uv_timer_t *t)
{
    ((struct loopwait_mark *)t->data)->fired = true;
}

/* Armed at the loop's time as it stands: update it (uv_update_time) just
 * before, as the code under test does before it arms its own deadline
 * (lib/uvclock.h), so that both count from the same instant. */
static inline struct loopwait_mark *loopwait_mark_new(uv_loop_t *loop, uint64_t ms)
{
    struct loopwait_mark *m = calloc(1, sizeof *m);
    assert_non_null(m);
    uv_timer_init(loop, &m->timer);
    m->timer.data = m;
    uv_timer_start(&m->timer, loopwait__mark_cb, ms, 0);
    return m;
}

static inline void loopwait_mark_free(struct loopwait_mark *m)
{
    uv_close((uv_handle_t *)&m->timer, loopwait__close_cb);
}

/* Sleep ms (EINTR-safe), between two looks at something outside any loop. */
static inline void loopwait_nap(uint64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Look at cond every few ms until it holds (a file's contents, /proc, a
 * child's exit): no loop involved. Fails the test past ms. */
#define poll_until_ms(cond, ms)                                                                    \
    do {                                                                                           \
        uint64_t pu_until__ = uv_hrtime() + (uint64_t)(ms)*1000000;                                \
        while (!(cond) && uv_hrtime() < pu_until__)                                                \
            loopwait_nap(2);                                                                       \
        if (!(cond))                                                                               \
            fail_msg("%s:%d: no (%s) within %llu ms", __FILE__, __LINE__, #cond,                   \
                     (unsigned long long)(ms));                                                    \
    } while (0)

#define poll_until(cond) poll_until_ms(cond, LOOPWAIT_MS)

/* How long until timer t is due, counted from the real now: recoverd arms
 * its timers from it (lib/uvclock) and never moves the loop's cached time,
 * which lags by as long as a busy host took since the loop last polled, so
 * uv_timer_get_due_in alone reads long by that lag. */
static inline uint64_t loopwait_due_in(const uv_timer_t *t)
{
    uint64_t at = uv_now(t->loop) + uv_timer_get_due_in(t), now = uvclock_now(t->loop);
    return at > now ? at - now : 0;
}

#endif
