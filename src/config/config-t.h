/* The parsed configuration. Types only; see config.h for functions. */
#ifndef RECOVERD_CONFIG_CONFIG_T_H
#define RECOVERD_CONFIG_CONFIG_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "lib/model-t.h"

struct detector_ops;
struct cfg_field;

/* What the loader needs of a check kind: its keys. The kinds live above
 * config/ (detect/, plug-ins); the composition root hands them over in a
 * struct cfg_registry. */
struct cfg_kind {
    const struct detector_ops *ops;    /* opaque here: stored in check_cfg.ops */
    const char *name;                  /* the YAML key: "http", "tcp" */
    const struct cfg_field *fields;    /* its own keys (NULL-key terminated) */
    size_t params_size;                /* bytes of the params struct fields fill */
    void (*params_init)(void *params); /* preset defaults; may be NULL */
    /* the params as a whole; 0 or -EINVAL with words in why. May be NULL. */
    int (*validate)(const void *params, char *why, size_t len);
};

/* The kinds and strategies a configuration may name. */
struct cfg_registry {
    /* 0 with *out filled, or -ENOENT with *why (NULL or e.g. "plugin
     * recoverd-x.so not found"). */
    int (*check_kind)(const char *name, struct cfg_kind *out, const char **why);
    /* The strategy (enum strategy) is implemented: a chain may keep it. */
    bool (*strategy_exists)(int strategy);
};

struct check_cfg {
    char *name;                     /* unique within the service, a name like a service's;
                                     * default: the kind ("http", "tcp", "http2"...) */
    const struct detector_ops *ops; /* the check kind (opaque to config/) */
    const char *kind;               /* its name */
    const struct cfg_field *fields; /* its keys, describing params */
    void *params;                   /* the kind's params, filled from fields; owned */
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

/* Limits on a supervised service's own cgroup, where the cgroup v2
 * controllers exist (a warning at start where they do not). */
struct cgroup_cfg {
    uint64_t memory_max;    /* memory.max, bytes; 0: no limit */
    unsigned pids_max;      /* pids.max, processes; 0: no limit */
    uint64_t cpu_quota_us;  /* cpu.max quota per period; UINT64_MAX: "max" */
    uint64_t cpu_period_us; /* cpu.max period; 0: no cpu limit */
};

struct repair_cfg {
    char **command;      /* argv of the repair program; NULL: no repair strategy */
    uint64_t timeout_ms; /* the program is killed (whole group) after this; default 60 s */
};

/* A service is supervised (command: recoverd starts it), external (pidfile:
 * someone else starts it; start/stop/restart programs act on it) or
 * watched only (neither: its checks alone). */
struct service_cfg {
    char *name;                 /* the key under services: */
    char **command;             /* argv, NULL-terminated; NULL: not supervised */
    char *pidfile;              /* external service: its pid is read from here */
    char **start_cmd;           /* external: argv that starts it; may be NULL */
    char **stop_cmd;            /* external: argv that stops it; may be NULL */
    char **restart_cmd;         /* external: argv that restarts it; NULL: stop then start */
    char **depends_on;          /* names of services this one needs; may be NULL */
    struct repair_cfg repair;   /* the repair strategy */
    int chain[STRATEGY__COUNT]; /* recovery: [...] overrides the rules for this service */
    unsigned n_chain;           /* 0: use the rules */
    uint64_t verify_ms;         /* a recovery must verify (checks pass) within this; default 30 s */
    uint64_t start_period_ms;   /* after a spawn, failures before a first pass do not count; 1 s */
    uint64_t flap_window_ms; /* a fault back this soon after its verification is reopened; 60 s */
    char *cwd;               /* NULL: recoverd's working directory */
    char **env; /* "KEY=value", NULL-terminated, added to recoverd's env; may be NULL */
    struct check_cfg *checks; /* n_checks entries */
    size_t n_checks;
    struct restart_cfg restart;
    struct stop_cfg stop;
    uint64_t log_max_bytes;   /* per-service output log rotated past this; default 10 MiB */
    struct cgroup_cfg cgroup; /* limits on its cgroup; all 0: none */
    int line;                 /* position in the config file */
};

struct webhook_cfg {
    char *url;           /* http:// or https:// endpoint receiving JSON POSTs */
    int min_severity;    /* enum severity; alerts below it are not sent; default high */
    uint64_t repeat_ms;  /* re-send an unresolved fault's alert after this; 0: never; default 1h */
    uint64_t timeout_ms; /* per delivery attempt; default 5000 */
    unsigned retries;    /* attempts after the first, with exponential backoff; default 5 */
};

struct alerts_cfg {
    struct webhook_cfg *webhooks; /* n_webhooks entries */
    size_t n_webhooks;
};

struct config {
    unsigned max_concurrent;                       /* max_concurrent_recoveries; default 3 */
    uint64_t action_timeout_ms;                    /* per action; default 60 s */
    int rules[FAULT_TYPE__COUNT][STRATEGY__COUNT]; /* fault type -> strategy chain (enum strategy)
                                                    */
    unsigned n_rules[FAULT_TYPE__COUNT];           /* length of each chain */
    char *path;                  /* file it was read from ("<demo>" for the bundled one) */
    char *state_dir;             /* default "./var" */
    struct sockaddr_storage api; /* api.listen; default 127.0.0.1:7411 */
    uint64_t quiet_ms; /* recovered -> normal after this long without faults; default 10000 */
    struct service_cfg *services; /* n_services entries, in file order */
    size_t n_services;
    struct alerts_cfg alerts;       /* alerts: { webhooks: [...] } */
    const struct cfg_registry *reg; /* the kinds it was loaded with; borrowed */
    char **warnings;                /* "file:line:col: warning: ..." (NULL-terminated); owned */
    size_t n_warnings;
};

#endif
