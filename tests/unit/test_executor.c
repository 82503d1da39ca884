/* Unit tests of the recovery executor (recover/executor.c) with the real
 * parts around it, wired the way daemon/service.c wires them: a monitor,
 * a journal, the analyzer's faults, a supervisor of real processes, and
 * checks of a fake kind that pass while a file exists. The strategies are
 * the real ones (restart of `sleep`, repair programs built from sh).
 * Every assertion is about states and outcomes, never about durations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "analyze/analyzer.h"
#include "config/config-t.h"
#include "detect/check.h"
#include "detect/detector.h"
#include "lib/clock.h"
#include "lib/jsonw.h"
#include "lib/model.h"
#include "monitor/state.h"
#include "recover/executor.h"
#include "recover/pace.h"
#include "recover/strategy.h"
#include "recover/supervisor.h"
#include "store/journal.h"

#include "recfix.h"

/* The members recovery_view writes, read back as a JSON object. */
static json_t *view_of(const struct recovery *r)
{
    struct jsonw w = {0};
    size_t len = 0;
    jsonw_object(&w);
    recovery_view(r, &w);
    jsonw_object_end(&w);
    char *text = jsonw_finish(&w, &len);
    assert_non_null(text);
    json_t *v = json_loadb(text, len, 0, NULL);
    free(text);
    assert_non_null(v);
    return v;
}

/* ---- names ---- */

static void recovery_names_spell_states_and_events(void **state)
{
    (void)state;
    static const char *const states[] = {"idle",      "correlating", "pending",
                                         "executing", "verifying",   "gave-up"};
    static const char *const events[] = {"start",
                                         "check-failing",
                                         "check-reported",
                                         "exited",
                                         "timer",
                                         "slot",
                                         "executed",
                                         "hold",
                                         "release",
                                         "operator",
                                         "dependency-recovered",
                                         "abort"};
    for (int s = 0; s < REC__COUNT; s++)
        assert_string_equal(recovery_state_name((enum recovery_state)s), states[s]);
    for (int e = 0; e < REC_EV__COUNT; e++)
        assert_string_equal(recovery_event_name((enum recovery_event)e), events[e]);
    assert_string_equal(recovery_state_name(REC__COUNT), "unknown");
    assert_string_equal(recovery_event_name(REC_EV__COUNT), "unknown");
}

/* ---- start ---- */

/* A watched service whose checks pass: verified once, ready, nothing else. */
static void start_of_a_healthy_watched_service_is_verified(void **state)
{
    struct fixture *fx = *state;
    struct svc *s = svc_new(fx, "web");
    touch(s->ok_path);
    svc_start(s);
    assert_int_equal(s->rec.state, REC_IDLE);
    assert_true(s->rec.ready);
    assert_int_equal(s->ready, 1);
    assert_int_equal(s->st.state, STATE_NORMAL);
    assert_int_equal(n_actions(s), 0);
    assert_int_equal(open_faults_in_journal(s), 0);
    assert_false(s->checks.verifying);
    assert_true(s->checks.probing);
    assert_null(recovery_busy(&s->rec));
}

/* A supervised service without checks is verified by staying up for
 * restart.stable; its process keeps running. */
static void start_of_a_supervised_service_spawns_and_verifies(void **state)
{
    struct fixture *fx = *state;
    struct svc *s = svc_new(fx, "web");
    svc_command(s, "exec sleep 100");
    svc_no_checks(s);
    svc_start(s);
    assert_int_equal(s->sup.state, SUP_RUNNING);
    assert_int_equal(s->rec.state, REC_IDLE);
    assert_int_equal(fx->ex.starting, 0);
    assert_int_equal(n_actions(s), 0);
}

/* A service without checks, started with pace's spawner in use: its
 * first spawn goes to the spawner's threads. */
static struct svc *start_on_pace_spawner(struct fixture *fx, struct pace *pace)
{
    pace_init(pace, &fx->loop, 0, PACE_EXITS);
    fx->ex.pace = pace;
    struct svc *s = svc_new(fx, "web");
    svc_command(s, "exec sleep 100");
    svc_no_checks(s);
    svc_init(s);
    recovery_event(&s->rec, REC_EV_START);
    return s;
}

/* With a pace that has a spawner, the start's spawn runs on its threads
 * too (the loop does not wait for the exec): the service is spawning, no
 * pid yet, when the start returns, and is verified once the spawn has
 * reported. */
static void start_spawns_on_the_pace_spawner_then_verifies(void **state)
{
    struct fixture *fx = *state;
    static struct pace pace; /* its handles finish closing in the teardown */
    struct svc *s = start_on_pace_spawner(fx, &pace);
    assert_int_equal(s->sup.state, SUP_SPAWNING);
    assert_int_equal(s->sup.pid, 0);
    assert_int_equal(s->rec.state, REC_IDLE);
    loopwait_until(&fx->loop, s->ready > 0);
    assert_int_equal(s->sup.state, SUP_RUNNING);
    assert_true(s->sup.pid > 0);
    assert_int_equal(s->rec.state, REC_IDLE);
    assert_int_equal(n_actions(s), 0);
    fx->ex.pace = NULL;
    pace_close(&pace);
}

/* A stop while the start's spawn runs on the spawner: the process is
 * stopped once its pid is known, and the spawn's report starts no
 * verification. */
static void stop_while_the_start_spawns_starts_nothing(void **state)
{
    struct fixture *fx = *state;
    static struct pace pace;
    struct svc *s = start_on_pace_spawner(fx, &pace);
    assert_int_equal(s->sup.state, SUP_SPAWNING);
    recovery_abort(&s->rec, "stopping");
    supervisor_event(&s->sup, SUP_EV_STOP, STOP_SHUTDOWN);
    loopwait_until(&fx->loop, s->sup.state == SUP_DOWN && s->sup.has_exit);
    assert_int_equal(s->rec.state, REC_IDLE);
    assert_int_equal(s->ready, 0);
    assert_false(s->checks.verifying);
    fx->ex.pace = NULL;
    pace_close(&pace);
}

/* ---- repair: verification passes ---- */

/* The check fails, a fault opens, the repair runs and fixes it, the checks
 * pass again: the action completes, the fault resolves, the service goes
 * degraded > recovering > recovered. */
