/* Unit tests of the SQLite journal: schema, durability, round trips and views. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/fault.h"
#include "lib/histogram.h"
#include "loopwait.h"
#include "store/journal.h"
#include "syncvfs.h"

#define T0 1764070768123ULL /* 2025-11-25T11:39:28.123Z */

struct fixture {
    char dir[64];   /* mkdtemp directory */
    char path[128]; /* dir/journal.db */
};

static int fixture_setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/test_journal.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof fx->path, "%s/journal.db", fx->dir);
    *state = fx;
    return 0;
}

/* Everything in the directory goes: journals moved aside, baits, links. */
static int fixture_teardown(void **state)
{
    struct fixture *fx = *state;
    char p[400];
    DIR *dir = opendir(fx->dir);
    const struct dirent *e;
    while (dir && (e = readdir(dir)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            snprintf(p, sizeof p, "%s/%s", fx->dir, e->d_name);
            unlink(p);
        }
    if (dir)
        closedir(dir);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

static struct journal *open_ok(const struct fixture *fx)
{
    char err[256] = "";
    struct journal *j = journal_open(fx->path, err, sizeof err);
    if (!j)
        fail_msg("journal_open: %s", err);
    return j;
}

static struct fault make_fault(const char *service, enum fault_type type, enum severity sev,
                               enum impact imp, uint64_t opened_ms)
{
    struct fault f = {.type = type, .severity = sev, .impact = imp, .opened_ms = opened_ms};
    snprintf(f.service, sizeof f.service, "%s", service);
    snprintf(f.check, sizeof f.check, "process");
    snprintf(f.description, sizeof f.description, "%s exited", service);
    f.context = (char *)"{\"exit_code\":3}"; /* a literal: never freed */
    return f;
}

static struct action make_action(int64_t fault_id, const char *service, uint64_t created_ms)
{
    struct action a = {.fault_id = fault_id,
                       .strategy = STRATEGY_RESTART,
                       .status = ACTION_PENDING,
                       .created_ms = created_ms};
    a.service = service;
    a.params = (char *)"{\"delay_ms\":400}";
    return a;
}

/* Prune until nothing is due, as the daemon does, each batch flushed.
 * Writes may wait in memory (journal_prune does nothing then): while the
 * checkpointer starts the WAL over, or after the disk refused one (a lock
 * held elsewhere); they go at a later flush, as at the daemon's next loop
 * turn or retry. */
static void prune_settled(struct journal *j, uint64_t now, unsigned rows)
{
    for (;;) {
        poll_until(journal_flush(j) == 0);
        int n = journal_prune(j, now, rows);
        assert_true(n >= 0);
        if (n == 0 && journal_flush(j) == 0)
            return;
    }
}

static int64_t sql_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

static void assert_json_str(const json_t *o, const char *key, const char *want)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        fail_msg("%s is not a string", key);
    assert_string_equal(json_string_value(v), want);
}

static void journal_open_creates_schema_private_wal(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = open_ok(fx);
    struct stat st;
    assert_int_equal(stat(fx->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    struct fault f = make_fault("web", FAULT_SOFTWARE, SEVERITY_HIGH, IMPACT_SERVICE, T0);
    assert_int_equal(journal_fault_open(j, &f), 0);
    char wal[160];
    snprintf(wal, sizeof wal, "%s-wal", fx->path);
    assert_int_equal(stat(wal, &st), 0); /* SQLite copies the main file's mode */
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_true(sql_int(fx->path, "PRAGMA user_version") >= 2);
    assert_int_equal(sql_int(fx->path, "SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                                       "AND name IN ('faults','actions','transitions','children',"
                                       "'alert_queue','alert_open')"),
                     6);
    assert_int_equal(sql_int(fx->path, "SELECT count(*) FROM sqlite_master WHERE type = 'index' "
                                       "AND name IN ('faults_active','actions_by_fault')"),
                     2);
    /* WAL is a property of the file: a second connection sees it. */
    sqlite3 *db;
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    sqlite3_close(db);
    journal_free(j);
}

static void journal_open_rejects_newer_schema(void **state)
{
    struct fixture *fx = *state;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    char err[256] = "";
    assert_null(journal_open(fx->path, err, sizeof err));
    assert_non_null(strstr(err, "newer"));
}

static void journal_open_fails_with_message_for_missing_directory(void **state)
{
    struct fixture *fx = *state;
    char path[200], err[256] = "";
    snprintf(path, sizeof path, "%s/no/such/dir/journal.db", fx->dir);
    assert_null(journal_open(path, err, sizeof err));
    assert_non_null(strstr(err, "no/such/dir"));
}

static void journal_reopen_keeps_history(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = open_ok(fx);
    struct fault f = make_fault("web", FAULT_SOFTWARE, SEVERITY_HIGH, IMPACT_SERVICE, T0);
    assert_int_equal(journal_fault_open(j, &f), 0);
    struct action a = make_action(f.id, "web", T0 + 1);
    assert_int_equal(journal_action_insert(j, &a), 0);
    assert_int_equal(journal_transition(j, "web", STATE_NORMAL, STATE_FAILED, "exit 3", T0), 0);
    journal_free(j);

    j = open_ok(fx);
    int64_t active, resolved, actions;
    assert_int_equal(journal_counts(j, &active, &resolved, &actions), 0);
    assert_int_equal(active, 1);
    assert_int_equal(resolved, 0);
    assert_int_equal(actions, 1);
    json_t *t = journal_transitions_json(j, NULL, 0, 0);
    assert_int_equal(json_array_size(t), 1);
    assert_json_str(json_array_get(t, 0), "cause", "exit 3");
    json_decref(t);
    /* New rows continue the ids rather than reuse them. */
    struct fault g = make_fault("db", FAULT_NETWORK, SEVERITY_LOW, IMPACT_LOCAL, T0 + 5);
    assert_int_equal(journal_fault_open(j, &g), 0);
    assert_true(g.id > f.id);
    journal_free(j);
}

static void journal_fault_open_assigns_id_and_resolve_sets_resolved_at(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = open_ok(fx);
    struct fault f = make_fault("web", FAULT_SOFTWARE, SEVERITY_HIGH, IMPACT_SERVICE, T0);
    assert_int_equal(journal_fault_open(j, &f), 0);
    assert_true(f.id > 0);

    json_t *o = journal_fault_json(j, f.id);
    assert_non_null(o);
    assert_true(json_is_null(json_object_get(o, "resolved_at")));
    assert_true(json_is_null(json_object_get(o, "duration_ms")));
    assert_json_str(o, "opened_at", "2025-11-25T11:39:28.123Z");
    json_decref(o);

    f.resolved_ms = T0 + 2500;
    assert_int_equal(journal_fault_resolve(j, &f), 0);
    o = journal_fault_json(j, f.id);
    assert_json_str(o, "resolved_at", "2025-11-25T11:39:30.623Z");
    assert_int_equal(json_integer_value(json_object_get(o, "duration_ms")), 2500);
    assert_json_str(o, "service", "web");
    assert_json_str(o, "check", "process");
    assert_json_str(o, "type", "software");
    assert_json_str(o, "severity", "high");
    assert_json_str(o, "impact", "service");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "context"),
                                                        "exit_code")),
                     3);
    json_decref(o);
    journal_free(j);
}

/* A fault back within its flap window: open again under its id, with what
 * was seen this time, and back among the open faults a restarted recoverd
 * adopts. */
static void journal_fault_reopen_clears_resolved_and_records_the_new_description(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = open_ok(fx);
    struct fault f = make_fault("web", FAULT_SOFTWARE, SEVERITY_HIGH, IMPACT_SERVICE, T0);
    assert_int_equal(journal_fault_open(j, &f), 0);
    f.resolved_ms = T0 + 2500;
    assert_int_equal(journal_fault_resolve(j, &f), 0);
    f.resolved_ms = 0;
    snprintf(f.description, sizeof f.description, "http check failing: 503 \"again\"");
    assert_int_equal(journal_fault_reopen(j, &f), 0);
    json_t *o = journal_fault_json(j, f.id);
    assert_true(json_is_null(json_object_get(o, "resolved_at")));
    assert_true(json_is_null(json_object_get(o, "duration_ms")));
    assert_json_str(o, "description", "http check failing: 503 \"again\"");
    assert_json_str(o, "opened_at", "2025-11-25T11:39:28.123Z"); /* the same fault */
    json_decref(o);
    journal_free(j);
    j = open_ok(fx);
    struct fault *open = NULL;
    assert_int_equal(journal_faults_open_for(j, "web", &open), 1);
    assert_int_equal(open[0].id, f.id);
    assert_string_equal(open[0].description, "http check failing: 503 \"again\"");
    fault_release(&open[0]);
    free(open);
    journal_free(j);
}

static void journal_fault_json_unknown_id_is_null(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = open_ok(fx);
    assert_null(journal_fault_json(j, 42));
    journal_free(j);
}

static void journal_faults_open_for_returns_only_open_faults_of_service(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = open_ok(fx);
    struct fault a = make_fault("web", FAULT_SOFTWARE, SEVERITY_HIGH, IMPACT_SERVICE, T0);
    struct fault b = make_fault("web", FAULT_NETWORK, SEVERITY_MEDIUM, IMPACT_LOCAL, T0 + 1);
    struct fault c = make_fault("web", FAULT_RESOURCE, SEVERITY_CRITICAL, IMPACT_GLOBAL, T0 + 2);
    struct fault other = make_fault("db", FAULT_SOFTWARE, SEVERITY_HIGH, IMPACT_SERVICE, T0);
    assert_int_equal(journal_fault_open(j, &a), 0);
    assert_int_equal(journal_fault_open(j, &b), 0);
    assert_int_equal(journal_fault_open(j, &c), 0);
    assert_int_equal(journal_fault_open(j, &other), 0);
    b.resolved_ms = T0 + 10;
    assert_int_equal(journal_fault_resolve(j, &b), 0);

    struct fault *v = NULL;
    assert_int_equal(journal_faults_open_for(j, "web", &v), 2);
    assert_int_equal(v[0].id, a.id); /* oldest first */
    assert_int_equal(v[1].id, c.id);
    assert_string_equal(v[1].service, "web");
    assert_string_equal(v[1].check, "process");
    assert_int_equal(v[1].type, FAULT_RESOURCE);
    assert_int_equal(v[1].severity, SEVERITY_CRITICAL);
    assert_int_equal(v[1].impact, IMPACT_GLOBAL);
    assert_string_equal(v[1].description, "web exited");
    assert_string_equal(v[1].context, "{\"exit_code\":3}");
    assert_int_equal(v[1].opened_ms, T0 + 2);
    assert_int_equal(v[1].resolved_ms, 0);
    fault_release(&v[0]);
    fault_release(&v[1]);
    free(v);

    assert_int_equal(journal_faults_open_for(j, "nobody", &v), 0);
    free(v);
    journal_free(j);
}

