/* Check kinds from plug-ins: which are loaded, and their start and stop.
 * Kept apart from detector.c (which only asks detector_plugin_find) so that
 * a test faking detector_find still links with config.c, which reports
 * detector_find_error. The loading itself is lib/plugin.c's. */
#include "detect/plugin.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static struct {
    const struct detector_ops *ops[DETECTOR_PLUGIN_MAX]; /* loaded kinds, in load order */
    bool up[DETECTOR_PLUGIN_MAX]; /* ops[i]->init succeeded and shutdown has not run */
    size_t n;                     /* entries used */
    uv_loop_t *loop;              /* between init_all and shutdown_all; borrowed */
    char err[PATH_MAX + 128];     /* why the latest find failed; "" when it did not */
} detector_plugin__g;

const char *detector_find_error(void)
{
    return detector_plugin__g.err[0] ? detector_plugin__g.err : NULL;
}

/* Ask the plug-in's entry point for its ops, and check they are the kind's. */
static const struct detector_ops *detector_plugin__load(const char *kind,
                                                        const struct detector_host *host)
{
    char sym[sizeof DETECTOR_PLUGIN_ENTRY_FMT + PLUGIN_NAME_MAX];
    char *err = detector_plugin__g.err;
    size_t len = sizeof detector_plugin__g.err;
    detector_plugin_entry entry;
    const struct detector_ops *ops;
    snprintf(sym, sizeof sym, DETECTOR_PLUGIN_ENTRY_FMT, kind);
    if (!(*(void **)&entry = plugin_load(kind, sym, err, len)))
        return NULL;
    ops = entry(host);
    if (!ops || !ops->name || strcmp(ops->name, kind) != 0 || !ops->start) {
        snprintf(err, len, "plugin " PLUGIN_FILE_FMT ": %s gives no kind '%s'", kind, sym, kind);
        return NULL;
    }
    return ops;
}

const struct detector_ops *detector_plugin_find(const char *kind, const struct detector_host *host)
{
    const struct detector_ops *ops;
    int r;
    detector_plugin__g.err[0] = '\0';
    for (size_t i = 0; i < detector_plugin__g.n; i++)
        if (strcmp(detector_plugin__g.ops[i]->name, kind) == 0)
            return detector_plugin__g.ops[i];
    if (!plugin_name_ok(kind))
        return NULL; /* a typo, not a plug-in: nothing more to say */
    if (detector_plugin__g.n == DETECTOR_PLUGIN_MAX) {
        snprintf(detector_plugin__g.err, sizeof detector_plugin__g.err,
                 "more than %d plug-in kinds", DETECTOR_PLUGIN_MAX);
        return NULL;
    }
    if (!(ops = detector_plugin__load(kind, host)))
        return NULL;
    /* Loaded by a reload while the daemon runs: start it now. */
    if (detector_plugin__g.loop && ops->init && (r = ops->init(detector_plugin__g.loop)) < 0) {
        snprintf(detector_plugin__g.err, sizeof detector_plugin__g.err,
                 "plugin " PLUGIN_FILE_FMT ": cannot start: %s", kind, strerror(-r));
        return NULL;
    }
    detector_plugin__g.up[detector_plugin__g.n] = detector_plugin__g.loop != NULL;
    detector_plugin__g.ops[detector_plugin__g.n++] = ops;
    return ops;
}

const struct detector_ops *detector_plugin_loaded(const char *kind)
{
    for (size_t i = 0; i < detector_plugin__g.n; i++)
        if (strcmp(detector_plugin__g.ops[i]->name, kind) == 0)
            return detector_plugin__g.ops[i];
    return NULL;
}

int detector_plugin_init_all(uv_loop_t *loop)
{
    int r;
    for (size_t i = 0; i < detector_plugin__g.n; i++) {
        if (detector_plugin__g.up[i])
            continue;
        if (detector_plugin__g.ops[i]->init && (r = detector_plugin__g.ops[i]->init(loop)) < 0) {
            detector_plugin_shutdown_all();
            return r;
        }
        detector_plugin__g.up[i] = true;
    }
    detector_plugin__g.loop = loop;
    return 0;
}

void detector_plugin_shutdown_all(void)
{
    for (size_t i = detector_plugin__g.n; i-- > 0;) {
        if (detector_plugin__g.up[i] && detector_plugin__g.ops[i]->shutdown)
            detector_plugin__g.ops[i]->shutdown();
        detector_plugin__g.up[i] = false;
    }
    detector_plugin__g.loop = NULL;
}

size_t detector_plugin_names(const char **out, size_t max)
{
    size_t n = detector_plugin__g.n < max ? detector_plugin__g.n : max;
    for (size_t i = 0; i < n; i++)
        out[i] = detector_plugin__g.ops[i]->name;
    return n;
}
