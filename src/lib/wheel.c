/* Timers many to one libuv timer, on a wheel of slots of the loop's clock
 * (lib/wheel.h). */
#include "lib/wheel.h"

#include <errno.h>
#include <stdlib.h>

#include "lib/uvclock.h"

/* Buckets of a wheel: a turn is 256 slots (2.56 s of 10 ms, so a probe
 * every second finds its bucket holding only the timers of its own slot;
 * 256 ms of 1 ms, past which a deadline waits its turn in its bucket). */
#define WHEEL__SLOTS 256
/* t->slot of a timer taken out of its bucket to run in this firing. */
#define WHEEL__DUE UINT64_MAX
/* Loop time one firing spends on callbacks before the rest of its due
 * timers wait for the next turn (after a poll): a loop held for tens of
 * ms (a storm's restarts, a busy host) finds several slots of probes due
 * at once, each a connect or a write through loopback's TCP path, and ran
 * them all in one turn of 5-10 ms of CPU. At least one runs per firing. */
#define WHEEL__FIRE_NS (2 * 1000 * 1000)

/* Valid only while its bit in busy is set: a new wheel leaves its 6 KiB of
 * buckets unwritten (a wheel of deadlines opens and closes with a lone
 * probe's request). */
struct wheel__bucket {
    struct wheel_timer *head, *tail;
    uint64_t min; /* no timer in it is due before this slot (a stop may leave it low) */
};

/* The timers of one slot width on one loop. */
struct wheel {
    uv_timer_t timer;                 /* armed for armed_slot; data = this; the struct is
                                         freed in its close callback */
    uv_loop_t *loop;                  /* borrowed */
    uint64_t slot_ms;                 /* width of a slot */
    uint64_t next_slot;               /* the first slot not run yet: every timer in a
                                         bucket is due at it or later */
    uint64_t armed_slot;              /* the slot the timer is armed for, when active */
    size_t count;                     /* timers armed, in buckets or due */
    bool firing;                      /* inside its timer callback: it closes after, not during */
    struct wheel *next;               /* the next wheel of this thread (wheel__all) */
    uint64_t busy[WHEEL__SLOTS / 64]; /* bit per bucket: not empty */
    struct wheel__bucket due;         /* taken out to run in this firing, in order */
    struct wheel__bucket buckets[WHEEL__SLOTS];
};

static void wheel__fire_cb(uv_timer_t *h);

/* The wheels of this thread's loops: a loop is run by one thread, and a
 * loop's memory is not this module's to mark (libuv keeps loop->data
 * across uv_loop_init, so a flag there would read a stack loop's garbage). */
static _Thread_local struct wheel *wheel__all;

/* The loop's wheel of that width, opened on first use: a short walk, a
 * loop has one or two widths in use. */
static struct wheel *wheel__get(uv_loop_t *loop, uint64_t slot_ms)
{
    struct wheel *w;
    for (w = wheel__all; w; w = w->next)
        if (w->loop == loop && w->slot_ms == slot_ms)
            return w;
    if (!(w = malloc(sizeof *w)))
        return NULL;
    uv_timer_init(loop, &w->timer); /* cannot fail */
    w->timer.data = w;
    w->loop = loop;
    w->slot_ms = slot_ms;
    w->next_slot = uv_now(loop) / slot_ms;
    w->armed_slot = 0;
    w->count = 0;
    w->firing = false;
    for (size_t i = 0; i < WHEEL__SLOTS / 64; i++)
        w->busy[i] = 0;
    w->due.head = w->due.tail = NULL;
    w->next = wheel__all;
    wheel__all = w;
    return w;
}

static void wheel__closed_cb(uv_handle_t *h)
{
    free(h->data);
}

/* An empty wheel goes: off its loop now, its memory with its timer. */
static void wheel__close(struct wheel *w)
{
    for (struct wheel **p = &wheel__all; *p; p = &(*p)->next)
        if (*p == w) {
            *p = w->next;
            break;
        }
    uv_close((uv_handle_t *)&w->timer, wheel__closed_cb);
}

/* Through lib/uvclock: due after the loop's cached time, so a timers
 * phase that arms it never runs it. */
static void wheel__arm(struct wheel *w, uint64_t slot)
{
    w->armed_slot = slot;
    uvclock_arm_at(&w->timer, wheel__fire_cb, slot * w->slot_ms);
}

static bool wheel__busy(const struct wheel *w, size_t i)
{
    return w->busy[i / 64] >> (i % 64) & 1;
}

static struct wheel__bucket *wheel__bucket_of(struct wheel *w, const struct wheel_timer *t)
{
    return t->slot == WHEEL__DUE ? &w->due : &w->buckets[t->slot % WHEEL__SLOTS];
}

static void wheel__append(struct wheel__bucket *b, struct wheel_timer *t)
{
    t->prev = b->tail;
    t->next = NULL;
    if (b->tail)
        b->tail->next = t;
    else
        b->head = t;
    b->tail = t;
}

/* Into the bucket of its slot, made valid if it was empty. */
static void wheel__put(struct wheel *w, struct wheel_timer *t)
{
    size_t i = t->slot % WHEEL__SLOTS;
    struct wheel__bucket *b = &w->buckets[i];
    if (!wheel__busy(w, i)) {
        b->head = b->tail = NULL;
        b->min = t->slot;
        w->busy[i / 64] |= 1ULL << (i % 64);
    } else if (t->slot < b->min) {
        b->min = t->slot;
    }
    wheel__append(b, t);
}