static void journal_faults_json_active_only_omits_resolved(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = open_ok(fx);
    struct fault a = make_fault("web", FAULT_SOFTWARE, SEVERITY_HIGH, IMPACT_SERVICE, T0);
    struct fault b = make_fault("db", FAULT_SOFTWARE, SEVERITY_HIGH, IMPACT_SERVICE, T0 + 1);
    assert_int_equal(journal_fault_open(j, &a), 0);
    assert_int_equal(journal_fault_open(j, &b), 0);
    a.resolved_ms = T0 + 5;
    assert_int_equal(journal_fault_resolve(j, &a), 0);

    json_t *all = journal_faults_json(j, false, 0, 0);
    json_t *active = journal_faults_json(j, true, 0, 0);
    assert_int_equal(json_array_size(all), 2);
    assert_int_equal(json_array_size(active), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(active, 0), "id")), b.id);
    json_decref(all);
    json_decref(active);
    journal_free(j);
}

/* A list row counts its fault's actions; the fault's view lists them. */
static void journal_faults_json_counts_actions_view_lists_them(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = open_ok(fx);
    struct fault f = make_fault("web", FAULT_SOFTWARE, SEVERITY_HIGH, IMPACT_SERVICE, T0);
    struct fault g = make_fault("db", FAULT_SOFTWARE, SEVERITY_HIGH, IMPACT_SERVICE, T0 + 1);
    assert_int_equal(journal_fault_open(j, &f), 0);
    assert_int_equal(journal_fault_open(j, &g), 0);
    struct action a1 = make_action(f.id, "web", T0), a2 = make_action(f.id, "web", T0 + 1);
    assert_int_equal(journal_action_insert(j, &a1), 0);
    assert_int_equal(journal_action_insert(j, &a2), 0);

    json_t *l = journal_faults_json(j, false, 0, 0);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(l, 0), "actions")), 0);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(l, 1), "actions")), 2);
    json_decref(l);
    l = journal_faults_json(j, true, 0, 0);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(l, 1), "actions")), 2);
    json_decref(l);
    json_t *v = journal_fault_json(j, f.id);
    json_t *acts = json_object_get(v, "actions");
    assert_int_equal(json_array_size(acts), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(acts, 0), "id")), a1.id);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(acts, 1), "id")), a2.id);
    json_decref(v);
    journal_free(j);
}

static void journal_summary_counts_every_enum_name_with_zeros(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = open_ok(fx);
    struct fault f[3] = {
        make_fault("a", FAULT_SOFTWARE, SEVERITY_HIGH, IMPACT_SERVICE, T0),
        make_fault("b", FAULT_SOFTWARE, SEVERITY_LOW, IMPACT_SERVICE, T0),
        make_fault("c", FAULT_NETWORK, SEVERITY_HIGH, IMPACT_GLOBAL, T0),
    };
    for (int i = 0; i < 3; i++)
        assert_int_equal(journal_fault_open(j, &f[i]), 0);
    f[2].resolved_ms = T0 + 1;
    assert_int_equal(journal_fault_resolve(j, &f[2]), 0);

    json_t *s = journal_faults_summary_json(j);
    assert_non_null(s);
    assert_int_equal(json_integer_value(json_object_get(s, "total")), 3);
    assert_int_equal(json_integer_value(json_object_get(s, "active")), 2);
    assert_int_equal(json_integer_value(json_object_get(s, "resolved")), 1);
    json_t *t = json_object_get(s, "by_type"), *sv = json_object_get(s, "by_severity");
    json_t *im = json_object_get(s, "by_impact");
    assert_int_equal(json_object_size(t), FAULT_TYPE__COUNT);
    assert_int_equal(json_object_size(sv), SEVERITY__COUNT);
    assert_int_equal(json_object_size(im), IMPACT__COUNT);
    assert_int_equal(json_integer_value(json_object_get(t, "software")), 2);
    assert_int_equal(json_integer_value(json_object_get(t, "network")), 1);
    assert_true(json_is_integer(json_object_get(t, "hardware")));
    assert_int_equal(json_integer_value(json_object_get(t, "hardware")), 0);
    assert_int_equal(json_integer_value(json_object_get(sv, "high")), 2);
    assert_int_equal(json_integer_value(json_object_get(sv, "low")), 1);
    assert_true(json_is_integer(json_object_get(sv, "critical")));
    assert_int_equal(json_integer_value(json_object_get(im, "service")), 2);
    assert_int_equal(json_integer_value(json_object_get(im, "global")), 1);
    assert_true(json_is_integer(json_object_get(im, "local")));
    json_decref(s);
    journal_free(j);
}

static void journal_action_insert_update_round_trips_all_fields(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = open_ok(fx);
    struct fault f = make_fault("web", FAULT_SOFTWARE, SEVERITY_HIGH, IMPACT_SERVICE, T0);
    assert_int_equal(journal_fault_open(j, &f), 0);
    struct action a = make_action(f.id, "web", T0 + 100);
    assert_int_equal(journal_action_insert(j, &a), 0);
    assert_true(a.id > 0);

    json_t *l = journal_actions_json(j, f.id, 0, 0);
    json_t *o = json_array_get(l, 0);
    assert_json_str(o, "status", "pending");
    assert_json_str(o, "created_at", "2025-11-25T11:39:28.223Z");
    assert_true(json_is_null(json_object_get(o, "started_at")));
    assert_true(json_is_null(json_object_get(o, "finished_at")));
    assert_true(json_is_null(json_object_get(o, "duration_ms")));
    json_decref(l);

    a.status = ACTION_COMPLETED;
    a.started_ms = T0 + 200;
    a.finished_ms = T0 + 1200;
    a.result = (char *)"restarted; checks pass";
    assert_int_equal(journal_action_update(j, &a), 0);

    json_t *fj = journal_fault_json(j, f.id);
    o = json_array_get(json_object_get(fj, "actions"), 0);
    assert_int_equal(json_integer_value(json_object_get(o, "id")), a.id);
    assert_int_equal(json_integer_value(json_object_get(o, "fault_id")), f.id);
    assert_json_str(o, "service", "web");
    assert_json_str(o, "strategy", "restart");
    assert_json_str(o, "status", "completed");
    assert_json_str(o, "result", "restarted; checks pass");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "params"), "delay_ms")),
                     400);
    assert_json_str(o, "created_at", "2025-11-25T11:39:28.223Z");
    assert_json_str(o, "started_at", "2025-11-25T11:39:28.323Z");
    assert_json_str(o, "finished_at", "2025-11-25T11:39:29.323Z");
    assert_int_equal(json_integer_value(json_object_get(o, "duration_ms")), 1000);
    json_decref(fj);
    journal_free(j);
}

static void journal_action_without_fault_has_null_fault_id(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = open_ok(fx);
    struct action a = make_action(0, "web", T0);
    assert_int_equal(journal_action_insert(j, &a), 0);
    json_t *l = journal_actions_json(j, 0, 0, 0);
    assert_true(json_is_null(json_object_get(json_array_get(l, 0), "fault_id")));
    json_decref(l);
    journal_free(j);
}

static void journal_action_for_missing_fault_is_rejected(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = open_ok(fx);
    struct action a = make_action(777, "web", T0); /* foreign keys are on */
    assert_int_equal(journal_action_insert(j, &a), -EIO);
    journal_free(j);
}

static void journal_abort_unfinished_leaves_finished_actions_alone(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = open_ok(fx);
    struct fault f = make_fault("web", FAULT_SOFTWARE, SEVERITY_HIGH, IMPACT_SERVICE, T0);
    assert_int_equal(journal_fault_open(j, &f), 0);
    static const enum action_status st[] = {ACTION_PENDING, ACTION_EXECUTING, ACTION_COMPLETED,
                                            ACTION_FAILED};
    struct action a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = make_action(f.id, "web", T0 + (uint64_t)i);
        a[i].status = st[i];
        assert_int_equal(journal_action_insert(j, &a[i]), 0);
    }
    assert_int_equal(journal_actions_abort_unfinished(j, "recoverd restarted", T0 + 9000), 2);

    json_t *l = journal_actions_json(j, f.id, 0, 0); /* newest first: a[3] .. a[0] */
    assert_json_str(json_array_get(l, 3), "status", "aborted");
    assert_json_str(json_array_get(l, 3), "result", "recoverd restarted");
    assert_json_str(json_array_get(l, 3), "finished_at", "2025-11-25T11:39:37.123Z");
    assert_json_str(json_array_get(l, 2), "status", "aborted");
    assert_json_str(json_array_get(l, 1), "status", "completed");
    assert_json_str(json_array_get(l, 1), "result", "");
    assert_json_str(json_array_get(l, 0), "status", "failed");
    json_decref(l);
    assert_int_equal(journal_actions_abort_unfinished(j, "again", T0), 0);
    journal_free(j);
}

