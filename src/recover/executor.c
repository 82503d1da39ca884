/* Recovery actions: pending -> executing -> completed | failed | aborted,
 * driven by one state x event table per service. An action is completed
 * only when verification passes: the process runs (if recoverd runs it)
 * and every check has passed `rise` times since the action ran (without
 * checks: the process stayed up for its strategies' `stable`). A failed action
 * escalates to the next strategy of the plan; a plan run out leaves the
 * service failed until an operator acts. */
#include "recover/executor.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/analyzer.h"
#include "config/config-t.h"
#include "detect/check.h"
#include "lib/clock.h"
#include "lib/fault.h"
#include "lib/jsonw.h"
#include "lib/log.h"
#include "lib/model.h"
#include "lib/text.h"
#include "monitor/alert.h"
#include "monitor/state.h"
#include "recover/pace.h"
#include "recover/strategy.h"
#include "recover/supervisor.h"
#include "store/journal.h"

/* While verifying, the first probe goes out this soon after the action. */
#define REC__FIRST_PROBE_MS 5
/* A dependency's failure usually shows in its dependents' checks a moment
 * before (or after) its own: a dependent's check fault waits this long for
 * a dependency's fault to open, so it is born a symptom instead of being
 * recovered on its own. */
#define REC__CORRELATE_MS 1000

MODEL_NAME_OF(recovery_state_name, recovery_state, RECOVERY_STATE_MAP, REC__COUNT)
MODEL_NAME_OF(recovery_event_name, recovery_event, RECOVERY_EVENT_MAP, REC_EV__COUNT)

static void rec__timer_cb(struct clock_timer *t)
{
    recovery_event(t->data, REC_EV_TIMER);
}

static void rec__closed_cb(struct clock_timer *t)
{
    struct recovery *r = t->data;
    r->handles_open--;
    if (r->sink.closed)
        r->sink.closed(r->sink.ctx);
}

/* The ops of strategy id, or NULL (not implemented, or no such id). */
static const struct strategy_ops *rec__find(const struct recovery *r, int id)
{
    return (unsigned)id < STRATEGY__COUNT ? r->ex->strategies[id] : NULL;
}

/* Why r's service cannot use strategy id ("not implemented", "not
 * configured"...); {NULL}: it can. */
static struct strategy_no rec__applicable(const struct recovery *r, int id)
{
    const struct strategy_ops *ops = rec__find(r, id);
    if (!ops)
        return (struct strategy_no){"not implemented", true};
    return ops->applicable ? ops->applicable(r) : (struct strategy_no){NULL, false};
}

/* Without checks, how long a started process must stay up to count as
 * verified: the longest any strategy asks (0: at once). */
static uint64_t rec__stable_ms(const struct recovery *r)
{
    uint64_t most = 0, ms;
    for (int id = 0; id < STRATEGY__COUNT; id++) {
        const struct strategy_ops *ops = rec__find(r, id);
        if (ops && ops->stable_ms && (ms = ops->stable_ms(r)) > most)
            most = ms;
    }
    return most;
}

/* Every strategy's limits, for a gave-up fault's context (a new object). */
static json_t *rec__limits(const struct recovery *r)
{
    json_t *context = json_object();
    for (int id = 0; id < STRATEGY__COUNT && context; id++) {
        const struct strategy_ops *ops = rec__find(r, id);
        if (ops && ops->limits)
            ops->limits(r, context);
    }
    return context;
}

int recovery_init(struct recovery *r)
{
    for (int st = 0; st < STRATEGY__COUNT; st++) {
        const struct strategy_ops *ops = rec__find(r, st);
        if (ops && ops->state_size && !(r->priv[st] = calloc(1, ops->state_size)))
            goto fail;
    }
    if (clock_timer_init(&r->timer, r->clock, r) < 0)
        goto fail;
    r->handles_open = 1;
    r->state = REC_IDLE;
    return 0;
fail:
    for (int st = 0; st < STRATEGY__COUNT; st++)
        free(r->priv[st]);
    return -ENOMEM;
}

void recovery_close(struct recovery *r)
{
    for (int st = 0; st < STRATEGY__COUNT; st++) {
        const struct strategy_ops *ops = rec__find(r, st);
        if (ops && ops->release && r->priv[st])
            ops->release(r);
        free(r->priv[st]);
        r->priv[st] = NULL;
    }
    action_release(&r->action);
    clock_timer_close(&r->timer, rec__closed_cb);
}

/* ---- helpers ---- */

static bool rec__has_process(const struct recovery *r)
{
    return r->cfg->command || r->cfg->pidfile;
}

static bool rec__process_ok(const struct recovery *r)
{
    return !rec__has_process(r) || r->sup->state == SUP_RUNNING;
}

static bool rec__automatic(const struct recovery *r)
{
    return !r->held && !r->ex->stopping;
}

static const struct strategy_ops *rec__ops(const struct recovery *r)
{
    return rec__find(r, r->action.strategy);
}

static void rec__ready(struct recovery *r)
{
    if (r->ready)
        return;
    r->ready = true;
    if (r->sink.ready)
        r->sink.ready(r->sink.ctx);
}

static void rec__dequeue(struct executor *ex);

