/* Probe scheduling and the fall/rise threshold. A probe starts every
 * `interval` (from the previous start); while a check is between its first
 * failure and `fall`, or while a start or recovery is being verified and it
 * has not passed `rise` times yet, it probes sooner, so a real fault is
 * confirmed (or a recovery verified) quickly without a single lost packet
 * opening a fault. */
#include "detect/check.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "detect/detector.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/uvclock.h"
#include "lib/wheel.h"

/* Fastest cadence while confirming a failure or verifying a recovery. */
#define CHECK_FAST_MS 50
/* While verifying, the probe after the first comes this soon, each next
 * one twice as late up to CHECK_FAST_MS: a restarted process is usually
 * listening within milliseconds, and a storm's faults close when their
 * verification does, not a fixed 50 ms per `rise` later. */
#define CHECK_VERIFY_RETRY_MS 5

static void check__timer_cb(uv_timer_t *t);
static void check__slot_cb(struct wheel_timer *g);

/* An array of checks replaced by a reload: freed when the last of their
 * timers has closed (libuv owns a handle's memory until then). */
struct check_batch {
    struct check *checks;
    size_t open;
};

static void check__closed_cb(uv_handle_t *h)
{
    struct check *c = h->data;
    struct check_set *set = c->set;
    struct check_batch *b = c->batch;
    if (b && --b->open == 0) {
        free(b->checks);
        free(b);
    }
    set->handles_open--;
    if (set->sink.closed)
        set->sink.closed(set->sink.ctx);
}

static int check__alloc(struct check_set *set, const struct check_cfg *cfgs, size_t n,
                        struct check **out)
{
    struct check *v = calloc(n ? n : 1, sizeof *v);
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        struct check *c = &v[i];
        c->set = set;
        c->cfg = &cfgs[i];
        c->ops = cfgs[i].ops;
        uv_timer_init(set->loop, &c->timer);
        c->timer.data = c;
        set->handles_open++;
    }
    *out = v;
    return 0;
}

int check_set_init(struct check_set *set, const struct check_cfg *cfgs, size_t n)
{
    int r = check__alloc(set, cfgs, n, &set->checks);
    if (r == 0)
        set->n = n;
    return r;
}

uint64_t check_set_settle_ms(const struct check_set *set)
{
    uint64_t most = 0;
    for (size_t i = 0; i < set->n; i++) {
        const struct check *c = &set->checks[i];
        uint64_t ms = c->ops->settle_ms ? c->ops->settle_ms(c->cfg->params) : 0;
        most = ms > most ? ms : most;
    }
    return most;
}

size_t check_index(const struct check *c)
{
    return (size_t)(c - c->set->checks);
}

/* Probes due at least CHECK_GRID_FROM_MS ahead start on a grid of the
 * loop's clock, CHECK_GRID_MS apart, shared by every check: the loop
 * wakes once for the probes of a slot instead of once for each, and their
 * answers come back together. Rounding down keeps the grid: a probe that
 * started late is due again on the slot it missed, plus its interval (a
 * multiple of the grid for the usual intervals), so the checks never drift
 * apart again and no interval grows. The grid is a wheel of CHECK_GRID_MS
 * slots (lib/wheel.c) under one libuv timer: at 1,000 checks a uv_timer
 * each cost ~650 instructions a probe in libuv's heap. The sooner probes of a failure being
 * confirmed or a recovery verified keep the check's own uv_timer, to the ms. */
#define CHECK_GRID_MS 10
#define CHECK_GRID_FROM_MS 200

static void check__schedule(struct check *c, uint64_t delay_ms)
{
    if (delay_ms >= CHECK_GRID_FROM_MS) {
        uv_timer_stop(&c->timer);
        if (wheel_start(&c->slot, c->set->loop, check__slot_cb, delay_ms, CHECK_GRID_MS) == 0)
            return;
        /* out of memory for a wheel: the check's own timer, to the ms */
    }
    wheel_stop(&c->slot);
    uvclock_arm(&c->timer, check__timer_cb, delay_ms);
}

static bool check__armed(const struct check *c)
{
    return wheel_armed(&c->slot) || uv_is_active((const uv_handle_t *)&c->timer);
}