struct seen {
    int n; /* calls so far */
    char service[4][64];
    pid_t pid[4];
    uint64_t ticks[4];
    char fingerprint[4][32];
    struct journal *j; /* set: clear each child from inside the callback */
};

static void on_child(const struct journal_child *c, void *arg)
{
    struct seen *s = arg;
    assert_true(s->n < 4);
    snprintf(s->service[s->n], sizeof s->service[0], "%s", c->service);
    snprintf(s->fingerprint[s->n], sizeof s->fingerprint[0], "%s", c->fingerprint);
    s->pid[s->n] = c->pid;
    s->ticks[s->n++] = c->start_ticks;
    if (s->j)
        assert_int_equal(journal_child_clear(s->j, c->service), 0);
}

static int child_set(struct journal *j, const char *service, pid_t pid, uint64_t ticks,
                     const char *fp)
{
    return journal_child_set(j, &(struct journal_child){service, pid, ticks, fp});
}

static void journal_children_set_replace_clear_iterate(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = open_ok(fx);
    assert_int_equal(child_set(j, "web", 100, 5000, "fp100"), 0);
    assert_int_equal(child_set(j, "db", 200, 6000, "fp200"), 0);
    assert_int_equal(child_set(j, "web", 101, 7000, "fp101"), 0); /* replaces */
    assert_int_equal(child_set(j, "cache", 300, 8000, "fp300"), 0);
    assert_int_equal(journal_child_clear(j, "cache"), 0);

    struct seen s = {0};
    assert_int_equal(journal_children(j, on_child, &s), 0);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.service[0], "db");
    assert_int_equal(s.pid[0], 200);
    assert_int_equal(s.ticks[0], 6000);
    assert_string_equal(s.service[1], "web");
    assert_int_equal(s.pid[1], 101);
    assert_int_equal(s.ticks[1], 7000);
    assert_string_equal(s.fingerprint[1], "fp101"); /* the replacing row's */
    journal_free(j);
}

static void journal_children_callback_may_clear_children(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = open_ok(fx);
    assert_int_equal(child_set(j, "a", 1, 1, "fp1"), 0);
    assert_int_equal(child_set(j, "b", 2, 2, "fp2"), 0);
    struct seen s = {.j = j};
    assert_int_equal(journal_children(j, on_child, &s), 0);
    assert_int_equal(s.n, 2);
    journal_free(j);

    j = open_ok(fx);
    struct seen after = {0};
    assert_int_equal(journal_children(j, on_child, &after), 0);
    assert_int_equal(after.n, 0);
    journal_free(j);
}

/* Rows another connection sees: what is on disk. */
static int64_t children_on_disk(const struct fixture *fx)
{
    return sql_int(fx->path, "SELECT count(*) FROM children");
}

/* With batching, the children recorded in one turn share its commit: none
 * is on disk until the next spawn asks (journal_sync_children), which
 * commits them all; asked again with none waiting, it has nothing to do. */
static void journal_children_of_a_turn_share_one_commit(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = open_ok(fx);
    journal_set_batching(j, true);
    assert_int_equal(child_set(j, "a", 1, 1, "fp1"), 0);
    assert_int_equal(child_set(j, "b", 2, 2, "fp2"), 0);
    assert_int_equal(children_on_disk(fx), 0); /* in the writer's open batch only */
    assert_int_equal(journal_sync_children(j), 0);
    assert_int_equal(children_on_disk(fx), 2);
    struct fault f = make_fault("web", FAULT_SOFTWARE, SEVERITY_HIGH, IMPACT_SERVICE, T0);
    assert_int_equal(journal_fault_open(j, &f), 0);
    assert_int_equal(journal_sync_children(j), 0); /* no child waits: the batch stays open */
    assert_int_equal(sql_int(fx->path, "SELECT count(*) FROM faults"), 0);
    assert_int_equal(journal_flush(j), 0);
    assert_int_equal(sql_int(fx->path, "SELECT count(*) FROM faults"), 1);
    journal_free(j);
}

static void journal_write_survives_sigkill_of_writer(void **state)
{
    struct fixture *fx = *state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char err[256];
        struct journal *j = journal_open(fx->path, err, sizeof err);
        struct fault f = make_fault("web", FAULT_SOFTWARE, SEVERITY_HIGH, IMPACT_SERVICE, T0);
        if (!j || journal_fault_open(j, &f) < 0 ||
            journal_transition(j, "web", STATE_NORMAL, STATE_FAILED, "killed", T0) < 0)
            _exit(1);
        raise(SIGKILL); /* no close, no checkpoint: the rows live only in the WAL */
        _exit(2);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);

    struct journal *j = open_ok(fx);
    struct fault *v = NULL;
    assert_int_equal(journal_faults_open_for(j, "web", &v), 1);
    assert_string_equal(v[0].description, "web exited");
    fault_release(&v[0]);
    free(v);
    json_t *t = journal_transitions_json(j, "web", 0, 0);
    assert_int_equal(json_array_size(t), 1);
    json_decref(t);
    journal_free(j);
}

static void journal_strings_with_quotes_and_unicode_round_trip(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = open_ok(fx);
    static const char nasty[] = "it's \"down\"; DROP TABLE faults; -- 服务 ✓ \\ %s";
    struct fault f = make_fault("web'\"", FAULT_SOFTWARE, SEVERITY_HIGH, IMPACT_SERVICE, T0);
    snprintf(f.description, sizeof f.description, "%s", nasty);
    f.context = (char *)"{\"reason\":\"ünïcødé \\\"q\\\"\"}";
    assert_int_equal(journal_fault_open(j, &f), 0);
    assert_int_equal(journal_transition(j, NULL, STATE_NORMAL, STATE_DEGRADED, nasty, T0), 0);

    json_t *o = journal_fault_json(j, f.id);
    assert_json_str(o, "service", "web'\"");
    assert_json_str(o, "description", nasty);
    assert_json_str(json_object_get(o, "context"), "reason", "ünïcødé \"q\"");
    json_decref(o);
    json_t *t = journal_transitions_json(j, NULL, 0, 0);
    assert_json_str(json_array_get(t, 0), "cause", nasty);
    assert_true(json_is_null(json_object_get(json_array_get(t, 0), "service")));
    json_decref(t);
    assert_int_equal(sql_int(fx->path, "SELECT count(*) FROM faults"), 1);
    journal_free(j);
}

static void journal_invalid_utf8_text_still_reads(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = open_ok(fx);
    struct fault f = make_fault("web", FAULT_SOFTWARE, SEVERITY_HIGH, IMPACT_SERVICE, T0);
    assert_int_equal(journal_fault_open(j, &f), 0);
    struct action a = make_action(f.id, "web", T0);
    a.result = (char *)"repair said \xff\xfe ok"; /* not UTF-8 */
    assert_int_equal(journal_action_insert(j, &a), 0);
    json_t *l = journal_actions_json(j, 0, 0, 0);
    assert_non_null(l);
    assert_json_str(json_array_get(l, 0), "result", "repair said ?? ok");
    json_decref(l);
    json_t *o = journal_fault_json(j, f.id);
    assert_non_null(o);
    json_decref(o);
    journal_free(j);
}

static void journal_invalid_context_reads_as_empty_object(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = open_ok(fx);
    struct fault f = make_fault("web", FAULT_SOFTWARE, SEVERITY_HIGH, IMPACT_SERVICE, T0);
    f.context = (char *)"{not json";
    assert_int_equal(journal_fault_open(j, &f), 0);
    json_t *o = journal_fault_json(j, f.id);
    json_t *c = json_object_get(o, "context");
    assert_true(json_is_object(c));
    assert_int_equal(json_object_size(c), 0);
    json_decref(o);
    journal_free(j);
}

static void journal_lists_honour_limit_newest_first(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = open_ok(fx);
    int64_t ids[5];
    for (int i = 0; i < 5; i++) {
        struct fault f = make_fault("web", FAULT_SOFTWARE, SEVERITY_HIGH, IMPACT_SERVICE,
                                    T0 + (uint64_t)i);
        assert_int_equal(journal_fault_open(j, &f), 0);
        ids[i] = f.id;
        struct action a = make_action(f.id, "web", T0 + (uint64_t)i);
        assert_int_equal(journal_action_insert(j, &a), 0);
        assert_int_equal(journal_transition(j, i % 2 ? "web" : "db", STATE_NORMAL, STATE_DEGRADED,
                                            "x", T0 + (uint64_t)i),
                         0);
    }
    json_t *l = journal_faults_json(j, false, 0, 3);
    assert_int_equal(json_array_size(l), 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(json_integer_value(json_object_get(json_array_get(l, i), "id")),
                         ids[4 - i]);
    json_decref(l);

    l = journal_actions_json(j, 0, 0, 2);
    assert_int_equal(json_array_size(l), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(l, 0), "fault_id")), ids[4]);
    json_decref(l);

    l = journal_transitions_json(j, "web", 0, 0);
    assert_int_equal(json_array_size(l), 2);
    assert_json_str(json_array_get(l, 0), "at", "2025-11-25T11:39:28.126Z");
    assert_json_str(json_array_get(l, 0), "from", "normal");
    assert_json_str(json_array_get(l, 0), "to", "degraded");
    json_decref(l);
    l = journal_transitions_json(j, NULL, 0, 1);
    assert_int_equal(json_array_size(l), 1);
    json_decref(l);
    journal_free(j);
}

/* Another connection holds the write lock past the journal's busy wait:
 * the writes are refused (SQLITE_BUSY), kept, and written in order once the
 * lock is gone; meanwhile reads show what is on disk and the ids handed out
 * are the ids written. Batching as the daemon runs it. */
