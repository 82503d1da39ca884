/* The daemon, the composition root: one loop, the running configuration,
 * the services, the journal and the API. It owns everything else and is
 * the only place that connects detection, analysis, recovery and
 * monitoring. */
#ifndef RECOVERD_DAEMON_DAEMON_H
#define RECOVERD_DAEMON_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "analyze/analyzer.h"
#include "api/routes.h"
#include "config/config-t.h"
#include "daemon/loopwatch.h"
#include "lib/clock.h"
#include "lib/namemap.h"
#include "lib/statedir.h"
#include "monitor/state.h"
#include "recover/containment.h"
#include "recover/executor.h"

/* First starts one loop turn makes at most (each also within the slice's
 * time): each is a journal sync, a job and its thread's wake-up, and its
 * report follows a few turns on; the rest wait for the next turns. */
#define DAEMON_START_PER_TURN 4

struct journal;
struct reader;
struct api;
struct cfg_err;
struct alerter;
struct service;
struct daemon__reload;

/* The kinds and strategies of this build, for config_load. */
extern const struct cfg_registry daemon_registry;
/* config_load for a thread of the pool while the loop runs: it knows the
 * kinds built in and the plug-ins loaded already, and loads none. NULL
 * with *err, and *deferred when the file names a plug-in kind not loaded
 * yet (then load it on the loop with daemon_registry). */
struct config *daemon_config_load_off_loop(const char *path, struct cfg_err *err, bool *deferred);

struct daemon {
    uv_loop_t *loop;            /* the one loop */
    struct clock_src clock;     /* the loop's (lib/uvclock.h): the recoveries' time */
    struct config *cfg;         /* running configuration; owned */
    char *config_path;          /* NULL: the bundled demo configuration */
    struct journal *journal;    /* owned */
    struct reader *reader;      /* the API's journal reads, off the loop; NULL: on it. owned */
    struct api *api;            /* owned */
    struct api_backend backend; /* what the API answers from */
    struct service **services;  /* n_services, config order; owned */
    size_t n_services;
    struct namemap by_name;       /* live (not retired) services by name */
    struct service *leaving;      /* retired and closed, their handles still closing: out of
                                     services, freed by daemon_service_gone (service.leaving_next) */
    uv_idle_t start_slices;       /* starts services a slice per loop turn while active */
    uv_check_t start_resume;      /* resumes them once the spawner has room (after a poll) */
    size_t start_next;            /* the next index of services the slices look at */
    uv_idle_t create_slices;      /* makes the configured services a slice per loop turn */
    size_t create_next;           /* the next index of cfg->services the creation makes */
    bool creating;                /* the preflight or the slices run: not all services exist */
    uv_work_t preflight;          /* the start's preflight in the pool; data = this */
    int preflight_result;         /* its preflight_run's, written by the pool thread */
    bool reload_after_create;     /* a SIGHUP came while creating: reload once it is done */
    bool failed;                  /* the start failed after daemon_start returned: exit 1 */
    bool fresh;                   /* --fresh: stop a predecessor's processes, adopt none */
    uv_idle_t stop_slices;        /* stops services a slice per loop turn while active */
    size_t stop_next;             /* the next index of services the stop's slices look at */
    size_t quiet_next;            /* the next index of services whose checks the stop stops */
    size_t down_next;             /* stopping: services before it were stopped and are down */
    unsigned stop_slices_run;     /* the stop's slices so far, for the "stopped" line */
    uv_idle_t reload_slices;      /* applies a reload a slice per loop turn while active */
    uint64_t stop_began_ns;       /* uv_hrtime() at daemon_stop */
    size_t n_starting;            /* live services not started yet (service_count_starting) */
    bool code_shed;               /* start-up's code pages were unmapped (lib/heap.h) */
    struct monitor monitor;       /* the system's state */
    struct analysis analysis;     /* what the analyzer shares */
    struct executor executor;     /* slots and queue of the recoveries */
    struct pace pace;             /* a storm's exits and restarts, in slices of loop time */
    uv_prepare_t flush;           /* commits the journal's batch before the loop waits */
    uv_async_t journal_wake;      /* the checkpointer gave back the WAL writes waited for */
    uv_timer_t prune;             /* the journal's retention, a batch a tick */
    struct loopwatch loopwatch;   /* how long each turn holds the loop (/v1/status "loop") */
    struct statedir state;        /* checked and locked for the daemon's life */
    uv_signal_t sig_term;         /* graceful stop */
    uv_signal_t sig_int;          /* graceful stop */
    uv_signal_t sig_hup;          /* reload */
    uv_signal_t sig_quit;         /* exit leaving the services running */
    uint64_t started_ms;          /* wall ms */
    bool stopping;                /* shutdown in progress */
    bool detaching;               /* ... leaving the services running */
    char token[65];               /* the API token (state.path/token) */
    struct alerter *alerter;      /* webhooks; owned */
    bool detectors_up;            /* detector_init_all succeeded */
    bool monitor_up;              /* monitor_init succeeded */
    bool leftovers_pending;       /* a predecessor's processes are being stopped */
    struct config **old_cfg_list; /* configs replaced by reloads, kept while referenced */
    size_t n_old_cfg;
    struct daemon__reload *reload;  /* a reload whose preflight runs in the thread pool; owned */
    struct containment containment; /* what holds the services' processes */
    bool containment_up;            /* containment_init succeeded */
    bool swept;                     /* the shutdown sweep of strays has run or runs */
    bool sweeping;                  /* ... and is not over yet */
    bool closing;                   /* every service is down: closing them, in slices */
};

