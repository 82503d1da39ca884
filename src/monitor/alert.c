/* Webhook alerts: per webhook, the open alerts (one per fault) and an
 * ordered, bounded delivery queue with retries and backoff. */
#include "monitor/alert.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/backoff.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/model.h"
#include "lib/url.h"
#include "lib/uvclock.h"
#include "monitor/post.h"

#define ALERT__BACKOFF_MAX_MS 300000 /* the doubling stops at 5 min */
#define ALERT__TIMEOUT_MS 5000       /* per attempt when the config says 0 */

/* One message waiting for (or in) delivery. */
struct alert__msg {
    struct alert__msg *next; /* toward the tail */
    int64_t fault_id;        /* for logs; 0: none */
    const char *event;       /* static string, for logs */
    char service[64];        /* for logs */
    size_t len;              /* bytes of body */
    char body[];             /* the JSON document */
};

/* An alert sent and not yet resolved. */
struct alert__open {
    struct alert__open *next; /* in the hook's list */
    struct fault f;           /* as last reported: repeats send this */
    uint64_t last_ms;         /* uv_now of its last message */
    int64_t *symptoms;        /* fault ids folded into this alert */
    size_t n_symptoms;        /* entries used */
    size_t cap_symptoms;      /* entries allocated */
};

/* One webhook. On the heap, each: its timer must not move, and a reload
 * hands it over to the new list as it is. */
struct alert__hook {
    struct alerter *a;             /* owner; borrowed */
    const struct webhook_cfg *cfg; /* borrowed from the alerter's config */
    size_t index;                  /* in the config's list, for logs */
    char where[URL_REDACTED_MAX];  /* scheme://host:port: what logs may say of the url */
    bool usable;                   /* the url parses: messages are queued */
    uv_timer_t retry;              /* backoff before the next attempt; data = this */
    struct post *post;             /* the attempt in flight; NULL: none */
    unsigned failures;             /* failed attempts of the head message */
    struct alert__msg *head;       /* the message being delivered; NULL: idle */
    struct alert__msg **tail;      /* where the next message goes */
    size_t n_queued;               /* messages in the queue, head included */
    struct alert__open *open;      /* alerts not yet resolved */
};

struct alerter {
    uv_loop_t *loop;              /* borrowed */
    const struct alerts_cfg *cfg; /* borrowed */
    uv_timer_t repeat;            /* the next repeat due; data = this; its close frees */
    struct alert__hook **hooks;   /* n_hooks, in config order */
    size_t n_hooks;
    int64_t *symptoms;   /* ids of symptom faults not yet resolved */
    size_t n_symptoms;   /* entries used */
    size_t cap_symptoms; /* entries allocated */
    char host[256];      /* gethostname(), in every message */
};

static void alert__deliver(struct alert__hook *h);
static void alert__arm(struct alerter *a);

/* ---- id sets: small arrays; O(n) is fine, n is open faults ---- */

static bool alert__ids_has(const int64_t *ids, size_t n, int64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

static int alert__ids_add(int64_t **ids, size_t *n, size_t *cap, int64_t id)
{
    if (alert__ids_has(*ids, *n, id))
        return 0;
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 4;
        int64_t *p = realloc(*ids, c * sizeof *p);
        if (!p)
            return -ENOMEM;
        *ids = p;
        *cap = c;
    }
    (*ids)[(*n)++] = id;
    return 0;
}

static bool alert__ids_del(int64_t *ids, size_t *n, int64_t id)
{
    for (size_t i = 0; i < *n; i++)
        if (ids[i] == id) {
            ids[i] = ids[--*n];
            return true;
        }
    return false;
}

/* ---- the message ---- */

static json_t *alert__time(uint64_t wall_ms)
{
    char buf[40];
    return wall_ms ? json_string(clock_iso8601(wall_ms, buf, sizeof buf)) : json_null();
}

/* JSON object text from the model (context, params); kept as a string if
 * it is not an object, dropped if empty. */
static json_t *alert__object(const char *text)
{
    json_t *v;
    if (!text || !text[0])
        return json_null();
    v = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    if (json_is_object(v))
        return v;
    json_decref(v);
    return json_string(text);
}

