/* The recovery executor's decisions in time (recover/executor.c), over
 * fake strategies and a fake clock: escalation through a chain, backoff
 * that holds no slot, the concurrency queue, action timeouts, verification
 * windows and the flap window. The parts around the recovery are real
 * (recfix.h: journal, monitor, analyzer, check set); what is fake is what
 * takes time. A strategy's run() only notes that it runs, and the test
 * answers for it (fake_answer); a probe's answer is handed to the real
 * check set (probe); time moves only by fakeclock_advance, and a deadline
 * is asserted at its last millisecond and at its first. Nothing sleeps and
 * the loop never runs, so the outcome is the same on any machine. */
#include "recfix.h"

#include <stdio.h>
#include <string.h>

#include "lib/fault.h"
#include "recover/strategy.h"
#include "store/journal.h"

/* ---- fake strategies ----
 * In the slots of strategies recoverd does not implement yet, so they read
 * as failover, rollback and replace in the journal. FS starts a process
 * (counts against max_starting) like a restart. */
#define FA STRATEGY_FAILOVER
#define FB STRATEGY_ROLLBACK
#define FS STRATEGY_REPLACE

struct fake {
    uint64_t delay_ms;    /* delay() before each action; 0: at once */
    const char *unusable; /* applicable()'s why; NULL: usable */
    unsigned runs;        /* run() calls, every service */
    unsigned cancels;     /* cancel() calls */
};
static struct fake fakes[STRATEGY__COUNT];

/* Per service (r->priv[id]). */
struct fake_priv {
    bool running; /* run() called, neither answered nor cancelled */
};

static struct fake_priv *fake_priv(const struct recovery *r, int id)
{
    return r->priv[id];
}

static uint64_t fake_delay(struct recovery *r)
{
    return fakes[r->action.strategy].delay_ms;
}

static void fake_run(struct recovery *r)
{
    int id = r->action.strategy;
    assert_false(fake_priv(r, id)->running);
    fake_priv(r, id)->running = true;
    fakes[id].runs++;
}

static void fake_cancel(struct recovery *r)
{
    int id = r->action.strategy;
    assert_true(fake_priv(r, id)->running);
    fake_priv(r, id)->running = false;
    fakes[id].cancels++;
}

#define FAKE_APPLICABLE(id)                                                                        \
    static struct strategy_no fake_applicable_##id(const struct recovery *r)                       \
    {                                                                                              \
        (void)r;                                                                                   \
        return (struct strategy_no){fakes[id].unusable, false};                                    \
    }
FAKE_APPLICABLE(FA)
FAKE_APPLICABLE(FB)
FAKE_APPLICABLE(FS)

#define FAKE_OPS(sid, starts)                                                                      \
    {                                                                                              \
        .id = sid, .risk = "low", .starts_process = starts,                                        \
        .state_size = sizeof(struct fake_priv), .applicable = fake_applicable_##sid,               \
        .delay = fake_delay, .run = fake_run, .cancel = fake_cancel,                               \
    }
static const struct strategy_ops fake_a = FAKE_OPS(FA, false);
static const struct strategy_ops fake_b = FAKE_OPS(FB, false);
static const struct strategy_ops fake_s = FAKE_OPS(FS, true);
static const struct strategy_ops *const fake_table[STRATEGY__COUNT] = {
    [FA] = &fake_a, [FB] = &fake_b, [FS] = &fake_s};

/* The running fake strategy of s answers, as its program would. */
static void fake_answer(struct svc *s, enum exec_outcome outcome, const char *result)
{
    int id = s->rec.action.strategy;
    assert_int_equal(s->rec.state, REC_EXECUTING);
    assert_true(fake_priv(&s->rec, id)->running);
    fake_priv(&s->rec, id)->running = false;
    recovery_executed(&s->rec, outcome, result);
}

static bool fake_running(const struct svc *s, int id)
{
    return s->up && fake_priv(&s->rec, id)->running;
}

/* ---- fixture ---- */

