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

#include "api/api.h"
#include "lib/clock.h"
#include "config/config.h"
#include "lib/log.h"
#include "daemon/service.h"
#include "lib/token.h"
#include "detect/detector.h"
#include "monitor/alert.h"
#include "recover/executor.h"
#include "monitor/state.h"
#include "recover/process.h"
#include "store/journal.h"

static int daemon__mkdirs(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
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

static void daemon__leftover(const char *service, pid_t pid, uint64_t ticks, void *arg)
{
    struct daemon *d = arg;
    const struct service_cfg *sc = config_service(d->cfg, service);
    uint64_t grace = sc ? sc->stop.grace_ms : 5000;
    if (process_reap_leftover(pid, ticks, grace))
        log_event(LOG_WARN, service, "leftover-stopped",
                  "pid=%d why=\"left running by a previous recoverd\"", (int)pid);
    journal_child_clear(d->journal, service);
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

static int daemon__create_services(struct daemon *d)
{
    for (size_t i = 0; i < d->cfg->n_services; i++) {
        struct service *s = service_new(d, &d->cfg->services[i]);
        if (!s || daemon__add(d, s) < 0)
            return -ENOMEM;
    }
    return 0;
}

int daemon_start(struct daemon *d, uv_loop_t *loop, struct config *cfg, const char *config_path)
{
    char err[512], path[4096];
    int r;
    memset(d, 0, sizeof *d);
    d->loop = loop;
    d->cfg = cfg;
    d->config_path = config_path ? strdup(config_path) : NULL;
    d->started_ms = d->state_ms = clock_wall_ms();
    d->state = STATE_NORMAL;
    /* The loop's own handles first: whatever fails below, daemon_stop can
     * close them and the loop ends cleanly. */
    uv_timer_init(loop, &d->quiet_timer);
    d->quiet_timer.data = d;
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
    int aborted = journal_actions_abort_unfinished(d->journal, "aborted: recoverd restarted",
                                                   clock_wall_ms());
    if (aborted > 0)
        log_event(LOG_WARN, NULL, "actions-aborted", "count=%d why=\"recoverd restarted\"", aborted);
    /* Before any spawn: a killed predecessor may have left services running. */
    journal_children(d->journal, daemon__leftover, d);
    journal_set_batching(d->journal, true);
    uv_prepare_start(&d->flush, daemon__flush_cb);
    if ((r = detector_init_all(loop)) < 0) {
        log_event(LOG_ERROR, NULL, "detector-init-failed", "error=\"%s\"", strerror(-r));
        return r;
    }
    d->detectors_up = true;
    if (!(d->alerter = alerter_new(loop, &cfg->alerts)))
        return -ENOMEM;
    if ((r = daemon__create_services(d)) < 0) {
        log_event(LOG_ERROR, NULL, "start-failed", "error=\"cannot create services\"");
        return r;
    }
    d->api = api_new(loop, d, &cfg->api, err, sizeof err);
    if (!d->api) {
        log_event(LOG_ERROR, NULL, "api-failed", "error=\"%s\"", err);
        return -EADDRINUSE;
    }
    log_event(LOG_INFO, NULL, "started", "config=%s services=%zu state_dir=%s",
              config_path ? config_path : "<demo>", d->n_services, cfg->state_dir);
    /* Dependencies first: a service whose dependencies are not ready yet
     * starts when the last of them verified (daemon_service_ready). */
    for (size_t i = 0; i < d->n_services; i++)
        service_start(d->services[i]);
    return 0;
}

static bool daemon__depends_on(const struct service *s, const char *name)
{
    for (char **dep = s->cfg->depends_on; dep && *dep; dep++)
        if (strcmp(*dep, name) == 0)
            return true;
    return false;
}

bool daemon_dependencies_ready(struct daemon *d, const struct service *s)
{
    for (char **dep = s->cfg->depends_on; dep && *dep; dep++) {
        const struct service *t = daemon_service(d, *dep);
        if (t && !t->ready)
            return false;
    }
    return true;
}

void daemon_service_ready(struct daemon *d, struct service *s)
{
    for (size_t i = 0; i < d->n_services; i++) {
        struct service *t = d->services[i];
        if (t->start_waiting && !t->retired && daemon__depends_on(t, s->name) &&
            daemon_dependencies_ready(d, t) && !d->stopping) {
            t->start_waiting = false;
            log_event(LOG_INFO, t->name, "dependencies-ready", "last=%s", s->name);
            service_start(t);
        }
    }
}

void daemon_service_recovered(struct daemon *d, struct service *s)
{
    for (size_t i = 0; i < d->n_services; i++) {
        struct service *t = d->services[i];
        if (!t->retired && daemon__depends_on(t, s->name))
            executor_dependency_recovered(t);
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
    uv_close((uv_handle_t *)&d->quiet_timer, NULL);
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
        if (d->services[i]->proc_state != PROC_DOWN)
            return false;
    return true;
}

void daemon_stop_progress(struct daemon *d)
{
    if (d->stopping && daemon__all_down(d) && !d->closed)
        daemon__close_all(d);
}

void daemon_stop(struct daemon *d)
{
    if (d->stopping)
        return;
    d->stopping = true;
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
    /* A replacement waiting for this one's process to be gone starts now. */
    for (size_t i = 0; i < d->n_services; i++)
        if (d->services[i]->replaces == s) {
            d->services[i]->replaces = NULL;
            if (!d->stopping)
                service_start(d->services[i]);
        }
    service_free(s);
    daemon__sweep_configs(d);
    daemon_stop_progress(d);
}

/* Retire s: stop its process for good; it is freed once everything closed. */
static void daemon__retire(struct daemon *d, struct service *s, const char *why)
{
    log_event(LOG_INFO, s->name, "retired", "why=\"%s\"", why);
    service_stop(s, why);
    s->retired = true;
    if (s->proc_state == PROC_DOWN)
        service_close(s);
    /* else: executor_process_exited closes it when the exit arrives */
    (void)d;
}

int daemon_reload(struct daemon *d)
{
    struct cfg_err cerr;
    char msg[1024];
    struct config *next = config_load(d->config_path ? d->config_path : "", &cerr);
    if (!d->config_path)
        next = NULL, snprintf(cerr.msg, sizeof cerr.msg, "the bundled demo cannot be reloaded"),
        cerr.file[0] = '\0', cerr.line = cerr.col = 0;
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
    struct config *old = d->cfg;
    size_t n_old = d->n_services;
    for (size_t i = 0; i < n_old; i++) {
        struct service *s = d->services[i];
        if (s->retired)
            continue;
        const struct service_cfg *nc = config_service(next, s->name);
        if (!nc) {
            daemon__retire(d, s, "removed from the configuration");
        } else if (config_service_equal(s->cfg, nc)) {
            service_rebind(s, nc);
        } else {
            const char *why = "its process changed";
            if (config_process_equal(s->cfg, nc) && service_reconfigure(s, nc, &why) == 0) {
                log_event(LOG_INFO, s->name, "reconfigured", "pid=%d checks=%zu process=kept",
                          (int)s->pid, s->n_checks);
                continue;
            }
            char reason[128];
            snprintf(reason, sizeof reason, "configuration changed: %s", why);
            struct service *fresh = service_new(d, nc);
            daemon__retire(d, s, reason);
            if (fresh) {
                fresh->replaces = s;
                fresh->held = s->held; /* an operator's hold outlives a reload */
                daemon__add(d, fresh);
            }
        }
    }
    for (size_t i = 0; i < next->n_services; i++) {
        bool known = false;
        for (size_t k = 0; k < n_old; k++)
            known |= strcmp(d->services[k]->name, next->services[i].name) == 0;
        if (!known) {
            struct service *fresh = service_new(d, &next->services[i]);
            if (fresh && daemon__add(d, fresh) == 0)
                service_start(fresh);
        }
    }
    d->cfg = next;
    alerter_reconfigure(d->alerter, &next->alerts);
    d->old_cfg_list[d->n_old_cfg++] = old;
    daemon__sweep_configs(d);
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
