/* The fake clock of the unit tests: see fakeclock.h. A timer's state is a
 * node on the clock's list; O(timers) per step is fine for a test. */
#include "fakeclock.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

struct fakeclock__timer {
    struct fakeclock *fc;
    struct clock_timer *t;
    uint64_t due_us; /* when armed */
    uint64_t seq;    /* arming order */
    bool armed;
    struct fakeclock__timer *next;
};

static uint64_t fakeclock__now_us(void *ctx)
{
    return ((struct fakeclock *)ctx)->now_us;
}

static int fakeclock__init(void *ctx, struct clock_timer *t)
{
    struct fakeclock *fc = ctx;
    struct fakeclock__timer *n = calloc(1, sizeof *n);
    if (!n)
        return -ENOMEM;
    n->fc = fc;
    n->t = t;
    n->next = fc->timers;
    fc->timers = n;
    t->impl = n;
    return 0;
}

static void fakeclock__start(struct clock_timer *t, uint64_t ms)
{
    struct fakeclock__timer *n = t->impl;
    assert_non_null(n); /* not closed */
    n->due_us = n->fc->now_us + ms * 1000;
    n->seq = ++n->fc->seq;
    n->armed = true;
}

static void fakeclock__stop(struct clock_timer *t)
{
    struct fakeclock__timer *n = t->impl;
    n->armed = false;
}

static bool fakeclock__armed_one(const struct clock_timer *t)
{
    const struct fakeclock__timer *n = t->impl;
    return n && n->armed;
}

/* Off the open list, onto the closing one: closed() runs later, as libuv's
 * close callback does, never from inside clock_timer_close. */
static void fakeclock__close(struct clock_timer *t)
{
    struct fakeclock__timer *n = t->impl;
    struct fakeclock *fc = n->fc;
    for (struct fakeclock__timer **p = &fc->timers; *p; p = &(*p)->next)
        if (*p == n) {
            *p = n->next;
            break;
        }
    n->armed = false;
    n->next = fc->closing;
    fc->closing = n;
    t->impl = NULL;
}

static const struct clock_src_ops fakeclock__ops = {
    .now_us = fakeclock__now_us,
    .timer_init = fakeclock__init,
    .timer_start = fakeclock__start,
    .timer_stop = fakeclock__stop,
    .timer_armed = fakeclock__armed_one,
    .timer_close = fakeclock__close,
};

void fakeclock_init(struct fakeclock *fc, uint64_t start_us)
{
    *fc = (struct fakeclock){.src = {&fakeclock__ops, fc}, .now_us = start_us};
}

void fakeclock_settle(struct fakeclock *fc)
{
    while (fc->closing) {
        struct fakeclock__timer *n = fc->closing;
        fc->closing = n->next;
        struct clock_timer *t = n->t;
        free(n);
        if (t->closed)
            t->closed(t); /* may free t */
    }
}

/* The earliest armed timer due by until_us, NULL if none. */
static struct fakeclock__timer *fakeclock__earliest(const struct fakeclock *fc, uint64_t until_us)
{
    struct fakeclock__timer *best = NULL;
    for (struct fakeclock__timer *n = fc->timers; n; n = n->next)
        if (n->armed && n->due_us <= until_us &&
            (!best || n->due_us < best->due_us ||
             (n->due_us == best->due_us && n->seq < best->seq)))
            best = n;
    return best;
}

static void fakeclock__fire(struct fakeclock *fc, struct fakeclock__timer *n)
{
    if (n->due_us > fc->now_us)
        fc->now_us = n->due_us;
    n->armed = false;
    fc->fired++;
    n->t->cb(n->t);
}

unsigned fakeclock_advance(struct fakeclock *fc, uint64_t ms)
{
    uint64_t until = fc->now_us + ms * 1000;
    unsigned fired = 0;
    struct fakeclock__timer *n;
    fakeclock_settle(fc);
    while ((n = fakeclock__earliest(fc, until))) {
        fakeclock__fire(fc, n);
        fired++;
    }
    fc->now_us = until;
    return fired;
}

bool fakeclock_next(struct fakeclock *fc)
{
    fakeclock_settle(fc);
    struct fakeclock__timer *n = fakeclock__earliest(fc, UINT64_MAX);
    if (!n)
        return false;
    fakeclock__fire(fc, n);
    return true;
}

int64_t fakeclock_due_in_ms(const struct fakeclock *fc, const struct clock_timer *t)
{
    const struct fakeclock__timer *n = t->impl;
    if (!n || !n->armed)
        return -1;
    uint64_t us = n->due_us > fc->now_us ? n->due_us - fc->now_us : 0;
    return (int64_t)((us + 999) / 1000);
}

unsigned fakeclock_armed(const struct fakeclock *fc)
{
    unsigned k = 0;
    for (const struct fakeclock__timer *n = fc->timers; n; n = n->next)
        k += n->armed;
    return k;
}

unsigned fakeclock_open(struct fakeclock *fc)
{
    unsigned k = 0;
    fakeclock_settle(fc);
    for (const struct fakeclock__timer *n = fc->timers; n; n = n->next)
        k++;
    return k;
}
