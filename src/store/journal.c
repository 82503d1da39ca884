/* The SQLite journal: one connection, statements prepared once, writes
 * committed once per loop turn. A write the disk refuses (full, I/O error,
 * locked) is kept, as its statement and values, and written later in
 * order: recovery goes on while the disk is full, and the journal catches
 * up once there is room. */
#include "store/journal.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "lib/clock.h"
#include "lib/histogram.h"
#include "lib/log.h"
#include "lib/model.h"
#include "lib/statedir.h"

#define JOURNAL_DEFAULT_LIMIT 1000
/* Connections off the loop (the read-only ones, the checkpointer's) wait
 * this long for a lock another holds. The writer, on the loop, waits no
 * more than JOURNAL__BUSY_BRIEF_US (journal__busy_brief): a lock held
 * longer (the sqlite3 CLI) fails the write, and it is kept for later. */
#define JOURNAL_BUSY_MS 1000
#define JOURNAL__BUSY_BRIEF_US 1000
/* After a refused write, the next attempt waits this long. */
#define JOURNAL_RETRY_MS 1000
/* Writes kept for later, at most (bytes of their records): a disk full for days
 * must not grow recoverd without bound. Past it, new writes are dropped and
 * counted. */
#define JOURNAL_PENDING_MAX (8u << 20)

/* The counters' seed (migration 4): the fault columns of one group, and
 * its finished actions. A supervisor's fault counts in faults_all only. */
#define JOURNAL__SEED_RESOLVED "(check_name != 'supervisor' AND resolved_ms IS NOT NULL)"
#define JOURNAL__SEED_FAULTS                                                                       \
    "count(*), CAST(total(check_name != 'supervisor') AS INTEGER), "                               \
    "CAST(total(" JOURNAL__SEED_RESOLVED ") AS INTEGER), "                                         \
    "CAST(total(iif(" JOURNAL__SEED_RESOLVED ", resolved_ms - opened_ms, 0)) AS INTEGER), "        \
    "max(iif(" JOURNAL__SEED_RESOLVED ", resolved_ms - opened_ms, NULL))"
#define JOURNAL__SEED_ACTIONS                                                                      \
    "CAST(total(status IN ('completed', 'failed', 'aborted')) AS INTEGER), "                       \
    "CAST(total(status = 'completed') AS INTEGER), CAST(total(status = 'failed') AS INTEGER), "    \
    "CAST(total(status = 'aborted') AS INTEGER)"

/* The histogram bucket of the column ms (lib/histogram.h): how many bounds
 * lie below it, as SQL. */
#define JOURNAL__GT(ms, le) " + (ms > " #ms ")"
#define JOURNAL__BUCKET "(0" HISTOGRAM_BOUNDS(JOURNAL__GT) ")"
/* A fault's detection time from its context (row: "NEW." in a trigger);
 * NULL when it has none or the text is no JSON (json_extract would fail
 * the write). */
#define JOURNAL__DETECTION(row)                                                                    \
    "CASE WHEN json_valid(" row "context) THEN CAST(json_extract(" row "context, "                 \
    "'$.detection_ms') AS INTEGER) END"

/* Each migration takes the schema from version i to i + 1 (PRAGMA
 * user_version); append, never edit, so old journals upgrade in order. */
static const char *const journal__migrations[] = {
    "CREATE TABLE faults ("
    "  id INTEGER PRIMARY KEY,"
    "  service TEXT NOT NULL,"
    "  check_name TEXT NOT NULL,"
    "  type TEXT NOT NULL,"
    "  severity TEXT NOT NULL,"
    "  impact TEXT NOT NULL,"
    "  description TEXT NOT NULL,"
    "  context TEXT NOT NULL," /* JSON object text */
    "  opened_ms INTEGER NOT NULL,"
    "  resolved_ms INTEGER);" /* NULL while open */
    "CREATE INDEX faults_active ON faults(service) WHERE resolved_ms IS NULL;"
    "CREATE TABLE actions ("
    "  id INTEGER PRIMARY KEY,"
    "  fault_id INTEGER REFERENCES faults(id)," /* NULL: not tied to a fault */
    "  service TEXT NOT NULL,"
    "  strategy TEXT NOT NULL,"
    "  status TEXT NOT NULL,"
    "  params TEXT NOT NULL," /* JSON object text */
    "  result TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  started_ms INTEGER,"
    "  finished_ms INTEGER);"
    "CREATE INDEX actions_by_fault ON actions(fault_id);"
    "CREATE TABLE transitions ("
    "  id INTEGER PRIMARY KEY,"
    "  at_ms INTEGER NOT NULL,"
    "  service TEXT," /* NULL: the system */
    "  from_state TEXT NOT NULL,"
    "  to_state TEXT NOT NULL,"
    "  cause TEXT);"
    "CREATE INDEX transitions_by_service ON transitions(service);"
    "CREATE TABLE children ("
    "  service TEXT PRIMARY KEY,"
    "  pid INTEGER NOT NULL,"
    "  start_ticks INTEGER NOT NULL);",
    /* 2: webhook messages wait here until delivered; AUTOINCREMENT keeps
     * the highest seq ever used, so a message id is never handed out twice. */
    "CREATE TABLE alert_queue ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  hook TEXT NOT NULL,"        /* the webhook's key: scheme://host:port#hash */
    "  fault_id INTEGER NOT NULL," /* 0: no fault */
    "  event TEXT NOT NULL,"
    "  opens INTEGER NOT NULL," /* 1: the first message of the fault's alert */
    "  service TEXT NOT NULL,"
    "  body TEXT NOT NULL);" /* the JSON document, as it is sent */
    "CREATE INDEX alert_queue_by_hook ON alert_queue(hook, seq);"
    "CREATE TABLE alert_open ("
    "  hook TEXT NOT NULL,"
    "  fault_id INTEGER NOT NULL,"
    "  symptoms TEXT NOT NULL," /* JSON array of fault ids */
    "  PRIMARY KEY (hook, fault_id));",
    /* 3: what a child was started from, so that a restarted recoverd adopts
     * only a process its configuration would start again. */
    "ALTER TABLE children ADD COLUMN fingerprint TEXT NOT NULL DEFAULT '';",
    /* 4: the API's reads in time independent of the journal's length.
     * faults_open pages the active faults by id. counters holds lifetime
     * totals per scope ('all' with key '', 'type', 'severity', 'impact',
     * 'service'), kept by triggers in the transaction of the write they
     * count (a write replayed after a full disk counts then) and never
     * lowered by pruning (no DELETE trigger); seeded once from the rows
     * present. A supervisor's give-up fault is no recovery: faults_all
     * counts it, the recovery columns do not. */
    "CREATE INDEX faults_open ON faults(id) WHERE resolved_ms IS NULL;"
    "CREATE TABLE counters ("
    "  scope TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  faults_all INTEGER NOT NULL DEFAULT 0,"
    "  faults INTEGER NOT NULL DEFAULT 0,"
    "  resolved INTEGER NOT NULL DEFAULT 0,"
    "  recovery_ms INTEGER NOT NULL DEFAULT 0," /* opened -> resolved, summed */
    "  max_recovery_ms INTEGER,"
    "  recoveries INTEGER NOT NULL DEFAULT 0," /* actions finished: */
    "  successful INTEGER NOT NULL DEFAULT 0,"
    "  failed INTEGER NOT NULL DEFAULT 0,"
    "  aborted INTEGER NOT NULL DEFAULT 0,"
    "  actions INTEGER NOT NULL DEFAULT 0," /* every action written ('all' only) */
    "  PRIMARY KEY (scope, key)) WITHOUT ROWID;"
    "CREATE TRIGGER counters_fault_insert AFTER INSERT ON faults BEGIN "
    "  INSERT INTO counters (scope, key) VALUES ('all', ''), ('type', NEW.type),"
    "    ('severity', NEW.severity), ('impact', NEW.impact), ('service', NEW.service)"
    "    ON CONFLICT DO NOTHING;"
    "  UPDATE counters SET faults_all = faults_all + 1,"
    "    faults = faults + (NEW.check_name != 'supervisor') "
    "    WHERE scope = 'all' OR (scope = 'type' AND key = NEW.type) OR "
    "    (scope = 'severity' AND key = NEW.severity) OR (scope = 'impact' AND key = NEW.impact)"
    "    OR (scope = 'service' AND key = NEW.service);"
    "  UPDATE counters SET resolved = resolved + 1,"
    "    recovery_ms = recovery_ms + NEW.resolved_ms - NEW.opened_ms,"
    "    max_recovery_ms = max(coalesce(max_recovery_ms, 0), NEW.resolved_ms - NEW.opened_ms) "
    "    WHERE NEW.resolved_ms IS NOT NULL AND NEW.check_name != 'supervisor' AND "
    "    (scope = 'all' OR (scope = 'type' AND key = NEW.type) OR "
    "    (scope = 'service' AND key = NEW.service));"
    "END;"
    /* A flap reopens a resolved fault: its time leaves the totals until
     * it resolves again. The lifetime maximum stays. */
    "CREATE TRIGGER counters_fault_update AFTER UPDATE OF resolved_ms ON faults "
    "  WHEN NEW.check_name != 'supervisor' AND "
    "  (OLD.resolved_ms IS NULL) != (NEW.resolved_ms IS NULL) BEGIN "
    "  UPDATE counters SET resolved = resolved + iif(NEW.resolved_ms IS NULL, -1, 1),"
    "    recovery_ms = recovery_ms + iif(NEW.resolved_ms IS NULL,"
    "      OLD.opened_ms - OLD.resolved_ms, NEW.resolved_ms - NEW.opened_ms),"
    "    max_recovery_ms = iif(NEW.resolved_ms IS NULL, max_recovery_ms,"
    "      max(coalesce(max_recovery_ms, 0), NEW.resolved_ms - NEW.opened_ms)) "
    "    WHERE scope = 'all' OR (scope = 'type' AND key = NEW.type) OR "
    "    (scope = 'service' AND key = NEW.service);"
    "END;"
    "CREATE TRIGGER counters_action_insert AFTER INSERT ON actions BEGIN "
    "  INSERT INTO counters (scope, key) VALUES ('all', ''), ('service', NEW.service)"
    "    ON CONFLICT DO NOTHING;"
    "  UPDATE counters SET actions = actions + 1 WHERE scope = 'all';"
    "  UPDATE counters SET recoveries = recoveries + 1,"
    "    successful = successful + (NEW.status = 'completed'),"
    "    failed = failed + (NEW.status = 'failed'), aborted = aborted + (NEW.status = 'aborted') "
    "    WHERE NEW.status IN ('completed', 'failed', 'aborted') AND (scope = 'all' OR "
    "    (scope = 'service' AND key = NEW.service) OR "
    "    (scope = 'type' AND key = (SELECT type FROM faults WHERE id = NEW.fault_id)));"
    "END;"
    "CREATE TRIGGER counters_action_update AFTER UPDATE OF status ON actions "
    "  WHEN NEW.status IN ('completed', 'failed', 'aborted') AND "
    "  OLD.status NOT IN ('completed', 'failed', 'aborted') BEGIN "
    "  UPDATE counters SET recoveries = recoveries + 1,"
    "    successful = successful + (NEW.status = 'completed'),"
    "    failed = failed + (NEW.status = 'failed'), aborted = aborted + (NEW.status = 'aborted') "
    "    WHERE scope = 'all' OR (scope = 'service' AND key = NEW.service) OR "
    "    (scope = 'type' AND key = (SELECT type FROM faults WHERE id = NEW.fault_id));"
    "END;"
    /* The seed, from the rows present: a few passes, once. */
    "INSERT INTO counters (scope, key, faults_all, faults, resolved, recovery_ms, "
    "  max_recovery_ms) "
    "  SELECT 'all', '', " JOURNAL__SEED_FAULTS " FROM faults "
    "  UNION ALL SELECT 'type', type, " JOURNAL__SEED_FAULTS " FROM faults GROUP BY type "
    "  UNION ALL SELECT 'severity', severity, " JOURNAL__SEED_FAULTS " FROM faults "
    "    GROUP BY severity "
    "  UNION ALL SELECT 'impact', impact, " JOURNAL__SEED_FAULTS " FROM faults GROUP BY impact "
    "  UNION ALL SELECT 'service', service, " JOURNAL__SEED_FAULTS " FROM faults "
    "    GROUP BY service;"
    "INSERT INTO counters (scope, key, recoveries, successful, failed, aborted, actions) "
    "  SELECT * FROM (SELECT 'all', '', " JOURNAL__SEED_ACTIONS ", count(*) FROM actions "
    "  UNION ALL SELECT 'service', service, " JOURNAL__SEED_ACTIONS ", 0 FROM actions "
    "    GROUP BY service "
    "  UNION ALL SELECT 'type', f.type, " JOURNAL__SEED_ACTIONS ", 0 FROM actions a "
    "    JOIN faults f ON f.id = a.fault_id GROUP BY f.type) WHERE true "
    "  ON CONFLICT (scope, key) DO UPDATE SET recoveries = excluded.recoveries, "
    "  successful = excluded.successful, failed = excluded.failed, "
    "  aborted = excluded.aborted, actions = excluded.actions;",
    /* 5: histograms of detection time (first failed probe -> fault
     * opened: the fault's context "detection_ms", absent where the
     * outage start is unknown) and recovery time (opened -> resolved),
     * overall ('all', '') and per service, in the buckets of
     * lib/histogram.h. Kept by triggers like the counters: lifetime, never
     * lowered by pruning; a flap takes its recovery time back out until
     * it resolves again. sum_ms: the sum of the values in that bucket. A
     * supervisor's give-up fault is no outage of its own: not counted. */
    "CREATE TABLE histograms ("
    "  metric TEXT NOT NULL," /* 'detection', 'recovery' */
    "  scope TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  bucket INTEGER NOT NULL," /* 0 .. HISTOGRAM_BUCKETS - 1 (+Inf) */
    "  count INTEGER NOT NULL DEFAULT 0,"
    "  sum_ms INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (metric, scope, key, bucket)) WITHOUT ROWID;"
    "CREATE TRIGGER histograms_fault_insert AFTER INSERT ON faults "
    "  WHEN NEW.check_name != 'supervisor' BEGIN "
    "  INSERT INTO histograms (metric, scope, key, bucket, count, sum_ms) "
    "    SELECT v.metric, s.scope, s.key, " JOURNAL__BUCKET ", 1, ms FROM "
    "    (SELECT 'detection' AS metric, " JOURNAL__DETECTION(
        "NEW.") " AS ms "
                "     UNION ALL SELECT 'recovery', NEW.resolved_ms - NEW.opened_ms) v, "
                "    (SELECT 'all' AS scope, '' AS key UNION ALL SELECT 'service', NEW.service) s "
                "    WHERE ms IS NOT NULL "
                "    ON CONFLICT (metric, scope, key, bucket) DO UPDATE SET count = count + 1, "
                "    sum_ms = sum_ms + excluded.sum_ms;"
                "END;"
                "CREATE TRIGGER histograms_fault_update AFTER UPDATE OF resolved_ms ON faults "
                "  WHEN NEW.check_name != 'supervisor' AND "
                "  (OLD.resolved_ms IS NULL) != (NEW.resolved_ms IS NULL) BEGIN "
                "  INSERT INTO histograms (metric, scope, key, bucket, count, sum_ms) "
                "    SELECT 'recovery', s.scope, s.key, " JOURNAL__BUCKET ", r.n, r.n * ms FROM "
                "    (SELECT iif(NEW.resolved_ms IS NULL, -1, 1) AS n, iif(NEW.resolved_ms IS "
                "NULL, "
                "     OLD.resolved_ms - OLD.opened_ms, NEW.resolved_ms - NEW.opened_ms) AS ms) r, "
                "    (SELECT 'all' AS scope, '' AS key UNION ALL SELECT 'service', NEW.service) s "
                "    WHERE true "
                "    ON CONFLICT (metric, scope, key, bucket) DO UPDATE SET count = count + "
                "excluded.count, "
                "    sum_ms = sum_ms + excluded.sum_ms;"
                "END;"
                /* The seed, from the rows present: one pass over the faults (each
                 * context parsed once), then the few groups. */
                "INSERT INTO histograms (metric, scope, key, bucket, count, sum_ms) "
                "  WITH f AS MATERIALIZED (SELECT service, " JOURNAL__DETECTION(
                    "") " AS det, "
                        "    resolved_ms - opened_ms AS rec FROM faults WHERE check_name != "
                        "'supervisor') "
                        "  SELECT metric, scope, key, " JOURNAL__BUCKET
                        " AS b, count(*), sum(ms) FROM ("
                        "    SELECT 'detection' AS metric, 'all' AS scope, '' AS key, det AS ms "
                        "FROM f "
                        "    UNION ALL SELECT 'detection', 'service', service, det FROM f "
                        "    UNION ALL SELECT 'recovery', 'all', '', rec FROM f "
                        "    UNION ALL SELECT 'recovery', 'service', service, rec FROM f) "
                        "  WHERE ms IS NOT NULL GROUP BY metric, scope, key, b;",
};
#define JOURNAL_SCHEMA_VERSION (int)(sizeof journal__migrations / sizeof *journal__migrations)

