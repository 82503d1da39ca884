/* The fixture of the recovery executor's tests: see recfix.h. */
#include "recfix.h"

#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config/config.h"
#include "detect/detector.h"
#include "lib/model.h"
#include "lib/uvclock.h"
#include "recover/strategy.h"
#include "store/journal.h"

/* ---- a check kind that passes while a file exists ---- */

static void file_report_cb(uv_timer_t *t)
{
    struct check *c = t->data;
    const char *path = c->cfg->params;
    struct observation o = {.type = FAULT_SOFTWARE, .severity = SEVERITY_HIGH, .code = -1};
    o.ok = access(path, F_OK) == 0;
    snprintf(o.reason, sizeof o.reason, "%s", o.ok ? "present" : "file missing");
    check_report(c, &o);
}

static void file_timer_closed(uv_handle_t *h)
{
    free(h);
}

static int file_start(struct check *c)
{
    if (!c->priv) {
        uv_timer_t *t = calloc(1, sizeof *t);
        if (!t)
            return -ENOMEM;
        uv_timer_init(c->set->loop, t);
        c->priv = t;
    }
    uv_timer_t *t = c->priv;
    t->data = c;
    uv_timer_start(t, file_report_cb, 0, 0); /* reports from the loop, never inline */
    return 0;
}

static void file_cancel(struct check *c)
{
    if (c->priv)
        uv_timer_stop(c->priv);
}

static void file_release(struct check *c)
{
    if (c->priv)
        uv_close(c->priv, file_timer_closed);
    c->priv = NULL;
}

static const struct detector_ops file_ops = {
    .name = "file",
    .start = file_start,
    .cancel = file_cancel,
    .release = file_release,
};

/* ---- a service: one part per layer, wired like daemon/service.c ---- */

static void sink_failing(void *ctx, struct check *c, const struct observation *o)
{
    struct svc *s = ctx;
    recovery_check_failing(&s->rec, c, o);
}

static void sink_reported(void *ctx, struct check *c)
{
    struct svc *s = ctx;
    recovery_check_reported(&s->rec, c);
}

static void sink_exited(void *ctx, const struct sup_exit *e)
{
    struct svc *s = ctx;
    recovery_process_exited(&s->rec, e);
}

static void sink_launched(void *ctx, int err)
{
    struct svc *s = ctx;
    recovery_launched(&s->rec, err);
}

static void sink_ready(void *ctx)
{
    struct svc *s = ctx;
    s->ready++;
}

static void sink_recovered(void *ctx)
{
    struct svc *s = ctx;
    s->recovered++;
    if (s->dependent)
        recovery_event(&s->dependent->rec, REC_EV_DEP_RECOVERED); /* as service.c does */
}

static void sink_closed(void *ctx)
{
    (void)ctx;
}

int fixture_setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    char err[256] = "", path[128];
    assert_non_null(fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/recfix.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    snprintf(path, sizeof path, "%s/journal.db", fx->dir);
    fx->journal = journal_open(path, err, sizeof err);
    if (!fx->journal)
        fail_msg("journal_open: %s", err);
    for (int t = 0; t < FAULT_TYPE__COUNT; t++) {
        fx->config.rules[t][0] = STRATEGY_RESTART;
        fx->config.n_rules[t] = 1;
    }
    assert_int_equal(monitor_init(&fx->m, &fx->loop, fx->journal, 100), 0);
    fx->an = (struct analysis){.journal = fx->journal, .cfg = &fx->config, .clock = &fx->clock};
    fx->clock = uvclock_src(&fx->loop);
    fx->ex = (struct executor){.journal = fx->journal,
                               .strategies = strategy_table,
                               .max_executing = 3,
                               .max_starting = 64,
                               .action_timeout_ms = 10000};
    *state = fx;
    return 0;
}

/* The strategies' params of s, from the real loader: repair's struct is
 * repair.c's own, and a strategy finds what a loaded configuration gives
 * it. With repair_script, the repair program is sh -c repair_script. The
 * restart params keep what the test tuned so far. */
