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

/* Days since 1970-01-01 to a civil date (proleptic Gregorian; Howard
 * Hinnant's civil_from_days). The API lists several times per service:
 * gmtime_r and strftime take glibc's time zone lock and parse a format
 * each time, most of a listing's cost at 1,000 services. */
static void clock__civil(int64_t days, int64_t *y, unsigned *m, unsigned *d)
{
    days += 719468;
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    unsigned doe = (unsigned)(days - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* n digits of v (zero-padded) at p; returns past them. */
static char *clock__digits(char *p, unsigned v, int n)
{
    for (int i = n - 1; i >= 0; i--, v /= 10)
        p[i] = (char)('0' + v % 10);
    return p + n;
}

char *clock_iso8601(uint64_t wall_ms, char *buf, size_t len)
{
    uint64_t s = wall_ms / 1000;
    unsigned sod = (unsigned)(s % 86400);
    int64_t y;
    unsigned mo, d;
    clock__civil((int64_t)(s / 86400), &y, &mo, &d);
    if (y > 9999 || len < sizeof "YYYY-MM-DDTHH:MM:SS.mmmZ") { /* as strftime's %Y writes it */
        time_t t = (time_t)s;
        struct tm tm;
        gmtime_r(&t, &tm);
        size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf + n, len - n, ".%03uZ", (unsigned)(wall_ms % 1000));
        return buf;
    }
    char *p = clock__digits(buf, (unsigned)y, 4);
    *p++ = '-';
    p = clock__digits(p, mo, 2);
    *p++ = '-';
    p = clock__digits(p, d, 2);
    *p++ = 'T';
    p = clock__digits(p, sod / 3600, 2);
    *p++ = ':';
    p = clock__digits(p, sod / 60 % 60, 2);
    *p++ = ':';
    p = clock__digits(p, sod % 60, 2);
    *p++ = '.';
    p = clock__digits(p, (unsigned)(wall_ms % 1000), 3);
    *p++ = 'Z';
    *p = '\0';
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
