/* The daemon's life: start (state_dir lock, journal, leftovers, services,
 * API), reload on SIGHUP, graceful stop on SIGTERM/SIGINT. */
#include "daemon/daemon.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "config/config.h"
#include "daemon/fdbudget.h"
#include "daemon/ports.h"
#include "daemon/preflight.h"
#include "daemon/service.h"
#include "daemon/takeover.h"
#include "detect/detector.h"
#include "lib/cgroup.h"
#include "lib/clock.h"
#include "lib/heap.h"
#include "lib/log.h"
#include "lib/spawn.h"
#include "lib/statedir.h"
#include "lib/token.h"
#include "lib/uvclock.h"
#include "monitor/alert.h"
#include "recover/leftover.h"
#include "recover/strategy.h"
#include "recover/supervisor.h"
#include "store/journal.h"

/* Journal pruning: rows per table per batch (a few ms of work), the pause
 * between batches while more is due, the period otherwise; and what is
 * never pruned for size, however full (a flap_window at least). */
#define DAEMON__PRUNE_ROWS 200
#define DAEMON__PRUNE_AGAIN_MS 20
#define DAEMON__PRUNE_EVERY_MS 1000
/* Free heap bytes left resident, at most, past a second (lib/heap.h). */
#define DAEMON__HEAP_SLACK (512u << 10)
#define DAEMON__KEEP_MIN_MS 60000
/* The longest the services' start holds the loop per turn (DESIGN: no
 * more than about a millisecond or two between turns). */
#define DAEMON__START_SLICE_NS 2000000

static void daemon__leftover_gone(void *ctx, const struct leftover *l, enum leftover_fate fate)
{
    struct daemon *d = ctx;
    if (fate != LEFTOVER_ABSENT)
        log_event(fate == LEFTOVER_STUCK ? LOG_ERROR : LOG_WARN, l->service, "leftover-stopped",
                  "pid=%d fate=%s why=\"left running by a previous recoverd\"", (int)l->pid,
                  leftover_fate_name(fate));
    journal_child_clear(d->journal, l->service);
}

static void daemon__start_services(struct daemon *d);

/* Every leftover is gone: the services may start (their ports are free). */
static void daemon__leftovers_done(void *ctx, const struct leftover_counts *c)
{
    struct daemon *d = ctx;
    d->leftovers_pending = false;
    if (!d->stopping)
        daemon__start_services(d);
    daemon_stop_progress(d);
}

/* Adopt what a predecessor left, stop the rest, off the loop's back; 0 or
 * -ENOMEM. */
static int daemon__take_over(struct daemon *d, bool fresh)
{
    struct leftover_sink sink = {daemon__leftover_gone, daemon__leftovers_done, d};
    int r = takeover_begin(d, fresh, &sink);
    if (r == 0)
        d->leftovers_pending = true;
    return r;
}

static void daemon__flush_cb(uv_prepare_t *p)
{
    struct daemon *d = p->data;
    journal_flush(d->journal);
}

/* The journal's retention from a config: nothing younger than the longest
 * flap_window is pruned for size, since such a fault may still reopen. */
static void daemon__retention(struct daemon *d, const struct config *c)
{
    struct journal_retention keep = {.max_age_ms = c->journal.max_age_ms,
                                     .max_bytes = c->journal.max_bytes,
                                     .keep_ms = DAEMON__KEEP_MIN_MS};
    for (size_t i = 0; i < c->n_services; i++)
        if (c->services[i].flap_window_ms > keep.keep_ms)
            keep.keep_ms = c->services[i].flap_window_ms;
    journal_set_retention(d->journal, &keep);
}

/* Pruning off the hot path: a small batch per timer tick, the next one
 * soon while there is more to do, else after a second (enough to see the
 * size cap approach: the prune starts below the cap, see journal.c). */
