/* The analyzer: classifies what a detector or the supervisor saw into a
 * fault (type, severity, impact), keeps its identity stable while open
 * (one open fault per source), finds root causes among the service's
 * dependencies, and produces the plan (the strategy chain) from the rules.
 * It journals and alerts; it never recovers. */
#ifndef RECOVERD_ANALYZE_ANALYZER_H
#define RECOVERD_ANALYZE_ANALYZER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "detect/check-t.h"
#include "lib/fault-t.h"

struct alerter;
struct clock_src;
struct config;
struct journal;
struct service_cfg;
struct svc_state;

/* Shared by every service. */
struct analysis {
    struct journal *journal;       /* borrowed */
    struct alerter *alerter;       /* borrowed */
    const struct config *cfg;      /* the running configuration (rules); the root updates it */
    const struct clock_src *clock; /* the flap window's time (lib/clock.h); borrowed */
};

/* One open fault per source: slot 0 is the process itself, slot i+1 is
 * check i, the last slot is the recovery's own (chain exhausted). */
struct fault_slot {
    bool open;           /* a fault from this source is open */
    int64_t root;        /* a symptom: the open fault of a dependency that caused it; 0: none */
    struct fault *fault; /* as journaled (the last one, once resolved); NULL until the
                          * first: a fault is 424 bytes, most slots never have one; owned */
    uint64_t verified_mono_ms; /* analysis clock, ms: resolved by a verification then; 0: not */
};

#define SLOT_PROCESS 0
#define SLOT_CHECK(i) ((i) + 1)
#define SLOT_SUPERVISOR(f) ((f)->n_slots - 1)

/* What the recovery layer adds to a fault's analysis (the plan with what
 * it skips and why, risk, estimated time), handed over by the root. */
struct fault_advisor {
    void (*analyse)(void *ctx, const struct fault *f, json_t *context);
    void *ctx;
};

/* A service's faults. */
struct faults {
    struct analysis *an;            /* shared; borrowed */
    const char *service;            /* its name; borrowed */
    const struct service_cfg *cfg;  /* borrowed */
    struct svc_state *state;        /* the service's monitor part; borrowed */
    const struct check_set *checks; /* the service's checks (names, kinds); borrowed */
    struct fault_slot *slots;       /* n_slots = checks + 2; owned */
    size_t n_slots;
    struct faults **deps; /* resolved dependencies (n_deps), set by the root; owned array */
    size_t n_deps;
    struct fault_advisor advisor; /* may be unset */
    uint64_t history_ms;          /* sum of its resolved faults' durations (journal + since) */
    uint64_t history_n;           /* how many: the estimate is history_ms / history_n */
};

/* How an open went. */
enum fault_open {
    FAULT_ALREADY_OPEN, /* the same fault is still open: nothing new */
    FAULT_NEW,          /* a new fault, journaled */
    FAULT_REOPENED,     /* the fault of this source resolved within flap_window: reopened */
};

/* Slots for n_checks checks; everything else set by the caller. 0 or -ENOMEM. */
int faults_init(struct faults *f, size_t n_checks);
/* Fresh slots for a new set of checks (no fault may be open). 0 or -ENOMEM. */
int faults_reslot(struct faults *f, size_t n_checks);
void faults_close(struct faults *f);

/* Check i crossed its fall threshold with observation o. */
enum fault_open analyzer_check_failing(struct faults *f, size_t i, const struct observation *o);
/* The process exited unexpectedly. */
enum fault_open analyzer_process_exited(struct faults *f, int64_t code, int term_signal,
                                        uint64_t uptime_ms);
/* The command could not be started (err: -errno). */
enum fault_open analyzer_spawn_failed(struct faults *f, int err);
/* An external service's pidfile names no live process (err: -errno). */
enum fault_open analyzer_external_missing(struct faults *f, int err);
/* The recovery chain is exhausted: a critical fault that stays open.
 * context: the limits that ended it (taken; NULL: none). */
void analyzer_gave_up(struct faults *f, const char *description, json_t *context);
/* The service cannot run as configured (its user does not exist, its
 * program is missing): a critical configuration fault that stays open
 * while this configuration is in force. */
void analyzer_config_failed(struct faults *f, const char *description);

/* The strategy chain for fault t of f: the service's own `recovery` list,
 * else the rules for t's type (t NULL: software). Fills plan, returns its length. */
unsigned analyzer_plan(const struct faults *f, const struct fault *t, int *plan);
/* Close the recovery's own fault (an operator acted). */
void analyzer_resolve_supervisor(struct faults *f, const char *why);
/* Resolve every open fault but the recovery's own; verified: by a
 * verification (starts the flap window). Returns how many. */
int analyzer_resolve_all(struct faults *f, const char *why, bool verified);
/* Load faults a previous recoverd left open into the slots. */
void analyzer_adopt_open_faults(struct faults *f);
/* The open fault of a dependency (a fault of f opened now is its symptom), or NULL. */
const struct fault *analyzer_root_cause(const struct faults *f);
/* The fault a recovery is for: the first open one that is not a symptom
 * (nor the recovery's own), or NULL. */
const struct fault *analyzer_trigger(const struct faults *f);
/* Does f have an open fault (any slot)? */
bool analyzer_has_open(const struct faults *f);
/* A dependency recovered: symptoms become faults of their own. True if
 * there were any. */
bool analyzer_clear_symptoms(struct faults *f);

#endif
