/* Probe scheduling and the fall/rise threshold. A probe starts every
 * `interval` (from the previous start); while a check is between its first
 * failure and `fall`, or while a restart is being verified, it probes
 * sooner, so a real fault is confirmed (or a recovery verified) quickly
 * without a single lost packet opening a fault. */
#include "detect/check.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/analyzer.h"
#include "lib/clock.h"
#include "config/config.h"
#include "daemon/daemon.h"
#include "lib/log.h"
#include "detect/detector.h"
#include "recover/executor.h"

/* Fastest cadence while confirming a failure or verifying a recovery. */
#define CHECK_FAST_MS 50

static void check__timer_cb(uv_timer_t *t);

/* An array of checks replaced by a reload: freed when the last of their
 * timers has closed (libuv owns a handle's memory until then). */
struct check_batch {
    struct check *checks;
    size_t open;
};

static void check__closed_cb(uv_handle_t *h)
{
    struct check *c = h->data;
    struct service *s = c->svc;
    struct check_batch *b = c->batch;
    if (b && --b->open == 0) {
        free(b->checks);
        free(b);
    }
    if (--s->handles_open == 0 && s->retired)
        daemon_service_gone(s->d, s);
}

int check_init_all(struct service *s)
{
    s->n_checks = s->cfg->n_checks;
    s->checks = calloc(s->n_checks ? s->n_checks : 1, sizeof *s->checks);
    if (!s->checks)
        return -ENOMEM;
    for (size_t i = 0; i < s->n_checks; i++) {
        struct check *c = &s->checks[i];
        c->svc = s;
        c->cfg = &s->cfg->checks[i];
        c->ops = c->cfg->ops;
        uv_timer_init(s->d->loop, &c->timer);
        c->timer.data = c;
        s->handles_open++;
    }
    return 0;
}

static void check__schedule(struct check *c, uint64_t delay_ms)
{
    uv_timer_start(&c->timer, check__timer_cb, delay_ms, 0);
}

static void check__probe(struct check *c)
{
    c->in_flight = true;
    c->started_us = clock_mono_us();
    int r = c->ops->start(c);
    if (r < 0) {
        /* Could not even begin (no fds, no memory): that is a failed probe,
         * reported from the loop like any other. */
        c->in_flight = false;
        struct observation o = {.ok = false, .type = FAULT_RESOURCE, .severity = SEVERITY_MEDIUM,
                                .code = -1};
        snprintf(o.reason, sizeof o.reason, "cannot start probe: %s", strerror(-r));
        c->in_flight = true;
        check_report(c, &o);
    }
}

static void check__timer_cb(uv_timer_t *t)
{
    struct check *c = t->data;
    if (!c->in_flight)
        check__probe(c);
}

void check_start_all(struct service *s, uint64_t first_ms)
{
    for (size_t i = 0; i < s->n_checks; i++)
        if (!s->checks[i].in_flight)
            check__schedule(&s->checks[i], first_ms);
}

static void check__stop(struct check *c)
{
    uv_timer_stop(&c->timer);
    if (c->in_flight) {
        c->ops->cancel(c);
        c->in_flight = false;
    }
}

void check_stop_all(struct service *s)
{
    for (size_t i = 0; i < s->n_checks; i++)
        check__stop(&s->checks[i]);
}

/* Stop, release and close n checks; a detector's release detaches its own
 * state, so after it only the timer still points at the check. */
static void check__close(struct check *checks, size_t n, struct check_batch *b)
{
    for (size_t i = 0; i < n; i++) {
        struct check *c = &checks[i];
        check__stop(c);
        if (c->ops->release)
            c->ops->release(c);
        c->batch = b;
        uv_close((uv_handle_t *)&c->timer, check__closed_cb);
    }
}

void check_free_all(struct service *s)
{
    check__close(s->checks, s->n_checks, NULL);
}

int check_replace_all(struct service *s)
{
    struct check *old = s->checks;
    size_t n_old = s->n_checks;
    struct check_batch *b = calloc(1, sizeof *b);
    if (!b || check_init_all(s) < 0) {
        free(b);
        s->checks = old;
        s->n_checks = n_old;
        return -ENOMEM;
    }
    /* A check that did not change keeps what it saw (shown by the API);
     * its streaks start over with the new schedule. */
    for (size_t i = 0; i < s->n_checks; i++)
        for (size_t k = 0; k < n_old; k++)
            if (config_check_equal(s->checks[i].cfg, old[k].cfg) && old[k].has_result) {
                s->checks[i].has_result = true;
                s->checks[i].last = old[k].last;
                s->checks[i].last_ms = old[k].last_ms;
                s->checks[i].probes = old[k].probes;
                break;
            }
    b->checks = old;
    b->open = n_old;
    check__close(old, n_old, b);
    if (n_old == 0) {
        free(old);
        free(b);
    }
    return 0;
}

void check_reset_streaks(struct service *s)
{
    for (size_t i = 0; i < s->n_checks; i++)
        s->checks[i].fails = s->checks[i].oks = 0;
}

bool check_all_passing(const struct service *s)
{
    for (size_t i = 0; i < s->n_checks; i++) {
        const struct check *c = &s->checks[i];
        if (c->failing || c->oks < c->cfg->rise)
            return false;
    }
    return true;
}

/* The delay before the next probe, counted from this one's start. */
static uint64_t check__next_delay(const struct check *c, uint64_t elapsed_ms)
{
    uint64_t every = c->cfg->interval_ms;
    bool hurry = c->svc->verifying || (c->fails > 0 && !c->failing);
    if (hurry && every > CHECK_FAST_MS)
        every = CHECK_FAST_MS;
    return every > elapsed_ms ? every - elapsed_ms : 0;
}

void check_report(struct check *c, struct observation *obs)
{
    struct service *s = c->svc;
    uint64_t now_us = clock_mono_us();
    if (!c->in_flight)
        return; /* cancelled meanwhile */
    c->in_flight = false;
    obs->latency_us = now_us - c->started_us;
    c->last = *obs;
    c->last_ms = clock_wall_ms();
    c->has_result = true;
    c->probes++;
    if (obs->ok) {
        c->oks++;
        c->fails = 0;
        if (c->failing && c->oks >= c->cfg->rise) {
            c->failing = false;
            log_event(LOG_INFO, s->name, "check-passing", "check=%s after=%u", c->cfg->name,
                      c->oks);
        }
    } else {
        c->fails++;
        c->oks = 0;
        log_event(LOG_DEBUG, s->name, "probe-failed", "check=%s fails=%u/%u reason=\"%s\"",
                  c->cfg->name, c->fails, c->cfg->fall, obs->reason);
        if (!c->failing && c->fails >= c->cfg->fall) {
            c->failing = true;
            log_event(LOG_WARN, s->name, "check-failing", "check=%s fails=%u reason=\"%s\"",
                      c->cfg->name, c->fails, obs->reason);
            /* While a start or restart is being verified, the verification
             * window owns the verdict; otherwise this is a fault. */
            if (!s->verifying)
                analyzer_check_failing(s, (size_t)(c - s->checks), obs);
        }
    }
    /* Probe on while there is something to probe: a running process, or a
     * service that is only watched (no process of its own). */
    bool watched_only = !s->cfg->command && !s->cfg->pidfile;
    if ((s->proc_state == PROC_RUNNING || watched_only) &&
        !uv_is_active((uv_handle_t *)&c->timer) && !c->in_flight)
        check__schedule(c, check__next_delay(c, (now_us - c->started_us) / 1000));
    executor_check_reported(s);
}
