/* The loop's clock: libuv timers counted from now, and the loop as a
 * clock_src. */
#include "lib/uvclock.h"

#include <errno.h>
#include <stdlib.h>

/* libuv's loop time is uv__hrtime(UV_CLOCK_FAST) / 1e6: CLOCK_MONOTONIC,
 * or its coarse variant where that ticks every millisecond (behind by less
 * than a tick). uv_hrtime is CLOCK_MONOTONIC: never behind it. */
uint64_t uvclock_now(const uv_loop_t *loop)
{
    uint64_t now = uv_hrtime() / 1000000, cached = uv_now(loop);
    return now > cached ? now : cached;
}

uint64_t uvclock_delay(const uv_loop_t *loop, uint64_t ms)
{
    uint64_t d = uvclock_now(loop) - uv_now(loop) + ms;
    return d > 0 ? d : 1;
}

void uvclock_arm(uv_timer_t *t, uv_timer_cb cb, uint64_t ms)
{
    uv_timer_start(t, cb, uvclock_delay(t->loop, ms), 0);
}

void uvclock_arm_at(uv_timer_t *t, uv_timer_cb cb, uint64_t due_ms)
{
    uint64_t cached = uv_now(t->loop);
    uv_timer_start(t, cb, due_ms > cached ? due_ms - cached : 1, 0);
}

/* ---- the loop as a clock_src: t->impl is a uv_timer_t on the heap ---- */

static uint64_t uvclock__now_us(void *ctx)
{
    (void)ctx;
    return clock_mono_us(); /* CLOCK_MONOTONIC: the supervisor stamps spawns on it */
}

static void uvclock__fire_cb(uv_timer_t *h)
{
    struct clock_timer *t = h->data;
    t->cb(t);
}

static int uvclock__init(void *ctx, struct clock_timer *t)
{
    uv_timer_t *h = malloc(sizeof *h);
    if (!h)
        return -ENOMEM;
    uv_timer_init(ctx, h); /* cannot fail */
    h->data = t;
    t->impl = h;
    return 0;
}

static void uvclock__start(struct clock_timer *t, uint64_t ms)
{
    uvclock_arm(t->impl, uvclock__fire_cb, ms);
}

static void uvclock__stop(struct clock_timer *t)
{
    uv_timer_stop(t->impl);
}

static bool uvclock__armed(const struct clock_timer *t)
{
    return uv_is_active(t->impl);
}

/* The handle is libuv's until here; t may be freed by closed(). */
static void uvclock__closed_cb(uv_handle_t *h)
{
    struct clock_timer *t = h->data;
    free(h);
    if (t->closed)
        t->closed(t);
}

static void uvclock__close(struct clock_timer *t)
{
    uv_close(t->impl, uvclock__closed_cb);
    t->impl = NULL;
}

static const struct clock_src_ops uvclock__ops = {
    .now_us = uvclock__now_us,
    .timer_init = uvclock__init,
    .timer_start = uvclock__start,
    .timer_stop = uvclock__stop,
    .timer_armed = uvclock__armed,
    .timer_close = uvclock__close,
};

struct clock_src uvclock_src(uv_loop_t *loop)
{
    return (struct clock_src){&uvclock__ops, loop};
}
