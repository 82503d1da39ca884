/* Recovery actions: pending -> executing -> completed | failed | aborted.
 * An action is completed only when verification passes: the process runs
 * (if recoverd runs it) and every check has passed `rise` times since the
 * action ran (without checks: the process stayed up for restart.stable).
 * A failed action escalates to the next strategy of the plan; a plan run
 * out leaves the service failed until an operator acts. */
#include "recover/executor.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "analyze/analyzer.h"
#include "lib/clock.h"
#include "config/config-t.h"
#include "daemon/daemon.h"
#include "lib/log.h"
#include "lib/model.h"
#include "daemon/service.h"
#include "detect/check.h"
#include "monitor/alert.h"
#include "monitor/state.h"
#include "recover/process.h"
#include "recover/restart.h"
#include "recover/strategy.h"
#include "store/journal.h"

/* While verifying, the first probe goes out this soon after the action. */
#define EXECUTOR_FIRST_PROBE_MS 5

static void executor__step(struct service *s);
static void executor__run(struct service *s);
static void executor__ready(struct service *s);

/* Supervised or external: verification needs its process alive. */
static bool executor__has_process(const struct service *s)
{
    return s->cfg->command || s->cfg->pidfile;
}

static bool executor__automatic(const struct service *s)
{
    return !s->held && !s->given_up && !s->d->stopping && !s->retired;
}

/* The fault the recovery is for: the first open one that is not a symptom
 * (nor the supervisor's own). */
static int64_t executor__trigger(const struct service *s)
{
    for (size_t i = 0; i < SLOT_SUPERVISOR(s); i++)
        if (s->slots[i].open && !s->slots[i].root)
            return s->slots[i].fault.id;
    return 0;
}

static const struct fault *executor__trigger_fault(const struct service *s)
{
    for (size_t i = 0; i < SLOT_SUPERVISOR(s); i++)
        if (s->slots[i].open && !s->slots[i].root)
            return &s->slots[i].fault;
    return NULL;
}

/* Give the next queued action (oldest first) the slot just freed. */
static void executor__dequeue(struct daemon *d)
{
    while (d->executing < d->cfg->max_concurrent) {
        struct service *next = NULL;
        for (size_t i = 0; i < d->n_services; i++) {
            struct service *s = d->services[i];
            if (s->queued && (!next || s->action.created_ms < next->action.created_ms))
                next = s;
        }
        if (!next)
            return;
        executor__run(next);
    }
}

static void executor__finish(struct service *s, enum action_status st, const char *result)
{
    struct action *a = &s->action;
    a->status = st;
    a->finished_ms = clock_wall_ms();
    snprintf(a->result, sizeof a->result, "%s", result);
    journal_action_update(s->d->journal, a);
    s->action_active = false;
    s->queued = false;
    s->verifying = false;
    uv_timer_stop(&s->action_timer);
    uv_timer_stop(&s->verify_timer);
    log_event(st == ACTION_COMPLETED ? LOG_INFO : LOG_WARN, s->name, "action-finished",
              "action=%lld strategy=%s status=%s result=\"%s\"", (long long)a->id,
              strategy_name(a->strategy), action_status_name(st), result);
    if (s->holds_slot) {
        s->holds_slot = false;
        s->d->executing--;
        executor__dequeue(s->d);
    }
}

/* The plan is exhausted: failed, a critical fault, no more attempts. */
static void executor__give_up(struct service *s, const char *why)
{
    char desc[256];
    snprintf(desc, sizeof desc, "%s; automatic recovery stopped until an operator acts", why);
    s->given_up = true;
    s->recovering = false;
    executor__ready(s); /* its dependents start anyway: their faults will be its symptoms */
    uv_timer_stop(&s->timer);
    if (s->proc_state == PROC_WAITING)
        s->proc_state = PROC_DOWN;
    analyzer_gave_up(s, desc);
    state_service_event(s, EV_GAVE_UP, desc);
    alert_service_failed(s->d->alerter, s->name, &s->slots[SLOT_SUPERVISOR(s)].fault, desc);
}

