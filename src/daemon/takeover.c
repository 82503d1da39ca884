/* What a previous recoverd of this state_dir left running: see takeover.h.
 *
 * Two ways to find it, so that a crash at any instant leaves nothing
 * unknown: the journal's child records (durable before the next spawn,
 * journal_child_set) and the containment (the services' cgroups, the marker
 * in every service's environment: containment_find). A recorded process
 * whose service would be started the same way now (same fingerprint) is
 * adopted; every other process found is stopped like a leftover, and the
 * services start once they are all gone. */
#include "daemon/takeover.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "config/config.h"
#include "daemon/daemon.h"
#include "daemon/service.h"
#include "lib/log.h"
#include "lib/procstat.h"
#include "recover/leftover.h"
#include "store/journal.h"

struct takeover__list {
    struct daemon *d;
    bool fresh;
    struct leftover *v; /* to stop; each service a heap copy */
    size_t n;
    size_t adopted;
};

static bool takeover__listed(const struct takeover__list *l, pid_t pid)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].pid == pid)
            return true;
    return false;
}

/* Stop pid (started at ticks) of service, with its configured stop. */
static void takeover__stop(struct takeover__list *l, const char *service, pid_t pid, uint64_t ticks)
{
    const struct service_cfg *sc = config_service(l->d->cfg, service);
    if (takeover__listed(l, pid))
        return;
    struct leftover *v = realloc(l->v, (l->n + 1) * sizeof *v);
    char *name = strdup(service);
    if (!v || !name) {
        free(name);
        if (v)
            l->v = v;
        log_event(LOG_ERROR, service, "leftover-unstopped", "pid=%d error=\"%s\"", (int)pid,
                  strerror(ENOMEM));
        return;
    }
    l->v = v;
    l->v[l->n++] = (struct leftover){.service = name,
                                     .pid = pid,
                                     .start_ticks = ticks,
                                     .signal = sc ? sc->stop.signal : SIGTERM,
                                     .grace_ms = sc ? sc->stop.grace_ms : 5000};
}

/* Why the record's process cannot be adopted, or NULL: it can be. */
static const char *takeover__refusal(struct takeover__list *l, const struct journal_child *c,
                                     struct service **out)
{
    char fp[CONFIG_FINGERPRINT_LEN];
    struct service *s = daemon_service(l->d, c->service);
    *out = s;
    if (l->fresh)
        return "--fresh";
    if (!s)
        return "no longer configured";
    if (!s->cfg->command)
        return "no longer supervised";
    config_process_fingerprint(s->cfg, fp);
    if (strcmp(fp, c->fingerprint) != 0)
        return "its configuration changed";
    return NULL;
}

static void takeover__record(const struct journal_child *c, void *arg)
{
    struct takeover__list *l = arg;
    struct service *s;
    if (procstat_start_ticks(c->pid) != c->start_ticks || c->start_ticks == 0) {
        takeover__stop(l, c->service, c->pid, c->start_ticks); /* reported absent; record cleared */
        return;
    }
    const char *why = takeover__refusal(l, c, &s);
    if (!why) {
        int r = supervisor_adopt(&s->sup, c->pid, c->start_ticks);
        if (r == 0) {
            l->adopted++;
            return;
        }
        why = strerror(-r);
    }
    log_event(LOG_INFO, c->service, "not-adopted", "pid=%d why=\"%s\"", (int)c->pid, why);
    takeover__stop(l, c->service, c->pid, c->start_ticks);
}

/* A process found by its cgroup or marker: part of an adopted service, or
 * one that no record names (started just before its recoverd died). */
static void takeover__found(const char *service, pid_t pid, void *arg)
{
    struct takeover__list *l = arg;
    struct service *s = daemon_service(l->d, service);
    uint64_t ticks = procstat_start_ticks(pid);
    if (!ticks || (s && s->sup.adopted))
        return; /* gone, or held by the adopted service's own containment */
    if (!takeover__listed(l, pid))
        log_event(LOG_WARN, service, "leftover-found", "pid=%d why=\"no record of it\"", (int)pid);
    takeover__stop(l, service, pid, ticks);
}

/* The scan for processes by cgroup and marker reads every process of the
 * host (/proc/PID/environ): 0.5 s on a host running thousands. It runs in
 * the thread pool, the loop serving meanwhile; what it found is judged on
 * the loop. */
struct takeover__scan {
    uv_work_t work; /* data = this */
    struct takeover__list l;
    struct leftover_sink sink;
    struct takeover__seen {
        char *service;
        pid_t pid;
    } * seen; /* n_seen found by the scan */
    size_t n_seen;
    bool oom; /* one found could not be kept: the start stops */
};

/* In a thread of the pool: only the scan's list is written. */
static void takeover__seen(const char *service, pid_t pid, void *arg)
{
    struct takeover__scan *sc = arg;
    struct takeover__seen *v = realloc(sc->seen, (sc->n_seen + 1) * sizeof *v);
    char *name = strdup(service);
    if (!v || !name) {
        free(name);
        if (v)
            sc->seen = v;
        sc->oom = true;
        return;
    }
    sc->seen = v;
    sc->seen[sc->n_seen++] = (struct takeover__seen){name, pid};
}

static void takeover__scan_work(uv_work_t *w)
{
    struct takeover__scan *sc = w->data;
    containment_find(&sc->l.d->containment, takeover__seen, sc);
}

static void takeover__free(struct takeover__scan *sc)
{
    for (size_t i = 0; i < sc->n_seen; i++)
        free(sc->seen[i].service);
    free(sc->seen);
    for (size_t i = 0; i < sc->l.n; i++)
        free((char *)sc->l.v[i].service);
    free(sc->l.v);
    free(sc);
}

/* On the loop: what the scan found is stopped (unless held by an adopted
 * service), then the leftovers' stop begins. */
static void takeover__scan_done(uv_work_t *w, int status)
{
    struct takeover__scan *sc = w->data;
    struct daemon *d = sc->l.d;
    for (size_t i = 0; i < sc->n_seen; i++)
        takeover__found(sc->seen[i].service, sc->seen[i].pid, &sc->l);
    int r = status < 0 ? status : sc->oom ? -ENOMEM : 0;
    if (r == 0)
        r = leftover_stop_all(d->loop, sc->l.v, sc->l.n, &sc->sink);
    if (r < 0) {
        /* Nothing may start over a predecessor's processes left unknown. */
        log_event(LOG_ERROR, NULL, "leftovers-failed", "error=\"%s\"", strerror(-r));
        d->leftovers_pending = false;
        d->failed = true;
        daemon_stop(d);
        daemon_stop_progress(d);
    }
    takeover__free(sc);
}

int takeover_begin(struct daemon *d, bool fresh, const struct leftover_sink *sink)
{
    struct takeover__scan *sc = calloc(1, sizeof *sc);
    if (!sc)
        return -ENOMEM;
    sc->l = (struct takeover__list){.d = d, .fresh = fresh};
    sc->sink = *sink;
    sc->work.data = sc;
    /* Adoptions here, on the loop, before anything can stop the services. */
    journal_children(d->journal, takeover__record, &sc->l);
    if (sc->l.adopted)
        log_event(LOG_INFO, NULL, "adopted",
                  "services=%zu why=\"left running by a previous "
                  "recoverd\"",
                  sc->l.adopted);
    if (d->containment_up &&
        uv_queue_work(d->loop, &sc->work, takeover__scan_work, takeover__scan_done) == 0)
        return 0;
    takeover__scan_done(&sc->work, 0); /* nothing to scan: begin the stop */
    return 0;
}
