/* The start-up plan of recoverd's file descriptors. */
#include "daemon/fdbudget.h"

#include <stdio.h>
#include <sys/resource.h>

#include "detect/detector.h"
#include "lib/log.h"

/* Descriptors per item, counted in /proc/PID/fd of a running recoverd
 * (README, "API"): the worst moment of each, not its resting count. A
 * spawn's pipes and the files read at once (/proc, cgroup files) close
 * before the loop turns, and the loop has one thread: they are base. */
/* stdio 3, loop 5, journal 3, API listeners 2 + reserve, a spawn's pipes, a
 * cgroup dir and /proc reads, slack */
#define FD_BUDGET__BASE 24
#define FD_BUDGET__SERVICE 4   /* pidfd, the FIFO's two ends (recoverd's, children's), log */
#define FD_BUDGET__CHECK 4     /* a kind that does not say (detector_ops.fds) */
#define FD_BUDGET__PROGRAM 2   /* a repair/start/stop program at once: its pipe, its pidfd */
#define FD_BUDGET__WEBHOOK 2   /* a delivery's socket (curl may hold one more) */
#define FD_BUDGET__TCP_MAX 256 /* the API's caps when descriptors are plenty */
#define FD_BUDGET__LOCAL_MAX 64
#define FD_BUDGET__TCP_MIN 16 /* ... and what they keep however short they are */
#define FD_BUDGET__LOCAL_MIN 8

static unsigned fd_budget__cap(unsigned long room, unsigned min, unsigned max)
{
    return room < min ? min : room > max ? max : (unsigned)room;
}

static unsigned long fd_budget__check(const struct check_cfg *c)
{
    return c->ops && c->ops->fds ? c->ops->fds(c->params) : FD_BUDGET__CHECK;
}

/* The per-user cap on inotify watches; 0 when it cannot be read. */
static unsigned long fd_budget__watches_max(void)
{
    unsigned long v = 0;
    FILE *f = fopen("/proc/sys/fs/inotify/max_user_watches", "re");
    if (f) {
        if (fscanf(f, "%lu", &v) != 1)
            v = 0;
        fclose(f);
    }
    return v;
}

void fd_budget_plan(const struct config *cfg, bool cgroup, struct fd_budget *out)
{
    struct rlimit rl = {.rlim_cur = RLIM_INFINITY};
    unsigned long n = cfg->n_services, held = n * FD_BUDGET__SERVICE;
    getrlimit(RLIMIT_NOFILE, &rl);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < cfg->services[i].n_checks; k++)
            held += fd_budget__check(&cfg->services[i].checks[k]);
    /* Whatever the number of services: programs, webhooks, the API's least. */
    unsigned long fixed = FD_BUDGET__BASE + cfg->max_concurrent * FD_BUDGET__PROGRAM +
                          cfg->alerts.n_webhooks * FD_BUDGET__WEBHOOK + FD_BUDGET__TCP_MIN +
                          FD_BUDGET__LOCAL_MIN;
    *out = (struct fd_budget){
        .limit = rl.rlim_cur == RLIM_INFINITY ? (unsigned long)-1 : (unsigned long)rl.rlim_cur,
        .base = FD_BUDGET__BASE,
        .services = n,
        .per_service = n ? (held + n - 1) / n : 0,
        .needed = held + cfg->max_concurrent * FD_BUDGET__PROGRAM +
                  cfg->alerts.n_webhooks * FD_BUDGET__WEBHOOK,
        .watches = cgroup ? n : 0,
        .watches_max = cgroup ? fd_budget__watches_max() : 0,
    };
    unsigned long used = out->base + out->needed;
    unsigned long room = out->limit > used ? out->limit - used : 0;
    /* Three quarters of the room to TCP, a quarter to the operators' socket. */
    out->api_tcp = fd_budget__cap(room / 4 * 3, FD_BUDGET__TCP_MIN, FD_BUDGET__TCP_MAX);
    out->api_local = fd_budget__cap(room / 4, FD_BUDGET__LOCAL_MIN, FD_BUDGET__LOCAL_MAX);
    out->tight = out->limit < used + FD_BUDGET__TCP_MIN + FD_BUDGET__LOCAL_MIN;
    out->fit = !out->per_service    ? n
               : out->limit > fixed ? (out->limit - fixed) / out->per_service
                                    : 0;
}

void fd_budget_log(const struct fd_budget *b)
{
    log_event(LOG_INFO, NULL, "fd-budget",
              "nofile=%lu base=%lu services=%lu per_service=%lu needed=%lu api=%u+%u "
              "inotify_watches=%lu inotify_max=%lu",
              b->limit, b->base, b->services, b->per_service, b->needed, b->api_tcp, b->api_local,
              b->watches, b->watches_max);
    if (b->tight)
        log_event(LOG_WARN, NULL, "fd-budget-tight",
                  "nofile=%lu needed=%lu fit=%lu services=%lu what=\"the configured services "
                  "may not fit: starts, checks and API clients can fail with EMFILE; raise the "
                  "limit (ulimit -n, LimitNOFILE=)\"",
                  b->limit, b->base + b->needed + FD_BUDGET__TCP_MIN + FD_BUDGET__LOCAL_MIN, b->fit,
                  b->services);
    if (b->watches_max && b->watches > b->watches_max)
        log_event(LOG_WARN, NULL, "inotify-budget-tight",
                  "watches=%lu max=%lu what=\"stopping every service at once (shutdown, "
                  "reload) waits on one inotify watch per cgroup; raise "
                  "fs.inotify.max_user_watches\"",
                  b->watches, b->watches_max);
}
