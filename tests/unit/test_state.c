/* Unit tests of the service and system state machines (monitor/state.c):
 * a struct monitor with its services' struct svc_state parts, a real
 * journal in a temporary directory and the test's own loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/model.h"
#include "loopwait.h"
#include "monitor/state.h"
#include "store/journal.h"

#define N STATE_NORMAL
#define D STATE_DEGRADED
#define F STATE_FAILED
#define R STATE_RECOVERING
#define V STATE_RECOVERED

/* Written from DESIGN.md's rules, not copied from state.c: columns in
 * STATE_EVENT_MAP order (fault-opened, recovery-started, recovery-succeeded,
 * recovery-failed, gave-up, faults-cleared, quiet). */
static const enum state expected[STATE__COUNT][EV__COUNT] = {
    /*                 opened started succeeded failed gave-up cleared quiet */
    [STATE_NORMAL] = {D, R, V, R, F, N, N},    [STATE_DEGRADED] = {D, R, V, R, F, V, D},
    [STATE_FAILED] = {F, R, V, F, F, V, F},    [STATE_RECOVERING] = {R, R, V, R, F, V, R},
    [STATE_RECOVERED] = {D, R, V, R, F, V, N},
};

#define MAX_SVC 3
#define QUIET_MS 30
/* No test waits anywhere near this long unless something is broken. */

static const char *const names[MAX_SVC] = {"web", "db", "cache"};

struct fixture {
    char dir[64];                 /* mkdtemp directory */
    char path[128];               /* dir/journal.db */
    uv_loop_t loop;               /* the test's own loop */
    struct journal *journal;      /* real */
    struct monitor m;             /* the system */
    struct svc_state st[MAX_SVC]; /* web and db registered; cache when a test wants it */
};

static int fixture_setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    char err[256] = "";
    assert_non_null(fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/test_state.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof fx->path, "%s/journal.db", fx->dir);
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    fx->journal = journal_open(fx->path, err, sizeof err);
    if (!fx->journal)
        fail_msg("journal_open: %s", err);
    assert_int_equal(monitor_init(&fx->m, &fx->loop, fx->journal, QUIET_MS), 0);
    for (int i = 0; i < MAX_SVC; i++)
        fx->st[i].index = SIZE_MAX;
    for (int i = 0; i < 2; i++)
        assert_int_equal(state_register(&fx->m, &fx->st[i], names[i]), 0);
    *state = fx;
    return 0;
}