/* Column lists shared by the statements that build one view, so a row reader
 * and every query feeding it agree on column positions. */
#define FAULT_COLS                                                                                 \
    "id, service, check_name, type, severity, impact, description, context, opened_ms, "           \
    "resolved_ms"
#define ACTION_COLS                                                                                \
    "id, fault_id, service, strategy, status, params, result, created_ms, started_ms, "            \
    "finished_ms"

/* The counters' columns, in the order journal__counter_names gives them. */
#define JOURNAL__COUNTER_COLS                                                                      \
    "faults_all, faults, resolved, recovery_ms, max_recovery_ms, recoveries, successful, "         \
    "failed, aborted, actions"

enum journal_stmt {
    STMT_FAULT_INSERT,
    STMT_FAULT_RESOLVE,
    STMT_FAULT_REOPEN,
    STMT_FAULTS_OPEN_FOR,
    STMT_ACTION_INSERT,
    STMT_ACTION_UPDATE,
    STMT_ACTIONS_ABORT,
    STMT_TRANSITION_INSERT,
    STMT_CHILD_SET,
    STMT_CHILD_CLEAR,
    STMT_CHILDREN,
    /* The API's reads, STMT__API_FIRST to STMT__API_LAST: each one reads
     * through an index (journal_api_sql; a unit test checks the plans). */
    STMT_FAULTS_LIST,
    STMT__API_FIRST = STMT_FAULTS_LIST,
    STMT_FAULTS_ACTIVE,
    STMT_FAULT_GET,
    STMT_FAULT_ACTIONS,
    STMT_ACTIONS_LIST,
    STMT_ACTIONS_OF_FAULT,
    STMT_TRANSITIONS_LIST,
    STMT_TRANSITIONS_OF,
    STMT_COUNTERS,
    STMT_COUNTERS_OF,
    STMT_HISTOGRAMS,
    STMT_COUNTS,
    STMT__API_LAST = STMT_COUNTS,
    STMT_PRUNE_FAULT_IDS,
    STMT_PRUNE_FAULT_ACTIONS,
    STMT_PRUNE_FAULTS,
    STMT_PRUNE_ACTIONS,
    STMT_PRUNE_TRANSITIONS,
    STMT__COUNT
};

static const char *const journal__sql[STMT__COUNT] = {
    /* Ids are ours, not SQLite's: a fault is known by its id before the
     * write that records it may have reached the disk. */
    [STMT_FAULT_INSERT] = "INSERT INTO faults (service, check_name, type, severity, impact, "
                          "description, context, opened_ms, resolved_ms, id) "
                          "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [STMT_FAULT_RESOLVE] = "UPDATE faults SET resolved_ms = ?2 WHERE id = ?1",
    [STMT_FAULT_REOPEN] = "UPDATE faults SET resolved_ms = NULL, description = ?2 WHERE id = ?1",
    [STMT_FAULTS_OPEN_FOR] = "SELECT " FAULT_COLS " FROM faults "
                             "WHERE service = ?1 AND resolved_ms IS NULL ORDER BY id",
    [STMT_ACTION_INSERT] = "INSERT INTO actions (fault_id, service, strategy, status, params, "
                           "result, created_ms, started_ms, finished_ms, id) "
                           "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [STMT_ACTION_UPDATE] = "UPDATE actions SET status = ?2, result = ?3, started_ms = ?4, "
                           "finished_ms = ?5, params = ?6 WHERE id = ?1",
    [STMT_ACTIONS_ABORT] = "UPDATE actions SET status = ?1, result = ?2, finished_ms = ?3 "
                           "WHERE status IN (?4, ?5)",
    [STMT_TRANSITION_INSERT] = "INSERT INTO transitions (at_ms, service, from_state, to_state, "
                               "cause) VALUES (?1, ?2, ?3, ?4, ?5)",
    [STMT_CHILD_SET] = "INSERT OR REPLACE INTO children (service, pid, start_ticks, fingerprint) "
                       "VALUES (?1, ?2, ?3, ?4)",
    [STMT_CHILD_CLEAR] = "DELETE FROM children WHERE service = ?1",
    [STMT_CHILDREN] = "SELECT service, pid, start_ticks, fingerprint FROM children ORDER BY "
                      "service",
    /* Pages, newest first: ?1 the cursor (ids below it; INT64_MAX for the
     * first page), ?2 the rows. Column 10: how many actions the fault has. */
    [STMT_FAULTS_LIST] = "SELECT " FAULT_COLS ", (SELECT count(*) FROM actions a "
                         "WHERE a.fault_id = f.id) FROM faults f WHERE id < ?1 "
                         "ORDER BY id DESC LIMIT ?2",
    [STMT_FAULTS_ACTIVE] = "SELECT " FAULT_COLS ", (SELECT count(*) FROM actions a "
                           "WHERE a.fault_id = f.id) FROM faults f INDEXED BY faults_open "
                           "WHERE resolved_ms IS NULL AND id < ?1 ORDER BY id DESC LIMIT ?2",
    [STMT_FAULT_GET] = "SELECT " FAULT_COLS " FROM faults WHERE id = ?1",
    [STMT_FAULT_ACTIONS] = "SELECT " ACTION_COLS " FROM actions WHERE fault_id = ?1 ORDER BY id",
    [STMT_ACTIONS_LIST] = "SELECT " ACTION_COLS " FROM actions WHERE id < ?1 "
                          "ORDER BY id DESC LIMIT ?2",
    [STMT_ACTIONS_OF_FAULT] = "SELECT " ACTION_COLS " FROM actions WHERE fault_id = ?3 "
                              "AND id < ?1 ORDER BY id DESC LIMIT ?2",
    [STMT_TRANSITIONS_LIST] = "SELECT id, at_ms, service, from_state, to_state, cause "
                              "FROM transitions WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
    [STMT_TRANSITIONS_OF] = "SELECT id, at_ms, service, from_state, to_state, cause "
                            "FROM transitions WHERE service = ?3 AND id < ?1 "
                            "ORDER BY id DESC LIMIT ?2",
    [STMT_COUNTERS] = "SELECT scope, key, " JOURNAL__COUNTER_COLS " FROM counters "
                      "ORDER BY scope, key",
    [STMT_COUNTERS_OF] = "SELECT recovery_ms, resolved FROM counters "
                         "WHERE scope = 'service' AND key = ?1",
    [STMT_HISTOGRAMS] = "SELECT metric, scope, key, bucket, count, sum_ms FROM histograms "
                        "ORDER BY metric, scope, key, bucket",
    /* Open faults through their partial index: a few per service at most. */
    [STMT_COUNTS] = "SELECT (SELECT count(*) FROM faults INDEXED BY faults_open "
                    "WHERE resolved_ms IS NULL), faults_all, actions FROM counters "
                    "WHERE scope = 'all' AND key = ''",
    /* Pruning looks only at the oldest ?2 rows of a table (by id, the order
     * they were written in): a bounded read whatever the table's size, and
     * no index on time needed. Open faults are skipped, not counted: there
     * are at most a few per service. A fault goes with its actions, and
     * not while one of them is unfinished. The newest fault and the newest
     * action stay whatever their age: ids continue from them at the next
     * open, and a fault id must never name two faults. */
    [STMT_PRUNE_FAULT_IDS] = "SELECT json_group_array(id) FROM "
                             "(SELECT id, resolved_ms FROM faults WHERE resolved_ms IS NOT NULL "
                             "ORDER BY id LIMIT ?2) f WHERE resolved_ms < ?1 "
                             "AND id < (SELECT max(id) FROM faults) AND NOT EXISTS "
                             "(SELECT 1 FROM actions a WHERE a.fault_id = f.id AND "
                             "(a.status IN (?3, ?4) OR a.id = (SELECT max(id) FROM actions)))",
    [STMT_PRUNE_FAULT_ACTIONS] = "DELETE FROM actions WHERE fault_id IN "
                                 "(SELECT value FROM json_each(?5))",
    [STMT_PRUNE_FAULTS] = "DELETE FROM faults WHERE id IN (SELECT value FROM json_each(?5))",
    [STMT_PRUNE_ACTIONS] = "DELETE FROM actions WHERE id IN (SELECT id FROM actions "
                           "WHERE fault_id IS NULL ORDER BY id LIMIT ?2) "
                           "AND status NOT IN (?3, ?4) AND coalesce(finished_ms, created_ms) < ?1 "
                           "AND id < (SELECT max(id) FROM actions)",
    [STMT_PRUNE_TRANSITIONS] = "DELETE FROM transitions WHERE id IN "
                               "(SELECT id FROM transitions ORDER BY id LIMIT ?2) AND at_ms < ?1",
};

/* The alert queue's statements: prepared on first use, so a journal that
 * never alerts pays nothing. */
enum journal_alert_stmt {
    ASTMT_SEQ_MAX,
    ASTMT_PUSH,
    ASTMT_DELETE,
    ASTMT_DELETE_FAULT,
    ASTMT_READ,
    ASTMT_GROUPS,
    ASTMT_OPEN_SET,
    ASTMT_OPEN_CLEAR,
    ASTMT_OPENS,
    ASTMT_HOOKS,
    ASTMT_FORGET_QUEUE,
    ASTMT_FORGET_OPEN,
    ASTMT__COUNT
};

