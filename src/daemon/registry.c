/* The kinds and strategies of this build, for the configuration loader:
 * config/ sits below detect/ and recover/, so the root hands them over. */
#include "daemon/daemon.h"

#include <errno.h>

#include "config/config.h"
#include "detect/detector.h"
#include "lib/plugin.h"
#include "recover/strategy.h"

const struct cfg_registry daemon_registry = {
    .check_kind = detector_cfg_kind,
    .strategy_kind = strategy_cfg_kind,
};

/* Set by a load in this thread that named a plug-in kind not loaded yet. */
static _Thread_local bool registry__deferred;

/* Built-in and loaded kinds only: a plug-in is loaded (and started) on the
 * loop, so a kind that needs one defers the load to it. */
static int registry__check_kind_loaded(const char *name, struct cfg_kind *out, const char **why)
{
    *why = NULL;
    if (detector_cfg_kind_loaded(name, out) == 0)
        return 0;
    if (plugin_name_ok(name)) {
        registry__deferred = true;
        *why = "its plug-in is not loaded yet";
    }
    return -ENOENT;
}

static const struct cfg_registry registry__off_loop = {
    .check_kind = registry__check_kind_loaded,
    .strategy_kind = strategy_cfg_kind,
};

struct config *daemon_config_load_off_loop(const char *path, struct cfg_err *err, bool *deferred)
{
    registry__deferred = false;
    struct config *c = config_load(path, &registry__off_loop, err);
    *deferred = !c && registry__deferred;
    return c;
}