static void journal_refused_writes_wait_and_are_written_in_order(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = open_ok(fx);
    journal_set_batching(j, true);
    struct fault f1 = make_fault("web", FAULT_SOFTWARE, SEVERITY_HIGH, IMPACT_SERVICE, T0);
    assert_int_equal(journal_fault_open(j, &f1), 0);
    assert_int_equal(journal_flush(j), 0);

    sqlite3 *other = NULL;
    assert_int_equal(sqlite3_open(fx->path, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    struct fault f2 = make_fault("db", FAULT_NETWORK, SEVERITY_LOW, IMPACT_LOCAL, T0 + 1);
    assert_int_equal(journal_fault_open(j, &f2), 0); /* kept, not failed */
    struct action a = make_action(f2.id, "db", T0 + 2);
    assert_int_equal(journal_action_insert(j, &a), 0);
    f2.resolved_ms = T0 + 3;
    assert_int_equal(journal_fault_resolve(j, &f2), 0);
    assert_int_equal(journal_flush(j), -EAGAIN);
    const char *why = NULL;
    assert_int_equal(journal_pending(j, &why), 3);
    assert_non_null(why);
    assert_non_null(strstr(why, "locked"));
    assert_int_equal(f2.id, 2);
    assert_int_equal(a.id, 1);
    int64_t active = -1, resolved = -1, actions = -1;
    journal_counts(j, &active, &resolved, &actions);
    assert_int_equal(active + resolved, 1); /* only what is on disk */

    assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    /* Retries are spaced out (a second apart); then it is all written. */
    poll_until(journal_flush(j) != -EAGAIN);
    assert_int_equal(journal_pending(j, &why), 0);
    assert_null(why);
    assert_int_equal(sql_int(fx->path, "SELECT count(*) FROM faults"), 2);
    assert_int_equal(sql_int(fx->path, "SELECT resolved_ms FROM faults WHERE id = 2"), T0 + 3);
    assert_int_equal(sql_int(fx->path, "SELECT fault_id FROM actions WHERE id = 1"), 2);
    /* Later writes go straight to disk again, with the next ids. */
    struct fault f3 = make_fault("web", FAULT_SOFTWARE, SEVERITY_HIGH, IMPACT_SERVICE, T0 + 4);
    assert_int_equal(journal_fault_open(j, &f3), 0);
    assert_int_equal(journal_flush(j), 0);
    assert_int_equal(f3.id, 3);
    assert_int_equal(sql_int(fx->path, "SELECT count(*) FROM faults"), 3);
    journal_free(j);
}

/* A batch whose commit the disk refuses (full) loses none of its writes:
 * they wait, in order, with their values (quotes, a NULL service), and
 * are written once the disk takes them again. */
static void journal_a_refused_commit_keeps_every_write_of_its_batch(void **state)
{
    struct fixture *fx = *state;
    syncvfs_install();
    struct journal *j = open_ok(fx);
    journal_set_batching(j, true);
    struct fault f1 = make_fault("web", FAULT_SOFTWARE, SEVERITY_HIGH, IMPACT_SERVICE, T0);
    assert_int_equal(journal_fault_open(j, &f1), 0);
    assert_int_equal(journal_flush(j), 0);

    struct fault f2 = make_fault("db", FAULT_NETWORK, SEVERITY_LOW, IMPACT_LOCAL, T0 + 1);
    snprintf(f2.description, sizeof f2.description, "db's port 'closed'");
    assert_int_equal(journal_fault_open(j, &f2), 0);
    struct action a = make_action(f2.id, "db", T0 + 2);
    assert_int_equal(journal_action_insert(j, &a), 0);
    assert_int_equal(journal_transition(j, NULL, STATE_NORMAL, STATE_DEGRADED, "db", T0 + 2), 0);
    f2.resolved_ms = T0 + 3;
    assert_int_equal(journal_fault_resolve(j, &f2), 0);
    syncvfs_full(true); /* the commit's WAL frames are refused */
    assert_int_equal(journal_flush(j), -EAGAIN);
    const char *why = NULL;
    assert_int_equal(journal_pending(j, &why), 4);
    assert_non_null(why);
    assert_int_equal(sql_int(fx->path, "SELECT count(*) FROM faults"), 1);

    syncvfs_full(false);
    poll_until(journal_flush(j) != -EAGAIN);
    assert_int_equal(journal_pending(j, NULL), 0);
    assert_int_equal(sql_int(fx->path, "SELECT count(*) FROM faults"), 2);
    assert_int_equal(sql_int(fx->path, "SELECT count(*) FROM faults WHERE id = 2 AND "
                                       "description = 'db''s port ''closed'''"),
                     1);
    assert_int_equal(sql_int(fx->path, "SELECT resolved_ms FROM faults WHERE id = 2"), T0 + 3);
    assert_int_equal(sql_int(fx->path, "SELECT fault_id FROM actions WHERE id = 1"), 2);
    assert_int_equal(sql_int(fx->path, "SELECT count(*) FROM transitions WHERE service IS NULL "
                                       "AND cause = 'db'"),
                     1);
    journal_free(j);
    syncvfs_remove();
}

/* ---- pages, plans and counters ---- */

/* What page_all reads: one list of the API. */
enum page_kind { PAGE_FAULTS, PAGE_ACTIONS, PAGE_TRANSITIONS };

static json_t *page_of(struct journal *j, enum page_kind k, int64_t before, size_t limit)
{
    switch (k) {
    case PAGE_FAULTS: return journal_faults_json(j, false, before, limit);
    case PAGE_ACTIONS: return journal_actions_json(j, 0, before, limit);
    default: return journal_transitions_json(j, "web", before, limit);
    }
}

/* One more row of kind k, newer than any before it. */
static void page_add(struct journal *j, enum page_kind k)
{
    struct fault f = make_fault("web", FAULT_SOFTWARE, SEVERITY_HIGH, IMPACT_SERVICE, T0);
    struct action a = make_action(0, "web", T0);
    switch (k) {
    case PAGE_FAULTS: assert_int_equal(journal_fault_open(j, &f), 0); break;
    case PAGE_ACTIONS: assert_int_equal(journal_action_insert(j, &a), 0); break;
    default:
        assert_int_equal(journal_transition(j, "web", STATE_NORMAL, STATE_FAILED, "x", T0), 0);
        assert_int_equal(journal_transition(j, "db", STATE_NORMAL, STATE_FAILED, "x", T0), 0);
    }
}

/* 23 rows read 5 a page, with 2 rows added before every page: each of the
 * 23 comes exactly once, newest first, and none of the newer ones. */
static void page_all(struct journal *j, enum page_kind k)
{
    for (int i = 0; i < 23; i++)
        page_add(j, k);
    json_t *first = page_of(j, k, 0, 1);
    int64_t top = json_integer_value(json_object_get(json_array_get(first, 0), "id"));
    json_decref(first);
    int64_t before = top + 1, prev = INT64_MAX;
    int seen = 0, pages = 0;
    for (;;) {
        page_add(j, k);
        page_add(j, k);
        json_t *p = page_of(j, k, before, 5);
        size_t n = json_array_size(p), i;
        json_t *row;
        pages++;
        json_array_foreach(p, i, row)
        {
            int64_t id = json_integer_value(json_object_get(row, "id"));
            assert_true(id < prev && id <= top); /* no repeat, nothing newer */
            if (k == PAGE_TRANSITIONS)
                assert_string_equal(json_string_value(json_object_get(row, "service")), "web");
            prev = id;
            seen++;
        }
        if (n)
            before = json_integer_value(json_object_get(json_array_get(p, n - 1), "id"));
        json_decref(p);
        if (n < 5)
            break;
    }
    assert_int_equal(seen, 23);
    assert_int_equal(pages, 5);
}

static void journal_pages_lose_and_repeat_no_row_while_rows_are_added(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = open_ok(fx);
    journal_set_batching(j, true); /* as the daemon runs it: pages read the open batch */
    page_all(j, PAGE_FAULTS);
    page_all(j, PAGE_ACTIONS);
    page_all(j, PAGE_TRANSITIONS);
    /* The active list pages too, skipping the resolved. */
    struct fault f = make_fault("web", FAULT_SOFTWARE, SEVERITY_HIGH, IMPACT_SERVICE, T0);
    f.id = 3;
    f.resolved_ms = T0 + 5;
    assert_int_equal(journal_fault_resolve(j, &f), 0);
    json_t *p = journal_faults_json(j, true, 5, 10);
    assert_int_equal(json_array_size(p), 3);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(p, 0), "id")), 4);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(p, 1), "id")), 2);
    json_decref(p);
    journal_free(j);
}

/* The plan of sql on db: its lines that scan a whole table without an
 * index, joined; "" when there are none. The counters table is read whole
 * on purpose: one row per service, type, severity and impact. */