/* Every state change goes through here: what a state owns ends with it. */
static void rec__set(struct recovery *r, enum recovery_state to)
{
    if (r->state == REC_VERIFYING && to != REC_VERIFYING)
        r->checks->verifying = false;
    clock_timer_stop(&r->timer);
    r->state = to;
    if (r->starting && to != REC_EXECUTING && to != REC_VERIFYING) {
        /* A start verified (or not): a restart queued on max_starting may go. */
        r->starting = false;
        r->ex->starting--;
        rec__dequeue(r->ex);
    }
}

static void rec__unqueue(struct recovery *r)
{
    if (!r->queued)
        return;
    for (struct recovery **p = &r->ex->queue; *p; p = &(*p)->next)
        if (*p == r) {
            *p = r->next;
            break;
        }
    r->queued = false;
    r->next = NULL;
}

static void rec__release_slot(struct recovery *r)
{
    if (!r->holds_slot)
        return;
    r->holds_slot = false;
    r->ex->executing--;
    rec__dequeue(r->ex);
}

/* An executing start whose spawn went to the spawner's threads keeps no
 * slot: those threads bound the spawns at once, `starting` (held until
 * its verification ends) the unverified starts, so a storm of restarts
 * does not queue behind max_concurrent_recoveries spawns reporting back. */
static bool rec__spawn_handed_off(const struct recovery *r)
{
    return r->holds_slot && r->state == REC_EXECUTING && r->starting &&
           r->sup->state == SUP_SPAWNING;
}

static void rec__finish(struct recovery *r, enum action_status st, const char *result)
{
    struct action *a = &r->action;
    a->status = st;
    a->finished_ms = clock_wall_ms();
    action_set_result(a, result);
    journal_action_update(r->ex->journal, a);
    r->has_action = false;
    rec__unqueue(r);
    log_event(st == ACTION_COMPLETED ? LOG_INFO : LOG_WARN, r->service, "action-finished",
              "action=%lld strategy=%s status=%s result=\"%s\"", (long long)a->id,
              strategy_name(a->strategy), action_status_name(st), result);
    rec__release_slot(r);
}

/* ---- verification ---- */

static void rec__verify_begin(struct recovery *r)
{
    rec__set(r, REC_VERIFYING);
    struct check_set *cs = r->checks;
    cs->verifying = true;
    check_set_reset_streaks(cs);
    if (rec__process_ok(r)) {
        cs->pid = r->sup->pid;
        uint64_t since = clock_src_now_us(r->clock) - r->sup->spawned_us;
        uint64_t period = r->cfg->start_period_ms * 1000;
        cs->start_until_us = rec__has_process(r) && since < period ? r->sup->spawned_us + period
                                                                   : 0;
        check_set_start(cs, REC__FIRST_PROBE_MS);
    }
    /* A check that needs time under its limit before it passes (resource
     * `for:`) gets that time on top of `verify`. */
    uint64_t window = cs->n ? r->cfg->verify_ms + check_set_settle_ms(cs) : rec__stable_ms(r);
    if (cs->n == 0 && !rec__has_process(r))
        window = 0;
    clock_timer_start(&r->timer, rec__timer_cb, window);
}

static void rec__verified(struct recovery *r)
{
    char result[256];
    bool had_action = r->has_action;
    if (rec__has_process(r))
        snprintf(result, sizeof result,
                 "verified: pid %d running, %zu check(s) passing %llu ms "
                 "after %s",
                 (int)r->sup->pid, r->checks->n,
                 (unsigned long long)((clock_src_now_us(r->clock) - r->sup->spawned_us) / 1000),
                 r->cfg->command ? "spawn" : "it appeared");
    else
        snprintf(result, sizeof result, "verified: %zu check(s) passing", r->checks->n);
    if (had_action) {
        r->flap_fault = r->action.fault_id;
        r->flap_step = r->step;
        rec__finish(r, ACTION_COMPLETED, result);
    }
    rec__set(r, REC_IDLE);
    int resolved = analyzer_resolve_all(r->faults, result, had_action);
    if (had_action || resolved > 0) {
        char cause[128];
        snprintf(cause, sizeof cause, "action %lld verified", (long long)r->action.id);
        state_service_event(r->st, EV_RECOVERY_SUCCEEDED,
                            had_action ? cause : "service verified after start");
    }
    rec__ready(r);
    if (resolved > 0 && r->sink.recovered)
        r->sink.recovered(r->sink.ctx);
}

/* Everything verification needs holds now. */
static bool rec__passing(struct recovery *r)
{
    if (!rec__process_ok(r) || !check_set_all_passing(r->checks))
        return false;
    if (r->checks->n == 0)
        return false; /* no checks: only time (rec__stable_ms) verifies */
    const struct strategy_ops *ops = r->has_action ? rec__ops(r) : NULL;
    return !ops || !ops->verified || ops->verified(r);
}

/* ---- plans ---- */

static void rec__step(struct recovery *r);

/* The plan is exhausted: failed, a critical fault, no more attempts. */
static void rec__give_up(struct recovery *r, const char *why)
{
    char desc[256];
    snprintf(desc, sizeof desc, "%.180s; automatic recovery stopped until an operator acts", why);
    rec__set(r, REC_GAVE_UP);
    rec__ready(r); /* its dependents start anyway: their faults will be its symptoms */
    analyzer_gave_up(r->faults, desc, rec__limits(r));
    state_service_event(r->st, EV_GAVE_UP, desc);
    alert_service_failed(r->ex->alerter, r->service,
                         r->faults->slots[SLOT_SUPERVISOR(r->faults)].fault, desc);
}

