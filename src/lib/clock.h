/* Time sources: wall clock for records, monotonic for intervals, and the
 * clock a module is handed instead of calling the system's (struct
 * clock_src: its time and one-shot timers on it). */
#ifndef RECOVERD_LIB_CLOCK_H
#define RECOVERD_LIB_CLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

uint64_t clock_wall_ms(void); /* CLOCK_REALTIME, ms since the epoch */
uint64_t clock_mono_us(void); /* CLOCK_MONOTONIC, us */
/* Format wall ms as "2026-11-25T11:39:28.123Z" into buf (>= 32 bytes). */
char *clock_iso8601(uint64_t wall_ms, char *buf, size_t len);

/* ---- an injected clock ---- */

struct clock_timer;
typedef void (*clock_timer_cb)(struct clock_timer *t);

/* What a clock provides. recoverd's is the loop's (lib/uvclock.h); a test's
 * is a fake that the test advances, so a module's deadlines can be tested
 * without sleeping and whatever the machine's speed. */
struct clock_src_ops {
    uint64_t (*now_us)(void *ctx);                       /* monotonic, us */
    int (*timer_init)(void *ctx, struct clock_timer *t); /* sets t->impl; 0 or -errno */
    /* Fire t->cb once, ms after now (re-arming an armed timer replaces it). */
    void (*timer_start)(struct clock_timer *t, uint64_t ms);
    void (*timer_stop)(struct clock_timer *t); /* harmless when not armed */
    bool (*timer_armed)(const struct clock_timer *t);
    /* Stop; t->closed(t) runs later, from the clock's own dispatch, never
     * from inside this call. */
    void (*timer_close)(struct clock_timer *t);
};

struct clock_src {
    const struct clock_src_ops *ops;
    void *ctx; /* the clock's (uvclock: the loop) */
};

/* One one-shot timer on a clock_src. Its memory must live until closed. */
struct clock_timer {
    const struct clock_src *src;           /* borrowed */
    clock_timer_cb cb;                     /* called when due */
    void (*closed)(struct clock_timer *t); /* after clock_timer_close; may free t */
    void *data;                            /* the owner's */
    void *impl;                            /* the clock's own state for it */
};

/* The clock's now, us (monotonic). */
uint64_t clock_src_now_us(const struct clock_src *src);
/* Ready t (not armed) on src. 0 or -errno (-ENOMEM). */
int clock_timer_init(struct clock_timer *t, const struct clock_src *src, void *data);
/* Call cb once, ms from now; an armed t is re-armed. */
void clock_timer_start(struct clock_timer *t, clock_timer_cb cb, uint64_t ms);
void clock_timer_stop(struct clock_timer *t);
/* Armed and not fired yet. */
bool clock_timer_armed(const struct clock_timer *t);
/* Stop t and release the clock's state; closed(t) (may be NULL) runs later. */
void clock_timer_close(struct clock_timer *t, void (*closed)(struct clock_timer *t));

#endif