static void executor__fail(struct service *s, const char *result, bool retry)
{
    enum strategy st = s->action.strategy;
    executor__finish(s, ACTION_FAILED, result);
    state_service_event(s, EV_RECOVERY_FAILED, result);
    if (!executor__automatic(s)) {
        s->recovering = false;
        return;
    }
    if (!retry)
        s->step++;
    const struct fault *f = executor__trigger_fault(s);
    if (f && s->step < s->n_plan)
        alert_fault_escalated(s->d->alerter, f, &s->action, strategy_name(s->plan[s->step]));
    if (!retry && s->step >= s->n_plan) {
        char why[256];
        snprintf(why, sizeof why, "recovery chain exhausted: %s failed: %s", strategy_name(st),
                 result);
        executor__give_up(s, why);
        return;
    }
    executor__step(s);
}

/* The services whose start waited for s (a dependency) may go now. */
static void executor__ready(struct service *s)
{
    if (s->ready)
        return;
    s->ready = true;
    daemon_service_ready(s->d, s);
}

static void executor__verified(struct service *s)
{
    char result[256];
    uint64_t took = (clock_mono_us() - s->spawned_us) / 1000;
    s->verifying = false;
    uv_timer_stop(&s->verify_timer);
    if (executor__has_process(s))
        snprintf(result, sizeof result, "verified: pid %d running, %zu check(s) passing %llu ms "
                 "after %s", (int)s->pid, s->n_checks, (unsigned long long)took,
                 s->cfg->command ? "spawn" : "it appeared");
    else
        snprintf(result, sizeof result, "verified: %zu check(s) passing", s->n_checks);
    bool had_action = s->action_active;
    if (had_action)
        executor__finish(s, ACTION_COMPLETED, result);
    s->recovering = false;
    int resolved = analyzer_resolve_all(s, result);
    if (had_action || resolved > 0) {
        char cause[128];
        snprintf(cause, sizeof cause, "action %lld verified", (long long)s->action.id);
        state_service_event(s, EV_RECOVERY_SUCCEEDED,
                            had_action ? cause : "service verified after start");
    }
    executor__ready(s);
    if (resolved > 0)
        daemon_service_recovered(s->d, s);
}

/* The verification window ran out. */
static void executor__verify_timeout_cb(uv_timer_t *t)
{
    struct service *s = t->data;
    if (!s->verifying)
        return;
    s->verifying = false;
    if (s->n_checks == 0 && (!executor__has_process(s) || s->proc_state == PROC_RUNNING)) {
        executor__verified(s); /* nothing to check: it stayed up */
        return;
    }
    char result[256];
    const char *why = s->proc_state == PROC_RUNNING || !executor__has_process(s)
                          ? "checks not passing"
                          : "process not running";
    for (size_t i = 0; i < s->n_checks; i++)
        if (s->checks[i].has_result && !s->checks[i].last.ok) {
            why = s->checks[i].last.reason;
            break;
        }
    snprintf(result, sizeof result, "not verified within %llu ms: %s",
             (unsigned long long)s->cfg->verify_ms, why);
    executor__ready(s);
    if (s->action_active) {
        executor__fail(s, result, false);
        return;
    }
    /* A start (or a re-check after a dependency recovered) that never got
     * healthy: what fails is a fault now. The threshold kept counting while
     * the verification owned the verdict. */
    for (size_t i = 0; i < s->n_checks; i++)
        if (s->checks[i].failing || !s->checks[i].has_result || !s->checks[i].last.ok) {
            struct observation o = s->checks[i].last;
            if (!s->checks[i].has_result)
                o = (struct observation){.type = FAULT_SOFTWARE, .severity = SEVERITY_HIGH,
                                         .code = -1};
            snprintf(o.reason, sizeof o.reason, "%s", result);
            analyzer_check_failing(s, i, &o);
        }
    if (analyzer_has_open(s))
        executor_fault_opened(s);
}

