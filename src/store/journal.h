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

/* Open (creating the schema if needed) the journal at path, refusing a
 * symbolic link anywhere in path. A file SQLite finds damaged (not a
 * database, malformed, failing PRAGMA quick_check) is moved aside to
 * path.corrupt-<UTC time> (its -wal and -shm alike) and a fresh journal
 * started: see journal_moved_aside. NULL with a message in err on failure
 * (an unwritable directory, a newer schema). */
struct journal *journal_open(const char *path, char *err, size_t errlen);
void journal_free(struct journal *j); /* NULL-safe; commits a pending batch */
/* A second connection to the journal at path, read-only, for the views
 * below (journal_*_json, journal_counts) from a thread other than the
 * writer's (store/reader.h): WAL lets it read while the writer writes,
 * and it sees every commit made before its read began. Refused unless the
 * schema is this build's (the writer opens, and migrates, first). For
 * the views only: no write function may be called on it. NULL with a
 * message in err. Free with journal_free. */
struct journal *journal_open_readonly(const char *path, char *err, size_t errlen);
/* One read transaction around several views, so they see one snapshot.
 * 0 or -EIO. */
int journal_read_begin(struct journal *j);
void journal_read_end(struct journal *j);
/* Where a damaged journal was moved at open, with what SQLite said of it
 * and when (wall ms); NULL when it was not. */
const char *journal_moved_aside(const struct journal *j, const char **why, uint64_t *at_ms);

/* What journal_prune keeps. The file never shrinks (no VACUUM): pruned
 * pages go to SQLite's freelist and are reused, so holding the pages in
 * use under max_bytes holds the file there too. */
struct journal_retention {
    uint64_t max_age_ms; /* resolved faults (with their actions), finished actions and
                          * transitions older than this go; 0: no age limit */
    uint64_t max_bytes;  /* pages in use above this: the oldest go first; 0: no cap */
    uint64_t keep_ms;    /* nothing younger than this goes for size: a fault may still
                          * reopen (flap_window) */
};
void journal_set_retention(struct journal *j, const struct journal_retention *r);
/* One small batch of pruning: at most max_rows faults (with their actions),
 * max_rows other actions and max_rows transitions, in one transaction (the
 * batch's, when batching). An open fault, an action of one and an
 * unfinished action are never pruned, nor the newest fault and action
 * (their ids carry the sequence). Returns the rows deleted (more may wait:
 * call again soon), 0 when nothing is due, or -EIO. */
int journal_prune(struct journal *j, uint64_t now_ms, unsigned max_rows);
/* Bytes of the pages in use (page_count - freelist_count) and of the whole
 * database file (page_count), times page_size. 0 or -EIO. */
int journal_size(struct journal *j, uint64_t *used, uint64_t *file);

/* With batching on, writes gather in one transaction that journal_flush
 * commits: the daemon flushes once per loop turn, before the loop waits
 * (so before any API answer), which makes a burst of events (exit, fault,
 * action, transitions) one WAL commit instead of seven, and lets the
 * restart's spawn happen before any of them is committed. */
void journal_set_batching(struct journal *j, bool on);
/* Commit the batch, if any, and retry the writes the disk refused (at most
 * once a second). 0 when everything is on disk; -EAGAIN while writes wait:
 * refused, or held back for a few ms while the journal's checkpointer
 * starts the WAL over (the next flush writes them; the loop never waits). */
int journal_flush(struct journal *j);
/* Cycles the journal's checkpointer has run (a thread of its own copies
 * the WAL into the database file and starts it over, so the loop's commits
 * never sync; see journal.c). 0 on a read-only journal. */
uint64_t journal_checkpoints(struct journal *j);
/* wake(arg) is called from the checkpointer's thread when it gave the WAL
 * back after writes were kept waiting for it (then journal_flush writes
 * them); it must be safe there (uv_async_send). NULL: no more calls, once
 * this returns. */
void journal_on_gate_free(struct journal *j, void (*wake)(void *arg), void *arg);
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

/* A child recoverd started, so that a restarted recoverd finds what a killed
 * one left: pid with its /proc start time (guards against reuse), and the
 * fingerprint of the configuration it was started from. */
struct journal_child {
    const char *service;
    pid_t pid;
    uint64_t start_ticks;    /* /proc/PID/stat field 22, clock ticks since boot */
    const char *fingerprint; /* config_process_fingerprint; "" before schema 3 */
};

/* Record c (one per service). Without batching committed before it
 * returns; with batching at the next journal_flush or
 * journal_sync_children. */
int journal_child_set(struct journal *j, const struct journal_child *c);
/* Before a spawn: the children recorded so far are committed (a recoverd
 * killed from here on finds them). A no-op when none waits. 0 or -EAGAIN
 * as journal_flush. */
int journal_sync_children(struct journal *j);
int journal_child_clear(struct journal *j, const char *service);
/* Calls fn for every recorded child. */
int journal_children(struct journal *j, void (*fn)(const struct journal_child *c, void *arg),
                     void *arg);

/* The alert queue: webhook messages waiting for delivery, per webhook, in
 * seq order, so that a receiver that is down, or a restart of recoverd,
 * loses none. hook is the webhook's key (it must hold no secret: it is
 * written as given). A queue survives until its messages are delivered or
 * dropped by the alerter: the journal's own pruning leaves it alone. */