static json_t *alert__fault_json(const struct fault *f)
{
    if (!f)
        return json_null();
    return json_pack("{sI ss ss ss ss ss ss so so so}", "id", (json_int_t)f->id, "service",
                     f->service, "check", f->check, "type", fault_type_name(f->type), "severity",
                     severity_name(f->severity), "impact", impact_name(f->impact), "description",
                     f->description, "context", alert__object(f->context), "opened_at",
                     alert__time(f->opened_ms), "resolved_at", alert__time(f->resolved_ms));
}

static json_t *alert__action_json(const struct action *x)
{
    if (!x)
        return json_null();
    return json_pack("{sI sI ss ss so ss so so so}", "id", (json_int_t)x->id, "fault_id",
                     (json_int_t)x->fault_id, "strategy", strategy_name(x->strategy), "status",
                     action_status_name(x->status), "params", alert__object(x->params), "result",
                     x->result, "created_at", alert__time(x->created_ms), "started_at",
                     alert__time(x->started_ms), "finished_at", alert__time(x->finished_ms));
}

/* What an event carries besides the fault. */
struct alert__event {
    const char *name;          /* "opened", "escalated", "repeat", "resolved", "failed" */
    const char *service;       /* the service concerned */
    const struct fault *f;     /* may be NULL (a service failed with no fault) */
    const struct action *x;    /* the action that failed; may be NULL */
    const char *next_strategy; /* may be NULL */
    const char *why;           /* human words; may be NULL */
};

static struct alert__msg *alert__msg_new(const struct alerter *a, const struct alert__event *ev,
                                         const struct alert__open *o)
{
    char now[40];
    struct alert__msg *m = NULL;
    json_t *sym = json_array(), *doc;
    for (size_t i = 0; o && sym && i < o->n_symptoms; i++)
        json_array_append_new(sym, json_integer(o->symptoms[i]));
    /* s?: null when NULL; s*: left out when NULL. */
    doc = json_pack("{ss ss so so ss? so ss* s{ss} ss}", "event", ev->name, "service", ev->service,
                    "fault", alert__fault_json(ev->f), "action", alert__action_json(ev->x),
                    "next_strategy", ev->next_strategy, "symptoms", sym, "reason", ev->why,
                    "recoverd", "host", a->host, "sent_at",
                    clock_iso8601(clock_wall_ms(), now, sizeof now));
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    size_t len = text ? strlen(text) : 0;
    if (text && (m = malloc(sizeof *m + len + 1))) {
        m->next = NULL;
        m->fault_id = ev->f ? ev->f->id : 0;
        m->event = ev->name;
        snprintf(m->service, sizeof m->service, "%s", ev->service);
        m->len = len;
        memcpy(m->body, text, len + 1);
    }
    free(text);
    json_decref(doc);
    return m;
}

/* ---- delivery ---- */

static void alert__log(enum log_level lvl, const struct alert__hook *h, const struct alert__msg *m,
                       const char *event, int status)
{
    char err[64];
    if (status > 0)
        snprintf(err, sizeof err, "HTTP %d", status);
    else
        snprintf(err, sizeof err, "%s", strerror(-status));
    log_event(lvl, m->service[0] ? m->service : NULL, event,
              "webhook=%zu url=\"%s\" alert=%s fault=%lld attempts=%u error=\"%s\"", h->index,
              h->where, m->event, (long long)m->fault_id, h->failures + 1, err);
}

/* The head message is done with (delivered or given up): next one. */
static void alert__pop(struct alert__hook *h)
{
    struct alert__msg *m = h->head;
    h->head = m->next;
    if (!h->head)
        h->tail = &h->head;
    h->n_queued--;
    h->failures = 0;
    free(m);
}

static void alert__retry_cb(uv_timer_t *t)
{
    alert__deliver(t->data);
}

