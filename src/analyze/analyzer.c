/* Faults are born here: a detector's observation, classified, with a
 * stable identity (service, source) so the same condition seen again while
 * open is the same fault, not a new one. */
#include "analyze/analyzer.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"
#include "config/config-t.h"
#include "daemon/daemon.h"
#include "lib/log.h"
#include "lib/model.h"
#include "detect/detector.h"
#include "monitor/alert.h"
#include "monitor/state.h"
#include "recover/strategy.h"
#include "recover/executor.h"
#include "store/journal.h"

static void analyzer__context(struct fault *f, json_t *ctx)
{
    char *txt = json_dumps(ctx, JSON_COMPACT);
    snprintf(f->context, sizeof f->context, "%s", txt ? txt : "{}");
    free(txt);
    json_decref(ctx);
}

unsigned analyzer_plan(const struct service *s, const struct fault *f, int *plan)
{
    const struct config *c = s->d->cfg;
    unsigned n = s->cfg->n_chain ? s->cfg->n_chain : (f ? c->n_rules[f->type] : 0);
    memcpy(plan, s->cfg->n_chain ? s->cfg->chain : c->rules[f ? f->type : 0], n * sizeof *plan);
    return n;
}

/* The open fault of a dependency of s, if any: a fault of s opened now is
 * its symptom. Returns the root fault (NULL: none) and its service. */
static const struct fault *analyzer__root_cause(const struct service *s)
{
    for (char **dep = s->cfg->depends_on; dep && *dep; dep++) {
        const struct service *d = daemon_service(s->d, *dep);
        if (!d)
            continue;
        for (size_t i = 0; i < d->n_checks + 2; i++)
            if (d->slots[i].open && !d->slots[i].root)
                return &d->slots[i].fault;
    }
    return NULL;
}

static const char *analyzer__risk(enum strategy st)
{
    switch (st) {
    case STRATEGY_RESTART: return "low";
    case STRATEGY_REPAIR: return "medium";
    default: return "high";
    }
}

/* What the analysis adds to a fault's context: the plan with what it skips
 * and why, the estimated recovery time from this service's own history, and
 * the risk of the first strategy that will run. */
static void analyzer__analysis(const struct service *s, const struct fault *f, json_t *ctx)
{
    int plan[STRATEGY__COUNT];
    unsigned n = analyzer_plan(s, f, plan);
    json_t *recommended = json_array(), *skipped = json_object();
    const char *risk = NULL;
    for (unsigned i = 0; i < n; i++) {
        const char *no = strategy_unavailable(s, plan[i]);
        if (no) {
            json_object_set_new(skipped, strategy_name(plan[i]), json_string(no));
            continue;
        }
        json_array_append_new(recommended, json_string(strategy_name(plan[i])));
        if (!risk)
            risk = analyzer__risk(plan[i]);
    }
    json_object_set_new(ctx, "recommended", recommended);
    json_object_set_new(ctx, "skipped", skipped);
    json_object_set_new(ctx, "risk", risk ? json_string(risk) : json_null());
    /* From memory, not the journal: this runs on the restart's hot path. */
    json_object_set_new(ctx, "estimated_recovery_ms",
                        s->history_n ? json_integer((json_int_t)(s->history_ms / s->history_n))
                                     : json_null());
}

/* Open a fault in slot unless one is open there already. Returns true when
 * a new fault was opened (and journaled). */
static bool analyzer__open(struct service *s, size_t slot, const char *source,
                           enum fault_type type, enum severity sev, enum impact impact,
                           const char *desc, json_t *ctx)
{
    struct fault_slot *fs = &s->slots[slot];
    if (fs->open) {
        json_decref(ctx);
        log_event(LOG_DEBUG, s->name, "fault-still-open", "fault=%lld source=%s",
                  (long long)fs->fault.id, source);
        return false;
    }
    struct fault *f = &fs->fault;
    memset(f, 0, sizeof *f);
    snprintf(f->service, sizeof f->service, "%s", s->name);
    snprintf(f->check, sizeof f->check, "%s", source);
    f->type = type;
    f->severity = sev;
    f->impact = impact;
    snprintf(f->description, sizeof f->description, "%s", desc);
    const struct fault *root = slot == SLOT_SUPERVISOR(s) ? NULL : analyzer__root_cause(s);
    fs->root = root ? root->id : 0;
    if (root) {
        size_t len = strlen(f->description);
        snprintf(f->description + len, sizeof f->description - len,
                 " (symptom of %s fault %lld)", root->service, (long long)root->id);
        json_object_set_new(ctx, "root_cause", json_pack("{s:s, s:I}", "service", root->service,
                                                          "fault", (json_int_t)root->id));
    } else if (slot != SLOT_SUPERVISOR(s)) {
        analyzer__analysis(s, f, ctx);
    }
    analyzer__context(f, ctx);
    f->opened_ms = clock_wall_ms();
    journal_fault_open(s->d->journal, f);
    fs->open = true;
    if (root)
        alert_fault_symptom(s->d->alerter, f, root->id);
    else if (slot != SLOT_SUPERVISOR(s))
        alert_fault_opened(s->d->alerter, f);
    log_event(sev >= SEVERITY_CRITICAL ? LOG_ERROR : LOG_WARN, s->name, "fault-opened",
              "fault=%lld source=%s type=%s severity=%s description=\"%s\"", (long long)f->id,
              source, fault_type_name(type), severity_name(sev), desc);
    char cause[128];
    snprintf(cause, sizeof cause, "fault %lld opened: %s", (long long)f->id, source);
    state_service_event(s, EV_FAULT_OPENED, cause);
    return true;
}

