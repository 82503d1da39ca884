/* Faults are born here: an observation, classified, with a stable
 * identity (service, source) so the same condition seen again while open
 * is the same fault, and seen again just after its verification (within
 * flap_window) is that fault reopened, not a new one. */
#include "analyze/analyzer.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config-t.h"
#include "detect/detector.h"
#include "lib/clock.h"
#include "lib/fault.h"
#include "lib/log.h"
#include "lib/model.h"
#include "monitor/alert.h"
#include "monitor/state.h"
#include "store/journal.h"

int faults_init(struct faults *f, size_t n_checks)
{
    f->n_slots = n_checks + 2;
    f->slots = calloc(f->n_slots, sizeof *f->slots);
    return f->slots ? 0 : -ENOMEM;
}

static void faults__free_slots(struct fault_slot *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        fault_release(v[i].fault);
        free(v[i].fault);
    }
    free(v);
}

int faults_reslot(struct faults *f, size_t n_checks)
{
    struct fault_slot *v = calloc(n_checks + 2, sizeof *v);
    if (!v)
        return -ENOMEM;
    faults__free_slots(f->slots, f->n_slots);
    f->slots = v;
    f->n_slots = n_checks + 2;
    return 0;
}

void faults_close(struct faults *f)
{
    faults__free_slots(f->slots, f->n_slots);
    f->slots = NULL;
    f->n_slots = 0;
    free(f->deps);
    f->deps = NULL;
    f->n_deps = 0;
}

unsigned analyzer_plan(const struct faults *f, const struct fault *t, int *plan)
{
    const struct config *c = f->an->cfg;
    enum fault_type type = t ? t->type : FAULT_SOFTWARE;
    unsigned n = f->cfg->n_chain ? f->cfg->n_chain : c->n_rules[type];
    memcpy(plan, f->cfg->n_chain ? f->cfg->chain : c->rules[type], n * sizeof *plan);
    return n;
}

const struct fault *analyzer_root_cause(const struct faults *f)
{
    for (size_t k = 0; k < f->n_deps; k++) {
        const struct faults *d = f->deps[k];
        for (size_t i = 0; d && i < d->n_slots; i++)
            if (d->slots[i].open && !d->slots[i].root)
                return d->slots[i].fault;
    }
    return NULL;
}

const struct fault *analyzer_trigger(const struct faults *f)
{
    for (size_t i = 0; i < SLOT_SUPERVISOR(f); i++)
        if (f->slots[i].open && !f->slots[i].root)
            return f->slots[i].fault;
    return NULL;
}

bool analyzer_has_open(const struct faults *f)
{
    for (size_t i = 0; i < f->n_slots; i++)
        if (f->slots[i].open)
            return true;
    return false;
}

static void analyzer__opened(struct faults *f, struct fault_slot *fs, const char *verb)
{
    struct fault *t = fs->fault;
    fs->open = true;
    state_fault_count(f->state, +1, t->severity >= SEVERITY_CRITICAL);
    log_event(t->severity >= SEVERITY_CRITICAL ? LOG_ERROR : LOG_WARN, f->service, verb,
              "fault=%lld source=%s type=%s severity=%s description=\"%s\"", (long long)t->id,
              t->check, fault_type_name(t->type), severity_name(t->severity), t->description);
    char cause[128];
    snprintf(cause, sizeof cause, "fault %lld %s: %s", (long long)t->id,
             strcmp(verb, "fault-reopened") ? "opened" : "reopened", t->check);
    state_service_event(f->state, EV_FAULT_OPENED, cause);
}

/* The same source failed again within flap_window of the verification
 * that resolved its fault: that fault again, with what was seen now. */