static void full_scans(sqlite3 *db, const char *sql, char *out, size_t len)
{
    char explain[2048];
    sqlite3_stmt *s = NULL;
    out[0] = '\0';
    snprintf(explain, sizeof explain, "EXPLAIN QUERY PLAN %s", sql);
    if (sqlite3_prepare_v2(db, explain, -1, &s, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    while (sqlite3_step(s) == SQLITE_ROW) {
        const char *d = (const char *)sqlite3_column_text(s, 3);
        if (strncmp(d, "SCAN ", 5) == 0 && !strstr(d, " USING ") &&
            strcmp(d, "SCAN counters") != 0 && strcmp(d, "SCAN histograms") != 0)
            snprintf(out + strlen(out), len - strlen(out), "%s; ", d);
    }
    sqlite3_finalize(s);
}

static void journal_every_api_query_reads_through_an_index(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = open_ok(fx);
    struct fault f = make_fault("web", FAULT_SOFTWARE, SEVERITY_HIGH, IMPACT_SERVICE, T0);
    assert_int_equal(journal_fault_open(j, &f), 0);
    journal_free(j);
    sqlite3 *db = NULL;
    char scans[1024];
    assert_int_equal(sqlite3_open_v2(fx->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    /* The check itself sees a scan where there is one. */
    full_scans(db, "SELECT * FROM actions WHERE result = 'x'", scans, sizeof scans);
    assert_string_equal(scans, "SCAN actions; ");
    size_t i = 0;
    for (const char *sql; (sql = journal_api_sql(i)); i++) {
        full_scans(db, sql, scans, sizeof scans);
        if (scans[0])
            fail_msg("full scan in %s: %s", sql, scans);
    }
    assert_true(i >= 10);
    sqlite3_close(db);
}

static void assert_metric(json_t *o, const char *key, json_int_t want)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) != want)
        fail_msg("%s: want %lld, got %lld", key, (long long)want, (long long)json_integer_value(v));
}

/* Metrics and counts come from counters kept with the writes: right after
 * resolves, flaps and finished actions, and unchanged by pruning. */
static void journal_counters_follow_writes_and_outlive_pruning(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = open_ok(fx);
    struct fault f = make_fault("web", FAULT_SOFTWARE, SEVERITY_HIGH, IMPACT_SERVICE, T0);
    struct fault g = make_fault("db", FAULT_NETWORK, SEVERITY_LOW, IMPACT_LOCAL, T0);
    struct fault sup = make_fault("web", FAULT_SOFTWARE, SEVERITY_HIGH, IMPACT_SERVICE, T0);
    snprintf(sup.check, sizeof sup.check, "supervisor");
    assert_int_equal(journal_fault_open(j, &f), 0);
    assert_int_equal(journal_fault_open(j, &g), 0);
    assert_int_equal(journal_fault_open(j, &sup), 0);
    struct action a = make_action(f.id, "web", T0), b = make_action(g.id, "db", T0);
    assert_int_equal(journal_action_insert(j, &a), 0);
    assert_int_equal(journal_action_insert(j, &b), 0);
    a.status = ACTION_COMPLETED;
    b.status = ACTION_FAILED;
    assert_int_equal(journal_action_update(j, &a), 0);
    assert_int_equal(journal_action_update(j, &a), 0); /* counted once */
    assert_int_equal(journal_action_update(j, &b), 0);
    f.resolved_ms = T0 + 100;
    assert_int_equal(journal_fault_resolve(j, &f), 0);
    assert_int_equal(journal_fault_reopen(j, &f), 0); /* a flap: not resolved any more */
    f.resolved_ms = T0 + 300;
    assert_int_equal(journal_fault_resolve(j, &f), 0);
    g.resolved_ms = T0 + 100;
    assert_int_equal(journal_fault_resolve(j, &g), 0);
    sup.resolved_ms = T0 + 9000;
    assert_int_equal(journal_fault_resolve(j, &sup), 0);

    for (int round = 0; round < 2; round++) {
        json_t *m = journal_metrics_json(j);
        json_t *all = json_object_get(m, "overall");
        assert_metric(all, "faults", 2);
        assert_metric(all, "resolved", 2);
        assert_metric(all, "mean_recovery_ms", 200);
        assert_metric(all, "max_recovery_ms", 300);
        assert_metric(all, "recoveries", 2);
        assert_metric(all, "successful", 1);
        assert_metric(all, "failed", 1);
        json_t *web = json_object_get(json_object_get(m, "by_service"), "web");
        assert_metric(web, "faults", 1);
        assert_metric(web, "mean_recovery_ms", 300);
        assert_metric(web, "successful", 1);
        json_t *net = json_object_get(json_object_get(m, "by_type"), "network");
        assert_metric(net, "faults", 1);
        assert_metric(net, "failed", 1);
        json_decref(m);
        json_t *s = journal_faults_summary_json(j);
        assert_metric(s, "total", 3);
        assert_metric(s, "resolved", 3);
        assert_metric(json_object_get(s, "by_type"), "software", 2);
        json_decref(s);
        uint64_t ms = 0, n = 0;
        assert_int_equal(journal_recovery_history(j, "web", &ms, &n), 0);
        assert_true(ms == 300 && n == 1);
        int64_t active, resolved, actions;
        assert_int_equal(journal_counts(j, &active, &resolved, &actions), 0);
        assert_true(active == 0 && resolved == 3 && actions == 2);
        /* Then everything but the newest fault and action goes: the
         * totals stay. */
        struct journal_retention keep = {.max_age_ms = 1000, .keep_ms = 1000};
        journal_set_retention(j, &keep);
        prune_settled(j, T0 + 1000000, 100);
        assert_true(sql_int(fx->path, "SELECT count(*) FROM faults") < 3);
    }
    journal_free(j);
}

/* ---- damaged journals, planted links ---- */

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

/* The journal opened at fx->path after it was damaged: moved aside with
 * its words, a fresh one in its place that takes writes. The moved path. */
static char *assert_replaced(const struct fixture *fx, const char *words)
{
    struct journal *j = open_ok(fx);
    const char *why = NULL;
    uint64_t at = 0;
    const char *moved = journal_moved_aside(j, &why, &at);
    assert_non_null(moved);
    assert_true(strncmp(moved, fx->path, strlen(fx->path)) == 0);
    assert_non_null(strstr(moved, ".corrupt-"));
    assert_non_null(strstr(why, words));
    assert_true(at > T0);
    int64_t active = -1, resolved = -1, actions = -1;
    assert_int_equal(journal_counts(j, &active, &resolved, &actions), 0);
    assert_true(active == 0 && resolved == 0 && actions == 0);
    struct fault f = make_fault("web", FAULT_SOFTWARE, SEVERITY_HIGH, IMPACT_SERVICE, T0);
    assert_int_equal(journal_fault_open(j, &f), 0);
    assert_int_equal(f.id, 1);
    char *copy = strdup(moved);
    journal_free(j);
    return copy;
}

static void journal_open_moves_a_garbage_file_aside(void **state)
{
    struct fixture *fx = *state;
    unsigned char junk[8192];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)(i * 131 + 7);
    write_file(fx->path, junk, sizeof junk);
    char *moved = assert_replaced(fx, "not a database");
    struct stat st;
    assert_int_equal(stat(moved, &st), 0);
    assert_int_equal(st.st_size, sizeof junk); /* kept as it was, for whoever investigates */
    free(moved);
}

static void journal_open_moves_a_truncated_file_aside(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = open_ok(fx);
    for (int i = 0; i < 2000; i++) {
        struct fault f = make_fault("web", FAULT_SOFTWARE, SEVERITY_HIGH, IMPACT_SERVICE, T0 + i);
        assert_int_equal(journal_fault_open(j, &f), 0);
    }
    journal_free(j); /* the last connection checkpoints: everything is in the main file */
    struct stat st;
    assert_int_equal(stat(fx->path, &st), 0);
    assert_true(st.st_size > 64 * 1024);
    assert_int_equal(truncate(fx->path, st.st_size / 2), 0);
    free(assert_replaced(fx, "malformed"));
}

static void journal_open_refuses_a_symlink_and_leaves_its_target_alone(void **state)
{
    struct fixture *fx = *state;
    char bait[128], err[512] = "";
    struct stat st;
    snprintf(bait, sizeof bait, "%s/bait", fx->dir);
    write_file(bait, "x", 1);
    assert_int_equal(chmod(bait, 0644), 0);
    assert_int_equal(symlink(bait, fx->path), 0);
    assert_null(journal_open(fx->path, err, sizeof err));
    assert_non_null(strstr(err, "symbolic link"));
    assert_int_equal(stat(bait, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    assert_int_equal(st.st_size, 1);
}

/* ---- retention ---- */

#define DAY_MS 86400000ULL
#define NOW (T0 + 40 * DAY_MS)

static int64_t count_of(const struct fixture *fx, const char *sql)
{
    return sql_int(fx->path, sql);
}

/* A fault opened at `at`, resolved at `resolved` (0: open), with one action
 * in `status` finished (if finished) at `resolved`. Its id. */
static int64_t add_fault(struct journal *j, uint64_t at, uint64_t resolved,
                         enum action_status status)
{
    struct fault f = make_fault("web", FAULT_SOFTWARE, SEVERITY_HIGH, IMPACT_SERVICE, at);
    assert_int_equal(journal_fault_open(j, &f), 0);
    struct action a = make_action(f.id, "web", at + 1);
    assert_int_equal(journal_action_insert(j, &a), 0);
    a.status = status;
    a.started_ms = at + 2;
    a.finished_ms = status == ACTION_PENDING || status == ACTION_EXECUTING ? 0 : resolved;
    assert_int_equal(journal_action_update(j, &a), 0);
    if (resolved) {
        f.resolved_ms = resolved;
        assert_int_equal(journal_fault_resolve(j, &f), 0);
    }
    return f.id;
}

static void journal_prune_by_age_keeps_open_faults_and_unfinished_actions(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = open_ok(fx);
    int64_t old = add_fault(j, T0, T0 + 1000, ACTION_COMPLETED);
    int64_t open_old = add_fault(j, T0, 0, ACTION_FAILED);
    int64_t busy = add_fault(j, T0, T0 + 1000, ACTION_EXECUTING);
    for (int i = 0; i < 250; i++) /* more than one batch */
        add_fault(j, T0 + 10 + (uint64_t)i, T0 + 2000, ACTION_COMPLETED);
    int64_t recent = add_fault(j, NOW - DAY_MS, NOW - DAY_MS + 1000, ACTION_COMPLETED);
    for (int i = 0; i < 5; i++)
        assert_int_equal(journal_transition(j, "web", STATE_NORMAL, STATE_FAILED, "old", T0), 0);
    assert_int_equal(journal_transition(j, "web", STATE_FAILED, STATE_NORMAL, "new", NOW - 5), 0);
    struct action lone = make_action(0, "web", T0), pending = make_action(0, "web", T0);
    assert_int_equal(journal_action_insert(j, &lone), 0);
    assert_int_equal(journal_action_insert(j, &pending), 0);
    lone.status = ACTION_COMPLETED;
    lone.finished_ms = T0 + 5;
    assert_int_equal(journal_action_update(j, &lone), 0);

    struct journal_retention keep = {.max_age_ms = 30 * DAY_MS, .keep_ms = 60000};
    journal_set_retention(j, &keep);
    /* One small batch: of the 100 oldest resolved faults, busy is not due
     * (99 go, with their actions), the lone finished action (pending, the
     * newest action, stays) and the 5 old transitions. Counted by the rows
     * left: the writes may have waited in memory (prune_settled), and then
     * the batch is not done when journal_prune returns. */
    poll_until(journal_flush(j) == 0);
    int batch = journal_prune(j, NOW, 100);
    if (journal_flush(j) == 0)
        assert_int_equal(batch, 99 + 99 + 1 + 5);
    poll_until(journal_flush(j) == 0);
    assert_int_equal(count_of(fx, "SELECT count(*) FROM faults"), 254 - 99);
    assert_int_equal(count_of(fx, "SELECT count(*) FROM actions"), 256 - 99 - 1);
    assert_int_equal(count_of(fx, "SELECT count(*) FROM transitions"), 1);
    prune_settled(j, NOW, 100);

    char sql[160];
    assert_int_equal(count_of(fx, "SELECT count(*) FROM faults"), 3);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM faults WHERE id IN (%lld, %lld, %lld)",
             (long long)open_old, (long long)busy, (long long)recent);
    assert_int_equal(count_of(fx, sql), 3);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM actions WHERE fault_id = %lld", (long long)old);
    assert_int_equal(count_of(fx, sql), 0);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM actions WHERE fault_id IN (%lld, %lld, %lld)",
             (long long)open_old, (long long)busy, (long long)recent);
    assert_int_equal(count_of(fx, sql), 3);
    assert_int_equal(count_of(fx, "SELECT count(*) FROM actions WHERE fault_id IS NULL"), 1);
    assert_int_equal(count_of(fx, "SELECT count(*) FROM actions WHERE fault_id IS NULL AND "
                                  "status = 'pending'"),
                     1);
    assert_int_equal(count_of(fx, "SELECT count(*) FROM transitions"), 1);
    assert_int_equal(count_of(fx, "SELECT count(*) FROM transitions WHERE cause = 'new'"), 1);
    assert_int_equal(journal_prune(j, NOW, 100), 0); /* nothing more is due */
    journal_free(j);
}