static void executor__verify_begin(struct service *s)
{
    s->verifying = true;
    check_reset_streaks(s);
    if (!executor__has_process(s) || s->proc_state == PROC_RUNNING)
        check_start_all(s, EXECUTOR_FIRST_PROBE_MS);
    uint64_t window = s->n_checks ? s->cfg->verify_ms : s->cfg->restart.stable_ms;
    if (s->n_checks == 0 && !executor__has_process(s))
        window = 0;
    uv_timer_start(&s->verify_timer, executor__verify_timeout_cb, window, 0);
}

static void executor__action_timeout_cb(uv_timer_t *t)
{
    struct service *s = t->data;
    if (!s->action_active || s->action.status != ACTION_EXECUTING || s->verifying)
        return;
    const struct strategy_ops *ops = strategy_find(s->action.strategy);
    if (ops && ops->cancel)
        ops->cancel(s);
    char result[128];
    snprintf(result, sizeof result, "timed out after %llu ms",
             (unsigned long long)s->d->cfg->action_timeout_ms);
    executor__fail(s, result, false);
}

static void executor__run(struct service *s)
{
    struct action *a = &s->action;
    struct daemon *d = s->d;
    s->queued = false;
    s->holds_slot = true;
    d->executing++;
    a->status = ACTION_EXECUTING;
    a->started_ms = clock_wall_ms();
    journal_action_update(d->journal, a);
    log_event(LOG_INFO, s->name, "action-started", "action=%lld fault=%lld strategy=%s step=%u/%u",
              (long long)a->id, (long long)a->fault_id, strategy_name(a->strategy), s->step + 1,
              s->n_plan);
    char cause[96];
    snprintf(cause, sizeof cause, "action %lld: %s", (long long)a->id, strategy_name(a->strategy));
    state_service_event(s, EV_RECOVERY_STARTED, cause);
    uv_timer_start(&s->action_timer, executor__action_timeout_cb, d->cfg->action_timeout_ms, 0);
    strategy_find(a->strategy)->run(s);
}

/* The next usable strategy of the plan becomes a pending action; it runs
 * at once when a slot is free, else when one frees up. */
static void executor__step(struct service *s)
{
    char why[256] = "recovery chain exhausted";
    const char *no;
    while (s->step < s->n_plan && (no = strategy_unavailable(s, s->plan[s->step]))) {
        size_t n = strlen(why);
        snprintf(why + n, sizeof why - n, "%s %s: %s", n > 24 ? ";" : ":",
                 strategy_name(s->plan[s->step]), no);
        s->step++;
    }
    if (s->step >= s->n_plan) {
        executor__give_up(s, s->n_plan ? why : "no recovery strategy configured");
        return;
    }
    struct action *a = &s->action;
    memset(a, 0, sizeof *a);
    a->fault_id = executor__trigger(s);
    snprintf(a->service, sizeof a->service, "%s", s->name);
    a->strategy = s->plan[s->step];
    a->status = ACTION_PENDING;
    a->created_ms = clock_wall_ms();
    journal_action_insert(s->d->journal, a);
    s->action_active = true;
    if (s->d->executing >= s->d->cfg->max_concurrent) {
        s->queued = true;
        log_event(LOG_INFO, s->name, "action-queued", "action=%lld strategy=%s executing=%u",
                  (long long)a->id, strategy_name(a->strategy), s->d->executing);
        return;
    }
    executor__run(s);
}

static void executor__plan(struct service *s, const int *plan, unsigned n)
{
    memcpy(s->plan, plan, n * sizeof *plan);
    s->n_plan = n;
    s->step = 0;
    s->recovering = true;
    executor__step(s);
}

