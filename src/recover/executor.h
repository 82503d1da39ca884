/* The recovery executor: turns the open faults of a service into a plan (a
 * chain of strategies from the analyzer), runs its actions within the
 * concurrency limit and their deadlines, verifies each (the checks pass
 * again), escalates to the next strategy when one fails, and gives up when
 * the chain is exhausted. Every step is journaled. */
#ifndef RECOVERD_RECOVER_EXECUTOR_H
#define RECOVERD_RECOVER_EXECUTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/model-t.h"

struct service;

/* How a strategy's execution ended (executor_executed). */
enum exec_outcome {
    EXEC_OK,     /* done: verify it */
    EXEC_FAILED, /* did not work: the next strategy */
    EXEC_RETRY,  /* the process died or could not start: the same strategy again, if allowed */
};

/* First start of a service: spawn (supervised) and verify like a recovery,
 * so faults a previous recoverd left open resolve once it is healthy. */
void executor_service_start(struct service *s);
/* A fault of s was opened (the analyzer journaled it): recover, unless it
 * is a symptom, the service is held, or it gave up. */
void executor_fault_opened(struct service *s);
/* The process of s exited; why is its enum stop_reason, uptime in ms. */
void executor_process_exited(struct service *s, int why, uint64_t uptime_ms);
/* A check of s reported: see whether the verification in progress passed. */
void executor_check_reported(struct service *s);
/* The running strategy finished its part (called by strategies). */
void executor_executed(struct service *s, enum exec_outcome outcome, const char *result);
/* recoverd or the service is stopping: abort the action in progress. */
void executor_abort(struct service *s, const char *why);
/* A dependency of s recovered: re-check s; recover it only if it still fails. */
void executor_dependency_recovered(struct service *s);

/* Operator control (API). 0, or -EBUSY (a recovery is in progress), -EINVAL
 * (strategy not usable: why in err), -ENOENT (no such open fault). */
int executor_hold(struct service *s);
int executor_release(struct service *s);
int executor_restart_now(struct service *s, char *err, size_t len);
int executor_recover_fault(struct service *s, int64_t fault_id, enum strategy st, char *err,
                           size_t len);

#endif