static void check__probe(struct check *c)
{
    c->in_flight = true;
    c->started_us = clock_mono_us();
    int r = c->ops->start(c);
    if (r < 0) {
        /* Could not even begin (no fds, no memory): that is a failed probe. */
        struct observation o = {.ok = false,
                                .type = FAULT_RESOURCE,
                                .severity = SEVERITY_MEDIUM,
                                .code = -1};
        snprintf(o.reason, sizeof o.reason, "cannot start probe: %s", strerror(-r));
        check_report(c, &o);
    }
}

static void check__timer_cb(uv_timer_t *t)
{
    struct check *c = t->data;
    if (!c->in_flight)
        check__probe(c);
}

static void check__slot_cb(struct wheel_timer *g)
{
    struct check *c = (struct check *)((char *)g - offsetof(struct check, slot));
    if (!c->in_flight)
        check__probe(c);
}

void check_set_start(struct check_set *set, uint64_t first_ms)
{
    set->probing = true;
    for (size_t i = 0; i < set->n; i++)
        if (!set->checks[i].in_flight)
            check__schedule(&set->checks[i], first_ms);
}

static void check__stop(struct check *c)
{
    uv_timer_stop(&c->timer);
    wheel_stop(&c->slot);
    if (c->in_flight) {
        c->ops->cancel(c);
        c->in_flight = false;
    }
}

void check_set_stop(struct check_set *set)
{
    set->probing = false;
    for (size_t i = 0; i < set->n; i++) {
        check__stop(&set->checks[i]);
        set->checks[i].stale = set->checks[i].has_result;
    }
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
        free(c->last.reason);
        c->last.reason = NULL;
        uv_close((uv_handle_t *)&c->timer, check__closed_cb);
    }
}

void check_set_close(struct check_set *set)
{
    set->probing = false;
    struct check_batch *b = calloc(1, sizeof *b);
    if (b) { /* the array goes with its last timer */
        b->checks = set->checks;
        b->open = set->n;
    }
    check__close(set->checks, set->n, b);
    if (set->n == 0) {
        free(set->checks);
        free(b);
    }
    /* Without the batch (out of memory) the array leaks rather than being
     * freed under libuv's feet. */
    set->checks = NULL;
    set->n = 0;
}

int check_set_replace(struct check_set *set, const struct check_cfg *cfgs, size_t n)
{
    struct check *fresh = NULL, *old = set->checks;
    size_t n_old = set->n;
    struct check_batch *b = calloc(1, sizeof *b);
    if (!b || check__alloc(set, cfgs, n, &fresh) < 0) {
        free(b);
        return -ENOMEM;
    }
    /* A check that did not change keeps what it saw (shown by the API);
     * its streaks start over with the new schedule. */
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < n_old; k++)
            if (config_check_equal(fresh[i].cfg, old[k].cfg) && old[k].has_result) {
                fresh[i].has_result = true;
                fresh[i].last = old[k].last;
                fresh[i].last.reason = old[k].last.reason ? strdup(old[k].last.reason) : NULL;
                fresh[i].last_ms = old[k].last_ms;
                fresh[i].probes = old[k].probes;
                break;
            }
    set->checks = fresh;
    set->n = n;
    b->checks = old;
    b->open = n_old;
    check__close(old, n_old, b);
    if (n_old == 0) {
        free(old);
        free(b);
    }
    return 0;
}

void check_set_rebind(struct check_set *set, const struct check_cfg *cfgs)
{
    for (size_t i = 0; i < set->n; i++)
        set->checks[i].cfg = &cfgs[i];
}

void check_set_reset_streaks(struct check_set *set)
{
    for (size_t i = 0; i < set->n; i++) {
        struct check *c = &set->checks[i];
        c->fails = c->oks = 0;
        c->hurried = 0;
        c->passed = false;
    }
}

void check_set_rejudge(struct check_set *set)
{
    check_set_reset_streaks(set);
    for (size_t i = 0; i < set->n; i++)
        set->checks[i].failing = false;
}

bool check_set_all_passing(const struct check_set *set)
{
    for (size_t i = 0; i < set->n; i++) {
        const struct check *c = &set->checks[i];
        if (c->failing || c->oks < c->cfg->rise)
            return false;
    }
    return true;
}