void executor_executed(struct service *s, enum exec_outcome outcome, const char *result)
{
    if (!s->action_active || s->action.status != ACTION_EXECUTING)
        return;
    if (outcome == EXEC_OK) {
        snprintf(s->action.result, sizeof s->action.result, "%s", result);
        journal_action_update(s->d->journal, &s->action); /* the params the strategy filled */
        uv_timer_stop(&s->action_timer);
        executor__verify_begin(s);
        return;
    }
    executor__fail(s, result, outcome == EXEC_RETRY);
}

void executor_service_start(struct service *s)
{
    if (s->cfg->pidfile) {
        int r = process_watch_pidfile(s);
        if (r < 0) {
            /* Not ready: its dependents wait for this first recovery. */
            analyzer_external_missing(s, r);
            executor_fault_opened(s);
            return;
        }
    } else if (s->cfg->command) {
        int r = process_spawn(s);
        if (r < 0) {
            analyzer_spawn_failed(s, r);
            executor_fault_opened(s);
            return;
        }
    }
    executor__verify_begin(s);
}

void executor_fault_opened(struct service *s)
{
    if (s->recovering || !executor__automatic(s) || !executor__trigger(s))
        return; /* covered, paused, or only symptoms: the root cause is recovered */
    int plan[STRATEGY__COUNT];
    unsigned n = analyzer_plan(s, executor__trigger_fault(s), plan);
    executor__plan(s, plan, n);
}

/* The first usable strategy of the plan a process fault would get. */
static bool executor__plan_starts_with_restart(const struct service *s)
{
    struct fault f = {.type = FAULT_SOFTWARE};
    int plan[STRATEGY__COUNT];
    unsigned n = analyzer_plan(s, &f, plan);
    for (unsigned i = 0; i < n; i++)
        if (!strategy_unavailable(s, plan[i]))
            return plan[i] == STRATEGY_RESTART;
    return false;
}

void executor_process_exited(struct service *s, int why, uint64_t uptime_ms)
{
    check_stop_all(s);
    s->last_uptime_ms = uptime_ms;
    bool was_verifying = s->verifying;
    if (s->retired) {
        service_close(s);
        return;
    }
    if (why == STOP_SHUTDOWN || s->d->stopping) {
        daemon_stop_progress(s->d);
        return;
    }
    if (why == STOP_RESTART) {
        if (s->cfg->command)
            restart_spawn(s); /* the restart in progress stopped it: start again now */
        return;               /* external: its restart program carries on */
    }
    /* A process that ran past `stable` and whose plan starts with an
     * allowed restart is spawned first: the fault, the action and the
     * transitions below are journaled in the same loop turn, but the
     * service does not wait for them (restart latency is mostly this). */
    if (s->cfg->command && !s->action_active && !s->recovering && executor__automatic(s) &&
        uptime_ms >= s->cfg->restart.stable_ms && !analyzer_dependency_failing(s) &&
        executor__plan_starts_with_restart(s))
        s->prespawned = process_spawn(s) == 0;
    /* Unexpected exit: a fault (the same one if still open). */
    analyzer_process_exited(s, s->last_exit_code, s->last_exit_signal, uptime_ms);
    if (s->action_active && s->action.strategy == STRATEGY_RESTART &&
        s->action.status == ACTION_EXECUTING) {
        char result[256];
        snprintf(result, sizeof result, "process %s %d %llu ms after spawn%s",
                 s->last_exit_signal ? "killed by signal" : "exited with code",
                 s->last_exit_signal ? s->last_exit_signal : (int)s->last_exit_code,
                 (unsigned long long)uptime_ms, was_verifying ? ", before verification" : "");
        executor__fail(s, result, true);
        return;
    }
    if (was_verifying && !s->action_active) {
        s->verifying = false;
        uv_timer_stop(&s->verify_timer);
        executor__ready(s);
    }
    executor_fault_opened(s);
}