/* A dependency's failure usually shows in its dependents' checks a moment
 * before (or after) its own: a dependent's check fault waits this long for
 * a dependency's fault to open, so it is born a symptom instead of being
 * recovered on its own. */
#define ANALYZER_CORRELATE_MS 1000

static void analyzer__check_open(struct service *s, size_t i, const struct observation *o);

static void analyzer__correlate_cb(uv_timer_t *t)
{
    struct service *s = t->data;
    s->correlating = false;
    for (size_t i = 0; i < s->n_checks; i++)
        if (s->checks[i].failing && !s->slots[SLOT_CHECK(i)].open)
            analyzer__check_open(s, i, &s->checks[i].last);
}

void analyzer_check_failing(struct service *s, size_t i, const struct observation *o)
{
    if (s->cfg->depends_on && !analyzer__root_cause(s)) {
        if (!s->correlating) {
            s->correlating = true;
            uv_timer_start(&s->correlate_timer, analyzer__correlate_cb, ANALYZER_CORRELATE_MS, 0);
            log_event(LOG_DEBUG, s->name, "correlating", "check=%s wait_ms=%d",
                      s->checks[i].cfg->name, ANALYZER_CORRELATE_MS);
        }
        return;
    }
    analyzer__check_open(s, i, o);
}

static void analyzer__check_open(struct service *s, size_t i, const struct observation *o)
{
    const struct check *c = &s->checks[i];
    enum severity sev = c->cfg->severity >= 0 ? (enum severity)c->cfg->severity : o->severity;
    enum fault_type type = c->cfg->type >= 0 ? (enum fault_type)c->cfg->type : o->type;
    char desc[256];
    snprintf(desc, sizeof desc, "%s check failing: %s", c->cfg->name, o->reason);
    json_t *ctx = json_pack("{s:s, s:s, s:i, s:f, s:i}", "check", c->cfg->name, "kind",
                            c->ops->name, "code", o->code, "latency_ms",
                            (double)o->latency_us / 1000.0, "consecutive_failures", c->fails);
    enum impact impact = c->cfg->impact >= 0 ? (enum impact)c->cfg->impact
                         : o->host_wide           ? IMPACT_SYSTEM
                                                  : IMPACT_SERVICE;
    if (analyzer__open(s, SLOT_CHECK(i), c->cfg->name, type, sev, impact, desc, ctx))
        executor_fault_opened(s);
}

void analyzer_process_exited(struct service *s, int64_t status, int term_signal, uint64_t uptime_ms)
{
    char desc[256];
    if (!s->cfg->command)
        snprintf(desc, sizeof desc, "process (from %s) is gone after %llu ms", s->cfg->pidfile,
                 (unsigned long long)uptime_ms);
    else if (term_signal)
        snprintf(desc, sizeof desc, "process killed by signal %d (SIG%s) after %llu ms",
                 term_signal, sigabbrev_np(term_signal) ? sigabbrev_np(term_signal) : "?",
                 (unsigned long long)uptime_ms);
    else
        snprintf(desc, sizeof desc, "process exited with code %lld after %llu ms",
                 (long long)status, (unsigned long long)uptime_ms);
    json_t *ctx = json_pack("{s:I, s:i, s:I}", "exit_code", (json_int_t)status, "signal",
                            term_signal, "uptime_ms", (json_int_t)uptime_ms);
    /* The executor is told by its caller, which also owns the action. */
    analyzer__open(s, SLOT_PROCESS, "process", FAULT_SOFTWARE, SEVERITY_HIGH, IMPACT_SERVICE,
                   desc, ctx);
}

