/* Every cell of the recovery's state x event table (recover/executor.c,
 * rec__table): one test per cell. Each puts a service's recovery into the
 * state with real processes (recfix.h: `sleep` as the service, a repair
 * program from sh that waits for go_<name>, a file check), fires the event
 * (its real cause where there is one, else recovery_event or the call
 * with arguments, as the timer or the queue would), and asserts the
 * resulting state and the one effect the cell's action has. Cells that
 * cannot happen in practice are fired directly and change nothing.
 * Nothing is asserted about durations; the loop ends empty after each. */
#include "recfix.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/fault.h"

/* A long wait: a state entered stays until the test moves it on. */
#define LONG_MS 60000

/* ---- entering a state ---- */

/* The service of every cell: `sleep` under supervision, its file check,
 * and a repair chain whose program waits for go_<name>, then touches
 * ok_<name> if fix_<name> exists, and exits 2 if fail_<name> exists. */
static struct svc *cell_svc(struct fixture *fx, const char *name)
{
    struct svc *s = svc_new(fx, name);
    char script[256];
    svc_command(s, "exec sleep 100");
    snprintf(script, sizeof script,
             "while [ ! -e go_%s ]; do sleep 0.01; done; [ -e fix_%s ] && touch ok_%s; "
             "[ -e fail_%s ] && exit 2; exit 0",
             name, name, name, name);
    svc_repair(s, script);
    svc_chain(s, 1, STRATEGY_REPAIR);
    s->cfg.verify_ms = LONG_MS;
    touch(s->ok_path);
    return s;
}

static void touch_named(struct svc *s, const char *what)
{
    char name[64];
    snprintf(name, sizeof name, "%s_%s", what, s->name);
    touch_in(s->fx, name);
}

/* IDLE: started and verified. */
static struct svc *enter_idle(struct fixture *fx)
{
    struct svc *s = cell_svc(fx, "web");
    svc_start(s);
    assert_int_equal(s->rec.state, REC_IDLE);
    return s;
}

/* CORRELATING: web depends on db; web's check fails. The correlation
 * timer is stopped so that the state stays until the event (the TIMER
 * cell fires it as the timer would). */
static struct svc *enter_correlating(struct fixture *fx)
{
    struct svc *db = cell_svc(fx, "db"), *web = cell_svc(fx, "web");
    svc_init(db);
    svc_init(web);
    svc_depends(web, db);
    recovery_event(&db->rec, REC_EV_START);
    recovery_event(&web->rec, REC_EV_START);
    loopwait_until(&fx->loop, db->ready && web->ready);
    unlink(web->ok_path);
    loopwait_until(&fx->loop, web->rec.state == REC_CORRELATING);
    clock_timer_stop(&web->rec.timer);
    assert_false(analyzer_has_open(&web->faults));
    return web;
}

/* PENDING: the check fails, no slot is free (max_executing 0): queued. */
static struct svc *enter_pending(struct fixture *fx)
{
    struct svc *s = enter_idle(fx);
    fx->ex.max_executing = 0;
    unlink(s->ok_path);
    loopwait_until(&fx->loop, pending_queued(s));
    return s;
}

/* EXECUTING: the repair runs, waiting for go_web. */
static struct svc *enter_executing(struct fixture *fx)
{
    struct svc *s = enter_idle(fx);
    unlink(s->ok_path);
    loopwait_until(&fx->loop, s->rec.state == REC_EXECUTING);
    assert_action(s, 0, "repair", "executing", NULL);
    return s;
}

/* VERIFYING (an action's): the repair exits 0 without fixing anything;
 * the check can no longer reach `fall`, the window is long: it stays. */
static struct svc *enter_verifying(struct fixture *fx)
{
    struct svc *s = enter_executing(fx);
    s->ccfg.fall = 1000000;
    touch_named(s, "go");
    loopwait_until(&fx->loop, s->rec.state == REC_VERIFYING);
    assert_true(s->rec.has_action);
    assert_true(s->checks.verifying);
    return s;
}

/* GAVE_UP: the only strategy failed (exit 2). */
static struct svc *enter_gave_up(struct fixture *fx)
{
    struct svc *s = enter_idle(fx);
    touch_named(s, "fail");
    touch_named(s, "go");
    unlink(s->ok_path);
    loopwait_until(&fx->loop, s->rec.state == REC_GAVE_UP);
    assert_action(s, 0, "repair", "failed", "repair program exited with code 2");
    assert_true(s->faults.slots[SLOT_SUPERVISOR(&s->faults)].open);
    return s;
}

static struct svc *enter(struct fixture *fx, enum recovery_state st)
{
    switch (st) {
    case REC_IDLE: return enter_idle(fx);
    case REC_CORRELATING: return enter_correlating(fx);
    case REC_PENDING: return enter_pending(fx);
    case REC_EXECUTING: return enter_executing(fx);
    case REC_VERIFYING: return enter_verifying(fx);
    case REC_GAVE_UP: return enter_gave_up(fx);
    default: fail_msg("no state %d", st);
    }
    return NULL;
}

