/* The API's backend: live views of the daemon's services and system, and
 * the operator's controls by name. Faults and actions come from the
 * journal (history survives restarts); services from memory. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon.h"
#include "daemon/service.h"
#include "detect/detector.h"
#include "lib/cgroup.h"
#include "lib/clock.h"
#include "lib/jsonw.h"
#include "lib/log.h"
#include "lib/model.h"
#include "monitor/alert.h"
#include "recover/strategy.h"
#include "store/journal.h"

/* Bytes of a typical service's view (one check in a cgroup: about 620):
 * a listing's buffer is reserved for its rows at this once. */
#define BACKEND__VIEW_BYTES 768
/* Services between two steps of service_view_prefetch: the one written
 * is this far behind the last step. */
#define BACKEND__AHEAD 4
/* Names a slice takes at most (the server asks for fewer). */
#define BACKEND__SLICE_MAX 256

static json_t *backend__time(uint64_t ms)
{
    char buf[40];
    return ms ? json_string(clock_iso8601(ms, buf, sizeof buf)) : json_null();
}

/* Which containment is in force: "cgroup" (with recoverd's subtree and the
 * controllers its services get) or "subreaper". */
static void backend__containment(const struct daemon *d, json_t *j)
{
    const struct containment *c = &d->containment;
    bool cg = d->containment_up && c->mode == CONTAINMENT_CGROUP;
    json_t *ctl = json_array();
    char names[64], *save = NULL;
    cgroup_controllers_text(cg ? c->controllers : 0, names, sizeof names);
    for (char *w = strtok_r(names, " ", &save); w; w = strtok_r(NULL, " ", &save))
        json_array_append_new(ctl, json_string(w));
    json_object_set_new(j, "containment",
                        d->containment_up ? json_string(containment_mode_name(c->mode))
                                          : json_null());
    json_object_set_new(j, "cgroup", cg ? json_string(c->root) : json_null());
    json_object_set_new(j, "cgroup_controllers", ctl);
}

/* The loop's stalls since start (daemon/loopwatch.h), the longest split
 * where it went. */
static json_t *backend__loop(const struct loopwatch *w)
{
    const struct loopwatch_split *s = &w->max_split;
    return json_pack("{s:f, s:{s:f, s:f, s:f}, s:I, s:o}", "max_stall_ms",
                     (double)w->max_busy_ns / 1e6, "max_stall_split", "io_ms",
                     (double)s->io_ns / 1e6, "flush_ms", (double)s->flush_ns / 1e6, "timers_ms",
                     (double)s->timers_ns / 1e6, "stalls_over_5ms", (json_int_t)w->stalls, "since",
                     backend__time(w->since_ms));
}

static json_t *backend__status(void *ctx)
{
    struct daemon *d = ctx;
    int64_t active = 0, resolved = 0, actions = 0;
    journal_counts(d->journal, &active, &resolved, &actions);
    json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "name", "recoverd", "state",
                          state_name(d->monitor.state), "active_faults", (json_int_t)active,
                          "resolved_faults", (json_int_t)resolved, "recovery_actions",
                          (json_int_t)actions, "uptime_ms",
                          (json_int_t)(clock_wall_ms() - d->started_ms));
    json_object_set_new(j, "since", backend__time(d->monitor.state_ms));
    json_t *det = json_array();
    for (const char *const *k = detector_names(); *k; k++)
        json_array_append_new(det, json_string(*k));
    json_array_append_new(det, json_string("process"));
    json_object_set_new(j, "detectors", det);
    json_t *strat = json_array();
    for (int st = 0; st < STRATEGY__COUNT; st++)
        if (strategy_find(st))
            json_array_append_new(strat, json_string(strategy_name(st)));
    json_object_set_new(j, "strategies", strat);
    json_object_set_new(j, "executing", json_integer(d->executor.executing));
    json_object_set_new(j, "starting", json_integer(d->executor.starting));
    json_object_set_new(j, "max_concurrent_recoveries", json_integer(d->executor.max_executing));
    json_object_set_new(j, "max_starting", json_integer(d->executor.max_starting));
    json_t *states = json_object();
    for (int st = 0; st < STATE__COUNT; st++)
        json_object_set_new(states, state_name(st), json_integer(d->monitor.by_state[st]));
    json_object_set_new(j, "services",
                        json_integer((json_int_t)d->monitor.n +
                                     (json_int_t)daemon_services_uncreated(d)));
    /* Not started yet: the start goes in slices, after a predecessor's
     * leftovers are stopped, and each service after its dependencies. */
    json_object_set_new(j, "services_starting",
                        json_integer((json_int_t)daemon_services_starting(d)));
    json_object_set_new(j, "services_by_state", states);
    /* Writes the disk refused (full, I/O error) wait in memory; the counts
     * above are what is on disk. */
    const char *why = NULL;
    size_t waiting = journal_pending(d->journal, &why);
    json_t *journal = json_pack("{s:s, s:I, s:s*}", "state", waiting ? "behind" : "ok",
                                "waiting_writes", (json_int_t)waiting, "error", why);
    /* A damaged journal replaced at start: its history is in moved_to. */
    uint64_t moved_ms = 0;
    const char *moved_why = NULL,
               *moved_to = journal_moved_aside(d->journal, &moved_why, &moved_ms);
    if (journal && moved_to)
        json_object_set_new(journal, "replaced",
                            json_pack("{s:o, s:s, s:s}", "at", backend__time(moved_ms), "moved_to",
                                      moved_to, "why", moved_why));
    json_object_set_new(j, "journal", journal);
    json_object_set_new(j, "alerts", alerter_status_json(d->alerter));
    json_object_set_new(j, "loop", backend__loop(&d->loopwatch));
    backend__containment(d, j);
    return j;
}

