/* Timers on a grid of the loop's clock, a wheel of slots to one libuv
 * timer (lib/grid.h). */
#include "lib/grid.h"

#include <errno.h>
#include <stdlib.h>

#include "lib/uvclock.h"

/* Buckets of a wheel: 2.56 s of 10 ms slots, so a probe every second finds
 * its bucket holding only the timers of its own slot. */
#define GRID__SLOTS 256
/* t->slot of a timer taken out of its bucket to run in this firing. */
#define GRID__DUE UINT64_MAX

struct grid__bucket {
    struct grid_timer *head, *tail;
};

/* The timers of one grid on one loop. */
struct grid__wheel {
    uv_timer_t timer;                /* armed for armed_slot; data = this; the struct is
                                        freed in its close callback */
    uv_loop_t *loop;                 /* borrowed */
    uint64_t grid_ms;                /* width of a slot */
    uint64_t next_slot;              /* the first slot not run yet: every timer in a
                                        bucket is due at it or later */
    uint64_t armed_slot;             /* the slot the timer is armed for, when active */
    size_t count;                    /* timers armed, in buckets or due */
    bool firing;                     /* inside its timer callback: it closes after, not during */
    struct grid__wheel *next;        /* in grid__wheels */
    uint64_t busy[GRID__SLOTS / 64]; /* bit per bucket: not empty */
    struct grid__bucket due;         /* taken out to run in this firing, in order */
    struct grid__bucket buckets[GRID__SLOTS];
};

/* The open wheels of this thread (a loop and its handles belong to one
 * thread): one per grid width in use. */
static _Thread_local struct grid__wheel *grid__wheels;

static void grid__fire_cb(uv_timer_t *h);

static struct grid__wheel *grid__wheel_get(uv_loop_t *loop, uint64_t grid_ms)
{
    struct grid__wheel *w;
    for (w = grid__wheels; w; w = w->next)
        if (w->loop == loop && w->grid_ms == grid_ms)
            return w;
    if (!(w = calloc(1, sizeof *w)))
        return NULL;
    uv_timer_init(loop, &w->timer); /* cannot fail */
    w->timer.data = w;
    w->loop = loop;
    w->grid_ms = grid_ms;
    w->next_slot = uv_now(loop) / grid_ms;
    w->next = grid__wheels;
    grid__wheels = w;
    return w;
}

static void grid__wheel_closed_cb(uv_handle_t *h)
{
    free(h->data);
}

/* An empty wheel goes: out of the registry now, its memory with its timer. */
static void grid__wheel_close(struct grid__wheel *w)
{
    for (struct grid__wheel **p = &grid__wheels; *p; p = &(*p)->next)
        if (*p == w) {
            *p = w->next;
            break;
        }
    uv_close((uv_handle_t *)&w->timer, grid__wheel_closed_cb);
}

static void grid__arm(struct grid__wheel *w, uint64_t slot)
{
    uint64_t now = uv_now(w->loop), due = slot * w->grid_ms;
    w->armed_slot = slot;
    uv_timer_start(&w->timer, grid__fire_cb, due > now ? due - now : 0, 0);
}

static struct grid__bucket *grid__bucket_of(struct grid__wheel *w, const struct grid_timer *t)
{
    return t->slot == GRID__DUE ? &w->due : &w->buckets[t->slot % GRID__SLOTS];
}

static void grid__append(struct grid__bucket *b, struct grid_timer *t)
{
    t->prev = b->tail;
    t->next = NULL;
    if (b->tail)
        b->tail->next = t;
    else
        b->head = t;
    b->tail = t;
}

/* Out of its bucket (its bit cleared when that empties); still counted. */
static void grid__take(struct grid__wheel *w, struct grid_timer *t)
{
    struct grid__bucket *b = grid__bucket_of(w, t);
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
        size_t i = t->slot % GRID__SLOTS;
        w->busy[i / 64] &= ~(1ULL << (i % 64));
    }
}