/* ---- firing an event directly ---- */

/* The event with the arguments its call would give (the check's last
 * observation, an unexpected exit, an OK execution, an operator's repair). */
static void fire(struct svc *s, enum recovery_event ev)
{
    static const struct sup_exit crash = {.code = 1, .uptime_ms = 1, .why = STOP_NONE};
    struct observation o = {.type = FAULT_SOFTWARE, .severity = SEVERITY_HIGH, .code = -1};
    snprintf(o.reason, sizeof o.reason, "file missing");
    switch (ev) {
    case REC_EV_CHECK_FAILING: recovery_check_failing(&s->rec, &s->checks.checks[0], &o); break;
    case REC_EV_CHECK_REPORTED: recovery_check_reported(&s->rec, &s->checks.checks[0]); break;
    case REC_EV_EXITED: recovery_process_exited(&s->rec, &crash); break;
    case REC_EV_EXECUTED: recovery_executed(&s->rec, EXEC_OK, "done (fired by the test)"); break;
    case REC_EV_ABORT: recovery_abort(&s->rec, "aborted: by the test"); break;
    case REC_EV_OPERATOR:
        s->rec.op_strategy = STRATEGY_REPAIR;
        s->rec.result = "recovery requested by an operator";
        recovery_event(&s->rec, ev);
        break;
    default: recovery_event(&s->rec, ev);
    }
}

/* ---- nothing changed ---- */

struct snap {
    enum recovery_state state;
    bool held, has_action, queued, holds_slot, ready;
    unsigned step, attempts, executing;
    int64_t action_id;
    enum action_status status;
    size_t actions, open_faults;
    int ready_calls, recovered_calls;
};

static struct snap snap_of(struct svc *s)
{
    size_t open = 0;
    for (size_t i = 0; i < s->faults.n_slots; i++)
        open += s->faults.slots[i].open;
    return (struct snap){.state = s->rec.state,
                         .held = s->rec.held,
                         .has_action = s->rec.has_action,
                         .queued = s->rec.queued,
                         .holds_slot = s->rec.holds_slot,
                         .ready = s->rec.ready,
                         .step = s->rec.step,
                         .attempts = s->rec.attempts,
                         .executing = s->fx->ex.executing,
                         .action_id = s->rec.action.id,
                         .status = s->rec.action.status,
                         .actions = n_actions(s),
                         .open_faults = open,
                         .ready_calls = s->ready,
                         .recovered_calls = s->recovered};
}

static void assert_unchanged(struct svc *s, const struct snap *before)
{
    struct snap now = snap_of(s);
    const struct snap *b = before;
    bool same = now.state == b->state && now.held == b->held && now.has_action == b->has_action &&
                now.queued == b->queued && now.holds_slot == b->holds_slot &&
                now.ready == b->ready && now.step == b->step && now.attempts == b->attempts &&
                now.executing == b->executing && now.action_id == b->action_id &&
                now.status == b->status && now.actions == b->actions &&
                now.open_faults == b->open_faults && now.ready_calls == b->ready_calls &&
                now.recovered_calls == b->recovered_calls;
    if (!same)
        fail_msg("%s changed: state %s -> %s, has_action %d -> %d, actions %zu -> %zu, "
                 "open faults %zu -> %zu, held %d -> %d, queued %d -> %d",
                 s->name, recovery_state_name(before->state), recovery_state_name(now.state),
                 before->has_action, now.has_action, before->actions, now.actions,
                 before->open_faults, now.open_faults, before->held, now.held, before->queued,
                 now.queued);
}

/* A cell whose action is rec__nothing: fired directly, nothing changes. */
static void nothing_cell(struct fixture *fx, enum recovery_state st, enum recovery_event ev)
{
    struct svc *s = enter(fx, st);
    struct snap before = snap_of(s);
    fire(s, ev);
    assert_unchanged(s, &before);
}

/* The operator's call is refused in a state that is not idle, gave up or
 * verifying a start; the event itself (fired directly) changes nothing. */
static void operator_refused_cell(struct fixture *fx, enum recovery_state st)
{
    struct svc *s = enter(fx, st);
    char err[256] = "";
    struct snap before = snap_of(s);
    assert_int_equal(recovery_operate(&s->rec, 0, STRATEGY_REPAIR, err, sizeof err), -EBUSY);
    /* Correlating has no action yet: it says so, not "action 0". */
    assert_non_null(strstr(err, st == REC_CORRELATING ? "web is correlating" : "in progress"));
    assert_null(strstr(err, "action 0"));
    fire(s, REC_EV_OPERATOR);
    assert_unchanged(s, &before);
}

static bool process_fault_open(struct svc *s)
{
    return s->faults.slots[SLOT_PROCESS].open;
}

