/* What every check kind provides. A detector only reports observations
 * (check_report); it never decides, alerts or recovers. */
#ifndef RECOVERD_DETECT_DETECTOR_H
#define RECOVERD_DETECT_DETECTOR_H

#include <stddef.h>
#include <uv.h>

#include "config/cfgmap.h"
#include "config/config-t.h"
#include "detect/check-t.h"

struct detector_ops {
    const char *name;                /* the YAML key: "http", "tcp" */
    const struct cfg_field *fields;  /* the kind's own keys (NULL-key terminated) */
    size_t params_size;              /* bytes of the params struct fields fill */
    void (*params_init)(void *params); /* preset defaults before mapping; may be NULL */
    /* Check the mapped params as a whole (e.g. URL scheme); 0 or -EINVAL
     * with a message in why. May be NULL. */
    int (*validate)(const void *params, char *why, size_t len);
    int (*init)(uv_loop_t *loop);    /* once, before any start(); may be NULL */
    void (*shutdown)(void);          /* once, at exit, after every check is released; may be NULL */
    /* Begin one probe. Later, exactly once, call check_report() (from a loop
     * callback, never from inside start) unless cancel() runs first. 0 or -errno. */
    int (*start)(struct check *c);
    void (*cancel)(struct check *c); /* stop the probe in flight without reporting */
    void (*release)(struct check *c);/* free c->priv; the check is going away */
};

/* A kind that is not built in lives in a plug-in next to the executable,
 * "recoverd-<kind>.so", whose entry point "recoverd_detector_<kind>" returns
 * its ops. The plug-in may call back only what the executable exports
 * (RECOVERD_PLUGIN_EXPORTS in CMakeLists.txt: check_report...). */
#define DETECTOR_PLUGIN_FILE_FMT "recoverd-%s.so"
#define DETECTOR_PLUGIN_ENTRY_FMT "recoverd_detector_%s"
typedef const struct detector_ops *(*detector_plugin_entry)(void);

/* The kind named name: built in, or loaded from its plug-in on first use (and
 * started at once if detector_init_all already ran). NULL when unknown; then
 * detector_find_error() says why. */
const struct detector_ops *detector_find(const char *name);
/* Why the latest detector_find failed, e.g. "plugin recoverd-x.so not found";
 * NULL when it succeeded. Borrowed until the next detector_find. */
const char *detector_find_error(void);
/* The kinds built in and loaded so far, NULL-terminated; valid until the
 * next detector_find. */
const char *const *detector_names(void);
/* The config loader's view of kind name (struct cfg_registry.check_kind):
 * 0 with *out filled, or -ENOENT with *why. */
int detector_cfg_kind(const char *name, struct cfg_kind *out, const char **why);
/* Call every kind's init / shutdown (plug-ins loaded so far included). */
int detector_init_all(uv_loop_t *loop);
void detector_shutdown_all(void);

/* Deliver a probe result (sets latency from c->started_us). Implemented by
 * detect/check.c. */
void check_report(struct check *c, struct observation *obs);

#endif
