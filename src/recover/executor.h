/* The recovery executor: turns an open fault into restart actions, runs
 * them (stop, backoff, spawn), verifies them (the checks pass again) and
 * records every step. */
#ifndef RECOVERD_RECOVER_EXECUTOR_H
#define RECOVERD_RECOVER_EXECUTOR_H

#include <stdint.h>

struct service;

/* First start of a service: spawn, then verify like a recovery so faults a
 * previous recoverd left open are resolved once the service is healthy. */
void executor_service_start(struct service *s);
/* A fault of s was opened (the analyzer journaled it): recover. */
void executor_fault_opened(struct service *s);
/* The process of s exited; why is its enum stop_reason, uptime in ms. */
void executor_process_exited(struct service *s, int why, uint64_t uptime_ms);
/* A check of s reported: see whether the recovery in progress verified. */
void executor_check_reported(struct service *s);
/* recoverd is stopping: abort the action in progress (journaled). */
void executor_abort(struct service *s, const char *why);

#endif