/* Kill the service's process (the real cause of EXITED). */
static void crash(struct svc *s)
{
    assert_int_equal(s->sup.state, SUP_RUNNING);
    kill(s->sup.pid, SIGKILL);
}

/* web in state st with a symptom: db fails first, web's check fault is
 * db's symptom; an operator recovers web anyway (repair), which brings it
 * to st. Then DEP_RECOVERED (fired as db's sink would): the symptom is
 * web's own fault now, and nothing else happens. */
static void dep_recovered_flag_cell(struct fixture *fx, enum recovery_state st)
{
    struct svc *db = cell_svc(fx, "db"), *web = cell_svc(fx, "web");
    char err[256] = "";
    svc_init(db);
    svc_init(web);
    svc_depends(web, db);
    recovery_event(&db->rec, REC_EV_START);
    recovery_event(&web->rec, REC_EV_START);
    loopwait_until(&fx->loop, db->ready && web->ready);
    if (st == REC_PENDING)
        fx->ex.max_executing = 0;
    unlink(db->ok_path);
    loopwait_until(&fx->loop, analyzer_has_open(&db->faults));
    unlink(web->ok_path);
    loopwait_until(&fx->loop, web->faults.slots[SLOT_CHECK(0)].open);
    assert_int_not_equal(web->faults.slots[SLOT_CHECK(0)].root, 0);
    assert_int_equal(web->rec.state, REC_IDLE);
    if (st == REC_GAVE_UP)
        touch_named(web, "fail");
    if (st == REC_VERIFYING)
        web->ccfg.fall = 1000000;
    if (st == REC_GAVE_UP || st == REC_VERIFYING)
        touch_named(web, "go");
    assert_int_equal(recovery_operate(&web->rec, 0, STRATEGY_REPAIR, err, sizeof err), 0);
    loopwait_until(&fx->loop, web->rec.state == st);
    assert_int_not_equal(web->faults.slots[SLOT_CHECK(0)].root, 0);
    struct snap before = snap_of(web);
    fire(web, REC_EV_DEP_RECOVERED);
    assert_int_equal(web->faults.slots[SLOT_CHECK(0)].root, 0);
    assert_true(web->faults.slots[SLOT_CHECK(0)].open);
    assert_unchanged(web, &before);
}

#define FX_OF(state) struct fixture *fx = *(state)
#define NOTHING(name, st, ev)                                                                      \
    static void name(void **state)                                                                 \
    {                                                                                              \
        nothing_cell(*state, st, ev);                                                              \
    }

/* ---- IDLE ---- */

/* start: spawned and verified like a recovery (no action). */
static void idle_start(void **state)
{
    FX_OF(state);
    struct svc *s = cell_svc(fx, "web");
    svc_init(s);
    assert_int_equal(s->rec.state, REC_IDLE);
    recovery_event(&s->rec, REC_EV_START);
    assert_int_equal(s->rec.state, REC_VERIFYING);
    assert_int_equal(s->sup.state, SUP_RUNNING);
    assert_false(s->rec.has_action);
    loopwait_until(&fx->loop, s->ready == 1 && s->rec.state == REC_IDLE);
    assert_int_equal(n_actions(s), 0);
}

/* check-failing: a fault, and its plan runs (the repair executes). */
static void idle_check_failing(void **state)
{
    FX_OF(state);
    struct svc *s = enter_idle(fx);
    unlink(s->ok_path);
    loopwait_until(&fx->loop, s->rec.state == REC_EXECUTING);
    assert_true(s->faults.slots[SLOT_CHECK(0)].open);
    assert_action(s, 0, "repair", "executing", NULL);
}

/* check-reported: a held service's fault resolves when its checks pass. */
static void idle_check_reported(void **state)
{
    FX_OF(state);
    struct svc *s = enter_idle(fx);
    recovery_hold(&s->rec);
    unlink(s->ok_path);
    loopwait_until(&fx->loop, analyzer_has_open(&s->faults));
    assert_int_equal(s->rec.state, REC_IDLE);
    touch(s->ok_path);
    loopwait_until(&fx->loop, !analyzer_has_open(&s->faults));
    assert_int_equal(s->rec.state, REC_IDLE);
    assert_int_equal(s->recovered, 1);
    assert_int_equal(n_actions(s), 0);
}

/* exited: a process fault, and its plan runs. */
static void idle_exited(void **state)
{
    FX_OF(state);
    struct svc *s = enter_idle(fx);
    crash(s);
    loopwait_until(&fx->loop, process_fault_open(s) && s->rec.state == REC_EXECUTING);
    assert_action(s, 0, "repair", "executing", NULL);
}

NOTHING(idle_timer, REC_IDLE, REC_EV_TIMER)
NOTHING(idle_slot, REC_IDLE, REC_EV_SLOT)
NOTHING(idle_executed, REC_IDLE, REC_EV_EXECUTED)

