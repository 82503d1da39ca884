/* The daemon's life: start (journal, leftovers, services, API), reload on
 * SIGHUP, graceful stop on SIGTERM/SIGINT. */
#include "daemon/daemon.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "config/config.h"
#include "daemon/service.h"
#include "detect/detector.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/spawn.h"
#include "lib/token.h"
#include "lib/uvclock.h"
#include "monitor/alert.h"
#include "recover/leftover.h"
#include "recover/strategy.h"
#include "recover/supervisor.h"
#include "store/journal.h"

/* Processes started by recoverd and not yet verified, across services. */
#define DAEMON__MAX_STARTING 64

static int daemon__mkdirs(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return -ENAMETOOLONG;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0750) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(buf, 0750) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* What a killed predecessor left running, gathered from the journal. */
struct daemon__leftovers {
    struct leftover *v;
    size_t n;
};

static void daemon__leftover_add(const char *service, pid_t pid, uint64_t ticks, void *arg)
{
    struct daemon *d = arg;
    struct daemon__leftovers *l = d->leftovers;
    const struct service_cfg *sc = config_service(d->cfg, service);
    struct leftover *v = realloc(l->v, (l->n + 1) * sizeof *v);
    char *name = strdup(service);
    if (!v || !name) {
        free(name);
        if (v)
            l->v = v;
        return; /* out of memory: that one is not stopped, and it is logged below */
    }
    l->v = v;
    l->v[l->n++] = (struct leftover){.service = name,
                                     .pid = pid,
                                     .start_ticks = ticks,
                                     .signal = sc ? sc->stop.signal : SIGTERM,
                                     .grace_ms = sc ? sc->stop.grace_ms : 5000};
}

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

/* Stop them all together, off the loop's back; 0 or -ENOMEM. */
static int daemon__stop_leftovers(struct daemon *d)
{
    struct daemon__leftovers l = {0};
    d->leftovers = &l;
    journal_children(d->journal, daemon__leftover_add, d);
    d->leftovers = NULL;
    struct leftover_sink sink = {daemon__leftover_gone, daemon__leftovers_done, d};
    int r = leftover_stop_all(d->loop, l.v, l.n, &sink);
    for (size_t i = 0; i < l.n; i++)
        free((char *)l.v[i].service);
    free(l.v);
    if (r == 0)
        d->leftovers_pending = true;
    return r;
}

static void daemon__flush_cb(uv_prepare_t *p)
{
    struct daemon *d = p->data;
    journal_flush(d->journal);
}

static void daemon__signal_cb(uv_signal_t *h, int signum)
{
    struct daemon *d = h->data;
    if (signum == SIGHUP) {
        daemon_reload(d);
        return;
    }
    log_event(LOG_INFO, NULL, "signal", "signal=%s action=stop", sigabbrev_np(signum));
    daemon_stop(d);
}

static int daemon__add(struct daemon *d, struct service *s)
{
    struct service **v = realloc(d->services, (d->n_services + 1) * sizeof *v);
    if (!v)
        return -ENOMEM;
    d->services = v;
    d->services[d->n_services++] = s;
    return 0;
}

/* Dependencies as pointers, after a start or a reload: each live service's
 * faults see its dependencies' faults, each knows its dependents. */
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

static void daemon__apply(struct daemon *d, const struct config *cfg)
{
    d->analysis.cfg = cfg;
    d->executor.max_executing = cfg->max_concurrent;
    d->executor.action_timeout_ms = cfg->action_timeout_ms;
    d->monitor.quiet_ms = cfg->quiet_ms;
}

