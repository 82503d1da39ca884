/* The start-up plan of recoverd's file descriptors. */
#include "daemon/fdbudget.h"

#include <sys/resource.h>

#include "lib/log.h"

/* Descriptors per item, counted in /proc/PID/fd of a running recoverd
 * (README, "API"): the worst moment of each, not its resting count. */
#define FD_BUDGET__BASE 16     /* stdio 3, loop 5, journal 3, API listeners 2 + reserve, slack */
#define FD_BUDGET__SERVICE 6   /* pidfd, output pipe, log file; a spawn's pipes while it runs */
#define FD_BUDGET__CHECK 4     /* a socket; a command check's pipes and pidfd */
#define FD_BUDGET__PROGRAM 4   /* a repair/start/stop program at once: pipes, pidfd */
#define FD_BUDGET__WEBHOOK 2   /* a delivery's socket (curl may hold one more) */
#define FD_BUDGET__TCP_MAX 256 /* the API's caps when descriptors are plenty */
#define FD_BUDGET__LOCAL_MAX 64
#define FD_BUDGET__TCP_MIN 16 /* ... and what they keep however short they are */
#define FD_BUDGET__LOCAL_MIN 8

static unsigned fd_budget__cap(unsigned long room, unsigned min, unsigned max)
{
    return room < min ? min : room > max ? max : (unsigned)room;
}

void fd_budget_plan(const struct config *cfg, struct fd_budget *out)
{
    struct rlimit rl = {.rlim_cur = RLIM_INFINITY};
    unsigned long checks = 0;
    getrlimit(RLIMIT_NOFILE, &rl);
    for (size_t i = 0; i < cfg->n_services; i++)
        checks += cfg->services[i].n_checks;
    *out = (struct fd_budget){
        .limit = rl.rlim_cur == RLIM_INFINITY ? (unsigned long)-1 : (unsigned long)rl.rlim_cur,
        .base = FD_BUDGET__BASE,
        .needed = cfg->n_services * FD_BUDGET__SERVICE + checks * FD_BUDGET__CHECK +
                  cfg->max_concurrent * FD_BUDGET__PROGRAM +
                  cfg->alerts.n_webhooks * FD_BUDGET__WEBHOOK,
    };
    unsigned long used = out->base + out->needed;
    unsigned long room = out->limit > used ? out->limit - used : 0;
    /* Three quarters of the room to TCP, a quarter to the operators' socket. */
    out->api_tcp = fd_budget__cap(room / 4 * 3, FD_BUDGET__TCP_MIN, FD_BUDGET__TCP_MAX);
    out->api_local = fd_budget__cap(room / 4, FD_BUDGET__LOCAL_MIN, FD_BUDGET__LOCAL_MAX);
    out->tight = out->limit < used + FD_BUDGET__TCP_MIN + FD_BUDGET__LOCAL_MIN;
}

void fd_budget_log(const struct fd_budget *b)
{
    log_event(LOG_INFO, NULL, "fd-budget", "nofile=%lu base=%lu services=%lu api=%u+%u", b->limit,
              b->base, b->needed, b->api_tcp, b->api_local);
    if (b->tight)
        log_event(LOG_WARN, NULL, "fd-budget-tight",
                  "nofile=%lu needed=%lu what=\"the configured services may not fit: starts, "
                  "checks and API clients can fail with EMFILE; raise the limit (ulimit -n, "
                  "LimitNOFILE=)\"",
                  b->limit, b->base + b->needed + FD_BUDGET__TCP_MIN + FD_BUDGET__LOCAL_MIN);
}