static const char *const journal__alert_sql[ASTMT__COUNT] = {
    [ASTMT_SEQ_MAX] = "SELECT max(coalesce((SELECT seq FROM sqlite_sequence "
                      "WHERE name = 'alert_queue'), 0), coalesce(max(seq), 0)) FROM alert_queue",
    [ASTMT_PUSH] = "INSERT INTO alert_queue (seq, hook, fault_id, event, opens, service, body) "
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ASTMT_DELETE] = "DELETE FROM alert_queue WHERE hook = ?1 AND seq = ?2",
    [ASTMT_DELETE_FAULT] = "DELETE FROM alert_queue WHERE hook = ?1 AND fault_id = ?2",
    [ASTMT_READ] = "SELECT seq, fault_id, opens, event, service, body FROM alert_queue "
                   "WHERE hook = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
    /* One min() aggregate: SQLite takes the bare column opens from the row
     * holding it, the oldest of the group. */
    [ASTMT_GROUPS] = "SELECT fault_id, min(seq), count(*), opens FROM alert_queue WHERE hook = ?1 "
                     "GROUP BY CASE WHEN fault_id = 0 THEN -seq ELSE fault_id END ORDER BY 2",
    [ASTMT_OPEN_SET] = "INSERT OR REPLACE INTO alert_open (hook, fault_id, symptoms) "
                       "VALUES (?1, ?2, ?3)",
    [ASTMT_OPEN_CLEAR] = "DELETE FROM alert_open WHERE hook = ?1 AND fault_id = ?2",
    [ASTMT_OPENS] = "SELECT o.fault_id, o.symptoms, f.id, f.service, f.check_name, f.type, "
                    "f.severity, f.impact, f.description, f.context, f.opened_ms, f.resolved_ms "
                    "FROM alert_open o LEFT JOIN faults f ON f.id = o.fault_id "
                    "WHERE o.hook = ?1 ORDER BY o.fault_id",
    [ASTMT_HOOKS] = "SELECT hook, sum(n) FROM (SELECT hook, count(*) AS n FROM alert_queue "
                    "GROUP BY hook UNION ALL SELECT hook, 0 FROM alert_open) GROUP BY hook "
                    "ORDER BY hook",
    [ASTMT_FORGET_QUEUE] = "DELETE FROM alert_queue WHERE hook = ?1",
    [ASTMT_FORGET_OPEN] = "DELETE FROM alert_open WHERE hook = ?1",
};

/* A bound value of the write being built (journal__bind_*). */
#define JOURNAL__BINDS 12
enum journal__val_type { JOURNAL__VAL_NONE, JOURNAL__VAL_INT, JOURNAL__VAL_TEXT };
struct journal__val {
    enum journal__val_type type;
    int64_t i;     /* JOURNAL__VAL_INT */
    const char *t; /* JOURNAL__VAL_TEXT: the caller's, valid until the write's exec */
};

/* Writes kept for later as records: the statement, its column count, then
 * each column's type (a byte) and value (an int64, or a uint32 length and
 * the bytes with their NUL), packed in one buffer reused from batch to
 * batch. A kept write is bound again to its prepared statement when its
 * time comes. Why not SQL text (sqlite3_expanded_sql), as before: every
 * write of a batch paid for its text, in case the commit failed, and
 * every write held back while the checkpointer restarted the WAL was
 * parsed again and its triggers compiled (sqlite3_exec): about 240k
 * instructions a write, so a storm's turn that met a restart held the
 * loop for tens of ms. */
struct journal__recs {
    char *buf;
    size_t len, cap; /* bytes */
    size_t n;        /* records */
};

/* The checkpointer: the writer (on the loop) never checkpoints, since a
 * checkpoint syncs the WAL and the database file (one fdatasync here takes
 * 4-12 ms), and neither does it restart the WAL, since the first commit
 * after a restart syncs the WAL's header. A thread of the journal's own
 * does both, on connections of its own, once the WAL passes
 * JOURNAL__CKPT_FRAMES. Its PASSIVE checkpoint takes no lock the writer
 * needs. The restart is a write: for it the thread takes the gate, which
 * the loop holds around each of its write transactions and only ever
 * tries to take; a write that finds it taken waits in memory (pending),
 * never the loop, and goes out at the next flush. The WAL is thus
 * restarted after every cycle unless a reader holds an older snapshot:
 * it holds about JOURNAL__CKPT_FRAMES, plus what is written during one
 * cycle or the longest read. */
#define JOURNAL__CKPT_FRAMES 500
/* After a cycle that could not restart the WAL (a reader held a
 * snapshot), the next waits this long: commits kick it, and each cycle
 * holds the loop's writes back for a moment. */
#define JOURNAL__CKPT_SPACING_MS 10

struct journal__ckpt {
    uv_thread_t thread;
    uv_mutex_t lock;            /* guards due, stop, cycles; never held across SQLite calls */
    uv_cond_t wake;             /* due or stop was set */
    bool due;                   /* the WAL passed its mark since the last cycle began */
    bool stop;                  /* the thread leaves */
    uint64_t cycles;            /* cycles done (journal_checkpoints) */
    uv_mutex_t gate;            /* the loop's write transactions, or the thread's restart */
    atomic_bool want;           /* the thread waits for the gate: the loop lets it have it */
    sqlite3 *db;                /* read-write: the checkpoints and the restart */
    sqlite3 *pin;               /* read-only: a snapshot that keeps the writer from restarting */
    atomic_int frames;          /* the WAL's length after the last commit of either connection */
    atomic_bool held;           /* the loop kept a write back for the gate: wake it once free */
    void (*on_free)(void *arg); /* journal_on_gate_free's; guarded by lock */
    void *on_free_arg;
};

struct journal {
    sqlite3 *db;                     /* one connection, used from the loop thread only */
    struct journal__ckpt *ckpt;      /* NULL on a read-only journal */
    bool gate_held;                  /* the loop holds ckpt->gate (a write transaction) */
    sqlite3_stmt *stmt[STMT__COUNT]; /* prepared at open, finalized at free */
    bool batching;                   /* writes gather in one transaction until journal_flush */
    bool in_txn;                     /* that transaction is open */
    bool children_unsynced;          /* a child row in it, or waiting (journal_sync_children) */
    int64_t next_fault_id;           /* ids handed out: max(id) + 1 at open */
    int64_t next_action_id;
    struct journal__val bind[JOURNAL__BINDS]; /* the write being built's values */
    int nbind;                                /* columns in bind */
    struct journal__recs redo;     /* the open transaction's writes, if its commit fails */
    struct journal__recs pending;  /* refused writes, oldest first; written before newer */
    uint64_t retry_ms;             /* monotonic ms: no new attempt before */
    uint64_t behind_ms;            /* monotonic ms when pending became non-empty */
    uint64_t dropped;              /* writes dropped past JOURNAL_PENDING_MAX */
    char error[128];               /* why the disk refused, while pending */
    uint64_t moved_ms;             /* wall ms a damaged journal was moved aside at open; 0: not */
    char moved_to[4200];           /* where it went */
    char moved_why[256];           /* what SQLite said of it */
    struct journal_retention keep; /* what journal_prune keeps */
    bool shrinking;                /* over the size cap's high mark, not yet under its low one */
    sqlite3_stmt *alert_stmt[ASTMT__COUNT]; /* the alert queue's; NULL until first used */
    int64_t next_alert_seq;                 /* 0 until first used: the highest ever + 1 */
    uint64_t busy_since_us;                 /* journal__busy_brief's first refusal */
};

/* ---- small helpers ---- */

static int journal__fail(struct journal *j, const char *op)
{
    log_event(LOG_ERROR, NULL, "journal-error", "op=%s msg=\"%s\"", op, sqlite3_errmsg(j->db));
    return -EIO;
}

/* The statement for id, reset and with its old bindings cleared. */
static sqlite3_stmt *journal__stmt(struct journal *j, enum journal_stmt id)
{
    sqlite3_stmt *s = j->stmt[id];
    j->nbind = 0;
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return s;
}

/* What the write being built binds, noted beside SQLite's copy: a write
 * kept for later is kept as these values (struct journal__recs). */
static void journal__note(struct journal *j, int col, enum journal__val_type type, int64_t i,
                          const char *t)
{
    assert(col >= 1 && col <= JOURNAL__BINDS); /* the statements above bind fewer */
    while (j->nbind < col)
        j->bind[j->nbind++].type = JOURNAL__VAL_NONE;
    j->bind[col - 1] = (struct journal__val){.type = type, .i = i, .t = t};
}

static void journal__bind_text(struct journal *j, sqlite3_stmt *s, int col, const char *v)
{
    journal__note(j, col, v ? JOURNAL__VAL_TEXT : JOURNAL__VAL_NONE, 0, v);
    if (v)
        sqlite3_bind_text(s, col, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(s, col);
}

static void journal__bind_int(struct journal *j, sqlite3_stmt *s, int col, int64_t v)
{
    journal__note(j, col, JOURNAL__VAL_INT, v, NULL);
    sqlite3_bind_int64(s, col, v);
}

/* 0 means "unset" for every ms and id field of the domain structs. */
static void journal__bind_opt(struct journal *j, sqlite3_stmt *s, int col, int64_t v)
{
    if (v)
        journal__bind_int(j, s, col, v);
    else
        journal__bind_text(j, s, col, NULL);
}

static int64_t journal__limit(size_t limit)
{
    if (limit == 0)
        return JOURNAL_DEFAULT_LIMIT;
    return limit > INT64_MAX ? INT64_MAX : (int64_t)limit;
}

static uint64_t journal__now_ms(void)
{
    return clock_mono_us() / 1000;
}

/* Take the gate for a write transaction. With batching (the daemon's loop),
 * without waiting: false while the checkpointer restarts the WAL. Without,
 * a write is on disk when its call returns, as journal.h says: it waits
 * for the restart (a few ms; only the daemon's start writes so). */
static bool journal__gate_enter(struct journal *j)
{
    if (!j->ckpt || j->gate_held)
        return true;
    if (!j->batching) {
        uv_mutex_lock(&j->ckpt->gate);
        return j->gate_held = true;
    }
    /* Said before trying, so that the thread, which looks after it gives
     * the gate back, cannot miss a write kept back meanwhile (a spurious
     * wake costs one flush). */
    atomic_store(&j->ckpt->held, true);
    /* A loop that writes without pause must not keep the thread out. */
    if (atomic_load(&j->ckpt->want))
        return false;
    j->gate_held = uv_mutex_trylock(&j->ckpt->gate) == 0;
    if (j->gate_held)
        atomic_store(&j->ckpt->held, false);
    return j->gate_held;
}

/* Give the gate back once no write transaction is open. */
static void journal__gate_leave(struct journal *j)
{
    if (j->gate_held && !j->in_txn) {
        uv_mutex_unlock(&j->ckpt->gate);
        j->gate_held = false;
    }
}

/* Errors that may pass (the disk fills and empties, another process holds
 * a lock): the write is kept for later. Anything else (a constraint) would
 * fail forever and is only logged. */
static bool journal__transient(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_NOMEM:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PROTOCOL: return true;
    default: return false;
    }
}

static bool journal__recs_put(struct journal__recs *r, const void *p, size_t n)
{
    if (r->cap - r->len < n) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap - r->len < n)
            cap *= 2;
        char *buf = realloc(r->buf, cap);
        if (!buf)
            return false;
        r->buf = buf;
        r->cap = cap;
    }
    memcpy(r->buf + r->len, p, n);
    r->len += n;
    return true;
}

/* After a storm's batch, its buffer's memory goes back (RSS). */
#define JOURNAL__RECS_KEEP (64u << 10)
static void journal__recs_empty(struct journal__recs *r)
{
    r->len = r->n = 0;
    if (r->cap > JOURNAL__RECS_KEEP) {
        free(r->buf);
        r->buf = NULL;
        r->cap = 0;
    }
}

/* Append the write just made on s (its values: j->bind) to r; false
 * (nothing appended) without memory. */
static bool journal__recs_add(struct journal__recs *r, const struct journal *j, sqlite3_stmt *s)
{
    size_t at = r->len;
    uint8_t n = (uint8_t)j->nbind;
    bool ok = journal__recs_put(r, &s, sizeof s) && journal__recs_put(r, &n, 1);
    for (int c = 0; ok && c < j->nbind; c++) {
        const struct journal__val *v = &j->bind[c];
        uint8_t type = (uint8_t)v->type;
        ok = journal__recs_put(r, &type, 1);
        if (ok && v->type == JOURNAL__VAL_INT)
            ok = journal__recs_put(r, &v->i, sizeof v->i);
        if (ok && v->type == JOURNAL__VAL_TEXT) {
            size_t len = strlen(v->t) + 1;
            uint32_t len32 = (uint32_t)len;
            ok = len <= UINT32_MAX && journal__recs_put(r, &len32, sizeof len32) &&
                 journal__recs_put(r, v->t, len);
        }
    }
    if (!ok)
        r->len = at;
    r->n += ok;
    return ok;
}

/* The record at p: its statement in *s, bound to its values when bind
 * (they stay in the buffer: SQLITE_STATIC, until sqlite3_clear_bindings);
 * returns where the next record begins. */
static const char *journal__rec_next(const char *p, sqlite3_stmt **s, bool bind)
{
    uint8_t n;
    memcpy(s, p, sizeof *s);
    p += sizeof *s;
    n = (uint8_t)*p++;
    if (bind) {
        sqlite3_reset(*s);
        sqlite3_clear_bindings(*s);
    }
    for (int c = 1; c <= n; c++) {
        uint8_t type = (uint8_t)*p++;
        if (type == JOURNAL__VAL_INT) {
            int64_t v;
            memcpy(&v, p, sizeof v);
            p += sizeof v;
            if (bind)
                sqlite3_bind_int64(*s, c, v);
        } else if (type == JOURNAL__VAL_TEXT) {
            uint32_t len;
            memcpy(&len, p, sizeof len);
            p += sizeof len;
            if (bind)
                sqlite3_bind_text(*s, c, p, -1, SQLITE_STATIC);
            p += len;
        }
    }
    return p;
}

