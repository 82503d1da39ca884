/* A service at run time: its process, checks, open faults and the recovery
 * in progress. Types only. */
#ifndef RECOVERD_DAEMON_SERVICE_T_H
#define RECOVERD_DAEMON_SERVICE_T_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "lib/fault-t.h"
#include "lib/model-t.h"
#include "detect/check-t.h"
#include "recover/output-t.h"

struct daemon;
struct program;
struct service_cfg;

/* The supervision of the process (recover/process.c). */
#define PROC_STATE_MAP(X)                                                  \
    X(DOWN, "down") X(WAITING, "waiting") X(RUNNING, "running") X(STOPPING, "stopping")
enum proc_state {
#define X(e, s) PROC_##e,
    PROC_STATE_MAP(X)
#undef X
};

/* Why the process is being stopped: decides what its exit means. */
enum stop_reason {
    STOP_NONE,     /* not stopping: an exit is a fault */
    STOP_RESTART,  /* a restart action: spawn again after the exit */
    STOP_SHUTDOWN, /* recoverd or the service is going away */
};

/* One open fault per source; slot 0 is the process itself, slot i+1 is
 * check i, the last slot is the supervisor's own (restart limit reached). */
struct fault_slot {
    bool open;          /* a fault from this source is open */
    int64_t root;       /* a symptom: the open fault of a dependency that caused it; 0: none */
    struct fault fault; /* as journaled */
};

struct service {
    struct daemon *d;                /* owner */
    const struct service_cfg *cfg;   /* borrowed from the running config */
    char name[64];                   /* == cfg->name, kept across reloads */
    enum state state;                /* monitor/state.c */
    uint64_t state_ms;               /* wall ms of the last transition */

    enum proc_state proc_state;      /* supervision state */
    enum stop_reason stop_reason;    /* meaningful while PROC_STOPPING */
    uv_poll_t *exit_watch;           /* readable pidfd of the running process; freed in its close cb */
    pid_t pid;                       /* 0 when down */
    uint64_t spawned_us;             /* monotonic time of the last spawn */
    uint64_t spawned_ms;             /* wall time of the last spawn */
    bool has_exit;                   /* last_exit_* are meaningful */
    int64_t last_exit_code;          /* exit status of the last process */
    int last_exit_signal;            /* signal that ended it, 0 if none */
    uint64_t last_exit_ms;           /* wall time of that exit */
    unsigned restarts;               /* restarts since recoverd started */
    uint64_t last_uptime_ms;         /* how long the last process lived; 0 if it never ran */
    uint64_t *restart_log;           /* monotonic ms of recent restarts, cfg->restart.max + 1 slots */
    unsigned restart_log_len;        /* entries used, oldest first */
    uint64_t backoff_ms;             /* the next delay for a quick death */
    uv_timer_t timer;                /* backoff wait or stop grace */
    uv_timer_t verify_timer;         /* the verification deadline / no-check stability wait */
    struct output output;            /* stdout+stderr -> state_dir/logs/<name>.log */
    char **envp;                     /* environment for spawns (environ + cfg->env); NULL: inherit */

    struct check *checks;            /* n_checks, from cfg->checks */
    size_t n_checks;
    struct fault_slot *slots;        /* n_checks + 2 (see struct fault_slot) */

    bool action_active;              /* `action` is pending or executing */
    bool verifying;                  /* spawned; waiting for the checks to pass */
    struct action action;            /* the recovery in progress, or the last one */
    bool recovering;                 /* a plan is under way (an action or between two) */
    bool prespawned;                 /* the restart's process was spawned before its bookkeeping */
    int plan[STRATEGY__COUNT];       /* its strategies (enum strategy), in order */
    unsigned n_plan;                 /* entries of plan */
    unsigned step;                   /* the plan entry being tried */
    bool queued;                     /* its pending action waits for an executor slot */
    bool holds_slot;                 /* its executing action counts against the limit */
    uv_timer_t action_timer;         /* the executing action's deadline */
    uv_timer_t correlate_timer;      /* a failing check waits for its dependencies' faults */
    bool correlating;                /* check faults are held back until correlate_timer fires */
    struct program *program;         /* a strategy's program in flight (repair, external restart) */
    int program_step;                /* external stop+start: 0 stop running, 1 start running */
    bool held;                       /* maintenance: detection goes on, recovery pauses */
    uint64_t history_ms;             /* sum of its resolved faults' durations (journal + since) */
    uint64_t history_n;              /* how many: the estimate is history_ms / history_n */
    bool ready;                      /* verified (or given its chance) once: dependents may start */
    bool start_waiting;              /* its start waits for its dependencies to be ready */
    bool given_up;                   /* chain exhausted or restart limit: no automatic recovery */
    bool retired;                    /* removed by a reload; freed once its process is gone */
    struct service *replaces;        /* an older instance whose process must be gone before we start */
    int handles_open;                /* loop handles still to close before free */
};

#endif
