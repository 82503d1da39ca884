/* Webhook alerts: per webhook, the open alerts (one per fault, kept in the
 * journal too) and a delivery queue (monitor/alert-queue.c). */
#include "monitor/alert.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "lib/model.h"
#include "lib/uvclock.h"
#include "monitor/alert-queue.h"
#include "store/journal.h"

/* An alert sent and not yet resolved. */
struct alert__open {
    struct alert__open *next; /* in the hook's list */
    struct fault f;           /* as last reported: repeats send this; owns f.context */
    uint64_t last_ms;         /* uv_now of its last message */
    int64_t *symptoms;        /* fault ids folded into this alert */
    size_t n_symptoms;        /* entries used */
    size_t cap_symptoms;      /* entries allocated */
    bool gone;                /* its messages were dropped: freed by alert__purge */
};

/* One webhook: its open alerts and its queue. */
struct alert__hook {
    struct alerter *a;             /* owner; borrowed */
    const struct webhook_cfg *cfg; /* borrowed from the alerter's config */
    struct alert_queue *q;         /* owned */
    struct alert__open *open;      /* alerts not yet resolved */
};

struct alerter {
    uv_loop_t *loop;            /* borrowed */
    struct journal *j;          /* borrowed */
    uv_timer_t repeat;          /* the next repeat due; data = this; its close frees */
    struct alert__hook **hooks; /* n_hooks, in config order */
    size_t n_hooks;
    int64_t *symptoms;   /* ids of symptom faults not yet resolved */
    size_t n_symptoms;   /* entries used */
    size_t cap_symptoms; /* entries allocated */
    char host[256];      /* gethostname(), in every message */
};

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
                     x->result ? x->result : "", "created_at", alert__time(x->created_ms),
                     "started_at", alert__time(x->started_ms), "finished_at",
                     alert__time(x->finished_ms));
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

/* The fault ids folded into o (none for NULL), as a JSON array. */
static json_t *alert__symptoms_json(const struct alert__open *o)
{
    json_t *sym = json_array();
    for (size_t i = 0; o && sym && i < o->n_symptoms; i++)
        json_array_append_new(sym, json_integer(o->symptoms[i]));
    return sym;
}

static json_t *alert__doc(const struct alerter *a, const struct alert__event *ev,
                          const struct alert__open *o)
{
    char now[40];
    json_t *sym = alert__symptoms_json(o);
    /* s?: null when NULL; s*: left out when NULL. */
    return json_pack("{ss ss so so ss? so ss* s{ss} ss}", "event", ev->name, "service", ev->service,
                     "fault", alert__fault_json(ev->f), "action", alert__action_json(ev->x),
                     "next_strategy", ev->next_strategy, "symptoms", sym, "reason", ev->why,
                     "recoverd", "host", a->host, "sent_at",
                     clock_iso8601(clock_wall_ms(), now, sizeof now));
}

/* ---- open alerts ---- */

static struct alert__open *alert__find(const struct alert__hook *h, int64_t id)
{
    struct alert__open *o;
    for (o = h->open; o && (o->f.id != id || o->gone); o = o->next)
        ;
    return o;
}

/* Write o to the journal: a restarted recoverd resolves it. */
static void alert__open_save(const struct alert__hook *h, const struct alert__open *o)
{
    json_t *v = alert__symptoms_json(o);
    char *sym = v ? json_dumps(v, JSON_COMPACT) : NULL;
    journal_alert_open_set(h->a->j, alert_queue_key(h->q), o->f.id, sym ? sym : "[]");
    free(sym);
    json_decref(v);
}

static struct alert__open *alert__open_new(struct alert__hook *h, const struct fault *f)
{
    struct alert__open *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    o->f = *f;
    o->f.context = f->context ? strdup(f->context) : NULL;
    o->next = h->open;
    h->open = o;
    return o;
}

/* The fault as last reported, context copied. */
static void alert__open_update(struct alert__open *o, const struct fault *f)
{
    char *ctx = f->context ? strdup(f->context) : NULL;
    free(o->f.context);
    o->f = *f;
    o->f.context = ctx;
}