struct journal_alert {
    int64_t seq;      /* order within the webhook; never reused in one journal */
    int64_t fault_id; /* 0: a message about a service, with no fault */
    bool opens;       /* the first message of its fault's alert in this webhook */
    char event[16];   /* "opened", "escalated", ... */
    char service[64]; /* for logs */
    char *body;       /* the JSON document; owned (journal_alert_release) */
};
void journal_alert_release(struct journal_alert *m); /* frees body; NULL-safe */

/* Hand out the next seq (the first call reads the highest ever used). 0 on
 * a read error. */
int64_t journal_alert_seq_next(struct journal *j);
/* Queue m (m->seq from journal_alert_seq_next) for hook. */
int journal_alert_push(struct journal *j, const char *hook, const struct journal_alert *m);
/* A message delivered: it leaves the queue. */
int journal_alert_delete(struct journal *j, const char *hook, int64_t seq);
/* Every message of one fault (fault_id != 0) leaves hook's queue. */
int journal_alert_delete_fault(struct journal *j, const char *hook, int64_t fault_id);
/* Up to max messages of hook with seq > after, oldest first, into out
 * (release each). The count, or -EIO. Reads what is on disk (and in the
 * open batch): a write that waits for the disk is not seen yet. */
int journal_alert_read(struct journal *j, const char *hook, int64_t after,
                       struct journal_alert *out, int max);

/* What waits for hook, by fault (a message with no fault is a group of
 * its own), oldest group first: for the alerter's bound after a restart. */
struct journal_alert_group {
    int64_t fault_id;  /* 0: one message with no fault */
    int64_t first_seq; /* the seq of its oldest waiting message */
    int64_t count;     /* messages waiting */
    bool first_opens;  /* that oldest message opens the fault's alert */
};
/* The count (*out is the caller's to free()), or -EIO. */
int journal_alert_groups(struct journal *j, const char *hook, struct journal_alert_group **out);

/* The fault alerts open in hook (opened, not yet resolved), so that a
 * restarted recoverd still sends their resolution. symptoms: JSON array
 * text of the fault ids folded into the alert. */
int journal_alert_open_set(struct journal *j, const char *hook, int64_t fault_id,
                           const char *symptoms);
int journal_alert_open_clear(struct journal *j, const char *hook, int64_t fault_id);
/* Calls fn for each open alert of hook, oldest fault first, with the
 * fault as journaled (NULL when the journal has no such fault any more).
 * The rows are read before fn runs: fn may write. 0 or -EIO. */
int journal_alert_opens(struct journal *j, const char *hook,
                        void (*fn)(void *arg, int64_t fault_id, const struct fault *f,
                                   const char *symptoms),
                        void *arg);
/* Calls fn for every hook with queued messages or open alerts, with the
 * number of messages waiting. 0 or -EIO. */
int journal_alert_hooks(struct journal *j, void (*fn)(void *arg, const char *hook, int64_t waiting),
                        void *arg);
/* A webhook no longer configured: its queue and open alerts go. */
int journal_alert_forget_hook(struct journal *j, const char *hook);

/* Views for the API (new references; NULL on error). Timestamps are ISO
 * 8601 strings (clock_iso8601), null while unset. The lists are pages,
 * newest first: at most limit rows (0: 1000) with ids below before (0: from
 * the newest). The next page starts before the last row's id: rows written
 * meanwhile have higher ids, so paging loses and repeats none. Each reads
 * through an index, in time independent of the journal's length. */
/* A fault row carries "actions": how many it has. */
json_t *journal_faults_json(struct journal *j, bool active_only, int64_t before, size_t limit);
json_t *journal_fault_json(struct journal *j, int64_t id); /* NULL: no such fault */
json_t *journal_actions_json(struct journal *j, int64_t fault_id /* 0: all */, int64_t before,
                             size_t limit);
json_t *journal_transitions_json(struct journal *j, const char *service /* NULL: all */,
                                 int64_t before, size_t limit);
/* The SQL of the i-th of the statements behind these views (NULL past the
 * last), for a test of their query plans. */
const char *journal_api_sql(size_t i);

/* The counts below are lifetime totals, kept in the journal as rows are
 * written (in the same transaction): pruning lowers none of them. */
/* {"total":N,"active":N,"resolved":N,"by_type":{..},"by_severity":{..},"by_impact":{..}};
 * every enum name appears with 0 when absent. */
json_t *journal_faults_summary_json(struct journal *j);
/* The total time from opened to resolved of service's resolved faults (its
 * observed recovery time) and how many there were. 0 or -EIO. */
int journal_recovery_history(struct journal *j, const char *service, uint64_t *total_ms,
                             uint64_t *count);
/* Recovery metrics (the source document's): recoveries total, successful,
 * failed, aborted; faults and resolved; observed recovery time (fault
 * opened -> resolved) mean and max; the same per fault type and per
 * service. Overall and per service also the histograms (lib/histogram.h)
 * "detection_seconds" (first failed probe -> fault opened; faults whose
 * context has detection_ms) and "recovery_seconds" (opened -> resolved):
 * {"count", "sum_s", "buckets": {"0.005": n, ..., "+Inf": n}}, cumulative.
 * All from the counters and histograms tables (a few rows per service),
 * never from the faults and actions themselves. A supervisor's give-up
 * fault is not a recovery: not counted. */
json_t *journal_metrics_json(struct journal *j);
/* Counts for /v1/status: faults open now, resolved and actions (lifetime). */
int journal_counts(struct journal *j, int64_t *active_faults, int64_t *resolved_faults,
                   int64_t *actions);

#endif