/* The delay before the next probe, counted from this one's start. */
static uint64_t check__next_delay(struct check *c, uint64_t elapsed_ms)
{
    uint64_t every = c->cfg->interval_ms;
    bool confirming = c->fails > 0 && !c->failing;
    bool verifying = c->set->verifying && !c->failing && c->oks < c->cfg->rise;
    uint64_t fast = CHECK_FAST_MS;
    if (verifying) {
        unsigned k = c->hurried < 4 ? c->hurried : 4; /* 5 << 4 is past CHECK_FAST_MS */
        fast = (uint64_t)CHECK_VERIFY_RETRY_MS << k;
        fast = fast < CHECK_FAST_MS ? fast : CHECK_FAST_MS;
        c->hurried++;
    }
    if ((confirming || verifying) && every > fast)
        every = fast;
    return every > elapsed_ms ? every - elapsed_ms : 0;
}

/* A failure while the process is still starting, before any probe passed,
 * says only that it is not up yet (Docker's start period). */
static bool check__starting(const struct check *c, uint64_t now_us)
{
    return !c->passed && now_us < c->set->start_until_us;
}

static void check__failed(struct check *c, const struct observation *obs, uint64_t now_us)
{
    struct check_set *set = c->set;
    c->oks = 0;
    if (check__starting(c, now_us)) {
        log_event(LOG_DEBUG, set->service, "probe-failed", "check=%s starting=true reason=\"%s\"",
                  c->cfg->name, obs->reason);
        return;
    }
    if (c->fails++ == 0)
        c->fails_since_us = c->started_us;
    log_event(LOG_DEBUG, set->service, "probe-failed", "check=%s fails=%u/%u reason=\"%s\"",
              c->cfg->name, c->fails, c->cfg->fall, obs->reason);
    if (c->failing || c->fails < c->cfg->fall)
        return;
    c->failing = true;
    log_event(LOG_WARN, set->service, "check-failing", "check=%s fails=%u reason=\"%s\"",
              c->cfg->name, c->fails, obs->reason);
    set->sink.failing(set->sink.ctx, c, obs);
}

/* The words are copied only when they change: a steady check allocates nothing. */
static void check__keep(struct check *c, const struct observation *obs)
{
    char *reason = c->last.reason;
    if (!reason || strcmp(reason, obs->reason) != 0) {
        if (!(reason = strdup(obs->reason)))
            reason = c->last.reason; /* out of memory: the older words stay */
        else
            free(c->last.reason);
    }
    c->last = (struct check_result){
        .ok = obs->ok,
        .type = obs->type,
        .severity = obs->severity,
        .host_wide = obs->host_wide,
        .inconclusive = obs->inconclusive,
        .code = obs->code,
        .latency_us = obs->latency_us,
        .reason = reason,
    };
}

void check_last(const struct check *c, struct observation *o)
{
    *o = (struct observation){
        .ok = c->last.ok,
        .type = c->last.type,
        .severity = c->last.severity,
        .host_wide = c->last.host_wide,
        .inconclusive = c->last.inconclusive,
        .code = c->last.code,
        .latency_us = c->last.latency_us,
    };
    snprintf(o->reason, sizeof o->reason, "%s", c->last.reason ? c->last.reason : "");
}

void check_report(struct check *c, struct observation *obs)
{
    struct check_set *set = c->set;
    uint64_t now_us = clock_mono_us();
    if (!c->in_flight)
        return; /* cancelled meanwhile */
    c->in_flight = false;
    obs->latency_us = now_us - c->started_us;
    check__keep(c, obs);
    c->last_ms = clock_wall_ms();
    c->has_result = true;
    c->stale = false;
    c->probes++;
    if (obs->inconclusive) {
        c->oks = 0;
    } else if (obs->ok) {
        c->oks++;
        c->fails = 0;
        c->passed = true;
        if (c->failing && c->oks >= c->cfg->rise) {
            c->failing = false;
            log_event(LOG_INFO, set->service, "check-passing", "check=%s after=%u", c->cfg->name,
                      c->oks);
        }
    } else {
        check__failed(c, obs, now_us);
    }
    if (set->probing && !c->in_flight && !check__armed(c))
        check__schedule(c, check__next_delay(c, (now_us - c->started_us) / 1000));
    set->sink.reported(set->sink.ctx, c);
}
