/* Unit tests of the analyzer (analyze/analyzer.c): faults born from what
 * checks and the supervisor saw, their identity while open, reopening
 * within the flap window, root causes among dependencies, the plan from
 * the rules, and faults adopted from a previous recoverd's journal. A real
 * journal and monitor; no loop activity beyond the monitor's timer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "analyze/analyzer.h"
#include "config/config-t.h"
#include "detect/check.h"
#include "fakeclock.h"
#include "lib/clock.h"
#include "lib/fault.h"
#include "lib/model.h"
#include "monitor/state.h"
#include "store/journal.h"

#define N_CHECKS 2

/* One service's analyzer part and what it borrows. */
struct part {
    char name[16];
    struct service_cfg cfg;
    struct check_cfg ccfg[N_CHECKS];
    struct check_set checks;
    struct check c[N_CHECKS];
    struct svc_state st;
    struct faults f;
    int advised; /* advisor calls */
};

struct fixture {
    char dir[64];
    char path[128];
    uv_loop_t loop;
    struct journal *journal;
    struct config config;
    struct monitor m;
    struct analysis an;
    struct fakeclock clock; /* the flap window's: moved by the tests */
    struct part web, db;
};

static void advise(void *ctx, const struct fault *f, json_t *context)
{
    struct part *p = ctx;
    p->advised++;
    json_object_set_new(context, "recommended", json_pack("[s]", "restart"));
}

static void part_init(struct fixture *fx, struct part *p, const char *name)
{
    snprintf(p->name, sizeof p->name, "%s", name);
    static const char *const names[N_CHECKS] = {"http", "tcp"};
    for (int i = 0; i < N_CHECKS; i++) {
        p->ccfg[i] = (struct check_cfg){.name = (char *)names[i],
                                        .kind = names[i],
                                        .fall = 3,
                                        .rise = 1,
                                        .severity = -1,
                                        .type = -1,
                                        .impact = -1};
        p->c[i].cfg = &p->ccfg[i];
        p->c[i].set = &p->checks;
        p->c[i].fails = 3;
    }
    p->checks.checks = p->c;
    p->checks.n = N_CHECKS;
    p->checks.service = p->name;
    p->cfg = (struct service_cfg){.name = p->name,
                                  .checks = p->ccfg,
                                  .n_checks = N_CHECKS,
                                  .flap_window_ms = 60000};
    p->f = (struct faults){.an = &fx->an,
                           .service = p->name,
                           .cfg = &p->cfg,
                           .state = &p->st,
                           .checks = &p->checks,
                           .advisor = {advise, p}};
    p->st.index = SIZE_MAX;
    assert_int_equal(faults_init(&p->f, N_CHECKS), 0);
    assert_int_equal(p->f.n_slots, N_CHECKS + 2);
    assert_int_equal(state_register(&fx->m, &p->st, p->name), 0);
}

static void open_journal(struct fixture *fx)
{
    char err[256] = "";
    fx->journal = journal_open(fx->path, err, sizeof err);
    if (!fx->journal)
        fail_msg("journal_open: %s", err);
}

static int fixture_setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/test_analyzer.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof fx->path, "%s/journal.db", fx->dir);
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    open_journal(fx);
    fx->config.rules[FAULT_SOFTWARE][0] = STRATEGY_RESTART;
    fx->config.rules[FAULT_SOFTWARE][1] = STRATEGY_REPAIR;
    fx->config.n_rules[FAULT_SOFTWARE] = 2;
    fx->config.rules[FAULT_NETWORK][0] = STRATEGY_REPAIR;
    fx->config.n_rules[FAULT_NETWORK] = 1;
    assert_int_equal(monitor_init(&fx->m, &fx->loop, fx->journal, 10000), 0);
    fakeclock_init(&fx->clock, 1000000000);
    fx->an = (struct analysis){.journal = fx->journal, .cfg = &fx->config, .clock = &fx->clock.src};
    part_init(fx, &fx->web, "web");
    part_init(fx, &fx->db, "db");
    *state = fx;
    return 0;
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    remove(path);
    return 0;
}

