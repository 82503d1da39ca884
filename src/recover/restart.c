/* Restart intensity and backoff, after Erlang/OTP's supervisor: at most
 * `max` restarts within `window`, and a process that dies before it was
 * `stable` waits longer each time so a crash loop cannot spin the host. */
#include "recover/restart.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/analyzer.h"
#include "lib/clock.h"
#include "config/config-t.h"
#include "daemon/daemon.h"
#include "lib/log.h"
#include "lib/program.h"
#include "daemon/service-t.h"
#include "detect/check.h"
#include "recover/executor.h"
#include "recover/process.h"
#include "recover/strategy.h"

bool restart_allowed(struct service *s, uint64_t now_ms)
{
    const struct restart_cfg *rc = &s->cfg->restart;
    unsigned keep = 0;
    for (unsigned i = 0; i < s->restart_log_len; i++)
        if (now_ms - s->restart_log[i] < rc->window_ms)
            s->restart_log[keep++] = s->restart_log[i];
    s->restart_log_len = keep;
    return s->restart_log_len < rc->max;
}

void restart_record(struct service *s, uint64_t now_ms)
{
    unsigned cap = s->cfg->restart.max + 1;
    if (s->restart_log_len == cap) {
        memmove(s->restart_log, s->restart_log + 1, (cap - 1) * sizeof *s->restart_log);
        s->restart_log_len--;
    }
    s->restart_log[s->restart_log_len++] = now_ms;
}

uint64_t backoff_jitter(uint64_t ms)
{
    if (ms < 5)
        return ms;
    /* Jitter spreads restarts of services that died together (shared cause). */
    uint64_t span = ms * 2 / 5;
    return ms - ms / 5 + (uint64_t)random() % (span + 1); /* jitter, never an outcome */
}

uint64_t restart_delay(struct service *s, uint64_t uptime_ms)
{
    const struct restart_cfg *rc = &s->cfg->restart;
    if (uptime_ms >= rc->stable_ms) {
        s->backoff_ms = rc->backoff_initial_ms;
        return 0;
    }
    uint64_t delay = backoff_jitter(s->backoff_ms);
    s->backoff_ms = s->backoff_ms * 2 > rc->backoff_max_ms ? rc->backoff_max_ms : s->backoff_ms * 2;
    if (s->backoff_ms == 0)
        s->backoff_ms = rc->backoff_initial_ms;
    return delay;
}

/* ---- the strategy ---- */

static const char *restart__unavailable(const struct service *s)
{
    static char why[96];
    const struct service_cfg *c = s->cfg;
    if (!c->command && !(c->pidfile && (c->restart_cmd || c->start_cmd)))
        return "not configured (no command, and no restart or start program)";
    uint64_t now = clock_mono_us() / 1000;
    unsigned recent = 0;
    for (unsigned i = 0; i < s->restart_log_len; i++)
        recent += now - s->restart_log[i] < s->cfg->restart.window_ms;
    if (recent < s->cfg->restart.max)
        return NULL;
    snprintf(why, sizeof why, "restart limit reached (%u restarts within %llu ms)",
             s->cfg->restart.max, (unsigned long long)s->cfg->restart.window_ms);
    return why;
}

void restart_spawn(struct service *s)
{
    s->proc_state = PROC_DOWN;
    int r = process_spawn(s);
    char result[256];
    if (r == 0) {
        snprintf(result, sizeof result, "spawned pid %d", (int)s->pid);
        executor_executed(s, EXEC_OK, result);
        return;
    }
    /* The command cannot run: a fault with the reason; the executor's retry
     * backs off like a crash loop, so a missing binary costs no CPU. */
    s->has_exit = false;
    s->last_uptime_ms = 0;
    analyzer_spawn_failed(s, r);
    snprintf(result, sizeof result, "cannot start %s: %s", s->cfg->command[0], strerror(-r));
    executor_executed(s, EXEC_RETRY, result);
}

static void restart__backoff_cb(uv_timer_t *t)
{
    struct service *s = t->data;
    if (s->proc_state == PROC_WAITING)
        restart_spawn(s);
}

/* ---- external services: restart (or stop, then start) programs ---- */

#define RESTART__OUTPUT_MAX 2048
#define RESTART__PIDFILE_POLL_MS 50

static void restart__program(struct service *s, char **argv);

/* After the program: wait for the pidfile to name a live process. */
static void restart__pidfile_cb(uv_timer_t *t)
{
    struct service *s = t->data;
    char result[256];
    if (process_watch_pidfile(s) == 0) {
        snprintf(result, sizeof result, "restarted: pid %d (from %s)", (int)s->pid,
                 s->cfg->pidfile);
        executor_executed(s, EXEC_OK, result);
        return;
    }
    uint64_t waited = (clock_mono_us() - s->spawned_us) / 1000;
    if (waited < s->cfg->verify_ms) {
        uv_timer_start(&s->timer, restart__pidfile_cb, RESTART__PIDFILE_POLL_MS, 0);
        return;
    }
    snprintf(result, sizeof result, "no live process in %s within %llu ms after the program",
             s->cfg->pidfile, (unsigned long long)s->cfg->verify_ms);
    executor_executed(s, EXEC_FAILED, result);
}

