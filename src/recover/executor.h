/* The recovery executor. Each service has a recovery: one state, one
 * table (idle, correlating, pending, executing, verifying, gave up; a hold
 * is a flag). A fault gets a plan (a chain of strategies from the
 * analyzer); its actions run within the concurrency limit and their
 * deadlines, each is verified (the checks pass again), a failure escalates
 * to the next strategy, and an exhausted chain gives up until an operator
 * acts. Every step is journaled. */
#ifndef RECOVERD_RECOVER_EXECUTOR_H
#define RECOVERD_RECOVER_EXECUTOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lib/clock.h"
#include "lib/fault-t.h"
#include "lib/model-t.h"
#include "recover/pace.h"

struct alerter;
struct check;
struct check_set;
struct config;
struct faults;
struct journal;
struct jsonw;
struct observation;
struct service_cfg;
struct strategy_ops;
struct sup_exit;
struct supervisor;
struct svc_state;

#define RECOVERY_STATE_MAP(X)                                                                      \
    X(IDLE, "idle")                                                                                \
    X(CORRELATING, "correlating")                                                                  \
    X(PENDING, "pending")                                                                          \
    X(EXECUTING, "executing")                                                                      \
    X(VERIFYING, "verifying")                                                                      \
    X(GAVE_UP, "gave-up")
enum recovery_state {
#define X(e, s) REC_##e,
    RECOVERY_STATE_MAP(X)
#undef X
        REC__COUNT
};

#define RECOVERY_EVENT_MAP(X)                                                                      \
    X(START, "start")                                                                              \
    X(CHECK_FAILING, "check-failing")                                                              \
    X(CHECK_REPORTED, "check-reported")                                                            \
    X(EXITED, "exited")                                                                            \
    X(TIMER, "timer")                                                                              \
    X(SLOT, "slot")                                                                                \
    X(EXECUTED, "executed")                                                                        \
    X(HOLD, "hold")                                                                                \
    X(RELEASE, "release")                                                                          \
    X(OPERATOR, "operator")                                                                        \
    X(DEP_RECOVERED, "dependency-recovered")                                                       \
    X(ABORT, "abort")
enum recovery_event {
#define X(e, s) REC_EV_##e,
    RECOVERY_EVENT_MAP(X)
#undef X
        REC_EV__COUNT
};

/* How a strategy's execution ended (recovery_executed). */
enum exec_outcome {
    EXEC_OK,     /* done: verify it */
    EXEC_FAILED, /* did not work: the next strategy */
    EXEC_RETRY,  /* the process died or could not start: the same strategy again, if allowed */
};

/* Shared by every service: the slots and the queue. */
struct executor {
    struct journal *journal; /* borrowed */
    struct alerter *alerter; /* borrowed */
    /* The strategies, by enum strategy (NULL: not implemented): recoverd's
     * strategy_table, a test's fakes. Borrowed. */
    const struct strategy_ops *const *strategies;
    unsigned max_executing;     /* max_concurrent_recoveries: actions stopping, spawning, running */
    unsigned executing;         /* actions holding a slot now */
    unsigned max_starting;      /* recoveries starting a process, until it is verified */
    unsigned starting;          /* now */
    uint64_t action_timeout_ms; /* an action executing longer fails */
    struct recovery *queue;     /* due actions waiting for a slot: first attempts first */
    /* Shared with the supervisors (borrowed; NULL: slots are given at
     * once): a slot given runs the action, a restart's spawn, so a storm's
     * queue is run in slices of loop time; a queued action stays pending. */
    struct pace *pace;
    struct pace_job dequeue_job; /* the queue's next slice, while deferred */
    bool stopping;               /* recoverd is stopping: no automatic recovery */
};

/* What a recovery tells its owner (the composition root). */
struct recovery_sink {
    void (*ready)(void *ctx);     /* verified (or had its chance) once: dependents may start */
    void (*recovered)(void *ctx); /* its faults resolved: dependents re-check */
    void (*closed)(void *ctx);    /* one loop handle closed */
    void *ctx;
};