static void rec__fail(struct recovery *r, const char *result, bool retry)
{
    enum strategy st = r->action.strategy;
    rec__finish(r, ACTION_FAILED, result);
    rec__set(r, REC_IDLE);
    state_service_event(r->st, EV_RECOVERY_FAILED, result);
    if (!rec__automatic(r))
        return;
    if (!retry)
        r->step++;
    const struct fault *f = analyzer_trigger(r->faults);
    if (f && r->step < r->n_plan)
        alert_fault_escalated(r->ex->alerter, f, &r->action, strategy_name(r->plan[r->step]));
    if (r->step >= r->n_plan) {
        char why[256];
        snprintf(why, sizeof why, "recovery chain exhausted: %s failed: %.180s", strategy_name(st),
                 result);
        rec__give_up(r, why);
        return;
    }
    rec__step(r);
}

static void rec__enqueue(struct recovery *r)
{
    struct recovery **p = &r->ex->queue;
    if (r->queued)
        return; /* waiting already, and keeps its place: twice would tie the list in a loop */
    /* First attempts go ahead of repeat offenders, then oldest first. */
    while (*p &&
           ((*p)->attempts < r->attempts ||
            ((*p)->attempts == r->attempts && (*p)->action.created_ms <= r->action.created_ms)))
        p = &(*p)->next;
    r->next = *p;
    *p = r;
    r->queued = true;
    rec__dequeue(r->ex);
    if (!r->queued)
        return;
    /* What it waits for: a slot, room to start a process, or loop time
     * (a storm's spawns are paced over turns: recover/pace.h). */
    const struct executor *ex = r->ex;
    const char *waiting = ex->executing >= ex->max_executing ? "slot"
                          : rec__ops(r)->starts_process && ex->starting >= ex->max_starting
                              ? "max_starting"
                              : "loop-time";
    log_event(LOG_INFO, r->service, "action-queued",
              "action=%lld strategy=%s executing=%u waiting=%s", (long long)r->action.id,
              strategy_name(r->action.strategy), ex->executing, waiting);
}

/* Give free slots to queued actions; one that starts a process also
 * needs room under max_starting (a restart storm must not fork-bomb). */
static void rec__dequeue_job(struct pace_job *j)
{
    rec__dequeue((struct executor *)((char *)j - offsetof(struct executor, dequeue_job)));
}

static void rec__dequeue(struct executor *ex)
{
    struct recovery **p = &ex->queue;
    while (*p && ex->executing < ex->max_executing) {
        struct recovery *r = *p;
        const struct strategy_ops *ops = rec__ops(r);
        if (ops->starts_process && ex->starting >= ex->max_starting) {
            p = &r->next;
            continue;
        }
        if (!pace_has_time(ex->pace)) { /* the rest in a later turn, in order */
            ex->dequeue_job.run = rec__dequeue_job;
            pace_defer(ex->pace, &ex->dequeue_job);
            return;
        }
        *p = r->next;
        r->queued = false;
        r->next = NULL;
        recovery_event(r, REC_EV_SLOT);
    }
}

/* The next usable strategy of the plan becomes a pending action. */
static void rec__step(struct recovery *r)
{
    char why[256] = "recovery chain exhausted";
    bool permanent = true;
    struct strategy_no no;
    while (r->step < r->n_plan && (no = rec__applicable(r, r->plan[r->step])).why) {
        size_t n = strlen(why);
        snprintf(why + n, sizeof why - n, "%s %s: %s", n > 24 ? ";" : ":",
                 strategy_name(r->plan[r->step]), no.why);
        permanent &= no.permanent;
        r->step++;
    }
    if (r->step >= r->n_plan) {
        if (r->attempts == 0 && permanent) {
            /* Nothing here can act on this service (watched only, no
             * program configured): the fault and its alert are the whole
             * response, and it resolves when the checks pass again. */
            rec__set(r, REC_IDLE);
            log_event(LOG_INFO, r->service, "alert-only", "why=\"%s\"",
                      r->n_plan ? why : "no recovery strategy configured");
            return;
        }
        rec__give_up(r, r->n_plan ? why : "no recovery strategy configured");
        return;
    }
    struct action *a = &r->action;
    action_release(a);
    memset(a, 0, sizeof *a);
    const struct fault *t = analyzer_trigger(r->faults);
    a->fault_id = t ? t->id : 0;
    a->service = r->service;
    a->strategy = r->plan[r->step];
    a->status = ACTION_PENDING;
    a->created_ms = clock_wall_ms();
    journal_action_insert(r->ex->journal, a);
    r->has_action = true;
    rec__set(r, REC_PENDING);
    const struct strategy_ops *ops = rec__ops(r);
    uint64_t delay = ops->delay ? ops->delay(r) : 0;
    if (delay) {
        /* A backoff wait holds no slot: it waits here, then queues. */
        clock_timer_start(&r->timer, rec__timer_cb, delay);
        return;
    }
    rec__enqueue(r);
}