static int fixture_teardown(void **state)
{
    struct fixture *fx = *state;
    char p[160];
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    monitor_close(&fx->m);
    assert_int_equal(uv_run(&fx->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    journal_free(fx->journal);
    for (unsigned i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", fx->path, suffixes[i]);
        unlink(p);
    }
    rmdir(fx->dir);
    free(fx);
    return 0;
}

/* Put service i in state s since ms, keeping the system's counts right
 * (out of the system, set, back in). */
static void put(struct fixture *fx, int i, enum state s, uint64_t ms)
{
    struct svc_state *st = &fx->st[i];
    state_unregister(st);
    st->state = s;
    st->state_ms = ms ? ms : clock_wall_ms();
    assert_int_equal(state_register(&fx->m, st, names[i]), 0);
}

/* Transitions of service (NULL: the system's only), newest first. */
static json_t *transitions(struct fixture *fx, const char *service)
{
    json_t *all = journal_transitions_json(fx->journal, service, 0, 1000);
    assert_non_null(all);
    if (service)
        return all;
    json_t *sys = json_array();
    size_t i;
    json_t *row;
    json_array_foreach(all, i, row) if (json_is_null(json_object_get(row, "service")))
        json_array_append(sys, row);
    json_decref(all);
    return sys;
}

static size_t count_transitions(struct fixture *fx, const char *service)
{
    json_t *rows = transitions(fx, service);
    size_t n = json_array_size(rows);
    json_decref(rows);
    return n;
}

/* The newest transition of service (NULL: system) is from -> to with cause. */
static void assert_last_transition(struct fixture *fx, const char *service, enum state from,
                                   enum state to, const char *cause)
{
    json_t *rows = transitions(fx, service);
    json_t *row = json_array_get(rows, 0);
    assert_non_null(row);
    assert_string_equal(json_string_value(json_object_get(row, "from")), state_name(from));
    assert_string_equal(json_string_value(json_object_get(row, "to")), state_name(to));
    assert_string_equal(json_string_value(json_object_get(row, "cause")), cause);
    json_decref(rows);
}

/* The system's counts agree with its registered services. */
static void assert_counts(struct fixture *fx)
{
    unsigned by_state[STATE__COUNT] = {0}, open = 0, critical = 0;
    for (size_t i = 0; i < fx->m.n; i++) {
        const struct svc_state *st = fx->m.list[i];
        assert_int_equal(st->index, i);
        assert_ptr_equal(st->m, &fx->m);
        by_state[st->state]++;
        open += st->open_faults;
        critical += st->critical;
    }
    for (int s = 0; s < STATE__COUNT; s++)
        assert_int_equal(fx->m.by_state[s], by_state[s]);
    assert_int_equal(fx->m.open_faults, open);
    assert_int_equal(fx->m.critical_faults, critical);
}

/* ---- the table ---- */

static void state_next_covers_every_cell(void **state)
{
    (void)state;
    for (int from = 0; from < STATE__COUNT; from++)
        for (int ev = 0; ev < EV__COUNT; ev++) {
            enum state got = state_next((enum state)from, (enum state_event)ev);
            if (got != expected[from][ev])
                fail_msg("%s --%s--> %s, expected %s", state_name(from), state_event_name(ev),
                         state_name(got), state_name(expected[from][ev]));
        }
}

static void state_next_out_of_range_keeps_state(void **state)
{
    (void)state;
    for (int from = 0; from < STATE__COUNT; from++) {
        assert_int_equal(state_next((enum state)from, EV__COUNT), from);
        assert_int_equal(state_next((enum state)from, (enum state_event) - 1), from);
    }
    assert_int_equal(state_next(STATE__COUNT, EV_GAVE_UP), STATE__COUNT);
}

static void state_event_name_spells_each_event(void **state)
{
    (void)state;
    static const char *const ev_names[EV__COUNT] = {
        [EV_FAULT_OPENED] = "fault-opened",
        [EV_RECOVERY_STARTED] = "recovery-started",
        [EV_RECOVERY_SUCCEEDED] = "recovery-succeeded",
        [EV_RECOVERY_FAILED] = "recovery-failed",
        [EV_GAVE_UP] = "gave-up",
        [EV_FAULTS_CLEARED] = "faults-cleared",
        [EV_QUIET] = "quiet",
    };
    for (int ev = 0; ev < EV__COUNT; ev++)
        assert_string_equal(state_event_name((enum state_event)ev), ev_names[ev]);
    assert_string_equal(state_event_name(EV__COUNT), "unknown");
    assert_string_equal(state_event_name((enum state_event) - 1), "unknown");
}

/* Every cell through state_service_event: the service lands where the
 * table says, a change writes one journal row, no change writes none, and
 * the system's counts follow. */
static void state_service_event_applies_every_cell(void **state)
{
    struct fixture *fx = *state;
    size_t rows = 0;
    for (int from = 0; from < STATE__COUNT; from++)
        for (int ev = 0; ev < EV__COUNT; ev++) {
            put(fx, 0, (enum state)from, 1000);
            state_service_event(&fx->st[0], (enum state_event)ev, "cell");
            assert_int_equal(fx->st[0].state, expected[from][ev]);
            bool moved = expected[from][ev] != (enum state)from;
            rows += moved;
            assert_int_equal(count_transitions(fx, "web"), rows);
            if (!moved)
                assert_int_equal(fx->st[0].state_ms, 1000);
            else
                assert_last_transition(fx, "web", from, expected[from][ev], "cell");
            assert_counts(fx);
        }
}

/* ---- a service's events ---- */

static void state_service_event_journals_transition_with_cause(void **state)
{
    struct fixture *fx = *state;
    struct svc_state *s = &fx->st[0];
    uint64_t before = clock_wall_ms();
    state_service_event(s, EV_FAULT_OPENED, "check http failing");
    assert_int_equal(s->state, STATE_DEGRADED);
    assert_true(s->state_ms >= before && s->state_ms <= clock_wall_ms());
    assert_int_equal(count_transitions(fx, "web"), 1);
    assert_last_transition(fx, "web", STATE_NORMAL, STATE_DEGRADED, "check http failing");
    assert_int_equal(count_transitions(fx, "db"), 0);

    state_service_event(s, EV_RECOVERY_STARTED, "restart");
    assert_int_equal(s->state, STATE_RECOVERING);
    assert_int_equal(count_transitions(fx, "web"), 2);
    assert_last_transition(fx, "web", STATE_DEGRADED, STATE_RECOVERING, "restart");
    assert_int_equal(fx->m.by_state[STATE_RECOVERING], 1);
    assert_int_equal(fx->m.by_state[STATE_NORMAL], 1);
    assert_counts(fx);
}

static void state_service_event_without_change_writes_no_row(void **state)
{
    struct fixture *fx = *state;
    struct svc_state *s = &fx->st[0];
    put(fx, 0, STATE_DEGRADED, 1234);
    state_service_event(s, EV_FAULT_OPENED, "again");
    state_service_event(s, EV_QUIET, "quiet");
    assert_int_equal(s->state, STATE_DEGRADED);
    assert_int_equal(s->state_ms, 1234);
    assert_int_equal(count_transitions(fx, NULL), 0);
    assert_int_equal(count_transitions(fx, "web"), 0);
}

static void state_service_event_updates_system_state(void **state)
{
    struct fixture *fx = *state;
    struct svc_state *s = &fx->st[1];
    state_fault_count(s, +1, false);
    state_service_event(s, EV_FAULT_OPENED, "db exited");
    assert_int_equal(fx->m.state, STATE_DEGRADED);
    assert_last_transition(fx, NULL, STATE_NORMAL, STATE_DEGRADED, "db exited");
}

/* ---- the system's state from the counts ---- */

static void state_fault_count_feeds_the_system_counts(void **state)
{
    struct fixture *fx = *state;
    state_fault_count(&fx->st[0], +1, false);
    state_fault_count(&fx->st[0], +1, true);
    state_fault_count(&fx->st[1], +1, true);
    assert_int_equal(fx->st[0].open_faults, 2);
    assert_int_equal(fx->st[0].critical, 1);
    assert_int_equal(fx->m.open_faults, 3);
    assert_int_equal(fx->m.critical_faults, 2);
    /* A count alone is no event: the system's state waits for one. */
    assert_int_equal(fx->m.state, STATE_NORMAL);
    assert_int_equal(count_transitions(fx, NULL), 0);
    state_fault_count(&fx->st[0], -1, true);
    state_fault_count(&fx->st[1], -1, true);
    assert_int_equal(fx->m.open_faults, 1);
    assert_int_equal(fx->m.critical_faults, 0);
    assert_counts(fx);
}

static void state_system_failed_when_critical_fault_open(void **state)
{
    struct fixture *fx = *state;
    state_fault_count(&fx->st[1], +1, true);
    state_system_update(&fx->m, "gave up");
    assert_int_equal(fx->m.state, STATE_FAILED);
    assert_int_equal(count_transitions(fx, NULL), 1);
    assert_last_transition(fx, NULL, STATE_NORMAL, STATE_FAILED, "gave up");
}

static void state_system_failed_when_a_service_failed(void **state)
{
    struct fixture *fx = *state;
    put(fx, 0, STATE_FAILED, 0);
    state_system_update(&fx->m, "web failed");
    assert_int_equal(fx->m.state, STATE_FAILED);
    /* Through the event too. */
    put(fx, 0, STATE_NORMAL, 0);
    state_system_update(&fx->m, "web normal");
    state_service_event(&fx->st[1], EV_GAVE_UP, "db gave up");
    assert_int_equal(fx->st[1].state, STATE_FAILED);
    assert_int_equal(fx->m.state, STATE_FAILED);
    assert_last_transition(fx, NULL, STATE_RECOVERED, STATE_FAILED, "db gave up");
}

static void state_system_critical_beats_recovering(void **state)
{
    struct fixture *fx = *state;
    put(fx, 0, STATE_RECOVERING, 0);
    state_fault_count(&fx->st[1], +1, true);
    state_system_update(&fx->m, "both");
    assert_int_equal(fx->m.state, STATE_FAILED);
}

static void state_system_recovering_while_a_service_recovers(void **state)
{
    struct fixture *fx = *state;
    state_fault_count(&fx->st[0], +1, false);
    put(fx, 1, STATE_RECOVERING, 0);
    state_system_update(&fx->m, "restart");
    assert_int_equal(fx->m.state, STATE_RECOVERING);
    assert_last_transition(fx, NULL, STATE_NORMAL, STATE_RECOVERING, "restart");
}

static void state_system_degraded_while_noncritical_fault_open(void **state)
{
    struct fixture *fx = *state;
    state_fault_count(&fx->st[1], +1, false);
    state_system_update(&fx->m, "probe");
    assert_int_equal(fx->m.state, STATE_DEGRADED);
}

static bool system_normal(struct fixture *fx)
{
    return fx->m.state == STATE_NORMAL;
}

static void state_system_recovered_after_faults_close(void **state)
{
    struct fixture *fx = *state;
    state_fault_count(&fx->st[0], +1, false);
    state_system_update(&fx->m, "opened");
    assert_int_equal(fx->m.state, STATE_DEGRADED);
    state_fault_count(&fx->st[0], -1, false);
    uv_update_time(&fx->loop);
    state_system_update(&fx->m, "closed");
    uint64_t recovered_ms = fx->m.state_ms;
    assert_int_equal(fx->m.state, STATE_RECOVERED);
    assert_last_transition(fx, NULL, STATE_DEGRADED, STATE_RECOVERED, "closed");
    /* Not normal until the quiet period: a second update changes nothing. */
    state_system_update(&fx->m, "again");
    assert_int_equal(fx->m.state, STATE_RECOVERED);
    assert_int_equal(count_transitions(fx, NULL), 2);
    /* The system's own recovery arms the quiet period (no service did). */
    assert_true(uv_is_active((uv_handle_t *)&fx->m.quiet_timer));
    loopwait_until(&fx->loop, system_normal(fx));
    assert_true(fx->m.state_ms >= recovered_ms + QUIET_MS);
    assert_last_transition(fx, NULL, STATE_RECOVERED, STATE_NORMAL, "quiet period elapsed");
}

static void state_system_stays_normal_without_faults(void **state)
{
    struct fixture *fx = *state;
    put(fx, 0, STATE_RECOVERED, 0); /* a service's own state alone does not matter */
    state_system_update(&fx->m, "nothing");
    assert_int_equal(fx->m.state, STATE_NORMAL);
    assert_int_equal(count_transitions(fx, NULL), 0);
}

/* A service out of the system (retired by a reload) counts for nothing;
 * registered, it counts with its state and faults. */
static void state_system_ignores_unregistered_services(void **state)
{
    struct fixture *fx = *state;
    struct svc_state *cache = &fx->st[2];
    cache->state = STATE_FAILED;
    cache->state_ms = clock_wall_ms();
    state_fault_count(cache, +1, true); /* not registered: its own count only */
    assert_int_equal(cache->open_faults, 1);
    assert_int_equal(fx->m.critical_faults, 0);
    state_system_update(&fx->m, "retired");
    assert_int_equal(fx->m.state, STATE_NORMAL);
    assert_int_equal(state_register(&fx->m, cache, "cache"), 0);
    assert_int_equal(cache->state, STATE_FAILED); /* a state it had is kept */
    assert_int_equal(fx->m.critical_faults, 1);
    state_system_update(&fx->m, "live");
    assert_int_equal(fx->m.state, STATE_FAILED);
    assert_counts(fx);
    /* Retired again: its counts leave with it, and the system recovers. */
    state_unregister(cache);
    assert_int_equal(cache->index, SIZE_MAX);
    assert_int_equal(fx->m.n, 2);
    assert_int_equal(fx->m.critical_faults, 0);
    assert_int_equal(fx->m.by_state[STATE_FAILED], 0);
    assert_counts(fx);
    state_system_update(&fx->m, "cache retired");
    assert_int_equal(fx->m.state, STATE_RECOVERED);
    /* Its events still journal but move no count. */
    state_service_event(cache, EV_RECOVERY_SUCCEEDED, "gone");
    assert_int_equal(cache->state, STATE_RECOVERED);
    assert_last_transition(fx, "cache", STATE_FAILED, STATE_RECOVERED, "gone");
    assert_counts(fx);
    state_unregister(cache); /* twice: nothing */
    assert_int_equal(fx->m.n, 2);
}

/* Registering past the first allocation keeps every index right, and an
 * unregister from the middle moves the last one into its place. */
static void state_register_many_and_unregister_from_the_middle(void **state)
{
    struct fixture *fx = *state;
    enum { MANY = 40 };
    struct svc_state *v = calloc(MANY, sizeof *v);
    char(*nm)[16] = calloc(MANY, sizeof *nm);
    assert_non_null(v);
    assert_non_null(nm);
    for (int i = 0; i < MANY; i++) {
        snprintf(nm[i], sizeof nm[i], "s%d", i);
        assert_int_equal(state_register(&fx->m, &v[i], nm[i]), 0);
        if (i % 3 == 0)
            state_fault_count(&v[i], +1, i % 2 == 0);
    }
    assert_int_equal(fx->m.n, MANY + 2);
    assert_counts(fx);
    for (int i = 0; i < MANY; i += 2)
        state_unregister(&v[i]);
    assert_int_equal(fx->m.n, MANY / 2 + 2);
    assert_counts(fx);
    for (int i = 1; i < MANY; i += 2)
        state_unregister(&v[i]);
    assert_int_equal(fx->m.n, 2);
    assert_int_equal(fx->m.open_faults, 0);
    assert_int_equal(fx->m.critical_faults, 0);
    assert_counts(fx);
    free(v);
    free(nm);
}

/* The system's state the rules give for its registered services, from a
 * full scan (what state.c derives from its counts). */
static enum state recount_system(const struct fixture *fx)
{
    bool failed = false, recovering = false, open = false;
    for (size_t i = 0; i < fx->m.n; i++) {
        const struct svc_state *st = fx->m.list[i];
        failed |= st->critical > 0 || st->state == STATE_FAILED;
        recovering |= st->state == STATE_RECOVERING;
        open |= st->open_faults > 0;
    }
    if (failed)
        return STATE_FAILED;
    if (recovering)
        return STATE_RECOVERING;
    if (open)
        return STATE_DEGRADED;
    return fx->m.state == STATE_NORMAL ? STATE_NORMAL : STATE_RECOVERED;
}

/* Random events, fault counts, retirements and returns: after every step
 * the O(1) counts equal a full recount, and so does the system's state. */
static void state_counts_agree_with_a_recount_after_random_events(void **state)
{
    struct fixture *fx = *state;
    enum { SVC = 24, STEPS = 1500 };
    struct svc_state *v = calloc(SVC, sizeof *v);
    bool *critical = calloc(SVC * 8, sizeof *critical); /* each open fault's severity */
    char(*nm)[16] = calloc(SVC, sizeof *nm);
    assert_non_null(v);
    assert_non_null(critical);
    assert_non_null(nm);
    for (int i = 0; i < SVC; i++) {
        snprintf(nm[i], sizeof nm[i], "r%d", i);
        assert_int_equal(state_register(&fx->m, &v[i], nm[i]), 0);
    }
    unsigned seed = 20261201;
    for (int step = 0; step < STEPS; step++) {
        int i = rand_r(&seed) % SVC;
        struct svc_state *st = &v[i];
        bool *sev = &critical[i * 8];
        switch (rand_r(&seed) % 5) {
        case 0:
        case 1:
            state_service_event(st, (enum state_event)(rand_r(&seed) % EV__COUNT), "random");
            break;
        case 2:
            if (st->open_faults < 8) {
                sev[st->open_faults] = rand_r(&seed) % 4 == 0;
                state_fault_count(st, +1, sev[st->open_faults]);
            } else {
                state_fault_count(st, -1, sev[st->open_faults - 1]);
            }
            state_system_update(&fx->m, "fault");
            break;
        case 3:
            if (st->open_faults) {
                state_fault_count(st, -1, sev[st->open_faults - 1]);
                state_system_update(&fx->m, "resolved");
            }
            break;
        default:
            if (st->index == SIZE_MAX)
                assert_int_equal(state_register(&fx->m, st, nm[i]), 0);
            else
                state_unregister(st);
            state_system_update(&fx->m, "membership");
            break;
        }
        assert_counts(fx);
        assert_int_equal(fx->m.state, recount_system(fx));
    }
    for (int i = 0; i < SVC; i++)
        state_unregister(&v[i]);
    assert_int_equal(fx->m.n, 2);
    assert_counts(fx);
    free(v);
    free(critical);
    free(nm);
}

/* ---- the quiet period ---- */

static bool web_and_system_normal(struct fixture *fx)
{
    return fx->st[0].state == STATE_NORMAL && fx->m.state == STATE_NORMAL;
}

/* A service and the system recover; nothing is normal before quiet_ms. */
static void state_quiet_tick_waits_for_quiet_period(void **state)
{
    struct fixture *fx = *state;
    struct svc_state *s = &fx->st[0];
    fx->m.quiet_ms = 200;
    state_fault_count(s, +1, false);
    state_service_event(s, EV_FAULT_OPENED, "opened");
    state_fault_count(s, -1, false);
    uv_update_time(&fx->loop);
    state_service_event(s, EV_RECOVERY_SUCCEEDED, "verified");
    uint64_t recovered_ms = s->state_ms;
    assert_int_equal(s->state, STATE_RECOVERED);
    assert_int_equal(fx->m.state, STATE_RECOVERED);
    assert_true(uv_is_active((uv_handle_t *)&fx->m.quiet_timer));

    /* Too early: the tick must keep both recovered and re-arm itself. It
     * reads the wall clock after `before`: if even `after` is short of the
     * quiet period, so was the tick. */
    state_quiet_tick(&fx->m);
    uint64_t after = clock_wall_ms();
    if (after < recovered_ms + fx->m.quiet_ms) {
        assert_int_equal(s->state, STATE_RECOVERED);
        assert_int_equal(fx->m.state, STATE_RECOVERED);
    }
    assert_true(uv_is_active((uv_handle_t *)&fx->m.quiet_timer));

    /* Then both turn normal, not before the quiet period by the clock the
     * code itself reads, and the timer does not re-arm. */
    loopwait_until(&fx->loop, web_and_system_normal(fx));
    assert_true(s->state_ms >= recovered_ms + fx->m.quiet_ms);
    assert_true(fx->m.state_ms >= recovered_ms + fx->m.quiet_ms);
    assert_last_transition(fx, "web", STATE_RECOVERED, STATE_NORMAL, "quiet period elapsed");
    assert_last_transition(fx, NULL, STATE_RECOVERED, STATE_NORMAL, "quiet period elapsed");
    assert_false(uv_is_active((uv_handle_t *)&fx->m.quiet_timer));
}

/* A tick due for one service but not another moves only the due one. */
static void state_quiet_tick_moves_only_due_services(void **state)
{
    struct fixture *fx = *state;
    uint64_t now = clock_wall_ms();
    fx->m.quiet_ms = 200;
    put(fx, 0, STATE_RECOVERED, now - 500);
    put(fx, 1, STATE_RECOVERED, now);
    uv_update_time(&fx->loop);
    state_quiet_tick(&fx->m);
    assert_int_equal(fx->st[0].state, STATE_NORMAL);
    assert_int_equal(fx->st[1].state, STATE_RECOVERED);
    assert_true(uv_is_active((uv_handle_t *)&fx->m.quiet_timer));
    /* Re-armed for what is left of db's period, never more. */
    uint64_t due = loopwait_due_in(&fx->m.quiet_timer);
    assert_true(due > 0 && due <= 200);
    /* Degraded and failed services are never touched by the quiet tick. */
    put(fx, 0, STATE_DEGRADED, now - 500);
    put(fx, 2, STATE_FAILED, now - 500);
    state_quiet_tick(&fx->m);
    assert_int_equal(fx->st[0].state, STATE_DEGRADED);
    assert_int_equal(fx->st[2].state, STATE_FAILED);
    assert_counts(fx);
    uv_timer_stop(&fx->m.quiet_timer);
}

static bool web_normal(struct fixture *fx)
{
    return fx->st[0].state == STATE_NORMAL;
}

/* A service recovering on its own (the system never left normal) still gets
 * its quiet period. */
static void state_service_recovered_alone_turns_normal_after_quiet(void **state)
{
    struct fixture *fx = *state;
    struct svc_state *s = &fx->st[0];
    put(fx, 0, STATE_RECOVERING, 0);
    uv_update_time(&fx->loop);
    state_service_event(s, EV_RECOVERY_SUCCEEDED, "verified");
    uint64_t recovered_ms = s->state_ms;
    assert_int_equal(s->state, STATE_RECOVERED);
    assert_int_equal(fx->m.state, STATE_NORMAL);
    assert_true(uv_is_active((uv_handle_t *)&fx->m.quiet_timer));
    loopwait_until(&fx->loop, web_normal(fx));
    assert_true(s->state_ms >= recovered_ms + QUIET_MS);
    assert_int_equal(count_transitions(fx, NULL), 0);
}

struct flapper {
    struct fixture *fx;
    struct svc_state *s;      /* the service that keeps recovering */
    unsigned left;            /* flaps to go */
    bool other_turned_normal; /* web was normal while db still flapped */
};

static void flap_cb(uv_timer_t *t)
{
    struct flapper *fl = t->data;
    if (fl->fx->st[0].state == STATE_NORMAL) {
        fl->other_turned_normal = true;
        uv_close((uv_handle_t *)t, NULL);
        return;
    }
    state_service_event(fl->s, EV_FAULT_OPENED, "flap");
    state_service_event(fl->s, EV_RECOVERY_SUCCEEDED, "flap verified");
    if (--fl->left == 0)
        uv_close((uv_handle_t *)t, NULL);
}

static bool flapper_done(struct fixture *fx)
{
    return fx->st[0].state == STATE_NORMAL && fx->st[1].state == STATE_NORMAL;
}

/* Regression (fixed): state__arm_quiet() used to restart the one quiet timer for the
 * full quiet_ms on every transition to recovered, pushing back the tick
 * already due for other services. While another service keeps recovering
 * more often than quiet_ms, the timer never fires and a service that
 * recovered long ago stays "recovered" indefinitely. Expected: it turns
 * normal quiet_ms after its own recovery, while the other still flaps
 * (which goes on for 20 quiet periods at most). Order, not durations. */
static void state_quiet_tick_not_starved_by_another_service(void **state)
{
    struct fixture *fx = *state;
    struct svc_state *a = &fx->st[0];
    fx->m.quiet_ms = 100;
    put(fx, 0, STATE_DEGRADED, 0);
    uv_update_time(&fx->loop);
    state_service_event(a, EV_RECOVERY_SUCCEEDED, "verified");
    assert_int_equal(a->state, STATE_RECOVERED);

    /* db flaps every 20 ms: five times within each quiet period. */
    uv_timer_t flap;
    struct flapper fl = {.fx = fx, .s = &fx->st[1], .left = 100};
    uv_timer_init(&fx->loop, &flap);
    flap.data = &fl;
    uv_timer_start(&flap, flap_cb, 20, 20);
    loopwait_until(&fx->loop, flapper_done(fx));
    assert_true(fl.other_turned_normal);
    assert_true(fl.left > 0);
    assert_int_equal(a->state, STATE_NORMAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(state_next_covers_every_cell),
        cmocka_unit_test(state_next_out_of_range_keeps_state),
        cmocka_unit_test(state_event_name_spells_each_event),
#define FX(t) cmocka_unit_test_setup_teardown(t, fixture_setup, fixture_teardown)
        FX(state_service_event_applies_every_cell),
        FX(state_service_event_journals_transition_with_cause),
        FX(state_service_event_without_change_writes_no_row),
        FX(state_service_event_updates_system_state),
        FX(state_fault_count_feeds_the_system_counts),
        FX(state_system_failed_when_critical_fault_open),
        FX(state_system_failed_when_a_service_failed),
        FX(state_system_critical_beats_recovering),
        FX(state_system_recovering_while_a_service_recovers),
        FX(state_system_degraded_while_noncritical_fault_open),
        FX(state_system_recovered_after_faults_close),
        FX(state_system_stays_normal_without_faults),
        FX(state_system_ignores_unregistered_services),
        FX(state_register_many_and_unregister_from_the_middle),
        FX(state_counts_agree_with_a_recount_after_random_events),
        FX(state_quiet_tick_waits_for_quiet_period),
        FX(state_quiet_tick_moves_only_due_services),
        FX(state_service_recovered_alone_turns_normal_after_quiet),
        FX(state_quiet_tick_not_starved_by_another_service),
#undef FX
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