/* Unlink *pp from its list and free it. */
static void alert__open_unlink(struct alert__open **pp)
{
    struct alert__open *o = *pp;
    *pp = o->next;
    free(o->f.context);
    free(o->symptoms);
    free(o);
}

static void alert__open_free(struct alert__hook *h, struct alert__open *o)
{
    struct alert__open **pp;
    for (pp = &h->open; *pp != o; pp = &(*pp)->next)
        ;
    alert__open_unlink(pp);
}

/* Free the alerts whose messages the bound dropped. */
static void alert__purge(struct alert__hook *h)
{
    for (struct alert__open **pp = &h->open; *pp;)
        if ((*pp)->gone)
            alert__open_unlink(pp);
        else
            pp = &(*pp)->next;
}

/* The queue dropped every waiting message of fault_id: its alert is
 * forgotten, so nothing of it goes out alone later (a later update opens
 * a new alert). */
static void alert__dropped_cb(void *ctx, int64_t fault_id)
{
    struct alert__hook *h = ctx;
    struct alert__open *o = alert__find(h, fault_id);
    if (!o)
        return;
    o->gone = true;
    journal_alert_open_clear(h->a->j, alert_queue_key(h->q), fault_id);
}

/* Queue ev for h, as a message of alert o (may be NULL); opens: the first
 * message of o. o may be gone when this returns (the bound): callers look
 * it up again rather than use it. */
static void alert__send(struct alert__hook *h, struct alert__open *o, const struct alert__event *ev,
                        bool opens)
{
    json_t *doc = alert__doc(h->a, ev, o);
    struct alert_queue_item it = {.fault_id = ev->f ? ev->f->id : 0,
                                  .event = ev->name,
                                  .opens = opens || !ev->f,
                                  .service = ev->service};
    if (o)
        o->last_ms = uvclock_now(h->a->loop);
    if (!doc) {
        log_event(LOG_ERROR, ev->service, "alert-dropped", "webhook=%s alert=%s error=\"%s\"",
                  alert_queue_where(h->q), ev->name, strerror(ENOMEM));
        return;
    }
    alert_queue_push(h->q, &it, doc);
    json_decref(doc);
}

/* The fault's alert in h: the one open, or a new one (*fresh) if f
 * deserves an alert there; NULL if not (below min_severity, a symptom,
 * OOM). */
static struct alert__open *alert__for(struct alert__hook *h, const struct fault *f, bool *fresh)
{
    struct alert__open *o = alert__find(h, f->id);
    *fresh = false;
    if (o || (int)f->severity < h->cfg->min_severity ||
        alert__ids_has(h->a->symptoms, h->a->n_symptoms, f->id))
        return o;
    if ((o = alert__open_new(h, f))) {
        *fresh = true;
        alert__open_save(h, o);
    }
    return o;
}

/* An update of f's alert in every webhook where it has (or deserves) one. */
static void alert__update(struct alerter *a, const struct alert__event *ev)
{
    for (size_t i = 0; a && i < a->n_hooks; i++) {
        struct alert__hook *h = a->hooks[i];
        bool fresh;
        struct alert__open *o = alert__for(h, ev->f, &fresh);
        if (!o)
            continue;
        alert__open_update(o, ev->f);
        alert__send(h, o, ev, fresh);
    }
    if (a)
        alert__arm(a);
}