static void daemon__prune_cb(uv_timer_t *t)
{
    struct daemon *d = t->data;
    int n = journal_prune(d->journal, clock_wall_ms(), DAEMON__PRUNE_ROWS);
    if (n > 0)
        log_event(LOG_DEBUG, NULL, "journal-pruned-batch", "rows=%d", n);
    heap_trim(DAEMON__HEAP_SLACK); /* what a large API answer freed leaves RSS here */
    uv_update_time(d->loop);
    uv_timer_start(t, daemon__prune_cb, n > 0 ? DAEMON__PRUNE_AGAIN_MS : DAEMON__PRUNE_EVERY_MS, 0);
}

static void daemon__signal_cb(uv_signal_t *h, int signum)
{
    struct daemon *d = h->data;
    if (signum == SIGHUP) {
        daemon_reload(d);
        return;
    }
    if (signum == SIGQUIT) {
        log_event(LOG_INFO, NULL, "signal", "signal=QUIT action=exit-leaving-services");
        daemon_detach(d);
        return;
    }
    log_event(LOG_INFO, NULL, "signal", "signal=%s action=stop", sigabbrev_np(signum));
    daemon_stop(d);
}

/* s becomes the live service of its name (the one it replaces, if any,
 * was retired and unmapped first). */
static int daemon__add(struct daemon *d, struct service *s)
{
    if (namemap_put(&d->by_name, s->name, s) < 0)
        return -ENOMEM;
    struct service **v = realloc(d->services, (d->n_services + 1) * sizeof *v);
    if (!v) {
        namemap_remove(&d->by_name, s->name);
        return -ENOMEM;
    }
    d->services = v;
    d->services[d->n_services++] = s;
    return 0;
}

/* s is no longer the live service of its name. */
static void daemon__unmap(struct daemon *d, struct service *s)
{
    if (namemap_get(&d->by_name, s->name) == s)
        namemap_remove(&d->by_name, s->name);
}

/* Dependencies as pointers, after a start or a reload: each live service's
 * faults see its dependencies' faults, each knows its dependents and
 * counts those of its dependencies that are not ready yet. */
static void daemon__link(struct daemon *d)
{
    for (size_t i = 0; i < d->n_services; i++) {
        struct service *s = d->services[i];
        free(s->faults.deps);
        s->faults.deps = NULL;
        s->faults.n_deps = 0;
        free(s->dependents);
        s->dependents = NULL;
        s->n_dependents = 0;
        s->deps_waiting = 0;
    }
    for (size_t i = 0; i < d->n_services; i++) {
        struct service *s = d->services[i];
        if (s->retired)
            continue;
        for (char **dep = s->cfg->depends_on; dep && *dep; dep++) {
            struct service *t = daemon_service(d, *dep);
            if (!t)
                continue;
            struct faults **fv = realloc(s->faults.deps, (s->faults.n_deps + 1) * sizeof *fv);
            struct service **sv = realloc(t->dependents, (t->n_dependents + 1) * sizeof *sv);
            if (fv)
                s->faults.deps = fv;
            if (sv)
                t->dependents = sv;
            if (!fv || !sv)
                continue; /* out of memory: that link is missing, nothing else */
            s->faults.deps[s->faults.n_deps++] = &t->faults;
            t->dependents[t->n_dependents++] = s;
            s->deps_waiting += !t->ready_told;
        }
    }
}

static int daemon__create_services(struct daemon *d)
{
    for (size_t i = 0; i < d->cfg->n_services; i++) {
        struct service *s = service_new(d, &d->cfg->services[i]);
        if (!s || daemon__add(d, s) < 0)
            return -ENOMEM;
    }
    daemon__link(d);
    return 0;
}

static void daemon__warnings(const struct config *c)
{
    for (size_t i = 0; i < c->n_warnings; i++)
        log_event(LOG_WARN, NULL, "config-warning", "message=\"%s\"", c->warnings[i]);
}

/* Each service the preflight refused, with its reason (it is failed once
 * started: service.c). */
static void daemon__problems(const struct config *c)
{
    for (size_t i = 0; i < c->n_services; i++)
        if (c->services[i].problem)
            log_event(LOG_ERROR, c->services[i].name, "config-problem", "error=\"%s\"",
                      c->services[i].problem);
}

