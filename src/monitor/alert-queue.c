/* One webhook's delivery queue. The journal holds every waiting message;
 * memory holds a window of the next few (new messages go straight into it
 * while it holds everything) and, per fault, how many wait: enough to keep
 * the bound without reading the queue back. */
#include "monitor/alert-queue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/backoff.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/url.h"
#include "lib/uvclock.h"
#include "monitor/post.h"
#include "store/journal.h"

#define AQ__WINDOW 16          /* messages read from the journal at once, at most */
#define AQ__READ_RETRY_MS 1000 /* the journal is behind the queue: look again after */
#define AQ__TIMEOUT_MS 5000    /* per attempt when the config says 0 */
#define AQ__KEY_MAX (URL_REDACTED_MAX + 32)

/* A message in the window. */
struct aq__msg {
    struct aq__msg *next; /* toward the tail */
    int64_t seq;          /* its journal seq */
    int64_t group;        /* its group's key */
    bool opens;           /* the first message of its fault's alert */
    char event[16];       /* for logs and the group's state */
    char service[64];     /* for logs */
    size_t len;           /* bytes of body */
    char body[];          /* the JSON document */
};

/* The waiting messages of one fault (or one message with no fault). */
struct aq__group {
    int64_t key;   /* the fault id; -seq: a message with no fault */
    int64_t since; /* seq of its first message here: groups age by it */
    size_t n;      /* messages waiting */
    bool started;  /* the receiver has its opening message, not yet its resolution */
};

struct alert_queue {
    uv_loop_t *loop;               /* borrowed */
    struct journal *j;             /* borrowed */
    const struct webhook_cfg *cfg; /* borrowed */
    struct alert_queue_sink sink;
    size_t index;                 /* in the config's list, for logs */
    char where[URL_REDACTED_MAX]; /* scheme://host:port */
    char key[AQ__KEY_MAX];        /* where#hash[/ordinal]: the journal's name for it */
    bool usable;                  /* the url parses */
    bool live;                    /* alert_queue_set ran: deliveries may go */
    uv_timer_t retry;             /* the backoff, or the next look at the journal; data = this */
    struct post *post;            /* the attempt in flight; NULL: none */
    unsigned failures;            /* failed attempts since the last delivery */
    bool failing;                 /* failures passed retries: said in the log and status */
    int error;                    /* the last failed attempt: HTTP status or -errno */
    struct aq__msg *head;         /* the window, oldest first; head: the one being sent */
    struct aq__msg **tail;        /* where the next window message goes */
    size_t n_window;              /* messages in the window */
    bool complete;                /* the window holds every waiting message */
    int64_t read_seq;             /* the newest seq in the window or done with */
    struct aq__group *groups;     /* oldest first */
    size_t n_groups, cap_groups;  /* entries used, allocated */
    size_t pending;               /* messages waiting: the sum of the groups' n */
    uint64_t delivered;           /* since start */
    uint64_t dropped;             /* since start, by the bound */
};

static void aq__deliver(struct alert_queue *q);
static void aq__retry_cb(uv_timer_t *t);

/* ---- groups: an array ordered by age; O(n) is fine, n <= max_pending ---- */

static int64_t aq__key_of(int64_t fault_id, int64_t seq)
{
    return fault_id ? fault_id : -seq;
}

static struct aq__group *aq__group(const struct alert_queue *q, int64_t key)
{
    for (size_t i = 0; i < q->n_groups; i++)
        if (q->groups[i].key == key)
            return &q->groups[i];
    return NULL;
}

static struct aq__group *aq__group_add(struct alert_queue *q, int64_t key, int64_t since,
                                       bool started)
{
    if (q->n_groups == q->cap_groups) {
        size_t cap = q->cap_groups ? 2 * q->cap_groups : 16;
        struct aq__group *v = realloc(q->groups, cap * sizeof *v);
        if (!v)
            return NULL;
        q->groups = v;
        q->cap_groups = cap;
    }
    struct aq__group *g = &q->groups[q->n_groups++];
    *g = (struct aq__group){.key = key, .since = since, .started = started};
    return g;
}

static void aq__group_del(struct alert_queue *q, struct aq__group *g)
{
    size_t i = (size_t)(g - q->groups);
    memmove(g, g + 1, (q->n_groups - i - 1) * sizeof *g);
    q->n_groups--;
}

/* ---- the window ---- */

static void aq__window_add(struct alert_queue *q, const struct journal_alert *m, int64_t key)
{
    size_t len = strlen(m->body);
    struct aq__msg *w = malloc(sizeof *w + len + 1);
    if (!w) {
        q->complete = false; /* read again later */
        return;
    }
    *w = (struct aq__msg){.seq = m->seq, .group = key, .opens = m->opens, .len = len};
    snprintf(w->event, sizeof w->event, "%s", m->event);
    snprintf(w->service, sizeof w->service, "%s", m->service);
    memcpy(w->body, m->body, len + 1);
    *q->tail = w;
    q->tail = &w->next;
    q->n_window++;
    q->read_seq = m->seq;
}

