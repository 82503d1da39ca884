/* The restart strategy. Intensity and backoff follow Erlang/OTP's
 * supervisor: at most `max` restarts within `window`, and a process that
 * dies before it was `stable` waits longer each time so a crash loop
 * cannot spin the host. A supervised process is stopped (if it runs) and
 * spawned again; an external one is restarted by its programs and found
 * again through its pidfile. */
#include "recover/restart.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/analyzer.h"
#include "config/config.h"
#include "lib/backoff.h"
#include "lib/clock.h"
#include "lib/fault.h"
#include "lib/jsonw.h"
#include "lib/log.h"
#include "lib/program.h"
#include "lib/uvclock.h"
#include "recover/executor.h"
#include "recover/pace.h"
#include "recover/strategy.h"
#include "recover/supervisor.h"

bool restart_allowed(struct restart_policy *p, const struct restart_cfg *rc, uint64_t now_ms)
{
    unsigned keep = 0;
    for (unsigned i = 0; i < p->len; i++)
        if (now_ms - p->log[i] < rc->window_ms)
            p->log[keep++] = p->log[i];
    p->len = keep;
    return p->len < rc->max;
}

int restart_record(struct restart_policy *p, const struct restart_cfg *rc, uint64_t now_ms)
{
    unsigned limit = rc->max + 1;
    if (p->cap < limit) {
        uint64_t *v = realloc(p->log, limit * sizeof *v);
        if (!v)
            return -ENOMEM;
        p->log = v;
        p->cap = limit;
    }
    while (p->len >= limit) { /* the limit shrank (reload) or is reached: drop the oldest */
        memmove(p->log, p->log + 1, (p->len - 1) * sizeof *p->log);
        p->len--;
    }
    p->log[p->len++] = now_ms;
    return 0;
}

uint64_t restart_delay(struct restart_policy *p, const struct restart_cfg *rc, uint64_t uptime_ms)
{
    if (uptime_ms >= rc->stable_ms) {
        p->backoff_ms = rc->backoff_initial_ms;
        return 0;
    }
    if (p->backoff_ms == 0)
        p->backoff_ms = rc->backoff_initial_ms;
    uint64_t delay = backoff_jitter(p->backoff_ms);
    p->backoff_ms = p->backoff_ms * 2 > rc->backoff_max_ms ? rc->backoff_max_ms : p->backoff_ms * 2;
    if (p->backoff_ms == 0)
        p->backoff_ms = rc->backoff_initial_ms;
    return delay;
}

void restart_policy_reset(struct restart_policy *p)
{
    p->len = 0;
    p->backoff_ms = 0;
}

void restart_policy_free(struct restart_policy *p)
{
    free(p->log);
    memset(p, 0, sizeof *p);
}

/* ---- its configuration ---- */