static int setup(void **state)
{
    fixture_setup_fake(state);
    struct fixture *fx = *state;
    memset(fakes, 0, sizeof fakes);
    fx->ex.strategies = fake_table;
    return 0;
}

#define FX_OF(state) struct fixture *fx = *(state)

static void advance(struct fixture *fx, uint64_t ms)
{
    fakeclock_advance(&fx->fake, ms);
}

/* A watched service (no process) with its file check (fall 2, rise 1) and
 * the chain given. */
static struct svc *fake_svc(struct fixture *fx, const char *name, int n, int a, int b)
{
    struct svc *s = svc_new(fx, name);
    svc_chain(s, n, a, b);
    return s;
}

/* One probe of s's check answers: what the check's timer and the file kind
 * do on the loop (check.c's probe start, then the kind's report). */
static void probe(struct svc *s, bool ok)
{
    struct check *c = &s->checks.checks[0];
    struct observation o = {.ok = ok,
                            .type = FAULT_SOFTWARE,
                            .severity = SEVERITY_HIGH,
                            .code = -1};
    snprintf(o.reason, sizeof o.reason, "%s", ok ? "present" : "file missing");
    c->in_flight = true;
    c->started_us = clock_mono_us();
    check_report(c, &o);
}

/* `fall` failing probes: the check's fault opens. */
static void check_fails(struct svc *s)
{
    for (unsigned i = 0; i < s->ccfg.fall; i++)
        probe(s, false);
    assert_true(s->checks.checks[0].failing);
}

/* Started and verified once (its check passes). */
static void start(struct svc *s)
{
    svc_init(s);
    recovery_event(&s->rec, REC_EV_START);
    assert_int_equal(s->rec.state, REC_VERIFYING);
    probe(s, true);
    assert_int_equal(s->rec.state, REC_IDLE);
    assert_int_equal(s->ready, 1);
}

static int64_t check_fault_id(const struct svc *s)
{
    return s->faults.slots[SLOT_CHECK(0)].fault->id;
}

/* The fault id of action k (oldest first) of s. */
static int64_t action_fault(struct svc *s, size_t k)
{
    json_t *acts = actions_of(s);
    json_t *a = json_array_get(acts, k);
    assert_non_null(a);
    int64_t id = json_integer_value(json_object_get(a, "fault_id"));
    json_decref(acts);
    return id;
}

static size_t queue_len(const struct executor *ex)
{
    size_t n = 0;
    for (const struct recovery *r = ex->queue; r && n < 100; r = r->next)
        n++;
    return n;
}

/* ---- escalation ---- */

/* A fails, B fails, C works and is verified: one fault, three actions. */
static void chain_escalates_until_a_strategy_is_verified(void **state)
{
    FX_OF(state);
    struct svc *s = svc_new(fx, "web");
    s->cfg.chain[0] = FA;
    s->cfg.chain[1] = FB;
    s->cfg.chain[2] = FS;
    s->cfg.n_chain = 3;
    start(s);
    check_fails(s);
    assert_true(fake_running(s, FA)); /* a slot was free: at once */
    fake_answer(s, EXEC_FAILED, "a: no");
    assert_true(fake_running(s, FB));
    fake_answer(s, EXEC_FAILED, "b: no");
    assert_true(fake_running(s, FS));
    fake_answer(s, EXEC_OK, "s: done");
    assert_int_equal(s->rec.state, REC_VERIFYING);
    assert_int_equal(fx->ex.executing, 0); /* verification holds no slot */
    assert_int_equal(fx->ex.starting, 1);  /* but a start counts until verified */
    probe(s, true);
    assert_true(idle_without_action(s));
    assert_int_equal(fx->ex.starting, 0);
    assert_int_equal(n_actions(s), 3);
    assert_action(s, 0, "failover", "failed", "a: no");
    assert_action(s, 1, "rollback", "failed", "b: no");
    assert_action(s, 2, "replace", "completed", "verified: 1 check(s) passing");
    for (size_t k = 0; k < 3; k++)
        assert_int_equal(action_fault(s, k), check_fault_id(s));
    assert_false(analyzer_has_open(&s->faults));
    assert_int_equal(s->st.state, STATE_RECOVERED);
    assert_int_equal(fakes[FA].runs + fakes[FB].runs + fakes[FS].runs, 3);
}

