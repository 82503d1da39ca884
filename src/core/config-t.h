/* The parsed configuration. Types only; see config.h for functions. */
#ifndef RECOVERD_CORE_CONFIG_T_H
#define RECOVERD_CORE_CONFIG_T_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

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

struct service_cfg {
    char *name;                /* the key under services: */
    char **command;            /* argv, NULL-terminated; required */
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
    char *path;                     /* file it was read from ("<demo>" for the bundled one) */
    char *state_dir;                /* default "./var" */
    struct sockaddr_storage api;    /* api.listen; default 127.0.0.1:7411 */
    uint64_t quiet_ms;              /* recovered -> normal after this long without faults; default 10000 */
    struct service_cfg *services;   /* n_services entries, in file order */
    size_t n_services;
    struct alerts_cfg alerts;       /* alerts: { webhooks: [...] } */
};

#endif