/* hold: the flag; then a failing check opens its fault, nothing runs. */
static void idle_hold(void **state)
{
    FX_OF(state);
    struct svc *s = enter_idle(fx);
    assert_int_equal(recovery_hold(&s->rec), 0);
    assert_true(s->rec.held);
    assert_int_equal(s->rec.state, REC_IDLE);
    unlink(s->ok_path);
    loopwait_until(&fx->loop, analyzer_has_open(&s->faults));
    assert_int_equal(s->rec.state, REC_IDLE);
    assert_int_equal(n_actions(s), 0);
}

/* release with a fault open: re-checked (verifying, no action). */
static void idle_release(void **state)
{
    FX_OF(state);
    struct svc *s = enter_idle(fx);
    recovery_hold(&s->rec);
    unlink(s->ok_path);
    loopwait_until(&fx->loop, analyzer_has_open(&s->faults));
    assert_int_equal(recovery_release(&s->rec), 0);
    assert_false(s->rec.held);
    assert_int_equal(s->rec.state, REC_VERIFYING);
    assert_false(s->rec.has_action);
}

/* operator: the chosen strategy runs. */
static void idle_operator(void **state)
{
    FX_OF(state);
    struct svc *s = enter_idle(fx);
    char err[256] = "";
    assert_int_equal(recovery_operate(&s->rec, 0, STRATEGY_REPAIR, err, sizeof err), 0);
    assert_int_equal(s->rec.state, REC_EXECUTING);
    assert_action(s, 0, "repair", "executing", NULL);
}

/* dependency-recovered: web's fault was db's symptom; db recovers, web
 * still fails: re-checked, and its own plan runs. */
static void idle_dep_recovered(void **state)
{
    FX_OF(state);
    struct svc *db = cell_svc(fx, "db"), *web = cell_svc(fx, "web");
    svc_init(db);
    svc_init(web);
    svc_depends(web, db);
    recovery_event(&db->rec, REC_EV_START);
    recovery_event(&web->rec, REC_EV_START);
    loopwait_until(&fx->loop, db->ready && web->ready);
    unlink(db->ok_path);
    loopwait_until(&fx->loop, db->rec.state == REC_EXECUTING);
    unlink(web->ok_path);
    loopwait_until(&fx->loop, analyzer_has_open(&web->faults) && web->rec.state == REC_IDLE);
    assert_int_not_equal(web->faults.slots[SLOT_CHECK(0)].root, 0);
    assert_int_equal(n_actions(web), 0);
    touch_named(db, "fix");
    touch_named(db, "go");
    loopwait_until(&fx->loop, db->recovered == 1);
    /* db's sink fired DEP_RECOVERED on web in that same turn. */
    loopwait_until(&fx->loop, n_actions(web) == 1);
    assert_int_equal(web->faults.slots[SLOT_CHECK(0)].root, 0);
    loopwait_until(&fx->loop, web->rec.state == REC_EXECUTING);
    assert_action(web, 0, "repair", "executing", NULL);
}

/* abort with nothing in progress: idle, no action. */
NOTHING(idle_abort, REC_IDLE, REC_EV_ABORT)

/* ---- CORRELATING ---- */

NOTHING(correlating_start, REC_CORRELATING, REC_EV_START)
NOTHING(correlating_check_failing, REC_CORRELATING, REC_EV_CHECK_FAILING)

/* check-reported, all passing again: idle, no fault. */
static void correlating_check_reported(void **state)
{
    FX_OF(state);
    struct svc *s = enter_correlating(fx);
    touch(s->ok_path);
    loopwait_until(&fx->loop, s->rec.state == REC_IDLE);
    assert_false(analyzer_has_open(&s->faults));
    assert_int_equal(n_actions(s), 0);
}

/* exited: the process fault and the failing check's open now; the plan runs. */
static void correlating_exited(void **state)
{
    FX_OF(state);
    struct svc *s = enter_correlating(fx);
    crash(s);
    loopwait_until(&fx->loop, process_fault_open(s));
    assert_true(s->faults.slots[SLOT_CHECK(0)].open);
    assert_int_equal(s->rec.state, REC_EXECUTING);
    assert_action(s, 0, "repair", "executing", NULL);
}

/* timer (fired as the timer would): the check's fault opens, the plan runs. */
static void correlating_timer(void **state)
{
    FX_OF(state);
    struct svc *s = enter_correlating(fx);
    fire(s, REC_EV_TIMER);
    assert_true(s->faults.slots[SLOT_CHECK(0)].open);
    assert_int_equal(s->faults.slots[SLOT_CHECK(0)].root, 0);
    assert_int_equal(s->rec.state, REC_EXECUTING);
    assert_action(s, 0, "repair", "executing", NULL);
}

NOTHING(correlating_slot, REC_CORRELATING, REC_EV_SLOT)
NOTHING(correlating_executed, REC_CORRELATING, REC_EV_EXECUTED)

/* hold: the flag; still correlating. */
static void correlating_hold(void **state)
{
    FX_OF(state);
    struct svc *s = enter_correlating(fx);
    recovery_hold(&s->rec);
    assert_true(s->rec.held);
    assert_int_equal(s->rec.state, REC_CORRELATING);
}

