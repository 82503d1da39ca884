/* Time sources, the one timestamp format used by the API, journal and CLI,
 * and the dispatch of an injected clock (struct clock_src). */
#include "lib/clock.h"

#include <stdio.h>
#include <time.h>

uint64_t clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t clock_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

char *clock_iso8601(uint64_t wall_ms, char *buf, size_t len)
{
    time_t s = (time_t)(wall_ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03uZ", (unsigned)(wall_ms % 1000));
    return buf;
}

/* ---- an injected clock: dispatch to its ops ---- */

uint64_t clock_src_now_us(const struct clock_src *src)
{
    return src->ops->now_us(src->ctx);
}

int clock_timer_init(struct clock_timer *t, const struct clock_src *src, void *data)
{
    *t = (struct clock_timer){.src = src, .data = data};
    return src->ops->timer_init(src->ctx, t);
}

void clock_timer_start(struct clock_timer *t, clock_timer_cb cb, uint64_t ms)
{
    t->cb = cb;
    t->src->ops->timer_start(t, ms);
}

void clock_timer_stop(struct clock_timer *t)
{
    t->src->ops->timer_stop(t);
}

bool clock_timer_armed(const struct clock_timer *t)
{
    return t->src->ops->timer_armed(t);
}

void clock_timer_close(struct clock_timer *t, void (*closed)(struct clock_timer *t))
{
    t->closed = closed;
    t->src->ops->timer_close(t);
}