static void repair_that_works_is_verified_and_resolves_the_fault(void **state)
{
    struct fixture *fx = *state;
    struct svc *s = svc_new(fx, "web");
    touch(s->ok_path);
    svc_repair(s, "touch ok_web");
    svc_chain(s, 1, STRATEGY_REPAIR);
    svc_start(s);
    unlink(s->ok_path);
    loopwait_until(&fx->loop, n_actions(s) == 1 && idle_without_action(s));
    assert_action(s, 0, "repair", "completed", "verified: 1 check(s) passing");
    json_t *acts = actions_of(s);
    json_t *params = json_object_get(json_array_get(acts, 0), "params");
    assert_string_equal(json_string_value(json_object_get(params, "program")), "/bin/sh");
    json_decref(acts);
    assert_int_equal(open_faults_in_journal(s), 0);
    assert_false(analyzer_has_open(&s->faults));
    assert_int_equal(s->st.open_faults, 0);
    assert_int_equal(s->recovered, 1);
    assert_int_equal(fx->ex.executing, 0);
    loopwait_until(&fx->loop, s->st.state == STATE_NORMAL); /* after the quiet period */
    assert_state_path(s, "normal>degraded>recovering>recovered>normal");
}

/* ---- escalation ---- */

/* The first strategy fails: the next one runs. Repair (exit 1), then a
 * restart whose new process brings the check back. */
static void failed_strategy_escalates_to_the_next(void **state)
{
    struct fixture *fx = *state;
    struct svc *s = svc_new(fx, "web");
    svc_command(s, "touch ok_web; exec sleep 100");
    svc_repair(s, "echo cannot repair; exit 1");
    svc_chain(s, 2, STRATEGY_REPAIR, STRATEGY_RESTART);
    svc_start(s);
    pid_t first = s->sup.pid;
    unlink(s->ok_path);
    loopwait_until(&fx->loop, n_actions(s) == 2 && idle_without_action(s));
    assert_action(s, 0, "repair", "failed", "repair program exited with code 1");
    json_t *acts = actions_of(s);
    assert_non_null(strstr(json_string_value(json_object_get(json_array_get(acts, 0), "result")),
                           "cannot repair"));
    /* Both actions are for the same fault. */
    assert_int_equal(json_integer_value(json_object_get(json_array_get(acts, 0), "fault_id")),
                     json_integer_value(json_object_get(json_array_get(acts, 1), "fault_id")));
    json_decref(acts);
    assert_action(s, 1, "restart", "completed", "verified: pid");
    assert_int_equal(s->sup.state, SUP_RUNNING);
    assert_int_not_equal(s->sup.pid, first);
    assert_int_equal(open_faults_in_journal(s), 0);
    assert_int_equal(s->st.state, STATE_RECOVERED);
    assert_int_equal(fx->ex.starting, 0);
}

/* ---- gave up ---- */

/* The only strategy fails: the chain is exhausted, the service failed, a
 * critical fault stays open (the system is failed too); an operator's
 * release after the cause went away verifies it and everything closes. */
static void exhausted_chain_gives_up_until_released(void **state)
{
    struct fixture *fx = *state;
    struct svc *s = svc_new(fx, "web");
    touch(s->ok_path);
    svc_repair(s, "exit 2");
    svc_chain(s, 1, STRATEGY_REPAIR);
    s->cfg.verify_ms = 300;
    svc_start(s);
    unlink(s->ok_path);
    loopwait_until(&fx->loop, s->rec.state == REC_GAVE_UP);
    assert_action(s, 0, "repair", "failed", "repair program exited with code 2");
    assert_int_equal(s->st.state, STATE_FAILED);
    assert_int_equal(fx->m.state, STATE_FAILED);
    assert_true(s->faults.slots[SLOT_SUPERVISOR(&s->faults)].open);
    assert_int_equal(s->faults.slots[SLOT_SUPERVISOR(&s->faults)].fault->severity,
                     SEVERITY_CRITICAL);
    assert_int_equal(s->st.critical, 1);
    assert_int_equal(open_faults_in_journal(s), 2); /* the check's and the supervisor's */
    assert_non_null(recovery_busy(&s->rec));
    /* Gave up: nothing more happens on its own while it still fails. */
    uint64_t probes = s->checks.checks[0].probes;
    loopwait_until(&fx->loop, s->checks.checks[0].probes >= probes + 10);
    assert_int_equal(s->rec.state, REC_GAVE_UP);
    assert_int_equal(n_actions(s), 1);
    /* Fixed by hand; once the check passes again, released: re-checked
     * (verified, not recovered again), and everything resolves. */
    touch(s->ok_path);
    loopwait_until(&fx->loop, !s->checks.checks[0].failing);
    assert_int_equal(s->rec.state, REC_GAVE_UP); /* passing checks alone do not end it */
    assert_int_equal(recovery_release(&s->rec), 0);
    assert_false(s->faults.slots[SLOT_SUPERVISOR(&s->faults)].open);
    loopwait_until(&fx->loop, s->rec.state == REC_IDLE && !analyzer_has_open(&s->faults));
    assert_int_equal(n_actions(s), 1);
    assert_int_equal(open_faults_in_journal(s), 0);
    assert_int_equal(s->st.state, STATE_RECOVERED);
    assert_int_not_equal(fx->m.state, STATE_FAILED);
    assert_int_equal(fx->m.critical_faults, 0);
}

/* Released while the check still fails: re-checked first (the check is
 * judged afresh: it fails `fall` times again), then the plan runs again,
 * and gives up again. */
static void release_while_still_failing_runs_the_plan_again(void **state)
{
    struct fixture *fx = *state;
    struct svc *s = svc_new(fx, "web");
    touch(s->ok_path);
    svc_repair(s, "exit 2");
    svc_chain(s, 1, STRATEGY_REPAIR);
    s->cfg.verify_ms = 200;
    svc_start(s);
    unlink(s->ok_path);
    loopwait_until(&fx->loop, s->rec.state == REC_GAVE_UP);
    assert_true(s->checks.checks[0].failing);
    assert_int_equal(recovery_release(&s->rec), 0);
    assert_int_equal(s->rec.state, REC_VERIFYING);
    assert_false(s->rec.has_action);
    loopwait_until(&fx->loop, n_actions(s) == 2 && s->rec.state == REC_GAVE_UP);
    assert_action(s, 1, "repair", "failed", "repair program exited with code 2");
}

/* ---- verification timeout ---- */

