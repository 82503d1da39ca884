/* Service lifecycle and the wiring of its parts: the checks report to the
 * recovery, the supervisor's exits go to the recovery, the recovery tells
 * the daemon when dependents may start or re-check. Ownership: the daemon
 * owns services; a service owns its parts. */
#include "daemon/service.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config-t.h"
#include "daemon/daemon.h"
#include "detect/check.h"
#include "lib/clock.h"
#include "lib/jsonw.h"
#include "lib/log.h"
#include "lib/model.h"
#include "monitor/alert.h"
#include "recover/output.h"
#include "recover/strategy.h"

/* What a spawn puts over recoverd's environment (spawn_opts.env_add): the
 * containment's mark (mark: "RECOVERD_MARK=...", or "": then an inherited
 * mark, recoverd started by a service, only goes), then cfg->env. The
 * strings are borrowed: free only the array (service_rebind re-points
 * cfg->env's). Built at each spawn instead of kept as a whole environment:
 * 16 bytes a service, not a pointer per variable of recoverd's (0.4 KiB at
 * bench/scale's). NULL only when out of memory. */
static char **service__envp(const struct service_cfg *cfg, const char *mark)
{
    size_t m = 0;
    while (cfg->env && cfg->env[m])
        m++;
    char **envp = calloc(m + 2, sizeof *envp);
    if (!envp)
        return NULL;
    envp[0] = *mark ? (char *)mark : CONTAINMENT_MARK;
    for (size_t j = 0; j < m; j++)
        envp[1 + j] = cfg->env[j];
    return envp;
}

int service_handles_open(const struct service *s)
{
    return s->checks.handles_open + s->sup.handles_open + s->rec.handles_open;
}

static void service__closed(void *ctx)
{
    struct service *s = ctx;
    if (s->retired && service_handles_open(s) == 0)
        daemon_service_gone(s->d, s);
}

/* ---- sinks ---- */

static void service__failing(void *ctx, struct check *c, const struct observation *o)
{
    struct service *s = ctx;
    recovery_check_failing(&s->rec, c, o);
}

static void service__reported(void *ctx, struct check *c)
{
    struct service *s = ctx;
    recovery_check_reported(&s->rec, c);
}

static void service__exited(void *ctx, const struct sup_exit *e)
{
    struct service *s = ctx;
    recovery_process_exited(&s->rec, e);
    if (s->retired && s->sup.state == SUP_DOWN) {
        service_close(s);
        return;
    }
    daemon_stop_progress(s->d);
}

static void service__launched(void *ctx, int err)
{
    struct service *s = ctx;
    recovery_launched(&s->rec, err);
    service_count_starting(s); /* a first start's spawn has reported */
    if (s->retired && s->sup.state == SUP_DOWN) {
        service_close(s);
        return;
    }
    daemon_stop_progress(s->d);
}

static void service__ready(void *ctx)
{
    struct service *s = ctx;
    daemon_service_ready(s->d, s);
}

static void service__recovered(void *ctx)
{
    struct service *s = ctx;
    for (size_t i = 0; i < s->n_dependents; i++)
        if (!s->dependents[i]->retired)
            recovery_event(&s->dependents[i]->rec, REC_EV_DEP_RECOVERED);
}

/* ---- life ---- */

static void service__wire(struct service *s)
{
    struct daemon *d = s->d;
    const struct service_cfg *cfg = s->cfg;
    s->checks.loop = d->loop;
    s->checks.service = s->name;
    s->checks.sink = (struct check_sink){service__failing, service__reported, service__closed, s};
    s->faults.an = &d->analysis;
    s->faults.service = s->name;
    s->faults.cfg = cfg;
    s->faults.state = &s->st;
    s->faults.checks = &s->checks;
    s->faults.advisor = (struct fault_advisor){recovery_analyse, &s->rec};
    s->sup.loop = d->loop;
    s->sup.service = s->name;
    s->sup.cfg = cfg;
    s->sup.journal = d->journal;
    s->sup.box = d->containment_up ? &d->containment : NULL;
    s->sup.pace = &d->pace;
    s->sup.sink = (struct sup_sink){service__exited, service__launched, service__closed, s};
    s->rec.ex = &d->executor;
    s->rec.loop = d->loop;
    s->rec.clock = &d->clock;
    s->rec.service = s->name;
    s->rec.cfg = cfg;
    s->rec.sup = &s->sup;
    s->rec.checks = &s->checks;
    s->rec.faults = &s->faults;
    s->rec.st = &s->st;
    s->rec.sink = (struct recovery_sink){service__ready, service__recovered, service__closed, s};
    s->st.index = SIZE_MAX;
}

