/* The strategy registry: one line per strategy. failover, rollback and
 * replace have no actuator yet: configurations cannot name them. */
#include "recover/strategy.h"

#include <errno.h>

extern const struct strategy_ops restart_strategy;
extern const struct strategy_ops repair_strategy;

static const struct strategy_ops *const strategy__table[STRATEGY__COUNT] = {
    [STRATEGY_RESTART] = &restart_strategy,
    [STRATEGY_REPAIR] = &repair_strategy,
};

const struct strategy_ops *strategy_find(enum strategy id)
{
    return (unsigned)id < STRATEGY__COUNT ? strategy__table[id] : NULL;
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

struct strategy_no strategy_applicable(const struct recovery *r, enum strategy id)
{
    const struct strategy_ops *ops = strategy_find(id);
    if (!ops)
        return (struct strategy_no){"not implemented", true};
    return ops->applicable ? ops->applicable(r) : (struct strategy_no){NULL, false};
}

uint64_t strategy_stable_ms(const struct recovery *r)
{
    uint64_t most = 0, ms;
    for (int id = 0; id < STRATEGY__COUNT; id++)
        if (strategy__table[id] && strategy__table[id]->stable_ms &&
            (ms = strategy__table[id]->stable_ms(r)) > most)
            most = ms;
    return most;
}

json_t *strategy_limits(const struct recovery *r)
{
    json_t *context = json_object();
    for (int id = 0; id < STRATEGY__COUNT && context; id++)
        if (strategy__table[id] && strategy__table[id]->limits)
            strategy__table[id]->limits(r, context);
    return context;
}
