/* Check kinds loaded from plug-ins: detector.c asks here for any kind it does
 * not carry itself. The libraries behind a plug-in (libpq, hiredis...) cost
 * memory only once a configuration names its kind. */
#ifndef RECOVERD_DETECT_PLUGIN_H
#define RECOVERD_DETECT_PLUGIN_H

#include <stddef.h>
#include <uv.h>

#include "detect/detector.h"

#define PLUGIN_MAX 8 /* kinds loaded at once; plug-ins are never unloaded */

/* The kind from "<dir>/recoverd-<kind>.so", loaded once and kept; NULL with
 * detector_find_error() set when there is no such plug-in or it is broken. */
const struct detector_ops *plugin_find(const char *kind);
/* init every plug-in loaded so far; those loaded later init at once, until
 * plugin_shutdown_all. 0 or the first failure (the others are undone). */
int plugin_init_all(uv_loop_t *loop);
void plugin_shutdown_all(void);
/* The loaded kinds' names into out (at most max); returns how many. */
size_t plugin_names(const char **out, size_t max);
/* Where plug-ins are looked for; NULL restores the default, the directory of
 * /proc/self/exe. For tests. */
void plugin_dir_set(const char *dir);

#endif