/* The repair runs (exit 0) but the checks never pass: not verified within
 * verify_ms, the action failed, the chain exhausted. */
static void repair_not_verified_in_time_fails(void **state)
{
    struct fixture *fx = *state;
    struct svc *s = svc_new(fx, "web");
    touch(s->ok_path);
    svc_repair(s, "true");
    svc_chain(s, 1, STRATEGY_REPAIR);
    s->cfg.verify_ms = 300;
    svc_start(s);
    unlink(s->ok_path);
    loopwait_until(&fx->loop, s->rec.state == REC_GAVE_UP);
    assert_action(s, 0, "repair", "failed", "not verified within 300 ms: file missing");
    assert_false(s->checks.verifying);
    assert_int_equal(s->st.state, STATE_FAILED);
}

/* ---- action timeout ---- */

/* An action running past action_timeout fails, and its program is killed. */
static void action_past_its_timeout_fails_and_is_cancelled(void **state)
{
    struct fixture *fx = *state;
    struct svc *s = svc_new(fx, "web");
    touch(s->ok_path);
    svc_repair(s, "echo $$ > repair.pid; exec sleep 60");
    svc_chain(s, 1, STRATEGY_REPAIR);
    fx->ex.action_timeout_ms = 300;
    svc_start(s);
    unlink(s->ok_path);
    loopwait_until(&fx->loop, s->rec.state == REC_EXECUTING && read_pid(fx, "repair.pid") > 0);
    pid_t pid = read_pid(fx, "repair.pid");
    loopwait_until(&fx->loop, s->rec.state == REC_GAVE_UP);
    assert_action(s, 0, "repair", "failed", "timed out after 300 ms");
    assert_int_equal(fx->ex.executing, 0);
    /* The program is gone (killed, then reaped by the loop). */
    loopwait_until(&fx->loop, kill(pid, 0) < 0 && errno == ESRCH);
}

/* ---- hold and release ---- */

/* Held: detection goes on (the fault opens) but nothing is done; released
 * while the check still fails: the plan runs at once (a release re-checks
 * first only when no check is failing). */
static void hold_pauses_recovery_and_release_resumes_it(void **state)
{
    struct fixture *fx = *state;
    struct svc *s = svc_new(fx, "web");
    touch(s->ok_path);
    svc_repair(s, "touch ok_web");
    svc_chain(s, 1, STRATEGY_REPAIR);
    s->cfg.verify_ms = 200;
    svc_start(s);
    assert_int_equal(recovery_hold(&s->rec), 0);
    assert_true(s->rec.held);
    json_t *view = view_of(&s->rec);
    assert_true(json_is_true(json_object_get(view, "held")));
    json_decref(view);
    unlink(s->ok_path);
    loopwait_until(&fx->loop, analyzer_has_open(&s->faults));
    uint64_t probes = s->checks.checks[0].probes;
    loopwait_until(&fx->loop, s->checks.checks[0].probes >= probes + 10);
    assert_int_equal(s->rec.state, REC_IDLE);
    assert_int_equal(n_actions(s), 0);
    assert_int_equal(s->st.state, STATE_DEGRADED);
    assert_int_equal(recovery_release(&s->rec), 0);
    assert_false(s->rec.held);
    assert_int_equal(s->rec.state, REC_VERIFYING); /* re-checked before anything is done */
    loopwait_until(&fx->loop, n_actions(s) == 1 && idle_without_action(s));
    assert_action(s, 0, "repair", "completed", "verified");
    assert_false(analyzer_has_open(&s->faults));
}

/* Held while the fault resolves by itself: the checks pass again and the
 * fault closes, held or not. */
static void held_service_still_resolves_when_checks_pass(void **state)
{
    struct fixture *fx = *state;
    struct svc *s = svc_new(fx, "web");
    touch(s->ok_path);
    svc_repair(s, "touch ok_web");
    svc_chain(s, 1, STRATEGY_REPAIR);
    svc_start(s);
    recovery_hold(&s->rec);
    unlink(s->ok_path);
    loopwait_until(&fx->loop, analyzer_has_open(&s->faults));
    touch(s->ok_path);
    loopwait_until(&fx->loop, !analyzer_has_open(&s->faults));
    assert_int_equal(n_actions(s), 0);
    assert_true(s->rec.held);
    assert_int_equal(s->st.state, STATE_RECOVERED);
    assert_int_equal(s->recovered, 1);
}

/* A pending action (no slot free) is dropped by a hold. */
static void hold_aborts_a_pending_action(void **state)
{
    struct fixture *fx = *state;
    struct svc *s = svc_new(fx, "web");
    touch(s->ok_path);
    svc_repair(s, "touch ok_web");
    svc_chain(s, 1, STRATEGY_REPAIR);
    svc_start(s);
    fx->ex.max_executing = 0; /* nothing may run */
    unlink(s->ok_path);
    loopwait_until(&fx->loop, s->rec.state == REC_PENDING && s->rec.queued);
    assert_ptr_equal(fx->ex.queue, &s->rec);
    recovery_hold(&s->rec);
    assert_int_equal(s->rec.state, REC_IDLE);
    assert_false(s->rec.queued);
    assert_null(fx->ex.queue);
    assert_action(s, 0, "repair", "aborted", "aborted: service held by an operator");
}

/* Held while an action executes: the action finishes and is verified. */
static void hold_lets_an_executing_action_finish(void **state)
{
    struct fixture *fx = *state;
    struct svc *s = svc_new(fx, "web");
    touch(s->ok_path);
    svc_repair(s, "while [ ! -e go ]; do sleep 0.01; done; touch ok_web");
    svc_chain(s, 1, STRATEGY_REPAIR);
    svc_start(s);
    unlink(s->ok_path);
    loopwait_until(&fx->loop, s->rec.state == REC_EXECUTING);
    recovery_hold(&s->rec);
    assert_int_equal(s->rec.state, REC_EXECUTING);
    touch_in(fx, "go");
    loopwait_until(&fx->loop, idle_without_action(s) && n_actions(s) == 1);
    assert_action(s, 0, "repair", "completed", "verified");
    assert_true(s->rec.held);
}

/* ---- abort ---- */