static void svc_strategies(struct svc *s, const char *repair_script)
{
    static const struct cfg_registry reg = {detector_cfg_kind, strategy_cfg_kind};
    char quoted[2 * sizeof s->repair_script] = "", *yaml = NULL;
    struct cfg_err err;
    size_t n = 0;
    for (const char *p = repair_script; p && *p && n + 2 < sizeof quoted; p++) {
        quoted[n++] = *p;
        if (*p == '\'')
            quoted[n++] = '\''; /* YAML single quotes: '' is one quote */
    }
    quoted[n] = '\0';
    assert_true(asprintf(&yaml,
                         "services:\n  x:\n    command: [x]\n"
                         "    restart: {max: 5, window: 60s, stable: 200ms,\n"
                         "              backoff: {initial: 10ms, max: 100ms}}\n%s%s%s",
                         repair_script ? "    repair: {command: [/bin/sh, -c, '" : "", quoted,
                         repair_script ? "'], timeout: 10s}\n" : "") > 0);
    struct config *c = config_load_string("recfix.yaml", yaml, strlen(yaml), &reg, &err);
    free(yaml);
    if (!c)
        fail_msg("recfix.yaml:%d:%d: %s", err.line, err.col, err.msg);
    struct service_cfg *sc = &c->services[0];
    if (s->restart)
        *(struct restart_cfg *)sc->strategy[STRATEGY_RESTART] = *s->restart;
    config_free(s->conf);
    s->conf = c;
    memcpy(s->cfg.strategy, sc->strategy, sizeof s->cfg.strategy);
    memcpy(s->cfg.strategy_fields, sc->strategy_fields, sizeof s->cfg.strategy_fields);
    s->restart = sc->strategy[STRATEGY_RESTART];
}

int fixture_setup_fake(void **state)
{
    fixture_setup(state);
    struct fixture *fx = *state;
    fakeclock_init(&fx->fake, 1000000000); /* not 0: a module may take 0 for "never" */
    fx->clock = fx->fake.src;
    return 0;
}

/* A service named name: watched only (no command) with one file check,
 * no recovery chain of its own (the rules: restart). Tests set the rest. */
struct svc *svc_new(struct fixture *fx, const char *name)
{
    struct svc *s = calloc(1, sizeof *s);
    assert_non_null(s);
    assert_true(fx->n < MAX_SVC);
    fx->svc[fx->n++] = s;
    s->fx = fx;
    snprintf(s->name, sizeof s->name, "%s", name);
    snprintf(s->ok_path, sizeof s->ok_path, "%s/ok_%s", fx->dir, name);
    s->ccfg = (struct check_cfg){.name = "file",
                                 .kind = "file",
                                 .ops = &file_ops,
                                 .params = s->ok_path,
                                 .interval_ms = 20,
                                 .timeout_ms = 1000,
                                 .fall = 2,
                                 .rise = 1,
                                 .severity = -1,
                                 .type = -1,
                                 .impact = -1};
    s->cfg = (struct service_cfg){.name = s->name,
                                  .cwd = fx->dir,
                                  .checks = &s->ccfg,
                                  .n_checks = 1,
                                  .verify_ms = 5000,
                                  .start_period_ms = 5000,
                                  .flap_window_ms = 0,
                                  .stop = {.signal = SIGTERM, .grace_ms = 2000},
                                  .log_max_bytes = 1 << 20};
    svc_strategies(s, NULL);
    return s;
}

/* The service's command: sh -c script (in the test's directory). */
void svc_command(struct svc *s, const char *script)
{
    snprintf(s->script, sizeof s->script, "%s", script);
    s->cmd[0] = "/bin/sh";
    s->cmd[1] = "-c";
    s->cmd[2] = s->script;
    s->cfg.command = s->cmd;
}

/* Its repair program: sh -c script; the chain becomes [chain...]. */
void svc_repair(struct svc *s, const char *script)
{
    snprintf(s->repair_script, sizeof s->repair_script, "%s", script);
    svc_strategies(s, s->repair_script);
}

void svc_chain(struct svc *s, int n, ...)
{
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        s->cfg.chain[i] = va_arg(ap, int);
    va_end(ap);
    s->cfg.n_chain = (unsigned)n;
}

void svc_no_checks(struct svc *s)
{
    s->cfg.n_checks = 0;
}

