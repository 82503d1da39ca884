/* One webhook's delivery queue: its messages wait in the journal until the
 * receiver takes them, one at a time and in order, retried with a backoff
 * capped at ALERT_RETRY_MAX_MS for as long as it takes. Only the bound
 * drops messages, and then the whole of one fault's (oldest first), so a
 * receiver never holds an "opened" whose "resolved" will not come. */
#ifndef RECOVERD_MONITOR_ALERT_QUEUE_H
#define RECOVERD_MONITOR_ALERT_QUEUE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config/config-t.h"

#define ALERT_RETRY_MS 500       /* first backoff after a failed attempt; doubles, with jitter */
#define ALERT_RETRY_MAX_MS 30000 /* the doubling stops here: a receiver back is found soon */

struct journal;
struct alert_queue;

/* What a queue tells its owner. */
struct alert_queue_sink {
    /* Every waiting message of fault_id was dropped (the bound): the
     * owner forgets that fault's alert, so no lone "resolved" follows. It
     * runs inside alert_queue_push and alert_queue_set: it must not free
     * what the caller of those still uses. */
    void (*dropped)(void *ctx, int64_t fault_id);
    void *ctx;
};

/* What one message is about. */
struct alert_queue_item {
    int64_t fault_id;    /* 0: a service, with no fault */
    const char *event;   /* "opened", "escalated", "repeat", "resolved", "failed" */
    bool opens;          /* the first message of the fault's alert in this webhook */
    const char *service; /* for logs */
};

/* The queue of webhook number index (cfg is borrowed, like the journal),
 * with what the journal still holds for it from an earlier run. ordinal:
 * how many webhooks before it in the configuration have the same url (they
 * get distinct queues). Nothing is sent before alert_queue_set. NULL on
 * OOM or when the journal cannot be read. */
struct alert_queue *alert_queue_new(uv_loop_t *loop, struct journal *j,
                                    const struct webhook_cfg *cfg, size_t index, unsigned ordinal,
                                    struct alert_queue_sink sink);

/* Take cfg (same url) and index; drop what is over its bound; deliver. */
void alert_queue_set(struct alert_queue *q, const struct webhook_cfg *cfg, size_t index);

/* The key under which the journal keeps this queue: scheme://host:port and
 * a hash of the rest of the url (which may hold a secret). */
const char *alert_queue_key(const struct alert_queue *q);

/* scheme://host:port: what logs may say of the url. */
const char *alert_queue_where(const struct alert_queue *q);

/* Queue a message: doc (borrowed) gets its "id" (the same at every
 * attempt, unique on this host) and is journaled, then sent in turn. */
void alert_queue_push(struct alert_queue *q, const struct alert_queue_item *it, json_t *doc);

/* Messages of fault_id wait (a repeat of them would say nothing new). */
bool alert_queue_waiting(const struct alert_queue *q, int64_t fault_id);

/* {"webhook", "url", "pending", "delivered", "dropped", "failing",
 * "attempts", "error"}: counts since start. */
json_t *alert_queue_status(const struct alert_queue *q);
size_t alert_queue_pending(const struct alert_queue *q);
uint64_t alert_queue_dropped(const struct alert_queue *q);

/* Stop sending and close; what waits stays in the journal for the next
 * run. Freed in a close callback: run the loop after. NULL-safe. */
void alert_queue_free(struct alert_queue *q);

/* The webhook is no longer configured: its messages leave the journal
 * (logged with their number), then as alert_queue_free. */
void alert_queue_forget(struct alert_queue *q);

#endif