/* Unlink *pp from the window and free it. */
static void aq__window_del(struct alert_queue *q, struct aq__msg **pp)
{
    struct aq__msg *w = *pp;
    *pp = w->next;
    if (q->tail == &w->next)
        q->tail = pp;
    q->n_window--;
    free(w);
}

/* The window is empty: the next messages from the journal. Rows of a group
 * dropped while its deletion waited for the disk are skipped. */
static void aq__fill(struct alert_queue *q)
{
    struct journal_alert rows[AQ__WINDOW];
    int n = journal_alert_read(q->j, q->key, q->read_seq, rows, AQ__WINDOW);
    for (int i = 0; i < n; i++) {
        int64_t key = aq__key_of(rows[i].fault_id, rows[i].seq);
        const struct aq__group *g = aq__group(q, key);
        if (g && rows[i].seq >= g->since)
            aq__window_add(q, &rows[i], key);
        q->read_seq = rows[i].seq;
        journal_alert_release(&rows[i]);
    }
    if (n >= 0 && n < AQ__WINDOW && !journal_pending(q->j, NULL))
        q->complete = true;
    if (q->head || !q->pending)
        return;
    if (q->complete) {
        /* The counts said more: what they counted never reached the disk. */
        log_event(LOG_WARN, NULL, "alert-queue-resync", "webhook=%zu url=\"%s\" counted=%zu",
                  q->index, q->where, q->pending);
        q->n_groups = 0;
        q->pending = 0;
        return;
    }
    /* Behind the disk, a read error, or only rows of dropped groups: look
     * again in a while. */
    uvclock_arm(&q->retry, aq__retry_cb, AQ__READ_RETRY_MS);
}

/* ---- delivery ---- */

static void aq__log(enum log_level lvl, const struct alert_queue *q, const struct aq__msg *m,
                    const char *event, unsigned attempts, const char *extra)
{
    char err[64];
    if (q->error > 0)
        snprintf(err, sizeof err, "HTTP %d", q->error);
    else
        snprintf(err, sizeof err, "%s", strerror(-q->error));
    log_event(lvl, m->service[0] ? m->service : NULL, event,
              "webhook=%zu url=\"%s\" alert=%s fault=%lld attempts=%u error=\"%s\"%s", q->index,
              q->where, m->event, (long long)(m->group > 0 ? m->group : 0), attempts, err,
              extra ? extra : "");
}

/* The head was delivered: it leaves the journal and the window. */
static void aq__done(struct alert_queue *q)
{
    struct aq__msg *m = q->head;
    struct aq__group *g = aq__group(q, m->group);
    journal_alert_delete(q->j, q->key, m->seq);
    if (q->failures)
        aq__log(q->failing ? LOG_WARN : LOG_INFO, q, m, "alert-delivered", q->failures + 1, NULL);
    if (g) {
        if (m->opens)
            g->started = true;
        if (strcmp(m->event, "resolved") == 0)
            g->started = false;
        q->pending--;
        if (--g->n == 0)
            aq__group_del(q, g);
    }
    q->failures = 0;
    q->failing = false;
    q->delivered++;
    aq__window_del(q, &q->head);
}

static void aq__retry_cb(uv_timer_t *t)
{
    aq__deliver(t->data);
}

/* Every failed attempt waits longer, up to ALERT_RETRY_MAX_MS, and the
 * message stays at the head: nothing is given up. `retries` failures in a
 * row make the webhook failing (an error in the log, once). */
static void aq__failed(struct alert_queue *q, int status)
{
    q->error = status;
    q->failures++;
    if (q->failures <= q->cfg->retries) {
        aq__log(LOG_WARN, q, q->head, "alert-retry", q->failures, NULL);
    } else if (!q->failing) {
        char action[80];
        snprintf(action, sizeof action, " action=\"kept; retried, at most %d ms apart\"",
                 ALERT_RETRY_MAX_MS);
        q->failing = true;
        aq__log(LOG_ERROR, q, q->head, "alert-undelivered", q->failures, action);
    } else {
        aq__log(LOG_DEBUG, q, q->head, "alert-retry", q->failures, NULL);
    }
    uint64_t ms = ALERT_RETRY_MS;
    for (unsigned i = 1; i < q->failures && ms < ALERT_RETRY_MAX_MS; i++)
        ms *= 2;
    uvclock_arm(&q->retry, aq__retry_cb,
                backoff_jitter(ms < ALERT_RETRY_MAX_MS ? ms : ALERT_RETRY_MAX_MS));
}

