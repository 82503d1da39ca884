/* The repair strategy: run the service's configured repair program (argv,
 * timeout, output captured into the action's result). Exit 0 means the
 * repair ran; the executor then verifies that the checks pass again. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config-t.h"
#include "daemon/daemon.h"
#include "lib/log.h"
#include "lib/program.h"
#include "recover/executor.h"
#include "recover/strategy.h"

#define REPAIR__OUTPUT_MAX 4096

static const char *repair__unavailable(const struct service *s)
{
    return s->cfg->repair.command ? NULL : "not configured";
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

static void repair__done(const struct program_result *r, void *arg)
{
    struct service *s = arg;
    char result[256];
    s->program = NULL;
    repair__summary(r, result, sizeof result);
    log_event(LOG_INFO, s->name, "repair-finished", "result=\"%s\"", result);
    bool ok = !r->spawn_error && !r->timed_out && !r->signal && r->exit_code == 0;
    executor_executed(s, ok ? EXEC_OK : EXEC_FAILED, result);
}

static void repair__run(struct service *s)
{
    const struct repair_cfg *rc = &s->cfg->repair;
    json_t *params = json_pack("{s:s, s:I}", "program", rc->command[0], "timeout_ms",
                               (json_int_t)rc->timeout_ms);
    char *txt = json_dumps(params, JSON_COMPACT);
    snprintf(s->action.params, sizeof s->action.params, "%s", txt ? txt : "{}");
    free(txt);
    json_decref(params);
    s->program = program_run(s->d->loop, rc->command, s->envp, s->cfg->cwd, rc->timeout_ms,
                                REPAIR__OUTPUT_MAX, repair__done, s);
    if (!s->program)
        executor_executed(s, EXEC_FAILED, "repair program: out of memory");
}

static void repair__cancel(struct service *s)
{
    program_cancel(s->program);
    s->program = NULL;
}

const struct strategy_ops repair_strategy = {
    .id = STRATEGY_REPAIR,
    .unavailable = repair__unavailable,
    .run = repair__run,
    .cancel = repair__cancel,
};
