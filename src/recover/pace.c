/* Slices of deferred process work on an idle handle, FIFO. */
#include "recover/pace.h"

#include <stddef.h>

#include "lib/clock.h"
#include "lib/reaper.h"

static void pace__slice_cb(uv_idle_t *h);

static struct pace_job *pace__pop(struct pace_job **head, struct pace_job ***tail)
{
    struct pace_job *j = *head;
    *head = j->next;
    if (!*head)
        *tail = head;
    j->next = NULL;
    j->queued = false;
    return j;
}

static void pace__push(struct pace *p, struct pace_job ***tail, struct pace_job *j)
{
    j->next = NULL;
    j->queued = true;
    **tail = j;
    *tail = &j->next;
    uv_idle_start(&p->slices, pace__slice_cb);
}

static void pace__slice_cb(uv_idle_t *h)
{
    struct pace *p = h->data;
    /* Exits first; what they ask of the budget queues behind the jobs
     * deferred before (slicing is not set yet). */
    p->exit_slicing = true;
    while (p->exit_head && pace_exit_now(p)) {
        struct pace_job *j = pace__pop(&p->exit_head, &p->exit_tail);
        j->run(j);
    }
    p->exit_slicing = false;
    p->slicing = true;
    while (p->head && pace_has_time(p)) {
        struct pace_job *j = p->head;
        p->head = j->next;
        if (!p->head)
            p->tail = &p->head;
        j->next = NULL;
        j->queued = false;
        /* The job's own first ask is for this same piece. */
        p->granted = true;
        j->run(j);
        p->granted = false;
    }
    p->slicing = false;
    if (!p->head && !p->exit_head)
        uv_idle_stop(&p->slices);
}

static void pace__turn_cb(uv_check_t *h)
{
    struct pace *p = h->data;
    p->turn_used = false;
}

/* Just before the loop waits: what runs from here to the next wait (this
 * poll's callbacks, the next turn's timers and idle slices) is one stretch
 * of the loop held, and its exits share one count. */
static void pace__wait_cb(uv_prepare_t *h)
{
    struct pace *p = h->data;
    p->exits_turn = 0;
}

void pace_init(struct pace *p, uv_loop_t *loop, uint64_t budget_us, unsigned exits_max)
{
    p->loop = loop;
    p->budget_us = budget_us;
    p->head = NULL;
    p->tail = &p->head;
    p->exits_max = exits_max ? exits_max : 1;
    p->exits_turn = 0;
    p->exit_head = NULL;
    p->exit_tail = &p->exit_head;
    p->exit_slicing = false;
    p->turn_used = false;
    p->slicing = false;
    p->granted = false;
    uv_idle_init(loop, &p->slices);
    p->slices.data = p;
    uv_check_init(loop, &p->turn);
    p->turn.data = p;
    /* Runs after every poll, so timers, idle slices and I/O callbacks of one
     * turn share a budget; unreferenced, it never keeps the loop alive. */
    uv_check_start(&p->turn, pace__turn_cb);
    uv_unref((uv_handle_t *)&p->turn);
    uv_prepare_init(loop, &p->wait);
    p->wait.data = p;
    uv_prepare_start(&p->wait, pace__wait_cb);
    uv_unref((uv_handle_t *)&p->wait);
    p->spawner_up = spawner_init(&p->spawner, loop) == 0;
}

void pace_close(struct pace *p)
{
    for (struct pace_job *j = p->head; j; j = j->next)
        j->queued = false;
    for (struct pace_job *j = p->exit_head; j; j = j->next)
        j->queued = false;
    p->head = NULL;
    p->tail = &p->head;
    p->exit_head = NULL;
    p->exit_tail = &p->exit_head;
    uv_close((uv_handle_t *)&p->slices, NULL);
    uv_close((uv_handle_t *)&p->turn, NULL);
    uv_close((uv_handle_t *)&p->wait, NULL);
    if (p->spawner_up)
        spawner_close(&p->spawner);
    p->spawner_up = false;
}

struct spawner *pace_spawner(struct pace *p)
{
    return p && p->spawner_up && !reaper_enabled() ? &p->spawner : NULL;
}

bool pace_has_time(struct pace *p)
{
    if (!p)
        return true;
    if (p->granted) {
        p->granted = false;
        return true;
    }
    if (p->head && !p->slicing)
        return false;
    uint64_t now = clock_mono_us();
    if (!p->turn_used) {
        p->turn_used = true;
        p->turn_start_us = now;
        return true;
    }
    return now - p->turn_start_us < p->budget_us;
}

void pace_defer(struct pace *p, struct pace_job *j)
{
    if (!j->queued)
        pace__push(p, &p->tail, j);
}

bool pace_exit_now(struct pace *p)
{
    if (!p)
        return true;
    if ((p->exit_head && !p->exit_slicing) || p->exits_turn >= p->exits_max)
        return false;
    p->exits_turn++;
    return true;
}

void pace_defer_exit(struct pace *p, struct pace_job *j)
{
    if (!j->queued)
        pace__push(p, &p->exit_tail, j);
}

static bool pace__unqueue(struct pace_job **head, struct pace_job ***tail, struct pace_job *j)
{
    for (struct pace_job **q = head; *q; q = &(*q)->next)
        if (*q == j) {
            *q = j->next;
            if (!*q)
                *tail = q;
            return true;
        }
    return false;
}

void pace_cancel(struct pace *p, struct pace_job *j)
{
    if (!p || !j->queued)
        return;
    if (!pace__unqueue(&p->exit_head, &p->exit_tail, j))
        pace__unqueue(&p->head, &p->tail, j);
    j->next = NULL;
    j->queued = false;
    if (!p->head && !p->exit_head)
        uv_idle_stop(&p->slices);
}