/* Enough history to pass the cap three times over (a fault with its action
 * and a transition takes about 250 bytes), written in rounds of about
 * a twentieth of the cap with a prune after each (the daemon prunes every
 * second), batched as the daemon batches: the file never grows past the
 * cap, the open fault and the recently resolved one stay, the newest
 * history is there. */
static void journal_prune_by_size_holds_the_file_under_the_cap(void **state)
{
    struct fixture *fx = *state;
    const uint64_t cap = 512u << 10;
    struct journal *j = open_ok(fx);
    struct journal_retention keep = {.max_bytes = cap, .keep_ms = 60000};
    journal_set_retention(j, &keep);
    journal_set_batching(j, true);
    int64_t open_old = add_fault(j, T0, 0, ACTION_FAILED);
    int64_t just_resolved = add_fault(j, T0, NOW - 10000, ACTION_COMPLETED);
    uint64_t used = 0, file = 0, at = T0;
    int64_t last = 0;
    for (int round = 0; round < 60; round++) {
        assert_int_equal(journal_size(j, &used, &file), 0);
        for (uint64_t written = used; written < used + cap / 20; written += 250) {
            last = add_fault(j, at, at + 500, ACTION_COMPLETED);
            assert_int_equal(journal_transition(j, "web", STATE_NORMAL, STATE_FAILED,
                                                "a cause of some length, as they are", at),
                             0);
            at += 1000;
        }
        prune_settled(j, NOW, 200);
        assert_int_equal(journal_size(j, &used, &file), 0);
        if (used > cap - cap / 16 || file > cap)
            fail_msg("round %d: %llu bytes in use, file %llu, cap %llu", round,
                     (unsigned long long)used, (unsigned long long)file, (unsigned long long)cap);
    }
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM faults WHERE id IN (%lld, %lld, %lld)",
             (long long)open_old, (long long)just_resolved, (long long)last);
    assert_int_equal(count_of(fx, sql), 3);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM faults WHERE id = %lld",
             (long long)just_resolved + 1);
    assert_int_equal(count_of(fx, sql), 0); /* the oldest history went */
    assert_true(count_of(fx, "SELECT count(*) FROM faults") < last / 2);
    struct stat st;
    assert_int_equal(stat(fx->path, &st), 0);
    assert_true((uint64_t)st.st_size <= cap);
    journal_free(j);
}

/* A quiet month prunes everything but the newest fault and action: a
 * restart continues their ids, never hands one out twice. */
static void journal_prune_keeps_the_newest_fault_and_action_for_their_ids(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = open_ok(fx);
    for (int i = 0; i < 3; i++)
        add_fault(j, T0 + (uint64_t)i, T0 + 100, ACTION_COMPLETED);
    struct journal_retention keep = {.max_age_ms = 30 * DAY_MS, .keep_ms = 60000};
    journal_set_retention(j, &keep);
    prune_settled(j, NOW, 100);
    journal_free(j);
    assert_int_equal(count_of(fx, "SELECT group_concat(id) FROM faults"), 3);
    assert_int_equal(count_of(fx, "SELECT group_concat(id) FROM actions"), 3);
    j = open_ok(fx);
    assert_int_equal(add_fault(j, NOW, 0, ACTION_PENDING), 4);
    journal_free(j);
}

/* ---- the alert queue ---- */

static void push_alert(struct journal *j, const char *hook, int64_t fault_id, const char *event,
                       bool opens)
{
    struct journal_alert m = {.seq = journal_alert_seq_next(j),
                              .fault_id = fault_id,
                              .opens = opens,
                              .body = (char *)"{\"x\":1}"};
    assert_true(m.seq > 0);
    snprintf(m.event, sizeof m.event, "%s", event);
    snprintf(m.service, sizeof m.service, "web");
    assert_int_equal(journal_alert_push(j, hook, &m), 0);
}

/* A journal of schema 1 gains the alert tables and the children's
 * fingerprints, and keeps its history: a child recorded then has none, so
 * it is never adopted. */
static void journal_schema_1_is_migrated_to_the_alert_queue(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = open_ok(fx);
    struct fault f = make_fault("web", FAULT_SOFTWARE, SEVERITY_HIGH, IMPACT_SERVICE, T0);
    assert_int_equal(journal_fault_open(j, &f), 0);
    journal_free(j);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "DROP TABLE alert_queue; DROP TABLE alert_open; "
                                  "ALTER TABLE children DROP COLUMN fingerprint; "
                                  "INSERT INTO children VALUES ('web', 100, 5000); "
                                  "DELETE FROM sqlite_sequence; DROP INDEX faults_open; "
                                  "DROP TRIGGER counters_fault_insert; "
                                  "DROP TRIGGER counters_fault_update; "
                                  "DROP TRIGGER counters_action_insert; "
                                  "DROP TRIGGER counters_action_update; DROP TABLE counters; "
                                  "DROP TRIGGER histograms_fault_insert; "
                                  "DROP TRIGGER histograms_fault_update; DROP TABLE histograms; "
                                  "PRAGMA user_version = 1",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    j = open_ok(fx);
    assert_int_equal(sql_int(fx->path, "PRAGMA user_version"), 5);
    /* The counters and histograms start from the rows already there. */
    int64_t active = -1, resolved = -1, actions = -1;
    assert_int_equal(journal_counts(j, &active, &resolved, &actions), 0);
    assert_true(active == 1 && resolved == 0 && actions == 0);
    struct seen kids = {0};
    assert_int_equal(journal_children(j, on_child, &kids), 0);
    assert_int_equal(kids.n, 1);
    assert_int_equal(kids.pid[0], 100);
    assert_string_equal(kids.fingerprint[0], "");
    push_alert(j, "http://h:1#00", f.id, "opened", true);
    assert_int_equal(sql_int(fx->path, "SELECT count(*) FROM alert_queue"), 1);
    assert_int_equal(sql_int(fx->path, "SELECT count(*) FROM faults"), 1);
    assert_int_equal(sql_int(fx->path, "SELECT count(*) FROM histograms"), 0); /* no detection_ms */
    journal_free(j);
}

/* A message id is never handed out twice, even once every message that
 * had one was delivered and recoverd restarted. */
static void journal_alert_seq_is_never_reused(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = open_ok(fx);
    push_alert(j, "h", 1, "opened", true);
    push_alert(j, "h", 1, "resolved", false);
    assert_int_equal(journal_alert_delete(j, "h", 1), 0);
    assert_int_equal(journal_alert_delete(j, "h", 2), 0);
    journal_free(j);
    j = open_ok(fx);
    assert_int_equal(journal_alert_seq_next(j), 3);
    journal_free(j);
}

/* Reads go in order, per hook, past a seq; groups are per fault (a message
 * without one is its own), oldest first, with whether they open. */
static void journal_alert_read_and_groups(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = open_ok(fx);
    push_alert(j, "a", 7, "escalated", false); /* 1 */
    push_alert(j, "b", 7, "opened", true);     /* 2: another hook */
    push_alert(j, "a", 0, "failed", true);     /* 3 */
    push_alert(j, "a", 8, "opened", true);     /* 4 */
    push_alert(j, "a", 7, "resolved", false);  /* 5 */
    push_alert(j, "a", 0, "failed", true);     /* 6 */
    struct journal_alert rows[8];
    assert_int_equal(journal_alert_read(j, "a", 1, rows, 2), 2);
    assert_int_equal(rows[0].seq, 3);
    assert_int_equal(rows[1].seq, 4);
    assert_string_equal(rows[1].event, "opened");
    assert_true(rows[1].opens);
    assert_string_equal(rows[1].body, "{\"x\":1}");
    journal_alert_release(&rows[0]);
    journal_alert_release(&rows[1]);
    struct journal_alert_group *g = NULL;
    assert_int_equal(journal_alert_groups(j, "a", &g), 4);
    assert_int_equal(g[0].fault_id, 7);
    assert_int_equal(g[0].count, 2);
    assert_false(g[0].first_opens);
    assert_int_equal(g[1].first_seq, 3);
    assert_int_equal(g[1].fault_id, 0);
    assert_int_equal(g[2].fault_id, 8);
    assert_true(g[2].first_opens);
    assert_int_equal(g[3].first_seq, 6);
    free(g);
    assert_int_equal(journal_alert_delete_fault(j, "a", 7), 0);
    assert_int_equal(sql_int(fx->path, "SELECT count(*) FROM alert_queue WHERE fault_id = 7"), 1);
    assert_int_equal(journal_alert_forget_hook(j, "a"), 0);
    assert_int_equal(sql_int(fx->path, "SELECT count(*) FROM alert_queue"), 1);
    journal_free(j);
}