void analyzer_spawn_failed(struct service *s, int err)
{
    char desc[256];
    snprintf(desc, sizeof desc, "cannot start %s: %s", s->cfg->command[0], strerror(-err));
    json_t *ctx = json_pack("{s:s, s:s}", "command", s->cfg->command[0], "error", strerrorname_np(-err));
    analyzer__open(s, SLOT_PROCESS, "process", FAULT_SOFTWARE, SEVERITY_HIGH, IMPACT_SERVICE,
                   desc, ctx);
}

void analyzer_external_missing(struct service *s, int err)
{
    char desc[256];
    snprintf(desc, sizeof desc, "not running: %s: %s", s->cfg->pidfile,
             err == -ESRCH    ? "no such process"
             : err == -EINVAL ? "does not hold a pid"
                              : strerror(-err));
    json_t *ctx = json_pack("{s:s, s:s}", "pidfile", s->cfg->pidfile, "error",
                            strerrorname_np(-err) ? strerrorname_np(-err) : "?");
    analyzer__open(s, SLOT_PROCESS, "process", FAULT_SOFTWARE, SEVERITY_HIGH, IMPACT_SERVICE,
                   desc, ctx);
}

void analyzer_gave_up(struct service *s, const char *description)
{
    json_t *ctx = json_pack("{s:i, s:I}", "restart_max", (int)s->cfg->restart.max, "window_ms",
                            (json_int_t)s->cfg->restart.window_ms);
    analyzer__open(s, SLOT_SUPERVISOR(s), "supervisor", FAULT_SOFTWARE, SEVERITY_CRITICAL,
                   IMPACT_SERVICE, description, ctx);
}

int analyzer_resolve_all(struct service *s, const char *why)
{
    int n = 0;
    for (size_t i = 0; i < SLOT_SUPERVISOR(s); i++) {
        struct fault_slot *fs = &s->slots[i];
        if (!fs->open)
            continue;
        fs->open = false;
        fs->fault.resolved_ms = clock_wall_ms();
        fs->root = 0;
        journal_fault_resolve(s->d->journal, &fs->fault);
        s->history_ms += fs->fault.resolved_ms - fs->fault.opened_ms;
        s->history_n++;
        log_event(LOG_INFO, s->name, "fault-resolved", "fault=%lld source=%s duration_ms=%llu "
                  "why=\"%s\"", (long long)fs->fault.id, fs->fault.check,
                  (unsigned long long)(fs->fault.resolved_ms - fs->fault.opened_ms), why);
        alert_fault_resolved(s->d->alerter, &fs->fault);
        n++;
    }
    return n;
}

void analyzer_resolve_supervisor(struct service *s, const char *why)
{
    struct fault_slot *fs = &s->slots[SLOT_SUPERVISOR(s)];
    if (!fs->open)
        return;
    fs->open = false;
    fs->fault.resolved_ms = clock_wall_ms();
    journal_fault_resolve(s->d->journal, &fs->fault);
    log_event(LOG_INFO, s->name, "fault-resolved", "fault=%lld source=supervisor why=\"%s\"",
              (long long)fs->fault.id, why);
    alert_fault_resolved(s->d->alerter, &fs->fault);
}

void analyzer_adopt_open_faults(struct service *s)
{
    journal_recovery_history(s->d->journal, s->name, &s->history_ms, &s->history_n);
    struct fault *open = NULL;
    int n = journal_faults_open_for(s->d->journal, s->name, &open);
    for (int k = 0; k < n; k++) {
        size_t slot = SLOT_PROCESS;
        if (strcmp(open[k].check, "supervisor") == 0) {
            /* A new recoverd is a fresh start: the operator restarted it. */
            open[k].resolved_ms = clock_wall_ms();
            journal_fault_resolve(s->d->journal, &open[k]);
            continue;
        }
        for (size_t i = 0; i < s->n_checks; i++)
            if (strcmp(open[k].check, s->checks[i].cfg->name) == 0)
                slot = SLOT_CHECK(i);
        if (s->slots[slot].open) {
            /* Two open for one source (should not happen): keep the newer. */
            s->slots[slot].fault.resolved_ms = clock_wall_ms();
            journal_fault_resolve(s->d->journal, &s->slots[slot].fault);
        }
        s->slots[slot].open = true;
        s->slots[slot].fault = open[k];
        log_event(LOG_INFO, s->name, "fault-adopted", "fault=%lld source=%s",
                  (long long)open[k].id, open[k].check);
    }
    free(open);
}

bool analyzer_dependency_failing(const struct service *s)
{
    return analyzer__root_cause(s) != NULL;
}

bool analyzer_has_open(const struct service *s)
{
    for (size_t i = 0; i < s->n_checks + 2; i++)
        if (s->slots[i].open)
            return true;
    return false;
}