static void abort_ends_an_executing_action(void **state)
{
    struct fixture *fx = *state;
    struct svc *s = svc_new(fx, "web");
    touch(s->ok_path);
    svc_repair(s, "echo $$ > repair.pid; exec sleep 60");
    svc_chain(s, 1, STRATEGY_REPAIR);
    svc_start(s);
    unlink(s->ok_path);
    loopwait_until(&fx->loop, s->rec.state == REC_EXECUTING && read_pid(fx, "repair.pid") > 0);
    pid_t pid = read_pid(fx, "repair.pid");
    recovery_abort(&s->rec, "aborted: by the test");
    assert_int_equal(s->rec.state, REC_IDLE);
    assert_int_equal(fx->ex.executing, 0);
    assert_action(s, 0, "repair", "aborted", "aborted: by the test");
    loopwait_until(&fx->loop, kill(pid, 0) < 0 && errno == ESRCH);
}

/* ---- the queue ---- */

/* max_executing 1: one action at a time; a waiting first attempt goes
 * ahead of a service's second attempt, whatever their ages. Each repair
 * waits for its go_<name> file, so the test decides when slots free up. */
static void queue_runs_first_attempts_first(void **state)
{
    struct fixture *fx = *state;
    fx->ex.max_executing = 1;
    struct svc *a = svc_new(fx, "a"), *b = svc_new(fx, "b"), *c = svc_new(fx, "c");
    svc_repair(a, "while [ ! -e go_a ]; do sleep 0.01; done; touch ok_a");
    svc_repair(b, "while [ ! -e go_b ]; do sleep 0.01; done; exit 1");
    svc_repair(c, "while [ ! -e go_c ]; do sleep 0.01; done; touch ok_c");
    svc_chain(a, 1, STRATEGY_REPAIR);
    svc_chain(b, 2, STRATEGY_REPAIR, STRATEGY_REPAIR);
    svc_chain(c, 1, STRATEGY_REPAIR);
    struct svc *all[] = {a, b, c};
    for (int i = 0; i < 3; i++) {
        touch(all[i]->ok_path);
        svc_start(all[i]);
    }
    /* b's first attempt takes the slot; a's waits. */
    unlink(b->ok_path);
    loopwait_until(&fx->loop, b->rec.state == REC_EXECUTING);
    unlink(a->ok_path);
    loopwait_until(&fx->loop, pending_queued(a));
    assert_int_equal(fx->ex.executing, 1);
    /* b's first attempt fails: the slot goes to a; b's second attempt waits. */
    touch_in(fx, "go_b");
    loopwait_until(&fx->loop, a->rec.state == REC_EXECUTING && pending_queued(b));
    assert_int_equal(b->rec.attempts, 1);
    assert_int_equal(fx->ex.executing, 1);
    /* c's first attempt, newer than b's second, goes ahead of it. */
    unlink(c->ok_path);
    loopwait_until(&fx->loop, pending_queued(c));
    assert_ptr_equal(fx->ex.queue, &c->rec);
    assert_ptr_equal(c->rec.next, &b->rec);
    assert_null(b->rec.next);
    /* a is done: c runs, b still waits. */
    touch_in(fx, "go_a");
    loopwait_until(&fx->loop, c->rec.state == REC_EXECUTING);
    assert_true(pending_queued(b));
    assert_int_equal(fx->ex.executing, 1);
    /* c is done: b's second attempt runs (and fails: go_b is there). */
    touch_in(fx, "go_c");
    loopwait_until(&fx->loop, b->rec.state == REC_GAVE_UP);
    loopwait_until(&fx->loop, idle_without_action(a) && idle_without_action(c));
    assert_action(a, 0, "repair", "completed", "verified");
    assert_action(c, 0, "repair", "completed", "verified");
    assert_action(b, 0, "repair", "failed", "repair program exited with code 1");
    assert_action(b, 1, "repair", "failed", "repair program exited with code 1");
    assert_int_equal(fx->ex.executing, 0);
    assert_null(fx->ex.queue);
    /* From the journal: rows are in creation order (b, a, b, c), and c's
     * action, created after b's second, started no later than it. */
    json_t *acts = journal_actions_json(fx->journal, 0, 0, 100);
    static const char *const created[] = {"b", "a", "b", "c"};
    assert_int_equal(json_array_size(acts), 4);
    for (size_t i = 0; i < 4; i++) {
        json_t *act = json_array_get(acts, 3 - i); /* oldest first */
        assert_string_equal(json_string_value(json_object_get(act, "service")), created[i]);
    }
    const char *b2 = json_string_value(json_object_get(json_array_get(acts, 1), "started_at"));
    const char *c1 = json_string_value(json_object_get(json_array_get(acts, 0), "started_at"));
    bool in_order = b2 && c1 && strcmp(c1, b2) <= 0;
    json_decref(acts);
    assert_true(in_order);
}

/* Equal attempts: the older action first. */
static void queue_runs_older_actions_first(void **state)
{
    struct fixture *fx = *state;
    fx->ex.max_executing = 1;
    struct svc *a = svc_new(fx, "a"), *b = svc_new(fx, "b"), *c = svc_new(fx, "c");
    svc_repair(a, "while [ ! -e go_a ]; do sleep 0.01; done; touch ok_a");
    svc_repair(b, "touch ok_b");
    svc_repair(c, "touch ok_c");
    struct svc *all[] = {a, b, c};
    for (int i = 0; i < 3; i++) {
        svc_chain(all[i], 1, STRATEGY_REPAIR);
        touch(all[i]->ok_path);
        svc_start(all[i]);
    }
    unlink(a->ok_path);
    loopwait_until(&fx->loop, a->rec.state == REC_EXECUTING);
    unlink(c->ok_path);
    loopwait_until(&fx->loop, pending_queued(c));
    unlink(b->ok_path);
    loopwait_until(&fx->loop, pending_queued(b));
    assert_ptr_equal(fx->ex.queue, &c->rec);
    assert_ptr_equal(c->rec.next, &b->rec);
    touch_in(fx, "go_a");
    loopwait_until(&fx->loop,
                   idle_without_action(a) && idle_without_action(b) && idle_without_action(c));
    json_t *acts = journal_actions_json(fx->journal, 0, 0, 100);
    static const char *const order[] = {"a", "c", "b"};
    size_t n = json_array_size(acts);
    bool ok = n == 3;
    for (size_t i = 0; ok && i < 3; i++) {
        json_t *act = json_array_get(acts, 2 - i);
        ok = strcmp(json_string_value(json_object_get(act, "service")), order[i]) == 0 &&
             strcmp(json_string_value(json_object_get(act, "status")), "completed") == 0;
    }
    json_decref(acts);
    assert_true(ok);
}