static void daemon__apply(struct daemon *d, const struct config *cfg)
{
    d->analysis.cfg = cfg;
    d->executor.max_executing = cfg->max_concurrent;
    d->executor.max_starting = cfg->max_starting;
    d->executor.action_timeout_ms = cfg->action_timeout_ms;
    d->monitor.quiet_ms = cfg->quiet_ms;
}

/* Limits a service asks for that this host or mode cannot apply. */
static void daemon__limits_warn(const struct daemon *d, const struct config *c)
{
    char buf[512];
    for (size_t i = 0; i < c->n_services; i++) {
        const char *why = containment_limits_unmet(&d->containment, &c->services[i].cgroup, buf,
                                                   sizeof buf);
        if (why)
            log_event(LOG_WARN, c->services[i].name, "cgroup-limits-unavailable", "why=\"%s\"",
                      why);
    }
}

static int daemon__containment(struct daemon *d, enum containment_mode want)
{
    char err[512], names[64];
    struct containment *c = &d->containment;
    int r = containment_init(c, d->loop, want, d->state.path, err, sizeof err);
    if (r < 0) {
        log_event(LOG_ERROR, NULL, "containment-failed", "asked=%s error=\"%s\"",
                  containment_mode_name(want), err);
        return r;
    }
    d->containment_up = true;
    if (c->mode == CONTAINMENT_CGROUP)
        log_event(LOG_INFO, NULL, "containment", "mode=cgroup cgroup=%s controllers=\"%s\"",
                  c->root, cgroup_controllers_text(c->controllers, names, sizeof names));
    else
        log_event(LOG_INFO, NULL, "containment", "mode=subreaper why=\"%s\"", c->why ? c->why : "");
    daemon__limits_warn(d, d->cfg);
    return 0;
}

