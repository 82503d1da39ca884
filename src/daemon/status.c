/* JSON views of the live state for the API. Faults and actions come from
 * the journal (history survives restarts); services from memory. */
#include "daemon/status.h"

#include <string.h>

#include "lib/clock.h"
#include "config/config-t.h"
#include "daemon/daemon.h"
#include "lib/model.h"
#include "detect/detector.h"
#include "recover/strategy.h"
#include "store/journal.h"

static json_t *status__time(uint64_t ms)
{
    char buf[40];
    return ms ? json_string(clock_iso8601(ms, buf, sizeof buf)) : json_null();
}

static json_t *status__check(const struct check *c)
{
    json_t *j = json_pack("{s:s, s:s, s:b, s:I, s:I}", "name", c->cfg->name, "kind", c->ops->name,
                          "failing", c->failing, "consecutive_failures", (json_int_t)c->fails,
                          "consecutive_successes", (json_int_t)c->oks);
    json_object_set_new(j, "ok", c->has_result ? json_boolean(c->last.ok) : json_null());
    json_object_set_new(j, "reason", c->has_result ? json_string(c->last.reason) : json_null());
    json_object_set_new(j, "at", status__time(c->has_result ? c->last_ms : 0));
    json_object_set_new(j, "latency_ms", c->has_result
                                             ? json_real((double)c->last.latency_us / 1000.0)
                                             : json_null());
    json_object_set_new(j, "probes", json_integer((json_int_t)c->probes));
    return j;
}

static json_t *status__service(const struct service *s)
{
    static const char *const proc_names[] = {
#define X(e, n) n,
        PROC_STATE_MAP(X)
#undef X
    };
    json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:b, s:b, s:b}", "name", s->name, "state",
                          state_name(s->state), "process", proc_names[s->proc_state], "restarts",
                          (json_int_t)s->restarts, "held", s->held, "given_up", s->given_up,
                          "recovering", s->recovering);
    json_object_set_new(j, "kind", json_string(s->cfg->command   ? "supervised"
                                               : s->cfg->pidfile ? "external"
                                                                 : "watched"));
    json_t *deps = json_array();
    for (char **dep = s->cfg->depends_on; dep && *dep; dep++)
        json_array_append_new(deps, json_string(*dep));
    json_object_set_new(j, "depends_on", deps);
    json_object_set_new(j, "pid", s->pid > 0 ? json_integer(s->pid) : json_null());
    json_object_set_new(j, "since", status__time(s->state_ms));
    bool up = s->proc_state == PROC_RUNNING || s->proc_state == PROC_STOPPING;
    json_object_set_new(j, "uptime_ms",
                        up ? json_integer((json_int_t)((clock_mono_us() - s->spawned_us) / 1000))
                           : json_null());
    if (s->has_exit) {
        json_t *e = json_pack("{s:I, s:o}", "code", (json_int_t)s->last_exit_code, "at",
                              status__time(s->last_exit_ms));
        json_object_set_new(e, "signal", s->last_exit_signal
                                             ? json_string(sigabbrev_np(s->last_exit_signal))
                                             : json_null());
        json_object_set_new(j, "last_exit", e);
    } else {
        json_object_set_new(j, "last_exit", json_null());
    }
    json_t *faults = json_array();
    for (size_t i = 0; i < s->n_checks + 2; i++)
        if (s->slots[i].open)
            json_array_append_new(faults, json_integer(s->slots[i].fault.id));
    json_object_set_new(j, "open_faults", faults);
    json_t *checks = json_array();
    for (size_t i = 0; i < s->n_checks; i++)
        json_array_append_new(checks, status__check(&s->checks[i]));
    json_object_set_new(j, "checks", checks);
    return j;
}

json_t *status_view(struct daemon *d)
{
    int64_t active = 0, resolved = 0, actions = 0;
    journal_counts(d->journal, &active, &resolved, &actions);
    json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "name", "recoverd", "state",
                          state_name(d->state), "active_faults", (json_int_t)active,
                          "resolved_faults", (json_int_t)resolved, "recovery_actions",
                          (json_int_t)actions, "uptime_ms",
                          (json_int_t)(clock_wall_ms() - d->started_ms));
    json_object_set_new(j, "since", status__time(d->state_ms));
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
    json_object_set_new(j, "executing", json_integer(d->executing));
    json_object_set_new(j, "max_concurrent_recoveries", json_integer(d->cfg->max_concurrent));
    size_t n = 0;
    json_t *states = json_object();
    for (int st = 0; st < STATE__COUNT; st++)
        json_object_set_new(states, state_name(st), json_integer(0));
    for (size_t i = 0; i < d->n_services; i++) {
        if (d->services[i]->retired)
            continue;
        n++;
        const char *name = state_name(d->services[i]->state);
        json_object_set_new(states, name,
                            json_integer(json_integer_value(json_object_get(states, name)) + 1));
    }
    json_object_set_new(j, "services", json_integer((json_int_t)n));
    json_object_set_new(j, "services_by_state", states);
    /* Writes the disk refused (full, I/O error) wait in memory; the counts
     * above are what is on disk. */
    const char *why = NULL;
    size_t waiting = journal_pending(d->journal, &why);
    json_object_set_new(j, "journal",
                        json_pack("{s:s, s:I, s:s*}", "state", waiting ? "behind" : "ok",
                                  "waiting_writes", (json_int_t)waiting, "error", why));
    return j;
}

json_t *services_view(struct daemon *d)
{
    json_t *a = json_array();
    for (size_t i = 0; i < d->n_services; i++)
        if (!d->services[i]->retired)
            json_array_append_new(a, status__service(d->services[i]));
    return a;
}

json_t *service_view(struct daemon *d, const char *name)
{
    struct service *s = daemon_service(d, name);
    return s ? status__service(s) : NULL;
}

struct journal *daemon_journal(struct daemon *d) { return d->journal; }

const char *daemon_token(struct daemon *d) { return d->token; }