static void journal__dropping(struct journal *j)
{
    if (j->dropped++ == 0)
        log_event(LOG_ERROR, NULL, "journal-dropping",
                  "why=\"%zu bytes already wait for the disk\"", j->pending.len);
}

/* Keep the write just made on s for a later attempt, within
 * JOURNAL_PENDING_MAX. */
static void journal__keep(struct journal *j, sqlite3_stmt *s)
{
    size_t at = j->pending.len;
    if (!journal__recs_add(&j->pending, j, s)) {
        journal__dropping(j);
    } else if (j->pending.len > JOURNAL_PENDING_MAX) {
        j->pending.len = at;
        j->pending.n--;
        journal__dropping(j);
    }
}

/* The open transaction's writes, rolled back, go to pending in order. */
static void journal__redo_out(struct journal *j)
{
    const char *p = j->redo.buf, *end = p + j->redo.len;
    while (p < end) {
        sqlite3_stmt *s;
        const char *next = journal__rec_next(p, &s, false);
        size_t len = (size_t)(next - p);
        if (j->pending.len + len > JOURNAL_PENDING_MAX || !journal__recs_put(&j->pending, p, len))
            journal__dropping(j);
        else
            j->pending.n++;
        p = next;
    }
    j->redo.len = j->redo.n = 0;
}

/* The disk refused a write: roll the open transaction back and keep its
 * writes, oldest first, for later. */
static void journal__fall_behind(struct journal *j, const char *op)
{
    char why[sizeof j->error];
    snprintf(why, sizeof why, "%s", sqlite3_errmsg(j->db)); /* before ROLLBACK replaces it */
    if (j->in_txn) {
        sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
        j->in_txn = false;
    }
    journal__gate_leave(j);
    journal__redo_out(j);
    j->retry_ms = journal__now_ms() + JOURNAL_RETRY_MS;
    if (!j->behind_ms) {
        j->behind_ms = journal__now_ms();
        snprintf(j->error, sizeof j->error, "%s", why);
        log_event(LOG_ERROR, NULL, "journal-behind",
                  "op=%s msg=\"%s\" action=\"keeping writes, retrying every %d ms\"", op, j->error,
                  JOURNAL_RETRY_MS);
    }
}

/* Run a write statement. Without batching the autocommit makes it durable
 * (WAL) before we return; with batching, at the next journal_flush. While
 * earlier writes wait for the disk, it waits behind them. 0 when written
 * or kept; -EIO when it can never be written. */
