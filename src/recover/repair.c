/* The repair strategy: run the service's configured repair program (argv,
 * timeout, output captured into the action's result). Exit 0 means the
 * repair ran; the executor then verifies that the checks pass again. */
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "lib/fault.h"
#include "lib/log.h"
#include "lib/program.h"
#include "recover/executor.h"
#include "recover/strategy.h"
#include "recover/supervisor.h"

#define REPAIR__OUTPUT_MAX 4096

/* repair: { command, timeout, user, group } of a service. */
struct repair_cfg {
    char **command;         /* argv of the repair program; NULL: no repair strategy */
    uint64_t timeout_ms;    /* the program is killed (whole group) after this; default 60 s */
    struct ident_cfg ident; /* user:/group: override; else the service's (config/ fills cred) */
};

static const struct cfg_field repair__fields[] = {
    {"command", CFG_COMMAND, offsetof(struct repair_cfg, command), 1, NULL},
    {"timeout", CFG_DURATION, offsetof(struct repair_cfg, timeout_ms), 0, NULL},
    {"user", CFG_STRING, offsetof(struct repair_cfg, ident.user), 0, NULL},
    {"group", CFG_STRING, offsetof(struct repair_cfg, ident.group), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

static void repair__params_init(void *params)
{
    ((struct repair_cfg *)params)->timeout_ms = 60000;
}

static struct ident_cfg *repair__ident(void *params)
{
    return &((struct repair_cfg *)params)->ident;
}

static const struct repair_cfg *repair__cfg(const struct recovery *r)
{
    return config_strategy(r->cfg, STRATEGY_REPAIR);
}

struct repair__state {
    struct program *program; /* in flight */
};

static struct repair__state *repair__st(const struct recovery *r)
{
    return r->priv[STRATEGY_REPAIR];
}

static struct strategy_no repair__applicable(const struct recovery *r)
{
    return (struct strategy_no){repair__cfg(r)->command ? NULL : "not configured", true};
}

/* The first line of the output, for the one-line result. */
static void repair__summary(const struct program_result *r, char *buf, size_t len)
{
    char line[160] = "";
    if (r->output_len) {
        size_t n = strcspn(r->output, "\n");
        snprintf(line, sizeof line, ": %.*s", (int)(n < 150 ? n : 150), r->output);
    }
    if (r->spawn_error)
        snprintf(buf, len, "repair program cannot start: %s", strerror(-r->spawn_error));
    else if (r->timed_out)
        snprintf(buf, len, "repair program timed out after %llu ms%s",
                 (unsigned long long)r->duration_ms, line);
    else if (r->signal)
        snprintf(buf, len, "repair program killed by signal %d%s", r->signal, line);
    else
        snprintf(buf, len, "repair program exited with code %d after %llu ms%s", r->exit_code,
                 (unsigned long long)r->duration_ms, line);
}

static void repair__done(const struct program_result *res, void *arg)
{
    struct recovery *r = arg;
    char result[256];
    repair__st(r)->program = NULL;
    repair__summary(res, result, sizeof result);
    log_event(LOG_INFO, r->service, "repair-finished", "result=\"%s\"", result);
    bool ok = !res->spawn_error && !res->timed_out && !res->signal && res->exit_code == 0;
    recovery_executed(r, ok ? EXEC_OK : EXEC_FAILED, result);
}

static void repair__run(struct recovery *r)
{
    const struct repair_cfg *rc = repair__cfg(r);
    action_set_params(&r->action, json_pack("{s:s, s:I}", "program", rc->command[0], "timeout_ms",
                                            (json_int_t)rc->timeout_ms));
    struct program *p = program_run_as(r->loop, rc->command, r->sup->envp, r->cfg->cwd,
                                       &rc->ident.cred, rc->timeout_ms, REPAIR__OUTPUT_MAX,
                                       repair__done, r);
    repair__st(r)->program = p;
    if (!p)
        recovery_executed(r, EXEC_FAILED, "repair program: out of memory");
}

static void repair__cancel(struct recovery *r)
{
    program_cancel(repair__st(r)->program);
    repair__st(r)->program = NULL;
}

const struct strategy_ops repair_strategy = {
    .id = STRATEGY_REPAIR,
    .risk = "medium",
    .state_size = sizeof(struct repair__state),
    .key = "repair",
    .fields = repair__fields,
    .params_size = sizeof(struct repair_cfg),
    .params_init = repair__params_init,
    .ident = repair__ident,
    .applicable = repair__applicable,
    .run = repair__run,
    .cancel = repair__cancel,
    .release = repair__cancel,
};
