/* The parsed configuration. Types only; see config.h for functions. */
#ifndef RECOVERD_CONFIG_CONFIG_T_H
#define RECOVERD_CONFIG_CONFIG_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "lib/model-t.h"
#include "lib/spawn.h"

struct detector_ops;
struct cfg_field;
struct service_cfg;
struct ident_cfg;

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

/* What the loader needs of a strategy: the key it owns under a service and
 * its params. The strategies live above config/ (recover/); the composition
 * root hands them over in a struct cfg_registry. */
struct cfg_strategy {
    const char *key;                   /* its YAML key under a service: "repair"; NULL: none */
    const struct cfg_field *fields;    /* the keys of its mapping (NULL-key terminated) */
    size_t params_size;                /* bytes of the params struct fields fill; 0: none */
    void (*params_init)(void *params); /* preset defaults; may be NULL */
    /* The params as a whole, within their service (svc is read completely);
     * 0, or -EINVAL with words in why and, in *at, the key of its mapping
     * to point at (left NULL: the mapping). May be NULL. */
    int (*validate)(const void *params, const struct service_cfg *svc, char *why, size_t len,
                    const char **at);
    /* The user:/group: within params that its programs (its CFG_COMMAND
     * fields) run as, read by its own fields; NULL: they run as the service. */
    struct ident_cfg *(*ident)(void *params);
};

/* The kinds and strategies a configuration may name. */
struct cfg_registry {
    /* 0 with *out filled, or -ENOENT with *why (NULL or e.g. "plugin
     * recoverd-x.so not found"). */
    int (*check_kind)(const char *name, struct cfg_kind *out, const char **why);
    /* 0 with *out filled: the strategy (enum strategy) is implemented and a
     * chain may keep it; -ENOENT: not (yet). */
    int (*strategy_kind)(int strategy, struct cfg_strategy *out);
};

/* A place in the configuration file, for what is found after loading. */
struct cfg_pos {
    int line; /* 1-based; 0: unknown */
    int col;  /* 1-based */
};

/* user: and group: as written, and the credentials a program runs with.
 * The loader fills cred's umask, limits and no_new_privs (the service's);
 * the preflight (daemon/preflight.c) resolves the names into its ids,
 * off the loop. Until then a cred whose ids are wanted has error -EAGAIN,
 * so nothing it is for can run as recoverd's user by mistake. */
struct ident_cfg {
    char *user;              /* a name or a uid; NULL: the service's (a service: recoverd's) */
    char *group;             /* a name or a gid; NULL: the user's primary group */
    struct cfg_pos user_at;  /* where user: is written */
    struct cfg_pos group_at; /* where group: is written */
    gid_t *groups;           /* supplementary groups the preflight found; owned */
    struct spawn_cred cred;  /* what its programs run with; cred.groups borrowed */
};

enum cfg_need_kind {
    CFG_NEED_PROGRAM, /* path is a program `as` can execute (a bare name: found in PATH) */
    CFG_NEED_FILE,    /* path is a regular file recoverd can read */
    CFG_NEED_DIR,     /* path is a directory `as` can enter */
};

/* Something a service names that must exist and be usable when it runs,
 * checked by the preflight against whoever uses it. */