/* How recoverd was started (its command line). */
struct daemon_opts {
    enum containment_mode containment; /* AUTO: cgroup where possible */
    bool fresh; /* stop what a previous recoverd left running instead of adopting it */
};

/* Build the daemon from a loaded config (takes ownership of cfg): sets up
 * the containment, opens the journal and the API; in the loop's first
 * turns, in slices of a few milliseconds (the API answers from the first
 * turn), makes the services, adopts or stops what a predecessor left
 * (daemon/takeover.h), then starts the services.
 * Returns 0 or -errno with a message already logged; a failure in the
 * slices stops the daemon with d->failed set. */
int daemon_start(struct daemon *d, uv_loop_t *loop, struct config *cfg, const char *config_path,
                 const struct daemon_opts *opts);
/* Begin a graceful stop: every service is stopped (signal, grace, KILL),
 * in slices of a few milliseconds, one per loop turn; then every handle is
 * closed and the loop ends. */
void daemon_stop(struct daemon *d);
/* Exit leaving every service running, for the next recoverd to adopt (an
 * upgrade): nothing is signalled, the children's records stay. */
void daemon_detach(struct daemon *d);
/* Re-read the configuration; a config that fails validation is logged and
 * the running one stays. The file is loaded and preflighted (user names,
 * programs: daemon/preflight.h) in libuv's thread pool (on the loop only
 * when it names a plug-in kind not loaded yet), then applied service by
 * service in slices of a few milliseconds, one per loop turn; a reload
 * asked for meanwhile follows it, a stop cuts it short. 0 (under way, or
 * queued) or -errno. */
int daemon_reload(struct daemon *d);
/* After a service's process went down during a stop: finish when all are. */
void daemon_stop_progress(struct daemon *d);
/* Free what daemon_start built; the loop must have ended. */
void daemon_free(struct daemon *d);
/* The live service of that name (retired ones excluded), or NULL; O(1). */
struct service *daemon_service(struct daemon *d, const char *name);
/* s verified once (or had its chance): start the services waiting for it. */
void daemon_service_ready(struct daemon *d, struct service *s);
/* Every dependency of s is ready (or gone): O(1), from a count kept up
 * to date by daemon_service_ready and the links. */
bool daemon_dependencies_ready(struct daemon *d, const struct service *s);
/* A retired service is closing (service_close): it leaves d->services and
 * the dependency links at once, so that no walk over them meets a service
 * whose parts are closing, and waits in d->leaving (a stop waits for it). */
void daemon_service_closing(struct daemon *d, struct service *s);
/* Called when a service in d->leaving may be freed (its handles closed). */
void daemon_service_gone(struct daemon *d, struct service *s);
/* Live services not started yet (their turn, their dependencies, a
 * predecessor's leftovers or their predecessor instance still pending):
 * O(1), a count kept as services are added, started and retired. */
size_t daemon_services_starting(const struct daemon *d);
/* Configured services not made yet (the start makes them in slices, after
 * the API listens): counted among the services and those starting. */
size_t daemon_services_uncreated(const struct daemon *d);
/* Fill d->backend (the API's view of d). */
void daemon_backend_init(struct daemon *d);

#endif
