/* Check kinds loaded from plug-ins: detector.c asks here for any kind it does
 * not carry itself. The libraries behind a plug-in (libpq, hiredis...) cost
 * memory only once a configuration names its kind. */
#ifndef RECOVERD_DETECT_PLUGIN_H
#define RECOVERD_DETECT_PLUGIN_H

#include <stddef.h>
#include <uv.h>

#include "detect/detector.h"
#include "lib/plugin.h" /* plugin_dir_set, for tests */

#define DETECTOR_PLUGIN_MAX 8 /* kinds loaded at once; plug-ins are never unloaded */

/* The kind from "recoverd-<kind>.so" (lib/plugin.h), its entry point handed
 * host; loaded once and kept. NULL with detector_find_error() set when there
 * is no such plug-in or it is broken (not set when kind cannot be a name). */
const struct detector_ops *detector_plugin_find(const char *kind, const struct detector_host *host);
/* init every plug-in kind loaded so far; those loaded later init at once,
 * until detector_plugin_shutdown_all. 0 or the first failure (the others
 * are undone). */
int detector_plugin_init_all(uv_loop_t *loop);
void detector_plugin_shutdown_all(void);
/* The kind if its plug-in is loaded already, else NULL; loads nothing and
 * writes nothing (a reload's load in the thread pool asks this while the
 * loop runs). */
const struct detector_ops *detector_plugin_loaded(const char *kind);
/* The loaded kinds' names into out (at most max); returns how many. */
size_t detector_plugin_names(const char **out, size_t max);

#endif
