/* Deep comparison of service configurations, for reloads. */
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>

#include "core/config.h"
#include "detect/detector.h"

static bool ceq__str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool ceq__strv(char *const *a, char *const *b)
{
    if (!a || !b)
        return a == b;
    for (; *a && *b; a++, b++)
        if (strcmp(*a, *b) != 0)
            return false;
    return !*a && !*b;
}

/* Equal as the field table reads them. */
static bool ceq__fields(const struct cfg_field *f, const char *a, const char *b)
{
    for (; f && f->key; f++) {
        const void *pa = a + f->offset, *pb = b + f->offset;
        bool eq;
        switch (f->type) {
        case CFG_STRING: eq = ceq__str(*(char *const *)pa, *(char *const *)pb); break;
        case CFG_ARGV:
        case CFG_ENV: eq = ceq__strv(*(char **const *)pa, *(char **const *)pb); break;
        case CFG_DURATION: eq = *(const uint64_t *)pa == *(const uint64_t *)pb; break;
        case CFG_UINT: eq = *(const unsigned *)pa == *(const unsigned *)pb; break;
        case CFG_BOOL: eq = *(const bool *)pa == *(const bool *)pb; break;
        case CFG_SIGNAL:
        case CFG_SEVERITY: eq = *(const int *)pa == *(const int *)pb; break;
        case CFG_ADDRESS: eq = memcmp(pa, pb, sizeof(struct sockaddr_storage)) == 0; break;
        case CFG_MAP: eq = ceq__fields(f->sub, (const char *)pa, (const char *)pb); break;
        default: eq = false;
        }
        if (!eq)
            return false;
    }
    return true;
}

static bool ceq__check(const struct check_cfg *a, const struct check_cfg *b)
{
    return a->ops == b->ops && ceq__str(a->name, b->name) && a->interval_ms == b->interval_ms &&
           a->timeout_ms == b->timeout_ms && a->fall == b->fall && a->rise == b->rise &&
           a->severity == b->severity && ceq__fields(a->ops->fields, a->params, b->params);
}

bool config_service_equal(const struct service_cfg *a, const struct service_cfg *b)
{
    if (!ceq__strv(a->command, b->command) || !ceq__str(a->cwd, b->cwd) ||
        !ceq__strv(a->env, b->env) || a->n_checks != b->n_checks ||
        a->log_max_bytes != b->log_max_bytes ||
        a->restart.max != b->restart.max || a->restart.window_ms != b->restart.window_ms ||
        a->restart.stable_ms != b->restart.stable_ms ||
        a->restart.backoff_initial_ms != b->restart.backoff_initial_ms ||
        a->restart.backoff_max_ms != b->restart.backoff_max_ms ||
        a->stop.signal != b->stop.signal || a->stop.grace_ms != b->stop.grace_ms)
        return false;
    for (size_t i = 0; i < a->n_checks; i++)
        if (!ceq__check(&a->checks[i], &b->checks[i]))
            return false;
    return true;
}