struct recovery {
    struct executor *ex;           /* shared; borrowed */
    uv_loop_t *loop;               /* for the strategies' I/O; borrowed */
    const struct clock_src *clock; /* its time and its timer: the loop's, a test's; borrowed */
    const char *service;           /* its name; borrowed */
    const struct service_cfg *cfg; /* borrowed */
    struct supervisor *sup;        /* the service's process; borrowed */
    struct check_set *checks;      /* its checks; borrowed */
    struct faults *faults;         /* its faults; borrowed */
    struct svc_state *st;          /* its state; borrowed */
    struct recovery_sink sink;     /* set by the owner */
    enum recovery_state state;     /* written only by the table */
    bool held;                     /* maintenance: detection goes on, recovery pauses */
    bool ready;                    /* verified (or given its chance) once */
    bool has_action;               /* `action` is pending or executing */
    struct action action;          /* the recovery in progress, or the last one */
    int plan[STRATEGY__COUNT];     /* its strategies (enum strategy), in order */
    unsigned n_plan;               /* entries of plan */
    unsigned step;                 /* the plan entry being tried */
    unsigned attempts;             /* actions run for this plan (queue order) */
    bool queued;                   /* on ex->queue */
    bool holds_slot;               /* its executing action counts in ex->executing */
    bool starting;                 /* counts in ex->starting (a start run or verified) */
    bool start_launching;          /* the start's spawn is on the spawner: go on when it reports */
    struct recovery *next;         /* ex->queue link */
    struct clock_timer timer;    /* the state's one deadline: correlation, delay, action, verify */
    int64_t flap_fault;          /* the fault the last plan was for */
    unsigned flap_step;          /* and the step it had reached */
    void *priv[STRATEGY__COUNT]; /* each strategy's per-service state; owned */
    int handles_open;            /* loop handles not closed yet */
    /* The event being handled (table arguments). */
    const struct observation *obs; /* CHECK_FAILING */
    struct check *check;           /* CHECK_FAILING, CHECK_REPORTED */
    const struct sup_exit *exit;   /* EXITED */
    enum exec_outcome outcome;     /* EXECUTED */
    const char *result;            /* EXECUTED, ABORT, OPERATOR */
    int op_strategy;               /* OPERATOR: the strategy asked for */
};

const char *recovery_state_name(enum recovery_state s);
const char *recovery_event_name(enum recovery_event e);

/* Init r (fields above the sink set by the caller). 0 or -ENOMEM. */
int recovery_init(struct recovery *r);
/* Close the timer (sink.closed) and free the strategies' state. */
void recovery_close(struct recovery *r);
/* Feed an event; the table decides. */
void recovery_event(struct recovery *r, enum recovery_event ev);

/* Events with arguments. */
void recovery_check_failing(struct recovery *r, struct check *c, const struct observation *o);
void recovery_check_reported(struct recovery *r, struct check *c);
void recovery_process_exited(struct recovery *r, const struct sup_exit *e);
/* A launch of the service's process ended (sup_sink.launched). */
void recovery_launched(struct recovery *r, int err);
/* The running strategy finished its part (called by strategies). */
void recovery_executed(struct recovery *r, enum exec_outcome outcome, const char *result);
/* recoverd or the service is stopping: abort what is in progress. */
void recovery_abort(struct recovery *r, const char *why);

/* Operator control. 0, or -EBUSY (a recovery is in progress), -EINVAL
 * (strategy not usable: why in err), -ENOENT (no such open fault). */
int recovery_hold(struct recovery *r);
int recovery_release(struct recovery *r);
int recovery_operate(struct recovery *r, int64_t fault_id, enum strategy st, char *err, size_t len);

/* The analysis a fault's context gets (fault_advisor.analyse). */
void recovery_analyse(void *r, const struct fault *f, json_t *context);
/* The service's figures for the API (state, strategy views), written as
 * members of the service's view: an object open in w. */
void recovery_view(const struct recovery *r, struct jsonw *w);
/* Can a reload apply a new configuration in place? NULL, or why not. */
const char *recovery_busy(const struct recovery *r);

#endif
