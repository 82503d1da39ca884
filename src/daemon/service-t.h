/* A service at run time: a holder of one part per layer, each layer's
 * functions taking their own part. The composition root (daemon/) wires
 * the parts together with sinks. Types only. */
#ifndef RECOVERD_DAEMON_SERVICE_T_H
#define RECOVERD_DAEMON_SERVICE_T_H

#include <stdbool.h>

#include "analyze/analyzer.h"
#include "detect/check-t.h"
#include "monitor/state.h"
#include "recover/executor.h"
#include "recover/supervisor.h"

struct daemon;
struct service_cfg;

struct service {
    struct daemon *d;              /* owner */
    const struct service_cfg *cfg; /* borrowed from the running config */
    char name[64];                 /* == cfg->name (at most 63: config), kept across reloads */
    struct svc_state st;           /* monitor: its state machine */
    struct check_set checks;       /* detect: its checks */
    struct faults faults;          /* analyze: its open faults */
    struct supervisor sup;         /* recover: its process */
    struct recovery rec;           /* recover: its recovery */
    bool start_waiting;            /* its start waits for its dependencies to be ready */
    bool retired;                  /* removed by a reload; freed once its process is gone */
    bool started;                  /* service_start ran (a replacement waits before it) */
    bool counted_starting;         /* counted in d->n_starting (service_count_starting) */
    struct service *replaces;      /* an older instance whose process must be gone first */
    struct service *replaced_by;   /* the instance whose replaces is this one, if any */
    struct service **dependents;   /* services that depend on it (n_dependents); owned array */
    size_t n_dependents;
    size_t deps_waiting; /* its dependencies (links to them) not ready yet */
    bool ready_told;     /* its dependents counted it ready (daemon_service_ready) */
    struct service *leaving_prev, *leaving_next; /* in d->leaving: retired, closing */
};

#endif
