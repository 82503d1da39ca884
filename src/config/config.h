/* Loading and validating the YAML configuration. */
#ifndef RECOVERD_CONFIG_CONFIG_H
#define RECOVERD_CONFIG_CONFIG_H

#include <stdbool.h>

#include "config/cfgmap.h"
#include "config/config-t.h"

/* Parse the file at path; reg (borrowed, must outlive the config) names
 * the check kinds and strategies there are. Warnings (a strategy dropped
 * from a chain...) are in c->warnings. Relative paths (every CFG_PATH:
 * state_dir, pidfile, cwd, password_file) become absolute against the
 * file's directory; so does a program given by a relative path (argv[0]
 * with a '/'), against the service's cwd when it has one; the needs the
 * preflight checks (struct cfg_need) are taken from the resolved paths.
 * Returns a new config (free with config_free), or NULL with err filled
 * (file:line:col and what was expected). */
struct config *config_load(const char *path, const struct cfg_registry *reg, struct cfg_err *err);
/* Same from a string in memory; `name` is used as the file in messages.
 * The text has no directory: its relative paths stay as written. */
struct config *config_load_string(const char *name, const char *yaml, size_t len,
                                  const struct cfg_registry *reg, struct cfg_err *err);
void config_free(struct config *c);

/* Same command, environment, checks and policies: a reload can keep the
 * running process of a service whose configuration did not change. */
bool config_service_equal(const struct service_cfg *a, const struct service_cfg *b);
/* Same process: command, pidfile, cwd, environment, output log, and the
 * rights it runs with (user and group as written and as resolved, umask,
 * limits, no_new_privs; the preflight's problem). Checks, policies and
 * recovery may differ; a reload applies those in place. */
bool config_process_equal(const struct service_cfg *a, const struct service_cfg *b);
bool config_check_equal(const struct check_cfg *a, const struct check_cfg *b);
/* What config_process_equal compares, hashed into text: kept beside a
 * child's record, so that a restarted recoverd adopts a process only if
 * its configuration would start the same one. */
#define CONFIG_FINGERPRINT_LEN 17
void config_process_fingerprint(const struct service_cfg *s, char out[CONFIG_FINGERPRINT_LEN]);

const struct service_cfg *config_service(const struct config *c, const char *name);

/* The params of strategy (enum strategy) for service s, as its cfg_strategy
 * describes them: never NULL for an implemented strategy of a loaded
 * configuration (defaults when its key is absent), NULL otherwise.
 * Borrowed from s. The one way a strategy reads its configuration. */
const void *config_strategy(const struct service_cfg *s, int strategy);

#endif