static void rec__plan(struct recovery *r, const int *plan, unsigned n, unsigned step)
{
    memcpy(r->plan, plan, n * sizeof *plan);
    r->n_plan = n;
    r->step = step;
    r->attempts = 0;
    rec__step(r);
}

/* A fault is open: recover, unless it is a symptom or recovery is paused.
 * A fault reopened within flap_window resumes its chain one step on. */
static void rec__plan_start(struct recovery *r, bool reopened)
{
    const struct fault *t = analyzer_trigger(r->faults);
    if (!t || !rec__automatic(r)) {
        rec__set(r, REC_IDLE);
        return; /* only symptoms (the root cause is recovered), or paused */
    }
    int plan[STRATEGY__COUNT];
    unsigned n = analyzer_plan(r->faults, t, plan);
    unsigned step = 0;
    if (reopened && t->id == r->flap_fault && n > 0) {
        /* The next strategy; with none left, the last again (its own
         * limits, e.g. restart intensity, end the loop). */
        step = r->flap_step + 1 < n ? r->flap_step + 1 : n - 1;
        log_event(LOG_WARN, r->service, "flapping", "fault=%lld resume_step=%u/%u",
                  (long long)t->id, step + 1, n);
    }
    rec__plan(r, plan, n, step);
}

/* ---- faults from events ---- */

static enum fault_open rec__check_fault(struct recovery *r, struct check *c,
                                        const struct observation *o)
{
    return analyzer_check_failing(r->faults, check_index(c), o);
}

/* Every check that is not passing gets its fault, each with its own
 * reason (reason_prefix: why the verification ended). */
static bool rec__open_unpassed(struct recovery *r, const char *why)
{
    bool reopened = false;
    for (size_t i = 0; i < r->checks->n; i++) {
        struct check *c = &r->checks->checks[i];
        if (!c->failing && c->has_result && c->last.ok && c->oks >= c->cfg->rise)
            continue;
        struct observation o;
        check_last(c, &o);
        if (!c->has_result || c->last.ok)
            o = (struct observation){.type = FAULT_SOFTWARE, .severity = SEVERITY_HIGH, .code = -1};
        char reason[sizeof o.reason];
        text_format(reason, sizeof reason, "%s (%s)",
                    c->has_result && !c->last.ok ? c->last.reason : "not passing", why);
        memcpy(o.reason, reason, sizeof reason);
        reopened |= rec__check_fault(r, c, &o) == FAULT_REOPENED;
    }
    return reopened;
}

static bool rec__exit_fault(struct recovery *r, const struct sup_exit *e)
{
    return analyzer_process_exited(r->faults, e->code, e->signal, e->uptime_ms) == FAULT_REOPENED;
}

static void rec__exit_text(const struct sup_exit *e, bool verifying, char *buf, size_t len)
{
    snprintf(buf, len, "process %s %d %llu ms after spawn%s",
             e->signal ? "killed by signal" : "exited with code",
             e->signal ? e->signal : (int)e->code, (unsigned long long)e->uptime_ms,
             verifying ? ", before verification" : "");
}

/* ---- the cells ---- */

typedef void (*rec_action)(struct recovery *r);

static void rec__nothing(struct recovery *r)
{
}

/* IDLE + start: spawn (supervised) or find (external) the process and
 * verify like a recovery, so faults a previous recoverd left open resolve
 * once it is healthy. */
static void rec__started(struct recovery *r, int err);

static void rec__start(struct recovery *r)
{
    int err = 0;
    if (r->cfg->pidfile) {
        err = supervisor_event(r->sup, SUP_EV_WATCH, STOP_NONE);
    } else if (r->cfg->command) {
        /* On the spawner's threads where the pace has them (not as a
         * subreaper): the exec's wait is off the loop, the start goes on
         * when the spawn reports (recovery_launched). */
        r->start_launching = true;    /* before: a spawner may report at once */
        r->sup->launch_yields = true; /* a first start is bulk work */
        err = supervisor_launch(r->sup, pace_spawner(r->ex->pace));
        r->sup->launch_yields = false;
        if (err == -EINPROGRESS)
            return;
        r->start_launching = false;
    }
    rec__started(r, err);
}

/* The start's process is up (or found, or cannot be had): verify it. */
static void rec__started(struct recovery *r, int err)
{
    if (err == -EALREADY) { /* already up (started once before): only verify it */
        rec__verify_begin(r);
        return;
    }
    if (err < 0) {
        bool reopened = r->cfg->pidfile
                            ? analyzer_external_missing(r->faults, err) == FAULT_REOPENED
                            : analyzer_spawn_failed(r->faults, err) == FAULT_REOPENED;
        rec__plan_start(r, reopened); /* its dependents wait for this first recovery */
        return;
    }
    rec__verify_begin(r);
}

/* IDLE + check failing: a fault; with dependencies, first a moment for
 * theirs to open (then it is their symptom). */
static void rec__idle_failing(struct recovery *r)
{
    if (r->faults->n_deps && !analyzer_root_cause(r->faults)) {
        rec__set(r, REC_CORRELATING);
        clock_timer_start(&r->timer, rec__timer_cb, REC__CORRELATE_MS);
        log_event(LOG_DEBUG, r->service, "correlating", "check=%s wait_ms=%d", r->check->cfg->name,
                  REC__CORRELATE_MS);
        return;
    }
    enum fault_open o = rec__check_fault(r, r->check, r->obs);
    if (o != FAULT_ALREADY_OPEN)
        rec__plan_start(r, o == FAULT_REOPENED);
}