int daemon_start(struct daemon *d, uv_loop_t *loop, struct config *cfg, const char *config_path)
{
    char err[512], path[4096];
    int r;
    memset(d, 0, sizeof *d);
    d->loop = loop;
    d->clock = uvclock_src(loop);
    d->cfg = cfg;
    d->config_path = config_path ? strdup(config_path) : NULL;
    d->started_ms = clock_wall_ms();
    /* The loop's own handles first: whatever fails below, daemon_stop can
     * close them and the loop ends cleanly. */
    uv_prepare_init(loop, &d->flush);
    d->flush.data = d;
    uv_signal_t *sigs[] = {&d->sig_term, &d->sig_int, &d->sig_hup};
    int signums[] = {SIGTERM, SIGINT, SIGHUP};
    for (int i = 0; i < 3; i++) {
        uv_signal_init(loop, sigs[i]);
        sigs[i]->data = d;
        uv_signal_start(sigs[i], daemon__signal_cb, signums[i]);
    }
    signal(SIGPIPE, SIG_IGN);
    spawn_init(); /* after every disposition recoverd sets: its children get them back */
    daemon__warnings(cfg);
    snprintf(path, sizeof path, "%s/logs", cfg->state_dir);
    if ((r = daemon__mkdirs(path)) < 0) {
        log_event(LOG_ERROR, NULL, "state-dir-failed", "path=%s error=\"%s\"", path, strerror(-r));
        return r;
    }
    if ((r = token_load(cfg->state_dir, d->token)) < 0) {
        log_event(LOG_ERROR, NULL, "token-failed", "path=%s/token error=\"%s\"", cfg->state_dir,
                  strerror(-r));
        return r;
    }
    snprintf(path, sizeof path, "%s/journal.db", cfg->state_dir);
    if (!(d->journal = journal_open(path, err, sizeof err))) {
        log_event(LOG_ERROR, NULL, "journal-failed", "path=%s error=\"%s\"", path, err);
        return -EIO;
    }
    if ((r = monitor_init(&d->monitor, loop, d->journal, cfg->quiet_ms)) < 0)
        return r;
    d->monitor_up = true;
    int aborted = journal_actions_abort_unfinished(d->journal, "aborted: recoverd restarted",
                                                   clock_wall_ms());
    if (aborted > 0)
        log_event(LOG_WARN, NULL, "actions-aborted", "count=%d why=\"recoverd restarted\"",
                  aborted);
    /* Before any spawn: a killed predecessor may have left services running. */
    if ((r = daemon__stop_leftovers(d)) < 0) {
        log_event(LOG_ERROR, NULL, "leftovers-failed", "error=\"%s\"", strerror(-r));
        return r;
    }
    journal_set_batching(d->journal, true);
    uv_prepare_start(&d->flush, daemon__flush_cb);
    if ((r = detector_init_all(loop)) < 0) {
        log_event(LOG_ERROR, NULL, "detector-init-failed", "error=\"%s\"", strerror(-r));
        return r;
    }
    d->detectors_up = true;
    if (!(d->alerter = alerter_new(loop, &cfg->alerts)))
        return -ENOMEM;
    d->analysis =
        (struct analysis){.journal = d->journal, .alerter = d->alerter, .clock = &d->clock};
    d->executor = (struct executor){.journal = d->journal,
                                    .alerter = d->alerter,
                                    .strategies = strategy_table,
                                    .max_starting = DAEMON__MAX_STARTING};
    daemon__apply(d, cfg);
    if ((r = daemon__create_services(d)) < 0) {
        log_event(LOG_ERROR, NULL, "start-failed", "error=\"cannot create services\"");
        return r;
    }
    daemon_backend_init(d);
    d->api = api_new(loop, &d->backend, &cfg->api, err, sizeof err);
    if (!d->api) {
        log_event(LOG_ERROR, NULL, "api-failed", "error=\"%s\"", err);
        return -EADDRINUSE;
    }
    log_event(LOG_INFO, NULL, "started", "config=%s services=%zu state_dir=%s",
              config_path ? config_path : "<demo>", d->n_services, cfg->state_dir);
    return 0; /* the services start once the leftovers are gone */
}

/* Dependencies first: a service whose dependencies are not ready yet
 * starts when the last of them verified (daemon_service_ready). */
static void daemon__start_services(struct daemon *d)
{
    for (size_t i = 0; i < d->n_services; i++)
        if (!d->services[i]->retired && !d->services[i]->started && !d->services[i]->replaces)
            service_start(d->services[i]);
}

bool daemon_dependencies_ready(struct daemon *d, const struct service *s)
{
    for (char **dep = s->cfg->depends_on; dep && *dep; dep++) {
        const struct service *t = daemon_service(d, *dep);
        if (t && !t->rec.ready)
            return false;
    }
    return true;
}

void daemon_service_ready(struct daemon *d, struct service *s)
{
    for (size_t i = 0; i < s->n_dependents; i++) {
        struct service *t = s->dependents[i];
        if (t->start_waiting && !t->retired && !d->stopping && daemon_dependencies_ready(d, t)) {
            log_event(LOG_INFO, t->name, "dependencies-ready", "last=%s", s->name);
            service_start(t);
        }
    }
}

