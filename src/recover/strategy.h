/* What every recovery strategy provides. The executor owns the action's
 * life (journal, slots, deadline, verification, escalation); a strategy
 * only carries out its own step and reports with executor_executed(). */
#ifndef RECOVERD_RECOVER_STRATEGY_H
#define RECOVERD_RECOVER_STRATEGY_H

#include "lib/model-t.h"

struct service;

struct strategy_ops {
    enum strategy id;
    /* NULL when the service can use this strategy, else why not. */
    const char *(*unavailable)(const struct service *s);
    /* Carry out s->action (params may be filled here); later, exactly once,
     * executor_executed(s, ok, result) unless cancel() runs first. */
    void (*run)(struct service *s);
    /* Stop what run() started (the action timed out or was aborted). */
    void (*cancel)(struct service *s);
};

/* The ops of id, or NULL for a strategy recoverd does not implement yet. */
const struct strategy_ops *strategy_find(enum strategy id);
/* NULL when s can use id, else why not ("not configured", "not implemented"). */
const char *strategy_unavailable(const struct service *s, enum strategy id);

extern const struct strategy_ops restart_strategy;
extern const struct strategy_ops repair_strategy;

#endif