static void aq__post_cb(int status, void *arg)
{
    struct alert_queue *q = arg;
    q->post = NULL;
    if (status >= 200 && status <= 299)
        aq__done(q);
    else
        aq__failed(q, status);
    aq__deliver(q);
}

/* Send the head unless an attempt or a wait is under way. One at a time:
 * the receiver sees the messages in order. */
static void aq__deliver(struct alert_queue *q)
{
    if (!q->live || q->post || uv_is_active((uv_handle_t *)&q->retry))
        return;
    if (!q->head && !q->complete)
        aq__fill(q);
    struct aq__msg *m = q->head;
    if (!m)
        return;
    uint64_t timeout = q->cfg->timeout_ms ? q->cfg->timeout_ms : AQ__TIMEOUT_MS;
    q->post = post_start(q->loop, q->cfg->url, m->body, m->len, timeout, aq__post_cb, q);
    if (!q->post) /* out of memory: a failed attempt, tried again later */
        aq__failed(q, -ENOMEM);
}

/* ---- the bound ---- */

/* The group to drop: the oldest the receiver has not started on, else the
 * oldest; the one on the wire only when it is all there is. */
static struct aq__group *aq__victim(struct alert_queue *q)
{
    int64_t busy = q->post && q->head ? q->head->group : 0; /* keys are never 0 */
    for (size_t i = 0; i < q->n_groups; i++)
        if (!q->groups[i].started && q->groups[i].key != busy)
            return &q->groups[i];
    for (size_t i = 0; i < q->n_groups; i++)
        if (q->groups[i].key != busy)
            return &q->groups[i];
    return q->n_groups ? &q->groups[0] : NULL;
}

static void aq__drop(struct alert_queue *q, struct aq__group *g)
{
    int64_t key = g->key;
    size_t n = g->n;
    if (q->head && q->head->group == key) {
        post_cancel(q->post); /* NULL-safe */
        q->post = NULL;
        uv_timer_stop(&q->retry); /* the next one goes now; the webhook stays failing */
    }
    for (struct aq__msg **pp = &q->head; *pp;)
        if ((*pp)->group == key)
            aq__window_del(q, pp);
        else
            pp = &(*pp)->next;
    if (key > 0)
        journal_alert_delete_fault(q->j, q->key, key);
    else
        journal_alert_delete(q->j, q->key, -key);
    log_event(LOG_WARN, NULL, "alert-dropped",
              "webhook=%zu url=\"%s\" fault=%lld alerts=%zu why=\"more than %u waiting\"", q->index,
              q->where, (long long)(key > 0 ? key : 0), n, q->cfg->max_pending);
    q->pending -= n;
    q->dropped += n;
    aq__group_del(q, g);
    if (key > 0 && q->sink.dropped)
        q->sink.dropped(q->sink.ctx, key);
}

static void aq__trim(struct alert_queue *q)
{
    struct aq__group *g;
    while (q->pending > q->cfg->max_pending && (g = aq__victim(q)))
        aq__drop(q, g);
}

/* ---- the queue ---- */