/* ---- restart of real processes ---- */

/* A process that ran past restart.stable and dies is spawned again at
 * once, then verified by staying up: the action completes, the fault
 * resolves. */
static void crash_after_stable_is_restarted_and_verified(void **state)
{
    struct fixture *fx = *state;
    struct svc *s = svc_new(fx, "web");
    svc_command(s, "exec sleep 100");
    svc_no_checks(s);
    s->restart->stable_ms = 100;
    svc_start(s);
    pid_t first = s->sup.pid;
    /* Past stable (the start's own verification needed that long). */
    kill(first, SIGKILL);
    loopwait_until(&fx->loop, n_actions(s) == 1 && idle_without_action(s));
    assert_action(s, 0, "restart", "completed", "verified: pid");
    assert_int_equal(s->sup.state, SUP_RUNNING);
    assert_int_not_equal(s->sup.pid, first);
    assert_int_equal(open_faults_in_journal(s), 0);
    assert_true(s->faults.slots[SLOT_PROCESS].fault->id > 0);
    assert_non_null(strstr(s->faults.slots[SLOT_PROCESS].fault->description, "signal 9"));
    json_t *view = view_of(&s->rec);
    assert_int_equal(json_integer_value(json_object_get(view, "restarts")), 1);
    json_decref(view);
}

/* What a storm test watches once per loop turn (a check callback: after
 * the turn's timers, idle slices and I/O). */
struct storm_watch {
    struct fixture *fx;
    uv_check_t turn;
    unsigned turns;
    pid_t old[MAX_SVC];           /* the killed processes */
    unsigned started_at[MAX_SVC]; /* the turn its new process was first seen starting in (spawning
                                   * on the pace's spawner, or running); 0: not yet */
};

static void storm_turn_cb(uv_check_t *h)
{
    struct storm_watch *w = h->data;
    w->turns++;
    for (size_t i = 0; i < w->fx->n; i++) {
        struct supervisor *sp = &w->fx->svc[i]->sup;
        if (!w->started_at[i] &&
            (sp->state == SUP_SPAWNING || (sp->state == SUP_RUNNING && sp->pid != w->old[i])))
            w->started_at[i] = w->turns;
    }
}

static bool storm_all_restarted(struct fixture *fx)
{
    for (size_t i = 0; i < fx->n; i++)
        if (n_actions(fx->svc[i]) != 1 || !idle_without_action(fx->svc[i]))
            return false;
    return true;
}

/* Services killed together are restarted across loop turns when the pace
 * allows one piece of work per turn: one spawn per turn at most, first
 * exited first restarted, every restart completed; while a restart waits
 * its turn, its action is pending in the queue. */
static void storm_restarts_are_paced_one_spawn_per_turn_in_exit_order(void **state)
{
    struct fixture *fx = *state;
    /* Their handles finish closing in the fixture's teardown. */
    static struct pace pace;
    static struct storm_watch w;
    static const char *names[MAX_SVC] = {"a", "b", "c", "d"};
    w = (struct storm_watch){.fx = fx};
    pace_init(&pace, &fx->loop, 0, PACE_EXITS);
    fx->ex.pace = &pace;
    for (int i = 0; i < MAX_SVC; i++) {
        struct svc *s = svc_new(fx, names[i]);
        svc_command(s, "exec sleep 100");
        svc_no_checks(s);
        s->restart->stable_ms = 1;
        svc_start(s);
    }
    /* Past stable; each a zombie before the next dies: exits in this order. */
    for (int i = 0; i < MAX_SVC; i++) {
        siginfo_t si;
        w.old[i] = fx->svc[i]->sup.pid;
        kill(w.old[i], SIGKILL);
        assert_int_equal(waitid(P_PID, (id_t)w.old[i], &si, WEXITED | WNOWAIT), 0);
    }
    uv_check_init(&fx->loop, &w.turn);
    w.turn.data = &w;
    uv_check_start(&w.turn, storm_turn_cb);
    bool saw_pending = false;
    while (!storm_all_restarted(fx)) {
        uv_run(&fx->loop, UV_RUN_ONCE);
        for (int i = 0; i < MAX_SVC; i++)
            saw_pending |= fx->svc[i]->rec.state == REC_PENDING && fx->svc[i]->rec.queued &&
                           fx->svc[i]->sup.state == SUP_DOWN;
        assert_true(w.turns < 100000);
    }
    uv_close((uv_handle_t *)&w.turn, NULL);
    assert_true(saw_pending);
    for (int i = 0; i < MAX_SVC; i++) {
        assert_action(fx->svc[i], 0, "restart", "completed", "verified: pid");
        assert_true(w.started_at[i] > 0);
        if (i > 0)
            assert_true(w.started_at[i] > w.started_at[i - 1]); /* later, and in another turn */
    }
    fx->ex.pace = NULL;
    pace_close(&pace);
}

/* A restart whose spawn is on the spawner's threads holds no slot: with
 * max_executing 1 and the spawner held (both spawns in flight), both
 * restarts run; `starting` still counts each until it is verified. */
static void restart_in_flight_on_the_spawner_holds_no_slot(void **state)
{
    struct fixture *fx = *state;
    static struct pace pace; /* its handles finish closing in the teardown */
    pace_init(&pace, &fx->loop, PACE_BUDGET_US, PACE_EXITS);
    fx->ex.pace = &pace;
    fx->ex.max_executing = 1;
    static const char *names[] = {"a", "b"};
    for (int i = 0; i < 2; i++) {
        struct svc *s = svc_new(fx, names[i]);
        svc_command(s, "exec sleep 100");
        svc_no_checks(s);
        s->restart->stable_ms = 1;
        svc_start(s);
    }
    spawner_hold(&pace.spawner, true);
    for (int i = 0; i < 2; i++)
        kill(fx->svc[i]->sup.pid, SIGKILL);
    loopwait_until(&fx->loop, fx->svc[0]->rec.state == REC_EXECUTING &&
                                  fx->svc[1]->rec.state == REC_EXECUTING);
    assert_int_equal(fx->svc[0]->sup.state, SUP_SPAWNING);
    assert_int_equal(fx->svc[1]->sup.state, SUP_SPAWNING);
    assert_int_equal(fx->ex.executing, 0);
    assert_int_equal(fx->ex.starting, 2);
    spawner_hold(&pace.spawner, false);
    loopwait_until(&fx->loop, idle_without_action(fx->svc[0]) && idle_without_action(fx->svc[1]));
    for (int i = 0; i < 2; i++)
        assert_action(fx->svc[i], 0, "restart", "completed", "verified: pid");
    assert_int_equal(fx->ex.starting, 0);
    fx->ex.pace = NULL;
    pace_close(&pace);
}