/* CORRELATING + timer: the failing checks' faults open now (symptoms if a
 * dependency's fault opened meanwhile). */
static void rec__correlated(struct recovery *r)
{
    bool reopened = false;
    for (size_t i = 0; i < r->checks->n; i++) {
        struct check *c = &r->checks->checks[i];
        struct observation o;
        if (!c->failing)
            continue;
        check_last(c, &o);
        reopened |= rec__check_fault(r, c, &o) == FAULT_REOPENED;
    }
    rec__set(r, REC_IDLE);
    rec__plan_start(r, reopened);
}

/* Any state but IDLE/CORRELATING/VERIFYING + check failing: record it. */
static void rec__record_failing(struct recovery *r)
{
    rec__check_fault(r, r->check, r->obs);
}

/* IDLE + check reported: faults whose checks all pass again resolve, held
 * or not; with nothing to act on that is how a watched service recovers. */
static void rec__idle_reported(struct recovery *r)
{
    if (!analyzer_trigger(r->faults) || !rec__process_ok(r) || !check_set_all_passing(r->checks) ||
        r->checks->n == 0)
        return;
    int resolved = analyzer_resolve_all(r->faults, "checks passing again", false);
    if (resolved > 0) {
        state_service_event(r->st, EV_FAULTS_CLEARED, "checks passing again");
        if (r->sink.recovered)
            r->sink.recovered(r->sink.ctx);
    }
}

/* CORRELATING + check reported: every check passes again: no fault. */
static void rec__correlating_reported(struct recovery *r)
{
    if (check_set_all_passing(r->checks))
        rec__set(r, REC_IDLE);
}

/* PENDING + check reported: the fault went away before its action ran. */
static void rec__pending_reported(struct recovery *r)
{
    if (!rec__process_ok(r) || r->checks->n == 0 || !check_set_all_passing(r->checks))
        return;
    rec__finish(r, ACTION_ABORTED, "aborted: checks passing again before it ran");
    rec__set(r, REC_IDLE);
    rec__idle_reported(r);
}

/* VERIFYING + check reported. */
static void rec__verifying_reported(struct recovery *r)
{
    if (rec__passing(r))
        rec__verified(r);
}

/* VERIFYING + check failing: fall reached while verifying (after the start
 * period): its fault opens now, and the verification has failed. */
static void rec__verifying_failing(struct recovery *r)
{
    enum fault_open o = rec__check_fault(r, r->check, r->obs);
    if (r->has_action) {
        char result[256];
        snprintf(result, sizeof result, "not verified: %s check failing: %.180s",
                 r->check->cfg->name, r->obs->reason);
        const struct strategy_ops *ops = rec__ops(r);
        rec__fail(r, result, ops->starts_process); /* a fresh process may be retried */
        return;
    }
    rec__set(r, REC_IDLE);
    rec__ready(r);
    rec__plan_start(r, o == FAULT_REOPENED);
}

/* VERIFYING + timer: the window ran out. */
static void rec__verify_timeout(struct recovery *r)
{
    /* Its process died and what it started is still going: the exit,
     * reported once nothing of it is left, decides (a restart is retried),
     * not a window that ran out meanwhile. */
    if (r->sup->state == SUP_DRAINING)
        return;
    if (r->checks->n == 0 && rec__process_ok(r)) {
        rec__verified(r); /* nothing to check: it stayed up */
        return;
    }
    char why[128];
    snprintf(why, sizeof why, "not verified within %llu ms", (unsigned long long)r->cfg->verify_ms);
    bool reopened = rec__open_unpassed(r, why);
    rec__ready(r);
    if (r->has_action) {
        const char *what = rec__process_ok(r) ? "checks not passing" : "process not running";
        for (size_t i = 0; i < r->checks->n; i++)
            if (r->checks->checks[i].has_result && !r->checks->checks[i].last.ok) {
                what = r->checks->checks[i].last.reason;
                break;
            }
        char result[256];
        text_format(result, sizeof result, "%s: %s", why, what);
        rec__fail(r, result, false);
        return;
    }
    rec__set(r, REC_IDLE);
    rec__plan_start(r, reopened);
}

/* The process went down: its checks stop, and they have no pid. */
static void rec__down(struct recovery *r)
{
    check_set_stop(r->checks);
    r->checks->pid = 0;
}

/* A queued action waits to start a process. */
static bool rec__starts_queued(const struct executor *ex)
{
    for (const struct recovery *q = ex->queue; q; q = q->next)
        if (rec__ops(q)->starts_process)
            return true;
    return false;
}

/* IDLE + exited: the fault; the first strategy may act before the
 * bookkeeping (a restart's spawn: restart latency is mostly this). */