static int journal__exec(struct journal *j, sqlite3_stmt *s, const char *op)
{
    /* Behind, or the checkpointer restarts the WAL (a few ms, then the
     * next flush writes it): the write waits in memory, in order. */
    if (j->pending.n || !journal__gate_enter(j)) {
        if (!j->error[0])
            snprintf(j->error, sizeof j->error, "held back while the WAL starts over");
        sqlite3_reset(s);
        journal__keep(j, s);
        return 0;
    }
    if (j->batching && !j->in_txn) {
        if (sqlite3_exec(j->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
            sqlite3_reset(s);
            journal__fall_behind(j, "begin");
            journal__keep(j, s);
            return 0;
        }
        j->in_txn = true;
    }
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    journal__gate_leave(j); /* autocommit: written (or refused) already */
    if (rc == SQLITE_DONE) {
        if (j->in_txn) /* without memory not kept: lost if the commit fails */
            journal__recs_add(&j->redo, j, s);
        return 0;
    }
    if (journal__transient(rc)) {
        journal__fall_behind(j, op);
        journal__keep(j, s);
        return 0;
    }
    return journal__fail(j, op);
}

/* Write what waits, in one transaction. A write that can never succeed is
 * logged and skipped; a refusal of the disk leaves everything for later. */
static void journal__catch_up(struct journal *j)
{
    size_t skipped = 0;
    if (!journal__gate_enter(j))
        return; /* the checkpointer's restart: a few ms; the next flush tries again */
    if (sqlite3_exec(j->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        goto later;
    for (const char *p = j->pending.buf, *end = p + j->pending.len; p < end;) {
        sqlite3_stmt *s;
        p = journal__rec_next(p, &s, true);
        int rc = sqlite3_step(s);
        if (rc != SQLITE_DONE && !journal__transient(rc))
            log_event(LOG_ERROR, NULL, "journal-error", "op=catch-up msg=\"%s\"",
                      sqlite3_errmsg(j->db));
        sqlite3_reset(s);
        sqlite3_clear_bindings(s); /* they point into pending */
        if (rc == SQLITE_DONE)
            continue;
        if (journal__transient(rc))
            goto later;
        skipped++;
    }
    if (sqlite3_exec(j->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        goto later;
    journal__gate_leave(j);
    /* Writes held back only by the checkpointer's restart are no news. */
    if (j->behind_ms || skipped)
        log_event(LOG_WARN, NULL, "journal-caught-up",
                  "written=%zu skipped=%zu dropped=%llu behind_ms=%llu", j->pending.n - skipped,
                  skipped, (unsigned long long)j->dropped,
                  (unsigned long long)(journal__now_ms() - j->behind_ms));
    journal__recs_empty(&j->pending);
    j->behind_ms = 0;
    j->dropped = 0;
    j->error[0] = '\0';
    return;
later:
    snprintf(j->error, sizeof j->error, "%s", sqlite3_errmsg(j->db));
    sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
    journal__gate_leave(j);
    j->retry_ms = journal__now_ms() + JOURNAL_RETRY_MS;
    if (!j->behind_ms) {
        j->behind_ms = journal__now_ms();
        log_event(LOG_ERROR, NULL, "journal-behind",
                  "op=catch-up msg=\"%s\" action=\"keeping writes, retrying every %d ms\"",
                  j->error, JOURNAL_RETRY_MS);
    }
}

static const char *journal__text(sqlite3_stmt *s, int col)
{
    const unsigned char *t = sqlite3_column_text(s, col);
    return t ? (const char *)t : "";
}

static void journal__copy(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src);
}

/* A stored enum name back to its value; a name this build does not know
 * (hand-edited journal) reads as the first value rather than failing a row. */
static int journal__enum(int (*parse)(const char *), sqlite3_stmt *s, int col)
{
    int v = parse(journal__text(s, col));
    return v < 0 ? 0 : v;
}

/* JSON object text as stored; anything that is not an object reads as {}. */
static json_t *journal__object(const char *text)
{
    json_t *o = json_loads(text, 0, NULL);
    if (json_is_object(o))
        return o;
    json_decref(o);
    return json_object();
}

static json_t *journal__time(sqlite3_stmt *s, int col)
{
    char buf[40];
    if (sqlite3_column_type(s, col) == SQLITE_NULL)
        return json_null();
    return json_string(clock_iso8601((uint64_t)sqlite3_column_int64(s, col), buf, sizeof buf));
}

static json_t *journal__int_or_null(sqlite3_stmt *s, int col)
{
    if (sqlite3_column_type(s, col) == SQLITE_NULL)
        return json_null();
    return json_integer(sqlite3_column_int64(s, col));
}

/* A text column as a JSON string. jansson refuses invalid UTF-8 (a program's
 * captured output may hold any bytes), and one refused string would fail the
 * whole view: such text reads with every non-ASCII byte as '?'. */
static json_t *journal__str(sqlite3_stmt *s, int col)
{
    const char *t = journal__text(s, col);
    json_t *v = json_string(t);
    if (v)
        return v;
    char *ascii = strdup(t);
    for (char *c = ascii; c && *c; c++)
        if ((unsigned char)*c >= 0x80)
            *c = '?';
    v = json_string(ascii ? ascii : "");
    free(ascii);
    return v;
}

static json_t *journal__str_or_null(sqlite3_stmt *s, int col)
{
    if (sqlite3_column_type(s, col) == SQLITE_NULL)
        return json_null();
    return journal__str(s, col);
}

/* to - from in ms, null unless both ends are set. */
static json_t *journal__duration(sqlite3_stmt *s, int from, int to)
{
    if (sqlite3_column_type(s, from) == SQLITE_NULL || sqlite3_column_type(s, to) == SQLITE_NULL)
        return json_null();
    return json_integer(sqlite3_column_int64(s, to) - sqlite3_column_int64(s, from));
}

/* ---- open / close ---- */

static int journal__pragma_int(sqlite3 *db, const char *sql, int *out)
{
    sqlite3_stmt *s = NULL;
    int r = -EIO;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        goto fail;
    if (sqlite3_step(s) != SQLITE_ROW)
        goto fail;
    *out = sqlite3_column_int(s, 0);
    r = 0;
fail:
    sqlite3_finalize(s); /* NULL-safe */
    return r;
}

/* Column 0 of the first row of sql (no parameters). 0 or -EIO. */
static int journal__int64(sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *s = NULL;
    int r = -EIO;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW) {
        *out = sqlite3_column_int64(s, 0);
        r = 0;
    }
    sqlite3_finalize(s);
    return r;
}

/* Bring the schema to JOURNAL_SCHEMA_VERSION, one transaction per step so a
 * crash mid-way leaves a consistent older version. */
static int journal__migrate(sqlite3 *db, char *err, size_t errlen)
{
    int version;
    char sql[48];
    if (journal__pragma_int(db, "PRAGMA user_version", &version) < 0)
        goto fail;
    if (version > JOURNAL_SCHEMA_VERSION) {
        snprintf(err, errlen, "journal schema version %d is newer than this recoverd's (%d)",
                 version, JOURNAL_SCHEMA_VERSION);
        return -EIO;
    }
    for (; version < JOURNAL_SCHEMA_VERSION; version++) {
        if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
            goto fail;
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", version + 1);
        if (sqlite3_exec(db, journal__migrations[version], NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
            snprintf(err, errlen, "migrating the journal to version %d: %s", version + 1,
                     sqlite3_errmsg(db));
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return -EIO;
        }
    }
    return 0;
fail:
    snprintf(err, errlen, "reading the journal schema: %s", sqlite3_errmsg(db));
    return -EIO;
}

/* SQLite's page cache allocates 20 pages in one block at a connection's
 * first read (its PCACHE_INITSZ) and writes a header into each, so all of
 * it is resident: about 88 KiB for each of the four connections (writer,
 * API reader, the checkpointer's two), which mostly need a few pages. With
 * no such block each page is allocated when first needed (at 1,000
 * services, sqlite3_memory_used 0.99 -> 0.65 MB). Set before any
 * connection (sqlite3_config refuses once the library is initialised), so
 * before main, like lib/heap.c's thresholds. */
__attribute__((constructor)) static void journal__pcache_unbulked(void)
{
    sqlite3_config(SQLITE_CONFIG_PAGECACHE, NULL, 0, 0);
}

/* WAL + synchronous=NORMAL: a committed write survives a kill of recoverd
 * (not a power loss) at ~13 us an insert, against ~210 us with FULL. */
static int journal__configure(sqlite3 *db, char *err, size_t errlen)
{
    sqlite3_stmt *s = NULL;
    int wal = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        wal = strcmp(journal__text(s, 0), "wal") == 0;
    sqlite3_finalize(s);
    if (!wal) {
        snprintf(err, errlen, "cannot switch the journal to WAL mode: %s", sqlite3_errmsg(db));
        return -EIO;
    }
    sqlite3_busy_timeout(db, JOURNAL_BUSY_MS);
    /* The writer's page cache at 256 KiB, not SQLite's 2 MiB: its writes touch a few b-tree
     * leaves and index pages, yet at 1,000 services the default grew to 0.9 MiB (heaptrack),
     * about 0.9 KiB a service; the kernel's page cache holds the file anyway. */
    if (sqlite3_exec(db,
                     "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; "
                     "PRAGMA cache_size = -256",
                     NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "configuring the journal: %s", sqlite3_errmsg(db));
        return -EIO;
    }
    return 0;
}

/* Create the file 0600 ourselves (SQLite would use 0644): it holds
 * operational detail. SQLite gives -wal and -shm the main file's mode. A
 * link planted in its place is refused, never followed or chmod'ed. */
static int journal__create_private(const char *path, char *err, size_t errlen)
{
    char why[160];
    int fd = statedir_file_open(path, O_RDWR | O_CREAT, 0600, why, sizeof why);
    if (fd < 0) {
        snprintf(err, errlen, "%s %s", path, why);
        return fd;
    }
    int r = fchmod(fd, 0600) < 0 ? -errno : 0;
    if (r < 0)
        snprintf(err, errlen, "%s: %s", path, strerror(-r));
    close(fd);
    return r;
}

/* What SQLite says of a damaged file, as opposed to an unwritable one. */
static bool journal__damaged(sqlite3 *db)
{
    int rc = sqlite3_errcode(db) & 0xff;
    return rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB;
}

/* PRAGMA quick_check: every page and record readable, O(size); a damaged
 * journal would otherwise fail its first write much later, mid-recovery. */
static int journal__quick_check(sqlite3 *db, char *err, size_t errlen)
{
    sqlite3_stmt *s = NULL;
    int r = -EIO;
    if (sqlite3_prepare_v2(db, "PRAGMA quick_check(1)", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW) {
        const char *verdict = journal__text(s, 0);
        r = strcmp(verdict, "ok") == 0 ? 0 : -EBADMSG;
        if (r < 0)
            snprintf(err, errlen, "quick_check: %s", verdict);
    } else {
        snprintf(err, errlen, "quick_check: %s", sqlite3_errmsg(db));
        r = journal__damaged(db) ? -EBADMSG : -EIO;
    }
    sqlite3_finalize(s);
    return r;
}

/* Open the file at path as j's connection with its statements. -EBADMSG
 * when SQLite finds it damaged (not a database, malformed), -EIO else. */
static int journal__open_db(struct journal *j, const char *path, char *err, size_t errlen)
{
    int r;
    if ((r = journal__create_private(path, err, errlen)) < 0)
        return r;
    /* NOFOLLOW: SQLite refuses a symbolic link anywhere in the path (it
     * would otherwise resolve one and open its target); it opens the
     * -wal, -shm and -journal files with O_NOFOLLOW itself. */
    if (sqlite3_open_v2(path, &j->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW,
                        NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, j->db ? sqlite3_errmsg(j->db) : "out of memory");
        return -EIO;
    }
    if ((r = journal__configure(j->db, err, errlen)) < 0 ||
        (r = journal__migrate(j->db, err, errlen)) < 0 ||
        (r = journal__quick_check(j->db, err, errlen)) < 0)
        return r == -EIO && journal__damaged(j->db) ? -EBADMSG : r;
    for (int i = 0; i < STMT__COUNT; i++) {
        if (sqlite3_prepare_v3(j->db, journal__sql[i], -1, SQLITE_PREPARE_PERSISTENT, &j->stmt[i],
                               NULL) != SQLITE_OK) {
            snprintf(err, errlen, "preparing journal statement %d: %s", i, sqlite3_errmsg(j->db));
            return journal__damaged(j->db) ? -EBADMSG : -EIO;
        }
    }
    if (journal__int64(j->db, "SELECT coalesce(max(id), 0) + 1 FROM faults", &j->next_fault_id) <
            0 ||
        journal__int64(j->db, "SELECT coalesce(max(id), 0) + 1 FROM actions", &j->next_action_id) <
            0) {
        snprintf(err, errlen, "reading the journal: %s", sqlite3_errmsg(j->db));
        return journal__damaged(j->db) ? -EBADMSG : -EIO;
    }
    return 0;
}

static void journal__close_db(struct journal *j)
{
    for (int i = 0; i < STMT__COUNT; i++) {
        sqlite3_finalize(j->stmt[i]);
        j->stmt[i] = NULL;
    }
    for (int i = 0; i < ASTMT__COUNT; i++) {
        sqlite3_finalize(j->alert_stmt[i]);
        j->alert_stmt[i] = NULL;
    }
    sqlite3_close(j->db); /* NULL-safe; the last connection checkpoints the WAL */
    j->db = NULL;
}

/* ---- the checkpointer (see struct journal__ckpt) ---- */

/* The WAL is cut back to this after a restart (it would otherwise stay at
 * its largest size): the journal's files are journal.db, bounded by
 * max_bytes, plus at most about this much. */
#define JOURNAL__WAL_LIMIT "4194304"

/* The restart: a write with the WAL all copied, which starts it over (and
 * syncs its new header) here rather than in the loop's next commit. The
 * same user_version is written again: one page, nothing changed. A reader
 * on an older snapshot makes it an append instead; the next cycle tries
 * again. */
static bool journal__ckpt_restart(struct journal__ckpt *c)
{
    int frames = 0, copied = 0;
    if (sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &frames, &copied) !=
            SQLITE_OK ||
        frames == 0 || copied != frames)
        return frames == 0;
    char sql[64];
    snprintf(sql, sizeof sql, "BEGIN IMMEDIATE; PRAGMA user_version = %d; COMMIT",
             JOURNAL_SCHEMA_VERSION);
    if (sqlite3_exec(c->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
        return false;
    }
    return atomic_load(&c->frames) == 1; /* the WAL holds this write alone: it started over */
}

/* One cycle: copy the WAL into the database file while the loop writes on
 * (the pin's snapshot keeps the writer from restarting a WAL this copied
 * whole), then, with the gate, copy what came meanwhile and restart.
 * Whether the WAL was restarted. */
static bool journal__ckpt_cycle(struct journal__ckpt *c)
{
    sqlite3_exec(c->pin, "BEGIN; SELECT 1 FROM sqlite_schema LIMIT 1", NULL, NULL, NULL);
    sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    atomic_store(&c->want, true);
    uv_mutex_lock(&c->gate);
    atomic_store(&c->want, false);
    if (!sqlite3_get_autocommit(c->pin))
        sqlite3_exec(c->pin, "COMMIT", NULL, NULL, NULL);
    bool restarted = journal__ckpt_restart(c);
    uv_mutex_unlock(&c->gate);
    /* Writes the loop kept back would otherwise wait for its next turn,
     * which an idle loop may not have for a second. */
    if (atomic_exchange(&c->held, false)) {
        uv_mutex_lock(&c->lock);
        if (c->on_free)
            c->on_free(c->on_free_arg);
        uv_mutex_unlock(&c->lock);
    }
    return restarted;
}

static void journal__ckpt_main(void *arg)
{
    struct journal__ckpt *c = arg;
    uint64_t not_before = 0;
    uv_mutex_lock(&c->lock);
    while (!c->stop) {
        uint64_t now = uv_hrtime();
        if (!c->due) {
            uv_cond_wait(&c->wake, &c->lock);
            continue;
        }
        if (now < not_before) {
            (void)uv_cond_timedwait(&c->wake, &c->lock, not_before - now);
            continue;
        }
        c->due = false;
        /* Commits that came during the last cycle woke it again: the WAL
         * may have started over since. */
        if (atomic_load(&c->frames) < JOURNAL__CKPT_FRAMES)
            continue;
        uv_mutex_unlock(&c->lock);
        bool restarted = journal__ckpt_cycle(c);
        not_before = restarted ? 0 : uv_hrtime() + JOURNAL__CKPT_SPACING_MS * 1000000ULL;
        uv_mutex_lock(&c->lock);
        c->cycles++;
    }
    uv_mutex_unlock(&c->lock);
}

/* After each commit of the checkpointer's connection: how long the WAL is. */
static int journal__ckpt_frames(void *arg, sqlite3 *db, const char *name, int frames)
{
    (void)db;
    (void)name;
    atomic_store(&((struct journal__ckpt *)arg)->frames, frames);
    return SQLITE_OK;
}

/* Called by SQLite after each commit of the writer, on the loop: wake the
 * checkpointer once the WAL passed its mark. Its lock is never held long. */
static int journal__wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    (void)db;
    (void)name;
    struct journal__ckpt *c = arg;
    atomic_store(&c->frames, frames);
    if (frames >= JOURNAL__CKPT_FRAMES) {
        uv_mutex_lock(&c->lock);
        c->due = true;
        uv_cond_signal(&c->wake);
        uv_mutex_unlock(&c->lock);
    }
    return SQLITE_OK;
}

static int journal__ckpt_open_db(const char *path, int flags, sqlite3 **db)
{
    if (sqlite3_open_v2(path, db, flags | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW, NULL) !=
        SQLITE_OK)
        return -EIO;
    sqlite3_busy_timeout(*db, JOURNAL_BUSY_MS);
    return 0;
}

/* Its connections closed (NULL-safe) and its locks destroyed. */
static void journal__ckpt_free(struct journal__ckpt *c)
{
    sqlite3_close(c->pin);
    sqlite3_close(c->db);
    uv_cond_destroy(&c->wake);
    uv_mutex_destroy(&c->lock);
    uv_mutex_destroy(&c->gate);
    free(c);
}

static void journal__ckpt_stop(struct journal *j)
{
    struct journal__ckpt *c = j->ckpt;
    if (!c)
        return;
    uv_mutex_lock(&c->lock);
    c->stop = true;
    uv_cond_signal(&c->wake);
    uv_mutex_unlock(&c->lock);
    uv_thread_join(&c->thread);
    journal__ckpt_free(c);
    j->ckpt = NULL;
    sqlite3_wal_hook(j->db, NULL, NULL);
}

/* The writer's busy handler. A lock held by another process, or a long
 * checkpoint, is a refusal: the write waits in memory, never the loop. But
 * one refusal is ours and brief: a connection of the checkpointer that
 * reads the WAL's header while a commit rewrites it takes the write lock
 * for a moment to read it again, and the loop's next write met it
 * ("database is locked", once in thousands of writes on a busy host),
 * which held the journal back for a whole retry period. */
static int journal__busy_brief(void *arg, int tries)
{
    struct journal *j = arg;
    uint64_t now = clock_mono_us();
    if (tries == 0)
        j->busy_since_us = now;
    if (now - j->busy_since_us >= JOURNAL__BUSY_BRIEF_US)
        return 0;
    struct timespec nap = {.tv_nsec = 20000};
    nanosleep(&nap, NULL);
    return 1;
}

/* Start j's checkpointer, and turn the writer's own checkpoints off. */
static int journal__ckpt_start(struct journal *j, const char *path, char *err, size_t errlen)
{
    struct journal__ckpt *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    if (uv_mutex_init(&c->lock) < 0 || uv_cond_init(&c->wake) < 0 || uv_mutex_init(&c->gate) < 0) {
        snprintf(err, errlen, "cannot start the journal's checkpointer");
        free(c); /* only on a failed init: nothing to destroy on Linux */
        return -ENOMEM;
    }
    if (journal__ckpt_open_db(path, SQLITE_OPEN_READWRITE, &c->db) < 0 ||
        journal__ckpt_open_db(path, SQLITE_OPEN_READONLY, &c->pin) < 0 ||
        /* A read, so that the connection knows the file is in WAL mode
         * (until then a checkpoint does nothing). */
        sqlite3_exec(c->db,
                     "PRAGMA journal_size_limit = " JOURNAL__WAL_LIMIT
                     "; SELECT 1 FROM sqlite_schema LIMIT 1",
                     NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: the checkpointer's connection: %s", path,
                 c->db ? sqlite3_errmsg(c->db) : "out of memory");
        goto fail;
    }
    /* Both hooks replace SQLite's automatic checkpoints. */
    sqlite3_wal_hook(c->db, journal__ckpt_frames, c);
    if (uv_thread_create(&c->thread, journal__ckpt_main, c) < 0) {
        snprintf(err, errlen, "cannot start the journal's checkpointer thread");
        goto fail;
    }
    j->ckpt = c;
    sqlite3_wal_hook(j->db, journal__wal_hook, c);
    sqlite3_busy_handler(j->db, journal__busy_brief, j);
    return 0;
fail:
    journal__ckpt_free(c);
    return -EIO;
}

void journal_on_gate_free(struct journal *j, void (*wake)(void *arg), void *arg)
{
    struct journal__ckpt *c = j->ckpt;
    if (!c)
        return;
    uv_mutex_lock(&c->lock);
    c->on_free = wake;
    c->on_free_arg = arg;
    uv_mutex_unlock(&c->lock);
}

uint64_t journal_checkpoints(struct journal *j)
{
    struct journal__ckpt *c = j->ckpt;
    if (!c)
        return 0;
    uv_mutex_lock(&c->lock);
    uint64_t n = c->cycles;
    uv_mutex_unlock(&c->lock);
    return n;
}

/* Move path and its -journal, -wal and -shm to path.corrupt-<time>[-...],
 * the main file last: a WAL or rollback journal left beside a fresh
 * database would be replayed into it.
 * Never over an earlier copy (RENAME_NOREPLACE). 0 or -errno. */
static int journal__move_aside(struct journal *j, const char *path, char *err, size_t errlen)
{
    static const char *const suffixes[] = {"-journal", "-wal", "-shm", ""};
    char stamp[32], from[4200], to[4300];
    struct tm tm;
    uint64_t now = clock_wall_ms();
    time_t secs = (time_t)(now / 1000);
    gmtime_r(&secs, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", &tm);
    snprintf(j->moved_to, sizeof j->moved_to, "%s.corrupt-%s.%03uZ", path, stamp,
             (unsigned)(now % 1000));
    for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++) {
        snprintf(from, sizeof from, "%s%s", path, suffixes[i]);
        snprintf(to, sizeof to, "%s%s", j->moved_to, suffixes[i]);
        if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) < 0 && errno != ENOENT) {
            int e = errno;
            snprintf(err, errlen, "moving the damaged journal %s aside: %s", from, strerror(e));
            return -e;
        }
    }
    j->moved_ms = now;
    return 0;
}

struct journal *journal_open(const char *path, char *err, size_t errlen)
{
    struct journal *j = calloc(1, sizeof *j);
    if (!j) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    int r = journal__open_db(j, path, err, errlen);
    if (r == -EBADMSG) {
        /* History is worth less than supervision: keep the damaged file for
         * whoever investigates, and go on with a fresh journal. */
        snprintf(j->moved_why, sizeof j->moved_why, "%s", err);
        journal__close_db(j);
        if (journal__move_aside(j, path, err, errlen) < 0)
            goto fail;
        log_event(LOG_ERROR, NULL, "journal-corrupt",
                  "path=%s moved_to=%s error=\"%s\" action=\"starting a fresh journal\"", path,
                  j->moved_to, j->moved_why);
        r = journal__open_db(j, path, err, errlen);
    }
    if (r < 0 || journal__ckpt_start(j, path, err, errlen) < 0)
        goto fail;
    return j;
fail:
    journal_free(j);
    return NULL;
}

struct journal *journal_open_readonly(const char *path, char *err, size_t errlen)
{
    struct journal *j = calloc(1, sizeof *j);
    int version = -1;
    if (!j) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (sqlite3_open_v2(path, &j->db,
                        SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW,
                        NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, j->db ? sqlite3_errmsg(j->db) : "out of memory");
        goto fail;
    }
    /* A reader in WAL mode waits only while the writer rebuilds the WAL
     * index or resets the WAL, briefly; this is off the loop. */
    sqlite3_busy_timeout(j->db, JOURNAL_BUSY_MS);
    /* Its page cache bounded like the writer's (journal__configure): SQLite's
     * 2 MiB default would stay resident after one large read while nothing
     * is written (a write empties a reader's cache at its next read). */
    if (sqlite3_exec(j->db, "PRAGMA cache_size = -256", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(j->db));
        goto fail;
    }
    if (journal__pragma_int(j->db, "PRAGMA user_version", &version) < 0 ||
        version != JOURNAL_SCHEMA_VERSION) {
        snprintf(err, errlen, "%s: schema version %d, not %d (%s)", path, version,
                 JOURNAL_SCHEMA_VERSION, sqlite3_errmsg(j->db));
        goto fail;
    }
    for (int i = STMT__API_FIRST; i <= STMT__API_LAST; i++) {
        if (sqlite3_prepare_v3(j->db, journal__sql[i], -1, SQLITE_PREPARE_PERSISTENT, &j->stmt[i],
                               NULL) != SQLITE_OK) {
            snprintf(err, errlen, "preparing journal statement %d: %s", i, sqlite3_errmsg(j->db));
            goto fail;
        }
    }
    return j;
fail:
    journal_free(j);
    return NULL;
}

int journal_read_begin(struct journal *j)
{
    return sqlite3_exec(j->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK ? 0
                                                                       : journal__fail(j, "begin");
}

void journal_read_end(struct journal *j)
{
    sqlite3_exec(j->db, "COMMIT", NULL, NULL, NULL);
}

const char *journal_moved_aside(const struct journal *j, const char **why, uint64_t *at_ms)
{
    if (!j->moved_ms)
        return NULL;
    *why = j->moved_why;
    *at_ms = j->moved_ms;
    return j->moved_to;
}

void journal_set_batching(struct journal *j, bool on)
{
    journal_flush(j);
    j->batching = on;
}

int journal_flush(struct journal *j)
{
    if (j->in_txn) {
        if (sqlite3_exec(j->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK) {
            j->in_txn = false;
            journal__recs_empty(&j->redo);
        } else {
            journal__fall_behind(j, "commit");
        }
        journal__gate_leave(j);
    }
    if (j->pending.n && journal__now_ms() >= j->retry_ms)
        journal__catch_up(j);
    if (!j->in_txn && !j->pending.n)
        j->children_unsynced = false;
    return j->pending.n ? -EAGAIN : 0;
}

size_t journal_pending(const struct journal *j, const char **error)
{
    if (error)
        *error = j->pending.n ? j->error : NULL;
    return j->pending.n;
}

void journal_free(struct journal *j)
{
    if (!j)
        return;
    /* The batch out (the gate free), then the checkpointer stopped: its
     * restart could have held writes back, which go now. */
    journal_flush(j);
    journal__ckpt_stop(j);
    journal_flush(j);
    if (j->pending.n) {
        j->retry_ms = 0; /* a last chance */
        journal_flush(j);
    }
    if (j->pending.n)
        log_event(LOG_ERROR, NULL, "journal-lost", "writes=%zu msg=\"%s\"", j->pending.n, j->error);
    free(j->pending.buf);
    free(j->redo.buf);
    journal__close_db(j);
    free(j);
}

/* ---- retention ---- */

/* Pruning for size starts above the high mark and goes on down to the low
 * one: each episode frees a few percent at once rather than a few rows at
 * every write. The margin under the cap absorbs what is written between
 * two checks. */
#define JOURNAL__HIGH(cap) ((cap) - (cap) / 16)
#define JOURNAL__LOW(cap) ((cap) - (cap) / 8)
void journal_set_retention(struct journal *j, const struct journal_retention *r)
{
    j->keep = *r;
    sqlite3_exec(j->db, "PRAGMA journal_size_limit = " JOURNAL__WAL_LIMIT, NULL, NULL, NULL);
}

int journal_size(struct journal *j, uint64_t *used, uint64_t *file)
{
    int64_t pages, free_pages, page_size;
    if (journal__int64(j->db, "PRAGMA page_count", &pages) < 0 ||
        journal__int64(j->db, "PRAGMA freelist_count", &free_pages) < 0 ||
        journal__int64(j->db, "PRAGMA page_size", &page_size) < 0)
        return journal__fail(j, "size");
    *used = (uint64_t)(pages - free_pages) * (uint64_t)page_size;
    *file = (uint64_t)pages * (uint64_t)page_size;
    return 0;
}

/* A prune statement, with what it names of: ?1 the cut (wall ms), ?2 the
 * rows per table, ?3 and ?4 the unfinished statuses, ?5 the fault ids. */
static sqlite3_stmt *journal__prune_stmt(struct journal *j, enum journal_stmt id, uint64_t cut,
                                         unsigned max_rows, const char *ids)
{
    sqlite3_stmt *s = journal__stmt(j, id);
    int n = sqlite3_bind_parameter_count(s);
    journal__bind_int(j, s, 1, (int64_t)cut);
    journal__bind_int(j, s, 2, max_rows);
    if (n >= 4) {
        journal__bind_text(j, s, 3, action_status_name(ACTION_PENDING));
        journal__bind_text(j, s, 4, action_status_name(ACTION_EXECUTING));
    }
    if (n >= 5)
        journal__bind_text(j, s, 5, ids);
    return s;
}

/* The oldest prunable faults older than cut, as a JSON array of ids. */
static char *journal__prune_fault_ids(struct journal *j, uint64_t cut, unsigned max_rows)
{
    sqlite3_stmt *s = journal__prune_stmt(j, STMT_PRUNE_FAULT_IDS, cut, max_rows, NULL);
    char *ids = sqlite3_step(s) == SQLITE_ROW ? strdup(journal__text(s, 0)) : NULL;
    if (!ids)
        journal__fail(j, "prune");
    sqlite3_reset(s);
    return ids;
}

/* Whether this batch prunes for size, with the hysteresis of the marks. */
static bool journal__over_cap(struct journal *j)
{
    uint64_t used, file, cap = j->keep.max_bytes;
    if (!cap || journal_size(j, &used, &file) < 0)
        return false;
    bool was = j->shrinking;
    j->shrinking = used > (was ? JOURNAL__LOW(cap) : JOURNAL__HIGH(cap));
    if (j->shrinking != was)
        log_event(LOG_INFO, NULL, j->shrinking ? "journal-pruning" : "journal-pruned",
                  "reason=size used_bytes=%llu max_bytes=%llu", (unsigned long long)used,
                  (unsigned long long)cap);
    return j->shrinking;
}

int journal_prune(struct journal *j, uint64_t now_ms, unsigned max_rows)
{
    /* Behind: the disk refuses writes, and deletes would only queue up. */
    if (j->pending.n || max_rows == 0)
        return 0;
    /* Rows older than now - span go: keep_ms for size, else max_age (never
     * less than keep_ms). */
    uint64_t age = j->keep.max_age_ms, keep = j->keep.keep_ms, span;
    if (journal__over_cap(j))
        span = keep;
    else if (age)
        span = age > keep ? age : keep;
    else
        return 0;
    if (now_ms <= span)
        return 0;
    uint64_t cut = now_ms - span;
    char *ids = journal__prune_fault_ids(j, cut, max_rows);
    if (!ids)
        return -EIO;
    /* The faults' actions before the faults (the foreign key). */
    static const enum journal_stmt steps[] = {STMT_PRUNE_FAULT_ACTIONS, STMT_PRUNE_FAULTS,
                                              STMT_PRUNE_ACTIONS, STMT_PRUNE_TRANSITIONS};
    int total = 0;
    for (size_t i = 0; i < sizeof steps / sizeof *steps && total >= 0; i++) {
        sqlite3_stmt *s = journal__prune_stmt(j, steps[i], cut, max_rows, ids);
        if (journal__exec(j, s, "prune") < 0)
            total = -EIO;
        else if (!j->pending.n) /* else kept for later: not done yet */
            total += sqlite3_changes(j->db);
    }
    free(ids);
    return total;
}

/* ---- faults ---- */

int journal_fault_open(struct journal *j, struct fault *f)
{
    sqlite3_stmt *s = journal__stmt(j, STMT_FAULT_INSERT);
    journal__bind_text(j, s, 1, f->service);
    journal__bind_text(j, s, 2, f->check);
    journal__bind_text(j, s, 3, fault_type_name(f->type));
    journal__bind_text(j, s, 4, severity_name(f->severity));
    journal__bind_text(j, s, 5, impact_name(f->impact));
    journal__bind_text(j, s, 6, f->description);
    journal__bind_text(j, s, 7, f->context ? f->context : "{}");
    journal__bind_int(j, s, 8, (int64_t)f->opened_ms);
    journal__bind_opt(j, s, 9, (int64_t)f->resolved_ms);
    journal__bind_int(j, s, 10, j->next_fault_id);
    if (journal__exec(j, s, "fault-open") < 0)
        return -EIO;
    f->id = j->next_fault_id++;
    return 0;
}

int journal_fault_resolve(struct journal *j, const struct fault *f)
{
    sqlite3_stmt *s = journal__stmt(j, STMT_FAULT_RESOLVE);
    journal__bind_int(j, s, 1, f->id);
    journal__bind_opt(j, s, 2, (int64_t)f->resolved_ms);
    return journal__exec(j, s, "fault-resolve");
}

int journal_fault_reopen(struct journal *j, const struct fault *f)
{
    sqlite3_stmt *s = journal__stmt(j, STMT_FAULT_REOPEN);
    journal__bind_int(j, s, 1, f->id);
    journal__bind_text(j, s, 2, f->description);
    return journal__exec(j, s, "fault-reopen");
}

/* Columns of FAULT_COLS, from column at on, into a struct fault. */
static void journal__fault_read_at(sqlite3_stmt *s, int at, struct fault *f)
{
    memset(f, 0, sizeof *f);
    f->id = sqlite3_column_int64(s, at);
    journal__copy(f->service, sizeof f->service, journal__text(s, at + 1));
    journal__copy(f->check, sizeof f->check, journal__text(s, at + 2));
    f->type = (enum fault_type)journal__enum(fault_type_parse, s, at + 3);
    f->severity = (enum severity)journal__enum(severity_parse, s, at + 4);
    f->impact = (enum impact)journal__enum(impact_parse, s, at + 5);
    journal__copy(f->description, sizeof f->description, journal__text(s, at + 6));
    f->context = strdup(journal__text(s, at + 7));
    f->opened_ms = (uint64_t)sqlite3_column_int64(s, at + 8);
    f->resolved_ms = (uint64_t)sqlite3_column_int64(s, at + 9); /* NULL reads as 0 */
}

static void journal__fault_read(sqlite3_stmt *s, struct fault *f)
{
    journal__fault_read_at(s, 0, f);
}

int journal_faults_open_for(struct journal *j, const char *service, struct fault **out)
{
    sqlite3_stmt *s = journal__stmt(j, STMT_FAULTS_OPEN_FOR);
    struct fault *v = NULL;
    int n = 0, cap = 0, rc;
    journal__bind_text(j, s, 1, service);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4;
            struct fault *nv = realloc(v, (size_t)cap * sizeof *v);
            if (!nv)
                goto fail;
            v = nv;
        }
        journal__fault_read(s, &v[n++]);
    }
    if (rc != SQLITE_DONE)
        goto fail;
    sqlite3_reset(s);
    *out = v;
    return n;
fail:
    journal__fail(j, "faults-open-for");
    sqlite3_reset(s);
    for (int i = 0; i < n; i++)
        free(v[i].context);
    free(v);
    *out = NULL;
    return -EIO;
}

/* ---- actions ---- */

int journal_action_insert(struct journal *j, struct action *a)
{
    sqlite3_stmt *s = journal__stmt(j, STMT_ACTION_INSERT);
    journal__bind_opt(j, s, 1, a->fault_id);
    journal__bind_text(j, s, 2, a->service);
    journal__bind_text(j, s, 3, strategy_name(a->strategy));
    journal__bind_text(j, s, 4, action_status_name(a->status));
    journal__bind_text(j, s, 5, a->params ? a->params : "{}");
    journal__bind_text(j, s, 6, a->result ? a->result : "");
    journal__bind_int(j, s, 7, (int64_t)a->created_ms);
    journal__bind_opt(j, s, 8, (int64_t)a->started_ms);
    journal__bind_opt(j, s, 9, (int64_t)a->finished_ms);
    journal__bind_int(j, s, 10, j->next_action_id);
    if (journal__exec(j, s, "action-insert") < 0)
        return -EIO;
    a->id = j->next_action_id++;
    return 0;
}

int journal_action_update(struct journal *j, const struct action *a)
{
    sqlite3_stmt *s = journal__stmt(j, STMT_ACTION_UPDATE);
    journal__bind_int(j, s, 1, a->id);
    journal__bind_text(j, s, 2, action_status_name(a->status));
    journal__bind_text(j, s, 3, a->result ? a->result : "");
    journal__bind_opt(j, s, 4, (int64_t)a->started_ms);
    journal__bind_opt(j, s, 5, (int64_t)a->finished_ms);
    journal__bind_text(j, s, 6, a->params ? a->params : "{}");
    return journal__exec(j, s, "action-update");
}

int journal_actions_abort_unfinished(struct journal *j, const char *result, uint64_t at_ms)
{
    sqlite3_stmt *s = journal__stmt(j, STMT_ACTIONS_ABORT);
    journal__bind_text(j, s, 1, action_status_name(ACTION_ABORTED));
    journal__bind_text(j, s, 2, result ? result : "");
    journal__bind_int(j, s, 3, (int64_t)at_ms);
    journal__bind_text(j, s, 4, action_status_name(ACTION_PENDING));
    journal__bind_text(j, s, 5, action_status_name(ACTION_EXECUTING));
    bool behind = j->pending.n > 0;
    if (journal__exec(j, s, "actions-abort") < 0)
        return -EIO;
    return behind || j->pending.n ? 0 : sqlite3_changes(j->db); /* kept: not known yet */
}

/* ---- transitions and children ---- */

int journal_transition(struct journal *j, const char *service, enum state from, enum state to,
                       const char *cause, uint64_t at_ms)
{
    sqlite3_stmt *s = journal__stmt(j, STMT_TRANSITION_INSERT);
    journal__bind_int(j, s, 1, (int64_t)at_ms);
    journal__bind_text(j, s, 2, service);
    journal__bind_text(j, s, 3, state_name(from));
    journal__bind_text(j, s, 4, state_name(to));
    journal__bind_text(j, s, 5, cause);
    return journal__exec(j, s, "transition");
}

int journal_child_set(struct journal *j, const struct journal_child *c)
{
    sqlite3_stmt *s = journal__stmt(j, STMT_CHILD_SET);
    journal__bind_text(j, s, 1, c->service);
    journal__bind_int(j, s, 2, c->pid);
    journal__bind_int(j, s, 3, (int64_t)c->start_ticks);
    journal__bind_text(j, s, 4, c->fingerprint);
    int r = journal__exec(j, s, "child-set");
    /* Durable before the next spawn (journal_sync_children) or at the end
     * of the turn, whichever comes first: the rows of a storm's spawns that
     * report together share one commit. */
    if (r == 0 && (j->in_txn || j->pending.n))
        j->children_unsynced = true;
    return r;
}

int journal_sync_children(struct journal *j)
{
    return j->children_unsynced ? journal_flush(j) : 0;
}

int journal_child_clear(struct journal *j, const char *service)
{
    sqlite3_stmt *s = journal__stmt(j, STMT_CHILD_CLEAR);
    journal__bind_text(j, s, 1, service);
    return journal__exec(j, s, "child-clear");
}

/* The rows are read in full before fn runs, so fn may call journal_child_clear
 * (the usual reaction to a stale child) without writing under an open read. */
int journal_children(struct journal *j, void (*fn)(const struct journal_child *c, void *arg),
                     void *arg)
{
    sqlite3_stmt *s = journal__stmt(j, STMT_CHILDREN);
    struct journal_child *v = NULL;
    int n = 0, cap = 0, rc, r = -EIO;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            struct journal_child *nv = realloc(v, (size_t)cap * sizeof *v);
            if (!nv)
                break;
            v = nv;
        }
        v[n].service = strdup(journal__text(s, 0));
        v[n].pid = (pid_t)sqlite3_column_int64(s, 1);
        v[n].start_ticks = (uint64_t)sqlite3_column_int64(s, 2);
        v[n].fingerprint = strdup(journal__text(s, 3));
        n++;
        if (!v[n - 1].service || !v[n - 1].fingerprint)
            break;
    }
    if (rc != SQLITE_DONE) {
        journal__fail(j, "children");
        goto fail;
    }
    sqlite3_reset(s);
    for (int i = 0; i < n; i++)
        fn(&v[i], arg);
    r = 0;
fail:
    sqlite3_reset(s);
    for (int i = 0; i < n; i++) {
        free((char *)v[i].service);
        free((char *)v[i].fingerprint);
    }
    free(v);
    return r;
}