/* Initialise every part and wire them (daemon/service.c's service_new). */
void svc_init(struct svc *s)
{
    struct fixture *fx = s->fx;
    char log[192], fifo[192];
    s->checks.loop = &fx->loop;
    s->checks.service = s->name;
    s->checks.sink = (struct check_sink){sink_failing, sink_reported, sink_closed, s};
    s->faults.an = &fx->an;
    s->faults.service = s->name;
    s->faults.cfg = &s->cfg;
    s->faults.state = &s->st;
    s->faults.checks = &s->checks;
    s->faults.advisor = (struct fault_advisor){recovery_analyse, &s->rec};
    s->sup.loop = &fx->loop;
    s->sup.service = s->name;
    s->sup.cfg = &s->cfg;
    s->sup.journal = fx->journal;
    s->sup.sink = (struct sup_sink){sink_exited, sink_launched, sink_closed, s};
    s->rec.ex = &fx->ex;
    s->rec.loop = &fx->loop;
    s->rec.clock = &fx->clock;
    s->rec.service = s->name;
    s->rec.cfg = &s->cfg;
    s->rec.sup = &s->sup;
    s->rec.checks = &s->checks;
    s->rec.faults = &s->faults;
    s->rec.st = &s->st;
    s->rec.sink = (struct recovery_sink){sink_ready, sink_recovered, sink_closed, s};
    s->st.index = SIZE_MAX;
    snprintf(log, sizeof log, "%s/%s.log", fx->dir, s->name);
    snprintf(fifo, sizeof fifo, "%s/%s.pipe", fx->dir, s->name);
    assert_int_equal(faults_init(&s->faults, s->cfg.n_checks), 0);
    assert_int_equal(supervisor_init(&s->sup, log, fifo), 0);
    assert_int_equal(recovery_init(&s->rec), 0);
    assert_int_equal(check_set_init(&s->checks, s->cfg.checks, s->cfg.n_checks), 0);
    assert_int_equal(state_register(&fx->m, &s->st, s->name), 0);
    s->up = true;
}

void touch(const char *path)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
}

void touch_in(struct fixture *fx, const char *name)
{
    char path[192];
    snprintf(path, sizeof path, "%s/%s", fx->dir, name);
    touch(path);
}

/* Initialise, start, and wait for its first verification. */
void svc_start(struct svc *s)
{
    svc_init(s);
    recovery_event(&s->rec, REC_EV_START);
    loopwait_until(&s->fx->loop, s->ready > 0);
}

static bool all_down(struct fixture *fx)
{
    for (size_t i = 0; i < fx->n; i++)
        if (fx->svc[i]->up && fx->svc[i]->sup.state != SUP_DOWN)
            return false;
    return true;
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    remove(path);
    return 0;
}

/* daemon_stop's order: no more automatic recovery, every service stopped
 * (checks, recovery aborted, process stopped), then every handle closed;
 * the loop must end empty. */