/* release: only the flag. */
static void correlating_release(void **state)
{
    FX_OF(state);
    struct svc *s = enter_correlating(fx);
    recovery_hold(&s->rec);
    recovery_release(&s->rec);
    assert_false(s->rec.held);
    assert_int_equal(s->rec.state, REC_CORRELATING);
    assert_false(analyzer_has_open(&s->faults));
}

static void correlating_operator(void **state)
{
    operator_refused_cell(*state, REC_CORRELATING);
}

NOTHING(correlating_dep_recovered, REC_CORRELATING, REC_EV_DEP_RECOVERED)

/* abort: idle, no fault. */
static void correlating_abort(void **state)
{
    FX_OF(state);
    struct svc *s = enter_correlating(fx);
    fire(s, REC_EV_ABORT);
    assert_int_equal(s->rec.state, REC_IDLE);
    assert_false(analyzer_has_open(&s->faults));
    assert_int_equal(n_actions(s), 0);
}

/* ---- PENDING ---- */

NOTHING(pending_start, REC_PENDING, REC_EV_START)
/* The repair planned for a crash (the check's fault not open), in state
 * st; then the check's failure is reported (fired directly: the checks
 * stop while the process is down). */
static struct svc *crash_then_fail_check(struct fixture *fx, enum recovery_state st)
{
    struct svc *s = enter_idle(fx);
    if (st == REC_PENDING)
        fx->ex.max_executing = 0;
    if (st == REC_GAVE_UP) {
        touch_named(s, "fail");
        touch_named(s, "go");
    }
    crash(s);
    loopwait_until(&fx->loop, s->rec.state == st);
    assert_true(process_fault_open(s));
    assert_false(s->faults.slots[SLOT_CHECK(0)].open);
    fire(s, REC_EV_CHECK_FAILING); /* its checks stop while the process is down */
    assert_true(s->faults.slots[SLOT_CHECK(0)].open);
    assert_int_equal(s->rec.state, st);
    assert_int_equal(n_actions(s), 1);
    return s;
}

/* check-failing: its fault is recorded; the pending action stays. */
static void pending_check_failing(void **state)
{
    struct svc *s = crash_then_fail_check(*state, REC_PENDING);
    assert_true(pending_queued(s));
    assert_action(s, 0, "repair", "pending", NULL);
}

/* check-reported, passing again before it ran: aborted, fault resolved. */
static void pending_check_reported(void **state)
{
    FX_OF(state);
    struct svc *s = enter_pending(fx);
    touch(s->ok_path);
    loopwait_until(&fx->loop, s->rec.state == REC_IDLE);
    assert_action(s, 0, "repair", "aborted", "aborted: checks passing again before it ran");
    assert_false(s->rec.queued);
    assert_null(fx->ex.queue);
    assert_false(analyzer_has_open(&s->faults));
}

/* exited: the process fault is recorded; still pending. */
static void pending_exited(void **state)
{
    FX_OF(state);
    struct svc *s = enter_pending(fx);
    crash(s);
    loopwait_until(&fx->loop, process_fault_open(s));
    assert_true(pending_queued(s));
    assert_int_equal(n_actions(s), 1);
}

/* timer: a restart's backoff is over: queued (here: run at once). The
 * process dies young (restart.stable is long) so the restart waits a long
 * backoff in PENDING, unqueued; the test fires the timer. */
static void pending_timer(void **state)
{
    FX_OF(state);
    struct svc *s = cell_svc(fx, "web");
    svc_chain(s, 1, STRATEGY_RESTART);
    s->restart->stable_ms = LONG_MS;
    s->restart->backoff_initial_ms = LONG_MS;
    s->restart->backoff_max_ms = LONG_MS;
    s->cfg.verify_ms = 5000;
    svc_start(s);
    crash(s);
    loopwait_until(&fx->loop, s->rec.state == REC_PENDING);
    assert_false(s->rec.queued);
    assert_true(clock_timer_armed(&s->rec.timer));
    fire(s, REC_EV_TIMER);
    assert_int_not_equal(s->rec.state, REC_PENDING);
    assert_int_equal(s->rec.attempts, 1);
    loopwait_until(&fx->loop, s->sup.state == SUP_RUNNING);
    json_t *acts = actions_of(s);
    assert_string_equal(json_string_value(json_object_get(json_array_get(acts, 0), "strategy")),
                        "restart");
    assert_string_not_equal(json_string_value(json_object_get(json_array_get(acts, 0), "status")),
                            "pending");
    json_decref(acts);
}

