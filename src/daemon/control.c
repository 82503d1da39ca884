/* Operator controls: look the target up, journal nothing here (the
 * executor journals the actions it starts), log who asked. */
#include "daemon/control.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "analyze/analyzer.h"
#include "daemon/daemon.h"
#include "lib/log.h"
#include "lib/model.h"
#include "recover/executor.h"

int control_service(struct daemon *d, const char *name, enum control_op op, char *err,
                    size_t errlen)
{
    struct service *s = daemon_service(d, name);
    if (!s) {
        snprintf(err, errlen, "no such service: %s", name);
        return -ENOENT;
    }
    static const char *const names[] = {"hold", "release", "restart"};
    log_event(LOG_INFO, s->name, "operator", "op=%s", names[op]);
    switch (op) {
    case CONTROL_HOLD: return executor_hold(s);
    case CONTROL_RELEASE: return executor_release(s);
    case CONTROL_RESTART: return executor_restart_now(s, err, errlen);
    }
    return -EINVAL;
}

int control_recover(struct daemon *d, int64_t fault_id, const char *strategy, char *service,
                    size_t service_len, char *err, size_t errlen)
{
    int st = strategy_parse(strategy);
    if (st < 0) {
        snprintf(err, errlen, "unknown strategy '%s' (expected restart, failover, rollback, "
                              "repair or replace)", strategy);
        return -EINVAL;
    }
    for (size_t i = 0; i < d->n_services; i++) {
        struct service *s = d->services[i];
        for (size_t k = 0; !s->retired && k < s->n_checks + 2; k++) {
            if (!s->slots[k].open || s->slots[k].fault.id != fault_id)
                continue;
            snprintf(service, service_len, "%s", s->name);
            log_event(LOG_INFO, s->name, "operator", "op=recover fault=%lld strategy=%s",
                      (long long)fault_id, strategy);
            return executor_recover_fault(s, fault_id, st, err, errlen);
        }
    }
    snprintf(err, errlen, "fault %lld is not open", (long long)fault_id);
    return -ENOENT;
}