/* backoff: lives flat in struct restart_cfg: same base, offset 0. */
static const struct cfg_field restart__backoff_fields[] = {
    {"initial", CFG_DURATION, offsetof(struct restart_cfg, backoff_initial_ms), 0, NULL},
    {"max", CFG_DURATION, offsetof(struct restart_cfg, backoff_max_ms), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

static const struct cfg_field restart__fields[] = {
    {"max", CFG_UINT, offsetof(struct restart_cfg, max), 0, NULL},
    {"window", CFG_DURATION, offsetof(struct restart_cfg, window_ms), 0, NULL},
    {"stable", CFG_DURATION, offsetof(struct restart_cfg, stable_ms), 0, NULL},
    {"backoff", CFG_MAP, 0, 0, restart__backoff_fields},
    {NULL, 0, 0, 0, NULL},
};

static void restart__params_init(void *params)
{
    *(struct restart_cfg *)params = (struct restart_cfg){.max = 5,
                                                         .window_ms = 60000,
                                                         .stable_ms = 1000,
                                                         .backoff_initial_ms = 100,
                                                         .backoff_max_ms = 10000};
}

static int restart__validate(const void *params, const struct service_cfg *svc, char *why,
                             size_t len, const char **at)
{
    const struct restart_cfg *rc = params;
    if (rc->window_ms == 0) {
        *at = "window";
        snprintf(why, len, "window must be greater than 0");
        return -EINVAL;
    }
    if (rc->backoff_initial_ms > rc->backoff_max_ms) {
        *at = "backoff";
        snprintf(why, len, "backoff initial (%llu ms) must not exceed max (%llu ms)",
                 (unsigned long long)rc->backoff_initial_ms,
                 (unsigned long long)rc->backoff_max_ms);
        return -EINVAL;
    }
    return 0;
}

static const struct restart_cfg *restart__cfg(const struct recovery *r)
{
    return config_strategy(r->cfg, STRATEGY_RESTART);
}

/* ---- the strategy ---- */

#define RESTART__OUTPUT_MAX 2048
#define RESTART__PIDFILE_POLL_MS 50

struct restart__state {
    struct restart_policy policy; /* limit and backoff */
    unsigned restarts;            /* since recoverd started (shown by the API) */
    uint64_t delay_ms;            /* the delay of the action being run */
    bool prespawned;              /* act_first spawned already: run() reports it */
    bool spawn_failed;            /* the last spawn failed: the next waits like an early death */
    bool launching;               /* run() waits for the launch to report (recovery_launched) */
    struct program *program;      /* external: a program in flight */
    int program_step;             /* external stop+start: 0 stop running, 1 start running */
    uv_timer_t *pidfile_wait;     /* external: polling the pidfile; freed in its close cb */
    uint64_t waiting_since_us;    /* monotonic start of that wait */
};

static struct restart__state *restart__st(const struct recovery *r)
{
    return r->priv[STRATEGY_RESTART];
}

static uint64_t restart__now(void)
{
    return clock_mono_us() / 1000;
}

static struct strategy_no restart__applicable(const struct recovery *r)
{
    static char why[96];
    const struct service_cfg *c = r->cfg;
    if (!c->command && !(c->pidfile && (c->restart_cmd || c->start_cmd)))
        return (struct strategy_no){"not configured (no command, and no restart or start program)",
                                    true};
    struct restart__state *st = restart__st(r);
    const struct restart_cfg *rc = restart__cfg(r);
    uint64_t now = restart__now();
    unsigned recent = 0;
    for (unsigned i = 0; i < st->policy.len; i++)
        recent += now - st->policy.log[i] < rc->window_ms;
    if (recent < rc->max)
        return (struct strategy_no){NULL, false};
    snprintf(why, sizeof why, "restart limit reached (%u restarts within %llu ms)", rc->max,
             (unsigned long long)rc->window_ms);
    return (struct strategy_no){why, false};
}

/* A live process that hung is stopped at once the first time; a process
 * that died young, or a retry within the same plan, waits its backoff. */
static uint64_t restart__delay(struct recovery *r)
{
    struct restart__state *st = restart__st(r);
    const struct supervisor *sp = r->sup;
    bool running = sp->state != SUP_DOWN;
    if (st->prespawned || !r->cfg->command)
        return st->delay_ms = 0;
    /* A spawn that failed (a missing binary, recoverd out of descriptors)
     * ran for no time: the last exit's uptime is not this attempt's. */
    uint64_t uptime = running ? (clock_mono_us() - sp->spawned_us) / 1000
                      : sp->has_exit && !st->spawn_failed ? sp->last.uptime_ms
                                                          : 0;
    if (running && r->attempts == 0)
        uptime = restart__cfg(r)->stable_ms; /* counts as stable: no wait */
    return st->delay_ms = restart_delay(&st->policy, restart__cfg(r), uptime);
}

/* The spawn of this restart ended: verify it, or retry like a crash. */
static void restart__spawn_done(struct recovery *r, int err)
{
    char result[256];
    restart__st(r)->spawn_failed = err < 0;
    if (err == 0) {
        snprintf(result, sizeof result, "spawned pid %d", (int)r->sup->pid);
        recovery_executed(r, EXEC_OK, result);
        return;
    }
    /* The command cannot run: a fault with the reason; the retry backs off
     * like a crash loop, so a missing binary costs no CPU. */
    analyzer_spawn_failed(r->faults, err);
    snprintf(result, sizeof result, "cannot start %.160s: %s", r->cfg->command[0], strerror(-err));
    recovery_executed(r, EXEC_RETRY, result);
}

/* Spawn off the loop where the executor's pace has a spawner: the action
 * goes on when the launch reports. */
static void restart__spawn(struct recovery *r)
{
    struct restart__state *st = restart__st(r);
    st->launching = true; /* before: a spawner without threads reports at once */
    int err = supervisor_launch(r->sup, pace_spawner(r->ex->pace));
    if (err == -EINPROGRESS)
        return;
    st->launching = false;
    restart__spawn_done(r, err);
}

static void restart__launched(struct recovery *r, int err)
{
    struct restart__state *st = restart__st(r);
    if (!st->launching)
        return; /* act_first's, before run(); or for an action that ended */
    st->launching = false;
    restart__spawn_done(r, err);
}

/* ---- external services: restart (or stop, then start) programs ---- */

static void restart__unexpect(struct recovery *r);

static void restart__wait_closed_cb(uv_handle_t *h)
{
    free(h);
}

static void restart__wait_end(struct restart__state *st)
{
    if (!st->pidfile_wait)
        return;
    uv_close((uv_handle_t *)st->pidfile_wait, restart__wait_closed_cb);
    st->pidfile_wait = NULL;
}

/* After the program: wait for the pidfile to name a live process. */
static void restart__pidfile_cb(uv_timer_t *t)
{
    struct recovery *r = t->data;
    struct restart__state *st = restart__st(r);
    char result[256];
    if (r->sup->state != SUP_DOWN)
        supervisor_event(r->sup, SUP_EV_RELEASE, STOP_NONE); /* the old pid is not it */
    if (supervisor_event(r->sup, SUP_EV_WATCH, STOP_NONE) == 0) {
        restart__wait_end(st);
        snprintf(result, sizeof result, "restarted: pid %d (from %.180s)", (int)r->sup->pid,
                 r->cfg->pidfile);
        recovery_executed(r, EXEC_OK, result);
        return;
    }
    uint64_t waited = (clock_mono_us() - st->waiting_since_us) / 1000;
    if (waited < r->cfg->verify_ms) {
        uvclock_arm(t, restart__pidfile_cb, RESTART__PIDFILE_POLL_MS);
        return;
    }
    restart__wait_end(st);
    restart__unexpect(r);
    snprintf(result, sizeof result, "no live process in %.160s within %llu ms after the program",
             r->cfg->pidfile, (unsigned long long)r->cfg->verify_ms);
    recovery_executed(r, EXEC_FAILED, result);
}

static void restart__pidfile_wait(struct recovery *r)
{
    struct restart__state *st = restart__st(r);
    uv_timer_t *t = calloc(1, sizeof *t);
    if (!t) {
        recovery_executed(r, EXEC_FAILED, "restart: out of memory");
        return;
    }
    uv_timer_init(r->loop, t);
    t->data = r;
    st->pidfile_wait = t;
    st->waiting_since_us = clock_mono_us();
    restart__pidfile_cb(t);
}

/* `restart`, else `stop` then `start` (either may be absent). */
static const char *restart__program_name(const struct recovery *r)
{
    const struct service_cfg *c = r->cfg;
    return c->restart_cmd                                       ? "restart"
           : (restart__st(r)->program_step == 0 && c->stop_cmd) ? "stop"
                                                                : "start";
}

static void restart__program(struct recovery *r, char **argv);

static void restart__program_done(const struct program_result *res, void *arg)
{
    struct recovery *r = arg;
    struct restart__state *st = restart__st(r);
    const struct service_cfg *c = r->cfg;
    char result[256];
    st->program = NULL;
    if (res->spawn_error || res->timed_out || res->signal || res->exit_code != 0) {
        if (res->spawn_error)
            snprintf(result, sizeof result, "cannot run the %s program: %s",
                     restart__program_name(r), strerror(-res->spawn_error));
        else
            snprintf(result, sizeof result, "%s program %s (exit %d): %.*s",
                     restart__program_name(r), res->timed_out ? "timed out" : "failed",
                     res->exit_code,
                     (int)strcspn(res->output, "\n") > 160 ? 160 : (int)strcspn(res->output, "\n"),
                     res->output);
        restart__unexpect(r);
        recovery_executed(r, EXEC_FAILED, result);
        return;
    }
    if (!c->restart_cmd && st->program_step == 0 && c->stop_cmd && c->start_cmd) {
        st->program_step = 1;
        restart__program(r, c->start_cmd);
        return;
    }
    restart__pidfile_wait(r);
}

static void restart__program(struct recovery *r, char **argv)
{
    struct restart__state *st = restart__st(r);
    st->program = program_run_as(r->loop, argv, r->sup->envp, r->cfg->cwd, &r->cfg->ident.cred,
                                 r->ex->action_timeout_ms, RESTART__OUTPUT_MAX,
                                 restart__program_done, r);
    if (!st->program) {
        recovery_executed(r, EXEC_FAILED, "restart program: out of memory");
        return;
    }
    program_keep_group(st->program); /* what it starts is the service */
}

/* The old process will exit because of us: not a fault. recoverd never
 * signals an external service itself; its programs do. */
static void restart__external(struct recovery *r)
{
    const struct service_cfg *c = r->cfg;
    restart__st(r)->program_step = 0;
    supervisor_event(r->sup, SUP_EV_STOP, STOP_RESTART);
    action_set_params(&r->action, json_pack("{s:s}", "program",
                                            c->restart_cmd ? "restart"
                                            : c->stop_cmd  ? "stop+start"
                                                           : "start"));
    restart__program(r, c->restart_cmd ? c->restart_cmd : c->stop_cmd ? c->stop_cmd : c->start_cmd);
}

static void restart__run(struct recovery *r)
{
    struct restart__state *st = restart__st(r);
    const struct restart_cfg *rc = restart__cfg(r);
    uint64_t now = restart__now();
    char result[256];
    if (!restart_allowed(&st->policy, rc, now)) {
        snprintf(result, sizeof result, "restart limit reached: %u restarts within %llu ms",
                 rc->max, (unsigned long long)rc->window_ms);
        recovery_executed(r, EXEC_FAILED, result);
        return;
    }
    restart_record(&st->policy, rc, now);
    st->restarts++;
    if (!r->cfg->command) {
        restart__external(r);
        return;
    }
    bool running = r->sup->state != SUP_DOWN;
    action_set_params(&r->action, json_pack("{s:I, s:i, s:b}", "delay_ms", (json_int_t)st->delay_ms,
                                            "attempt", (int)st->policy.len, "stop", running));
    if (st->prespawned) { /* act_first spawned it already, or is spawning it */
        st->prespawned = false;
        if (r->sup->state == SUP_SPAWNING)
            st->launching = true;
        else
            restart__spawn_done(r, r->sup->state == SUP_DOWN ? r->sup->result : 0);
        return;
    }
    if (running)
        supervisor_event(r->sup, SUP_EV_STOP, STOP_RESTART); /* the exit spawns */
    else
        restart__spawn(r);
}

/* The stop this restart asked for is done: spawn. */
static void restart__process_exited(struct recovery *r, const struct sup_exit *e)
{
    if (e->why == STOP_RESTART && r->cfg->command)
        restart__spawn(r);
    /* external: its program carries on; the pidfile wait follows */
}

/* A process that ran past `stable` and may be restarted is spawned before
 * the fault and the action are journaled: they follow in the same loop
 * turn, but the service does not wait for them. */
static bool restart__act_first(struct recovery *r, const struct sup_exit *e)
{
    struct restart__state *st = restart__st(r);
    /* The start cap holds here too: a storm of deaths is paced by the queue. */
    const struct restart_cfg *rc = restart__cfg(r);
    if (!r->cfg->command || e->uptime_ms < rc->stable_ms ||
        r->ex->starting >= r->ex->max_starting || !restart_allowed(&st->policy, rc, restart__now()))
        return false;
    int err = supervisor_launch(r->sup, pace_spawner(r->ex->pace));
    st->prespawned = err == 0 || err == -EINPROGRESS;
    st->spawn_failed = !st->prespawned;
    if (st->prespawned)
        restart_delay(&st->policy, rc, e->uptime_ms); /* resets the backoff */
    return st->prespawned;
}

/* An external service's process that was to exit because of this restart
 * is not expected to any more: its next exit is a fault again. */
static void restart__unexpect(struct recovery *r)
{
    if (!r->cfg->command && r->sup->state == SUP_RUNNING && r->sup->stop_reason == STOP_RESTART)
        supervisor_event(r->sup, SUP_EV_STOP, STOP_NONE);
}

static void restart__cancel(struct recovery *r)
{
    struct restart__state *st = restart__st(r);
    st->launching = false; /* a launch in flight ends with the process up, unverified */
    program_cancel(st->program);
    st->program = NULL;
    restart__wait_end(st);
    restart__unexpect(r);
}

static void restart__reset(struct recovery *r)
{
    restart_policy_reset(&restart__st(r)->policy);
}

/* With no checks, a start is verified by running this long. */
static uint64_t restart__stable_ms(const struct recovery *r)
{
    return restart__cfg(r)->stable_ms;
}

/* Its intensity limit: what ends a crash loop. */
static void restart__limits(const struct recovery *r, json_t *context)
{
    const struct restart_cfg *rc = restart__cfg(r);
    json_object_set_new(context, "restart_max", json_integer(rc->max));
    json_object_set_new(context, "window_ms", json_integer((json_int_t)rc->window_ms));
}

static void restart__view(const struct recovery *r, struct jsonw *w)
{
    jsonw_key(w, "restarts");
    jsonw_int(w, restart__st(r)->restarts);
}

static void restart__release(struct recovery *r)
{
    struct restart__state *st = restart__st(r);
    restart__cancel(r);
    restart_policy_free(&st->policy);
}

const struct strategy_ops restart_strategy = {
    .id = STRATEGY_RESTART,
    .risk = "low",
    .starts_process = true,
    .state_size = sizeof(struct restart__state),
    .key = "restart",
    .fields = restart__fields,
    .params_size = sizeof(struct restart_cfg),
    .params_init = restart__params_init,
    .validate = restart__validate,
    .applicable = restart__applicable,
    .delay = restart__delay,
    .run = restart__run,
    .cancel = restart__cancel,
    .process_exited = restart__process_exited,
    .act_first = restart__act_first,
    .launched = restart__launched,
    .reset = restart__reset,
    .stable_ms = restart__stable_ms,
    .limits = restart__limits,
    .view = restart__view,
    .release = restart__release,
};