static bool analyzer__reopen(struct faults *f, struct fault_slot *fs, const char *desc)
{
    uint64_t now = clock_src_now_us(f->an->clock) / 1000;
    if (!fs->fault || !fs->fault->id || !fs->verified_mono_ms ||
        now - fs->verified_mono_ms >= f->cfg->flap_window_ms)
        return false;
    fs->verified_mono_ms = 0;
    fs->fault->resolved_ms = 0;
    snprintf(fs->fault->description, sizeof fs->fault->description, "%s", desc);
    journal_fault_reopen(f->an->journal, fs->fault);
    analyzer__opened(f, fs, "fault-reopened");
    alert_fault_opened(f->an->alerter, fs->fault);
    return true;
}

/* Open a fault in slot unless one is open there already. ctx is taken. */
static enum fault_open analyzer__open(struct faults *f, size_t slot, const char *source,
                                      enum fault_type type, enum severity sev, enum impact impact,
                                      const char *desc, json_t *ctx)
{
    struct fault_slot *fs = &f->slots[slot];
    if (fs->open) {
        json_decref(ctx);
        log_event(LOG_DEBUG, f->service, "fault-still-open", "fault=%lld source=%s",
                  (long long)fs->fault->id, source);
        return FAULT_ALREADY_OPEN;
    }
    /* Only a check's fault reopens: its verification may have come too
     * soon. A process that dies again is a new fault each time; the
     * restart intensity limit is what ends a crash loop. */
    if (slot != SLOT_PROCESS && slot != SLOT_SUPERVISOR(f) && analyzer__reopen(f, fs, desc)) {
        json_decref(ctx);
        return FAULT_REOPENED;
    }
    if (!fs->fault && !(fs->fault = calloc(1, sizeof *fs->fault))) {
        json_decref(ctx);
        log_event(LOG_ERROR, f->service, "fault-not-opened", "source=%s error=\"%s\"", source,
                  strerror(ENOMEM));
        return FAULT_ALREADY_OPEN;
    }
    struct fault *t = fs->fault;
    fault_release(t);
    memset(t, 0, sizeof *t);
    fs->verified_mono_ms = 0;
    snprintf(t->service, sizeof t->service, "%s", f->service);
    snprintf(t->check, sizeof t->check, "%s", source);
    t->type = type;
    t->severity = sev;
    t->impact = impact;
    snprintf(t->description, sizeof t->description, "%s", desc);
    const struct fault *root = slot == SLOT_SUPERVISOR(f) ? NULL : analyzer_root_cause(f);
    fs->root = root ? root->id : 0;
    if (root) {
        size_t len = strlen(t->description);
        snprintf(t->description + len, sizeof t->description - len, " (symptom of %s fault %lld)",
                 root->service, (long long)root->id);
        json_object_set_new(ctx, "root_cause",
                            json_pack("{s:s, s:I}", "service", root->service, "fault",
                                      (json_int_t)root->id));
    } else if (slot != SLOT_SUPERVISOR(f) && f->advisor.analyse) {
        f->advisor.analyse(f->advisor.ctx, t, ctx);
    }
    fault_set_context(t, ctx);
    t->opened_ms = clock_wall_ms();
    journal_fault_open(f->an->journal, t);
    if (root)
        alert_fault_symptom(f->an->alerter, t, root->id);
    else if (slot != SLOT_SUPERVISOR(f))
        alert_fault_opened(f->an->alerter, t);
    analyzer__opened(f, fs, "fault-opened");
    return FAULT_NEW;
}

enum fault_open analyzer_check_failing(struct faults *f, size_t i, const struct observation *o)
{
    const struct check *c = &f->checks->checks[i];
    enum severity sev = c->cfg->severity >= 0 ? (enum severity)c->cfg->severity : o->severity;
    enum fault_type type = c->cfg->type >= 0 ? (enum fault_type)c->cfg->type : o->type;
    char desc[256];
    snprintf(desc, sizeof desc, "%s check failing: %.200s", c->cfg->name, o->reason);
    /* Detection time: from the start of the first failed probe of the
     * streak (the outage began before it, unseen) to now, the opening. */
    uint64_t now_us = clock_mono_us();
    json_int_t detection_ms = c->fails_since_us && now_us > c->fails_since_us
                                  ? (json_int_t)((now_us - c->fails_since_us) / 1000)
                                  : 0;
    json_t *ctx = json_pack("{s:s, s:s, s:i, s:f, s:i, s:s, s:I}", "check", c->cfg->name, "kind",
                            c->cfg->kind, "code", o->code, "latency_ms",
                            (double)o->latency_us / 1000.0, "consecutive_failures", c->fails,
                            "reason", o->reason, "detection_ms", detection_ms);
    enum impact impact = c->cfg->impact >= 0 ? (enum impact)c->cfg->impact
                         : o->host_wide      ? IMPACT_SYSTEM
                                             : IMPACT_SERVICE;
    return analyzer__open(f, SLOT_CHECK(i), c->cfg->name, type, sev, impact, desc, ctx);
}

