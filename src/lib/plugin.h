/* Plug-ins: "recoverd-<name>.so" next to the executable, loaded on first
 * use and never unloaded; the one dlopen of the tree. A plug-in calls
 * nothing of the executable by name: its entry point is handed a table of
 * the host's functions (e.g. struct detector_host), so the executable
 * exports no symbols and a plug-in cannot reach any other internal. */
#ifndef RECOVERD_LIB_PLUGIN_H
#define RECOVERD_LIB_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>

#define PLUGIN_NAME_MAX 32               /* bytes of a plug-in name */
#define PLUGIN_FILE_FMT "recoverd-%s.so" /* the file of plug-in %s */

/* The name goes into a file name: lower-case letters, digits and '_' only,
 * 1 to PLUGIN_NAME_MAX of them, so a configuration cannot load
 * "../../tmp/x.so". */
bool plugin_name_ok(const char *name);

/* The address of the entry point `symbol` of plug-in `name`, loading it on
 * first use; remembered, so later calls cost a table lookup. NULL with the
 * reason in err: "plugin recoverd-x.so not found", "plugin recoverd-x.so:
 * <the loader's words>", "plugin recoverd-x.so: no <symbol>". Failures
 * are not remembered: a plug-in installed later is found. */
void *plugin_load(const char *name, const char *symbol, char *err, size_t len);

/* Where plug-ins are looked for; NULL restores the default, the directory
 * of /proc/self/exe. Forgets what was remembered (libraries stay mapped).
 * For tests. */
void plugin_dir_set(const char *dir);

#endif