static void rec__idle_exited(struct recovery *r)
{
    const struct sup_exit *e = r->exit;
    rec__down(r);
    if (e->why != STOP_NONE)
        return; /* asked for (shutdown) */
    const struct fault *root = analyzer_root_cause(r->faults);
    /* Not ahead of restarts already queued (first exited, first
     * restarted), nor past this loop turn's time: then it queues. */
    if (rec__automatic(r) && !root && !rec__starts_queued(r->ex) && pace_has_time(r->ex->pace)) {
        int plan[STRATEGY__COUNT];
        struct fault soft = {.type = FAULT_SOFTWARE};
        unsigned n = analyzer_plan(r->faults, &soft, plan);
        for (unsigned i = 0; i < n; i++) {
            if (rec__applicable(r, plan[i]).why)
                continue;
            /* Its run() later finds the work done. */
            const struct strategy_ops *ops = rec__find(r, plan[i]);
            if (ops->act_first)
                ops->act_first(r, e);
            break;
        }
    }
    rec__plan_start(r, rec__exit_fault(r, e));
}

/* CORRELATING + exited: the process fault needs no correlation; the checks
 * that were failing open theirs too. */
static void rec__correlating_exited(struct recovery *r)
{
    rec__down(r);
    if (r->exit->why != STOP_NONE)
        return;
    rec__exit_fault(r, r->exit);
    rec__correlated(r);
}

/* PENDING / GAVE_UP + exited: recorded. */
static void rec__record_exited(struct recovery *r)
{
    rec__down(r);
    if (r->exit->why == STOP_NONE)
        rec__exit_fault(r, r->exit);
}

/* EXECUTING + exited: the strategy's business (a restart's stop). */
static void rec__executing_exited(struct recovery *r)
{
    const struct strategy_ops *ops = rec__ops(r);
    rec__down(r);
    if (r->exit->why == STOP_NONE)
        rec__exit_fault(r, r->exit);
    if (ops->process_exited)
        ops->process_exited(r, r->exit);
    if (rec__spawn_handed_off(r)) /* the stop it held a slot for is done */
        rec__release_slot(r);
}

/* VERIFYING + exited: it died before verification. */
static void rec__verifying_exited(struct recovery *r)
{
    const struct sup_exit *e = r->exit;
    rec__down(r);
    if (e->why != STOP_NONE)
        return;
    bool reopened = rec__exit_fault(r, e);
    if (r->has_action) {
        char result[256];
        rec__exit_text(e, true, result, sizeof result);
        rec__fail(r, result, rec__ops(r)->starts_process);
        return;
    }
    rec__set(r, REC_IDLE);
    rec__ready(r);
    rec__plan_start(r, reopened);
}

/* PENDING + timer: the delay (backoff) is over: wait for a slot. */
static void rec__delay_over(struct recovery *r)
{
    rec__enqueue(r);
}

/* PENDING + slot: run. */
static void rec__run(struct recovery *r)
{
    struct action *a = &r->action;
    struct executor *ex = r->ex;
    r->holds_slot = true;
    ex->executing++;
    r->attempts++;
    rec__set(r, REC_EXECUTING);
    /* Counted from here, not from its spawn: the spawn reports a loop turn
     * or more later (lib/spawner.h), and a start dequeued meanwhile must
     * see this one under max_starting. */
    if (rec__ops(r)->starts_process && !r->starting) {
        r->starting = true;
        ex->starting++;
    }
    a->status = ACTION_EXECUTING;
    a->started_ms = clock_wall_ms();
    journal_action_update(ex->journal, a);
    log_event(LOG_INFO, r->service, "action-started",
              "action=%lld fault=%lld strategy=%s step=%u/%u", (long long)a->id,
              (long long)a->fault_id, strategy_name(a->strategy), r->step + 1, r->n_plan);
    char cause[96];
    snprintf(cause, sizeof cause, "action %lld: %s", (long long)a->id, strategy_name(a->strategy));
    state_service_event(r->st, EV_RECOVERY_STARTED, cause);
    clock_timer_start(&r->timer, rec__timer_cb, ex->action_timeout_ms);
    rec__ops(r)->run(r);
    /* Only a slot: the dequeue that ran this goes on with the next. */
    if (rec__spawn_handed_off(r)) {
        r->holds_slot = false;
        ex->executing--;
    }
}

/* EXECUTING + executed. */
static void rec__executed(struct recovery *r)
{
    if (r->outcome != EXEC_OK) {
        rec__fail(r, r->result, r->outcome == EXEC_RETRY);
        return;
    }
    action_set_result(&r->action, r->result);
    journal_action_update(r->ex->journal, &r->action); /* the params the strategy set */
    rec__release_slot(r);                              /* `starting` counts it since rec__run */
    if (rec__has_process(r) && !rec__process_ok(r)) {
        /* It died while the strategy ran (a repair): it cannot pass a
         * verification while down, so do not wait `verify` for it. */
        rec__fail(r, "process not running after the action", rec__ops(r)->starts_process);
        return;
    }
    rec__verify_begin(r); /* verification holds no slot; `starting` ends with it */
}

/* EXECUTING + timer: the action's deadline. */
static void rec__action_timeout(struct recovery *r)
{
    const struct strategy_ops *ops = rec__ops(r);
    if (ops->cancel)
        ops->cancel(r);
    char result[128];
    snprintf(result, sizeof result, "timed out after %llu ms",
             (unsigned long long)r->ex->action_timeout_ms);
    rec__fail(r, result, false);
}

