/* The strategy registry. failover, rollback and replace have no actuator
 * yet: a plan that names them records them as skipped. */
#include "recover/strategy.h"

#include <stddef.h>

static const struct strategy_ops *const strategy__table[STRATEGY__COUNT] = {
    [STRATEGY_RESTART] = &restart_strategy,
    [STRATEGY_REPAIR] = &repair_strategy,
};

const struct strategy_ops *strategy_find(enum strategy id)
{
    return (unsigned)id < STRATEGY__COUNT ? strategy__table[id] : NULL;
}

const char *strategy_unavailable(const struct service *s, enum strategy id)
{
    const struct strategy_ops *ops = strategy_find(id);
    if (!ops)
        return "not implemented";
    return ops->unavailable ? ops->unavailable(s) : NULL;
}