/* slot: another action's slot frees up: this one runs. */
static void pending_slot(void **state)
{
    FX_OF(state);
    struct svc *a = cell_svc(fx, "a"), *b = cell_svc(fx, "b");
    fx->ex.max_executing = 1;
    svc_start(a);
    svc_start(b);
    unlink(a->ok_path);
    loopwait_until(&fx->loop, a->rec.state == REC_EXECUTING);
    unlink(b->ok_path);
    loopwait_until(&fx->loop, pending_queued(b));
    touch_named(a, "fix");
    touch_named(a, "go");
    loopwait_until(&fx->loop, b->rec.state == REC_EXECUTING);
    assert_false(b->rec.queued);
    assert_null(fx->ex.queue);
    assert_action(b, 0, "repair", "executing", NULL);
}

NOTHING(pending_executed, REC_PENDING, REC_EV_EXECUTED)

/* hold: the pending action is aborted, idle, off the queue. */
static void pending_hold(void **state)
{
    FX_OF(state);
    struct svc *s = enter_pending(fx);
    recovery_hold(&s->rec);
    assert_true(s->rec.held);
    assert_int_equal(s->rec.state, REC_IDLE);
    assert_false(s->rec.queued);
    assert_null(fx->ex.queue);
    assert_action(s, 0, "repair", "aborted", "aborted: service held by an operator");
}

/* release: only the flag; still pending. */
static void pending_release(void **state)
{
    FX_OF(state);
    struct svc *s = enter_pending(fx);
    s->rec.held = true; /* held after it was queued (a hold would drop it) */
    recovery_release(&s->rec);
    assert_false(s->rec.held);
    assert_true(pending_queued(s));
    assert_action(s, 0, "repair", "pending", NULL);
}

static void pending_operator(void **state)
{
    operator_refused_cell(*state, REC_PENDING);
}

/* dependency-recovered: its symptoms are its own faults; nothing else. */
static void pending_dep_recovered(void **state)
{
    dep_recovered_flag_cell(*state, REC_PENDING);
}

/* abort: the action is aborted, idle, off the queue. */
static void pending_abort(void **state)
{
    FX_OF(state);
    struct svc *s = enter_pending(fx);
    fire(s, REC_EV_ABORT);
    assert_int_equal(s->rec.state, REC_IDLE);
    assert_false(s->rec.queued);
    assert_null(fx->ex.queue);
    assert_action(s, 0, "repair", "aborted", "aborted: by the test");
}

/* ---- EXECUTING ---- */

NOTHING(executing_start, REC_EXECUTING, REC_EV_START)
/* check-failing: its fault is recorded; the action goes on. */
static void executing_check_failing(void **state)
{
    struct svc *s = crash_then_fail_check(*state, REC_EXECUTING);
    assert_action(s, 0, "repair", "executing", NULL);
}

/* check-reported: the check passes again meanwhile; the action goes on. */
static void executing_check_reported(void **state)
{
    FX_OF(state);
    struct svc *s = enter_executing(fx);
    touch(s->ok_path);
    loopwait_until(&fx->loop, !s->checks.checks[0].failing);
    uint64_t probes = s->checks.checks[0].probes;
    loopwait_until(&fx->loop, s->checks.checks[0].probes > probes);
    assert_int_equal(s->rec.state, REC_EXECUTING);
    assert_action(s, 0, "repair", "executing", NULL);
}

/* exited: the process fault is recorded; the repair goes on. */
static void executing_exited(void **state)
{
    FX_OF(state);
    struct svc *s = enter_executing(fx);
    crash(s);
    loopwait_until(&fx->loop, process_fault_open(s));
    assert_int_equal(s->rec.state, REC_EXECUTING);
    assert_action(s, 0, "repair", "executing", NULL);
}

/* timer (the action's deadline): failed, the chain exhausted. */
static void executing_timer(void **state)
{
    FX_OF(state);
    struct svc *s = enter_executing(fx);
    fire(s, REC_EV_TIMER);
    assert_action(s, 0, "repair", "failed", "timed out after");
    assert_int_equal(s->rec.state, REC_GAVE_UP);
    assert_int_equal(fx->ex.executing, 0);
}

NOTHING(executing_slot, REC_EXECUTING, REC_EV_SLOT)

/* executed (the repair exits 0, having fixed it): verified, completed. */
static void executing_executed(void **state)
{
    FX_OF(state);
    struct svc *s = enter_executing(fx);
    touch_named(s, "fix");
    touch_named(s, "go");
    loopwait_until(&fx->loop, idle_without_action(s));
    assert_action(s, 0, "repair", "completed", "verified");
    assert_false(analyzer_has_open(&s->faults));
}

/* hold: the flag; the action goes on. */
static void executing_hold(void **state)
{
    FX_OF(state);
    struct svc *s = enter_executing(fx);
    recovery_hold(&s->rec);
    assert_true(s->rec.held);
    assert_int_equal(s->rec.state, REC_EXECUTING);
    assert_action(s, 0, "repair", "executing", NULL);
}

/* release: only the flag. */
static void executing_release(void **state)
{
    FX_OF(state);
    struct svc *s = enter_executing(fx);
    recovery_hold(&s->rec);
    recovery_release(&s->rec);
    assert_false(s->rec.held);
    assert_int_equal(s->rec.state, REC_EXECUTING);
    assert_action(s, 0, "repair", "executing", NULL);
}