struct cfg_need {
    enum cfg_need_kind kind;
    char *path;                 /* absolute (config_load); a bare program name; owned */
    const struct ident_cfg *as; /* who uses it; NULL: recoverd itself; borrowed */
    char *what;                 /* the key that names it, for messages ("repair.command"); owned */
    struct cfg_pos at;          /* where it is written */
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
    int col;                        /* its column */
    struct ident_cfg ident; /* user:/group: of a check that runs a program; else the service's */
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
    int chain[STRATEGY__COUNT]; /* recovery: [...] overrides the rules for this service */
    unsigned n_chain;           /* 0: use the rules */
    uint64_t verify_ms;         /* a recovery must verify (checks pass) within this; default 30 s */
    uint64_t start_period_ms;   /* after a spawn, failures before a first pass do not count; 1 s */
    uint64_t flap_window_ms; /* a fault back this soon after its verification is reopened; 60 s */
    char *cwd;               /* absolute (config_load); NULL: recoverd's working directory */
    char **env; /* "KEY=value", NULL-terminated, added to recoverd's env; may be NULL */
    struct check_cfg *checks; /* n_checks entries */
    size_t n_checks;
    struct stop_cfg stop; /* how the supervisor stops its process */
    /* Each implemented strategy's params (read with config_strategy): its
     * mapping under the service, defaults where the key is absent. */
    void *strategy[STRATEGY__COUNT];                          /* owned */
    const struct cfg_field *strategy_fields[STRATEGY__COUNT]; /* their keys: to free, compare */
    /* Who the programs of strategy[st] run as, within it (NULL: the service's ident). */
    struct ident_cfg *strategy_ident[STRATEGY__COUNT];
    uint64_t log_max_bytes;   /* per-service output log rotated past this; default 10 MiB */
    struct cgroup_cfg cgroup; /* limits on its cgroup; all 0: none */
    int line;                 /* position in the config file */
    /* Least privilege: user:, group:, umask:, limits:, no_new_privs:. ident.cred is what the
     * process and, unless they say otherwise, its programs and checks run with. */
    struct ident_cfg ident;
    struct cfg_pos limit_at[SPAWN_LIMITS_MAX]; /* where each of ident.cred.limits is written */
    struct cfg_need *needs; /* n_needs programs, files, directories it names; owned */
    size_t n_needs;
    char *problem; /* the preflight's first problem ("file:line:col: error: ..."), owned; NULL:
                    * none. Such a service is failed with it and never runs anything */
};

struct webhook_cfg {
    char *url;            /* http:// or https:// endpoint receiving JSON POSTs */
    int min_severity;     /* enum severity; alerts below it are not sent; default high */
    uint64_t repeat_ms;   /* re-send an unresolved fault's alert after this; 0: never; default 1h */
    uint64_t timeout_ms;  /* per delivery attempt; default 5000 */
    unsigned retries;     /* failed attempts in a row before the webhook is reported failing
                           * (delivery goes on); default 5 */
    unsigned max_pending; /* messages waiting, at most; past it whole faults are dropped,
                           * oldest first; default 1000 */
};

struct alerts_cfg {
    struct webhook_cfg *webhooks; /* n_webhooks entries */
    size_t n_webhooks;
};

struct journal_cfg {
    uint64_t max_age_ms; /* journal.max_age: older history is pruned; default 30 days, > 0 */
    uint64_t max_bytes;  /* journal.max_size: its pages in use stay under this; default 256 MiB */
};

/* The API's TCP side; the Unix socket is always state_dir/api.sock. */
struct api_cfg {
    struct sockaddr_storage listen; /* api.listen; default 127.0.0.1:7411 */
    char **hostnames;  /* api.hostnames: what the Host header may name, NULL-terminated;
                        * NULL: 127.0.0.1, localhost, [::1] (each with or without the port) */
    bool allow_remote; /* api.allow_remote: a listen address other than loopback is accepted */
};

struct config {
    unsigned max_concurrent;                       /* max_concurrent_recoveries; default 3 */
    unsigned max_starting;                         /* unverified starts at once; default 64 */
    uint64_t action_timeout_ms;                    /* per action; default 60 s */
    int rules[FAULT_TYPE__COUNT][STRATEGY__COUNT]; /* fault type -> strategy chain (enum strategy)
                                                    */
    unsigned n_rules[FAULT_TYPE__COUNT];           /* length of each chain */
    char *path;         /* file it was read from ("<demo>" for the bundled one) */
    char *state_dir;    /* absolute (config_load); default statedir_default() */
    struct api_cfg api; /* api: { listen, hostnames, allow_remote } */
    uint64_t quiet_ms;  /* recovered -> normal after this long without faults; default 10000 */
    struct service_cfg *services; /* n_services entries, in file order */
    size_t n_services;
    struct alerts_cfg alerts;       /* alerts: { webhooks: [...] } */
    struct journal_cfg journal;     /* journal: { max_age, max_size } */
    const struct cfg_registry *reg; /* the kinds it was loaded with; borrowed */
    char **warnings;                /* "file:line:col: warning: ..." (NULL-terminated); owned */
    size_t n_warnings;
    bool preflighted; /* the preflight ran: creds resolved, problems set */
    /* The run of the ephemeral range recoverd's own connections take their
     * source ports from, free of the services' ports (daemon/ports.c sets
     * it); on false: the kernel's choice. */
    struct {
        bool on;
        unsigned lo, hi;
    } src_ports;
};

#endif