int daemon_start(struct daemon *d, uv_loop_t *loop, struct config *cfg, const char *config_path,
                 const struct daemon_opts *opts)
{
    char err[512], path[4096];
    int r;
    memset(d, 0, sizeof *d);
    d->state = (struct statedir){.fd = -1, .lock_fd = -1};
    d->loop = loop;
    d->clock = uvclock_src(loop);
    d->cfg = cfg;
    d->config_path = config_path ? strdup(config_path) : NULL;
    d->started_ms = clock_wall_ms();
    /* The loop's own handles first: whatever fails below, daemon_stop can
     * close them and the loop ends cleanly. */
    uv_prepare_init(loop, &d->flush);
    d->flush.data = d;
    uv_timer_init(loop, &d->prune);
    d->prune.data = d;
    if ((r = loopwatch_init(&d->loopwatch, loop)) < 0) /* before the journal's hook */
        log_event(LOG_WARN, NULL, "loopwatch-failed", "error=\"%s\"", uv_strerror(r));
    uv_idle_init(loop, &d->start_slices);
    d->start_slices.data = d;
    uv_signal_t *sigs[] = {&d->sig_term, &d->sig_int, &d->sig_hup, &d->sig_quit};
    int signums[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT};
    for (int i = 0; i < 4; i++) {
        uv_signal_init(loop, sigs[i]);
        sigs[i]->data = d;
        uv_signal_start(sigs[i], daemon__signal_cb, signums[i]);
    }
    signal(SIGPIPE, SIG_IGN);
    daemon__warnings(cfg);
    /* The lock first: a second recoverd must stop here, before it reads
     * the journal's children as leftovers and stops another's services. */
    if ((r = statedir_open(&d->state, cfg->state_dir, err, sizeof err)) < 0 ||
        (r = statedir_subdir(&d->state, "logs", err, sizeof err)) < 0) {
        log_event(LOG_ERROR, NULL, r == -EBUSY ? "already-running" : "state-dir-refused",
                  "error=\"%s\"", err);
        return r;
    }
    /* Here, not in the thread pool: the loop does not run yet, so nothing
     * waits while NSS answers. */
    if ((r = preflight_run(cfg, NULL)) < 0) {
        log_event(LOG_ERROR, NULL, "preflight-failed", "error=\"%s\"", strerror(-r));
        return r;
    }
    srcport_use(cfg->src_ports.on, cfg->src_ports.lo, cfg->src_ports.hi);
    if ((r = daemon__containment(d, opts->containment)) < 0)
        return r;
    spawn_init(); /* after every disposition recoverd sets (SIGCHLD too): children get them back */
    daemon__problems(cfg);
    if ((r = token_load(d->state.path, d->token, err, sizeof err)) < 0) {
        log_event(LOG_ERROR, NULL, "token-refused", "path=%s/token error=\"%s\"", d->state.path,
                  err);
        return r;
    }
    snprintf(path, sizeof path, "%s/journal.db", d->state.path);
    if (!(d->journal = journal_open(path, err, sizeof err))) {
        log_event(LOG_ERROR, NULL, "journal-failed", "path=%s error=\"%s\"", path, err);
        return -EIO;
    }
    daemon__retention(d, cfg);
    if ((r = monitor_init(&d->monitor, loop, d->journal, cfg->quiet_ms)) < 0)
        return r;
    d->monitor_up = true;
    int aborted = journal_actions_abort_unfinished(d->journal, "aborted: recoverd restarted",
                                                   clock_wall_ms());
    if (aborted > 0)
        log_event(LOG_WARN, NULL, "actions-aborted", "count=%d why=\"recoverd restarted\"",
                  aborted);
    journal_set_batching(d->journal, true);
    uv_prepare_start(&d->flush, daemon__flush_cb);
    /* The first batch at the first loop turn: a recoverd that keeps being
     * killed soon after its start still holds the journal's cap. */
    uv_update_time(loop);
    uv_timer_start(&d->prune, daemon__prune_cb, 0, 0);
    if ((r = detector_init_all(loop)) < 0) {
        log_event(LOG_ERROR, NULL, "detector-init-failed", "error=\"%s\"", strerror(-r));
        return r;
    }
    d->detectors_up = true;
    if (!(d->alerter = alerter_new(loop, &cfg->alerts, d->journal)))
        return -ENOMEM;
    d->analysis =
        (struct analysis){.journal = d->journal, .alerter = d->alerter, .clock = &d->clock};
    d->executor = (struct executor){.journal = d->journal,
                                    .alerter = d->alerter,
                                    .strategies = strategy_table};
    daemon__apply(d, cfg);
    if ((r = daemon__create_services(d)) < 0) {
        log_event(LOG_ERROR, NULL, "start-failed", "error=\"cannot create services\"");
        return r;
    }
    daemon_backend_init(d);
    struct fd_budget budget;
    fd_budget_plan(cfg, d->containment_up && d->containment.mode == CONTAINMENT_CGROUP, &budget);
    fd_budget_log(&budget);
    snprintf(path, sizeof path, "%s/api.sock", cfg->state_dir);
    struct api_options api_opt = {.socket_path = path,
                                  .tcp_max = budget.api_tcp,
                                  .local_max = budget.api_local};
    d->api = api_new(loop, &d->backend, &cfg->api, &api_opt, err, sizeof err);
    if (!d->api) {
        log_event(LOG_ERROR, NULL, "api-failed", "error=\"%s\"", err);
        return -EADDRINUSE;
    }
    /* Before any spawn, and once nothing can fail any more: a start that
     * fails must not have touched a predecessor's processes. */
    if ((r = daemon__take_over(d, opts->fresh)) < 0) {
        log_event(LOG_ERROR, NULL, "leftovers-failed", "error=\"%s\"", strerror(-r));
        return r;
    }
    /* Counted from here: what ran before the loop did is no turn of it. */
    loopwatch_start(&d->loopwatch);
    log_event(LOG_INFO, NULL, "started", "config=%s services=%zu state_dir=%s",
              config_path ? config_path : "<demo>", d->n_services, d->state.path);
    return 0; /* the services start once the leftovers are gone */
}

/* One slice of the start: services in config order until the slice's
 * time is up; the rest in the next loop turns, so that the API and the
 * first checks are served meanwhile (a spawn costs about a millisecond). */
