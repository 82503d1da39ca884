/* What every check kind provides. A detector only reports observations
 * (check_report); it never decides, alerts or recovers. */
#ifndef RECOVERD_DETECT_DETECTOR_H
#define RECOVERD_DETECT_DETECTOR_H

#include <stddef.h>
#include <uv.h>

#include "core/cfgmap.h"
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

/* The registered kinds, by YAML name; NULL when unknown. */
const struct detector_ops *detector_find(const char *name);
/* The registered kinds' names, NULL-terminated. */
const char *const *detector_names(void);
/* Call every kind's init / shutdown. */
int detector_init_all(uv_loop_t *loop);
void detector_shutdown_all(void);

/* Deliver a probe result (sets latency from c->started_us). Implemented by
 * detect/check.c. */
void check_report(struct check *c, struct observation *obs);

#endif
