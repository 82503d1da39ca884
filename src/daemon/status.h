/* Read-only JSON views of the daemon's live state, for the API. */
#ifndef RECOVERD_DAEMON_STATUS_H
#define RECOVERD_DAEMON_STATUS_H

#include <jansson.h>

struct daemon;
struct journal;

/* {name, state, active_faults, resolved_faults, recovery_actions, detectors, strategies, ...} */
json_t *status_view(struct daemon *d);
/* [service, ...] as service_view gives each. */
json_t *services_view(struct daemon *d);
/* {name, state, pid, restarts, last_exit, checks:[{name, kind, ok, reason, at,...}], ...};
 * NULL when there is no such service. */
json_t *service_view(struct daemon *d, const char *name);
/* The API token (borrowed). */
const char *daemon_token(struct daemon *d);
/* The daemon's journal (borrowed). */
struct journal *daemon_journal(struct daemon *d);

#endif