/* ---- the alert queue ---- */

/* The statement for id, prepared on first use, reset and unbound; NULL
 * (logged) if it cannot be prepared. */
static sqlite3_stmt *journal__alert_stmt(struct journal *j, enum journal_alert_stmt id)
{
    if (!j->alert_stmt[id] &&
        sqlite3_prepare_v3(j->db, journal__alert_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                           &j->alert_stmt[id], NULL) != SQLITE_OK) {
        journal__fail(j, "alert-prepare");
        return NULL;
    }
    sqlite3_reset(j->alert_stmt[id]);
    sqlite3_clear_bindings(j->alert_stmt[id]);
    j->nbind = 0;
    return j->alert_stmt[id];
}

/* A write of the alert queue: (hook, id) bound as ?1, ?2. */
static int journal__alert_write(struct journal *j, enum journal_alert_stmt id, const char *hook,
                                int64_t key, const char *op)
{
    sqlite3_stmt *s = journal__alert_stmt(j, id);
    if (!s)
        return -EIO;
    journal__bind_text(j, s, 1, hook);
    journal__bind_int(j, s, 2, key);
    return journal__exec(j, s, op);
}

void journal_alert_release(struct journal_alert *m)
{
    if (!m)
        return;
    free(m->body);
    m->body = NULL;
}