void executor_check_reported(struct service *s)
{
    if (!s->verifying || s->n_checks == 0 || !check_all_passing(s))
        return;
    if (executor__has_process(s) && s->proc_state != PROC_RUNNING)
        return;
    executor__verified(s);
}

void executor_abort(struct service *s, const char *why)
{
    uv_timer_stop(&s->verify_timer);
    s->verifying = false;
    s->recovering = false;
    if (!s->action_active)
        return;
    const struct strategy_ops *ops = strategy_find(s->action.strategy);
    if (ops && ops->cancel && s->action.status == ACTION_EXECUTING)
        ops->cancel(s);
    executor__finish(s, ACTION_ABORTED, why);
}

void executor_dependency_recovered(struct service *s)
{
    bool symptoms = false;
    for (size_t i = 0; i < SLOT_SUPERVISOR(s); i++)
        if (s->slots[i].open && s->slots[i].root) {
            s->slots[i].root = 0; /* its own fault now, if it still fails */
            symptoms = true;
        }
    if (!symptoms || s->recovering || s->verifying)
        return;
    log_event(LOG_INFO, s->name, "recheck", "why=\"a dependency recovered\"");
    if (executor__has_process(s) && s->proc_state == PROC_DOWN) {
        executor_fault_opened(s); /* it cannot pass while down */
        return;
    }
    executor__verify_begin(s);
}

/* ---- operator control ---- */

int executor_hold(struct service *s)
{
    s->held = true;
    if (s->action_active && s->action.status == ACTION_PENDING) {
        executor__finish(s, ACTION_ABORTED, "aborted: service held by an operator");
        s->recovering = false;
    }
    log_event(LOG_INFO, s->name, "held", NULL);
    return 0;
}

/* An operator acts: the supervisor's give-up fault closes, limits reset. */
static void executor__operator_reset(struct service *s, const char *why)
{
    s->given_up = false;
    s->restart_log_len = 0;
    s->backoff_ms = s->cfg->restart.backoff_initial_ms;
    analyzer_resolve_supervisor(s, why);
}

int executor_release(struct service *s)
{
    s->held = false;
    executor__operator_reset(s, "released by an operator");
    log_event(LOG_INFO, s->name, "released", NULL);
    if (analyzer_has_open(s))
        executor_fault_opened(s);
    return 0;
}

int executor_restart_now(struct service *s, char *err, size_t len)
{
    const char *no = strategy_unavailable(s, STRATEGY_RESTART);
    if (no) {
        snprintf(err, len, "restart is not usable for %s: %s", s->name, no);
        return -EINVAL;
    }
    if (s->action_active) {
        snprintf(err, len, "a recovery of %s is in progress (action %lld)", s->name,
                 (long long)s->action.id);
        return -EBUSY;
    }
    executor__operator_reset(s, "restarted by an operator");
    int plan[1] = {STRATEGY_RESTART};
    executor__plan(s, plan, 1);
    return 0;
}

int executor_recover_fault(struct service *s, int64_t fault_id, enum strategy st, char *err,
                           size_t len)
{
    bool found = false;
    for (size_t i = 0; i < SLOT_SUPERVISOR(s) + 1; i++)
        found |= s->slots[i].open && s->slots[i].fault.id == fault_id;
    if (!found) {
        snprintf(err, len, "fault %lld is not open on %s", (long long)fault_id, s->name);
        return -ENOENT;
    }
    const char *no = strategy_unavailable(s, st);
    if (no) {
        snprintf(err, len, "%s is not usable for %s: %s", strategy_name(st), s->name, no);
        return -EINVAL;
    }
    if (s->action_active) {
        snprintf(err, len, "a recovery of %s is in progress (action %lld)", s->name,
                 (long long)s->action.id);
        return -EBUSY;
    }
    executor__operator_reset(s, "recovery requested by an operator");
    int plan[1] = {(int)st};
    executor__plan(s, plan, 1);
    return 0;
}
