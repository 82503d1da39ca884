/* What every check kind provides. A detector only reports observations
 * (check_report); it never decides, alerts or recovers. */
#ifndef RECOVERD_DETECT_DETECTOR_H
#define RECOVERD_DETECT_DETECTOR_H

#include <arpa/inet.h>
#include <stddef.h>
#include <sys/socket.h>
#include <uv.h>

#include "config/cfgmap.h"
#include "config/config-t.h"
#include "detect/check-t.h"
#include "lib/lookup.h"

struct detector_ops {
    const char *name;                  /* the YAML key: "http", "tcp" */
    const struct cfg_field *fields;    /* the kind's own keys (NULL-key terminated) */
    size_t params_size;                /* bytes of the params struct fields fill */
    void (*params_init)(void *params); /* preset defaults before mapping; may be NULL */
    /* Check the mapped params as a whole (e.g. URL scheme); 0 or -EINVAL
     * with a message in why. May be NULL. */
    int (*validate)(const void *params, char *why, size_t len);
    int (*init)(uv_loop_t *loop); /* once, before any start(); may be NULL */
    void (*shutdown)(void);       /* once, at exit, after every check is released; may be NULL */
    /* Begin one probe. Later, exactly once, call check_report() (from a loop
     * callback, never from inside start) unless cancel() runs first. 0 or -errno. */
    int (*start)(struct check *c);
    void (*cancel)(struct check *c);  /* stop the probe in flight without reporting */
    void (*release)(struct check *c); /* free c->priv; the check is going away */
    /* How long a healthy service may take before this check can pass (a
     * resource check's `for:`): a verification waits that much longer. May
     * be NULL: 0. */
    uint64_t (*settle_ms)(const void *params);
    /* The descriptors one check of these params holds at its worst moment
     * (a socket, a program's pipe and pidfd), for the start-up budget
     * (daemon/fdbudget.c). May be NULL: a generous guess. */
    unsigned (*fds)(const void *params);
    /* The host (an IP literal or a name, as written) and TCP port the check
     * connects to, for the review of ports at load (daemon/ports.c): 1 with
     * them filled, 0 when it names none. May be NULL. */
    int (*target)(const void *params, char *host, size_t len, unsigned *port);
};

/* What the executable lends a detector plug-in. The plug-in calls back
 * only through this table, handed to its entry point: the executable
 * exports nothing, and a plug-in cannot grow a dependency on any other
 * internal. */
struct detector_host {
    void (*report)(struct check *c, struct observation *obs); /* check_report */
    int (*lookup_start)(uv_loop_t *loop, const char *host, lookup_cb cb, void *arg,
                        struct lookup **out); /* lib/lookup.h */
    void (*lookup_cancel)(struct lookup *l);  /* lib/lookup.h */
    /* Before connect() on a TCP socket the kind made itself: keep its
     * source port off the services' ports (lib/srcport.h). 0 or -errno. */
    int (*srcport_apply)(int fd, int family);
};

/* The executable's table: check_report and lib/lookup. */
extern const struct detector_host detector_host;

/* A kind that is not built in lives in the plug-in "recoverd-<kind>.so"
 * next to the executable (lib/plugin.h), whose entry point
 * "recoverd_detector_<kind>" is given the host and returns the kind's ops. */
#define DETECTOR_PLUGIN_ENTRY_FMT "recoverd_detector_%s"
typedef const struct detector_ops *(*detector_plugin_entry)(const struct detector_host *host);

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
/* The same among the kinds built in or loaded already, loading nothing:
 * safe off the loop while no load runs on it. 0 or -ENOENT. */
int detector_cfg_kind_loaded(const char *name, struct cfg_kind *out);
/* Call every kind's init / shutdown (plug-ins loaded so far included). */
int detector_init_all(uv_loop_t *loop);
void detector_shutdown_all(void);

/* Deliver a probe result (sets latency from c->started_us). Implemented by
 * detect/check.c. */
void check_report(struct check *c, struct observation *obs);

/* A detector_ops.target for a check whose params hold the address it
 * connects to: its host and port; 0 for another family. Inline: plug-ins
 * (redis) call no symbol of the executable. */
static inline int detector_target_of(const struct sockaddr_storage *sa, char *host, size_t len,
                                     unsigned *port)
{
    if (sa->ss_family == AF_INET6) {
        uv_ip6_name((const struct sockaddr_in6 *)sa, host, len);
        *port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    } else if (sa->ss_family == AF_INET) {
        uv_ip4_name((const struct sockaddr_in *)sa, host, len);
        *port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
    } else {
        return 0;
    }
    return 1;
}

#endif