/* While the disk refuses writes, a queued message is kept for later and not
 * seen by reads yet; once written it is. */
static void journal_alert_push_waits_for_the_disk_like_any_write(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = open_ok(fx);
    journal_set_batching(j, true);
    push_alert(j, "h", 1, "opened", true);
    assert_int_equal(journal_flush(j), 0);
    sqlite3 *other = NULL;
    assert_int_equal(sqlite3_open(fx->path, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    push_alert(j, "h", 1, "resolved", false);
    assert_int_equal(journal_flush(j), -EAGAIN);
    struct journal_alert rows[4];
    assert_int_equal(journal_alert_read(j, "h", 1, rows, 4), 0);
    assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    poll_until(journal_flush(j) != -EAGAIN);
    assert_int_equal(journal_alert_read(j, "h", 1, rows, 4), 1);
    assert_string_equal(rows[0].event, "resolved");
    journal_alert_release(&rows[0]);
    journal_free(j);
}

/* Another connection holds the write lock from before the loop's write
 * until shortly after it began, as a checkpointer's connection does when it
 * reads the WAL's header in the middle of a commit. */
struct brief_lock {
    const char *path;
    atomic_int phase; /* 1: held; 2: the write began; 3: released */
    uint64_t began_us, released_us;
};

static void brief_lock_hold(void *arg)
{
    struct brief_lock *b = arg;
    sqlite3 *db = NULL;
    if (sqlite3_open(b->path, &db) != SQLITE_OK ||
        sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        atomic_store(&b->phase, 3);
        return;
    }
    atomic_store(&b->phase, 1);
    while (atomic_load(&b->phase) != 2)
        ;
    while (clock_mono_us() < b->began_us + 100)
        ;
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    b->released_us = clock_mono_us();
    atomic_store(&b->phase, 3);
    sqlite3_close(db);
}

/* A lock held for a moment is ridden out on the loop (up to a millisecond),
 * not a refusal that holds every write back for a retry period. An attempt
 * counts where the holder let go well within that millisecond; on a busy
 * host a holder that was descheduled longer makes an attempt not count. */
static void journal_write_rides_out_a_lock_held_for_a_moment(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = open_ok(fx);
    journal_set_batching(j, true);
    int counted = 0, attempt;
    for (attempt = 0; attempt < 40 && counted < 3; attempt++) {
        struct brief_lock b = {.path = fx->path};
        uv_thread_t holder;
        assert_int_equal(uv_thread_create(&holder, brief_lock_hold, &b), 0);
        while (atomic_load(&b.phase) == 0)
            ;
        assert_int_equal(atomic_load(&b.phase), 1);
        b.began_us = clock_mono_us();
        atomic_store(&b.phase, 2);
        assert_int_equal(journal_transition(j, "web", STATE_NORMAL, STATE_FAILED, "brief", T0), 0);
        int flushed = journal_flush(j);
        uv_thread_join(&holder);
        if (b.released_us < b.began_us + 500) {
            assert_int_equal(flushed, 0);
            counted++;
        }
        poll_until(journal_flush(j) == 0);
    }
    journal_free(j);
    assert_int_equal(count_of(fx, "SELECT count(*) FROM transitions WHERE cause = 'brief'"),
                     attempt);
    if (!counted)
        skip(); /* never a holder quick enough on this host: nothing was judged */
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)

/* ---- histograms ---- */

/* Bucket placement: a value on a bound counts in that bound's bucket
 * (le), one just above it in the next; past the last bound, +Inf. */
static void histogram_buckets_follow_le(void **state)
{
    assert_int_equal(HISTOGRAM_BUCKETS, 15);
    assert_int_equal(histogram_bucket(0), 0);
    assert_int_equal(histogram_bucket(5), 0);
    assert_int_equal(histogram_bucket(6), 1);
    assert_int_equal(histogram_bucket(1000), 7);
    assert_int_equal(histogram_bucket(1001), 8);
    assert_int_equal(histogram_bucket(300000), 13);
    assert_int_equal(histogram_bucket(300001), 14);
    assert_string_equal(histogram_le[7], "1");
    assert_string_equal(histogram_le[HISTOGRAM_BUCKETS - 1], "+Inf");
    for (unsigned i = 0; i + 1 < HISTOGRAM_BUCKETS - 1; i++)
        assert_true(histogram_bounds_ms[i] < histogram_bounds_ms[i + 1]);
}

/* Cumulative count of bucket le in metric of scope (NULL: overall). */
static json_int_t hist_count(json_t *m, const char *service, const char *metric, const char *le)
{
    json_t *o = service ? json_object_get(json_object_get(m, "by_service"), service)
                        : json_object_get(m, "overall");
    json_t *h = json_object_get(o, metric);
    if (!le)
        return json_integer_value(json_object_get(h, "count"));
    return json_integer_value(json_object_get(json_object_get(h, "buckets"), le));
}

static void fault_with_detection(struct journal *j, const char *service, int64_t detection_ms,
                                 int64_t recovery_ms)
{
    char ctx[64];
    struct fault f = make_fault(service, FAULT_SOFTWARE, SEVERITY_HIGH, IMPACT_SERVICE, T0);
    snprintf(ctx, sizeof ctx, "{\"detection_ms\":%lld}", (long long)detection_ms);
    f.context = ctx;
    assert_int_equal(journal_fault_open(j, &f), 0);
    f.resolved_ms = T0 + (uint64_t)recovery_ms;
    assert_int_equal(journal_fault_resolve(j, &f), 0);
}

/* Detection and recovery histograms, overall and per service, in the
 * buckets of lib/histogram.h; the same after a reopen of the journal (on
 * disk, not in memory) and after pruning every row it may (lifetime). A
 * flap takes its recovery time back out until it resolves again. */
static void journal_histograms_place_survive_reopen_and_pruning(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = open_ok(fx);
    fault_with_detection(j, "web", 5, 5);        /* both on the first bound */
    fault_with_detection(j, "web", 6, 2000);     /* 0.01 and 2.5 */
    fault_with_detection(j, "db", 400000, 1001); /* +Inf and 2.5 */
    struct fault nodet = make_fault("db", FAULT_SOFTWARE, SEVERITY_HIGH, IMPACT_SERVICE, T0);
    nodet.context = (char *)"not json"; /* no detection time, and no failure */
    assert_int_equal(journal_fault_open(j, &nodet), 0);
    nodet.resolved_ms = T0 + 70000; /* 300 */
    assert_int_equal(journal_fault_resolve(j, &nodet), 0);
    assert_int_equal(journal_fault_reopen(j, &nodet), 0); /* a flap: out again */
    struct fault sup = make_fault("web", FAULT_SOFTWARE, SEVERITY_HIGH, IMPACT_SERVICE, T0);
    snprintf(sup.check, sizeof sup.check, "supervisor");
    sup.context = (char *)"{\"detection_ms\":1}";
    assert_int_equal(journal_fault_open(j, &sup), 0); /* no outage of its own: not counted */
    for (int round = 0; round < 3; round++) {
        json_t *m = journal_metrics_json(j);
        assert_non_null(m);
        assert_int_equal(hist_count(m, NULL, "detection_seconds", NULL), 3);
        assert_int_equal(hist_count(m, NULL, "detection_seconds", "0.005"), 1);
        assert_int_equal(hist_count(m, NULL, "detection_seconds", "0.01"), 2);
        assert_int_equal(hist_count(m, NULL, "detection_seconds", "300"), 2);
        assert_int_equal(hist_count(m, NULL, "detection_seconds", "+Inf"), 3);
        json_int_t flap = round == 2; /* resolved again in round 1 */
        assert_int_equal(hist_count(m, NULL, "recovery_seconds", NULL), 3 + flap);
        assert_int_equal(hist_count(m, NULL, "recovery_seconds", "0.005"), 1);
        assert_int_equal(hist_count(m, NULL, "recovery_seconds", "1"), 1);
        assert_int_equal(hist_count(m, NULL, "recovery_seconds", "2.5"), 3);
        assert_int_equal(hist_count(m, NULL, "recovery_seconds", "60"), 3);
        assert_int_equal(hist_count(m, NULL, "recovery_seconds", "+Inf"), 3 + flap);
        json_t *all = json_object_get(json_object_get(m, "overall"), "recovery_seconds");
        double sum = json_real_value(json_object_get(all, "sum_s")) - (flap ? 70.0 : 0.0);
        assert_true(sum > 3.005 && sum < 3.007);
        assert_int_equal(hist_count(m, "web", "detection_seconds", NULL), 2);
        assert_int_equal(hist_count(m, "web", "recovery_seconds", "0.005"), 1);
        assert_int_equal(hist_count(m, "db", "detection_seconds", "300"), 0);
        assert_int_equal(hist_count(m, "db", "detection_seconds", "+Inf"), 1);
        assert_int_equal(hist_count(m, "db", "recovery_seconds", NULL), 1 + flap);
        json_decref(m);
        if (round == 0) { /* the next round reads them from the file again */
            journal_free(j);
            j = open_ok(fx);
        } else if (round == 1) { /* and the one after, once pruning took what it may */
            sup.resolved_ms = T0 + 1;
            assert_int_equal(journal_fault_resolve(j, &sup), 0);
            nodet.resolved_ms = T0 + 70000;
            assert_int_equal(journal_fault_resolve(j, &nodet), 0);
            struct journal_retention keep = {.max_age_ms = 1000, .keep_ms = 1000};
            journal_set_retention(j, &keep);
            prune_settled(j, T0 + 1000000, 100);
            assert_true(sql_int(fx->path, "SELECT count(*) FROM faults") <= 1);
            /* the flap resolved again: its 70 s are in, nothing else moved */
            json_t *m2 = journal_metrics_json(j);
            assert_int_equal(hist_count(m2, NULL, "recovery_seconds", "300"), 4);
            json_decref(m2);
            nodet.resolved_ms = 0;
            assert_int_equal(journal_fault_reopen(j, &nodet), 0); /* gone: changes nothing */
        }
    }
    journal_free(j);
}

/* A second, read-only connection sees what the writer committed, not
 * its open batch. */
static void journal_readonly_reads_commits_and_refuses_writes(void **state)
{
    struct fixture *fx = *state;
    char err[256] = "";
    struct journal *j = open_ok(fx);
    journal_set_batching(j, true);
    struct fault f = make_fault("web", FAULT_SOFTWARE, SEVERITY_HIGH, IMPACT_SERVICE, T0);
    assert_int_equal(journal_fault_open(j, &f), 0);
    struct journal *ro = journal_open_readonly(fx->path, err, sizeof err);
    if (!ro)
        fail_msg("journal_open_readonly: %s", err);
    json_t *before = journal_fault_json(ro, f.id);
    assert_null(before); /* in the writer's open batch only */
    assert_int_equal(journal_flush(j), 0);
    assert_int_equal(journal_read_begin(ro), 0);
    json_t *after = journal_fault_json(ro, f.id);
    journal_read_end(ro);
    assert_non_null(after);
    json_decref(after);
    journal_free(ro);
    journal_free(j);
}

/* ---- the checkpointer ---- */

static off_t wal_size(const struct fixture *fx)
{
    char wal[160];
    struct stat st;
    snprintf(wal, sizeof wal, "%s-wal", fx->path);
    return stat(wal, &st) == 0 ? st.st_size : 0;
}

/* One loop turn's write, as the daemon makes it: one transition, then the
 * flush (which may find the writes held back while the WAL starts over). */
static void turn_write(struct journal *j, uint64_t i)
{
    assert_int_equal(journal_transition(j, "web", STATE_NORMAL, STATE_FAILED, "x", T0 + i), 0);
    int r = journal_flush(j);
    assert_true(r == 0 || r == -EAGAIN);
}

#define CKPT_COMMITS 6000
/* Far below what CKPT_COMMITS commits fill without checkpoints (each
 * writes two or three pages: 50 MB and more). */
#define CKPT_WAL_BOUND (16 << 20)

/* Thousands of commits without a pause: the journal's own thread
 * checkpoints and starts the WAL over, so it stays bounded, and the
 * writer's thread (the loop) never syncs a file; nothing is lost. */
static void journal_checkpoints_run_off_the_writer_and_bound_the_wal(void **state)
{
    struct fixture *fx = *state;
    syncvfs_install();
    struct journal *j = open_ok(fx);
    journal_set_batching(j, true);
    unsigned own = syncvfs_own(); /* creating the WAL at open syncs its header */
    off_t most = 0;
    for (uint64_t i = 0; i < CKPT_COMMITS; i++) {
        turn_write(j, i);
        off_t now = wal_size(fx);
        most = now > most ? now : most;
    }
    poll_until(journal_flush(j) == 0);
    assert_int_equal(syncvfs_own(), own);
    assert_true(syncvfs_others() > 0);
    assert_true(journal_checkpoints(j) > 0);
    if (most > CKPT_WAL_BOUND)
        fail_msg("the WAL grew to %lld bytes", (long long)most);
    assert_int_equal(sql_int(fx->path, "SELECT count(*) FROM transitions"), CKPT_COMMITS);
    journal_free(j);
    syncvfs_remove();
}

/* The checkpointer sits in an fsync (a slow disk, made certain): the
 * loop's commits go on meanwhile, each on disk before its flush returns. */
static void journal_writes_go_on_while_a_checkpoint_waits_for_the_disk(void **state)
{
    struct fixture *fx = *state;
    syncvfs_install();
    syncvfs_hold(true);
    struct journal *j = open_ok(fx);
    journal_set_batching(j, true);
    uint64_t n = 0;
    poll_until((turn_write(j, n++), syncvfs_held() > 0));
    poll_until(journal_flush(j) == 0);
    uint64_t cycles = journal_checkpoints(j);
    for (int i = 0; i < 200; i++) {
        assert_int_equal(journal_transition(j, "web", STATE_NORMAL, STATE_FAILED, "x", T0 + n++),
                         0);
        assert_int_equal(journal_flush(j), 0);
    }
    assert_int_equal(sql_int(fx->path, "SELECT count(*) FROM transitions"), (int64_t)n);
    assert_true(syncvfs_held() > 0); /* still in that checkpoint */
    assert_int_equal(journal_checkpoints(j), cycles);
    syncvfs_hold(false);
    poll_until(journal_checkpoints(j) > cycles);
    journal_free(j);
    syncvfs_remove();
    assert_int_equal(sql_int(fx->path, "SELECT count(*) FROM transitions"), (int64_t)n);
}

static atomic_int gate_free_wakes;

static void count_wake(void *arg)
{
    (void)arg;
    atomic_fetch_add(&gate_free_wakes, 1);
}

/* A write the loop kept back while the checkpointer held the WAL's gate is
 * not left for the loop's next turn (an idle loop may have none for a
 * second): the thread calls the journal's wake once it gave the gate
 * back, and the flush that follows writes it. */
static void journal_writes_kept_for_the_gate_wake_the_loop_once_it_is_free(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = open_ok(fx);
    journal_set_batching(j, true);
    atomic_store(&gate_free_wakes, 0);
    journal_on_gate_free(j, count_wake, NULL);
    uint64_t n = 0;
    uint64_t until = uv_hrtime() + (uint64_t)LOOPWAIT_MS * 1000000;
    int r = 0;
    /* Commits without a pause: once the WAL passes its mark the thread
     * wants the gate, and the next write after a flush is kept back. */
    while (r != -EAGAIN && uv_hrtime() < until) {
        assert_int_equal(journal_transition(j, "web", STATE_NORMAL, STATE_FAILED, "x", T0 + n++),
                         0);
        r = journal_flush(j);
        assert_true(r == 0 || r == -EAGAIN);
    }
    assert_int_equal(r, -EAGAIN);
    poll_until(atomic_load(&gate_free_wakes) > 0);
    assert_int_equal(journal_flush(j), 0);
    assert_int_equal(sql_int(fx->path, "SELECT count(*) FROM transitions"), (int64_t)n);
    journal_on_gate_free(j, NULL, NULL);
    journal_free(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(journal_open_creates_schema_private_wal),
        T(journal_open_rejects_newer_schema),
        T(journal_open_fails_with_message_for_missing_directory),
        T(journal_reopen_keeps_history),
        T(journal_fault_reopen_clears_resolved_and_records_the_new_description),
        T(journal_fault_open_assigns_id_and_resolve_sets_resolved_at),
        T(journal_fault_json_unknown_id_is_null),
        T(journal_faults_open_for_returns_only_open_faults_of_service),
        T(journal_faults_json_active_only_omits_resolved),
        T(journal_faults_json_counts_actions_view_lists_them),
        T(journal_summary_counts_every_enum_name_with_zeros),
        T(journal_action_insert_update_round_trips_all_fields),
        T(journal_action_without_fault_has_null_fault_id),
        T(journal_action_for_missing_fault_is_rejected),
        T(journal_abort_unfinished_leaves_finished_actions_alone),
        T(journal_children_set_replace_clear_iterate),
        T(journal_children_of_a_turn_share_one_commit),
        T(journal_children_callback_may_clear_children),
        T(journal_write_survives_sigkill_of_writer),
        T(journal_strings_with_quotes_and_unicode_round_trip),
        T(journal_invalid_context_reads_as_empty_object),
        T(journal_invalid_utf8_text_still_reads),
        T(journal_lists_honour_limit_newest_first),
        T(journal_refused_writes_wait_and_are_written_in_order),
        T(journal_a_refused_commit_keeps_every_write_of_its_batch),
        T(journal_open_moves_a_garbage_file_aside),
        T(journal_open_moves_a_truncated_file_aside),
        T(journal_open_refuses_a_symlink_and_leaves_its_target_alone),
        T(journal_prune_by_age_keeps_open_faults_and_unfinished_actions),
        T(journal_prune_by_size_holds_the_file_under_the_cap),
        T(journal_prune_keeps_the_newest_fault_and_action_for_their_ids),
        T(journal_schema_1_is_migrated_to_the_alert_queue),
        T(journal_alert_seq_is_never_reused),
        T(journal_alert_read_and_groups),
        T(journal_alert_push_waits_for_the_disk_like_any_write),
        T(journal_write_rides_out_a_lock_held_for_a_moment),
        T(journal_pages_lose_and_repeat_no_row_while_rows_are_added),
        T(journal_every_api_query_reads_through_an_index),
        T(journal_counters_follow_writes_and_outlive_pruning),
        T(histogram_buckets_follow_le),
        T(journal_histograms_place_survive_reopen_and_pruning),
        T(journal_readonly_reads_commits_and_refuses_writes),
        T(journal_checkpoints_run_off_the_writer_and_bound_the_wal),
        T(journal_writes_go_on_while_a_checkpoint_waits_for_the_disk),
        T(journal_writes_kept_for_the_gate_wake_the_loop_once_it_is_free),
    };
    if (getenv("TEST_FILTER"))
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
