/* recoverd's file descriptors: what RLIMIT_NOFILE allows against what the
 * configuration may hold at once, said in the start-up log, and the API's
 * share of what is left (so a crowd of API clients cannot take the
 * descriptors a restart needs). */
#ifndef RECOVERD_DAEMON_FDBUDGET_H
#define RECOVERD_DAEMON_FDBUDGET_H

#include <stdbool.h>

#include "config/config-t.h"

struct fd_budget {
    unsigned long limit;       /* RLIMIT_NOFILE in force (soft), descriptors */
    unsigned long base;        /* held whatever the configuration: stdio, the loop, the journal,
                                * the API's listeners and reserve */
    unsigned long needed;      /* at most held at once by the services, their checks, programs and
                                * webhooks (an estimate from measured counts per item) */
    unsigned long services;    /* configured */
    unsigned long per_service; /* a service and its checks, rounded up */
    unsigned long fit;         /* services of that size the limit holds beside the rest */
    unsigned long watches;     /* inotify watches at most (cgroup mode: one per service whose
                                * stop waits for its cgroup to empty); 0: none used */
    unsigned long watches_max; /* fs.inotify.max_user_watches; 0: not read (none used) */
    unsigned api_tcp;          /* TCP connections the API may hold */
    unsigned api_local;        /* Unix-socket connections the API may hold */
    bool tight;                /* limit < base + needed + the API's minimum: the configuration
                                * may not fit */
};

/* Plan cfg's descriptors (and, with cgroup containment, inotify watches) under the current
 * RLIMIT_NOFILE (read after any raise: detect/http.c raises the soft limit to the hard one). */
void fd_budget_plan(const struct config *cfg, bool cgroup, struct fd_budget *out);
/* One info line (fd-budget ...), and a warning when the plan is tight. */
void fd_budget_log(const struct fd_budget *b);

#endif
