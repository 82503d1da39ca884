/* What every recovery strategy provides. The executor owns the action's
 * life (journal, slots, deadline, verification, escalation); a strategy
 * carries out its own step and reports with recovery_executed(). A new
 * strategy is one file and one line of strategy.c's table. */
#ifndef RECOVERD_RECOVER_STRATEGY_H
#define RECOVERD_RECOVER_STRATEGY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/model-t.h"

struct recovery;
struct sup_exit;

/* Why a strategy cannot act on a service. */
struct strategy_no {
    const char *why; /* human words; NULL: it can act */
    bool permanent;  /* by configuration (nothing to restart), not a passing limit */
};

struct strategy_ops {
    enum strategy id;
    const char *risk;    /* "low", "medium", "high": shown in a fault's analysis */
    bool starts_process; /* its action (re)starts the service's process */
    size_t state_size;   /* per-service private state (r->priv[id]), zeroed; 0: none */
    /* Can it act on r's service now? */
    struct strategy_no (*applicable)(const struct recovery *r);
    /* Wait this long before running (backoff); NULL: at once. */
    uint64_t (*delay)(struct recovery *r);
    /* Carry out r->action (params may be set here); later, exactly once,
     * recovery_executed() unless cancel() runs first. */
    void (*run)(struct recovery *r);
    /* Stop what run() started (the action timed out or was aborted). */
    void (*cancel)(struct recovery *r);
    /* The service's process ended while this strategy's action executes
     * (e.g. the stop a restart asked for). NULL: the executor decides. */
    void (*process_exited)(struct recovery *r, const struct sup_exit *e);
    /* An unexpected exit while no recovery runs, this strategy first in
     * line: act before the bookkeeping (restart latency). True if it did;
     * its run() then finds the work done. NULL: never. */
    bool (*act_first)(struct recovery *r, const struct sup_exit *e);
    /* Besides the checks passing: is the recovery really done? NULL: yes. */
    bool (*verified)(struct recovery *r);
    /* An operator acted: forget limits and backoff. NULL: nothing. */
    void (*reset)(struct recovery *r);
    /* Add the strategy's figures to the service's view. NULL: none. */
    void (*view)(const struct recovery *r, json_t *service);
    /* Release what the per-service state holds. NULL: nothing. */
    void (*release)(struct recovery *r);
};

/* recoverd's strategies by enum strategy, NULL where none is implemented
 * yet: what the composition root hands the executor (struct executor). */
extern const struct strategy_ops *const strategy_table[STRATEGY__COUNT];
/* The ops of id, or NULL for a strategy recoverd does not implement yet. */
const struct strategy_ops *strategy_find(enum strategy id);
/* Implemented (for the config registry). */
bool strategy_exists(int id);

#endif