static void alert__post_cb(int status, void *arg)
{
    struct alert__hook *h = arg;
    h->post = NULL;
    if (status >= 200 && status <= 299) {
        alert__pop(h);
        alert__deliver(h);
        return;
    }
    if (h->failures >= h->cfg->retries) {
        alert__log(LOG_ERROR, h, h->head, "alert-undelivered", status);
        alert__pop(h);
        alert__deliver(h);
        return;
    }
    alert__log(LOG_WARN, h, h->head, "alert-retry", status);
    uint64_t ms = ALERT_RETRY_MS;
    for (unsigned i = 0; i < h->failures && ms < ALERT__BACKOFF_MAX_MS; i++)
        ms *= 2;
    h->failures++;
    uvclock_arm(&h->retry, alert__retry_cb,
                backoff_jitter(ms < ALERT__BACKOFF_MAX_MS ? ms : ALERT__BACKOFF_MAX_MS));
}

/* Send the head message unless an attempt or a backoff is under way. One
 * at a time per webhook: the receiver sees the events in order. */
static void alert__deliver(struct alert__hook *h)
{
    struct alert__msg *m = h->head;
    if (!m || h->post || uv_is_active((uv_handle_t *)&h->retry))
        return;
    uint64_t timeout = h->cfg->timeout_ms ? h->cfg->timeout_ms : ALERT__TIMEOUT_MS;
    h->post = post_start(h->a->loop, h->cfg->url, m->body, m->len, timeout, alert__post_cb, h);
    if (!h->post) /* out of memory: count it as a failed attempt, later */
        alert__post_cb(-ENOMEM, h);
}

static void alert__enqueue(struct alert__hook *h, struct alert__msg *m)
{
    if (!m) {
        log_event(LOG_ERROR, NULL, "alert-dropped", "webhook=%zu error=\"%s\"", h->index,
                  strerror(ENOMEM));
        return;
    }
    if (h->n_queued >= ALERT_QUEUE_MAX) {
        /* The head is being delivered: the oldest waiting one goes. */
        struct alert__msg *old = h->head->next;
        log_event(LOG_WARN, old->service[0] ? old->service : NULL, "alert-dropped",
                  "webhook=%zu url=\"%s\" alert=%s fault=%lld error=\"queue full (%d)\"", h->index,
                  h->where, old->event, (long long)old->fault_id, ALERT_QUEUE_MAX);
        h->head->next = old->next;
        if (h->tail == &old->next)
            h->tail = &h->head->next;
        h->n_queued--;
        free(old);
    }
    *h->tail = m;
    h->tail = &m->next;
    h->n_queued++;
    alert__deliver(h);
}

/* ---- open alerts ---- */

static struct alert__open *alert__find(const struct alert__hook *h, int64_t id)
{
    struct alert__open *o;
    for (o = h->open; o && o->f.id != id; o = o->next)
        ;
    return o;
}

static struct alert__open *alert__open_new(struct alert__hook *h, const struct fault *f)
{
    struct alert__open *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    o->f = *f;
    o->next = h->open;
    h->open = o;
    return o;
}

static void alert__open_free(struct alert__hook *h, struct alert__open *o)
{
    struct alert__open **pp;
    for (pp = &h->open; *pp != o; pp = &(*pp)->next)
        ;
    *pp = o->next;
    free(o->symptoms);
    free(o);
}

/* Queue ev for h, as a message of alert o (may be NULL). */
static void alert__send(struct alert__hook *h, struct alert__open *o, const struct alert__event *ev)
{
    if (!h->usable)
        return;
    alert__enqueue(h, alert__msg_new(h->a, ev, o));
    if (o) {
        uv_update_time(h->a->loop);
        o->last_ms = uv_now(h->a->loop);
    }
}

/* The fault's alert in h: the one open, or a new one if f deserves an alert
 * there; NULL if not (below min_severity, a symptom, OOM). */
static struct alert__open *alert__for(struct alert__hook *h, const struct fault *f)
{
    struct alert__open *o = alert__find(h, f->id);
    if (o || (int)f->severity < h->cfg->min_severity ||
        alert__ids_has(h->a->symptoms, h->a->n_symptoms, f->id))
        return o;
    return alert__open_new(h, f);
}

/* An update of f's alert in every webhook where it has (or deserves) one. */
static void alert__update(struct alerter *a, const struct alert__event *ev)
{
    for (size_t i = 0; a && i < a->n_hooks; i++) {
        struct alert__hook *h = a->hooks[i];
        struct alert__open *o = alert__for(h, ev->f);
        if (!o)
            continue;
        o->f = *ev->f;
        alert__send(h, o, ev);
    }
    if (a)
        alert__arm(a);
}

