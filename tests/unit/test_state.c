/* Unit tests of the service and system state machines (monitor/state.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/clock.h"
#include "config/config-t.h"
#include "daemon/daemon.h"
#include "lib/model.h"
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
    [STATE_NORMAL] = {D, R, V, R, F, N, N},
    [STATE_DEGRADED] = {D, R, V, R, F, V, D},
    [STATE_FAILED] = {F, R, V, F, F, V, F},
    [STATE_RECOVERING] = {R, R, V, R, F, V, R},
    [STATE_RECOVERED] = {D, R, V, R, F, V, N},
};

#define MAX_SVC 3

struct fixture {
    char dir[64];                       /* mkdtemp directory */
    char path[128];                     /* dir/journal.db */
    uv_loop_t loop;                     /* the test's own loop */
    struct config cfg;                  /* only quiet_ms is read */
    struct service_cfg scfg[MAX_SVC];   /* unused by state.c but set like the daemon does */
    struct service svc[MAX_SVC];        /* built by hand */
    struct service *list[MAX_SVC];      /* d.services */
    struct daemon d;                    /* journal, loop, quiet timer, services */
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
    fx->cfg.quiet_ms = 30;
    fx->d.cfg = &fx->cfg;
    fx->d.loop = &fx->loop;
    fx->d.journal = journal_open(fx->path, err, sizeof err);
    if (!fx->d.journal)
        fail_msg("journal_open: %s", err);
    fx->d.state = STATE_NORMAL;
    fx->d.state_ms = clock_wall_ms();
    assert_int_equal(uv_timer_init(&fx->loop, &fx->d.quiet_timer), 0);
    fx->d.quiet_timer.data = &fx->d;
    static const char *const names[MAX_SVC] = {"web", "db", "cache"};
    for (int i = 0; i < MAX_SVC; i++) {
        struct service *s = &fx->svc[i];
        fx->scfg[i].name = (char *)names[i];
        s->d = &fx->d;
        s->cfg = &fx->scfg[i];
        snprintf(s->name, sizeof s->name, "%s", names[i]);
        s->state = STATE_NORMAL;
        s->n_checks = 0;
        s->slots = calloc(2, sizeof(struct fault_slot));
        assert_non_null(s->slots);
        fx->list[i] = s;
    }
    fx->d.services = fx->list;
    fx->d.n_services = 2; /* a test wanting the third raises it */
    *state = fx;
    return 0;
}