static void daemon__start_slice_cb(uv_idle_t *h)
{
    struct daemon *d = h->data;
    uint64_t until = uv_hrtime() + DAEMON__START_SLICE_NS;
    while (!d->stopping && d->start_next < d->n_services) {
        struct service *s = d->services[d->start_next++];
        if (!s->retired && !s->started && !s->replaces)
            service_start(s);
        if (uv_hrtime() >= until)
            break;
    }
    if (d->stopping || d->start_next >= d->n_services)
        uv_idle_stop(h);
}

/* Dependencies first: a service whose dependencies are not ready yet
 * starts when the last of them verified (daemon_service_ready); one the
 * slices have not reached yet starts when they do. */
static void daemon__start_services(struct daemon *d)
{
    d->start_next = 0;
    uv_idle_start(&d->start_slices, daemon__start_slice_cb);
}

size_t daemon_services_starting(const struct daemon *d)
{
    size_t n = 0;
    for (size_t i = 0; i < d->n_services; i++) {
        const struct service *s = d->services[i];
        n += !s->retired && (!s->started || s->start_waiting);
    }
    return n;
}

bool daemon_dependencies_ready(struct daemon *d, const struct service *s)
{
    (void)d;
    return s->deps_waiting == 0;
}

void daemon_service_ready(struct daemon *d, struct service *s)
{
    if (s->ready_told)
        return;
    s->ready_told = true;
    for (size_t i = 0; i < s->n_dependents; i++) {
        struct service *t = s->dependents[i];
        if (t->deps_waiting)
            t->deps_waiting--;
        if (t->start_waiting && !t->retired && !d->stopping && daemon_dependencies_ready(d, t)) {
            log_event(LOG_INFO, t->name, "dependencies-ready", "last=%s", s->name);
            service_start(t);
        }
    }
}

struct service *daemon_service(struct daemon *d, const char *name)
{
    struct service *s = namemap_get(&d->by_name, name);
    return s && !s->retired ? s : NULL;
}

/* Every process is down: close the rest so the loop can end. */
static void daemon__close_all(struct daemon *d)
{
    for (size_t i = 0; i < d->n_services; i++)
        if (!d->services[i]->retired)
            service_close(d->services[i]);
    api_free(d->api);
    d->api = NULL;
    alerter_free(d->alerter);
    d->alerter = NULL;
    d->closed = true;
    if (d->monitor_up)
        monitor_close(&d->monitor);
    d->monitor_up = false;
    uv_close((uv_handle_t *)&d->flush, NULL);
    uv_close((uv_handle_t *)&d->prune, NULL);
    uv_close((uv_handle_t *)&d->start_slices, NULL);
    loopwatch_close(&d->loopwatch);
    uv_close((uv_handle_t *)&d->sig_term, NULL);
    uv_close((uv_handle_t *)&d->sig_int, NULL);
    uv_close((uv_handle_t *)&d->sig_hup, NULL);
    uv_close((uv_handle_t *)&d->sig_quit, NULL);
    if (d->detectors_up)
        detector_shutdown_all();
    d->detectors_up = false;
    if (d->containment_up)
        containment_close(&d->containment);
    d->containment_up = false;
    log_event(LOG_INFO, NULL, "stopped", NULL);
}

static bool daemon__all_down(const struct daemon *d)
{
    for (size_t i = 0; i < d->n_services; i++)
        if (d->services[i]->sup.state != SUP_DOWN)
            return false;
    return true;
}

static void daemon__swept_cb(void *ctx)
{
    struct daemon *d = ctx;
    d->sweeping = false;
    daemon_stop_progress(d);
}

/* Once every service is down: what they left that none claimed (an orphan
 * whose marker was cleared) is stopped too, with the longest grace. */