/* EXEC_RETRY (the process died, could not start): the same strategy again,
 * not the next one. */
static void retry_runs_the_same_strategy_again(void **state)
{
    FX_OF(state);
    struct svc *s = fake_svc(fx, "web", 2, FA, FB);
    start(s);
    check_fails(s);
    fake_answer(s, EXEC_RETRY, "a: died at once");
    assert_true(fake_running(s, FA));
    assert_int_equal(s->rec.attempts, 2);
    fake_answer(s, EXEC_OK, "a: done");
    probe(s, true);
    assert_true(idle_without_action(s));
    assert_action(s, 0, "failover", "failed", "a: died at once");
    assert_action(s, 1, "failover", "completed", "verified");
    assert_int_equal(fakes[FB].runs, 0);
}

/* A strategy that cannot act here is skipped, and says why in the fault's
 * analysis; the next one runs. */
static void unusable_strategy_is_skipped(void **state)
{
    FX_OF(state);
    struct svc *s = fake_svc(fx, "web", 2, FA, FB);
    fakes[FA].unusable = "no standby";
    start(s);
    check_fails(s);
    assert_true(fake_running(s, FB));
    assert_int_equal(fakes[FA].runs, 0);
    json_t *f = journal_fault_json(fx->journal, check_fault_id(s));
    json_t *ctx = json_object_get(f, "context");
    assert_string_equal(json_string_value(json_object_get(json_object_get(ctx, "skipped"),
                                                          "failover")),
                        "no standby");
    json_decref(f);
}

/* ---- backoff ---- */

/* x's strategy waits 500 ms before it runs; meanwhile it holds no slot, so
 * y's action (max_executing 1) runs at once. The delay ends at its 500th
 * ms, not before; x then waits for y's slot. */
static void backoff_delay_holds_no_slot(void **state)
{
    FX_OF(state);
    fx->ex.max_executing = 1;
    struct svc *x = fake_svc(fx, "x", 1, FA, 0), *y = fake_svc(fx, "y", 1, FB, 0);
    fakes[FA].delay_ms = 500;
    start(x);
    start(y);
    check_fails(x);
    assert_int_equal(x->rec.state, REC_PENDING);
    assert_false(x->rec.queued);
    assert_int_equal(fakeclock_due_in_ms(&fx->fake, &x->rec.timer), 500);
    assert_int_equal(fx->ex.executing, 0);
    check_fails(y);
    assert_true(fake_running(y, FB));
    assert_int_equal(fx->ex.executing, 1);
    advance(fx, 499);
    assert_int_equal(x->rec.state, REC_PENDING);
    assert_false(x->rec.queued);
    advance(fx, 1);
    assert_true(pending_queued(x)); /* due, and y holds the slot */
    assert_int_equal(fakes[FA].runs, 0);
    fake_answer(y, EXEC_OK, "b: done"); /* y verifies without a slot: x runs */
    assert_int_equal(y->rec.state, REC_VERIFYING);
    assert_true(fake_running(x, FA));
    assert_int_equal(fx->ex.executing, 1);
}

/* ---- the queue ---- */

/* max_executing 1. b's first attempt runs; a's first attempt waits; b's
 * fails: a runs, b's second attempt waits; c's first attempt, newer than
 * b's second, goes ahead of it. */
