/* Restart actions: pending -> executing -> completed | failed | aborted.
 * An action is completed only when verification passes: the process runs
 * and every check has passed `rise` times since the spawn (or, without
 * checks, the process stayed up for restart.stable). */
#include "recover/executor.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "analyze/analyzer.h"
#include "core/clock.h"
#include "core/config-t.h"
#include "core/daemon.h"
#include "core/log.h"
#include "core/service.h"
#include "core/model.h"
#include "detect/check.h"
#include "monitor/state.h"
#include "recover/process.h"
#include "recover/restart.h"
#include "store/journal.h"

/* How long a restarted service has to pass its checks. */
#define EXECUTOR_VERIFY_MS 30000
/* While verifying, probe this often so recovery is confirmed quickly. */
#define EXECUTOR_FIRST_PROBE_MS 5

static void executor__begin(struct service *s);

static uint64_t executor__now_ms(void) { return clock_mono_us() / 1000; }

static void executor__finish(struct service *s, enum action_status st, const char *result)
{
    struct action *a = &s->action;
    a->status = st;
    a->finished_ms = clock_wall_ms();
    snprintf(a->result, sizeof a->result, "%s", result);
    journal_action_update(s->d->journal, a);
    s->action_active = false;
    log_event(st == ACTION_COMPLETED ? LOG_INFO : LOG_WARN, s->name, "action-finished",
              "action=%lld strategy=%s status=%s result=\"%s\"", (long long)a->id,
              strategy_name(a->strategy), action_status_name(st), result);
}

static int64_t executor__trigger_fault(const struct service *s)
{
    for (size_t i = 0; i < s->n_checks + 2; i++)
        if (s->slots[i].open)
            return s->slots[i].fault.id;
    return 0;
}

static void executor__spawn(struct service *s);

static void executor__backoff_cb(uv_timer_t *t)
{
    struct service *s = t->data;
    if (s->proc_state == PROC_WAITING)
        executor__spawn(s);
}

/* Verification passed: the action completes and the faults resolve. */
static void executor__verified(struct service *s)
{
    char result[256];
    uint64_t took = (clock_mono_us() - s->spawned_us) / 1000;
    s->verifying = false;
    uv_timer_stop(&s->verify_timer);
    snprintf(result, sizeof result, "verified: pid %d running, %zu check(s) passing %llu ms after spawn",
             (int)s->pid, s->n_checks, (unsigned long long)took);
    bool had_action = s->action_active;
    if (had_action)
        executor__finish(s, ACTION_COMPLETED, result);
    int resolved = analyzer_resolve_all(s, result);
    if (had_action || resolved > 0) {
        char cause[128];
        snprintf(cause, sizeof cause, "action %lld verified", (long long)s->action.id);
        state_service_event(s, EV_RECOVERY_SUCCEEDED, had_action ? cause : "service verified after start");
    }
}

static void executor__verify_timeout_cb(uv_timer_t *t)
{
    struct service *s = t->data;
    if (!s->verifying)
        return;
    if (s->n_checks == 0 && s->proc_state == PROC_RUNNING) {
        executor__verified(s); /* stayed up for restart.stable */
        return;
    }
    char result[256];
    const char *why = "checks not passing";
    for (size_t i = 0; i < s->n_checks; i++)
        if (s->checks[i].has_result && !s->checks[i].last.ok) {
            why = s->checks[i].last.reason;
            break;
        }
    snprintf(result, sizeof result, "not verified within %d ms: %s", EXECUTOR_VERIFY_MS, why);
    s->verifying = false;
    if (!s->action_active) {
        /* A plain start that never got healthy: what failed is now a fault
         * (the threshold kept counting; only the analyzer waited). */
        size_t opened = 0;
        for (size_t i = 0; i < s->n_checks; i++)
            if (s->checks[i].failing || !s->checks[i].has_result) {
                struct observation o = s->checks[i].last;
                if (!s->checks[i].has_result) {
                    o = (struct observation){.type = FAULT_SOFTWARE, .severity = SEVERITY_HIGH,
                                             .code = -1};
                    snprintf(o.reason, sizeof o.reason, "%s", result);
                }
                analyzer_check_failing(s, i, &o);
                opened++;
            }
        if (opened == 0 && s->n_checks > 0) {
            struct observation o = s->checks[0].last;
            snprintf(o.reason, sizeof o.reason, "%s", result);
            analyzer_check_failing(s, 0, &o);
        }
        return;
    }
    executor__finish(s, ACTION_FAILED, result);
    state_service_event(s, EV_RECOVERY_FAILED, result);
    executor__begin(s);
}

static void executor__start_verifying(struct service *s)
{
    s->verifying = true;
    check_reset_streaks(s);
    check_start_all(s, EXECUTOR_FIRST_PROBE_MS);
    uint64_t window = s->n_checks ? EXECUTOR_VERIFY_MS : s->cfg->restart.stable_ms;
    uv_timer_start(&s->verify_timer, executor__verify_timeout_cb, window, 0);
}