/* Where a service's output goes: its log and its FIFO. */
static void service__output_paths(const char *state_dir, const char *name, char *log, char *fifo,
                                  size_t len)
{
    snprintf(log, len, "%s/logs/%s.log", state_dir, name);
    snprintf(fifo, len, "%s/logs/%s.pipe", state_dir, name);
}

void service_prepare_files(const char *state_dir, const struct service_cfg *cfg)
{
    char path[4200], fifo[4200];
    service__output_paths(state_dir, cfg->name, path, fifo, sizeof path);
    (void)output_prepare(path, fifo);
}

struct service *service_new(struct daemon *d, const struct service_cfg *cfg)
{
    char path[4200], fifo[4200];
    struct service *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->d = d;
    s->cfg = cfg;
    snprintf(s->name, sizeof s->name, "%s", cfg->name);
    service__wire(s);
    if (faults_init(&s->faults, cfg->n_checks) < 0)
        goto fail;
    service__output_paths(d->state.path, cfg->name, path, fifo, sizeof path);
    int r = supervisor_init(&s->sup, path, fifo);
    if (r < 0) {
        log_event(LOG_ERROR, s->name, "log-open-failed", "path=%s fifo=%s error=\"%s\"", path, fifo,
                  strerror(-r));
        goto fail;
    }
    /* From here on every part owns loop handles: a failure retires s. The
     * environment carries the mark supervisor_init made. */
    s->sup.envp = service__envp(cfg, s->sup.encl.mark);
    if (!s->sup.envp || recovery_init(&s->rec) < 0 ||
        check_set_init(&s->checks, cfg->checks, cfg->n_checks) < 0 ||
        state_register(&d->monitor, &s->st, s->name) < 0) {
        s->retired = true;
        service_close(s);
        return NULL;
    }
    analyzer_adopt_open_faults(&s->faults);
    return s;
fail:
    faults_close(&s->faults);
    free(s);
    return NULL;
}

/* The preflight refused the service (its user does not exist, a program
 * it names is missing): failed with the reason, a critical configuration
 * fault, and nothing of it runs, neither its process nor its checks. Its
 * dependents start anyway (their faults will be its symptoms), as after a
 * recovery that gave up. */
static void service__refuse(struct service *s)
{
    const char *why = s->cfg->problem;
    log_event(LOG_ERROR, s->name, "service-refused", "error=\"%s\"", why);
    analyzer_config_failed(&s->faults, why);
    state_service_event(&s->st, EV_GAVE_UP, why);
    alert_service_failed(s->d->alerter, s->name, s->faults.slots[SLOT_SUPERVISOR(&s->faults)].fault,
                         why);
    s->rec.ready = true;
    daemon_service_ready(s->d, s);
}

void service_count_starting(struct service *s)
{
    bool starting = !s->retired && (!s->started || s->start_waiting || s->rec.start_launching);
    if (starting == s->counted_starting)
        return;
    s->counted_starting = starting;
    if (starting)
        s->d->n_starting++;
    else
        s->d->n_starting--;
}

void service_start(struct service *s)
{
    s->started = true;
    s->start_waiting = !s->cfg->problem && !daemon_dependencies_ready(s->d, s);
    service_count_starting(s);
    if (s->cfg->problem) {
        service__refuse(s);
        return;
    }
    if (s->start_waiting) {
        log_event(LOG_INFO, s->name, "start-waiting", "why=\"dependencies not ready\"");
        return;
    }
    recovery_event(&s->rec, REC_EV_START);
    service_count_starting(s); /* its first spawn may still be on a spawner thread */
}

void service_stop(struct service *s, const char *why)
{
    s->start_waiting = false;
    check_set_stop(&s->checks);
    recovery_abort(&s->rec, why);
    service_count_starting(s);
    supervisor_event(&s->sup, SUP_EV_STOP, STOP_SHUTDOWN);
}

void service_detach(struct service *s)
{
    s->start_waiting = false;
    check_set_stop(&s->checks);
    recovery_abort(&s->rec, "aborted: recoverd exited leaving the service running");
    service_count_starting(s);
    supervisor_detach(&s->sup);
}

void service_rebind(struct service *s, const struct service_cfg *cfg)
{
    /* The environment entries after the mark borrow cfg->env's strings (see
     * service__envp): point them at the new, equal ones, so the old config
     * can be freed. */
    for (size_t j = 0; s->sup.envp && cfg->env && cfg->env[j]; j++)
        s->sup.envp[1 + j] = cfg->env[j];
    s->cfg = s->faults.cfg = s->sup.cfg = s->rec.cfg = cfg;
    check_set_rebind(&s->checks, cfg->checks);
}