static void queue_runs_first_attempts_before_repeat_offenders(void **state)
{
    FX_OF(state);
    fx->ex.max_executing = 1;
    struct svc *a = fake_svc(fx, "a", 1, FA, 0), *b = fake_svc(fx, "b", 2, FB, FB),
               *c = fake_svc(fx, "c", 1, FA, 0);
    start(a);
    start(b);
    start(c);
    check_fails(b);
    assert_true(fake_running(b, FB));
    check_fails(a);
    assert_true(pending_queued(a));
    fake_answer(b, EXEC_FAILED, "b: no");
    assert_true(fake_running(a, FA));
    assert_true(pending_queued(b));
    assert_int_equal(b->rec.attempts, 1);
    advance(fx, 10);
    check_fails(c);
    assert_ptr_equal(fx->ex.queue, &c->rec);
    assert_ptr_equal(c->rec.next, &b->rec);
    assert_null(b->rec.next);
    fake_answer(a, EXEC_OK, "a: done");
    assert_true(fake_running(c, FA));
    assert_true(pending_queued(b));
    fake_answer(c, EXEC_OK, "c: done");
    assert_true(fake_running(b, FB));
    assert_int_equal(fx->ex.executing, 1);
    assert_int_equal(queue_len(&fx->ex), 0);
}

/* Equal attempts: first come, first served. */
static void queue_runs_equal_attempts_in_arrival_order(void **state)
{
    FX_OF(state);
    fx->ex.max_executing = 1;
    struct svc *a = fake_svc(fx, "a", 1, FA, 0), *b = fake_svc(fx, "b", 1, FA, 0),
               *c = fake_svc(fx, "c", 1, FA, 0);
    start(a);
    start(b);
    start(c);
    check_fails(a);
    check_fails(c);
    check_fails(b);
    assert_ptr_equal(fx->ex.queue, &c->rec);
    assert_ptr_equal(c->rec.next, &b->rec);
    fake_answer(a, EXEC_OK, "done");
    assert_true(fake_running(c, FA));
    fake_answer(c, EXEC_OK, "done");
    assert_true(fake_running(b, FA));
}

/* A recovery already waiting for a slot is never queued twice (its timer
 * fired once more, as the table's PENDING x timer cell allows): it keeps
 * its one place, and the queue stays a list, not a loop. */
static void queued_recovery_is_never_queued_twice(void **state)
{
    FX_OF(state);
    fx->ex.max_executing = 1;
    struct svc *a = fake_svc(fx, "a", 1, FA, 0), *b = fake_svc(fx, "b", 1, FA, 0),
               *c = fake_svc(fx, "c", 1, FA, 0);
    start(a);
    start(b);
    start(c);
    check_fails(a);
    check_fails(b);
    check_fails(c);
    assert_int_equal(queue_len(&fx->ex), 2);
    recovery_event(&b->rec, REC_EV_TIMER);
    assert_int_equal(queue_len(&fx->ex), 2);
    recovery_event(&c->rec, REC_EV_TIMER);
    assert_int_equal(queue_len(&fx->ex), 2);
    assert_ptr_equal(fx->ex.queue, &b->rec);
    assert_ptr_equal(b->rec.next, &c->rec);
    assert_null(c->rec.next);
    fake_answer(a, EXEC_OK, "done");
    assert_true(fake_running(b, FA));
    fake_answer(b, EXEC_OK, "done");
    assert_true(fake_running(c, FA));
    assert_int_equal(queue_len(&fx->ex), 0);
    assert_int_equal(fakes[FA].runs, 3);
}

/* max_starting 1: while a's start is being verified, b's start waits,
 * though slots are free; once a is verified, b runs. */
static void start_waits_while_another_start_is_verified(void **state)
{
    FX_OF(state);
    fx->ex.max_starting = 1;
    struct svc *a = fake_svc(fx, "a", 1, FS, 0), *b = fake_svc(fx, "b", 1, FS, 0);
    start(a);
    start(b);
    check_fails(a);
    fake_answer(a, EXEC_OK, "started");
    assert_int_equal(fx->ex.starting, 1);
    check_fails(b);
    assert_true(pending_queued(b));
    assert_int_equal(fx->ex.executing, 0);
    probe(a, true);
    assert_true(idle_without_action(a));
    assert_true(fake_running(b, FS));
}

/* ---- action timeout ---- */

/* A runs past action_timeout: at its last ms it still runs; at the next it
 * is cancelled, failed, and B runs. */