static void executor__spawn(struct service *s)
{
    s->proc_state = PROC_DOWN;
    int r = process_spawn(s);
    if (r == 0) {
        executor__start_verifying(s);
        return;
    }
    /* The command cannot run: a fault with the reason, then a retry that
     * backs off like a crash loop, so a missing binary costs no CPU. */
    s->has_exit = false;
    analyzer_spawn_failed(s, r);
    if (s->action_active) {
        char result[256];
        snprintf(result, sizeof result, "cannot start %s: %s", s->cfg->command[0], strerror(-r));
        executor__finish(s, ACTION_FAILED, result);
        state_service_event(s, EV_RECOVERY_FAILED, result);
    }
    s->last_uptime_ms = 0;
    executor__begin(s);
}

/* One restart attempt: journal the action, then stop or wait, then spawn. */
static void executor__begin(struct service *s)
{
    if (s->action_active || s->given_up || s->d->stopping || s->retired)
        return;
    uint64_t now = executor__now_ms();
    if (!restart_allowed(s, now)) {
        char desc[256];
        snprintf(desc, sizeof desc,
                 "restart limit reached: %u restarts within %llu ms; automatic restarts stopped "
                 "until an operator acts",
                 s->cfg->restart.max, (unsigned long long)s->cfg->restart.window_ms);
        s->given_up = true;
        uv_timer_stop(&s->timer);
        if (s->proc_state == PROC_WAITING)
            s->proc_state = PROC_DOWN;
        analyzer_gave_up(s, desc);
        state_service_event(s, EV_GAVE_UP, desc);
        return;
    }
    bool running = s->proc_state == PROC_RUNNING || s->proc_state == PROC_STOPPING;
    uint64_t delay = running ? 0 : restart_delay(s, s->last_uptime_ms);
    restart_record(s, now);
    s->restarts++;

    struct action *a = &s->action;
    memset(a, 0, sizeof *a);
    a->fault_id = executor__trigger_fault(s);
    snprintf(a->service, sizeof a->service, "%s", s->name);
    a->strategy = STRATEGY_RESTART;
    a->status = ACTION_PENDING;
    a->created_ms = clock_wall_ms();
    snprintf(a->params, sizeof a->params, "{\"delay_ms\":%llu,\"attempt\":%u,\"stop\":%s}",
             (unsigned long long)delay, s->restart_log_len, running ? "true" : "false");
    journal_action_insert(s->d->journal, a);
    a->status = ACTION_EXECUTING;
    a->started_ms = clock_wall_ms();
    journal_action_update(s->d->journal, a);
    s->action_active = true;
    log_event(LOG_INFO, s->name, "action-started",
              "action=%lld fault=%lld strategy=restart delay_ms=%llu attempt=%u",
              (long long)a->id, (long long)a->fault_id, (unsigned long long)delay,
              s->restart_log_len);
    char cause[96];
    snprintf(cause, sizeof cause, "action %lld: restart", (long long)a->id);
    state_service_event(s, EV_RECOVERY_STARTED, cause);

    if (running) {
        check_stop_all(s);
        process_stop(s, STOP_RESTART);
    } else if (delay == 0) {
        executor__spawn(s);
    } else {
        s->proc_state = PROC_WAITING;
        uv_timer_start(&s->timer, executor__backoff_cb, delay, 0);
    }
}

void executor_service_start(struct service *s)
{
    executor__spawn(s);
}

void executor_fault_opened(struct service *s)
{
    executor__begin(s);
}

void executor_process_exited(struct service *s, int why, uint64_t uptime_ms)
{
    check_stop_all(s);
    s->last_uptime_ms = uptime_ms;
    bool was_verifying = s->verifying;
    s->verifying = false;
    uv_timer_stop(&s->verify_timer);
    if (s->retired) {
        service_close(s);
        return;
    }
    if (why == STOP_SHUTDOWN || s->d->stopping) {
        daemon_stop_progress(s->d);
        return;
    }
    if (why == STOP_RESTART) {
        executor__spawn(s); /* the action in progress stopped it: start again now */
        return;
    }
    /* Unexpected exit: a fault (the same one if still open). */
    analyzer_process_exited(s, s->last_exit_code, s->last_exit_signal, uptime_ms);
    if (s->action_active) {
        char result[256];
        snprintf(result, sizeof result, "process %s %d %llu ms after spawn%s",
                 s->last_exit_signal ? "killed by signal" : "exited with code",
                 s->last_exit_signal ? s->last_exit_signal : (int)s->last_exit_code,
                 (unsigned long long)uptime_ms, was_verifying ? ", before verification" : "");
        executor__finish(s, ACTION_FAILED, result);
        state_service_event(s, EV_RECOVERY_FAILED, result);
    }
    executor__begin(s);
}

void executor_check_reported(struct service *s)
{
    if (s->verifying && s->proc_state == PROC_RUNNING && s->n_checks > 0 && check_all_passing(s))
        executor__verified(s);
}

void executor_abort(struct service *s, const char *why)
{
    uv_timer_stop(&s->verify_timer);
    s->verifying = false;
    if (s->action_active)
        executor__finish(s, ACTION_ABORTED, why);
}
