/* Deadlines sharing one libuv timer per duration (lib/deadline.h). */
#include "lib/deadline.h"

#include <errno.h>
#include <stdlib.h>

#include "lib/uvclock.h"

/* The deadlines of one duration on one loop. */
struct deadline__list {
    uv_timer_t timer; /* armed at or before head's due; data = this; the
                         struct is freed in its close callback */
    uv_loop_t *loop;  /* borrowed */
    uint64_t ms;      /* the duration of its deadlines */
    struct deadline *head, *tail;
    struct deadline__list *next; /* in deadline__lists */
    bool firing;                 /* inside its timer callback: it closes after, not during */
};

/* The open lists of this thread (a loop and its handles belong to one
 * thread); a few at most, one per duration in use. */
static _Thread_local struct deadline__list *deadline__lists;
static _Thread_local uint64_t deadline__seq;

static void deadline__fire_cb(uv_timer_t *t);

static struct deadline__list *deadline__list_get(uv_loop_t *loop, uint64_t ms)
{
    struct deadline__list *l;
    for (l = deadline__lists; l; l = l->next)
        if (l->loop == loop && l->ms == ms)
            return l;
    if (!(l = calloc(1, sizeof *l)))
        return NULL;
    uv_timer_init(loop, &l->timer); /* cannot fail */
    l->timer.data = l;
    l->loop = loop;
    l->ms = ms;
    l->next = deadline__lists;
    deadline__lists = l;
    return l;
}

static void deadline__list_closed_cb(uv_handle_t *h)
{
    free(h->data);
}

/* An empty list goes: out of the registry now, its memory with its timer. */
static void deadline__list_close(struct deadline__list *l)
{
    for (struct deadline__list **p = &deadline__lists; *p; p = &(*p)->next)
        if (*p == l) {
            *p = l->next;
            break;
        }
    uv_close((uv_handle_t *)&l->timer, deadline__list_closed_cb);
}

static void deadline__arm(struct deadline__list *l, uint64_t due_ms)
{
    uvclock_arm_at(&l->timer, deadline__fire_cb, due_ms);
}

static void deadline__unlink(struct deadline *d)
{
    struct deadline__list *l = d->list;
    if (d->prev)
        d->prev->next = d->next;
    else
        l->head = d->next;
    if (d->next)
        d->next->prev = d->prev;
    else
        l->tail = d->prev;
    d->prev = d->next = NULL;
    d->list = NULL;
}

/* Run what is due, oldest first; a deadline armed by one of the callbacks
 * waits for the list's next firing, as one armed in a uv_timer's callback
 * waits for libuv's next look at its timers. */
static void deadline__fire_cb(uv_timer_t *t)
{
    struct deadline__list *l = t->data;
    uint64_t now = uv_now(l->loop), seq = deadline__seq;
    l->firing = true;
    while (l->head && l->head->due_ms <= now && l->head->seq < seq) {
        struct deadline *d = l->head;
        deadline__unlink(d);
        d->cb(d); /* may free d, arm or disarm others, here or elsewhere */
    }
    l->firing = false;
    if (!l->head)
        deadline__list_close(l);
    else
        deadline__arm(l, l->head->due_ms);
}

int deadline_start(struct deadline *d, uv_loop_t *loop, deadline_cb cb, uint64_t ms)
{
    struct deadline__list *l = deadline__list_get(loop, ms), *old = d->list;
    if (!l)
        return -ENOMEM;
    if (old) {
        deadline__unlink(d);
        if (old != l && !old->head && !old->firing)
            deadline__list_close(old);
    }
    d->due_ms = uvclock_now(loop) + ms;
    d->seq = deadline__seq++;
    d->cb = cb;
    d->list = l;
    /* One duration: each due is at or after the last one's (the loop's
     * clock does not go back), so the list stays in due order. */
    d->prev = l->tail;
    d->next = NULL;
    if (l->tail)
        l->tail->next = d;
    else
        l->head = d;
    l->tail = d;
    if (!l->firing && !uv_is_active((uv_handle_t *)&l->timer)) /* it was empty */
        deadline__arm(l, d->due_ms);
    return 0;
}

void deadline_stop(struct deadline *d)
{
    struct deadline__list *l = d ? d->list : NULL;
    if (!l)
        return;
    deadline__unlink(d);
    if (!l->head && !l->firing)
        deadline__list_close(l);
}

bool deadline_armed(const struct deadline *d)
{
    return d->list != NULL;
}