static void executing_operator(void **state)
{
    operator_refused_cell(*state, REC_EXECUTING);
}

/* dependency-recovered: its symptoms are its own faults; nothing else. */
static void executing_dep_recovered(void **state)
{
    dep_recovered_flag_cell(*state, REC_EXECUTING);
}

/* abort: the action is aborted, its slot freed. */
static void executing_abort(void **state)
{
    FX_OF(state);
    struct svc *s = enter_executing(fx);
    fire(s, REC_EV_ABORT);
    assert_int_equal(s->rec.state, REC_IDLE);
    assert_int_equal(fx->ex.executing, 0);
    assert_action(s, 0, "repair", "aborted", "aborted: by the test");
}

/* ---- VERIFYING ---- */

NOTHING(verifying_start, REC_VERIFYING, REC_EV_START)

/* check-failing: the verification failed; the chain is exhausted. */
static void verifying_check_failing(void **state)
{
    FX_OF(state);
    struct svc *s = enter_verifying(fx);
    fire(s, REC_EV_CHECK_FAILING);
    assert_action(s, 0, "repair", "failed", "not verified: file check failing");
    assert_int_equal(s->rec.state, REC_GAVE_UP);
    assert_false(s->checks.verifying);
}

/* check-reported, passing: verified, completed, the fault resolved. */
static void verifying_check_reported(void **state)
{
    FX_OF(state);
    struct svc *s = enter_verifying(fx);
    touch(s->ok_path);
    loopwait_until(&fx->loop, idle_without_action(s));
    assert_action(s, 0, "repair", "completed", "verified");
    assert_false(analyzer_has_open(&s->faults));
    assert_int_equal(s->recovered, 1);
}

/* exited: died before verification: failed; the chain is exhausted. */
static void verifying_exited(void **state)
{
    FX_OF(state);
    struct svc *s = enter_verifying(fx);
    crash(s);
    loopwait_until(&fx->loop, s->rec.state == REC_GAVE_UP);
    assert_action(s, 0, "repair", "failed", "process killed by signal 9");
    assert_true(process_fault_open(s));
}

/* timer (the window ran out): failed; the chain is exhausted. */
static void verifying_timer(void **state)
{
    FX_OF(state);
    struct svc *s = enter_verifying(fx);
    fire(s, REC_EV_TIMER);
    assert_action(s, 0, "repair", "failed", "not verified within 60000 ms");
    assert_int_equal(s->rec.state, REC_GAVE_UP);
}

/* timer while the process is draining (it died; what it started is still
 * going, so its exit is not reported yet): nothing; that report decides. */
static void verifying_timer_while_draining_waits_for_the_exit(void **state)
{
    FX_OF(state);
    struct svc *s = enter_verifying(fx);
    enum sup_state was = s->sup.state;
    s->sup.state = SUP_DRAINING; /* as the supervisor leaves it between the two */
    fire(s, REC_EV_TIMER);
    s->sup.state = was;
    assert_int_equal(s->rec.state, REC_VERIFYING);
    assert_action(s, 0, "repair", "executing", NULL);
}

NOTHING(verifying_slot, REC_VERIFYING, REC_EV_SLOT)
NOTHING(verifying_executed, REC_VERIFYING, REC_EV_EXECUTED)

/* hold: the flag; the verification goes on. */
static void verifying_hold(void **state)
{
    FX_OF(state);
    struct svc *s = enter_verifying(fx);
    recovery_hold(&s->rec);
    assert_true(s->rec.held);
    assert_int_equal(s->rec.state, REC_VERIFYING);
    assert_action(s, 0, "repair", "executing", NULL);
}

/* release: only the flag. */
static void verifying_release(void **state)
{
    FX_OF(state);
    struct svc *s = enter_verifying(fx);
    recovery_hold(&s->rec);
    recovery_release(&s->rec);
    assert_false(s->rec.held);
    assert_int_equal(s->rec.state, REC_VERIFYING);
    assert_true(s->rec.has_action);
}

/* operator while a start is verified (no action): the strategy runs. */
static void verifying_operator(void **state)
{
    FX_OF(state);
    struct svc *s = cell_svc(fx, "web");
    char err[256] = "";
    unlink(s->ok_path);
    s->cfg.start_period_ms = LONG_MS; /* its failures say only "not up yet" */
    svc_init(s);
    recovery_event(&s->rec, REC_EV_START);
    assert_int_equal(s->rec.state, REC_VERIFYING);
    assert_false(s->rec.has_action);
    assert_int_equal(recovery_operate(&s->rec, 0, STRATEGY_REPAIR, err, sizeof err), 0);
    assert_int_equal(s->rec.state, REC_EXECUTING);
    assert_false(s->checks.verifying);
    assert_action(s, 0, "repair", "executing", NULL);
}