/* HOLD: recovery pauses; a pending action is dropped, one executing ends. */
static void rec__hold(struct recovery *r)
{
    r->held = true;
    log_event(LOG_INFO, r->service, "held", NULL);
}

static void rec__hold_pending(struct recovery *r)
{
    rec__hold(r);
    rec__finish(r, ACTION_ABORTED, "aborted: service held by an operator");
    rec__set(r, REC_IDLE);
}

/* An operator acted: limits reset, the recovery's own fault closes. */
static void rec__operator_reset(struct recovery *r, const char *why)
{
    for (int st = 0; st < STRATEGY__COUNT; st++) {
        const struct strategy_ops *ops = rec__find(r, st);
        if (ops && ops->reset)
            ops->reset(r);
    }
    analyzer_resolve_supervisor(r->faults, why);
}

/* Open faults are checked again before anything is done about them. */
static void rec__recheck(struct recovery *r)
{
    if (!analyzer_trigger(r->faults)) {
        rec__set(r, REC_IDLE);
        return;
    }
    if (!rec__process_ok(r)) {
        rec__set(r, REC_IDLE);
        rec__plan_start(r, false); /* it cannot pass while down */
        return;
    }
    log_event(LOG_INFO, r->service, "recheck", NULL);
    /* Judged afresh: a check still failing must fail `fall` times again
     * (then the plan runs), one that passes `rise` times resolves. */
    check_set_rejudge(r->checks);
    rec__verify_begin(r);
}

/* RELEASE (idle, gave up). */
static void rec__release(struct recovery *r)
{
    r->held = false;
    rec__operator_reset(r, "released by an operator");
    log_event(LOG_INFO, r->service, "released", NULL);
    rec__recheck(r);
}

/* RELEASE while something runs: only the flag. */
static void rec__release_flag(struct recovery *r)
{
    r->held = false;
    rec__operator_reset(r, "released by an operator");
    log_event(LOG_INFO, r->service, "released", NULL);
}

/* OPERATOR (idle, gave up, verifying a start): run the chosen strategy. */
static void rec__operate(struct recovery *r)
{
    rec__set(r, REC_IDLE);
    rec__operator_reset(r, r->result);
    int plan[1] = {r->op_strategy};
    rec__plan(r, plan, 1, 0);
}

/* DEP_RECOVERED (idle): symptoms are its own faults now, if it still fails. */
static void rec__dep_recovered(struct recovery *r)
{
    if (analyzer_clear_symptoms(r->faults) && rec__automatic(r)) {
        log_event(LOG_INFO, r->service, "dependency-recovered", NULL);
        rec__recheck(r);
    }
}

static void rec__dep_recovered_flag(struct recovery *r)
{
    analyzer_clear_symptoms(r->faults);
}

/* ABORT: whatever runs ends here. */
static void rec__abort(struct recovery *r)
{
    if (r->has_action) {
        const struct strategy_ops *ops = rec__ops(r);
        /* Only while its run() has not answered: the strategy's contract
         * (a verifying action's status is still `executing`). */
        if (ops->cancel && r->state == REC_EXECUTING)
            ops->cancel(r);
        rec__finish(r, ACTION_ABORTED, r->result);
    }
    rec__set(r, REC_IDLE);
}

/* Executing strategies own the exit; everything else reacts as named. */
#define I rec__nothing
static const rec_action rec__table[REC__COUNT][REC_EV__COUNT] = {
    /* start, check-failing, check-reported, exited, timer, slot, executed, hold, release,
     * operator, dependency-recovered, abort */
    [REC_IDLE] = {rec__start, rec__idle_failing, rec__idle_reported, rec__idle_exited, I, I, I,
                  rec__hold, rec__release, rec__operate, rec__dep_recovered, rec__abort},
    [REC_CORRELATING] = {I, I, rec__correlating_reported, rec__correlating_exited, rec__correlated,
                         I, I, rec__hold, rec__release_flag, I, rec__dep_recovered_flag,
                         rec__abort},
    [REC_PENDING] = {I, rec__record_failing, rec__pending_reported, rec__record_exited,
                     rec__delay_over, rec__run, I, rec__hold_pending, rec__release_flag, I,
                     rec__dep_recovered_flag, rec__abort},
    [REC_EXECUTING] = {I, rec__record_failing, I, rec__executing_exited, rec__action_timeout, I,
                       rec__executed, rec__hold, rec__release_flag, I, rec__dep_recovered_flag,
                       rec__abort},
    [REC_VERIFYING] = {I, rec__verifying_failing, rec__verifying_reported, rec__verifying_exited,
                       rec__verify_timeout, I, I, rec__hold, rec__release_flag, rec__operate,
                       rec__dep_recovered_flag, rec__abort},
    [REC_GAVE_UP] = {I, rec__record_failing, I, rec__record_exited, I, I, I, rec__hold,
                     rec__release, rec__operate, rec__dep_recovered_flag, rec__abort},
};
#undef I

void recovery_event(struct recovery *r, enum recovery_event ev)
{
    if ((unsigned)ev < REC_EV__COUNT)
        rec__table[r->state][ev](r);
}

void recovery_check_failing(struct recovery *r, struct check *c, const struct observation *o)
{
    r->check = c;
    r->obs = o;
    recovery_event(r, REC_EV_CHECK_FAILING);
    r->obs = NULL;
}