/* The names of the live services in config order, from the one after
 * `after`: found by name in O(1), then by its place in d->services
 * (pointer compares, about a microsecond at 1,000: a page costs its
 * rows). Copied: a listing's slices look each one up again, so a service
 * freed meanwhile is never read. */
static int backend__services(void *ctx, const char *after, size_t limit, struct route_list *l,
                             struct route_page *page)
{
    struct daemon *d = ctx;
    size_t i = 0, first, len = 0;
    if (after) {
        const struct service *s = daemon_service(d, after);
        if (!s)
            return -ENOENT;
        while (i < d->n_services && d->services[i] != s)
            i++;
        i++;
    }
    first = i;
    for (size_t n = 0; i < d->n_services && (!limit || n < limit); i++)
        if (!d->services[i]->retired) {
            len += strlen(d->services[i]->name) + 1;
            n++;
        }
    if (!(l->names = malloc(len ? len : 1)))
        return -ENOMEM;
    char *p = l->names;
    for (i = first; p < l->names + len; i++) {
        const struct service *s = d->services[i];
        if (s->retired)
            continue;
        size_t n = strlen(s->name) + 1;
        page->last = memcpy(p, s->name, n);
        p += n;
        l->count++;
    }
    l->len = len;
    page->rows = l->count;
    return 0;
}

/* The views of the next n names of l: each name looked up (a hash), the
 * services of the slice then written with their blocks loaded ahead
 * (service_view_prefetch). */
static void backend__services_slice(void *ctx, struct route_list *l, size_t n)
{
    struct daemon *d = ctx;
    const struct service *slice[BACKEND__SLICE_MAX];
    size_t k = 0;
    if (l->next == 0) /* grown once, not copied at each doubling */
        jsonw_reserve(&l->w, l->count * BACKEND__VIEW_BYTES);
    n = n < BACKEND__SLICE_MAX ? n : BACKEND__SLICE_MAX;
    for (size_t taken = 0; taken < n && l->next < l->len; taken++) {
        const char *name = l->names + l->next;
        const struct service *s = daemon_service(d, name);
        l->next += strlen(name) + 1;
        if (s)
            slice[k++] = s;
    }
    uint64_t now_us = clock_mono_us();
    for (size_t i = 0; i < k; i++) {
        for (int step = 0; step < SERVICE_VIEW_STEPS; step++) {
            size_t ahead = i + (size_t)(SERVICE_VIEW_STEPS - step) * BACKEND__AHEAD;
            if (ahead < k)
                service_view_prefetch(slice[ahead], step);
        }
        service_view(slice[i], &l->w, now_us);
        l->rows++;
    }
}

/* One service: its text view read back by jansson, for the routes that
 * answer with one service beside other fields (a control's reply). */
static json_t *backend__service(void *ctx, const char *name)
{
    struct service *s = daemon_service(ctx, name);
    if (!s)
        return NULL;
    struct jsonw w = {0};
    size_t len = 0;
    service_view(s, &w, clock_mono_us());
    char *text = jsonw_finish(&w, &len);
    json_t *v = text ? json_loadb(text, len, 0, NULL) : NULL;
    free(text);
    return v;
}

static int backend__control(void *ctx, const char *name, enum api_control op, char *err, size_t len)
{
    struct service *s = daemon_service(ctx, name);
    if (!s) {
        snprintf(err, len, "no such service: %s", name);
        return -ENOENT;
    }
    if (s->cfg->problem) {
        /* Nothing of it may run until a reload fixes its configuration. */
        snprintf(err, len, "service %s cannot run as configured: %s", name, s->cfg->problem);
        return -EBUSY;
    }
    static const char *const names[] = {"hold", "release", "restart"};
    log_event(LOG_INFO, s->name, "operator", "op=%s", names[op]);
    switch (op) {
    case API_HOLD: return recovery_hold(&s->rec);
    case API_RELEASE: return recovery_release(&s->rec);
    case API_RESTART: return recovery_operate(&s->rec, 0, STRATEGY_RESTART, err, len);
    }
    return -EINVAL;
}

static int backend__recover(void *ctx, int64_t fault_id, const char *strategy, char *service,
                            size_t service_len, char *err, size_t len)
{
    struct daemon *d = ctx;
    int st = strategy_parse(strategy);
    if (st < 0) {
        snprintf(err, len,
                 "unknown strategy '%s' (expected restart, failover, rollback, "
                 "repair or replace)",
                 strategy);
        return -EINVAL;
    }
    for (size_t i = 0; i < d->n_services; i++) {
        struct service *s = d->services[i];
        for (size_t k = 0; !s->retired && k < s->faults.n_slots; k++) {
            if (!s->faults.slots[k].open || s->faults.slots[k].fault->id != fault_id)
                continue;
            snprintf(service, service_len, "%s", s->name);
            if (s->cfg->problem) {
                snprintf(err, len, "service %s cannot run as configured: %s", s->name,
                         s->cfg->problem);
                return -EBUSY;
            }
            log_event(LOG_INFO, s->name, "operator", "op=recover fault=%lld strategy=%s",
                      (long long)fault_id, strategy);
            return recovery_operate(&s->rec, fault_id, st, err, len);
        }
    }
    snprintf(err, len, "fault %lld is not open", (long long)fault_id);
    return -ENOENT;
}

void daemon_backend_init(struct daemon *d)
{
    d->backend = (struct api_backend){
        .journal = d->journal,
        .reader = d->reader,
        .token = d->token,
        .status = backend__status,
        .services = backend__services,
        .services_slice = backend__services_slice,
        .service = backend__service,
        .control = backend__control,
        .recover = backend__recover,
        .ctx = d,
    };
}