static int fixture_teardown(void **state)
{
    struct fixture *fx = *state;
    char p[160];
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    uv_close((uv_handle_t *)&fx->d.quiet_timer, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    journal_free(fx->d.journal);
    for (int i = 0; i < MAX_SVC; i++)
        free(fx->svc[i].slots);
    for (unsigned i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", fx->path, suffixes[i]);
        unlink(p);
    }
    rmdir(fx->dir);
    free(fx);
    return 0;
}

/* Transitions of service (NULL: the system's only), newest first. */
static json_t *transitions(struct fixture *fx, const char *service)
{
    json_t *all = journal_transitions_json(fx->d.journal, service, 1000);
    assert_non_null(all);
    if (service)
        return all;
    json_t *sys = json_array();
    size_t i;
    json_t *row;
    json_array_foreach(all, i, row)
        if (json_is_null(json_object_get(row, "service")))
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

static void open_fault(struct service *s, size_t slot, enum severity sev)
{
    s->slots[slot].open = true;
    s->slots[slot].fault.severity = sev;
}

static void state_next_covers_every_cell(void **state)
{
    (void)state;
    for (int from = 0; from < STATE__COUNT; from++)
        for (int ev = 0; ev < EV__COUNT; ev++) {
            enum state got = state_next((enum state)from, (enum state_event)ev);
            if (got != expected[from][ev])
                fail_msg("%s --%s--> %s, expected %s", state_name(from),
                         state_event_name(ev), state_name(got), state_name(expected[from][ev]));
        }
}

static void state_next_out_of_range_keeps_state(void **state)
{
    (void)state;
    for (int from = 0; from < STATE__COUNT; from++) {
        assert_int_equal(state_next((enum state)from, EV__COUNT), from);
        assert_int_equal(state_next((enum state)from, (enum state_event)-1), from);
    }
    assert_int_equal(state_next(STATE__COUNT, EV_GAVE_UP), STATE__COUNT);
}

static void state_event_name_spells_each_event(void **state)
{
    (void)state;
    static const char *const names[EV__COUNT] = {
        [EV_FAULT_OPENED] = "fault-opened",
        [EV_RECOVERY_STARTED] = "recovery-started",
        [EV_RECOVERY_SUCCEEDED] = "recovery-succeeded",
        [EV_RECOVERY_FAILED] = "recovery-failed",
        [EV_GAVE_UP] = "gave-up",
        [EV_FAULTS_CLEARED] = "faults-cleared",
        [EV_QUIET] = "quiet",
    };
    for (int ev = 0; ev < EV__COUNT; ev++)
        assert_string_equal(state_event_name((enum state_event)ev), names[ev]);
    assert_string_equal(state_event_name(EV__COUNT), "unknown");
    assert_string_equal(state_event_name((enum state_event)-1), "unknown");
}

static void state_service_event_journals_transition_with_cause(void **state)
{
    struct fixture *fx = *state;
    struct service *s = &fx->svc[0];
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
}

static void state_service_event_without_change_writes_no_row(void **state)
{
    struct fixture *fx = *state;
    struct service *s = &fx->svc[0];
    s->state = STATE_DEGRADED;
    s->state_ms = 1234;
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
    struct service *s = &fx->svc[1];
    open_fault(s, 0, SEVERITY_HIGH);
    state_service_event(s, EV_FAULT_OPENED, "db exited");
    assert_int_equal(fx->d.state, STATE_DEGRADED);
    assert_last_transition(fx, NULL, STATE_NORMAL, STATE_DEGRADED, "db exited");
}

static void state_system_failed_when_critical_fault_open(void **state)
{
    struct fixture *fx = *state;
    /* The supervisor's slot is the last one (n_checks + 1). */
    open_fault(&fx->svc[1], 1, SEVERITY_CRITICAL);
    state_system_update(&fx->d, "gave up");
    assert_int_equal(fx->d.state, STATE_FAILED);
    assert_int_equal(count_transitions(fx, NULL), 1);
    assert_last_transition(fx, NULL, STATE_NORMAL, STATE_FAILED, "gave up");
}

static void state_system_failed_when_a_service_failed(void **state)
{
    struct fixture *fx = *state;
    fx->svc[0].state = STATE_FAILED;
    state_system_update(&fx->d, "web failed");
    assert_int_equal(fx->d.state, STATE_FAILED);
}

static void state_system_critical_beats_recovering(void **state)
{
    struct fixture *fx = *state;
    fx->svc[0].state = STATE_RECOVERING;
    open_fault(&fx->svc[1], 0, SEVERITY_CRITICAL);
    state_system_update(&fx->d, "both");
    assert_int_equal(fx->d.state, STATE_FAILED);
}

static void state_system_recovering_while_a_service_recovers(void **state)
{
    struct fixture *fx = *state;
    open_fault(&fx->svc[0], 0, SEVERITY_HIGH);
    fx->svc[1].state = STATE_RECOVERING;
    state_system_update(&fx->d, "restart");
    assert_int_equal(fx->d.state, STATE_RECOVERING);
    assert_last_transition(fx, NULL, STATE_NORMAL, STATE_RECOVERING, "restart");
}

static void state_system_degraded_while_noncritical_fault_open(void **state)
{
    struct fixture *fx = *state;
    open_fault(&fx->svc[1], 1, SEVERITY_HIGH);
    state_system_update(&fx->d, "probe");
    assert_int_equal(fx->d.state, STATE_DEGRADED);
}

static void state_system_recovered_after_faults_close(void **state)
{
    struct fixture *fx = *state;
    open_fault(&fx->svc[0], 0, SEVERITY_HIGH);
    state_system_update(&fx->d, "opened");
    assert_int_equal(fx->d.state, STATE_DEGRADED);
    fx->svc[0].slots[0].open = false;
    state_system_update(&fx->d, "closed");
    assert_int_equal(fx->d.state, STATE_RECOVERED);
    assert_last_transition(fx, NULL, STATE_DEGRADED, STATE_RECOVERED, "closed");
    /* Not normal until the quiet period: a second update changes nothing. */
    state_system_update(&fx->d, "again");
    assert_int_equal(fx->d.state, STATE_RECOVERED);
    assert_int_equal(count_transitions(fx, NULL), 2);
    /* The system's own recovery arms the quiet period (no service did). */
    assert_true(uv_is_active((uv_handle_t *)&fx->d.quiet_timer));
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(fx->d.state, STATE_NORMAL);
    assert_last_transition(fx, NULL, STATE_RECOVERED, STATE_NORMAL, "quiet period elapsed");
}

static void state_system_stays_normal_without_faults(void **state)
{
    struct fixture *fx = *state;
    fx->svc[0].state = STATE_RECOVERED; /* a service's own state alone does not matter */
    state_system_update(&fx->d, "nothing");
    assert_int_equal(fx->d.state, STATE_NORMAL);
    assert_int_equal(count_transitions(fx, NULL), 0);
}

static void state_system_ignores_retired_services(void **state)
{
    struct fixture *fx = *state;
    fx->d.n_services = 3;
    fx->svc[2].retired = true;
    fx->svc[2].state = STATE_FAILED;
    open_fault(&fx->svc[2], 0, SEVERITY_CRITICAL);
    state_system_update(&fx->d, "retired");
    assert_int_equal(fx->d.state, STATE_NORMAL);
    fx->svc[2].retired = false;
    state_system_update(&fx->d, "live");
    assert_int_equal(fx->d.state, STATE_FAILED);
}

/* A service and the system recover; nothing is normal before quiet_ms. */
static void state_quiet_tick_waits_for_quiet_period(void **state)
{
    struct fixture *fx = *state;
    struct service *s = &fx->svc[0];
    open_fault(s, 0, SEVERITY_HIGH);
    state_service_event(s, EV_FAULT_OPENED, "opened");
    s->slots[0].open = false;
    uint64_t t0 = clock_mono_us();
    state_service_event(s, EV_RECOVERY_SUCCEEDED, "verified");
    assert_int_equal(s->state, STATE_RECOVERED);
    assert_int_equal(fx->d.state, STATE_RECOVERED);
    assert_true(uv_is_active((uv_handle_t *)&fx->d.quiet_timer));

    /* Too early: the tick must keep both recovered and re-arm itself. */
    state_quiet_tick(&fx->d);
    assert_int_equal(s->state, STATE_RECOVERED);
    assert_int_equal(fx->d.state, STATE_RECOVERED);
    assert_true(uv_is_active((uv_handle_t *)&fx->d.quiet_timer));

    /* The loop ends once the timer fired and did not re-arm. */
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    uint64_t waited_ms = (clock_mono_us() - t0) / 1000;
    assert_int_equal(s->state, STATE_NORMAL);
    assert_int_equal(fx->d.state, STATE_NORMAL);
    assert_true(waited_ms + 5 >= fx->cfg.quiet_ms);
    assert_true(waited_ms < 1000);
    assert_last_transition(fx, "web", STATE_RECOVERED, STATE_NORMAL, "quiet period elapsed");
    assert_last_transition(fx, NULL, STATE_RECOVERED, STATE_NORMAL, "quiet period elapsed");
    assert_false(uv_is_active((uv_handle_t *)&fx->d.quiet_timer));
}

/* A tick due for one service but not another moves only the due one. */
static void state_quiet_tick_moves_only_due_services(void **state)
{
    struct fixture *fx = *state;
    uint64_t now = clock_wall_ms();
    fx->cfg.quiet_ms = 200;
    fx->svc[0].state = STATE_RECOVERED;
    fx->svc[0].state_ms = now - 500;
    fx->svc[1].state = STATE_RECOVERED;
    fx->svc[1].state_ms = now;
    state_quiet_tick(&fx->d);
    assert_int_equal(fx->svc[0].state, STATE_NORMAL);
    assert_int_equal(fx->svc[1].state, STATE_RECOVERED);
    assert_true(uv_is_active((uv_handle_t *)&fx->d.quiet_timer));
    uint64_t due = uv_timer_get_due_in(&fx->d.quiet_timer);
    assert_true(due > 100 && due <= 200);
    /* Degraded and failed services are never touched by the quiet tick. */
    fx->svc[0].state = STATE_DEGRADED;
    fx->svc[0].state_ms = now - 500;
    state_quiet_tick(&fx->d);
    assert_int_equal(fx->svc[0].state, STATE_DEGRADED);
    uv_timer_stop(&fx->d.quiet_timer);
}

/* A service recovering on its own (the system never left normal) still gets
 * its quiet period. */
static void state_service_recovered_alone_turns_normal_after_quiet(void **state)
{
    struct fixture *fx = *state;
    struct service *s = &fx->svc[0];
    s->state = STATE_RECOVERING;
    state_service_event(s, EV_RECOVERY_SUCCEEDED, "verified");
    assert_int_equal(s->state, STATE_RECOVERED);
    assert_int_equal(fx->d.state, STATE_NORMAL);
    assert_true(uv_is_active((uv_handle_t *)&fx->d.quiet_timer));
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(s->state, STATE_NORMAL);
    assert_int_equal(count_transitions(fx, NULL), 0);
}

struct flapper {
    struct service *s;   /* the service that keeps recovering */
    unsigned left;       /* flaps to go */
};

static void flap_cb(uv_timer_t *t)
{
    struct flapper *fl = t->data;
    state_service_event(fl->s, EV_FAULT_OPENED, "flap");
    state_service_event(fl->s, EV_RECOVERY_SUCCEEDED, "flap verified");
    if (--fl->left == 0)
        uv_close((uv_handle_t *)t, NULL);
}

/* Regression (fixed): state__arm_quiet() used to restart the one quiet timer for the
 * full quiet_ms on every transition to recovered, pushing back the tick
 * already due for other services. While another service keeps recovering
 * more often than quiet_ms, the timer never fires and a service that
 * recovered long ago stays "recovered" indefinitely. Expected: it turns
 * normal quiet_ms after its own recovery (arm only when the timer is idle
 * or due later than quiet_ms from now; state_quiet_tick re-arms for the
 * rest anyway). */
static void state_quiet_tick_not_starved_by_another_service(void **state)
{
    struct fixture *fx = *state;
    struct service *a = &fx->svc[0];
    fx->cfg.quiet_ms = 100;
    a->state = STATE_DEGRADED;
    state_service_event(a, EV_RECOVERY_SUCCEEDED, "verified");
    uint64_t recovered_ms = a->state_ms;
    assert_int_equal(a->state, STATE_RECOVERED);

    /* db flaps every 40 ms for 400 ms. */
    uv_timer_t flap;
    struct flapper fl = {.s = &fx->svc[1], .left = 10};
    uv_timer_init(&fx->loop, &flap);
    flap.data = &fl;
    uv_timer_start(&flap, flap_cb, 40, 40);
    uv_run(&fx->loop, UV_RUN_DEFAULT);

    assert_int_equal(a->state, STATE_NORMAL);
    uint64_t late_ms = a->state_ms - recovered_ms;
    if (late_ms > fx->cfg.quiet_ms + 60)
        fail_msg("web turned normal %llu ms after recovering; quiet_ms is %llu",
                 (unsigned long long)late_ms, (unsigned long long)fx->cfg.quiet_ms);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(state_next_covers_every_cell),
        cmocka_unit_test(state_next_out_of_range_keeps_state),
        cmocka_unit_test(state_event_name_spells_each_event),
#define FX(t) cmocka_unit_test_setup_teardown(t, fixture_setup, fixture_teardown)
        FX(state_service_event_journals_transition_with_cause),
        FX(state_service_event_without_change_writes_no_row),
        FX(state_service_event_updates_system_state),
        FX(state_system_failed_when_critical_fault_open),
        FX(state_system_failed_when_a_service_failed),
        FX(state_system_critical_beats_recovering),
        FX(state_system_recovering_while_a_service_recovers),
        FX(state_system_degraded_while_noncritical_fault_open),
        FX(state_system_recovered_after_faults_close),
        FX(state_system_stays_normal_without_faults),
        FX(state_system_ignores_retired_services),
        FX(state_quiet_tick_waits_for_quiet_period),
        FX(state_quiet_tick_moves_only_due_services),
        FX(state_service_recovered_alone_turns_normal_after_quiet),
        FX(state_quiet_tick_not_starved_by_another_service),
#undef FX
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