static bool daemon__sweep(struct daemon *d)
{
    uint64_t grace = 0;
    if (d->swept || !d->containment_up || d->detaching)
        return false; /* detaching: what is left runs on, for the next recoverd */
    d->swept = true;
    for (size_t i = 0; i < d->cfg->n_services; i++)
        if (d->cfg->services[i].stop.grace_ms > grace)
            grace = d->cfg->services[i].stop.grace_ms;
    d->sweeping = containment_sweep(&d->containment, SIGTERM, grace, daemon__swept_cb, d) == 0;
    return d->sweeping;
}

void daemon_stop_progress(struct daemon *d)
{
    /* The leftovers' stop and the sweep hold loop handles of their own
     * until they are done. */
    if (d->stopping && daemon__all_down(d) && !d->closed && !d->leftovers_pending && !d->sweeping &&
        !daemon__sweep(d))
        daemon__close_all(d);
}

void daemon_stop(struct daemon *d)
{
    if (d->stopping)
        return;
    d->stopping = true;
    d->executor.stopping = true;
    uv_idle_stop(&d->start_slices);
    log_event(LOG_INFO, NULL, "stopping", "services=%zu", d->n_services);
    for (size_t i = 0; i < d->n_services; i++)
        service_stop(d->services[i], "aborted: recoverd stopping");
    daemon_stop_progress(d);
}

void daemon_detach(struct daemon *d)
{
    if (d->stopping)
        return;
    d->stopping = d->detaching = true;
    d->executor.stopping = true;
    uv_idle_stop(&d->start_slices);
    log_event(LOG_INFO, NULL, "detaching", "services=%zu", d->n_services);
    for (size_t i = 0; i < d->n_services; i++)
        service_detach(d->services[i]);
    daemon_stop_progress(d);
}

/* Whether a service still points into c. Everything else that borrows
 * from a config (checks, alert hooks, the environment) is rebound or
 * released when a reload replaces it. */
static bool daemon__cfg_in_use(const struct daemon *d, const struct config *c)
{
    uintptr_t lo = (uintptr_t)c->services, hi = (uintptr_t)(c->services + c->n_services);
    for (size_t i = 0; i < d->n_services; i++) {
        uintptr_t p = (uintptr_t)d->services[i]->cfg;
        if (p >= lo && p < hi)
            return true;
    }
    return false;
}

/* Free the configs replaced by reloads that nothing points into any more:
 * a retired service keeps its own until its process is gone. */
static void daemon__sweep_configs(struct daemon *d)
{
    size_t k = 0;
    for (size_t i = 0; i < d->n_old_cfg; i++) {
        if (daemon__cfg_in_use(d, d->old_cfg_list[i]))
            d->old_cfg_list[k++] = d->old_cfg_list[i];
        else
            config_free(d->old_cfg_list[i]);
    }
    d->n_old_cfg = k;
}

void daemon_service_gone(struct daemon *d, struct service *s)
{
    daemon__unmap(d, s);
    for (size_t i = 0; i < d->n_services; i++)
        if (d->services[i] == s) {
            memmove(d->services + i, d->services + i + 1,
                    (d->n_services - i - 1) * sizeof *d->services);
            d->n_services--;
            if (i < d->start_next)
                d->start_next--; /* the slices' place stays on the same service */
            break;
        }
    /* A dependency that is gone counts as ready (daemon_dependencies_ready). */
    for (size_t i = 0; !s->ready_told && i < s->n_dependents; i++)
        if (s->dependents[i]->deps_waiting)
            s->dependents[i]->deps_waiting--;
    for (size_t i = 0; i < d->n_services; i++) {
        struct service *t = d->services[i];
        for (size_t k = 0; k < t->n_dependents; k++)
            if (t->dependents[k] == s)
                t->dependents[k] = t->dependents[--t->n_dependents];
        /* A replacement waiting for this one's process to be gone starts now. */
        if (t->replaces == s) {
            t->replaces = NULL;
            if (!d->stopping)
                service_start(t);
        }
    }
    service_free(s);
    daemon__sweep_configs(d);
    daemon_stop_progress(d);
}

/* A service made but not kept (out of memory): it owns loop handles, so it
 * is closed and freed from its last close callback, never right away. */
