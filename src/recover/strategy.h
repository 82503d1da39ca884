/* What every recovery strategy provides. The executor owns the action's
 * life (journal, slots, deadline, verification, escalation); a strategy
 * carries out its own step and reports with recovery_executed(). Its
 * configuration is its own too: the key it owns under a service, that
 * mapping's fields, defaults and validation, like a check kind's. A new
 * strategy is one file and one line of strategy.c's table. */
#ifndef RECOVERD_RECOVER_STRATEGY_H
#define RECOVERD_RECOVER_STRATEGY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/cfgmap.h"
#include "config/config-t.h"
#include "lib/model-t.h"

struct jsonw;
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
    /* Its configuration, read by config/ through struct cfg_strategy and
     * found again with config_strategy(r->cfg, id). */
    const char *key;                   /* its YAML key under a service: "repair"; NULL: none */
    const struct cfg_field *fields;    /* that mapping's keys (NULL-key terminated) */
    size_t params_size;                /* bytes of its params, allocated per service; 0: none */
    void (*params_init)(void *params); /* defaults, also when the key is absent; may be NULL */
    /* The params as a whole within their service: 0, or -EINVAL with words
     * in why and the key to point at in *at. May be NULL. */
    int (*validate)(const void *params, const struct service_cfg *svc, char *why, size_t len,
                    const char **at);
    /* The user:/group: within params its programs run as (struct
     * cfg_strategy.ident); NULL: they run as the service. */
    struct ident_cfg *(*ident)(void *params);
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
    /* A launch of the service's process ended (supervisor_launch): 0 it
     * runs, -errno it could not start. Whatever the recovery's state;
     * the strategy knows whether it waits for it. NULL: never launches. */
    void (*launched)(struct recovery *r, int err);
    /* Besides the checks passing: is the recovery really done? NULL: yes. */
    bool (*verified)(struct recovery *r);
    /* An operator acted: forget limits and backoff. NULL: nothing. */
    void (*reset)(struct recovery *r);
    /* Without checks, how long a started process must stay up to count as
     * verified (restart's `stable`). NULL: no say. */
    uint64_t (*stable_ms)(const struct recovery *r);
    /* Add the limits that can end a recovery to the context of the fault
     * that says it gave up. NULL: none. */
    void (*limits)(const struct recovery *r, json_t *context);
    /* Write the strategy's figures as members of the service's view (an
     * object open in w). NULL: none. */
    void (*view)(const struct recovery *r, struct jsonw *w);
    /* Release what the per-service state holds. NULL: nothing. */
    void (*release)(struct recovery *r);
};

/* recoverd's strategies by enum strategy, NULL where none is implemented
 * yet: what the composition root hands the executor (struct executor). */
extern const struct strategy_ops *const strategy_table[STRATEGY__COUNT];
/* The ops of id, or NULL for a strategy recoverd does not implement yet. */
const struct strategy_ops *strategy_find(enum strategy id);
/* The config loader's view of strategy id (struct cfg_registry.strategy_kind):
 * 0 with *out filled, or -ENOENT when it is not implemented. */
int strategy_cfg_kind(int id, struct cfg_strategy *out);

#endif
