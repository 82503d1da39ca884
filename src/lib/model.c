/* Enum <-> string tables generated from the X-macro lists of model-t.h. */
#include "lib/model.h"

#include <string.h>

static int model__find(const char *const *names, int n, const char *name)
{
    for (int i = 0; name && i < n; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

#define MODEL_NAMES(type, prefix, MAP, COUNT)                                                      \
    static const char *const type##__names[] = {MAP(MODEL__STR)};                                  \
    const char *type##_name(enum type v)                                                           \
    {                                                                                              \
        return (unsigned)v < (COUNT) ? type##__names[v] : "unknown";                               \
    }                                                                                              \
    int type##_parse(const char *name)                                                             \
    {                                                                                              \
        return model__find(type##__names, (COUNT), name);                                          \
    }
#define MODEL__STR(e, s) s,

MODEL_NAMES(state, STATE_, STATE_MAP, STATE__COUNT)
MODEL_NAMES(fault_type, FAULT_, FAULT_TYPE_MAP, FAULT_TYPE__COUNT)
MODEL_NAMES(severity, SEVERITY_, SEVERITY_MAP, SEVERITY__COUNT)
MODEL_NAMES(impact, IMPACT_, IMPACT_MAP, IMPACT__COUNT)
MODEL_NAMES(action_status, ACTION_, ACTION_STATUS_MAP, ACTION_STATUS__COUNT)
MODEL_NAMES(strategy, STRATEGY_, STRATEGY_MAP, STRATEGY__COUNT)