void alert_fault_opened(struct alerter *a, const struct fault *f)
{
    struct alert__event ev = {.name = "opened", .service = f->service, .f = f};
    for (size_t i = 0; a && i < a->n_hooks; i++) {
        struct alert__hook *h = a->hooks[i];
        if (alert__find(h, f->id))
            continue; /* the same fault again: never a second "opened" */
        struct alert__open *o = alert__for(h, f);
        if (o)
            alert__send(h, o, &ev);
    }
    if (a)
        alert__arm(a);
}

void alert_fault_escalated(struct alerter *a, const struct fault *f, const struct action *failed,
                           const char *next_strategy)
{
    struct alert__event ev = {.name = "escalated",
                              .service = f->service,
                              .f = f,
                              .x = failed,
                              .next_strategy = next_strategy};
    alert__update(a, &ev);
}

void alert_service_failed(struct alerter *a, const char *service, const struct fault *f,
                          const char *why)
{
    struct alert__event ev = {.name = "failed", .service = service, .f = f, .why = why};
    if (f) {
        alert__update(a, &ev);
        return;
    }
    for (size_t i = 0; a && i < a->n_hooks; i++)
        alert__send(a->hooks[i], NULL, &ev);
}

void alert_fault_resolved(struct alerter *a, const struct fault *f)
{
    struct alert__event ev = {.name = "resolved", .service = f->service, .f = f};
    if (!a || alert__ids_del(a->symptoms, &a->n_symptoms, f->id))
        return; /* a symptom: its root's alert speaks for it */
    for (size_t i = 0; i < a->n_hooks; i++) {
        struct alert__hook *h = a->hooks[i];
        struct alert__open *o = alert__find(h, f->id);
        if (!o)
            continue;
        o->f = *f;
        alert__send(h, o, &ev);
        alert__open_free(h, o);
    }
    alert__arm(a);
}

void alert_fault_symptom(struct alerter *a, const struct fault *symptom, int64_t root_fault_id)
{
    if (!a || alert__ids_add(&a->symptoms, &a->n_symptoms, &a->cap_symptoms, symptom->id) < 0)
        return;
    for (size_t i = 0; i < a->n_hooks; i++) {
        struct alert__open *o = alert__find(a->hooks[i], root_fault_id);
        if (o)
            alert__ids_add(&o->symptoms, &o->n_symptoms, &o->cap_symptoms, symptom->id);
    }
}

/* ---- repeats ---- */

static void alert__repeat_cb(uv_timer_t *t)
{
    struct alerter *a = t->data;
    uint64_t now = uv_now(a->loop);
    for (size_t i = 0; i < a->n_hooks; i++) {
        struct alert__hook *h = a->hooks[i];
        for (struct alert__open *o = h->open; h->cfg->repeat_ms && o; o = o->next) {
            if (now < o->last_ms + h->cfg->repeat_ms)
                continue;
            struct alert__event ev = {.name = "repeat", .service = o->f.service, .f = &o->f};
            alert__send(h, o, &ev);
        }
    }
    alert__arm(a);
}

/* The timer waits for the earliest repeat due; O(open alerts) per event. */
static void alert__arm(struct alerter *a)
{
    uint64_t due = UINT64_MAX, now;
    for (size_t i = 0; i < a->n_hooks; i++) {
        const struct alert__hook *h = a->hooks[i];
        for (const struct alert__open *o = h->open; h->cfg->repeat_ms && o; o = o->next)
            if (o->last_ms + h->cfg->repeat_ms < due)
                due = o->last_ms + h->cfg->repeat_ms;
    }
    if (due == UINT64_MAX) {
        uv_timer_stop(&a->repeat);
        return;
    }
    uv_update_time(a->loop);
    now = uv_now(a->loop);
    uv_timer_start(&a->repeat, alert__repeat_cb, due > now ? due - now : 0, 0);
}

/* ---- webhooks ---- */

static void alert__hook_close_cb(uv_handle_t *t)
{
    free(t->data);
}