/* A crash loop: every restart dies before verification, the restart limit
 * is reached, the service gives up. */
static void crash_loop_reaches_the_restart_limit_and_gives_up(void **state)
{
    struct fixture *fx = *state;
    struct svc *s = svc_new(fx, "web");
    svc_command(s, "exit 1");
    svc_no_checks(s);
    s->restart->max = 2;
    s->restart->stable_ms = 5000;
    svc_init(s);
    recovery_event(&s->rec, REC_EV_START);
    loopwait_until(&fx->loop, s->rec.state == REC_GAVE_UP);
    assert_int_equal(n_actions(s), 2);
    for (size_t k = 0; k < 2; k++)
        assert_action(s, k, "restart", "failed", "process exited with code 1");
    assert_int_equal(s->sup.state, SUP_DOWN);
    assert_int_equal(s->st.state, STATE_FAILED);
    assert_non_null(strstr(s->faults.slots[SLOT_SUPERVISOR(&s->faults)].fault->description,
                           "restart limit reached"));
    assert_true(s->rec.ready); /* had its chance: dependents may start */
    assert_int_equal(fx->ex.starting, 0);
}

/* A command that cannot start: each restart fails to spawn (and backs
 * off), the limit is reached, the service gives up. */
static void missing_binary_gives_up_after_the_restart_limit(void **state)
{
    struct fixture *fx = *state;
    struct svc *s = svc_new(fx, "web");
    s->cmd[0] = "/nonexistent/recoverd-test-binary";
    s->cmd[1] = NULL;
    s->cfg.command = s->cmd;
    svc_no_checks(s);
    s->restart->max = 2;
    svc_init(s);
    recovery_event(&s->rec, REC_EV_START);
    loopwait_until(&fx->loop, s->rec.state == REC_GAVE_UP);
    assert_int_equal(n_actions(s), 2);
    for (size_t k = 0; k < 2; k++)
        assert_action(s, k, "restart", "failed",
                      "cannot start /nonexistent/recoverd-test-binary: No such file");
    assert_non_null(strstr(s->faults.slots[SLOT_PROCESS].fault->description, "cannot start"));
    assert_int_equal(s->sup.state, SUP_DOWN);
}

/* A process that ran long dies and its command is gone meanwhile (or
 * recoverd is out of descriptors): its immediate respawn fails, and every
 * restart after it waits a growing backoff, not the long-lived exit's zero
 * (which spun through the restart limit in a millisecond). */
static void failed_spawns_back_off_after_a_stable_process_dies(void **state)
{
    struct fixture *fx = *state;
    struct svc *s = svc_new(fx, "web");
    char bin[192];
    snprintf(bin, sizeof bin, "%s/web-bin", fx->dir);
    FILE *f = fopen(bin, "w");
    assert_non_null(f);
    fputs("#!/bin/sh\nexec sleep 100\n", f);
    fclose(f);
    assert_int_equal(chmod(bin, 0755), 0);
    s->cmd[0] = bin;
    s->cmd[1] = NULL;
    s->cfg.command = s->cmd;
    svc_no_checks(s);
    s->restart->max = 4;
    s->restart->stable_ms = 1;
    s->restart->backoff_initial_ms = 10;
    s->restart->backoff_max_ms = 40;
    svc_init(s);
    recovery_event(&s->rec, REC_EV_START);
    loopwait_until(&fx->loop, s->sup.state == SUP_RUNNING && idle_without_action(s));
    loopwait_nap(5); /* past `stable` */
    assert_int_equal(unlink(bin), 0);
    kill(s->sup.pid, SIGKILL);
    loopwait_until(&fx->loop, s->rec.state == REC_GAVE_UP);
    json_t *all = actions_of(s);
    assert_int_equal(json_array_size(all), 4);
    json_int_t delay[4];
    for (size_t k = 0; k < 4; k++) {
        json_t *params = json_object_get(json_array_get(all, k), "params");
        delay[k] = json_integer_value(json_object_get(params, "delay_ms"));
        assert_true(delay[k] >= 8); /* backoff_jitter takes off a fifth at most */
    }
    assert_true(delay[3] >= 32); /* doubled up to backoff max (40) */
    json_decref(all);
    for (size_t k = 0; k < 4; k++)
        assert_action(s, k, "restart", "failed", "cannot start");
}

/* ---- operator ---- */

static void operator_restart_runs_and_is_verified(void **state)
{
    struct fixture *fx = *state;
    struct svc *s = svc_new(fx, "web");
    char err[256] = "";
    svc_command(s, "touch ok_web; exec sleep 100");
    svc_start(s);
    pid_t first = s->sup.pid;
    /* What cannot be used is refused with words. */
    assert_int_equal(recovery_operate(&s->rec, 0, STRATEGY_FAILOVER, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "not implemented"));
    assert_int_equal(recovery_operate(&s->rec, 0, STRATEGY_REPAIR, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "not configured"));
    assert_int_equal(recovery_operate(&s->rec, 12345, STRATEGY_RESTART, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "fault 12345 is not open"));
    assert_int_equal(n_actions(s), 0);
    /* A restart: stop, spawn, verify. */
    assert_int_equal(recovery_operate(&s->rec, 0, STRATEGY_RESTART, err, sizeof err), 0);
    assert_int_equal(s->rec.state, REC_EXECUTING);
    assert_int_equal(recovery_operate(&s->rec, 0, STRATEGY_RESTART, err, sizeof err), -EBUSY);
    assert_non_null(strstr(err, "in progress"));
    loopwait_until(&fx->loop, n_actions(s) == 1 && idle_without_action(s));
    assert_action(s, 0, "restart", "completed", "verified: pid");
    assert_int_not_equal(s->sup.pid, first);
    assert_int_equal(s->sup.state, SUP_RUNNING);
    assert_int_equal(open_faults_in_journal(s), 0);
}

