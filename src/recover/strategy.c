/* The strategy registry: one line per strategy. failover, rollback and
 * replace have no actuator yet: configurations cannot name them. */
#include "recover/strategy.h"

#include <errno.h>

extern const struct strategy_ops restart_strategy;
extern const struct strategy_ops repair_strategy;

const struct strategy_ops *const strategy_table[STRATEGY__COUNT] = {
    [STRATEGY_RESTART] = &restart_strategy,
    [STRATEGY_REPAIR] = &repair_strategy,
};

const struct strategy_ops *strategy_find(enum strategy id)
{
    return (unsigned)id < STRATEGY__COUNT ? strategy_table[id] : NULL;
}

int strategy_cfg_kind(int id, struct cfg_strategy *out)
{
    const struct strategy_ops *ops = strategy_find((enum strategy)id);
    if (!ops)
        return -ENOENT;
    *out = (struct cfg_strategy){ops->key,         ops->fields,   ops->params_size,
                                 ops->params_init, ops->validate, ops->ident};
    return 0;
}