/* The programs of an external restart: `restart`, else `stop` then
 * `start` (either may be absent). program_step 1 is the `start` after a
 * `stop`. */
static const char *restart__program_name(const struct service *s)
{
    const struct service_cfg *c = s->cfg;
    return c->restart_cmd ? "restart" : (s->program_step == 0 && c->stop_cmd) ? "stop" : "start";
}

static void restart__program_done(const struct program_result *r, void *arg)
{
    struct service *s = arg;
    const struct service_cfg *c = s->cfg;
    char result[256];
    s->program = NULL;
    if (r->spawn_error || r->timed_out || r->signal || r->exit_code != 0) {
        if (r->spawn_error)
            snprintf(result, sizeof result, "cannot run the %s program: %s",
                     restart__program_name(s), strerror(-r->spawn_error));
        else
            snprintf(result, sizeof result, "%s program %s (exit %d): %.*s",
                     restart__program_name(s), r->timed_out ? "timed out" : "failed",
                     r->exit_code, (int)strcspn(r->output, "\n"), r->output);
        executor_executed(s, EXEC_FAILED, result);
        return;
    }
    if (!c->restart_cmd && s->program_step == 0 && c->stop_cmd && c->start_cmd) {
        s->program_step = 1;
        restart__program(s, c->start_cmd);
        return;
    }
    s->spawned_us = clock_mono_us(); /* the pidfile wait is measured from here */
    restart__pidfile_cb(&s->timer);
}

static void restart__program(struct service *s, char **argv)
{
    s->program = program_run(s->d->loop, argv, s->envp, s->cfg->cwd, s->d->cfg->action_timeout_ms,
                             RESTART__OUTPUT_MAX, restart__program_done, s);
    program_keep_group(s->program); /* what it starts is the service */
    if (!s->program)
        executor_executed(s, EXEC_FAILED, "restart program: out of memory");
}

/* The old process will exit because of us: not a fault. recoverd never
 * signals an external service itself; its programs do. */
static void restart__external(struct service *s)
{
    const struct service_cfg *c = s->cfg;
    s->stop_reason = STOP_RESTART;
    s->program_step = 0;
    snprintf(s->action.params, sizeof s->action.params, "{\"program\":\"%s\"}",
             c->restart_cmd ? "restart" : c->stop_cmd ? "stop+start" : "start");
    restart__program(s, c->restart_cmd ? c->restart_cmd : c->stop_cmd ? c->stop_cmd
                                                                        : c->start_cmd);
}

static void restart__run(struct service *s)
{
    uint64_t now = clock_mono_us() / 1000;
    char result[256];
    if (!restart_allowed(s, now)) {
        snprintf(result, sizeof result, "restart limit reached: %u restarts within %llu ms",
                 s->cfg->restart.max, (unsigned long long)s->cfg->restart.window_ms);
        executor_executed(s, EXEC_FAILED, result);
        return;
    }
    if (!s->cfg->command) {
        restart_record(s, now);
        s->restarts++;
        restart__external(s);
        return;
    }
    if (s->prespawned) { /* executor_process_exited already spawned it */
        s->prespawned = false;
        restart_delay(s, s->last_uptime_ms); /* resets the backoff: it ran past stable */
        restart_record(s, now);
        s->restarts++;
        snprintf(s->action.params, sizeof s->action.params,
                 "{\"delay_ms\":0,\"attempt\":%u,\"stop\":false}", s->restart_log_len);
        snprintf(result, sizeof result, "spawned pid %d", (int)s->pid);
        executor_executed(s, EXEC_OK, result);
        return;
    }
    bool running = s->proc_state == PROC_RUNNING || s->proc_state == PROC_STOPPING;
    uint64_t delay = running ? 0 : restart_delay(s, s->last_uptime_ms);
    restart_record(s, now);
    s->restarts++;
    snprintf(s->action.params, sizeof s->action.params,
             "{\"delay_ms\":%llu,\"attempt\":%u,\"stop\":%s}", (unsigned long long)delay,
             s->restart_log_len, running ? "true" : "false");
    if (running) {
        check_stop_all(s);
        process_stop(s, STOP_RESTART); /* the exit calls restart_spawn */
    } else if (delay == 0) {
        restart_spawn(s);
    } else {
        s->proc_state = PROC_WAITING;
        uv_timer_start(&s->timer, restart__backoff_cb, delay, 0);
    }
}

static void restart__cancel(struct service *s)
{
    program_cancel(s->program);
    s->program = NULL;
    if (!s->cfg->command)
        uv_timer_stop(&s->timer);
    if (s->proc_state == PROC_WAITING) {
        uv_timer_stop(&s->timer);
        s->proc_state = PROC_DOWN;
    }
}

const struct strategy_ops restart_strategy = {
    .id = STRATEGY_RESTART,
    .unavailable = restart__unavailable,
    .run = restart__run,
    .cancel = restart__cancel,
};