static void daemon__discard(struct daemon *d, struct service *s)
{
    daemon__unmap(d, s);
    s->retired = true;
    service_close(s);
}

/* Retire s: stop its process for good; it is freed once everything closed. */
static void daemon__retire(struct daemon *d, struct service *s, const char *why)
{
    log_event(LOG_INFO, s->name, "retired", "why=\"%s\"", why);
    service_stop(s, why);
    s->retired = true;
    daemon__unmap(d, s);
    state_unregister(&s->st);
    if (s->sup.state == SUP_DOWN)
        service_close(s);
    /* else: its exit closes it (service.c) */
}

/* One service of the running config against its version in next (next's
 * services by name: next_by_name). */
static void daemon__reload_one(struct daemon *d, struct service *s,
                               const struct namemap *next_by_name)
{
    const struct service_cfg *nc = namemap_get(next_by_name, s->name);
    if (!nc) {
        daemon__retire(d, s, "removed from the configuration");
        return;
    }
    if (config_service_equal(s->cfg, nc)) {
        service_rebind(s, nc);
        return;
    }
    const char *why = "its process changed";
    if (config_process_equal(s->cfg, nc) && service_reconfigure(s, nc, &why) == 0) {
        log_event(LOG_INFO, s->name, "reconfigured", "pid=%d checks=%zu process=kept",
                  (int)s->sup.pid, s->checks.n);
        return;
    }
    char reason[128];
    snprintf(reason, sizeof reason, "configuration changed: %s", why);
    struct service *fresh = service_new(d, nc);
    bool held = s->rec.held;
    daemon__retire(d, s, reason);
    if (fresh && daemon__add(d, fresh) == 0) {
        fresh->replaces = s;    /* its log and process must be gone first */
        fresh->rec.held = held; /* an operator's hold outlives a reload */
    } else if (fresh) {
        daemon__discard(d, fresh);
    }
}

/* A reload between its load and its apply. */
struct daemon__reload {
    uv_work_t work;      /* the preflight in the thread pool; data = this */
    struct daemon *d;    /* owner */
    struct config *next; /* loaded; owned until applied */
    int result;          /* the preflight's */
    bool again;          /* another SIGHUP came meanwhile: reload once more */
};

static void daemon__reload_apply(struct daemon *d, struct config *next);

/* In a thread-pool thread: only next is touched. */
static void daemon__reload_work(uv_work_t *w)
{
    struct daemon__reload *rl = w->data;
    rl->result = preflight_run(rl->next, NULL);
    (void)ports_review_host(rl->next); /* out of memory loses warnings, never the reload */
}

static void daemon__reload_done(uv_work_t *w, int status)
{
    struct daemon__reload *rl = w->data;
    struct daemon *d = rl->d;
    bool again = rl->again;
    int r = status < 0 ? status : rl->result;
    d->reload = NULL;
    if (d->stopping || r < 0) {
        if (!d->stopping)
            log_event(LOG_ERROR, NULL, "reload-rejected",
                      "error=\"preflight: %s\" running=unchanged", strerror(-r));
        config_free(rl->next);
    } else {
        daemon__reload_apply(d, rl->next);
    }
    free(rl);
    if (again && !d->stopping)
        daemon_reload(d);
}

int daemon_reload(struct daemon *d)
{
    struct cfg_err cerr;
    char msg[1024];
    struct config *next = NULL;
    if (d->reload) {
        d->reload->again = true; /* the file may have changed after that load */
        return 0;
    }
    if (d->config_path) {
        next = config_load(d->config_path, &daemon_registry, &cerr);
    } else {
        memset(&cerr, 0, sizeof cerr);
        snprintf(cerr.msg, sizeof cerr.msg, "the bundled demo cannot be reloaded");
    }
    if (!next) {
        log_event(LOG_ERROR, NULL, "reload-rejected", "error=\"%s\" running=unchanged",
                  cfg_err_format(&cerr, msg, sizeof msg));
        return -EINVAL;
    }
    struct daemon__reload *rl = calloc(1, sizeof *rl);
    int r = rl ? 0 : -ENOMEM;
    if (rl) {
        *rl = (struct daemon__reload){.d = d, .next = next};
        rl->work.data = rl;
        r = uv_queue_work(d->loop, &rl->work, daemon__reload_work, daemon__reload_done);
    }
    if (r < 0) {
        free(rl);
        config_free(next);
        log_event(LOG_ERROR, NULL, "reload-rejected", "error=\"%s\" running=unchanged",
                  uv_strerror(r));
        return r;
    }
    d->reload = rl;
    return 0;
}

