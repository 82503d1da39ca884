/* The parsed configuration. Types only; see config.h for functions. */
#ifndef RECOVERD_CONFIG_CONFIG_T_H
#define RECOVERD_CONFIG_CONFIG_T_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "lib/model-t.h"

struct detector_ops;

struct check_cfg {
    char *name;                     /* unique within the service; default: the kind ("http", "tcp", "http2"...) */
    const struct detector_ops *ops; /* the check kind */
    void *params;                   /* ops->params_size bytes filled from ops->fields; owned */
    uint64_t interval_ms;           /* between probe starts; default 1000 */
    uint64_t timeout_ms;            /* per probe; default 1000, must be > 0 */
    unsigned fall;                  /* consecutive failures that open a fault; default 3 (>= 1) */
    unsigned rise;                  /* consecutive successes that clear it; default 2 (>= 1) */
    int severity;                   /* enum severity override, -1: the detector decides */
    int type;                       /* enum fault_type override, -1: the detector decides */
    int impact;                     /* enum impact override, -1: the detector decides */
    int line;                       /* position in the config file, for messages */
};

struct restart_cfg {
    unsigned max;                /* restarts allowed within window; default 5 */
    uint64_t window_ms;          /* default 60000 */
    uint64_t stable_ms;          /* uptime after which a death restarts at once; default 1000 */
    uint64_t backoff_initial_ms; /* default 100 */
    uint64_t backoff_max_ms;     /* default 10000 */
};

struct stop_cfg {
    int signal;        /* default SIGTERM */
    uint64_t grace_ms; /* before SIGKILL; default 5000 */
};

struct repair_cfg {
    char **command;            /* argv of the repair program; NULL: no repair strategy */
    uint64_t timeout_ms;       /* the program is killed (whole group) after this; default 60 s */
};

/* A service is supervised (command: recoverd starts it), external (pidfile:
 * someone else starts it; start/stop/restart programs act on it) or
 * watched only (neither: its checks alone). */
struct service_cfg {
    char *name;                /* the key under services: */
    char **command;            /* argv, NULL-terminated; NULL: not supervised */
    char *pidfile;             /* external service: its pid is read from here */
    char **start_cmd;          /* external: argv that starts it; may be NULL */
    char **stop_cmd;           /* external: argv that stops it; may be NULL */
    char **restart_cmd;        /* external: argv that restarts it; NULL: stop then start */
    char **depends_on;         /* names of services this one needs; may be NULL */
    struct repair_cfg repair;  /* the repair strategy */
    int chain[STRATEGY__COUNT];/* recovery: [...] overrides the rules for this service */
    unsigned n_chain;          /* 0: use the rules */
    uint64_t verify_ms;        /* a recovery must verify (checks pass) within this; default 30 s */
    char *cwd;                 /* NULL: recoverd's working directory */
    char **env;                /* "KEY=value", NULL-terminated, added to recoverd's env; may be NULL */
    struct check_cfg *checks;  /* n_checks entries */
    size_t n_checks;
    struct restart_cfg restart;
    struct stop_cfg stop;
    uint64_t log_max_bytes;    /* per-service output log rotated past this; default 10 MiB */
    int line;                  /* position in the config file */
};

struct webhook_cfg {
    char *url;              /* http:// or https:// endpoint receiving JSON POSTs */
    int min_severity;       /* enum severity; alerts below it are not sent; default high */
    uint64_t repeat_ms;     /* re-send an unresolved fault's alert after this; 0: never; default 1h */
    uint64_t timeout_ms;    /* per delivery attempt; default 5000 */
    unsigned retries;       /* attempts after the first, with exponential backoff; default 5 */
};

struct alerts_cfg {
    struct webhook_cfg *webhooks; /* n_webhooks entries */
    size_t n_webhooks;
};

struct config {
    unsigned max_concurrent;        /* max_concurrent_recoveries; default 3 */
    uint64_t action_timeout_ms;     /* per action; default 60 s */
    int rules[FAULT_TYPE__COUNT][STRATEGY__COUNT]; /* fault type -> strategy chain (enum strategy) */
    unsigned n_rules[FAULT_TYPE__COUNT];           /* length of each chain */
    char *path;                     /* file it was read from ("<demo>" for the bundled one) */
    char *state_dir;                /* default "./var" */
    struct sockaddr_storage api;    /* api.listen; default 127.0.0.1:7411 */
    uint64_t quiet_ms;              /* recovered -> normal after this long without faults; default 10000 */
    struct service_cfg *services;   /* n_services entries, in file order */
    size_t n_services;
    struct alerts_cfg alerts;       /* alerts: { webhooks: [...] } */
};

#endif
