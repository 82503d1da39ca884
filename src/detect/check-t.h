/* A check at run time and what one probe observed. Types only. */
#ifndef RECOVERD_DETECT_CHECK_T_H
#define RECOVERD_DETECT_CHECK_T_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "lib/model-t.h"
#include "lib/wheel-t.h"

struct check;
struct check_cfg;
struct detector_ops;

struct observation {
    bool ok;                /* the probe passed */
    enum fault_type type;   /* classification when !ok */
    enum severity severity; /* classification when !ok */
    bool host_wide;         /* the condition is the host's (CPU, memory, disk): impact system */
    bool inconclusive;      /* neither a pass nor a failure (e.g. over a limit, not for `for:`
                             * yet): ends a passing streak, adds nothing to a failing one */
    int code;               /* HTTP status, exit code... ; -1 when none */
    uint64_t latency_us;    /* probe start -> result */
    char reason[200]; /* human words: "HTTP 500", "timeout after 100 ms", "connection refused" */
};

/* The latest result as a check keeps it: an observation whose reason is
 * sized to its words (most of a check's 200-byte buffer is empty: "HTTP 200"). */
struct check_result {
    bool ok;
    enum fault_type type;
    enum severity severity;
    bool host_wide;
    bool inconclusive;
    int code;
    uint64_t latency_us;
    char *reason; /* owned; NULL before the first result; replaced when the words change */
};

/* What a set of checks tells whoever owns it (the service, through the
 * composition root): detection only, never a decision. */
struct check_sink {
    /* c crossed its fall threshold (once per failing streak). */
    void (*failing)(void *ctx, struct check *c, const struct observation *o);
    /* c finished a probe (after failing, when that fired). */
    void (*reported)(void *ctx, struct check *c);
    /* One loop handle of the set closed (see check_set.handles_open). */
    void (*closed)(void *ctx);
    void *ctx;
};

/* The checks of one service. */
struct check_set {
    uv_loop_t *loop;      /* borrowed */
    const char *service;  /* its name, for logs; borrowed */
    struct check *checks; /* n entries; owned */
    size_t n;
    struct check_sink sink;  /* set by the owner before check_set_init */
    pid_t pid;               /* the service's process (resource checks); 0: none */
    bool probing;            /* re-arm after each probe (a process runs, or watched only) */
    bool verifying;          /* a start or recovery is being verified: probe fast */
    uint64_t start_until_us; /* monotonic; failures before it and before a first pass
                              * do not count (the process is starting) */
    int handles_open;        /* timers not closed yet */
};

struct check {
    struct check_set *set;          /* owner; borrowed */
    const struct check_cfg *cfg;    /* borrowed from the running config */
    const struct detector_ops *ops; /* the kind */
    uv_timer_t timer;               /* next probe when sooner than the grid; data = this check */
    struct wheel_timer slot;        /* next probe on the grid (check.c) */
    void *priv;                     /* the detector's state (ops->release frees it) */
    bool in_flight;                 /* a probe was started and has not reported */
    uint64_t started_us;            /* monotonic start of the probe in flight */
    unsigned fails;                 /* consecutive failed probes */
    uint64_t fails_since_us;        /* monotonic start of the first of them (detection time) */
    unsigned oks;                   /* consecutive passed probes */
    unsigned hurried;               /* verification probes since the last streak reset */
    bool passed;                    /* a probe passed since the last streak reset */
    bool failing;                   /* threshold state: fall reached, rise not yet */
    bool has_result;                /* at least one probe finished */
    bool stale;                     /* last is from before the process went down */
    struct check_result last;       /* the latest result (has_result) */
    uint64_t last_ms;               /* wall ms of the latest result */
    uint64_t probes;                /* count of finished probes */
    struct check_batch *batch;      /* set once replaced by a reload: see check_set_replace */
};

#endif
