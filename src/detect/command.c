/* Command checks: a Nagios-compatible plugin per probe, judged by its exit
 * code (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN) and the first line of its
 * output. */
#include "detect/command.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config-t.h"
#include "detect/check-t.h"
#include "detect/kinds.h"
#include "lib/program.h"
#include "lib/text.h"

enum {
    COMMAND__OK = 0,
    COMMAND__WARNING = 1,
    COMMAND__CRITICAL = 2,
    COMMAND__UNKNOWN = 3,
};

static uv_loop_t *command__loop; /* the daemon's loop; borrowed */

static const struct cfg_field command__fields[] = {
    {"argv", CFG_COMMAND, offsetof(struct command_params, argv), 1, NULL},
    {NULL, 0, 0, 0, NULL},
};

/* The plugin's own words: its first line, without the performance data
 * after '|', trimmed. Copies at most len - 1 bytes; returns the length. */
static size_t command__summary(const char *out, size_t out_len, char *dst, size_t len)
{
    const char *end = memchr(out, '\n', out_len);
    const char *bar;
    size_t n = end ? (size_t)(end - out) : out_len;
    if ((bar = memchr(out, '|', n)))
        n = (size_t)(bar - out);
    while (n > 0 && (*out == ' ' || *out == '\t')) {
        out++;
        n--;
    }
    while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == '\t' || out[n - 1] == '\r'))
        n--;
    if (n >= len)
        n = len - 1;
    memcpy(dst, out, n);
    dst[n] = '\0';
    return n;
}

/* Judge one finished run by the Nagios plugin API. type is the fault type of
 * a CRITICAL, UNKNOWN or timed-out result (the check's `type`, software by
 * default); timeout_ms is for the words of a timeout; argv0 for those of a
 * program that could not start (a configuration fault). */
static void command__observe(const struct program_result *r, enum fault_type type,
                             uint64_t timeout_ms, const char *argv0, struct observation *obs)
{
    char line[sizeof obs->reason + 1]; /* longer than a reason: a cut shows in it */
    memset(obs, 0, sizeof *obs);
    obs->type = type;
    obs->severity = SEVERITY_MEDIUM;
    obs->code = -1;
    if (r->spawn_error) {
        /* The check itself is broken (missing plugin, not executable). */
        obs->type = FAULT_CONFIGURATION;
        obs->severity = SEVERITY_HIGH;
        text_format(obs->reason, sizeof obs->reason, "cannot start %s: %s", argv0,
                    strerror(-r->spawn_error));
        return;
    }
    if (r->timed_out) {
        snprintf(obs->reason, sizeof obs->reason, "timeout after %llu ms",
                 (unsigned long long)timeout_ms);
        return;
    }
    size_t n = command__summary(r->output, r->output_len, line, sizeof line);
    if (r->signal) {
        /* Nagios treats a plugin that dies as UNKNOWN. */
        text_format(obs->reason, sizeof obs->reason, "killed by signal %d (SIG%s)%s%s", r->signal,
                    sigabbrev_np(r->signal) ? sigabbrev_np(r->signal) : "?", n ? ": " : "", line);
        return;
    }
    obs->code = r->exit_code;
    obs->ok = r->exit_code == COMMAND__OK || r->exit_code == COMMAND__WARNING;
    if (r->exit_code == COMMAND__CRITICAL)
        obs->severity = SEVERITY_HIGH;
    if (!n)
        snprintf(line, sizeof line, "exit code %d", r->exit_code);
    /* A warning passes (it is not a fault) but says so where it is shown. */
    text_format(obs->reason, sizeof obs->reason, "%s%s",
                r->exit_code == COMMAND__WARNING ? "WARNING: " : "", line);
}

static void command__done_cb(const struct program_result *r, void *arg)
{
    struct check *c = arg;
    const struct command_params *cp = c->cfg->params;
    enum fault_type type = c->cfg->type >= 0 ? (enum fault_type)c->cfg->type : FAULT_SOFTWARE;
    struct observation obs;
    c->priv = NULL; /* first: check_report may start the next probe */
    command__observe(r, type, c->cfg->timeout_ms, cp->argv[0], &obs);
    check_report(c, &obs);
}

static int command__init(uv_loop_t *loop)
{
    command__loop = loop;
    return 0;
}

static void command__shutdown(void)
{
    command__loop = NULL;
}

static int command__start(struct check *c)
{
    const struct command_params *cp = c->cfg->params;
    if (!command__loop)
        return -EINVAL;
    if (c->priv)
        return -EBUSY;
    /* As the check's user (its own user:, else its service's). */
    c->priv = program_run_as(command__loop, cp->argv, NULL, NULL, &c->cfg->ident.cred,
                             c->cfg->timeout_ms, COMMAND_OUTPUT_MAX, command__done_cb, c);
    return c->priv ? 0 : -ENOMEM;
}

static void command__cancel(struct check *c)
{
    program_cancel(c->priv);
    c->priv = NULL;
}

/* detector_ops.fds: a run's output pipe (the read end) and its pidfd; the
 * spawn's own pipes close before the loop turns. */
static unsigned command__fds(const void *params)
{
    (void)params;
    return 2;
}

const struct detector_ops command_detector = {
    .name = "command",
    .fields = command__fields,
    .params_size = sizeof(struct command_params),
    .params_init = NULL,
    .validate = NULL, /* CFG_COMMAND already demands a non-empty list of strings */
    .init = command__init,
    .shutdown = command__shutdown,
    .start = command__start,
    .cancel = command__cancel,
    .release = command__cancel, /* only a run in flight is held */
    .fds = command__fds,
};