enum fault_open analyzer_process_exited(struct faults *f, int64_t code, int term_signal,
                                        uint64_t uptime_ms)
{
    char desc[256];
    if (!f->cfg->command)
        snprintf(desc, sizeof desc, "process (from %.200s) is gone after %llu ms", f->cfg->pidfile,
                 (unsigned long long)uptime_ms);
    else if (term_signal)
        snprintf(desc, sizeof desc, "process killed by signal %d (SIG%s) after %llu ms",
                 term_signal, sigabbrev_np(term_signal) ? sigabbrev_np(term_signal) : "?",
                 (unsigned long long)uptime_ms);
    else
        snprintf(desc, sizeof desc, "process exited with code %lld after %llu ms", (long long)code,
                 (unsigned long long)uptime_ms);
    json_t *ctx = json_pack("{s:I, s:i, s:I}", "exit_code", (json_int_t)code, "signal", term_signal,
                            "uptime_ms", (json_int_t)uptime_ms);
    /* A child's exit is an event of the loop, handled as it arrives:
     * detected when it happened. An external process is polled: when it
     * went is unknown, so no detection time. */
    if (f->cfg->command)
        json_object_set_new(ctx, "detection_ms", json_integer(0));
    return analyzer__open(f, SLOT_PROCESS, "process", FAULT_SOFTWARE, SEVERITY_HIGH, IMPACT_SERVICE,
                          desc, ctx);
}

enum fault_open analyzer_spawn_failed(struct faults *f, int err)
{
    char desc[256];
    snprintf(desc, sizeof desc, "cannot start %.160s: %s", f->cfg->command[0], strerror(-err));
    json_t *ctx = json_pack("{s:s, s:s}", "command", f->cfg->command[0], "error",
                            strerrorname_np(-err) ? strerrorname_np(-err) : "?");
    return analyzer__open(f, SLOT_PROCESS, "process", FAULT_SOFTWARE, SEVERITY_HIGH, IMPACT_SERVICE,
                          desc, ctx);
}

enum fault_open analyzer_external_missing(struct faults *f, int err)
{
    char desc[256];
    snprintf(desc, sizeof desc, "not running: %.180s: %s", f->cfg->pidfile,
             err == -ESRCH    ? "no such process"
             : err == -EINVAL ? "does not hold a pid"
                              : strerror(-err));
    json_t *ctx = json_pack("{s:s, s:s}", "pidfile", f->cfg->pidfile, "error",
                            strerrorname_np(-err) ? strerrorname_np(-err) : "?");
    return analyzer__open(f, SLOT_PROCESS, "process", FAULT_SOFTWARE, SEVERITY_HIGH, IMPACT_SERVICE,
                          desc, ctx);
}

void analyzer_gave_up(struct faults *f, const char *description, json_t *context)
{
    analyzer__open(f, SLOT_SUPERVISOR(f), "supervisor", FAULT_SOFTWARE, SEVERITY_CRITICAL,
                   IMPACT_SERVICE, description, context ? context : json_object());
}

void analyzer_config_failed(struct faults *f, const char *description)
{
    analyzer__open(f, SLOT_SUPERVISOR(f), "config", FAULT_CONFIGURATION, SEVERITY_CRITICAL,
                   IMPACT_SERVICE, description, json_pack("{s:s}", "error", description));
}