void alert_fault_opened(struct alerter *a, const struct fault *f)
{
    struct alert__event ev = {.name = "opened", .service = f->service, .f = f};
    for (size_t i = 0; a && i < a->n_hooks; i++) {
        struct alert__hook *h = a->hooks[i];
        bool fresh;
        if (alert__find(h, f->id))
            continue; /* the same fault again: never a second "opened" */
        struct alert__open *o = alert__for(h, f, &fresh);
        if (o)
            alert__send(h, o, &ev, true);
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
        alert__send(a->hooks[i], NULL, &ev, true);
    if (a)
        alert__arm(a);
}

/* "resolved" for o, then it is forgotten (here and in the journal). */
static void alert__resolve(struct alert__hook *h, struct alert__open *o, const struct fault *f)
{
    struct alert__event ev = {.name = "resolved", .service = f->service, .f = f};
    int64_t id = f->id;
    alert__open_update(o, f);
    alert__send(h, o, &ev, false);
    journal_alert_open_clear(h->a->j, alert_queue_key(h->q), id);
    if ((o = alert__find(h, id)))
        alert__open_free(h, o);
}

void alert_fault_resolved(struct alerter *a, const struct fault *f)
{
    if (!a || alert__ids_del(a->symptoms, &a->n_symptoms, f->id))
        return; /* a symptom: its root's alert speaks for it */
    for (size_t i = 0; i < a->n_hooks; i++) {
        struct alert__hook *h = a->hooks[i];
        struct alert__open *o = alert__find(h, f->id);
        if (o)
            alert__resolve(h, o, f);
    }
    alert__arm(a);
}

void alert_fault_symptom(struct alerter *a, const struct fault *symptom, int64_t root_fault_id)
{
    if (!a || alert__ids_add(&a->symptoms, &a->n_symptoms, &a->cap_symptoms, symptom->id) < 0)
        return;
    for (size_t i = 0; i < a->n_hooks; i++) {
        struct alert__open *o = alert__find(a->hooks[i], root_fault_id);
        if (o && alert__ids_add(&o->symptoms, &o->n_symptoms, &o->cap_symptoms, symptom->id) == 0)
            alert__open_save(a->hooks[i], o);
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
            if (o->gone || now < o->last_ms + h->cfg->repeat_ms)
                continue;
            if (alert_queue_waiting(h->q, o->f.id)) {
                o->last_ms = now; /* its last message still waits: a repeat says nothing new */
                continue;
            }
            struct alert__event ev = {.name = "repeat", .service = o->f.service, .f = &o->f};
            alert__send(h, o, &ev, false);
        }
    }
    alert__arm(a);
}

/* Free what the bound dropped, then wait for the earliest repeat due;
 * O(open alerts) per event. */
static void alert__arm(struct alerter *a)
{
    uint64_t due = UINT64_MAX;
    for (size_t i = 0; i < a->n_hooks; i++) {
        struct alert__hook *h = a->hooks[i];
        alert__purge(h);
        for (const struct alert__open *o = h->open; h->cfg->repeat_ms && o; o = o->next)
            if (o->last_ms + h->cfg->repeat_ms < due)
                due = o->last_ms + h->cfg->repeat_ms;
    }
    if (due == UINT64_MAX) {
        uv_timer_stop(&a->repeat);
        return;
    }
    uvclock_arm_at(&a->repeat, alert__repeat_cb, due);
}

/* ---- webhooks ---- */

/* Drop everything of h in memory; forget: its journal state too. */
static void alert__hook_close(struct alert__hook *h, bool forget)
{
    while (h->open)
        alert__open_free(h, h->open);
    if (forget)
        alert_queue_forget(h->q);
    else
        alert_queue_free(h->q);
    free(h);
}

/* An open alert as the journal has it: taken up, or resolved now if its
 * fault was resolved while no alert could go out. */
static void alert__load_open(void *arg, int64_t fault_id, const struct fault *f,
                             const char *symptoms)
{
    struct alert__hook *h = arg;
    struct alert__open *o;
    if (!f || !(o = alert__open_new(h, f))) {
        journal_alert_open_clear(h->a->j, alert_queue_key(h->q), fault_id);
        return;
    }
    json_t *ids = json_loads(symptoms, 0, NULL);
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v)
    {
        int64_t id = json_integer_value(v);
        alert__ids_add(&o->symptoms, &o->n_symptoms, &o->cap_symptoms, id);
        alert__ids_add(&h->a->symptoms, &h->a->n_symptoms, &h->a->cap_symptoms, id);
    }
    json_decref(ids);
    o->last_ms = uvclock_now(h->a->loop);
    if (f->resolved_ms)
        alert__resolve(h, o, f);
}

