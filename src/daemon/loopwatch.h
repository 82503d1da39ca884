/* The loop's stall gauge: how long each turn of the loop held it, from
 * one wait for events to the next, less the wait. DESIGN says nothing may
 * hold the loop for more than about a millisecond; this is how a running
 * recoverd (and bench/scale) sees whether that holds. */
#ifndef RECOVERD_DAEMON_LOOPWATCH_H
#define RECOVERD_DAEMON_LOOPWATCH_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

/* A turn busy longer than this counts as a stall (issue 10's target). */
#define LOOPWATCH_STALL_NS 5000000ull
/* A turn busy this long is logged (a warning): every timer, probe
 * deadline, exit and request waited that long, and a start that failed
 * every check at once would otherwise leave no word of why. At most one
 * line per LOOPWATCH_WARN_EVERY_NS, which counts the ones it held back. */
#define LOOPWATCH_WARN_NS 1000000000ull
#define LOOPWATCH_WARN_EVERY_NS 10000000000ull

/* Where a turn's busy time went: the I/O callbacks (exits, answers,
 * requests), the journal's commit, and the rest after the I/O (timers:
 * probes, deadlines, slices; closes; the other prepare hooks). */
struct loopwatch_split {
    uint64_t io_ns, flush_ns, timers_ns;
};

/* Why not a timer that measures its own lateness: each of its ticks is a
 * wakeup, and 100 a second (a 10 ms period) raised a quiet daemon's CPU
 * from 0.04 to 0.16 s per 30 s and at 100 services from 0.13 to 0.33 s
 * (bench/scale, a loaded 2-core VM); it also saw a stall shorter than its
 * period only by chance. A prepare hook costs no wakeup and sees every
 * turn; libuv's idle-time metric (UV_METRICS_IDLE_TIME) costs one extra
 * non-blocking epoll_wait per turn. */
struct loopwatch {
    uv_prepare_t prepare; /* runs as the loop is about to wait; data = this */
    uv_check_t check;     /* runs after the I/O callbacks: splits a turn; data = this */
    uint64_t turn_ns;     /* uv_hrtime() at the last prepare or the start; 0: not started */
    uint64_t idle_ns;     /* uv_metrics_idle_time() then, ns */
    uint64_t max_busy_ns; /* the longest turn, ns */
    struct loopwatch_split max_split; /* where the longest turn went */
    uint64_t stalls;                  /* turns longer than LOOPWATCH_STALL_NS */
    uint64_t since_ms;                /* CLOCK_REALTIME, ms: when counting began (loopwatch_init) */
    uint64_t mark_max_ns;             /* the longest turn since loopwatch_mark, ns */
    uint64_t io_ns;     /* this turn's busy time up to its check hook (I/O callbacks), ns */
    uint64_t flush_ns;  /* the journal's commits this turn (loopwatch_flushed), ns */
    uint64_t warned_ns; /* uv_hrtime() of the last warning; 0: none yet */
    uint64_t unwarned;  /* turns over LOOPWATCH_WARN_NS since, not logged */
    /* While marking, the loop thread's CPU time per turn too: on a host
     * whose cores are shared, a turn's span also holds the time others ran
     * (preemption), its CPU time only what the loop itself did. */
    bool marking;
    uint64_t cpu_ns;          /* the thread's CPU clock at the last turn's end */
    uint64_t mark_max_cpu_ns; /* the most CPU time a turn took since loopwatch_mark */
};

/* Put w's hook on loop (which then keeps its idle time), before any other
 * prepare hook starts; zeroes the counts. 0 or a libuv error. */
int loopwatch_init(struct loopwatch *w, uv_loop_t *loop);
/* Count from now: what ran before is no turn of the loop. */
void loopwatch_start(struct loopwatch *w);
/* Account the turn that ends at now_ns (uv_hrtime() time) after the loop
 * waited idle_ns in all (uv_metrics_idle_time()); returns its busy time,
 * ns. What the hook does once started; public for its unit test. */
uint64_t loopwatch_turn(struct loopwatch *w, uint64_t now_ns, uint64_t idle_ns);
/* The split of this turn, busy busy_ns in all, from io_ns and flush_ns.
 * Public for its unit test. */
struct loopwatch_split loopwatch_split(const struct loopwatch *w, uint64_t busy_ns);
/* The journal's commit of this turn took ns (the daemon times it). */
void loopwatch_flushed(struct loopwatch *w, uint64_t ns);
/* Whether the turn that ended at now_ns, busy busy_ns, is to be logged;
 * *more: the long turns held back since the last line. Public for its
 * unit test. */
bool loopwatch_warn_due(struct loopwatch *w, uint64_t now_ns, uint64_t busy_ns, uint64_t *more);
/* Begin a span of interest (a reload, the stop): mark_max_ns and
 * mark_max_cpu_ns count from here, so the log can say how long the span
 * held the loop; loopwatch_unmark ends it. */
void loopwatch_mark(struct loopwatch *w);
void loopwatch_unmark(struct loopwatch *w);
/* Close the hook; w must stay valid until the loop has run its close. */
void loopwatch_close(struct loopwatch *w);

#endif