static void action_timeout_cancels_and_escalates(void **state)
{
    FX_OF(state);
    fx->ex.action_timeout_ms = 1000;
    struct svc *s = fake_svc(fx, "web", 2, FA, FB);
    start(s);
    check_fails(s);
    assert_true(fake_running(s, FA));
    advance(fx, 999);
    assert_true(fake_running(s, FA));
    assert_int_equal(fakes[FA].cancels, 0);
    advance(fx, 1);
    assert_int_equal(fakes[FA].cancels, 1);
    assert_false(fake_running(s, FA));
    assert_action(s, 0, "failover", "failed", "timed out after 1000 ms");
    assert_true(fake_running(s, FB));
    assert_int_equal(fx->ex.executing, 1);
    fake_answer(s, EXEC_OK, "b: done");
    probe(s, true);
    assert_action(s, 1, "rollback", "completed", "verified");
}

/* ---- verification ---- */

/* A works but the check never passes within verify (300 ms): at its last
 * ms still verifying, then failed, and B runs; B likewise: the chain is
 * exhausted, the service failed, a critical fault open. */
static void verification_window_expiry_escalates_then_gives_up(void **state)
{
    FX_OF(state);
    struct svc *s = fake_svc(fx, "web", 2, FA, FB);
    s->cfg.verify_ms = 300;
    start(s);
    check_fails(s);
    fake_answer(s, EXEC_OK, "a: done");
    assert_int_equal(s->rec.state, REC_VERIFYING);
    assert_int_equal(fakeclock_due_in_ms(&fx->fake, &s->rec.timer), 300);
    probe(s, false); /* below fall: the window decides */
    advance(fx, 299);
    assert_int_equal(s->rec.state, REC_VERIFYING);
    advance(fx, 1);
    assert_action(s, 0, "failover", "failed", "not verified within 300 ms: file missing");
    assert_true(fake_running(s, FB));
    fake_answer(s, EXEC_OK, "b: done");
    advance(fx, 300);
    assert_int_equal(s->rec.state, REC_GAVE_UP);
    assert_action(s, 1, "rollback", "failed", "not verified within 300 ms");
    assert_int_equal(s->st.state, STATE_FAILED);
    assert_true(s->faults.slots[SLOT_SUPERVISOR(&s->faults)].open);
    assert_int_equal(s->faults.slots[SLOT_SUPERVISOR(&s->faults)].fault->severity,
                     SEVERITY_CRITICAL);
    assert_int_equal(fakeclock_armed(&fx->fake), 0); /* gave up: no deadline left */
    advance(fx, 60000);
    assert_int_equal(n_actions(s), 2);
}

/* A check that was passing and fails `fall` times while an action is
 * verified (here an operator's) ends the verification at once, long before
 * the window: the action failed, its fault open. (A check failing since
 * before the action stays failing: only the window decides then.) */
static void failing_check_ends_verification_before_the_window(void **state)
{
    FX_OF(state);
    struct svc *s = fake_svc(fx, "web", 2, FA, FB);
    char err[128] = "";
    start(s);
    assert_int_equal(recovery_operate(&s->rec, 0, FB, err, sizeof err), 0);
    fake_answer(s, EXEC_OK, "b: done");
    assert_int_equal(s->rec.state, REC_VERIFYING);
    check_fails(s);
    assert_action(s, 0, "rollback", "failed", "not verified: file check failing: file missing");
    assert_true(analyzer_has_open(&s->faults));
    assert_int_equal(s->rec.state, REC_GAVE_UP); /* the operator's plan was [rollback] */
    assert_int_equal(clock_src_now_us(&fx->clock), 1000000000); /* no time passed */
}

/* ---- flap window ---- */

/* flap_window 10 s. The fault is verified away by A; back at the window's
 * last ms, it is the same fault reopened, and its chain resumes at B; back
 * once the window is over, it is a new fault and the chain starts again. */