int service_reconfigure(struct service *s, const struct service_cfg *cfg, uint64_t first_ms,
                        const char **why)
{
    if ((*why = recovery_busy(&s->rec)))
        return -EBUSY;
    if (s->start_waiting || ((cfg->command || cfg->pidfile) && s->sup.state != SUP_RUNNING)) {
        *why = "it is not running";
        return -EBUSY;
    }
    *why = "out of memory";
    char **envp = service__envp(cfg, s->sup.encl.mark);
    if (!envp || check_set_replace(&s->checks, cfg->checks, cfg->n_checks) < 0) {
        free(envp);
        return -ENOMEM;
    }
    /* No fault is open (recovery_busy): nothing in the slots to carry. */
    if (faults_reslot(&s->faults, cfg->n_checks) < 0) {
        /* the checks are new already: keep going with them */
        log_event(LOG_ERROR, s->name, "reconfigure-failed", "error=\"out of memory\"");
    }
    s->cfg = s->faults.cfg = s->sup.cfg = s->rec.cfg = cfg;
    free(s->sup.envp);
    s->sup.envp = envp;
    s->checks.pid = s->sup.pid;
    check_set_start(&s->checks, first_ms);
    *why = NULL;
    return 0;
}

void service_close(struct service *s)
{
    /* Its handles close over the next turns (an rmdir in the pool, the
     * output's pipe): a retired one leaves d->services now, as a stop or
     * a reload in that while must not ask anything of its parts (a stop
     * right after a reload's retirements stopped a closed recovery timer). */
    if (s->retired)
        daemon_service_closing(s->d, s);
    state_unregister(&s->st);
    check_set_close(&s->checks);
    recovery_close(&s->rec);
    supervisor_close(&s->sup);
}

void service_free(struct service *s)
{
    if (!s)
        return;
    faults_close(&s->faults);
    free(s->sup.envp);
    free(s->dependents);
    free(s);
}

/* A wall time as ISO 8601 text; 0: null. */
static void service__time(struct jsonw *w, uint64_t ms)
{
    char buf[40];
    jsonw_string(w, ms ? clock_iso8601(ms, buf, sizeof buf) : NULL);
}

/* A check's last result; stale (null) while its process is down. */
static void service__check_view(const struct check *c, struct jsonw *w)
{
    bool fresh = c->has_result && !c->stale;
    jsonw_object(w);
    jsonw_key_lit(w, "name");
    jsonw_string(w, c->cfg->name);
    jsonw_key_lit(w, "kind");
    jsonw_string(w, c->cfg->kind);
    jsonw_key_lit(w, "failing");
    jsonw_bool(w, c->failing);
    jsonw_key_lit(w, "consecutive_failures");
    jsonw_int(w, c->fails);
    jsonw_key_lit(w, "consecutive_successes");
    jsonw_int(w, c->oks);
    jsonw_key_lit(w, "stale");
    jsonw_bool(w, c->stale);
    jsonw_key_lit(w, "ok");
    if (fresh)
        jsonw_bool(w, c->last.ok);
    else
        jsonw_null(w);
    jsonw_key_lit(w, "reason");
    jsonw_string(w, c->has_result ? c->last.reason : NULL);
    jsonw_key_lit(w, "at");
    service__time(w, c->has_result ? c->last_ms : 0);
    jsonw_key_lit(w, "latency_ms");
    if (c->has_result)
        jsonw_decimal(w, c->last.latency_us, 3);
    else
        jsonw_null(w);
    jsonw_key_lit(w, "probes");
    jsonw_int(w, (int64_t)c->probes);
    jsonw_object_end(w);
}

/* Its last exit (code, time, signal), or null. */
static void service__last_exit(const struct supervisor *sp, struct jsonw *w)
{
    if (!sp->has_exit) {
        jsonw_null(w);
        return;
    }
    jsonw_object(w);
    jsonw_key_lit(w, "code");
    jsonw_int(w, sp->last.code);
    jsonw_key_lit(w, "at");
    service__time(w, sp->last_exit_ms);
    jsonw_key_lit(w, "signal");
    jsonw_string(w, sp->last.signal ? sigabbrev_np(sp->last.signal) : NULL);
    jsonw_object_end(w);
}

/* The process as the view names it. */
static const char *service__process(const struct service *s)
{
    const struct supervisor *sp = &s->sup;
    const struct strategy_ops *ops = strategy_find(s->rec.action.strategy);
    if (sp->state == SUP_DOWN && s->rec.state == REC_PENDING && ops && ops->starts_process)
        return "waiting"; /* for the start a pending action will make */
    return sup_state_name(sp->state);
}

static void service__uptime(const struct supervisor *sp, struct jsonw *w, uint64_t now_us)
{
    if (sp->state != SUP_DOWN)
        jsonw_int(w, (int64_t)((now_us - sp->spawned_us) / 1000));
    else
        jsonw_null(w);
}