int64_t journal_alert_seq_next(struct journal *j)
{
    if (!j->next_alert_seq) {
        sqlite3_stmt *s = journal__alert_stmt(j, ASTMT_SEQ_MAX);
        if (!s)
            return 0;
        if (sqlite3_step(s) == SQLITE_ROW)
            j->next_alert_seq = sqlite3_column_int64(s, 0) + 1;
        else
            journal__fail(j, "alert-seq");
        sqlite3_reset(s);
        if (!j->next_alert_seq)
            return 0;
    }
    return j->next_alert_seq++;
}

int journal_alert_push(struct journal *j, const char *hook, const struct journal_alert *m)
{
    sqlite3_stmt *s = journal__alert_stmt(j, ASTMT_PUSH);
    if (!s)
        return -EIO;
    journal__bind_int(j, s, 1, m->seq);
    journal__bind_text(j, s, 2, hook);
    journal__bind_int(j, s, 3, m->fault_id);
    journal__bind_text(j, s, 4, m->event);
    journal__bind_int(j, s, 5, m->opens);
    journal__bind_text(j, s, 6, m->service);
    journal__bind_text(j, s, 7, m->body);
    return journal__exec(j, s, "alert-push");
}

int journal_alert_delete(struct journal *j, const char *hook, int64_t seq)
{
    return journal__alert_write(j, ASTMT_DELETE, hook, seq, "alert-delete");
}

int journal_alert_delete_fault(struct journal *j, const char *hook, int64_t fault_id)
{
    return journal__alert_write(j, ASTMT_DELETE_FAULT, hook, fault_id, "alert-delete-fault");
}

int journal_alert_read(struct journal *j, const char *hook, int64_t after,
                       struct journal_alert *out, int max)
{
    sqlite3_stmt *s = journal__alert_stmt(j, ASTMT_READ);
    int n = 0, rc = SQLITE_ERROR;
    if (!s)
        return -EIO;
    journal__bind_text(j, s, 1, hook);
    journal__bind_int(j, s, 2, after);
    journal__bind_int(j, s, 3, max);
    while (n < max && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct journal_alert *m = &out[n];
        memset(m, 0, sizeof *m);
        m->seq = sqlite3_column_int64(s, 0);
        m->fault_id = sqlite3_column_int64(s, 1);
        m->opens = sqlite3_column_int(s, 2) != 0;
        journal__copy(m->event, sizeof m->event, journal__text(s, 3));
        journal__copy(m->service, sizeof m->service, journal__text(s, 4));
        if (!(m->body = strdup(journal__text(s, 5))))
            break;
        n++;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        journal__fail(j, "alert-read");
        n = -EIO;
    }
    sqlite3_reset(s);
    return n;
}

int journal_alert_groups(struct journal *j, const char *hook, struct journal_alert_group **out)
{
    sqlite3_stmt *s = journal__alert_stmt(j, ASTMT_GROUPS);
    struct journal_alert_group *v = NULL;
    int n = 0, cap = 0, rc = SQLITE_ERROR;
    *out = NULL;
    if (!s)
        return -EIO;
    journal__bind_text(j, s, 1, hook);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            struct journal_alert_group *nv = realloc(v, (size_t)cap * sizeof *v);
            if (!nv)
                break;
            v = nv;
        }
        v[n++] = (struct journal_alert_group){.fault_id = sqlite3_column_int64(s, 0),
                                              .first_seq = sqlite3_column_int64(s, 1),
                                              .count = sqlite3_column_int64(s, 2),
                                              .first_opens = sqlite3_column_int(s, 3) != 0};
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
        journal__fail(j, "alert-groups");
        free(v);
        return -EIO;
    }
    *out = v;
    return n;
}

int journal_alert_open_set(struct journal *j, const char *hook, int64_t fault_id,
                           const char *symptoms)
{
    sqlite3_stmt *s = journal__alert_stmt(j, ASTMT_OPEN_SET);
    if (!s)
        return -EIO;
    journal__bind_text(j, s, 1, hook);
    journal__bind_int(j, s, 2, fault_id);
    journal__bind_text(j, s, 3, symptoms ? symptoms : "[]");
    return journal__exec(j, s, "alert-open-set");
}

int journal_alert_open_clear(struct journal *j, const char *hook, int64_t fault_id)
{
    return journal__alert_write(j, ASTMT_OPEN_CLEAR, hook, fault_id, "alert-open-clear");
}

/* One row of ASTMT_OPENS, read before the callbacks run. */
struct journal__alert_open {
    int64_t fault_id; /* as recorded */
    bool known;       /* the faults table still has it */
    struct fault f;   /* when known; owns its context */
    char *symptoms;   /* JSON array text; heap */
};

int journal_alert_opens(struct journal *j, const char *hook,
                        void (*fn)(void *arg, int64_t fault_id, const struct fault *f,
                                   const char *symptoms),
                        void *arg)
{
    sqlite3_stmt *s = journal__alert_stmt(j, ASTMT_OPENS);
    struct journal__alert_open *v = NULL;
    int n = 0, cap = 0, rc = SQLITE_ERROR, r = -EIO;
    if (!s)
        return -EIO;
    journal__bind_text(j, s, 1, hook);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            struct journal__alert_open *nv = realloc(v, (size_t)cap * sizeof *v);
            if (!nv)
                break;
            v = nv;
        }
        struct journal__alert_open *o = &v[n++];
        memset(o, 0, sizeof *o);
        o->fault_id = sqlite3_column_int64(s, 0);
        o->symptoms = strdup(journal__text(s, 1));
        if ((o->known = sqlite3_column_type(s, 2) != SQLITE_NULL))
            journal__fault_read_at(s, 2, &o->f);
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
        journal__fail(j, "alert-opens");
        goto out;
    }
    for (int i = 0; i < n; i++)
        fn(arg, v[i].fault_id, v[i].known ? &v[i].f : NULL, v[i].symptoms ? v[i].symptoms : "[]");
    r = 0;
out:
    for (int i = 0; i < n; i++) {
        free(v[i].f.context);
        free(v[i].symptoms);
    }
    free(v);
    return r;
}

int journal_alert_hooks(struct journal *j, void (*fn)(void *arg, const char *hook, int64_t waiting),
                        void *arg)
{
    sqlite3_stmt *s = journal__alert_stmt(j, ASTMT_HOOKS);
    char **hooks = NULL;
    int64_t *waiting = NULL;
    int n = 0, cap = 0, rc = SQLITE_ERROR, r = -EIO;
    if (!s)
        return -EIO;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4;
            char **nh = realloc(hooks, (size_t)cap * sizeof *nh);
            if (nh)
                hooks = nh;
            int64_t *nw = realloc(waiting, (size_t)cap * sizeof *nw);
            if (nw)
                waiting = nw;
            if (!nh || !nw)
                break;
        }
        waiting[n] = sqlite3_column_int64(s, 1);
        if (!(hooks[n] = strdup(journal__text(s, 0))))
            break;
        n++;
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
        journal__fail(j, "alert-hooks");
        goto out;
    }
    for (int i = 0; i < n; i++)
        fn(arg, hooks[i], waiting[i]);
    r = 0;
out:
    for (int i = 0; i < n; i++)
        free(hooks[i]);
    free(hooks);
    free(waiting);
    return r;
}

int journal_alert_forget_hook(struct journal *j, const char *hook)
{
    sqlite3_stmt *s = journal__alert_stmt(j, ASTMT_FORGET_QUEUE);
    if (!s)
        return -EIO;
    journal__bind_text(j, s, 1, hook);
    int r = journal__exec(j, s, "alert-forget");
    if (!(s = journal__alert_stmt(j, ASTMT_FORGET_OPEN)))
        return -EIO;
    journal__bind_text(j, s, 1, hook);
    return journal__exec(j, s, "alert-forget") < 0 ? -EIO : r;
}

/* ---- JSON views ---- */

/* Columns of FAULT_COLS as the API's fault object, without "actions". */
static json_t *journal__fault_json(sqlite3_stmt *s)
{
    return json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id",
                     (json_int_t)sqlite3_column_int64(s, 0), "service", journal__str(s, 1), "check",
                     journal__str(s, 2), "type", journal__str(s, 3), "severity", journal__str(s, 4),
                     "impact", journal__str(s, 5), "description", journal__str(s, 6), "context",
                     journal__object(journal__text(s, 7)), "opened_at", journal__time(s, 8),
                     "resolved_at", journal__time(s, 9), "duration_ms", journal__duration(s, 8, 9));
}