static void flap_window_reopens_and_resumes_the_chain(void **state)
{
    FX_OF(state);
    struct svc *s = fake_svc(fx, "web", 2, FA, FB);
    s->cfg.flap_window_ms = 10000;
    start(s);
    check_fails(s);
    int64_t first = check_fault_id(s);
    fake_answer(s, EXEC_OK, "a: done");
    probe(s, true);
    assert_true(idle_without_action(s));
    assert_false(analyzer_has_open(&s->faults));
    advance(fx, 9999);
    check_fails(s);
    assert_int_equal(check_fault_id(s), first);
    assert_true(fake_running(s, FB)); /* resumed one step on */
    assert_int_equal(action_fault(s, 1), first);
    json_t *f = journal_fault_json(fx->journal, first);
    assert_true(json_is_null(json_object_get(f, "resolved_at")));
    json_decref(f);
    fake_answer(s, EXEC_OK, "b: done");
    probe(s, true);
    assert_true(idle_without_action(s));
    /* Back again within the window, B was the last: B again. */
    advance(fx, 100);
    check_fails(s);
    assert_int_equal(check_fault_id(s), first);
    assert_true(fake_running(s, FB));
    fake_answer(s, EXEC_OK, "b: done");
    probe(s, true);
    /* The window over: a new fault, the chain from its start. */
    advance(fx, 10000);
    check_fails(s);
    assert_int_not_equal(check_fault_id(s), first);
    assert_true(fake_running(s, FA));
    assert_int_equal(n_actions(s), 4);
}

/* ---- correlation ---- */

/* web depends on db. web's check fails: it correlates for a moment (1 s)
 * in case db's fault opens; an operator asking for a recovery meanwhile is
 * told so, not "action 0". No fault of db: at the moment's end web's fault
 * opens and its plan runs; the operator is then told which action runs. */
static void correlation_refuses_the_operator_then_opens_the_fault(void **state)
{
    FX_OF(state);
    struct svc *db = fake_svc(fx, "db", 1, FA, 0), *web = fake_svc(fx, "web", 1, FA, 0);
    svc_depends(web, db);
    start(db);
    start(web);
    check_fails(web);
    assert_int_equal(web->rec.state, REC_CORRELATING);
    assert_false(analyzer_has_open(&web->faults));
    char err[256] = "";
    assert_int_equal(recovery_operate(&web->rec, 0, FB, err, sizeof err), -EBUSY);
    assert_non_null(strstr(err, "web is correlating"));
    assert_null(strstr(err, "action 0"));
    advance(fx, 999);
    assert_int_equal(web->rec.state, REC_CORRELATING);
    advance(fx, 1);
    assert_true(analyzer_has_open(&web->faults));
    assert_true(fake_running(web, FA));
    assert_int_equal(recovery_operate(&web->rec, 0, FB, err, sizeof err), -EBUSY);
    char want[128];
    snprintf(want, sizeof want, "a recovery of web is in progress (action %lld: executing)",
             (long long)web->rec.action.id);
    assert_string_equal(err, want);
}

int main(void)
{
#define FX(t) cmocka_unit_test_setup_teardown(t, setup, fixture_teardown)
    const struct CMUnitTest tests[] = {
        FX(chain_escalates_until_a_strategy_is_verified),
        FX(retry_runs_the_same_strategy_again),
        FX(unusable_strategy_is_skipped),
        FX(backoff_delay_holds_no_slot),
        FX(queue_runs_first_attempts_before_repeat_offenders),
        FX(queue_runs_equal_attempts_in_arrival_order),
        FX(queued_recovery_is_never_queued_twice),
        FX(start_waits_while_another_start_is_verified),
        FX(action_timeout_cancels_and_escalates),
        FX(verification_window_expiry_escalates_then_gives_up),
        FX(failing_check_ends_verification_before_the_window),
        FX(flap_window_reopens_and_resumes_the_chain),
        FX(correlation_refuses_the_operator_then_opens_the_fault),
    };
#undef FX
    return cmocka_run_group_tests(tests, NULL, NULL);
}