struct service *daemon_service(struct daemon *d, const char *name)
{
    for (size_t i = 0; i < d->n_services; i++)
        if (!d->services[i]->retired && strcmp(d->services[i]->name, name) == 0)
            return d->services[i];
    return NULL;
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
    uv_close((uv_handle_t *)&d->sig_term, NULL);
    uv_close((uv_handle_t *)&d->sig_int, NULL);
    uv_close((uv_handle_t *)&d->sig_hup, NULL);
    if (d->detectors_up)
        detector_shutdown_all();
    d->detectors_up = false;
    log_event(LOG_INFO, NULL, "stopped", NULL);
}

static bool daemon__all_down(const struct daemon *d)
{
    for (size_t i = 0; i < d->n_services; i++)
        if (d->services[i]->sup.state != SUP_DOWN)
            return false;
    return true;
}

void daemon_stop_progress(struct daemon *d)
{
    /* The leftovers' stop holds loop handles of its own until it is done. */
    if (d->stopping && daemon__all_down(d) && !d->closed && !d->leftovers_pending)
        daemon__close_all(d);
}

void daemon_stop(struct daemon *d)
{
    if (d->stopping)
        return;
    d->stopping = true;
    d->executor.stopping = true;
    log_event(LOG_INFO, NULL, "stopping", "services=%zu", d->n_services);
    for (size_t i = 0; i < d->n_services; i++)
        service_stop(d->services[i], "aborted: recoverd stopping");
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
    for (size_t i = 0; i < d->n_services; i++)
        if (d->services[i] == s) {
            memmove(d->services + i, d->services + i + 1,
                    (d->n_services - i - 1) * sizeof *d->services);
            d->n_services--;
            break;
        }
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
static void daemon__discard(struct service *s)
{
    s->retired = true;
    service_close(s);
}

/* Retire s: stop its process for good; it is freed once everything closed. */
static void daemon__retire(struct daemon *d, struct service *s, const char *why)
{
    log_event(LOG_INFO, s->name, "retired", "why=\"%s\"", why);
    service_stop(s, why);
    s->retired = true;
    state_unregister(&s->st);
    if (s->sup.state == SUP_DOWN)
        service_close(s);
    /* else: its exit closes it (service.c) */
    (void)d;
}

/* One service of the running config against its version in next. */
static void daemon__reload_one(struct daemon *d, struct service *s, const struct config *next)
{
    const struct service_cfg *nc = config_service(next, s->name);
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
        daemon__discard(fresh);
    }
}

int daemon_reload(struct daemon *d)
{
    struct cfg_err cerr;
    char msg[1024];
    struct config *next = NULL;
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
    /* Room for the old config first: past this point nothing may fail. */
    struct config **list = realloc(d->old_cfg_list, (d->n_old_cfg + 1) * sizeof *list);
    if (!list) {
        config_free(next);
        log_event(LOG_ERROR, NULL, "reload-rejected", "error=\"%s\" running=unchanged",
                  strerror(ENOMEM));
        return -ENOMEM;
    }
    d->old_cfg_list = list;
    daemon__warnings(next);
    struct config *old = d->cfg;
    size_t n_old = d->n_services;
    /* The analyzer reads rules from the running config: the new one first. */
    daemon__apply(d, next);
    for (size_t i = 0; i < n_old; i++)
        if (!d->services[i]->retired)
            daemon__reload_one(d, d->services[i], next);
    for (size_t i = 0; i < next->n_services; i++) {
        bool known = false;
        for (size_t k = 0; k < n_old; k++)
            known |= strcmp(d->services[k]->name, next->services[i].name) == 0;
        if (!known) {
            struct service *fresh = service_new(d, &next->services[i]);
            if (fresh && daemon__add(d, fresh) < 0)
                daemon__discard(fresh);
        }
    }
    d->cfg = next;
    daemon__link(d);
    alerter_reconfigure(d->alerter, &next->alerts);
    d->old_cfg_list[d->n_old_cfg++] = old;
    daemon__sweep_configs(d);
    /* New and replacing services start once linked (a replacement waits for
     * its predecessor's process to be gone). */
    if (!d->leftovers_pending)
        daemon__start_services(d);
    log_event(LOG_INFO, NULL, "reloaded", "config=%s services=%zu", d->config_path,
              next->n_services);
    return 0;
}

void daemon_free(struct daemon *d)
{
    for (size_t i = 0; i < d->n_services; i++)
        service_free(d->services[i]);
    free(d->services);
    journal_free(d->journal);
    for (size_t i = 0; i < d->n_old_cfg; i++)
        config_free(d->old_cfg_list[i]);
    free(d->old_cfg_list);
    config_free(d->cfg);
    free(d->config_path);
}