/* FNV-1a: a name for the url that does not reveal it. */
static uint64_t aq__hash(const char *s)
{
    uint64_t h = 14695981039346656037ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* Groups and counts as the journal has them. */
static int aq__load(struct alert_queue *q)
{
    struct journal_alert_group *v = NULL;
    int n = journal_alert_groups(q->j, q->key, &v);
    for (int i = 0; i < n; i++) {
        int64_t key = aq__key_of(v[i].fault_id, v[i].first_seq);
        if (!aq__group_add(q, key, v[i].first_seq, !v[i].first_opens)) {
            n = -ENOMEM;
            break;
        }
        q->groups[q->n_groups - 1].n = (size_t)v[i].count;
        q->pending += (size_t)v[i].count;
    }
    free(v);
    q->complete = q->pending == 0;
    return n < 0 ? n : 0;
}

struct alert_queue *alert_queue_new(uv_loop_t *loop, struct journal *j,
                                    const struct webhook_cfg *cfg, size_t index, unsigned ordinal,
                                    struct alert_queue_sink sink)
{
    struct url u;
    char why[128];
    struct alert_queue *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    *q = (struct alert_queue){.loop = loop, .j = j, .cfg = cfg, .sink = sink, .index = index};
    q->tail = &q->head;
    url_redact(cfg->url, q->where, sizeof q->where);
    int len = snprintf(q->key, sizeof q->key, "%s#%016llx", q->where,
                       (unsigned long long)aq__hash(cfg->url));
    if (ordinal)
        snprintf(q->key + len, sizeof q->key - (size_t)len, "/%u", ordinal);
    if (!(q->usable = url_parse(cfg->url, &u, why, sizeof why) == 0))
        log_event(LOG_ERROR, NULL, "alert-webhook", "webhook=%zu url=\"%s\" error=\"%s\"", index,
                  q->where, why);
    if (aq__load(q) < 0) {
        free(q->groups);
        free(q);
        return NULL;
    }
    uv_timer_init(loop, &q->retry); /* cannot fail */
    q->retry.data = q;
    if (q->pending)
        log_event(LOG_INFO, NULL, "alert-queue-loaded", "webhook=%zu url=\"%s\" pending=%zu", index,
                  q->where, q->pending);
    return q;
}

void alert_queue_set(struct alert_queue *q, const struct webhook_cfg *cfg, size_t index)
{
    q->cfg = cfg;
    q->index = index;
    q->live = true;
    aq__trim(q);
    aq__deliver(q);
}

const char *alert_queue_key(const struct alert_queue *q)
{
    return q->key;
}

const char *alert_queue_where(const struct alert_queue *q)
{
    return q->where;
}

void alert_queue_push(struct alert_queue *q, const struct alert_queue_item *it, json_t *doc)
{
    char id[48];
    struct journal_alert m = {.fault_id = it->fault_id, .opens = it->opens};
    if (!q->usable)
        return;
    /* The seq orders the queue; the time keeps ids apart should the
     * journal ever start afresh. */
    m.seq = journal_alert_seq_next(q->j);
    snprintf(id, sizeof id, "%lld-%llu", (long long)m.seq, (unsigned long long)clock_wall_ms());
    json_object_set_new(doc, "id", json_string(id));
    m.body = m.seq ? json_dumps(doc, JSON_COMPACT) : NULL;
    snprintf(m.event, sizeof m.event, "%s", it->event);
    snprintf(m.service, sizeof m.service, "%s", it->service ? it->service : "");
    int64_t key = aq__key_of(it->fault_id, m.seq);
    struct aq__group *g = aq__group(q, key);
    if (!m.body || (!g && !(g = aq__group_add(q, key, m.seq, !it->opens))) ||
        journal_alert_push(q->j, q->key, &m) < 0) {
        log_event(LOG_ERROR, it->service, "alert-dropped",
                  "webhook=%zu url=\"%s\" alert=%s fault=%lld error=\"%s\"", q->index, q->where,
                  it->event, (long long)it->fault_id,
                  m.seq ? "cannot queue it" : "cannot read the journal");
        if (g && !g->n)
            aq__group_del(q, g);
        free(m.body);
        return;
    }
    g->n++;
    q->pending++;
    if (q->complete && q->n_window < AQ__WINDOW)
        aq__window_add(q, &m, key);
    else
        q->complete = false;
    free(m.body);
    aq__trim(q);
    aq__deliver(q);
}

bool alert_queue_waiting(const struct alert_queue *q, int64_t fault_id)
{
    return fault_id && aq__group(q, fault_id);
}

json_t *alert_queue_status(const struct alert_queue *q)
{
    char err[64];
    if (q->error > 0)
        snprintf(err, sizeof err, "HTTP %d", q->error);
    else
        snprintf(err, sizeof err, "%s", q->error ? strerror(-q->error) : "");
    return json_pack("{s:I, s:s, s:I, s:I, s:I, s:b, s:I, s:s?}", "webhook", (json_int_t)q->index,
                     "url", q->where, "pending", (json_int_t)q->pending, "delivered",
                     (json_int_t)q->delivered, "dropped", (json_int_t)q->dropped, "failing",
                     q->failing, "attempts", (json_int_t)q->failures, "error",
                     q->failures ? err : NULL);
}

size_t alert_queue_pending(const struct alert_queue *q)
{
    return q->pending;
}

uint64_t alert_queue_dropped(const struct alert_queue *q)
{
    return q->dropped;
}

static void aq__close_cb(uv_handle_t *t)
{
    free(t->data);
}

void alert_queue_free(struct alert_queue *q)
{
    if (!q)
        return;
    post_cancel(q->post); /* NULL-safe */
    q->post = NULL;
    while (q->head)
        aq__window_del(q, &q->head);
    free(q->groups);
    q->groups = NULL;
    uv_close((uv_handle_t *)&q->retry, aq__close_cb);
}

void alert_queue_forget(struct alert_queue *q)
{
    if (q && q->pending) {
        log_event(LOG_WARN, NULL, "alert-dropped",
                  "webhook=%zu url=\"%s\" alerts=%zu why=\"webhook no longer configured\"",
                  q->index, q->where, q->pending);
    }
    if (q)
        journal_alert_forget_hook(q->j, q->key);
    alert_queue_free(q);
}
