/* The daemon's life: start (state_dir lock, journal, leftovers, services,
 * API), reload on SIGHUP, graceful stop on SIGTERM/SIGINT. */
#include "daemon/daemon.h"

#include <errno.h>
#include <signal.h>
#include <stddef.h>
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
#include "detect/check.h"
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
#include "store/reader.h"

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
/* A reload's and a stop's slices: what they change brings work to the
 * turns after them that their own clock does not see (a new check's first
 * probe, an old one's close, an exit to reap: 50-100 us a service here),
 * so each slice is shorter and changes at most this many services. */
#define DAEMON__STEP_SLICE_NS 1000000
#define DAEMON__STEP_MAX 16
/* A reload's changed checks first probe within this much (or their
 * interval): spread, so that no turn holds many of them. */
#define DAEMON__PROBE_SPREAD_MS 1000

/* First starts queued on the spawner at most (it runs SPAWNER_YIELDING
 * of them at once): past it the slices wait for its reports. Queued, the
 * next spawn starts as the last one ends, not a loop turn after its
 * report: with 2 in flight, a starved loop (3,000 services, 2 cores under
 * load: turns of 50-150 ms) held the start to 4-10 spawns a second. */
#define DAEMON__START_QUEUED 16

/* A reload: loaded and checked in the thread pool, then applied a slice
 * per loop turn (DAEMON__STEP_SLICE_NS each), so that neither the parse of
 * a large file nor the diff of a thousand services holds the loop. */
struct daemon__reload {
    uv_work_t work;              /* the load and the preflight in the thread pool; data = this */
    struct daemon *d;            /* owner */
    struct config *next;         /* loaded; owned until applied */
    struct cfg_err cerr;         /* why the load failed */
    bool deferred;               /* the load needs the loop (a plug-in kind not loaded yet) */
    int result;                  /* the preflight's */
    bool again;                  /* another SIGHUP came meanwhile: reload once more */
    bool applying;               /* the slices run (d->reload_slices) */
    bool new_phase;              /* the slices look at next's services (else at the running ones) */
    size_t cursor;               /* the next index: of d->services, then of next->services */
    size_t n_old;                /* d->services before the reload (kept right as services go) */
    struct namemap next_by_name; /* next's services by name (keys borrowed from next) */
    int map_err;                 /* making next_by_name in the pool failed: -errno */
    uint64_t began_ns;           /* uv_hrtime() at the SIGHUP */
    unsigned slices;             /* the apply's, for the "reloaded" line */
};

static void daemon__reload_abort(struct daemon *d);

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

/* Adopt what a predecessor left, stop the rest, off the loop's back (the
 * host's scan in the pool); 0 or -ENOMEM. */
static int daemon__take_over(struct daemon *d, bool fresh)
{
    struct leftover_sink sink = {daemon__leftover_gone, daemon__leftovers_done, d};
    d->leftovers_pending = true; /* until done: a stop waits for the scan's thread */
    int r = takeover_begin(d, fresh, &sink);
    if (r < 0)
        d->leftovers_pending = false;
    return r;
}

static void daemon__flush_cb(uv_prepare_t *p)
{
    struct daemon *d = p->data;
    uint64_t t = uv_hrtime();
    journal_flush(d->journal);
    loopwatch_flushed(&d->loopwatch, uv_hrtime() - t);
}

static void daemon__journal_wake_cb(uv_async_t *a)
{
    struct daemon *d = a->data;
    journal_flush(d->journal);
}