void recovery_check_reported(struct recovery *r, struct check *c)
{
    r->check = c;
    recovery_event(r, REC_EV_CHECK_REPORTED);
}

void recovery_process_exited(struct recovery *r, const struct sup_exit *e)
{
    r->exit = e;
    recovery_event(r, REC_EV_EXITED);
    r->exit = NULL;
}

void recovery_launched(struct recovery *r, int err)
{
    if (r->start_launching) { /* the start's; a stop meanwhile cleared it */
        r->start_launching = false;
        if (r->state == REC_IDLE)
            rec__started(r, err);
        return;
    }
    for (int st = 0; st < STRATEGY__COUNT; st++) {
        const struct strategy_ops *ops = rec__find(r, st);
        if (ops && ops->launched)
            ops->launched(r, err);
    }
}

void recovery_executed(struct recovery *r, enum exec_outcome outcome, const char *result)
{
    r->outcome = outcome;
    r->result = result;
    recovery_event(r, REC_EV_EXECUTED);
}

void recovery_abort(struct recovery *r, const char *why)
{
    r->start_launching = false; /* the spawn's report starts nothing */
    r->result = why;
    recovery_event(r, REC_EV_ABORT);
}

int recovery_hold(struct recovery *r)
{
    recovery_event(r, REC_EV_HOLD);
    return 0;
}

int recovery_release(struct recovery *r)
{
    recovery_event(r, REC_EV_RELEASE);
    return 0;
}

int recovery_operate(struct recovery *r, int64_t fault_id, enum strategy st, char *err, size_t len)
{
    if (fault_id) {
        bool found = false;
        for (size_t i = 0; i < r->faults->n_slots; i++)
            found |= r->faults->slots[i].open && r->faults->slots[i].fault->id == fault_id;
        if (!found) {
            snprintf(err, len, "fault %lld is not open on %s", (long long)fault_id, r->service);
            return -ENOENT;
        }
    }
    struct strategy_no no = rec__applicable(r, st);
    if (no.why) {
        snprintf(err, len, "%s is not usable for %s: %s", strategy_name(st), r->service, no.why);
        return -EINVAL;
    }
    if (r->state == REC_CORRELATING) { /* no action yet: there may be none */
        snprintf(err, len,
                 "%s is correlating: its failing checks wait a moment for a dependency's fault",
                 r->service);
        return -EBUSY;
    }
    if (r->has_action ||
        (r->state != REC_IDLE && r->state != REC_GAVE_UP && r->state != REC_VERIFYING)) {
        snprintf(err, len, "a recovery of %s is in progress (action %lld: %s)", r->service,
                 (long long)r->action.id, recovery_state_name(r->state));
        return -EBUSY;
    }
    r->op_strategy = st;
    r->result = fault_id ? "recovery requested by an operator" : "restarted by an operator";
    recovery_event(r, REC_EV_OPERATOR);
    return 0;
}

void recovery_analyse(void *arg, const struct fault *f, json_t *ctx)
{
    struct recovery *r = arg;
    int plan[STRATEGY__COUNT];
    unsigned n = analyzer_plan(r->faults, f, plan);
    json_t *recommended = json_array(), *skipped = json_object();
    const char *risk = NULL;
    for (unsigned i = 0; i < n; i++) {
        struct strategy_no no = rec__applicable(r, plan[i]);
        if (no.why) {
            json_object_set_new(skipped, strategy_name(plan[i]), json_string(no.why));
            continue;
        }
        json_array_append_new(recommended, json_string(strategy_name(plan[i])));
        if (!risk)
            risk = rec__find(r, plan[i])->risk;
    }
    json_object_set_new(ctx, "recommended", recommended);
    json_object_set_new(ctx, "skipped", skipped);
    json_object_set_new(ctx, "risk", risk ? json_string(risk) : json_null());
    /* From memory, not the journal: this runs on the restart's hot path. */
    const struct faults *fs = r->faults;
    json_object_set_new(ctx, "estimated_recovery_ms",
                        fs->history_n ? json_integer((json_int_t)(fs->history_ms / fs->history_n))
                                      : json_null());
}

void recovery_view(const struct recovery *r, struct jsonw *w)
{
    jsonw_key(w, "recovery");
    jsonw_string(w, recovery_state_name(r->state));
    jsonw_key(w, "held");
    jsonw_bool(w, r->held);
    jsonw_key(w, "given_up");
    jsonw_bool(w, r->state == REC_GAVE_UP);
    jsonw_key(w, "recovering");
    jsonw_bool(w, r->state == REC_PENDING || r->state == REC_EXECUTING ||
                      (r->state == REC_VERIFYING && r->has_action));
    for (int st = 0; st < STRATEGY__COUNT; st++) {
        const struct strategy_ops *ops = rec__find(r, st);
        if (ops && ops->view)
            ops->view(r, w);
    }
}

const char *recovery_busy(const struct recovery *r)
{
    if (r->state != REC_IDLE || r->has_action)
        return r->state == REC_GAVE_UP ? "it is not running" : "a recovery is under way";
    if (analyzer_has_open(r->faults))
        return "a fault is open";
    if (!r->ready)
        return "it is not running";
    return NULL;
}
