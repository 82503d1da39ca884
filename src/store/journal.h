/* The SQLite journal (WAL): faults, actions and state transitions. Every
 * write is committed before the call returns (or, with batching, before the
 * loop turn ends), so what the API reports has survived a kill -9. A write
 * the disk refuses (full, I/O error, locked) is kept in memory and written,
 * in order, once the disk takes it again; reads show what is on disk. */
#ifndef RECOVERD_STORE_JOURNAL_H
#define RECOVERD_STORE_JOURNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/fault-t.h"
#include "lib/model-t.h"

struct journal;

/* Open (creating the schema if needed) the journal at path. NULL with a
 * message in err on failure. */
struct journal *journal_open(const char *path, char *err, size_t errlen);
void journal_free(struct journal *j); /* NULL-safe; commits a pending batch */

/* With batching on, writes gather in one transaction that journal_flush
 * commits: the daemon flushes once per loop turn, before the loop waits
 * (so before any API answer), which makes a burst of events (exit, fault,
 * action, transitions) one WAL commit instead of seven, and lets the
 * restart's spawn happen before any of them is committed. */
void journal_set_batching(struct journal *j, bool on);
/* Commit the batch, if any, and retry the writes the disk refused (at most
 * once a second). 0 when everything is on disk; -EAGAIN while writes wait. */
int journal_flush(struct journal *j);
/* How many writes wait for the disk, and (when some do) why. */
size_t journal_pending(const struct journal *j, const char **error);

/* Insert f (sets f->id). 0 or -EIO. */
int journal_fault_open(struct journal *j, struct fault *f);
/* Record f->resolved_ms for f->id. */
int journal_fault_resolve(struct journal *j, const struct fault *f);
/* f->id is open again (a flap): no resolved time, and f->description, what
 * was seen this time. */
int journal_fault_reopen(struct journal *j, const struct fault *f);
/* Faults still open in the journal for service, oldest first; the caller
 * owns each one's context (fault_release) and the array (free()).
 * Returns the count, or -EIO. */
int journal_faults_open_for(struct journal *j, const char *service, struct fault **out);

/* Insert a (sets a->id). */
int journal_action_insert(struct journal *j, struct action *a);
/* Write a's status, result, params, started_ms, finished_ms. */
int journal_action_update(struct journal *j, const struct action *a);
/* Mark every pending/executing action aborted with `result` (used at start:
 * those actions died with the previous recoverd). Returns how many, or -EIO. */
int journal_actions_abort_unfinished(struct journal *j, const char *result, uint64_t at_ms);

/* Record a state transition of service (NULL: the system). */
int journal_transition(struct journal *j, const char *service, enum state from, enum state to,
                       const char *cause, uint64_t at_ms);

/* The children recoverd started, so a restarted recoverd can clean up what
 * a killed one left: pid with its /proc start time (guards against reuse). */
int journal_child_set(struct journal *j, const char *service, pid_t pid, uint64_t start_ticks);
int journal_child_clear(struct journal *j, const char *service);
/* Calls fn for every recorded child. */
int journal_children(struct journal *j,
                     void (*fn)(const char *service, pid_t pid, uint64_t start_ticks, void *arg),
                     void *arg);

/* Views for the API (new references; NULL on error). Timestamps are ISO
 * 8601 strings (clock_iso8601), null while unset. */
json_t *journal_faults_json(struct journal *j, bool active_only, size_t limit);
json_t *journal_fault_json(struct journal *j, int64_t id); /* NULL: no such fault */
/* {"total":N,"active":N,"resolved":N,"by_type":{..},"by_severity":{..},"by_impact":{..}};
 * every enum name appears with 0 when absent. */
json_t *journal_faults_summary_json(struct journal *j);
json_t *journal_actions_json(struct journal *j, int64_t fault_id /* 0: all */, size_t limit);
json_t *journal_transitions_json(struct journal *j, const char *service /* NULL: all */,
                                 size_t limit);
/* The total time from opened to resolved of service's resolved faults (its
 * observed recovery time) and how many there were. 0 or -EIO. */
int journal_recovery_history(struct journal *j, const char *service, uint64_t *total_ms,
                             uint64_t *count);
/* Recovery metrics (the source document's): recoveries total, successful,
 * failed; observed recovery time (fault opened -> resolved) mean and max;
 * the same per fault type and per service. */
json_t *journal_metrics_json(struct journal *j);
/* Counts for /v1/status. */
int journal_counts(struct journal *j, int64_t *active_faults, int64_t *resolved_faults,
                   int64_t *actions);

#endif