/* A view reads a dozen blocks of a service: its struct, config, checks,
 * their configs, strings. Between two listings the host's other work
 * evicts them, so a listing of 1,000 services waited on its cache misses
 * one after another (perf: most of the listing's time in the loads of
 * service_view). Loaded ahead in steps, the misses of several services
 * overlap: the request's time in recoverd, write included, fell from a
 * median of 2.6 to 1.5 ms at 1,000. A step reads only pointers that an
 * earlier step loaded: one that waited on a miss itself would gain
 * nothing. */
void service_view_prefetch(const struct service *s, int step)
{
    const struct supervisor *sp = &s->sup;
    if (step > 0 && s->retired)
        return; /* not in a listing: none of it is read */
    if (step == 0) {
        __builtin_prefetch(s);
        __builtin_prefetch(s->name);
        __builtin_prefetch(&s->st);
        __builtin_prefetch(&s->checks);
        __builtin_prefetch(&s->faults);
        __builtin_prefetch(&sp->state);
        __builtin_prefetch(&sp->pid);
        __builtin_prefetch(&sp->last);
        __builtin_prefetch(&sp->encl);
        __builtin_prefetch(&sp->adopted);
        __builtin_prefetch(&s->rec.state);
        __builtin_prefetch(&s->rec.action);
        __builtin_prefetch(&s->rec.priv);
    } else if (step == 1) {
        __builtin_prefetch(s->cfg);
        __builtin_prefetch(&s->cfg->depends_on);
        __builtin_prefetch(&s->cfg->problem);
        __builtin_prefetch(sp->encl.cgroup);
        __builtin_prefetch(s->faults.slots);
        for (size_t i = 0; i < s->checks.n && i < 2; i++) {
            __builtin_prefetch(&s->checks.checks[i].cfg);
            __builtin_prefetch(&s->checks.checks[i].last);
        }
        for (int i = 0; i < STRATEGY__COUNT; i++)
            if (s->rec.priv[i])
                __builtin_prefetch(s->rec.priv[i]);
    } else {
        for (size_t i = 0; i < s->checks.n && i < 2; i++) {
            const struct check *c = &s->checks.checks[i];
            if (step == 2) {
                __builtin_prefetch(c->cfg);
                if (c->last.reason)
                    __builtin_prefetch(c->last.reason);
            } else {
                __builtin_prefetch(c->cfg->name);
                __builtin_prefetch(c->cfg->kind);
            }
        }
    }
}

void service_view(const struct service *s, struct jsonw *w, uint64_t now_us)
{
    const struct supervisor *sp = &s->sup;
    jsonw_object(w);
    jsonw_key_lit(w, "name");
    jsonw_string(w, s->name);
    jsonw_key_lit(w, "state");
    jsonw_string(w, state_name(s->st.state));
    jsonw_key_lit(w, "process");
    jsonw_string(w, service__process(s));
    recovery_view(&s->rec, w);
    jsonw_key_lit(w, "kind");
    jsonw_string(w, s->cfg->command ? "supervised" : s->cfg->pidfile ? "external" : "watched");
    jsonw_key_lit(w, "depends_on");
    jsonw_array(w);
    for (char **dep = s->cfg->depends_on; dep && *dep; dep++)
        jsonw_string(w, *dep);
    jsonw_array_end(w);
    jsonw_key_lit(w, "pid");
    if (sp->pid > 0)
        jsonw_int(w, sp->pid);
    else
        jsonw_null(w);
    /* Its process was started by a previous recoverd (daemon/takeover.h). */
    jsonw_key_lit(w, "adopted");
    jsonw_bool(w, sp->adopted);
    /* Why it cannot run as configured (it is failed), or null. */
    jsonw_key_lit(w, "config_error");
    jsonw_string(w, s->cfg->problem);
    jsonw_key_lit(w, "cgroup");
    jsonw_string(w, sp->encl.cgroup);
    jsonw_key_lit(w, "since");
    service__time(w, s->st.state_ms);
    jsonw_key_lit(w, "uptime_ms");
    service__uptime(sp, w, now_us);
    jsonw_key_lit(w, "last_exit");
    service__last_exit(sp, w);
    jsonw_key_lit(w, "open_faults");
    jsonw_array(w);
    for (size_t i = 0; i < s->faults.n_slots; i++)
        if (s->faults.slots[i].open)
            jsonw_int(w, s->faults.slots[i].fault->id);
    jsonw_array_end(w);
    jsonw_key_lit(w, "checks");
    jsonw_array(w);
    for (size_t i = 0; i < s->checks.n; i++)
        service__check_view(&s->checks.checks[i], w);
    jsonw_array_end(w);
    jsonw_object_end(w);
}
