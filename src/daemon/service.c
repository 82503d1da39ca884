/* Service lifecycle. Ownership: the daemon owns services; a service owns
 * its checks, timers, output capture and process handle. */
#include "daemon/service.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/analyzer.h"
#include "config/config-t.h"
#include "daemon/daemon.h"
#include "lib/log.h"
#include "detect/check.h"
#include "recover/executor.h"
#include "recover/output.h"
#include "recover/process.h"

extern char **environ;

/* environ plus cfg->env; a cfg key replaces an inherited one. */
static char **service__envp(const struct service_cfg *cfg)
{
    if (!cfg->env)
        return NULL;
    size_t n = 0, m = 0;
    while (environ[n])
        n++;
    while (cfg->env[m])
        m++;
    char **envp = calloc(n + m + 1, sizeof *envp);
    if (!envp)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = strcspn(environ[i], "=");
        bool overridden = false;
        for (size_t j = 0; j < m && !overridden; j++)
            overridden = strncmp(cfg->env[j], environ[i], len) == 0 && cfg->env[j][len] == '=';
        if (!overridden)
            envp[k++] = environ[i];
    }
    for (size_t j = 0; j < m; j++)
        envp[k++] = cfg->env[j];
    return envp; /* the strings are borrowed: free only the array */
}

static void service__closed_cb(uv_handle_t *h)
{
    struct service *s = h->data;
    if (--s->handles_open == 0 && s->retired)
        daemon_service_gone(s->d, s);
}

static void service__output_closed_cb(struct output *o)
{
    struct service *s = (struct service *)((char *)o - offsetof(struct service, output));
    if (--s->handles_open == 0 && s->retired)
        daemon_service_gone(s->d, s);
}

struct service *service_new(struct daemon *d, const struct service_cfg *cfg)
{
    struct service *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->d = d;
    s->cfg = cfg;
    snprintf(s->name, sizeof s->name, "%s", cfg->name);
    s->state = STATE_NORMAL;
    s->backoff_ms = cfg->restart.backoff_initial_ms;
    s->restart_log = calloc(cfg->restart.max + 1, sizeof *s->restart_log);
    s->slots = calloc(cfg->n_checks + 2, sizeof *s->slots);
    s->envp = service__envp(cfg);
    if (!s->restart_log || !s->slots || (cfg->env && !s->envp) || check_init_all(s) < 0)
        goto fail;
    char path[4096];
    snprintf(path, sizeof path, "%s/logs/%s.log", d->cfg->state_dir, cfg->name);
    int r = output_open(&s->output, d->loop, path, cfg->log_max_bytes);
    if (r < 0) {
        log_event(LOG_ERROR, s->name, "log-open-failed", "path=%s error=\"%s\"", path,
                  strerror(-r));
        s->retired = true; /* nobody else knows it: free once its check timers close */
        if (s->handles_open == 0)
            service_free(s);
        else
            check_free_all(s);
        return NULL;
    }
    s->handles_open++; /* the output, as one unit */
    uv_timer_init(d->loop, &s->timer);
    uv_timer_init(d->loop, &s->verify_timer);
    uv_timer_init(d->loop, &s->action_timer);
    uv_timer_init(d->loop, &s->correlate_timer);
    s->timer.data = s->verify_timer.data = s->action_timer.data = s->correlate_timer.data = s;
    s->handles_open += 4;
    analyzer_adopt_open_faults(s);
    return s;
fail:
    free(s->checks);
    free(s->restart_log);
    free(s->slots);
    free(s->envp);
    free(s);
    return NULL;
}

void service_start(struct service *s)
{
    if (!daemon_dependencies_ready(s->d, s)) {
        s->start_waiting = true;
        log_event(LOG_INFO, s->name, "start-waiting", "why=\"dependencies not ready\"");
        return;
    }
    executor_service_start(s);
}

void service_stop(struct service *s, const char *why)
{
    s->start_waiting = false;
    s->correlating = false;
    uv_timer_stop(&s->correlate_timer);
    check_stop_all(s);
    uv_timer_stop(&s->timer);
    executor_abort(s, why);
    if (s->proc_state == PROC_WAITING)
        s->proc_state = PROC_DOWN;
    if (!s->cfg->command) {
        process_unwatch(s); /* recoverd never stops what it did not start */
        return;
    }
    process_stop(s, STOP_SHUTDOWN);
}

void service_rebind(struct service *s, const struct service_cfg *cfg)
{
    /* The environment's last entries borrow cfg->env's strings (see
     * service__envp): point them at the new, equal ones, so the old config
     * can be freed. */
    if (s->envp) {
        size_t n = 0, m = 0;
        while (s->envp[n])
            n++;
        while (cfg->env[m])
            m++;
        for (size_t j = 0; j < m; j++)
            s->envp[n - m + j] = cfg->env[j];
    }
    s->cfg = cfg;
    for (size_t i = 0; i < s->n_checks; i++)
        s->checks[i].cfg = &cfg->checks[i];
}

/* Why a new configuration cannot be applied to s in place, or NULL. In
 * the middle of a start, a recovery or a fault, the old checks and policy
 * own decisions under way; the service is replaced instead. */
static const char *service__busy(const struct service *s)
{
    if (s->action_active || s->recovering || s->verifying || s->correlating || s->program)
        return "a recovery is under way";
    if (analyzer_has_open(s))
        return "a fault is open";
    if (!s->ready || s->start_waiting || s->given_up)
        return "it is not running";
    bool has_process = s->cfg->command || s->cfg->pidfile;
    if (has_process && s->proc_state != PROC_RUNNING)
        return "it is not running";
    return NULL;
}

int service_reconfigure(struct service *s, const struct service_cfg *cfg, const char **why)
{
    if ((*why = service__busy(s)))
        return -EBUSY;
    *why = "out of memory";
    uint64_t *log = calloc(cfg->restart.max + 1, sizeof *log);
    struct fault_slot *slots = calloc(cfg->n_checks + 2, sizeof *slots);
    char **envp = service__envp(cfg);
    const struct service_cfg *old = s->cfg;
    s->cfg = cfg;
    if (!log || !slots || (cfg->env && !envp) || check_replace_all(s) < 0) {
        s->cfg = old;
        free(log);
        free(slots);
        free(envp);
        return -ENOMEM;
    }
    /* The newest restarts still count against the new limit. */
    unsigned keep = s->restart_log_len < cfg->restart.max + 1 ? s->restart_log_len
                                                                : cfg->restart.max + 1;
    memcpy(log, s->restart_log + (s->restart_log_len - keep), keep * sizeof *log);
    free(s->restart_log);
    s->restart_log = log;
    s->restart_log_len = keep;
    s->backoff_ms = cfg->restart.backoff_initial_ms;
    /* No fault is open (service__busy): nothing in the slots to carry. */
    free(s->slots);
    s->slots = slots;
    free(s->envp);
    s->envp = envp;
    check_start_all(s, 0);
    *why = NULL;
    return 0;
}

void service_close(struct service *s)
{
    check_free_all(s);
    uv_close((uv_handle_t *)&s->timer, service__closed_cb);
    uv_close((uv_handle_t *)&s->verify_timer, service__closed_cb);
    uv_close((uv_handle_t *)&s->action_timer, service__closed_cb);
    uv_close((uv_handle_t *)&s->correlate_timer, service__closed_cb);
    output_close(&s->output, service__output_closed_cb);
}

void service_free(struct service *s)
{
    if (!s)
        return;
    free(s->checks);
    free(s->restart_log);
    free(s->slots);
    free(s->envp);
    free(s);
}
