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

/* A process the containment found, with its start time read then. */
struct takeover__seen {
    char *service;
    pid_t pid;
    uint64_t ticks;
};

/* The host's scan in libuv's pool: its cost is the host's processes, not
 * the services (a /proc read each), which the loop must not wait for. */
struct takeover__scan {
    uv_work_t work;
    struct daemon *d;
    bool fresh;
    struct leftover_sink sink;
    struct takeover__seen *v; /* written by the pool thread, read once it is done */
    size_t n;
    bool lost; /* out of memory in the scan: a process found is missing */
};

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
static void takeover__found(struct takeover__list *l, const struct takeover__seen *f)
{
    struct service *s = daemon_service(l->d, f->service);
    if (!f->ticks || (s && s->sup.adopted))
        return; /* gone, or held by the adopted service's own containment */
    if (!takeover__listed(l, f->pid))
        log_event(LOG_WARN, f->service, "leftover-found", "pid=%d why=\"no record of it\"",
                  (int)f->pid);
    takeover__stop(l, f->service, f->pid, f->ticks);
}

/* In the pool thread: only the scan is touched. */
static void takeover__seen_cb(const char *service, pid_t pid, void *arg)
{
    struct takeover__scan *sc = arg;
    struct takeover__seen *v = realloc(sc->v, (sc->n + 1) * sizeof *v);
    char *name = strdup(service);
    if (!v || !name) {
        free(name);
        if (v)
            sc->v = v;
        sc->lost = true;
        return;
    }
    sc->v = v;
    sc->v[sc->n++] = (struct takeover__seen){name, pid, procstat_start_ticks(pid)};
}

static void takeover__scan_work(uv_work_t *w)
{
    struct takeover__scan *sc = w->data;
    if (sc->d->containment_up)
        containment_find(&sc->d->containment, takeover__seen_cb, sc);
}

static void takeover__scan_free(struct takeover__scan *sc)
{
    for (size_t i = 0; i < sc->n; i++)
        free(sc->v[i].service);
    free(sc->v);
    free(sc);
}

/* Back on the loop: the records first (what can be adopted is), then what
 * the scan found that no adopted service holds; a recoverd stopping
 * meanwhile adopts nothing (its services are being stopped) and one
 * detaching leaves everything as it is. */
static void takeover__scan_done(uv_work_t *w, int status)
{
    struct takeover__scan *sc = w->data;
    struct daemon *d = sc->d;
    struct takeover__list l = {.d = d, .fresh = sc->fresh || d->stopping};
    struct leftover_sink sink = sc->sink;
    int r = status;
    if (sc->lost)
        log_event(LOG_ERROR, NULL, "leftover-unstopped",
                  "error=\"%s\" what=\"a process found by the containment is not stopped\"",
                  strerror(ENOMEM));
    if (!d->detaching) {
        journal_children(d->journal, takeover__record, &l);
        for (size_t i = 0; i < sc->n; i++)
            takeover__found(&l, &sc->v[i]);
    }
    takeover__scan_free(sc);
    if (l.adopted)
        log_event(LOG_INFO, NULL, "adopted",
                  "services=%zu why=\"left running by a previous "
                  "recoverd\"",
                  l.adopted);
    if (r == 0)
        r = leftover_stop_all(d->loop, l.v, l.n, &sink);
    for (size_t i = 0; i < l.n; i++)
        free((char *)l.v[i].service);
    free(l.v);
    if (r < 0) { /* what was found may still run: no service may start beside it */
        log_event(LOG_ERROR, NULL, "leftovers-failed", "error=\"%s\"",
                  status < 0 ? uv_strerror(r) : strerror(-r));
        d->failed = true;
        daemon_stop(d);
        struct leftover_counts none = {0};
        sink.done(sink.ctx, &none);
    }
}

int takeover_begin(struct daemon *d, bool fresh, const struct leftover_sink *sink)
{
    struct takeover__scan *sc = calloc(1, sizeof *sc);
    if (!sc)
        return -ENOMEM;
    *sc = (struct takeover__scan){.d = d, .fresh = fresh, .sink = *sink};
    sc->work.data = sc;
    int r = uv_queue_work(d->loop, &sc->work, takeover__scan_work, takeover__scan_done);
    if (r < 0)
        free(sc);
    return r < 0 ? -ENOMEM : 0;
}