/* Recovering an open fault by hand with the strategy the operator names. */
static void operator_recovers_an_open_fault_with_a_chosen_strategy(void **state)
{
    struct fixture *fx = *state;
    struct svc *s = svc_new(fx, "web");
    char err[256] = "";
    touch(s->ok_path);
    svc_repair(s, "touch ok_web");
    svc_chain(s, 1, STRATEGY_REPAIR);
    svc_start(s);
    recovery_hold(&s->rec);
    unlink(s->ok_path);
    loopwait_until(&fx->loop, analyzer_has_open(&s->faults));
    int64_t id = analyzer_trigger(&s->faults)->id;
    assert_int_equal(recovery_operate(&s->rec, id, STRATEGY_REPAIR, err, sizeof err), 0);
    loopwait_until(&fx->loop, n_actions(s) == 1 && idle_without_action(s));
    assert_action(s, 0, "repair", "completed", "verified");
    json_t *acts = actions_of(s);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(acts, 0), "fault_id")), id);
    json_decref(acts);
    assert_false(analyzer_has_open(&s->faults));
}

/* ---- nothing to act with ---- */

/* A watched service with no usable strategy: the fault is the whole
 * response (no action), and it resolves when the checks pass again. */
static void watched_service_without_strategy_only_alerts(void **state)
{
    struct fixture *fx = *state;
    struct svc *s = svc_new(fx, "web");
    touch(s->ok_path);
    svc_chain(s, 1, STRATEGY_REPAIR); /* but no repair program */
    svc_start(s);
    unlink(s->ok_path);
    loopwait_until(&fx->loop, analyzer_has_open(&s->faults));
    assert_int_equal(s->rec.state, REC_IDLE);
    assert_int_equal(n_actions(s), 0);
    assert_int_equal(s->st.state, STATE_DEGRADED);
    touch(s->ok_path);
    loopwait_until(&fx->loop, !analyzer_has_open(&s->faults));
    assert_int_equal(n_actions(s), 0);
    assert_int_equal(s->st.state, STATE_RECOVERED);
    assert_state_path(s, "normal>degraded>recovered");
}

/* ---- dependencies ---- */

/* web depends on db. db fails first; web's fault, opened while db's is
 * open, is db's symptom: nothing is done for web while db recovers. Once
 * db is recovered, web is checked again on its own: still failing, its
 * own plan runs. */
static void dependent_fault_is_a_symptom_until_the_root_recovers(void **state)
{
    struct fixture *fx = *state;
    struct svc *db = svc_new(fx, "db"), *web = svc_new(fx, "web");
    svc_repair(db, "while [ ! -e go_db ]; do sleep 0.01; done; touch ok_db");
    svc_repair(web, "touch ok_web");
    svc_chain(db, 1, STRATEGY_REPAIR);
    svc_chain(web, 1, STRATEGY_REPAIR);
    touch(db->ok_path);
    touch(web->ok_path);
    svc_init(db);
    svc_init(web);
    svc_depends(web, db);
    recovery_event(&db->rec, REC_EV_START);
    recovery_event(&web->rec, REC_EV_START);
    loopwait_until(&fx->loop, db->ready && web->ready);
    unlink(db->ok_path);
    loopwait_until(&fx->loop, db->rec.state == REC_EXECUTING);
    unlink(web->ok_path);
    loopwait_until(&fx->loop, analyzer_has_open(&web->faults));
    struct fault_slot *fs = &web->faults.slots[SLOT_CHECK(0)];
    assert_int_equal(fs->root, db->faults.slots[SLOT_CHECK(0)].fault->id);
    assert_non_null(strstr(fs->fault->description, "(symptom of db fault"));
    assert_null(analyzer_trigger(&web->faults));
    assert_int_equal(web->rec.state, REC_IDLE);
    uint64_t probes = web->checks.checks[0].probes;
    loopwait_until(&fx->loop, web->checks.checks[0].probes >= probes + 5);
    assert_int_equal(n_actions(web), 0); /* nothing for a symptom */
    /* db recovers; web, still failing, now recovers on its own. */
    touch_in(fx, "go_db");
    loopwait_until(&fx->loop, n_actions(db) == 1 && idle_without_action(db));
    assert_action(db, 0, "repair", "completed", "verified");
    loopwait_until(&fx->loop, n_actions(web) == 1 && idle_without_action(web) &&
                                  !analyzer_has_open(&web->faults));
    assert_action(web, 0, "repair", "completed", "verified");
}

/* web's check fails while db is healthy: web waits a moment (correlating)
 * for a dependency's fault, none opens, and web's fault is its own. */
static void correlation_without_a_root_cause_recovers_on_its_own(void **state)
{
    struct fixture *fx = *state;
    struct svc *db = svc_new(fx, "db"), *web = svc_new(fx, "web");
    svc_repair(web, "touch ok_web");
    svc_chain(web, 1, STRATEGY_REPAIR);
    touch(db->ok_path);
    touch(web->ok_path);
    svc_init(db);
    svc_init(web);
    svc_depends(web, db);
    recovery_event(&db->rec, REC_EV_START);
    recovery_event(&web->rec, REC_EV_START);
    loopwait_until(&fx->loop, db->ready && web->ready);
    unlink(web->ok_path);
    loopwait_until(&fx->loop, web->rec.state == REC_CORRELATING);
    assert_false(analyzer_has_open(&web->faults)); /* not yet */
    loopwait_until(&fx->loop, n_actions(web) == 1 && idle_without_action(web));
    assert_action(web, 0, "repair", "completed", "verified");
    assert_int_equal(web->faults.slots[SLOT_CHECK(0)].root, 0);
    assert_int_equal(n_actions(db), 0);
}

/* While correlating, the checks pass again: no fault at all. */
static void correlation_ends_quietly_when_checks_pass_again(void **state)
{
    struct fixture *fx = *state;
    struct svc *db = svc_new(fx, "db"), *web = svc_new(fx, "web");
    svc_repair(web, "touch ok_web");
    svc_chain(web, 1, STRATEGY_REPAIR);
    touch(db->ok_path);
    touch(web->ok_path);
    svc_init(db);
    svc_init(web);
    svc_depends(web, db);
    recovery_event(&db->rec, REC_EV_START);
    recovery_event(&web->rec, REC_EV_START);
    loopwait_until(&fx->loop, db->ready && web->ready);
    unlink(web->ok_path);
    loopwait_until(&fx->loop, web->rec.state == REC_CORRELATING);
    touch(web->ok_path);
    loopwait_until(&fx->loop, web->rec.state == REC_IDLE);
    assert_false(analyzer_has_open(&web->faults));
    assert_int_equal(n_actions(web), 0);
    assert_int_equal(web->st.state, STATE_NORMAL);
}