/* ordinal: how many webhooks before index i share its url. */
static struct alert__hook *alert__hook_new(struct alerter *a, const struct alerts_cfg *cfg,
                                           size_t i)
{
    unsigned ordinal = 0;
    struct alert__hook *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    for (size_t k = 0; k < i; k++)
        ordinal += strcmp(cfg->webhooks[k].url, cfg->webhooks[i].url) == 0;
    h->a = a;
    h->cfg = &cfg->webhooks[i];
    h->q = alert_queue_new(a->loop, a->j, h->cfg, i, ordinal,
                           (struct alert_queue_sink){.dropped = alert__dropped_cb, .ctx = h});
    if (!h->q || journal_alert_opens(a->j, alert_queue_key(h->q), alert__load_open, h) < 0) {
        alert__hook_close(h, false);
        return NULL;
    }
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
        if (!from[i] && !(hooks[i] = alert__hook_new(a, cfg, i)))
            goto fail;
    }
    for (size_t k = 0; k < a->n_hooks; k++) {
        bool kept = false;
        for (size_t i = 0; i < n; i++)
            kept |= from[i] == k + 1;
        if (!kept)
            alert__hook_close(a->hooks[k], true);
    }
    for (size_t i = 0; i < n; i++) {
        if (from[i])
            hooks[i] = a->hooks[from[i] - 1];
        hooks[i]->cfg = &cfg->webhooks[i];
        alert_queue_set(hooks[i]->q, hooks[i]->cfg, i);
    }
    free(from);
    free(a->hooks);
    a->hooks = hooks;
    a->n_hooks = n;
    return 0;
fail:
    for (size_t i = 0; hooks && i < n; i++)
        if (hooks[i])
            alert__hook_close(hooks[i], false); /* new: what it loaded stays in the journal */
    free(hooks);
    free(from);
    return -ENOMEM;
}

/* A queue in the journal that no configured webhook owns: a webhook
 * removed (or its url changed) while recoverd was down. */
static void alert__orphan(void *arg, const char *hook, int64_t waiting)
{
    struct alerter *a = arg;
    for (size_t i = 0; i < a->n_hooks; i++)
        if (strcmp(alert_queue_key(a->hooks[i]->q), hook) == 0)
            return;
    if (waiting > 0)
        log_event(LOG_WARN, NULL, "alert-dropped",
                  "alerts=%lld why=\"webhook no longer configured\"", (long long)waiting);
    journal_alert_forget_hook(a->j, hook);
}

static void alert__close_cb(uv_handle_t *t)
{
    struct alerter *a = t->data;
    free(a->hooks);
    free(a->symptoms);
    free(a);
}

struct alerter *alerter_new(uv_loop_t *loop, const struct alerts_cfg *cfg, struct journal *j)
{
    struct alerter *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->loop = loop;
    a->j = j;
    if (gethostname(a->host, sizeof a->host - 1) < 0)
        snprintf(a->host, sizeof a->host, "unknown");
    uv_timer_init(loop, &a->repeat); /* cannot fail */
    a->repeat.data = a;
    if (alert__hooks_build(a, cfg) < 0) {
        uv_close((uv_handle_t *)&a->repeat, alert__close_cb);
        return NULL;
    }
    journal_alert_hooks(j, alert__orphan, a);
    alert__arm(a);
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
        alert__hook_close(a->hooks[i], false);
    a->n_hooks = 0;
    uv_close((uv_handle_t *)&a->repeat, alert__close_cb);
}

json_t *alerter_status_json(const struct alerter *a)
{
    json_t *hooks = json_array();
    size_t pending = 0;
    uint64_t dropped = 0;
    for (size_t i = 0; a && i < a->n_hooks; i++) {
        pending += alert_queue_pending(a->hooks[i]->q);
        dropped += alert_queue_dropped(a->hooks[i]->q);
        json_array_append_new(hooks, alert_queue_status(a->hooks[i]->q));
    }
    return json_pack("{s:I, s:I, s:o}", "pending", (json_int_t)pending, "dropped",
                     (json_int_t)dropped, "webhooks", hooks);
}