/* Columns of ACTION_COLS as the API's action object. */
static json_t *journal__action_json(sqlite3_stmt *s)
{
    return json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id",
                     (json_int_t)sqlite3_column_int64(s, 0), "fault_id", journal__int_or_null(s, 1),
                     "service", journal__str(s, 2), "strategy", journal__str(s, 3), "status",
                     journal__str(s, 4), "params", journal__object(journal__text(s, 5)), "result",
                     journal__str(s, 6), "created_at", journal__time(s, 7), "started_at",
                     journal__time(s, 8), "finished_at", journal__time(s, 9), "duration_ms",
                     journal__duration(s, 8, 9));
}

static json_t *journal__transition_json(sqlite3_stmt *s)
{
    return json_pack("{s:I, s:o, s:o, s:o, s:o, s:o}", "id", (json_int_t)sqlite3_column_int64(s, 0),
                     "at", journal__time(s, 1), "service", journal__str_or_null(s, 2), "from",
                     journal__str(s, 3), "to", journal__str(s, 4), "cause",
                     journal__str_or_null(s, 5));
}

/* A list row of STMT_FAULTS_LIST: the fault with how many actions it has
 * (its view, journal_fault_json, lists them). */
static json_t *journal__fault_list_json(sqlite3_stmt *s)
{
    json_t *o = journal__fault_json(s);
    if (o)
        json_object_set_new(o, "actions", json_integer(sqlite3_column_int64(s, 10)));
    return o;
}

/* Step a bound list statement into a JSON array of its rows. */
static json_t *journal__list(struct journal *j, sqlite3_stmt *s, json_t *(*row)(sqlite3_stmt *s),
                             const char *op)
{
    json_t *a = json_array();
    int rc = SQLITE_DONE;
    while (a && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        json_t *o = row(s);
        if (!o || json_array_append_new(a, o) < 0)
            goto fail;
    }
    if (!a || rc != SQLITE_DONE)
        goto fail;
    sqlite3_reset(s);
    return a;
fail:
    journal__fail(j, op);
    sqlite3_reset(s);
    json_decref(a);
    return NULL;
}

/* A page statement bound: ?1 the cursor, ?2 the rows. */
static sqlite3_stmt *journal__page(struct journal *j, enum journal_stmt id, int64_t before,
                                   size_t limit)
{
    sqlite3_stmt *s = journal__stmt(j, id);
    journal__bind_int(j, s, 1, before > 0 ? before : INT64_MAX);
    journal__bind_int(j, s, 2, journal__limit(limit));
    return s;
}

json_t *journal_faults_json(struct journal *j, bool active_only, int64_t before, size_t limit)
{
    sqlite3_stmt *s = journal__page(j, active_only ? STMT_FAULTS_ACTIVE : STMT_FAULTS_LIST, before,
                                    limit);
    return journal__list(j, s, journal__fault_list_json, "faults-json");
}

/* The fault with its actions in full, in the order they ran (the escalation
 * chain), unlike the newest-first lists. */
json_t *journal_fault_json(struct journal *j, int64_t id)
{
    sqlite3_stmt *s = journal__stmt(j, STMT_FAULT_GET);
    json_t *f = NULL, *actions;
    journal__bind_int(j, s, 1, id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        f = journal__fault_json(s);
    else if (rc != SQLITE_DONE)
        journal__fail(j, "fault-json");
    sqlite3_reset(s);
    if (!f)
        return NULL;
    s = journal__stmt(j, STMT_FAULT_ACTIONS);
    journal__bind_int(j, s, 1, id);
    actions = journal__list(j, s, journal__action_json, "fault-json");
    if (!actions) {
        json_decref(f);
        return NULL;
    }
    json_object_set_new(f, "actions", actions);
    return f;
}

json_t *journal_actions_json(struct journal *j, int64_t fault_id, int64_t before, size_t limit)
{
    sqlite3_stmt *s = journal__page(j, fault_id ? STMT_ACTIONS_OF_FAULT : STMT_ACTIONS_LIST, before,
                                    limit);
    if (fault_id)
        journal__bind_int(j, s, 3, fault_id);
    return journal__list(j, s, journal__action_json, "actions-json");
}

json_t *journal_transitions_json(struct journal *j, const char *service, int64_t before,
                                 size_t limit)
{
    sqlite3_stmt *s = journal__page(j, service ? STMT_TRANSITIONS_OF : STMT_TRANSITIONS_LIST,
                                    before, limit);
    if (service)
        journal__bind_text(j, s, 3, service);
    return journal__list(j, s, journal__transition_json, "transitions-json");
}

int journal_counts(struct journal *j, int64_t *active_faults, int64_t *resolved_faults,
                   int64_t *actions)
{
    sqlite3_stmt *s = journal__stmt(j, STMT_COUNTS);
    int r = 0;
    if (sqlite3_step(s) == SQLITE_ROW) {
        *active_faults = sqlite3_column_int64(s, 0);
        *resolved_faults = sqlite3_column_int64(s, 1) - *active_faults;
        *actions = sqlite3_column_int64(s, 2);
    } else {
        r = journal__fail(j, "counts");
    }
    sqlite3_reset(s);
    return r;
}

#define JOURNAL__NAME(e, s) s,
static const char *const journal__type_names[] = {FAULT_TYPE_MAP(JOURNAL__NAME)};
static const char *const journal__severity_names[] = {SEVERITY_MAP(JOURNAL__NAME)};
static const char *const journal__impact_names[] = {IMPACT_MAP(JOURNAL__NAME)};
#undef JOURNAL__NAME

/* {name: 0, ...} for every name of one enum. */
static json_t *journal__zeros(const char *const *names, int count)
{
    json_t *o = json_object();
    for (int i = 0; o && i < count; i++)
        json_object_set_new(o, names[i], json_integer(0));
    return o;
}

/* The columns of JOURNAL__COUNTER_COLS, from column 2 of STMT_COUNTERS on. */
enum {
    CNT_FAULTS_ALL,
    CNT_FAULTS,
    CNT_RESOLVED,
    CNT_RECOVERY_MS,
    CNT_MAX_RECOVERY_MS,
    CNT_RECOVERIES,
    CNT_SUCCESSFUL,
    CNT_FAILED,
    CNT_ABORTED,
};
#define JOURNAL__CNT(s, c) sqlite3_column_int64((s), 2 + (c))

/* Calls fn for each row of the counters (a few per service and type). */
static int journal__counters(struct journal *j, void (*fn)(sqlite3_stmt *s, void *arg), void *arg)
{
    sqlite3_stmt *s = journal__stmt(j, STMT_COUNTERS);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        fn(s, arg);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : journal__fail(j, "counters");
}

static void journal__summary_row(sqlite3_stmt *s, void *arg)
{
    char group[16];
    snprintf(group, sizeof group, "by_%s", journal__text(s, 0));
    json_t *o = json_object_get(arg, group);
    if (o && strcmp(group, "by_service") != 0)
        json_object_set_new(o, journal__text(s, 1), json_integer(JOURNAL__CNT(s, CNT_FAULTS_ALL)));
}

/* Lifetime counts (pruning lowers none): resolved is total - active. */
json_t *journal_faults_summary_json(struct journal *j)
{
    int64_t active, resolved, actions;
    if (journal_counts(j, &active, &resolved, &actions) < 0)
        return NULL;
    json_t *o = json_pack("{s:I, s:I, s:I, s:o, s:o, s:o}", "total", (json_int_t)active + resolved,
                          "active", (json_int_t)active, "resolved", (json_int_t)resolved, "by_type",
                          journal__zeros(journal__type_names, FAULT_TYPE__COUNT), "by_severity",
                          journal__zeros(journal__severity_names, SEVERITY__COUNT), "by_impact",
                          journal__zeros(journal__impact_names, IMPACT__COUNT));
    if (o && journal__counters(j, journal__summary_row, o) < 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int journal_recovery_history(struct journal *j, const char *service, uint64_t *total_ms,
                             uint64_t *count)
{
    sqlite3_stmt *s = journal__stmt(j, STMT_COUNTERS_OF);
    int rc;
    *total_ms = *count = 0;
    journal__bind_text(j, s, 1, service);
    if ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        *total_ms = (uint64_t)sqlite3_column_int64(s, 0);
        *count = (uint64_t)sqlite3_column_int64(s, 1);
    }
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : journal__fail(j, "recovery-history");
}

/* One counters row as a metrics object: {faults, resolved, mean_recovery_ms,
 * max_recovery_ms, recoveries, successful, failed, aborted}; the means and
 * maxima are null until a fault resolved. */
static json_t *journal__metrics_row(sqlite3_stmt *s)
{
    int64_t resolved = JOURNAL__CNT(s, CNT_RESOLVED);
    return json_pack("{s:I, s:I, s:o, s:o, s:I, s:I, s:I, s:I}", "faults",
                     (json_int_t)JOURNAL__CNT(s, CNT_FAULTS), "resolved", (json_int_t)resolved,
                     "mean_recovery_ms",
                     resolved ? json_integer(JOURNAL__CNT(s, CNT_RECOVERY_MS) / resolved)
                              : json_null(),
                     "max_recovery_ms", journal__int_or_null(s, 2 + CNT_MAX_RECOVERY_MS),
                     "recoveries", (json_int_t)JOURNAL__CNT(s, CNT_RECOVERIES), "successful",
                     (json_int_t)JOURNAL__CNT(s, CNT_SUCCESSFUL), "failed",
                     (json_int_t)JOURNAL__CNT(s, CNT_FAILED), "aborted",
                     (json_int_t)JOURNAL__CNT(s, CNT_ABORTED));
}

static void journal__metrics_add(sqlite3_stmt *s, void *arg)
{
    json_t *m = arg;
    const char *scope = journal__text(s, 0);
    if (strcmp(scope, "all") == 0) {
        json_object_set_new(m, "overall", journal__metrics_row(s));
        return;
    }
    /* A type or service seen only in supervisor faults has nothing to show. */
    if (!JOURNAL__CNT(s, CNT_FAULTS) && !JOURNAL__CNT(s, CNT_RECOVERIES))
        return;
    char group[16];
    snprintf(group, sizeof group, "by_%s", scope);
    json_t *o = json_object_get(m, group);
    if (o && (strcmp(scope, "type") == 0 || strcmp(scope, "service") == 0))
        json_object_set_new(o, journal__text(s, 1), journal__metrics_row(s));
}

/* One histogram as the API shows it: {"count": N, "sum_s": S, "buckets":
 * {"0.005": n, ..., "+Inf": n}}, the counts cumulative (Prometheus's le:
 * the values at or below the bound). */
struct journal__hist {
    int64_t count[HISTOGRAM_BUCKETS];
    int64_t sum_ms;
};

static json_t *journal__hist_json(const struct journal__hist *h)
{
    json_t *b = json_object();
    int64_t total = 0;
    for (unsigned i = 0; b && i < HISTOGRAM_BUCKETS; i++) {
        total += h->count[i];
        json_object_set_new(b, histogram_le[i], json_integer(total));
    }
    return json_pack("{s:I, s:f, s:o}", "count", (json_int_t)total, "sum_s",
                     (double)h->sum_ms / 1000.0, "buckets", b);
}

/* Where the histogram rows of one (metric, scope, key) end up: the
 * "<metric>_seconds" field of overall or of by_service's entry (a service
 * with a histogram has a fault, so it has its entry). */
static void journal__hist_put(json_t *m, const char *metric, const char *scope, const char *key,
                              const struct journal__hist *h)
{
    json_t *o = strcmp(scope, "all") == 0 ? json_object_get(m, "overall")
                                          : json_object_get(json_object_get(m, "by_service"), key);
    char field[32];
    snprintf(field, sizeof field, "%s_seconds", metric);
    if (o)
        json_object_set_new(o, field, journal__hist_json(h));
}

/* The histograms into m's overall and by_service entries, every bucket
 * present (overall's even when empty). */
static int journal__histograms(struct journal *j, json_t *m)
{
    static const struct journal__hist zero;
    sqlite3_stmt *s = journal__stmt(j, STMT_HISTOGRAMS);
    struct journal__hist h = zero;
    char metric[16] = "", scope[16] = "", key[64] = "";
    int rc;
    journal__hist_put(m, "detection", "all", "", &zero);
    journal__hist_put(m, "recovery", "all", "", &zero);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *me = journal__text(s, 0), *sc = journal__text(s, 1), *k = journal__text(s, 2);
        if (strcmp(me, metric) != 0 || strcmp(sc, scope) != 0 || strcmp(k, key) != 0) {
            if (metric[0])
                journal__hist_put(m, metric, scope, key, &h);
            h = zero;
            journal__copy(metric, sizeof metric, me);
            journal__copy(scope, sizeof scope, sc);
            journal__copy(key, sizeof key, k);
        }
        int64_t b = sqlite3_column_int64(s, 3);
        if (b >= 0 && b < HISTOGRAM_BUCKETS)
            h.count[b] += sqlite3_column_int64(s, 4);
        h.sum_ms += sqlite3_column_int64(s, 5);
    }
    if (metric[0])
        journal__hist_put(m, metric, scope, key, &h);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : journal__fail(j, "histograms");
}

json_t *journal_metrics_json(struct journal *j)
{
    json_t *m = json_pack("{s:o, s:o, s:o}", "overall", json_object(), "by_type", json_object(),
                          "by_service", json_object());
    if (m && (journal__counters(j, journal__metrics_add, m) < 0 || journal__histograms(j, m) < 0)) {
        json_decref(m);
        return NULL;
    }
    return m;
}

const char *journal_api_sql(size_t i)
{
    size_t n = (size_t)STMT__API_LAST - STMT__API_FIRST + 1;
    return i < n ? journal__sql[STMT__API_FIRST + i] : NULL;
}