/* ---- regressions: two bugs the first version of these tests found ---- */

/* Was a bug (src/recover/executor.c, rec__set): a queued action that starts a
 * process waits for room under max_starting, but when a verification
 * ends rec__set() decrements ex->starting without calling rec__dequeue(),
 * so the queued restart stayed PENDING until some unrelated action released
 * a slot or enqueued. Here: max_starting 1; a's restart is verifying when
 * b's restart queues; a verifies; b runs. */
static void queued_restart_runs_once_a_start_is_verified(void **state)
{
    struct fixture *fx = *state;
    fx->ex.max_starting = 1;
    struct svc *a = svc_new(fx, "a"), *b = svc_new(fx, "b");
    struct svc *all[] = {a, b};
    for (int i = 0; i < 2; i++) {
        svc_command(all[i], "exec sleep 100");
        svc_no_checks(all[i]);
        all[i]->restart->stable_ms = 300;
        svc_start(all[i]);
    }
    kill(a->sup.pid, SIGKILL);
    loopwait_until(&fx->loop, a->rec.state == REC_VERIFYING);
    assert_int_equal(fx->ex.starting, 1);
    kill(b->sup.pid, SIGKILL);
    loopwait_until(&fx->loop, pending_queued(b));
    loopwait_until(&fx->loop, idle_without_action(a));
    /* Room again: b's restart runs at once (it holds the start slot now). */
    assert_true(b->rec.state == REC_VERIFYING || idle_without_action(b));
    loopwait_until(&fx->loop, idle_without_action(b));
    assert_action(b, 0, "restart", "completed", "verified");
}

/* Was a bug (src/recover/supervisor.c sup__stop + src/recover/restart.c): for
 * an external service, a restart's SUP_EV_STOP only records
 * stop_reason = STOP_RESTART ("its restart program will end it"). When the
 * restart program fails, nothing resets it: the process keeps running with
 * a stop reason nobody stands behind, and its next crash reaches the
 * recovery as an exit that was asked for (e->why != STOP_NONE), so no
 * process fault opens and nothing recovers it. Here: the check fails, the
 * restart program fails, the repair fixes the check (verified, idle); then
 * the process dies: no fault. */
static void external_crash_after_a_failed_restart_program_is_a_fault(void **state)
{
    struct fixture *fx = *state;
    struct svc *s = svc_new(fx, "ext");
    char pidfile[128], buf[32];
    snprintf(pidfile, sizeof pidfile, "%s/ext.pid", fx->dir);
    s->cfg.pidfile = pidfile;
    static char *restart_cmd[] = {"/bin/sh", "-c", "echo cannot; exit 1", NULL};
    s->cfg.restart_cmd = restart_cmd;
    svc_repair(s, "touch ok_ext");
    svc_chain(s, 2, STRATEGY_RESTART, STRATEGY_REPAIR);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(30);
        for (;;)
            pause();
    }
    fx->forked = pid;
    snprintf(buf, sizeof buf, "%d\n", (int)pid);
    FILE *f = fopen(pidfile, "w");
    assert_non_null(f);
    fputs(buf, f);
    fclose(f);
    touch(s->ok_path);
    svc_start(s);
    assert_int_equal(s->sup.pid, pid);
    unlink(s->ok_path);
    loopwait_until(&fx->loop, n_actions(s) == 2 && idle_without_action(s));
    assert_action(s, 0, "restart", "failed", "restart program failed");
    assert_action(s, 1, "repair", "completed", "verified");
    assert_int_equal(s->sup.state, SUP_RUNNING);
    /* The process crashes: an unexpected exit, a fault. */
    kill(pid, SIGKILL);
    loopwait_until(&fx->loop, s->sup.state == SUP_DOWN);
    loopwait_until(&fx->loop, s->faults.slots[SLOT_PROCESS].open);
}

int main(void)
{
#define FX(t) cmocka_unit_test_setup_teardown(t, fixture_setup, fixture_teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(recovery_names_spell_states_and_events),
        FX(start_of_a_healthy_watched_service_is_verified),
        FX(start_of_a_supervised_service_spawns_and_verifies),
        FX(repair_that_works_is_verified_and_resolves_the_fault),
        FX(failed_strategy_escalates_to_the_next),
        FX(exhausted_chain_gives_up_until_released),
        FX(release_while_still_failing_runs_the_plan_again),
        FX(repair_not_verified_in_time_fails),
        FX(action_past_its_timeout_fails_and_is_cancelled),
        FX(hold_pauses_recovery_and_release_resumes_it),
        FX(held_service_still_resolves_when_checks_pass),
        FX(hold_aborts_a_pending_action),
        FX(hold_lets_an_executing_action_finish),
        FX(abort_ends_an_executing_action),
        FX(queue_runs_first_attempts_first),
        FX(queue_runs_older_actions_first),
        FX(crash_after_stable_is_restarted_and_verified),
        FX(crash_loop_reaches_the_restart_limit_and_gives_up),
        FX(failed_spawns_back_off_after_a_stable_process_dies),
        FX(missing_binary_gives_up_after_the_restart_limit),
        FX(operator_restart_runs_and_is_verified),
        FX(operator_recovers_an_open_fault_with_a_chosen_strategy),
        FX(watched_service_without_strategy_only_alerts),
        FX(dependent_fault_is_a_symptom_until_the_root_recovers),
        FX(correlation_without_a_root_cause_recovers_on_its_own),
        FX(correlation_ends_quietly_when_checks_pass_again),
        FX(queued_restart_runs_once_a_start_is_verified),
        FX(storm_restarts_are_paced_one_spawn_per_turn_in_exit_order),
        FX(restart_in_flight_on_the_spawner_holds_no_slot),
        FX(start_spawns_on_the_pace_spawner_then_verifies),
        FX(stop_while_the_start_spawns_starts_nothing),
        FX(external_crash_after_a_failed_restart_program_is_a_fault),
    };
#undef FX
    return cmocka_run_group_tests(tests, NULL, NULL);
}