/* Out of its bucket (its bit cleared when that empties); still counted. */
static void wheel__take(struct wheel *w, struct wheel_timer *t)
{
    struct wheel__bucket *b = wheel__bucket_of(w, t);
    if (t->prev)
        t->prev->next = t->next;
    else
        b->head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    else
        b->tail = t->prev;
    t->prev = t->next = NULL;
    if (!b->head && b != &w->due) {
        size_t i = t->slot % WHEEL__SLOTS;
        w->busy[i / 64] &= ~(1ULL << (i % 64));
    }
}

static void wheel__unlink(struct wheel_timer *t)
{
    struct wheel *w = t->wheel;
    wheel__take(w, t);
    w->count--;
    t->wheel = NULL;
}

/* The earliest slot a timer may be due at (there is one): the first
 * bucket from next_slot that may hold one of this turn, else the earliest
 * of the later turns' seen on the way, so that a deadline seconds ahead
 * does not wake the loop on every turn of 1 ms slots. */
static uint64_t wheel__next_due(const struct wheel *w)
{
    uint64_t later = UINT64_MAX;
    for (size_t d = 0; d < WHEEL__SLOTS;) {
        size_t i = (w->next_slot + d) % WHEEL__SLOTS;
        uint64_t bits = w->busy[i / 64] >> (i % 64);
        if (!bits) {
            d += 64 - i % 64;
            continue;
        }
        d += (size_t)__builtin_ctzll(bits);
        if (d >= WHEEL__SLOTS)
            break; /* wrapped onto buckets already seen */
        uint64_t s = w->next_slot + d, min = w->buckets[s % WHEEL__SLOTS].min;
        if (min <= s)
            return s; /* every later turn's slot is past it */
        if (min < later)
            later = min;
        d++;
    }
    return later;
}

/* Out of the slots next_slot..to into due, those of this turn (slot <=
 * cur) in slot and arming order; the buckets' lower bounds made exact. */
static void wheel__take_due(struct wheel *w, uint64_t cur, uint64_t to)
{
    for (uint64_t s = w->next_slot; s <= to; s++) {
        size_t i = s % WHEEL__SLOTS;
        if (!wheel__busy(w, i))
            continue;
        struct wheel__bucket *b = &w->buckets[i];
        uint64_t min = UINT64_MAX;
        for (struct wheel_timer *t = b->head, *nx; t; t = nx) {
            nx = t->next;
            if (t->slot > cur) { /* a later turn of the wheel */
                if (t->slot < min)
                    min = t->slot;
                continue;
            }
            wheel__take(w, t);
            t->slot = WHEEL__DUE;
            wheel__append(&w->due, t);
        }
        b->min = min;
    }
}

/* Run the timers due by the loop's time, slot by slot in arming order,
 * for at most WHEEL__FIRE_NS: those left run first in the next firing. A
 * timer armed by one of the callbacks is due at a later slot and waits for
 * it. */
static void wheel__fire_cb(uv_timer_t *h)
{
    struct wheel *w = h->data;
    uint64_t cur = uv_now(w->loop) / w->slot_ms, to = cur;
    if (to >= w->next_slot + WHEEL__SLOTS) /* held longer than a turn: every bucket once */
        to = w->next_slot + WHEEL__SLOTS - 1;
    wheel__take_due(w, cur, to);
    if (cur >= w->next_slot)
        w->next_slot = cur + 1;
    w->firing = true;
    uint64_t start = uv_hrtime();
    for (struct wheel_timer *t; (t = w->due.head);) {
        wheel__unlink(t);
        t->cb(t); /* may free t, arm or disarm others, here or elsewhere */
        if (uv_hrtime() - start >= WHEEL__FIRE_NS)
            break;
    }
    w->firing = false;
    if (w->count == 0)
        wheel__close(w);
    else if (w->due.head) /* the rest first, after a poll (uvclock: 1 ms on) */
        wheel__arm(w, cur);
    else
        wheel__arm(w, wheel__next_due(w));
}

int wheel_start(struct wheel_timer *t, uv_loop_t *loop, wheel_cb cb, uint64_t ms, uint64_t slot_ms)
{
    struct wheel *w, *old = t->wheel;
    uint64_t slot;
    if (!(w = wheel__get(loop, slot_ms)))
        return -ENOMEM;
    if (old) {
        wheel__unlink(t);
        if (old != w && old->count == 0 && !old->firing)
            wheel__close(old);
    }
    /* From the real now, the loop's cached time left alone (lib/uvclock.h):
     * a timers phase runs only what was due when it began. */
    slot = (uvclock_now(loop) + ms) / slot_ms;
    if (slot < w->next_slot)
        slot = w->next_slot; /* that slot has run: the next one */
    t->slot = slot;
    t->cb = cb;
    t->wheel = w;
    wheel__put(w, t);
    w->count++;
    if (!w->firing && (!uv_is_active((uv_handle_t *)&w->timer) || slot < w->armed_slot))
        wheel__arm(w, slot);
    return 0;
}

void wheel_stop(struct wheel_timer *t)
{
    struct wheel *w = t ? t->wheel : NULL;
    if (!w)
        return;
    wheel__unlink(t);
    if (w->count == 0 && !w->firing)
        wheel__close(w);
}

bool wheel_armed(const struct wheel_timer *t)
{
    return t->wheel != NULL;
}

uint64_t wheel_due_in(const struct wheel_timer *t)
{
    const struct wheel *w = t->wheel;
    uint64_t now = w ? uvclock_now(w->loop) : 0;
    if (!w || t->slot == WHEEL__DUE || t->slot * w->slot_ms <= now)
        return 0;
    return t->slot * w->slot_ms - now;
}