/* Drop everything of h; it is freed in its timer's close callback. */
static void alert__hook_close(struct alert__hook *h)
{
    post_cancel(h->post); /* NULL-safe */
    h->post = NULL;
    while (h->head)
        alert__pop(h);
    while (h->open)
        alert__open_free(h, h->open);
    uv_close((uv_handle_t *)&h->retry, alert__hook_close_cb);
}

static void alert__hook_set(struct alert__hook *h, const struct webhook_cfg *cfg, size_t index)
{
    struct url u;
    char why[128];
    h->cfg = cfg;
    h->index = index;
    url_redact(cfg->url, h->where, sizeof h->where);
    h->usable = url_parse(cfg->url, &u, why, sizeof why) == 0;
    if (!h->usable)
        log_event(LOG_ERROR, NULL, "alert-webhook", "webhook=%zu url=\"%s\" error=\"%s\"", index,
                  h->where, why);
}

static struct alert__hook *alert__hook_new(struct alerter *a, const struct webhook_cfg *cfg,
                                           size_t index)
{
    struct alert__hook *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->a = a;
    h->tail = &h->head;
    uv_timer_init(a->loop, &h->retry); /* cannot fail */
    h->retry.data = h;
    alert__hook_set(h, cfg, index);
    return h;
}

/* The hooks of cfg, taking over those of the old list with the same url.
 * Allocates first and commits after, so that on OOM nothing has changed. */
static int alert__hooks_build(struct alerter *a, const struct alerts_cfg *cfg)
{
    size_t n = cfg ? cfg->n_webhooks : 0;
    struct alert__hook **hooks = calloc(n + 1, sizeof *hooks);
    size_t *from = calloc(n + 1, sizeof *from); /* old index + 1; 0: a new hook */
    if (!hooks || !from)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < a->n_hooks && !from[i]; k++) {
            bool taken = false;
            for (size_t j = 0; j < i; j++)
                taken |= from[j] == k + 1;
            if (!taken && strcmp(a->hooks[k]->cfg->url, cfg->webhooks[i].url) == 0)
                from[i] = k + 1;
        }
        if (!from[i] && !(hooks[i] = alert__hook_new(a, &cfg->webhooks[i], i)))
            goto fail;
    }
    for (size_t k = 0; k < a->n_hooks; k++) {
        bool kept = false;
        for (size_t i = 0; i < n; i++)
            kept |= from[i] == k + 1;
        if (!kept)
            alert__hook_close(a->hooks[k]);
    }
    for (size_t i = 0; i < n; i++)
        if (from[i]) {
            hooks[i] = a->hooks[from[i] - 1];
            alert__hook_set(hooks[i], &cfg->webhooks[i], i);
        }
    free(from);
    free(a->hooks);
    a->hooks = hooks;
    a->n_hooks = n;
    a->cfg = cfg;
    return 0;
fail:
    for (size_t i = 0; hooks && i < n; i++)
        if (hooks[i])
            alert__hook_close(hooks[i]); /* new and empty */
    free(hooks);
    free(from);
    return -ENOMEM;
}

static void alert__close_cb(uv_handle_t *t)
{
    struct alerter *a = t->data;
    free(a->hooks);
    free(a->symptoms);
    free(a);
}

struct alerter *alerter_new(uv_loop_t *loop, const struct alerts_cfg *cfg)
{
    struct alerter *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->loop = loop;
    if (gethostname(a->host, sizeof a->host - 1) < 0)
        snprintf(a->host, sizeof a->host, "unknown");
    if (alert__hooks_build(a, cfg) < 0) {
        free(a);
        return NULL;
    }
    uv_timer_init(loop, &a->repeat); /* cannot fail */
    a->repeat.data = a;
    return a;
}

void alerter_reconfigure(struct alerter *a, const struct alerts_cfg *cfg)
{
    if (alert__hooks_build(a, cfg) < 0) {
        log_event(LOG_ERROR, NULL, "alert-reconfigure", "error=\"%s\"", strerror(ENOMEM));
        return;
    }
    alert__arm(a);
}

void alerter_free(struct alerter *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n_hooks; i++)
        alert__hook_close(a->hooks[i]);
    a->n_hooks = 0;
    uv_close((uv_handle_t *)&a->repeat, alert__close_cb);
}