static void grid__unlink(struct grid_timer *t)
{
    struct grid__wheel *w = t->wheel;
    grid__take(w, t);
    w->count--;
    t->wheel = NULL;
}

/* The first slot from next_slot whose bucket holds a timer (there is one):
 * the earliest any can be due. */
static uint64_t grid__next_busy(const struct grid__wheel *w)
{
    size_t from = w->next_slot % GRID__SLOTS;
    for (size_t d = 0; d < GRID__SLOTS + 64; d += 64 - (from + d) % 64) {
        size_t i = (from + d) % GRID__SLOTS;
        uint64_t bits = w->busy[i / 64] >> (i % 64);
        if (bits)
            return w->next_slot + d + (size_t)__builtin_ctzll(bits);
    }
    return w->next_slot; /* unreachable while count > 0 */
}

/* Run every timer due by now, slot by slot in arming order; a timer armed
 * by one of the callbacks is due at a later slot and waits for it. */
static void grid__fire_cb(uv_timer_t *h)
{
    struct grid__wheel *w = h->data;
    uint64_t cur = uv_now(w->loop) / w->grid_ms, to = cur;
    if (to >= w->next_slot + GRID__SLOTS) /* held longer than a turn: every bucket once */
        to = w->next_slot + GRID__SLOTS - 1;
    for (uint64_t s = w->next_slot; s <= to; s++) {
        struct grid__bucket *b = &w->buckets[s % GRID__SLOTS];
        for (struct grid_timer *t = b->head, *nx; t; t = nx) {
            nx = t->next;
            if (t->slot > cur)
                continue; /* a later turn of the wheel */
            grid__take(w, t);
            t->slot = GRID__DUE;
            grid__append(&w->due, t);
        }
    }
    if (cur >= w->next_slot)
        w->next_slot = cur + 1;
    w->firing = true;
    for (struct grid_timer *t; (t = w->due.head);) {
        grid__unlink(t);
        t->cb(t); /* may free t, arm or disarm others, here or elsewhere */
    }
    w->firing = false;
    if (w->count == 0)
        grid__wheel_close(w);
    else
        grid__arm(w, grid__next_busy(w));
}

int grid_start(struct grid_timer *t, uv_loop_t *loop, grid_cb cb, uint64_t ms, uint64_t grid_ms)
{
    struct grid__wheel *w, *old = t->wheel;
    uint64_t slot;
    if (!(w = grid__wheel_get(loop, grid_ms)))
        return -ENOMEM;
    if (old) {
        grid__unlink(t);
        if (old != w && old->count == 0 && !old->firing)
            grid__wheel_close(old);
    }
    /* From the real now, the loop's cached time left alone (lib/uvclock.h):
     * a timers phase runs only what was due when it began. */
    slot = (uvclock_now(loop) + ms) / grid_ms;
    if (slot < w->next_slot)
        slot = w->next_slot; /* that slot has run: the next one */
    t->slot = slot;
    t->cb = cb;
    t->wheel = w;
    grid__append(&w->buckets[slot % GRID__SLOTS], t);
    w->busy[slot % GRID__SLOTS / 64] |= 1ULL << (slot % GRID__SLOTS % 64);
    w->count++;
    if (!w->firing && (!uv_is_active((uv_handle_t *)&w->timer) || slot < w->armed_slot))
        grid__arm(w, slot);
    return 0;
}

void grid_stop(struct grid_timer *t)
{
    struct grid__wheel *w = t ? t->wheel : NULL;
    if (!w)
        return;
    grid__unlink(t);
    if (w->count == 0 && !w->firing)
        grid__wheel_close(w);
}

bool grid_armed(const struct grid_timer *t)
{
    return t->wheel != NULL;
}

uint64_t grid_due_in(const struct grid_timer *t)
{
    struct grid__wheel *w = t->wheel;
    uint64_t now = w ? uvclock_now(w->loop) : 0;
    if (!w || t->slot == GRID__DUE || t->slot * w->grid_ms <= now)
        return 0;
    return t->slot * w->grid_ms - now;
}