/* The preflight has run: the new configuration replaces the running one. */
static void daemon__reload_apply(struct daemon *d, struct config *next)
{
    /* Room for the old config first: past this point nothing may fail. */
    struct config **list = realloc(d->old_cfg_list, (d->n_old_cfg + 1) * sizeof *list);
    if (!list) {
        config_free(next);
        log_event(LOG_ERROR, NULL, "reload-rejected", "error=\"%s\" running=unchanged",
                  strerror(ENOMEM));
        return;
    }
    d->old_cfg_list = list;
    /* Both sides by name, so that the diff is linear in the services. */
    struct namemap next_by_name = {0}, old_by_name = {0};
    int r = 0;
    for (size_t i = 0; r == 0 && i < next->n_services; i++)
        r = namemap_put(&next_by_name, next->services[i].name, &next->services[i]);
    for (size_t i = 0; r == 0 && i < d->n_services; i++)
        r = namemap_put(&old_by_name, d->services[i]->name, d->services[i]);
    if (r < 0) {
        namemap_free(&next_by_name);
        namemap_free(&old_by_name);
        config_free(next);
        log_event(LOG_ERROR, NULL, "reload-rejected", "error=\"%s\" running=unchanged",
                  strerror(-r));
        return;
    }
    daemon__warnings(next);
    srcport_use(next->src_ports.on, next->src_ports.lo, next->src_ports.hi);
    daemon__problems(next);
    struct config *old = d->cfg;
    size_t n_old = d->n_services;
    /* The analyzer reads rules from the running config: the new one first. */
    daemon__apply(d, next);
    for (size_t i = 0; i < n_old; i++)
        if (!d->services[i]->retired)
            daemon__reload_one(d, d->services[i], &next_by_name);
    for (size_t i = 0; i < next->n_services; i++) {
        if (!namemap_get(&old_by_name, next->services[i].name)) {
            struct service *fresh = service_new(d, &next->services[i]);
            if (fresh && daemon__add(d, fresh) < 0)
                daemon__discard(d, fresh);
        }
    }
    if (strcmp(old->state_dir, next->state_dir) != 0)
        log_event(LOG_WARN, NULL, "state-dir-change-ignored",
                  "running=%s configured=%s why=\"a new state_dir takes effect at a restart\"",
                  d->state.path, next->state_dir);
    daemon__retention(d, next);
    d->cfg = next;
    daemon__limits_warn(d, next);
    daemon__link(d);
    alerter_reconfigure(d->alerter, &next->alerts);
    d->old_cfg_list[d->n_old_cfg++] = old;
    daemon__sweep_configs(d);
    namemap_free(&next_by_name);
    namemap_free(&old_by_name);
    /* New and replacing services start once linked (a replacement waits for
     * its predecessor's process to be gone). */
    if (!d->leftovers_pending)
        daemon__start_services(d);
    log_event(LOG_INFO, NULL, "reloaded", "config=%s services=%zu", d->config_path,
              next->n_services);
}

void daemon_free(struct daemon *d)
{
    for (size_t i = 0; i < d->n_services; i++)
        service_free(d->services[i]);
    free(d->services);
    namemap_free(&d->by_name);
    journal_free(d->journal);
    for (size_t i = 0; i < d->n_old_cfg; i++)
        config_free(d->old_cfg_list[i]);
    free(d->old_cfg_list);
    config_free(d->cfg);
    free(d->config_path);
    statedir_close(&d->state); /* last: the lock outlives every service */
}