/* From the journal's checkpointer thread (journal_on_gate_free). */
static void daemon__journal_wake(void *arg)
{
    uv_async_send(arg);
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

/* The shed of start-up's code pages reads /proc/self/smaps, a page walk
 * of every mapping: 10 ms of the loop's CPU in one turn at 1,000 services
 * (measured), so on libuv's pool. Unmapping clean read-only file pages
 * from another thread is safe: the loop faults back in what it runs. */
struct daemon__shed {
    uv_work_t work;
    size_t kib; /* resident KiB unmapped */
};

static void daemon__shed_work(uv_work_t *w)
{
    struct daemon__shed *sh = (struct daemon__shed *)w;
    sh->kib = heap_shed_code();
}

static void daemon__shed_done(uv_work_t *w, int status)
{
    struct daemon__shed *sh = (struct daemon__shed *)w;
    if (status == 0)
        log_event(LOG_DEBUG, NULL, "code-shed", "kib=%zu", sh->kib);
    free(sh);
}

static void daemon__shed_code(struct daemon *d)
{
    struct daemon__shed *sh = calloc(1, sizeof *sh);
    d->code_shed = true;
    if (sh && uv_queue_work(d->loop, &sh->work, daemon__shed_work, daemon__shed_done) < 0)
        free(sh);
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
    /* What a large API answer freed leaves RSS here; not in a stop, whose
     * frees would make it a long turn (a madvise per range) for nothing. */
    if (!d->stopping)
        heap_trim(DAEMON__HEAP_SLACK);
    /* every service made and looked at once (none is made yet at the first tick) */
    if (!d->code_shed && !d->creating && d->start_next >= d->n_services)
        daemon__shed_code(d);
    uvclock_arm(t, daemon__prune_cb, n > 0 ? DAEMON__PRUNE_AGAIN_MS : DAEMON__PRUNE_EVERY_MS);
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
    service_count_starting(s);
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

static void daemon__discard(struct service *s);

/* The start cannot go on (out of memory making a service, leftovers that
 * cannot be handled): stop what exists; recoverd exits 1. */
static void daemon__start_failed(struct daemon *d)
{
    d->failed = true;
    daemon_stop(d);
}

/* Every service exists: link them, adopt or stop what a predecessor left
 * (before any spawn: their ports must be free), and a reload asked for
 * meanwhile runs now. */
static void daemon__created(struct daemon *d)
{
    int r;
    d->creating = false;
    daemon__link(d);
    if ((r = daemon__take_over(d, d->fresh)) < 0) {
        log_event(LOG_ERROR, NULL, "leftovers-failed", "error=\"%s\"", strerror(-r));
        daemon__start_failed(d);
        return;
    }
    if (d->reload_after_create) {
        d->reload_after_create = false;
        daemon_reload(d);
    }
}

/* One slice of the creation: services made in config order until the
 * slice's time is up; the API answers between slices, listing the
 * services made so far. */
static void daemon__create_slice_cb(uv_idle_t *h)
{
    struct daemon *d = h->data;
    uint64_t until = uv_hrtime() + DAEMON__START_SLICE_NS;
    while (d->create_next < d->cfg->n_services) {
        struct service *s = service_new(d, &d->cfg->services[d->create_next]);
        if (!s || daemon__add(d, s) < 0) {
            if (s)
                daemon__discard(s);
            log_event(LOG_ERROR, d->cfg->services[d->create_next].name, "start-failed",
                      "error=\"cannot create the service\"");
            uv_idle_stop(h);
            d->creating = false;
            daemon__start_failed(d);
            return;
        }
        d->create_next++;
        if (uv_hrtime() >= until)
            return;
    }
    uv_idle_stop(h);
    daemon__created(d);
}

/* In a pool thread: only the config is touched, and no service points
 * into it yet (the loop reads none of what the preflight writes). */
static void daemon__preflight_work(uv_work_t *w)
{
    struct daemon *d = w->data;
    d->preflight_result = preflight_run(d->cfg, NULL);
}

/* The preflight is done: the services are made, in slices. */
static void daemon__preflight_done(uv_work_t *w, int status)
{
    struct daemon *d = w->data;
    int r = status < 0 ? status : d->preflight_result;
    if (d->stopping) {
        d->creating = false;
        daemon_stop_progress(d);
        return;
    }
    if (r < 0) {
        log_event(LOG_ERROR, NULL, "preflight-failed", "error=\"%s\"",
                  status < 0 ? uv_strerror(r) : strerror(-r));
        d->creating = false;
        daemon__start_failed(d);
        return;
    }
    daemon__problems(d->cfg);
    uv_idle_start(&d->create_slices, daemon__create_slice_cb);
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
    uv_async_init(loop, &d->journal_wake, daemon__journal_wake_cb);
    d->journal_wake.data = d;
    uv_unref((uv_handle_t *)&d->journal_wake); /* never keeps the loop alive */
    uv_timer_init(loop, &d->prune);
    d->prune.data = d;
    if ((r = loopwatch_init(&d->loopwatch, loop)) < 0) /* before the journal's hook */
        log_event(LOG_WARN, NULL, "loopwatch-failed", "error=\"%s\"", uv_strerror(r));
    uv_idle_init(loop, &d->start_slices);
    d->start_slices.data = d;
    uv_check_init(loop, &d->start_resume);
    d->start_resume.data = d;
    uv_idle_init(loop, &d->create_slices);
    d->create_slices.data = d;
    uv_idle_init(loop, &d->stop_slices);
    d->stop_slices.data = d;
    uv_idle_init(loop, &d->reload_slices);
    d->reload_slices.data = d;
    pace_init(&d->pace, loop, PACE_BUDGET_US, PACE_EXITS);
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
    srcport_use(cfg->src_ports.on, cfg->src_ports.lo, cfg->src_ports.hi);
    if ((r = daemon__containment(d, opts->containment)) < 0)
        return r;
    spawn_init(); /* after every disposition recoverd sets (SIGCHLD too): children get them back */
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
    journal_on_gate_free(d->journal, daemon__journal_wake, &d->journal_wake);
    /* After the writer's open: the schema is migrated, a damaged file
     * already replaced. Without it the API reads on the loop, slower. */
    if (!(d->reader = reader_new(loop, path, 0, err, sizeof err)))
        log_event(LOG_WARN, NULL, "journal-reader-failed",
                  "error=\"%s\" what=\"journal reads run on the loop\"", err);
    /* The first batch at the first loop turn: a recoverd that keeps being
     * killed soon after its start still holds the journal's cap. */
    uvclock_arm(&d->prune, daemon__prune_cb, 0);
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
                                    .strategies = strategy_table,
                                    .pace = &d->pace};
    daemon__apply(d, cfg);
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
    /* The preflight, then the services, once the API answers: the
     * preflight in the pool (NSS may ask a network service; a stat a slow
     * mount), the services made in the loop's first turns (each opens its
     * log and FIFO and reads the journal, 0.1-0.2 ms: 0.2 s at 1,000).
     * Until then /v1/status counts every one as starting. */
    d->fresh = opts->fresh;
    d->creating = true;
    d->preflight.data = d;
    if ((r = uv_queue_work(loop, &d->preflight, daemon__preflight_work, daemon__preflight_done)) <
        0) {
        log_event(LOG_ERROR, NULL, "preflight-failed", "error=\"%s\"", uv_strerror(r));
        return r;
    }
    /* Counted from here: what ran before the loop did is no turn of it. */
    loopwatch_start(&d->loopwatch);
    log_event(LOG_INFO, NULL, "started", "config=%s services=%zu state_dir=%s",
              config_path ? config_path : "<demo>", cfg->n_services, d->state.path);
    return 0; /* the services start once made and the leftovers are gone */
}

/* One slice of the start: services in config order until the slice's
 * time is up; the rest in the next loop turns, so that the API and the
 * first checks are served meanwhile (a spawn costs about a millisecond). */
static void daemon__start_slice_cb(uv_idle_t *h);

/* After a poll, while the start waits for the spawner: the slices go on
 * once it has room (a report woke the loop), unless a stop or a reload's
 * apply stopped them meanwhile (the apply's end starts them again). */
static void daemon__start_resume_cb(uv_check_t *h)
{
    struct daemon *d = h->data;
    const struct spawner *sw = pace_spawner(&d->pace);
    if (d->stopping || (d->reload && d->reload->applying)) {
        uv_check_stop(h);
        return;
    }
    if (sw && sw->in_flight >= DAEMON__START_QUEUED)
        return;
    uv_check_stop(h);
    uv_idle_start(&d->start_slices, daemon__start_slice_cb);
}

static void daemon__start_slice_cb(uv_idle_t *h)
{
    struct daemon *d = h->data;
    uint64_t until = uv_hrtime() + DAEMON__START_SLICE_NS;
    const struct spawner *sw = pace_spawner(&d->pace);
    unsigned made = 0;
    while (!d->stopping && d->start_next < d->n_services && made < DAEMON_START_PER_TURN) {
        if (sw && sw->in_flight >= DAEMON__START_QUEUED) {
            uv_idle_stop(h); /* the loop sleeps in poll until a spawn reports */
            uv_check_start(&d->start_resume, daemon__start_resume_cb);
            return;
        }
        struct service *s = d->services[d->start_next++];
        if (!s->retired && !s->started && !s->replaces) {
            service_start(s);
            made++;
        }
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

size_t daemon_services_uncreated(const struct daemon *d)
{
    return d->creating && !d->stopping ? d->cfg->n_services - d->create_next : 0;
}

size_t daemon_services_starting(const struct daemon *d)
{
    return d->n_starting + daemon_services_uncreated(d);
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
    api_free(d->api);
    d->api = NULL;
    /* After the API: its connections are closing, so the reads still
     * queued are only freed; the thread is joined here. */
    reader_free(d->reader);
    d->reader = d->backend.reader = NULL;
    alerter_free(d->alerter);
    d->alerter = NULL;
    log_event(LOG_INFO, NULL, "stopped",
              "took_ms=%.1f max_stall_ms=%.1f max_turn_cpu_ms=%.1f slices=%u",
              (double)(uv_hrtime() - d->stop_began_ns) / 1e6,
              (double)d->loopwatch.mark_max_ns / 1e6, (double)d->loopwatch.mark_max_cpu_ns / 1e6,
              d->stop_slices_run);
    if (d->monitor_up)
        monitor_close(&d->monitor);
    d->monitor_up = false;
    uv_close((uv_handle_t *)&d->flush, NULL);
    if (d->journal)
        journal_on_gate_free(d->journal, NULL, NULL);
    uv_close((uv_handle_t *)&d->journal_wake, NULL);
    uv_close((uv_handle_t *)&d->prune, NULL);
    uv_close((uv_handle_t *)&d->start_slices, NULL);
    uv_close((uv_handle_t *)&d->start_resume, NULL);
    uv_close((uv_handle_t *)&d->create_slices, NULL);
    uv_close((uv_handle_t *)&d->stop_slices, NULL);
    uv_close((uv_handle_t *)&d->reload_slices, NULL);
    pace_close(&d->pace);
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
}

/* Every service stopped and down. A service the stop's slices passed
 * never starts again, so once down it stays down: the walk goes on from
 * where the last one stopped, linear over the whole stop rather than a
 * walk of every service at each exit (a thousand exits made it a million
 * looks, tens of them per turn). */
static bool daemon__all_down(struct daemon *d)
{
    while (d->down_next < d->stop_next && d->services[d->down_next]->sup.state == SUP_DOWN)
        d->down_next++;
    return d->down_next >= d->n_services;
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

/* One slice of the end: services closed (timers, pipes, their cgroup
 * removed) until the slice's time is up; then the rest of the daemon. */
static void daemon__close_slice_cb(uv_idle_t *h)
{
    struct daemon *d = h->data;
    uint64_t until = uv_hrtime() + DAEMON__STEP_SLICE_NS; /* the closes end next turn */
    while (d->stop_next < d->n_services) {
        struct service *s = d->services[d->stop_next++];
        if (!s->retired)
            service_close(s);
        if (uv_hrtime() >= until)
            return;
    }
    uv_idle_stop(h);
    daemon__close_all(d);
}

void daemon_stop_progress(struct daemon *d)
{
    /* The leftovers' stop, the sweep, a reload's thread and the retired
     * services still closing (an rmdir in the pool: the containment's own
     * rmdir must come after) hold loop handles of their own until they are
     * done; the stop's slices have every service to reach first. */
    if (d->stopping && !d->closing && !uv_is_active((uv_handle_t *)&d->stop_slices) && !d->reload &&
        !d->leftovers_pending && !d->sweeping && !d->leaving && daemon__all_down(d) &&
        !daemon__sweep(d)) {
        d->closing = true;
        d->stop_next = 0;
        uv_idle_start(&d->stop_slices, daemon__close_slice_cb);
    }
}

/* One slice of the stop: services in config order until the slice's time
 * is up (a stop signals, journals, may write cgroup files) or it stopped
 * DAEMON__STEP_MAX running ones: their exits tend to come back in one
 * turn; what of them is past the turn's budget waits for the next turns
 * (recover/pace.h), and fewer signals per turn keep that queue short. */
static void daemon__stop_slice_cb(uv_idle_t *h)
{
    struct daemon *d = h->data;
    uint64_t until = uv_hrtime() + DAEMON__STEP_SLICE_NS;
    size_t running = 0;
    d->stop_slices_run++;
    /* Every service's checks first: their results would change nothing
     * now, and at a thousand the probes still due made the stop's longest
     * turns (the checks' grid keeps ten or more together). */
    while (d->quiet_next < d->n_services) {
        check_set_stop(&d->services[d->quiet_next++]->checks);
        if (uv_hrtime() >= until)
            return;
    }
    while (d->stop_next < d->n_services) {
        struct service *s = d->services[d->stop_next++];
        running += s->sup.state != SUP_DOWN;
        if (d->detaching)
            service_detach(s);
        else
            service_stop(s, "aborted: recoverd stopping");
        if (uv_hrtime() >= until || running >= DAEMON__STEP_MAX)
            break;
    }
    if (d->stop_next >= d->n_services) {
        uv_idle_stop(h);
        daemon_stop_progress(d);
    }
}

/* Stop (or detach) every service, a slice per loop turn. */
static void daemon__stop_services(struct daemon *d)
{
    d->stopping = true;
    d->executor.stopping = true;
    d->stop_began_ns = uv_hrtime();
    loopwatch_mark(&d->loopwatch);
    uv_idle_stop(&d->start_slices);
    uv_idle_stop(&d->create_slices);
    d->stop_next = d->quiet_next = d->down_next = 0;
    uv_idle_start(&d->stop_slices, daemon__stop_slice_cb);
    daemon__reload_abort(d);
    daemon_stop_progress(d);
}

void daemon_stop(struct daemon *d)
{
    if (d->stopping)
        return;
    log_event(LOG_INFO, NULL, "stopping", "services=%zu", d->n_services);
    daemon__stop_services(d);
}

void daemon_detach(struct daemon *d)
{
    if (d->stopping)
        return;
    d->detaching = true;
    log_event(LOG_INFO, NULL, "detaching", "services=%zu", d->n_services);
    daemon__stop_services(d);
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
    for (const struct service *s = d->leaving; s; s = s->leaving_next)
        if ((uintptr_t)s->cfg >= lo && (uintptr_t)s->cfg < hi)
            return true;
    return false;
}

/* A config nothing points into, freed in the thread pool. */
struct daemon__cfg_free {
    uv_work_t work; /* data = this */
    struct config *cfg;
};

static void daemon__cfg_free_work(uv_work_t *w)
{
    struct daemon__cfg_free *f = w->data;
    config_free(f->cfg);
    f->cfg = NULL;
}

static void daemon__cfg_free_done(uv_work_t *w, int status)
{
    struct daemon__cfg_free *f = w->data;
    config_free(f->cfg); /* cancelled: not freed yet */
    free(f);
}

/* Freeing a thousand services' config is a turn's worth of free() calls
 * (1-3 ms here): the pool does it; the loop if it cannot. */
static void daemon__cfg_release(struct daemon *d, struct config *c)
{
    struct daemon__cfg_free *f = malloc(sizeof *f);
    if (f) {
        *f = (struct daemon__cfg_free){.work.data = f, .cfg = c};
        if (uv_queue_work(d->loop, &f->work, daemon__cfg_free_work, daemon__cfg_free_done) == 0)
            return;
        free(f);
    }
    config_free(c);
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
            daemon__cfg_release(d, d->old_cfg_list[i]);
    }
    d->n_old_cfg = k;
}

/* s leaves d->services; the walks under way (the start's, the stop's and
 * a reload's slices) keep their places on the same services. */
static void daemon__unlist(struct daemon *d, struct service *s)
{
    for (size_t i = 0; i < d->n_services; i++)
        if (d->services[i] == s) {
            memmove(d->services + i, d->services + i + 1,
                    (d->n_services - i - 1) * sizeof *d->services);
            d->n_services--;
            d->start_next -= i < d->start_next;
            d->stop_next -= i < d->stop_next;
            d->quiet_next -= i < d->quiet_next;
            d->down_next -= i < d->down_next;
            if (d->reload && d->reload->applying && !d->reload->new_phase) {
                d->reload->cursor -= i < d->reload->cursor;
                d->reload->n_old -= i < d->reload->n_old;
            }
            return;
        }
}

/* Drop t from v (n entries), keeping the order. */
static void daemon__drop_service(struct service **v, size_t *n, const struct service *t)
{
    for (size_t k = 0; k < *n; k++)
        if (v[k] == t) {
            memmove(v + k, v + k + 1, (--*n - k) * sizeof *v);
            return;
        }
}

static void daemon__drop_faults(struct faults **v, size_t *n, const struct faults *f)
{
    for (size_t k = 0; k < *n; k++)
        if (v[k] == f) {
            memmove(v + k, v + k + 1, (--*n - k) * sizeof *v);
            return;
        }
}

/* s leaves the dependency links as daemon__link would leave it: a
 * dependency that is gone counts as ready (daemon_dependencies_ready), and
 * no live service's analysis looks at its faults any more. Through the
 * links themselves (daemon__link makes both sides of each or neither):
 * O(its links), not a walk of every service at each retirement. */
static void daemon__unlink(struct service *s)
{
    for (size_t i = 0; i < s->n_dependents; i++) {
        struct service *t = s->dependents[i];
        if (!s->ready_told && t->deps_waiting)
            t->deps_waiting--;
        daemon__drop_faults(t->faults.deps, &t->faults.n_deps, &s->faults);
    }
    for (size_t i = 0; i < s->faults.n_deps; i++) {
        struct service *u = (struct service *)((char *)s->faults.deps[i] -
                                               offsetof(struct service, faults));
        daemon__drop_service(u->dependents, &u->n_dependents, s);
    }
    free(s->dependents);
    s->dependents = NULL;
    s->n_dependents = 0;
    free(s->faults.deps);
    s->faults.deps = NULL;
    s->faults.n_deps = 0;
}

void daemon_service_closing(struct daemon *d, struct service *s)
{
    /* A replacement that never ran: nothing waits for its predecessor now
     * (a successor of its own waits for that predecessor: daemon__replace). */
    if (s->replaces && s->replaces->replaced_by == s)
        s->replaces->replaced_by = NULL;
    s->replaces = NULL;
    daemon__unmap(d, s);
    daemon__unlist(d, s);
    daemon__unlink(s);
    s->leaving_prev = NULL;
    s->leaving_next = d->leaving;
    if (d->leaving)
        d->leaving->leaving_prev = s;
    d->leaving = s;
}

void daemon_service_gone(struct daemon *d, struct service *s)
{
    if (s->leaving_prev)
        s->leaving_prev->leaving_next = s->leaving_next;
    else
        d->leaving = s->leaving_next;
    if (s->leaving_next)
        s->leaving_next->leaving_prev = s->leaving_prev;
    /* A replacement waiting for this one's process to be gone starts now. */
    struct service *t = s->replaced_by;
    if (t) {
        t->replaces = NULL;
        /* Mid-reload it is not linked yet: the apply's end starts it. */
        if (!d->stopping && !(d->reload && d->reload->applying))
            service_start(t);
    }
    service_free(s);
    /* Once no retired service is closing: each sweep walks every service
     * for each replaced config, and a reload that replaced a hundred made
     * a hundred walks. What runs retired keeps its config until it too is
     * gone, and so is swept then. */
    if (!d->leaving)
        daemon__sweep_configs(d);
    daemon_stop_progress(d);
}

/* A service made but not kept (out of memory): it owns loop handles, so it
 * is closed and freed from its last close callback, never right away. */
static void daemon__discard(struct service *s)
{
    s->retired = true;
    service_count_starting(s);
    service_close(s);
}

/* Retire s: stop its process for good; it is freed once everything closed. */
static void daemon__retire(struct daemon *d, struct service *s, const char *why)
{
    log_event(LOG_INFO, s->name, "retired", "why=\"%s\"", why);
    service_stop(s, why);
    s->retired = true;
    service_count_starting(s);
    daemon__unmap(d, s);
    state_unregister(&s->st);
    if (s->sup.state == SUP_DOWN)
        service_close(s);
    /* else: its exit closes it (service.c) */
}

/* When a service reconfigured by a reload probes first: at a phase of its
 * own (from its name) within its shortest interval or the spread, whichever
 * is shorter. Started at once, the checks of a slice would probe together
 * from then on (the checks' grid keeps their phases): a thousand changed
 * checks made turns of 20-60 probes each, several ms. */
static uint64_t daemon__first_probe_ms(const struct daemon *d, const struct service_cfg *nc)
{
    uint64_t span = DAEMON__PROBE_SPREAD_MS;
    for (size_t i = 0; i < nc->n_checks; i++)
        if (nc->checks[i].interval_ms < span)
            span = nc->checks[i].interval_ms;
    if (span == 0)
        return 0;
    uint64_t phase = namemap_hash(nc->name) % span;
    return (phase + span - uv_now(d->loop) % span) % span;
}

/* fresh takes s's place once s's process and log are gone: the back link
 * finds it then without a walk. If s never ran, itself waiting for an
 * older instance (a second reload before the first one's process is
 * gone), fresh waits for that older one instead, whose port and log s
 * never had. */
static void daemon__replace(struct service *fresh, struct service *s)
{
    struct service *old = s->replaces ? s->replaces : s;
    s->replaces = NULL;
    fresh->replaces = old;
    old->replaced_by = fresh;
}

/* One service of the running config against its version in next (next's
 * services by name: next_by_name); whether it changed (else only rebound). */
static bool daemon__reload_one(struct daemon *d, struct service *s,
                               const struct namemap *next_by_name)
{
    const struct service_cfg *nc = namemap_get(next_by_name, s->name);
    if (!nc) {
        daemon__retire(d, s, "removed from the configuration");
        return true;
    }
    if (config_service_equal(s->cfg, nc)) {
        service_rebind(s, nc);
        return false;
    }
    const char *why = "its process changed";
    if (config_process_equal(s->cfg, nc) &&
        service_reconfigure(s, nc, daemon__first_probe_ms(d, nc), &why) == 0) {
        log_event(LOG_INFO, s->name, "reconfigured", "pid=%d checks=%zu process=kept",
                  (int)s->sup.pid, s->checks.n);
        return true;
    }
    char reason[128];
    snprintf(reason, sizeof reason, "configuration changed: %s", why);
    struct service *fresh = service_new(d, nc);
    bool held = s->rec.held;
    if (fresh) /* before the retirement, which may close s at once */
        daemon__replace(fresh, s);
    daemon__retire(d, s, reason);
    if (fresh && daemon__add(d, fresh) == 0)
        fresh->rec.held = held; /* an operator's hold outlives a reload */
    else if (fresh)
        daemon__discard(fresh);
    return true;
}

/* In a thread-pool thread: only rl is touched (and what config_load and
 * the preflight read, which the loop does not write meanwhile). */
static void daemon__reload_work(uv_work_t *w)
{
    struct daemon__reload *rl = w->data;
    if (!rl->next) {
        rl->next = daemon_config_load_off_loop(rl->d->config_path, &rl->cerr, &rl->deferred);
        if (!rl->next)
            return;
    }
    rl->result = preflight_run(rl->next, NULL);
    (void)ports_review_host(rl->next); /* out of memory loses warnings, never the reload */
    /* A new service's files made here: their inodes cost the loop's slices
     * milliseconds at times (a tenth replaced at 1,000: 10-30 ms of turns
     * in open and mknod). What exists is left alone. */
    if (rl->result >= 0)
        for (size_t i = 0; i < rl->next->n_services; i++)
            service_prepare_files(rl->d->state.path, &rl->next->services[i]);
    /* By name, so that the diff is linear in the services; made here, as
     * a thousand inserts (and the table's growth) are a turn's worth. */
    namemap_clear(&rl->next_by_name);
    rl->map_err = 0;
    for (size_t i = 0; rl->map_err == 0 && i < rl->next->n_services; i++)
        rl->map_err = namemap_put(&rl->next_by_name, rl->next->services[i].name,
                                  &rl->next->services[i]);
}

/* The reload is over (applied, rejected or dropped by a stop). */
static void daemon__reload_end(struct daemon *d, struct daemon__reload *rl)
{
    bool again = rl->again;
    d->reload = NULL;
    if (!d->stopping)
        loopwatch_unmark(&d->loopwatch);
    namemap_free(&rl->next_by_name);
    if (rl->next) /* NULL once applied */
        daemon__cfg_release(d, rl->next);
    free(rl);
    if (again && !d->stopping)
        daemon_reload(d);
    daemon_stop_progress(d); /* a stop may have waited for the thread */
}

static void daemon__reload_rejected(struct daemon *d, struct daemon__reload *rl, const char *why)
{
    log_event(LOG_ERROR, NULL, "reload-rejected", "error=\"%s\" running=unchanged", why);
    daemon__reload_end(d, rl);
}

static void daemon__reload_begin_apply(struct daemon *d, struct daemon__reload *rl);

static void daemon__reload_done(uv_work_t *w, int status)
{
    struct daemon__reload *rl = w->data;
    struct daemon *d = rl->d;
    char msg[1200];
    if (d->stopping || status < 0) {
        daemon__reload_end(d, rl);
        return;
    }
    if (!rl->next && rl->deferred) {
        /* A plug-in kind to load first: that load runs here, on the loop
         * (a plug-in starts on it), and the preflight again in the pool. */
        rl->deferred = false;
        rl->next = config_load(d->config_path, &daemon_registry, &rl->cerr);
        if (rl->next &&
            uv_queue_work(d->loop, &rl->work, daemon__reload_work, daemon__reload_done) == 0)
            return;
    }
    if (!rl->next) {
        daemon__reload_rejected(d, rl, cfg_err_format(&rl->cerr, msg, sizeof msg));
        return;
    }
    if (rl->result < 0) {
        snprintf(msg, sizeof msg, "preflight: %s", strerror(-rl->result));
        daemon__reload_rejected(d, rl, msg);
        return;
    }
    daemon__reload_begin_apply(d, rl);
}

int daemon_reload(struct daemon *d)
{
    if (d->creating) {
        d->reload_after_create = true; /* the diff needs every service made */
        return 0;
    }
    if (d->reload) {
        d->reload->again = true; /* the file may have changed after that load */
        return 0;
    }
    if (!d->config_path) {
        log_event(LOG_ERROR, NULL, "reload-rejected",
                  "error=\"the bundled demo cannot be reloaded\" running=unchanged");
        return -EINVAL;
    }
    struct daemon__reload *rl = calloc(1, sizeof *rl);
    int r = rl ? 0 : -ENOMEM;
    if (rl) {
        rl->d = d;
        rl->began_ns = uv_hrtime();
        rl->work.data = rl;
        r = uv_queue_work(d->loop, &rl->work, daemon__reload_work, daemon__reload_done);
    }
    if (r < 0) {
        free(rl);
        log_event(LOG_ERROR, NULL, "reload-rejected", "error=\"%s\" running=unchanged",
                  uv_strerror(r));
        return r;
    }
    loopwatch_mark(&d->loopwatch);
    d->reload = rl;
    return 0;
}

static void daemon__reload_slice_cb(uv_idle_t *h);

/* The new configuration is loaded and checked: it replaces the running
 * one, service by service, in the slices that follow. */
static void daemon__reload_begin_apply(struct daemon *d, struct daemon__reload *rl)
{
    struct config *next = rl->next;
    /* Room for a config in the list first (the old one, or next if a stop
     * cuts the apply short): past this point nothing may fail. */
    struct config **list = realloc(d->old_cfg_list, (d->n_old_cfg + 1) * sizeof *list);
    if (list)
        d->old_cfg_list = list;
    int r = list ? rl->map_err : -ENOMEM;
    if (r < 0) {
        daemon__reload_rejected(d, rl, strerror(-r));
        return;
    }
    daemon__warnings(next);
    srcport_use(next->src_ports.on, next->src_ports.lo, next->src_ports.hi);
    daemon__problems(next);
    /* The analyzer reads rules from the running config: the new one first. */
    daemon__apply(d, next);
    /* Nothing starts before the new services are linked to their
     * dependencies: the start's slices resume once the apply is done. */
    uv_idle_stop(&d->start_slices);
    rl->applying = true;
    rl->n_old = d->n_services;
    uv_idle_start(&d->reload_slices, daemon__reload_slice_cb);
}

/* The last slice: what is linear in the services but cheap, at once. */
static void daemon__reload_finish(struct daemon *d, struct daemon__reload *rl)
{
    struct config *old = d->cfg, *next = rl->next;
    if (strcmp(old->state_dir, next->state_dir) != 0)
        log_event(LOG_WARN, NULL, "state-dir-change-ignored",
                  "running=%s configured=%s why=\"a new state_dir takes effect at a restart\"",
                  d->state.path, next->state_dir);
    daemon__retention(d, next);
    d->cfg = next;
    rl->next = NULL;
    daemon__limits_warn(d, next);
    daemon__link(d);
    alerter_reconfigure(d->alerter, &next->alerts);
    d->old_cfg_list[d->n_old_cfg++] = old;
    daemon__sweep_configs(d);
    /* New and replacing services start once linked (a replacement waits for
     * its predecessor's process to be gone). */
    if (!d->leftovers_pending)
        daemon__start_services(d);
    log_event(LOG_INFO, NULL, "reloaded",
              "config=%s services=%zu took_ms=%.1f max_stall_ms=%.1f max_turn_cpu_ms=%.1f "
              "slices=%u",
              d->config_path, next->n_services, (double)(uv_hrtime() - rl->began_ns) / 1e6,
              (double)d->loopwatch.mark_max_ns / 1e6, (double)d->loopwatch.mark_max_cpu_ns / 1e6,
              rl->slices);
    daemon__reload_end(d, rl);
}

/* One slice of the apply: the running services against next, then next's
 * services that are new, until the slice's time is up. */
static void daemon__reload_slice_cb(uv_idle_t *h)
{
    struct daemon *d = h->data;
    struct daemon__reload *rl = d->reload;
    uint64_t until = uv_hrtime() + DAEMON__STEP_SLICE_NS;
    size_t changed = 0;
    rl->slices++;
    while (!rl->new_phase && rl->cursor < rl->n_old) {
        struct service *s = d->services[rl->cursor++];
        if (!s->retired && daemon__reload_one(d, s, &rl->next_by_name))
            changed++;
        if (uv_hrtime() >= until || changed >= DAEMON__STEP_MAX)
            return;
    }
    if (!rl->new_phase) {
        rl->new_phase = true;
        rl->cursor = 0;
    }
    const struct config *next = rl->next;
    while (rl->cursor < next->n_services) {
        const struct service_cfg *nc = &next->services[rl->cursor++];
        /* Mapped: it ran before (kept, reconfigured or replaced above). */
        if (!namemap_get(&d->by_name, nc->name)) {
            struct service *fresh = service_new(d, nc);
            if (fresh && daemon__add(d, fresh) < 0)
                daemon__discard(fresh);
            changed++;
        }
        if (uv_hrtime() >= until || changed >= DAEMON__STEP_MAX)
            return;
    }
    uv_idle_stop(h);
    daemon__reload_finish(d, rl);
}

/* A stop cuts the apply short: the running config stays, next is kept
 * while services point into it (swept like a replaced config). */
static void daemon__reload_abort(struct daemon *d)
{
    struct daemon__reload *rl = d->reload;
    if (!rl || !rl->applying)
        return; /* in the pool: its done callback drops it */
    uv_idle_stop(&d->reload_slices);
    daemon__apply(d, d->cfg);
    d->old_cfg_list[d->n_old_cfg++] = rl->next; /* room made at the apply's start */
    rl->next = NULL;
    log_event(LOG_WARN, NULL, "reload-aborted", "why=\"recoverd stopping\"");
    daemon__reload_end(d, rl);
}

void daemon_free(struct daemon *d)
{
    for (size_t i = 0; i < d->n_services; i++)
        service_free(d->services[i]);
    free(d->services);
    while (d->leaving) { /* none once the loop ran to its end */
        struct service *s = d->leaving;
        d->leaving = s->leaving_next;
        service_free(s);
    }
    namemap_free(&d->by_name);
    journal_free(d->journal);
    for (size_t i = 0; i < d->n_old_cfg; i++)
        config_free(d->old_cfg_list[i]);
    free(d->old_cfg_list);
    config_free(d->cfg);
    free(d->config_path);
    statedir_close(&d->state); /* last: the lock outlives every service */
}