int fixture_teardown(void **state)
{
    struct fixture *fx = *state;
    fx->ex.stopping = true;
    for (size_t i = 0; i < fx->n; i++) {
        struct svc *s = fx->svc[i];
        if (!s->up)
            continue;
        check_set_stop(&s->checks);
        recovery_abort(&s->rec, "aborted: test over");
        supervisor_event(&s->sup, SUP_EV_STOP, STOP_SHUTDOWN);
    }
    loopwait_try(&fx->loop, all_down(fx));
    bool down = all_down(fx);
    for (size_t i = 0; i < fx->n; i++) {
        struct svc *s = fx->svc[i];
        if (!s->up)
            continue;
        if (s->sup.state != SUP_DOWN)
            kill(-s->sup.pid, SIGKILL);
        state_unregister(&s->st);
        check_set_close(&s->checks);
        recovery_close(&s->rec);
        supervisor_close(&s->sup);
    }
    monitor_close(&fx->m);
    int r = uv_run(&fx->loop, UV_RUN_DEFAULT);
    unsigned fake_open = fx->clock.ctx == &fx->fake ? fakeclock_open(&fx->fake) : 0;
    int handles = 0;
    for (size_t i = 0; i < fx->n; i++) {
        struct svc *s = fx->svc[i];
        handles += s->checks.handles_open + s->sup.handles_open + s->rec.handles_open;
        faults_close(&s->faults);
        config_free(s->conf);
        free(s);
    }
    int closed = uv_loop_close(&fx->loop);
    if (fx->forked > 0) {
        kill(fx->forked, SIGKILL);
        waitpid(fx->forked, NULL, 0);
    }
    journal_free(fx->journal);
    nftw(fx->dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
    free(fx);
    assert_true(down);
    assert_int_equal(r, 0);
    assert_int_equal(handles, 0);
    assert_int_equal(fake_open, 0);
    assert_int_equal(closed, 0);
    return 0;
}

/* ---- the journal's view ---- */

/* s's actions, oldest first (a new reference). */
json_t *actions_of(struct svc *s)
{
    json_t *all = journal_actions_json(s->fx->journal, 0, 0, 1000);
    json_t *mine = json_array();
    assert_non_null(all);
    for (size_t i = json_array_size(all); i-- > 0;) {
        json_t *a = json_array_get(all, i);
        if (strcmp(json_string_value(json_object_get(a, "service")), s->name) == 0)
            json_array_append(mine, a);
    }
    json_decref(all);
    return mine;
}

size_t n_actions(struct svc *s)
{
    json_t *a = actions_of(s);
    size_t n = json_array_size(a);
    json_decref(a);
    return n;
}

/* Action k (oldest first) of s has this strategy and status, and its
 * result starts with result_prefix (NULL: anything). */
void assert_action(struct svc *s, size_t k, const char *strategy, const char *status,
                   const char *result_prefix)
{
    json_t *all = actions_of(s);
    json_t *a = json_array_get(all, k);
    if (!a)
        fail_msg("%s has %zu actions, no #%zu", s->name, json_array_size(all), k);
    const char *st = json_string_value(json_object_get(a, "strategy"));
    const char *status_got = json_string_value(json_object_get(a, "status"));
    const char *result = json_string_value(json_object_get(a, "result"));
    if (strcmp(st, strategy) || strcmp(status_got, status) ||
        (result_prefix && strncmp(result, result_prefix, strlen(result_prefix))))
        fail_msg("%s action #%zu: %s %s \"%s\"; expected %s %s \"%s...\"", s->name, k, st,
                 status_got, result, strategy, status, result_prefix ? result_prefix : "");
    json_decref(all);
}

/* s's open faults in the journal. */
size_t open_faults_in_journal(struct svc *s)
{
    json_t *all = journal_faults_json(s->fx->journal, true, 0, 1000);
    size_t n = 0, i;
    json_t *f;
    json_array_foreach(all, i, f)
        n += strcmp(json_string_value(json_object_get(f, "service")), s->name) == 0;
    json_decref(all);
    return n;
}

/* The service's states, oldest first, as "normal>degraded>..." */
void state_path(struct svc *s, char *buf, size_t len)
{
    json_t *rows = journal_transitions_json(s->fx->journal, s->name, 0, 1000);
    size_t n = json_array_size(rows);
    buf[0] = '\0';
    for (size_t i = n; i-- > 0;) {
        json_t *row = json_array_get(rows, i);
        size_t k = strlen(buf);
        if (i == n - 1)
            snprintf(buf + k, len - k, "%s", json_string_value(json_object_get(row, "from")));
        k = strlen(buf);
        snprintf(buf + k, len - k, ">%s", json_string_value(json_object_get(row, "to")));
    }
    json_decref(rows);
}

void assert_state_path(struct svc *s, const char *want)
{
    char got[512];
    state_path(s, got, sizeof got);
    if (strcmp(got, want) != 0)
        fail_msg("%s went %s, expected %s", s->name, got, want);
}

bool idle_without_action(struct svc *s)
{
    return s->rec.state == REC_IDLE && !s->rec.has_action;
}

pid_t read_pid(struct fixture *fx, const char *name)
{
    char path[192];
    int pid = 0;
    snprintf(path, sizeof path, "%s/%s", fx->dir, name);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    if (fscanf(f, "%d", &pid) != 1)
        pid = 0;
    fclose(f);
    return pid;
}

bool pending_queued(struct svc *s)
{
    return s->rec.state == REC_PENDING && s->rec.queued;
}

/* dependent depends on dep (daemon.c's linking, for two services). */
void svc_depends(struct svc *dependent, struct svc *dep)
{
    dependent->faults.deps = malloc(sizeof(struct faults *));
    assert_non_null(dependent->faults.deps);
    dependent->faults.deps[0] = &dep->faults;
    dependent->faults.n_deps = 1;
    dep->dependent = dependent;
}