/* dependency-recovered: its symptoms are its own faults; nothing else. */
static void verifying_dep_recovered(void **state)
{
    dep_recovered_flag_cell(*state, REC_VERIFYING);
}

/* abort: the action is aborted, the verification ends. */
static void verifying_abort(void **state)
{
    FX_OF(state);
    struct svc *s = enter_verifying(fx);
    fire(s, REC_EV_ABORT);
    assert_int_equal(s->rec.state, REC_IDLE);
    assert_false(s->checks.verifying);
    assert_action(s, 0, "repair", "aborted", "aborted: by the test");
}

/* ---- GAVE_UP ---- */

NOTHING(gave_up_start, REC_GAVE_UP, REC_EV_START)
/* check-failing: its fault is recorded; still gave up. */
static void gave_up_check_failing(void **state)
{
    struct svc *s = crash_then_fail_check(*state, REC_GAVE_UP);
    assert_action(s, 0, "repair", "failed", NULL);
}

/* check-reported, passing again: still gave up (an operator must act). */
static void gave_up_check_reported(void **state)
{
    FX_OF(state);
    struct svc *s = enter_gave_up(fx);
    touch(s->ok_path);
    loopwait_until(&fx->loop, !s->checks.checks[0].failing);
    uint64_t probes = s->checks.checks[0].probes;
    loopwait_until(&fx->loop, s->checks.checks[0].probes > probes);
    assert_int_equal(s->rec.state, REC_GAVE_UP);
    assert_true(s->faults.slots[SLOT_SUPERVISOR(&s->faults)].open);
}

/* exited: the process fault is recorded; still gave up. */
static void gave_up_exited(void **state)
{
    FX_OF(state);
    struct svc *s = enter_gave_up(fx);
    crash(s);
    loopwait_until(&fx->loop, process_fault_open(s));
    assert_int_equal(s->rec.state, REC_GAVE_UP);
    assert_int_equal(n_actions(s), 1);
}

NOTHING(gave_up_timer, REC_GAVE_UP, REC_EV_TIMER)
NOTHING(gave_up_slot, REC_GAVE_UP, REC_EV_SLOT)
NOTHING(gave_up_executed, REC_GAVE_UP, REC_EV_EXECUTED)

/* hold: the flag; still gave up. */
static void gave_up_hold(void **state)
{
    FX_OF(state);
    struct svc *s = enter_gave_up(fx);
    recovery_hold(&s->rec);
    assert_true(s->rec.held);
    assert_int_equal(s->rec.state, REC_GAVE_UP);
}

/* release: the recovery's own fault closes; re-checked. */
static void gave_up_release(void **state)
{
    FX_OF(state);
    struct svc *s = enter_gave_up(fx);
    recovery_release(&s->rec);
    assert_false(s->faults.slots[SLOT_SUPERVISOR(&s->faults)].open);
    assert_int_equal(s->rec.state, REC_VERIFYING);
    assert_false(s->rec.has_action);
}

/* operator: the recovery's own fault closes; the strategy runs. */
static void gave_up_operator(void **state)
{
    FX_OF(state);
    struct svc *s = enter_gave_up(fx);
    char err[256] = "";
    assert_int_equal(recovery_operate(&s->rec, 0, STRATEGY_REPAIR, err, sizeof err), 0);
    assert_false(s->faults.slots[SLOT_SUPERVISOR(&s->faults)].open);
    assert_int_equal(n_actions(s), 2);
    assert_int_equal(s->rec.state, REC_EXECUTING);
    assert_action(s, 1, "repair", "executing", NULL);
}

/* dependency-recovered: its symptoms are its own faults; nothing else. */
static void gave_up_dep_recovered(void **state)
{
    dep_recovered_flag_cell(*state, REC_GAVE_UP);
}

/* abort with no action: idle (recoverd is stopping). */
static void gave_up_abort(void **state)
{
    FX_OF(state);
    struct svc *s = enter_gave_up(fx);
    fire(s, REC_EV_ABORT);
    assert_int_equal(s->rec.state, REC_IDLE);
    assert_int_equal(n_actions(s), 1);
}

int main(void)
{
#define FX(t) cmocka_unit_test_setup_teardown(t, fixture_setup, fixture_teardown)
#define ROW(p)                                                                                     \
    FX(p##_start), FX(p##_check_failing), FX(p##_check_reported), FX(p##_exited), FX(p##_timer),   \
        FX(p##_slot), FX(p##_executed), FX(p##_hold), FX(p##_release), FX(p##_operator),           \
        FX(p##_dep_recovered), FX(p##_abort)
    const struct CMUnitTest tests[] = {
        ROW(idle),
        ROW(correlating),
        ROW(pending),
        ROW(executing),
        ROW(verifying),
        ROW(gave_up),
        FX(verifying_timer_while_draining_waits_for_the_exit),
    };
#undef ROW
#undef FX
    return cmocka_run_group_tests(tests, NULL, NULL);
}