static void analyzer__resolve(struct faults *f, struct fault_slot *fs, const char *why)
{
    fs->open = false;
    fs->root = 0;
    fs->fault->resolved_ms = clock_wall_ms();
    state_fault_count(f->state, -1, fs->fault->severity >= SEVERITY_CRITICAL);
    journal_fault_resolve(f->an->journal, fs->fault);
    log_event(LOG_INFO, f->service, "fault-resolved",
              "fault=%lld source=%s duration_ms=%llu "
              "why=\"%s\"",
              (long long)fs->fault->id, fs->fault->check,
              (unsigned long long)(fs->fault->resolved_ms - fs->fault->opened_ms), why);
    alert_fault_resolved(f->an->alerter, fs->fault);
}

int analyzer_resolve_all(struct faults *f, const char *why, bool verified)
{
    int n = 0;
    uint64_t now = clock_src_now_us(f->an->clock) / 1000;
    for (size_t i = 0; i < SLOT_SUPERVISOR(f); i++) {
        struct fault_slot *fs = &f->slots[i];
        if (!fs->open)
            continue;
        analyzer__resolve(f, fs, why);
        fs->verified_mono_ms = verified ? now : 0;
        f->history_ms += fs->fault->resolved_ms - fs->fault->opened_ms;
        f->history_n++;
        n++;
    }
    return n;
}

void analyzer_resolve_supervisor(struct faults *f, const char *why)
{
    struct fault_slot *fs = &f->slots[SLOT_SUPERVISOR(f)];
    if (fs->open)
        analyzer__resolve(f, fs, why);
}

void analyzer_adopt_open_faults(struct faults *f)
{
    journal_recovery_history(f->an->journal, f->service, &f->history_ms, &f->history_n);
    struct fault *open = NULL;
    int n = journal_faults_open_for(f->an->journal, f->service, &open);
    for (int k = 0; k < n; k++) {
        size_t slot = SLOT_PROCESS;
        if (strcmp(open[k].check, "supervisor") == 0 || strcmp(open[k].check, "config") == 0) {
            /* A new recoverd (or a new configuration of the service) is a
             * fresh start: the operator restarted it, or changed it. */
            open[k].resolved_ms = clock_wall_ms();
            journal_fault_resolve(f->an->journal, &open[k]);
            alert_fault_resolved(f->an->alerter, &open[k]); /* its "failed" alert ends */
            fault_release(&open[k]);
            continue;
        }
        for (size_t i = 0; i < f->checks->n; i++)
            if (strcmp(open[k].check, f->checks->checks[i].cfg->name) == 0)
                slot = SLOT_CHECK(i);
        struct fault_slot *fs = &f->slots[slot];
        if (fs->open) {
            /* Two open for one source (should not happen): keep the newer. */
            analyzer__resolve(f, fs, "superseded");
        }
        if (!fs->fault && !(fs->fault = calloc(1, sizeof *fs->fault))) {
            log_event(LOG_ERROR, f->service, "fault-not-adopted", "fault=%lld error=\"%s\"",
                      (long long)open[k].id, strerror(ENOMEM));
            fault_release(&open[k]);
            continue;
        }
        fault_release(fs->fault);
        *fs->fault = open[k]; /* takes its context */
        fs->open = true;
        state_fault_count(f->state, +1, fs->fault->severity >= SEVERITY_CRITICAL);
        log_event(LOG_INFO, f->service, "fault-adopted", "fault=%lld source=%s",
                  (long long)open[k].id, open[k].check);
    }
    free(open);
}

bool analyzer_clear_symptoms(struct faults *f)
{
    bool any = false;
    for (size_t i = 0; i < SLOT_SUPERVISOR(f); i++)
        if (f->slots[i].open && f->slots[i].root) {
            f->slots[i].root = 0; /* its own fault now, if it still fails */
            any = true;
        }
    return any;
}