static int fixture_teardown(void **state)
{
    struct fixture *fx = *state;
    struct part *parts[] = {&fx->web, &fx->db};
    for (int i = 0; i < 2; i++) {
        state_unregister(&parts[i]->st);
        faults_close(&parts[i]->f);
    }
    monitor_close(&fx->m);
    int r = uv_run(&fx->loop, UV_RUN_DEFAULT);
    int closed = uv_loop_close(&fx->loop);
    journal_free(fx->journal);
    nftw(fx->dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
    free(fx);
    assert_int_equal(r, 0);
    assert_int_equal(closed, 0);
    return 0;
}

static struct observation obs_make(bool host_wide, const char *reason)
{
    struct observation o = {.type = FAULT_NETWORK,
                            .severity = SEVERITY_MEDIUM,
                            .host_wide = host_wide,
                            .code = 503,
                            .latency_us = 1500};
    snprintf(o.reason, sizeof o.reason, "%s", reason);
    return o;
}

static json_t *journal_fault(struct fixture *fx, int64_t id)
{
    json_t *f = journal_fault_json(fx->journal, id);
    assert_non_null(f);
    return f;
}

static const char *jstr(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* ---- opening ---- */

/* A check's fault: classified from the observation, one per source while
 * open, journaled with its context, counted, and the service degraded. */
static void check_failing_opens_one_fault_per_source(void **state)
{
    struct fixture *fx = *state;
    struct part *w = &fx->web;
    struct observation o = obs_make(false, "HTTP 503");
    w->c[0].fails_since_us = clock_mono_us() - 300000; /* the streak's first probe began */
    assert_int_equal(analyzer_check_failing(&w->f, 0, &o), FAULT_NEW);
    struct fault_slot *fs = &w->f.slots[SLOT_CHECK(0)];
    assert_true(fs->open);
    assert_true(fs->fault->id > 0);
    assert_string_equal(fs->fault->service, "web");
    assert_string_equal(fs->fault->check, "http");
    assert_int_equal(fs->fault->type, FAULT_NETWORK);
    assert_int_equal(fs->fault->severity, SEVERITY_MEDIUM);
    assert_int_equal(fs->fault->impact, IMPACT_SERVICE);
    assert_string_equal(fs->fault->description, "http check failing: HTTP 503");
    assert_int_equal(w->advised, 1);
    assert_int_equal(w->st.state, STATE_DEGRADED);
    assert_int_equal(w->st.open_faults, 1);
    assert_int_equal(fx->m.state, STATE_DEGRADED);
    json_t *j = journal_fault(fx, fs->fault->id);
    assert_string_equal(jstr(j, "description"), "http check failing: HTTP 503");
    json_t *ctx = json_object_get(j, "context");
    assert_string_equal(jstr(ctx, "check"), "http");
    assert_string_equal(jstr(ctx, "kind"), "http");
    assert_int_equal(json_integer_value(json_object_get(ctx, "code")), 503);
    assert_int_equal(json_integer_value(json_object_get(ctx, "consecutive_failures")), 3);
    /* Detection time: from that first failed probe's start to the opening. */
    json_int_t det = json_integer_value(json_object_get(ctx, "detection_ms"));
    assert_true(det >= 300 && det < 300 + 60000);
    assert_string_equal(jstr(ctx, "reason"), "HTTP 503");
    assert_non_null(json_object_get(ctx, "recommended")); /* the advisor's part */
    assert_true(json_is_null(json_object_get(j, "resolved_at")));
    json_decref(j);
    /* The same source again: the same fault, nothing new. */
    int64_t id = fs->fault->id;
    o = obs_make(false, "HTTP 500");
    assert_int_equal(analyzer_check_failing(&w->f, 0, &o), FAULT_ALREADY_OPEN);
    assert_int_equal(fs->fault->id, id);
    assert_int_equal(w->st.open_faults, 1);
    assert_int_equal(w->advised, 1);
    /* Another source: another fault. */
    assert_int_equal(analyzer_check_failing(&w->f, 1, &o), FAULT_NEW);
    assert_int_not_equal(w->f.slots[SLOT_CHECK(1)].fault->id, id);
    assert_int_equal(w->st.open_faults, 2);
    assert_true(analyzer_has_open(&w->f));
    assert_false(analyzer_has_open(&fx->db.f));
}

/* The check's configuration overrides the detector's classification; a
 * host-wide condition has system impact. */
static void check_cfg_overrides_classification(void **state)
{
    struct fixture *fx = *state;
    struct part *w = &fx->web;
    w->ccfg[0].severity = SEVERITY_CRITICAL;
    w->ccfg[0].type = FAULT_HARDWARE;
    struct observation o = obs_make(true, "disk full");
    assert_int_equal(analyzer_check_failing(&w->f, 0, &o), FAULT_NEW);
    struct fault *f = w->f.slots[SLOT_CHECK(0)].fault;
    assert_int_equal(f->severity, SEVERITY_CRITICAL);
    assert_int_equal(f->type, FAULT_HARDWARE);
    assert_int_equal(f->impact, IMPACT_SYSTEM); /* host_wide */
    assert_int_equal(w->st.critical, 1);
    assert_int_equal(fx->m.state, STATE_FAILED); /* a critical fault fails the system */
    w->ccfg[1].impact = IMPACT_LOCAL;
    assert_int_equal(analyzer_check_failing(&w->f, 1, &o), FAULT_NEW);
    assert_int_equal(w->f.slots[SLOT_CHECK(1)].fault->impact, IMPACT_LOCAL);
}

static void process_faults_describe_what_happened(void **state)
{
    struct fixture *fx = *state;
    struct part *w = &fx->web;
    char *cmd[] = {"/usr/bin/web", NULL};
    w->cfg.command = cmd;
    assert_int_equal(analyzer_process_exited(&w->f, 3, 0, 1200), FAULT_NEW);
    struct fault *f = w->f.slots[SLOT_PROCESS].fault;
    assert_string_equal(f->check, "process");
    assert_string_equal(f->description, "process exited with code 3 after 1200 ms");
    assert_int_equal(f->type, FAULT_SOFTWARE);
    assert_int_equal(f->severity, SEVERITY_HIGH);
    json_t *j = journal_fault(fx, f->id);
    json_t *ctx = json_object_get(j, "context");
    assert_int_equal(json_integer_value(json_object_get(ctx, "exit_code")), 3);
    assert_int_equal(json_integer_value(json_object_get(ctx, "uptime_ms")), 1200);
    /* A child's exit is seen as it happens: detected at once. */
    assert_true(json_is_integer(json_object_get(ctx, "detection_ms")));
    assert_int_equal(json_integer_value(json_object_get(ctx, "detection_ms")), 0);
    json_decref(j);
    analyzer_resolve_all(&w->f, "test", false);
    assert_int_equal(analyzer_process_exited(&w->f, 0, SIGKILL, 5), FAULT_NEW);
    assert_string_equal(f->description, "process killed by signal 9 (SIGKILL) after 5 ms");
    analyzer_resolve_all(&w->f, "test", false);
    assert_int_equal(analyzer_spawn_failed(&w->f, -ENOENT), FAULT_NEW);
    assert_string_equal(f->description, "cannot start /usr/bin/web: No such file or directory");
    j = journal_fault(fx, f->id);
    assert_string_equal(jstr(json_object_get(j, "context"), "error"), "ENOENT");
    json_decref(j);
    /* An external service. */
    analyzer_resolve_all(&w->f, "test", false);
    w->cfg.command = NULL;
    w->cfg.pidfile = "/run/web.pid";
    assert_int_equal(analyzer_process_exited(&w->f, -1, 0, 70), FAULT_NEW);
    assert_string_equal(f->description, "process (from /run/web.pid) is gone after 70 ms");
    analyzer_resolve_all(&w->f, "test", false);
    assert_int_equal(analyzer_external_missing(&w->f, -ESRCH), FAULT_NEW);
    assert_string_equal(f->description, "not running: /run/web.pid: no such process");
    analyzer_resolve_all(&w->f, "test", false);
    assert_int_equal(analyzer_external_missing(&w->f, -EINVAL), FAULT_NEW);
    assert_string_equal(f->description, "not running: /run/web.pid: does not hold a pid");
    analyzer_resolve_all(&w->f, "test", false);
    assert_int_equal(analyzer_external_missing(&w->f, -ENOENT), FAULT_NEW);
    assert_string_equal(f->description, "not running: /run/web.pid: No such file or directory");
}

/* ---- giving up ---- */

static void gave_up_is_a_critical_fault_of_its_own(void **state)
{
    struct fixture *fx = *state;
    struct part *w = &fx->web;
    struct observation o = obs_make(false, "down");
    analyzer_check_failing(&w->f, 0, &o);
    analyzer_gave_up(&w->f, "recovery chain exhausted", NULL);
    struct fault_slot *sup = &w->f.slots[SLOT_SUPERVISOR(&w->f)];
    assert_true(sup->open);
    assert_string_equal(sup->fault->check, "supervisor");
    assert_int_equal(sup->fault->severity, SEVERITY_CRITICAL);
    assert_int_equal(w->st.critical, 1);
    assert_int_equal(w->advised, 1); /* not for the supervisor's own fault */
    /* The trigger is the real fault, never the supervisor's. */
    assert_ptr_equal(analyzer_trigger(&w->f), w->f.slots[SLOT_CHECK(0)].fault);
    /* resolve_all leaves it; the operator's reset closes it. */
    assert_int_equal(analyzer_resolve_all(&w->f, "verified", true), 1);
    assert_true(sup->open);
    assert_null(analyzer_trigger(&w->f));
    assert_true(analyzer_has_open(&w->f));
    analyzer_resolve_supervisor(&w->f, "released");
    assert_false(sup->open);
    assert_false(analyzer_has_open(&w->f));
    assert_int_equal(w->st.critical, 0);
    assert_int_equal(w->st.open_faults, 0);
    analyzer_resolve_supervisor(&w->f, "again"); /* nothing open: nothing */
    assert_int_equal(w->st.open_faults, 0);
}

/* ---- resolving and reopening ---- */

static void resolve_all_closes_and_counts_history(void **state)
{
    struct fixture *fx = *state;
    struct part *w = &fx->web;
    struct observation o = obs_make(false, "x");
    analyzer_check_failing(&w->f, 0, &o);
    analyzer_process_exited(&w->f, 1, 0, 10);
    int64_t id = w->f.slots[SLOT_CHECK(0)].fault->id;
    assert_int_equal(analyzer_resolve_all(&w->f, "checks passing", false), 2);
    assert_int_equal(w->f.history_n, 2);
    assert_int_equal(w->st.open_faults, 0);
    assert_false(analyzer_has_open(&w->f));
    json_t *j = journal_fault(fx, id);
    assert_false(json_is_null(json_object_get(j, "resolved_at")));
    json_decref(j);
    assert_int_equal(analyzer_resolve_all(&w->f, "again", false), 0);
}

/* The same source failing again within flap_window of the verification
 * that resolved it: the same fault, reopened (same id, open again in the
 * journal). */
static void failure_within_flap_window_reopens_the_fault(void **state)
{
    struct fixture *fx = *state;
    struct part *w = &fx->web;
    struct observation o = obs_make(false, "first");
    analyzer_check_failing(&w->f, 0, &o);
    int64_t id = w->f.slots[SLOT_CHECK(0)].fault->id;
    assert_int_equal(analyzer_resolve_all(&w->f, "verified", true), 1);
    fakeclock_advance(&fx->clock, w->cfg.flap_window_ms - 1); /* the window's last ms */
    o = obs_make(false, "second");
    assert_int_equal(analyzer_check_failing(&w->f, 0, &o), FAULT_REOPENED);
    struct fault *f = w->f.slots[SLOT_CHECK(0)].fault;
    assert_int_equal(f->id, id);
    assert_true(w->f.slots[SLOT_CHECK(0)].open);
    assert_int_equal(f->resolved_ms, 0);
    assert_string_equal(f->description, "http check failing: second"); /* seen now */
    assert_int_equal(w->st.open_faults, 1);
    json_t *j = journal_fault(fx, id);
    assert_true(json_is_null(json_object_get(j, "resolved_at")));
    assert_string_equal(json_string_value(json_object_get(j, "description")),
                        "http check failing: second"); /* journaled with the reopening */
    json_decref(j);
    json_t *all = journal_faults_json(fx->journal, false, 0, 100);
    assert_int_equal(json_array_size(all), 1); /* no new row */
    json_decref(all);
}

/* Resolved without a verification (checks passing on their own), or with
 * the window over: a new fault. */
static void failure_outside_flap_window_is_a_new_fault(void **state)
{
    struct fixture *fx = *state;
    struct part *w = &fx->web;
    struct observation o = obs_make(false, "x");
    analyzer_check_failing(&w->f, 0, &o);
    int64_t first = w->f.slots[SLOT_CHECK(0)].fault->id;
    analyzer_resolve_all(&w->f, "checks passing again", false);
    assert_int_equal(analyzer_check_failing(&w->f, 0, &o), FAULT_NEW);
    int64_t second = w->f.slots[SLOT_CHECK(0)].fault->id;
    assert_int_not_equal(second, first);
    analyzer_resolve_all(&w->f, "verified", true);
    fakeclock_advance(&fx->clock, w->cfg.flap_window_ms); /* the window is over */
    assert_int_equal(analyzer_check_failing(&w->f, 0, &o), FAULT_NEW);
    assert_int_not_equal(w->f.slots[SLOT_CHECK(0)].fault->id, second);
}

/* ---- plans ---- */

static void plan_comes_from_the_rules_or_the_service_chain(void **state)
{
    struct fixture *fx = *state;
    struct part *w = &fx->web;
    int plan[STRATEGY__COUNT];
    struct fault net = {.type = FAULT_NETWORK}, soft = {.type = FAULT_SOFTWARE};
    assert_int_equal(analyzer_plan(&w->f, &soft, plan), 2);
    assert_int_equal(plan[0], STRATEGY_RESTART);
    assert_int_equal(plan[1], STRATEGY_REPAIR);
    assert_int_equal(analyzer_plan(&w->f, &net, plan), 1);
    assert_int_equal(plan[0], STRATEGY_REPAIR);
    assert_int_equal(analyzer_plan(&w->f, NULL, plan), 2); /* NULL: software */
    struct fault hw = {.type = FAULT_HARDWARE};
    assert_int_equal(analyzer_plan(&w->f, &hw, plan), 0); /* no rule */
    w->cfg.chain[0] = STRATEGY_REPAIR;
    w->cfg.n_chain = 1;
    assert_int_equal(analyzer_plan(&w->f, &soft, plan), 1);
    assert_int_equal(plan[0], STRATEGY_REPAIR);
    assert_int_equal(analyzer_plan(&w->f, &hw, plan), 1);
}

/* ---- dependencies ---- */

/* web depends on db: a web fault opened while db has one open is its
 * symptom (not a trigger, not advised); once db recovers, clearing the
 * symptoms makes it web's own. */
static void fault_of_a_dependent_is_a_symptom_of_the_root_cause(void **state)
{
    struct fixture *fx = *state;
    struct part *w = &fx->web, *d = &fx->db;
    struct faults *deps[] = {&d->f};
    w->f.deps = malloc(sizeof deps);
    memcpy(w->f.deps, deps, sizeof deps);
    w->f.n_deps = 1;
    assert_null(analyzer_root_cause(&w->f));
    d->cfg.command = (char *[]){"/usr/bin/db", NULL};
    analyzer_process_exited(&d->f, 1, 0, 10);
    const struct fault *root = analyzer_root_cause(&w->f);
    assert_non_null(root);
    assert_int_equal(root->id, d->f.slots[SLOT_PROCESS].fault->id);
    struct observation o = obs_make(false, "HTTP 502");
    assert_int_equal(analyzer_check_failing(&w->f, 0, &o), FAULT_NEW);
    struct fault_slot *fs = &w->f.slots[SLOT_CHECK(0)];
    assert_int_equal(fs->root, root->id);
    char want[256];
    snprintf(want, sizeof want, "http check failing: HTTP 502 (symptom of db fault %lld)",
             (long long)root->id);
    assert_string_equal(fs->fault->description, want);
    assert_int_equal(w->advised, 0);
    json_t *j = journal_fault(fx, fs->fault->id);
    json_t *rc = json_object_get(json_object_get(j, "context"), "root_cause");
    assert_string_equal(jstr(rc, "service"), "db");
    assert_int_equal(json_integer_value(json_object_get(rc, "fault")), root->id);
    json_decref(j);
    assert_null(analyzer_trigger(&w->f)); /* nothing to recover on web itself */
    assert_true(analyzer_has_open(&w->f));
    /* db recovers; web's symptom becomes its own fault. */
    analyzer_resolve_all(&d->f, "verified", true);
    assert_null(analyzer_root_cause(&w->f));
    assert_true(analyzer_clear_symptoms(&w->f));
    assert_int_equal(fs->root, 0);
    assert_ptr_equal(analyzer_trigger(&w->f), fs->fault);
    assert_false(analyzer_clear_symptoms(&w->f));
}

/* A symptom of a symptom is not a root cause. */
static void symptom_of_a_dependency_is_no_root_cause(void **state)
{
    struct fixture *fx = *state;
    struct part *w = &fx->web, *d = &fx->db;
    d->f.slots[SLOT_CHECK(0)].open = true;
    d->f.slots[SLOT_CHECK(0)].root = 99; /* db's own fault is a symptom of something else */
    w->f.deps = malloc(sizeof(struct faults *));
    w->f.deps[0] = &d->f;
    w->f.n_deps = 1;
    assert_null(analyzer_root_cause(&w->f));
    d->f.slots[SLOT_CHECK(0)].open = false;
    d->f.slots[SLOT_CHECK(0)].root = 0;
}

/* ---- adopted faults ---- */

/* Faults a previous recoverd left open come back into their slots (by
 * source); its "gave up" fault is resolved (a new recoverd is a fresh
 * start); the history of resolved faults is loaded. */
static void open_faults_are_adopted_from_the_journal(void **state)
{
    struct fixture *fx = *state;
    struct part *w = &fx->web;
    struct observation o = obs_make(false, "before the restart");
    w->cfg.command = (char *[]){"/usr/bin/web", NULL};
    analyzer_check_failing(&w->f, 1, &o);      /* tcp, open */
    analyzer_process_exited(&w->f, 2, 0, 100); /* process, open */
    analyzer_check_failing(&w->f, 0, &o);      /* http, resolved below */
    int64_t tcp = w->f.slots[SLOT_CHECK(1)].fault->id;
    int64_t proc = w->f.slots[SLOT_PROCESS].fault->id;
    struct fault_slot *http = &w->f.slots[SLOT_CHECK(0)];
    http->open = false;
    http->fault->resolved_ms = http->fault->opened_ms + 500;
    journal_fault_resolve(fx->journal, http->fault);
    analyzer_gave_up(&w->f, "exhausted", NULL);
    int64_t sup = w->f.slots[SLOT_SUPERVISOR(&w->f)].fault->id;
    /* A new recoverd: fresh parts over the same journal. */
    state_unregister(&w->st);
    faults_close(&w->f);
    memset(&w->st, 0, sizeof w->st);
    w->st.index = SIZE_MAX;
    assert_int_equal(state_register(&fx->m, &w->st, w->name), 0);
    w->f = (struct faults){.an = &fx->an,
                           .service = w->name,
                           .cfg = &w->cfg,
                           .state = &w->st,
                           .checks = &w->checks};
    assert_int_equal(faults_init(&w->f, N_CHECKS), 0);
    analyzer_adopt_open_faults(&w->f);
    assert_true(w->f.slots[SLOT_CHECK(1)].open);
    assert_int_equal(w->f.slots[SLOT_CHECK(1)].fault->id, tcp);
    assert_string_equal(w->f.slots[SLOT_CHECK(1)].fault->description,
                        "tcp check failing: before the restart");
    assert_true(w->f.slots[SLOT_PROCESS].open);
    assert_int_equal(w->f.slots[SLOT_PROCESS].fault->id, proc);
    assert_false(w->f.slots[SLOT_CHECK(0)].open);
    assert_false(w->f.slots[SLOT_SUPERVISOR(&w->f)].open);
    assert_int_equal(w->st.open_faults, 2);
    assert_int_equal(w->st.critical, 0);
    assert_int_equal(w->f.history_n, 1);
    assert_int_equal(w->f.history_ms, 500);
    json_t *j = journal_fault(fx, sup);
    assert_false(json_is_null(json_object_get(j, "resolved_at")));
    json_decref(j);
    /* Adopted faults resolve like any other. */
    assert_int_equal(analyzer_resolve_all(&w->f, "verified", true), 2);
    json_t *active = journal_faults_json(fx->journal, true, 0, 100);
    assert_int_equal(json_array_size(active), 0);
    json_decref(active);
}

/* New checks for a reload: fresh slots. */
static void reslot_gives_fresh_slots(void **state)
{
    struct fixture *fx = *state;
    struct part *w = &fx->web;
    struct observation o = obs_make(false, "x");
    analyzer_check_failing(&w->f, 0, &o);
    analyzer_resolve_all(&w->f, "ok", false);
    assert_int_equal(faults_reslot(&w->f, 5), 0);
    assert_int_equal(w->f.n_slots, 7);
    for (size_t i = 0; i < w->f.n_slots; i++) {
        assert_false(w->f.slots[i].open);
        assert_null(w->f.slots[i].fault);
    }
    w->checks.n = 0; /* the part's checks no longer match: restore fewer slots */
    assert_int_equal(faults_reslot(&w->f, N_CHECKS), 0);
    w->checks.n = N_CHECKS;
}

int main(void)
{
#define FX(t) cmocka_unit_test_setup_teardown(t, fixture_setup, fixture_teardown)
    const struct CMUnitTest tests[] = {
        FX(check_failing_opens_one_fault_per_source),
        FX(check_cfg_overrides_classification),
        FX(process_faults_describe_what_happened),
        FX(gave_up_is_a_critical_fault_of_its_own),
        FX(resolve_all_closes_and_counts_history),
        FX(failure_within_flap_window_reopens_the_fault),
        FX(failure_outside_flap_window_is_a_new_fault),
        FX(plan_comes_from_the_rules_or_the_service_chain),
        FX(fault_of_a_dependent_is_a_symptom_of_the_root_cause),
        FX(symptom_of_a_dependency_is_no_root_cause),
        FX(open_faults_are_adopted_from_the_journal),
        FX(reslot_gives_fresh_slots),
    };
#undef FX
    return cmocka_run_group_tests(tests, NULL, NULL);
}
