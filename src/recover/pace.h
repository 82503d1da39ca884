/* The loop's time for a burst of process work: the restarts a storm of
 * exits queues (each a spawn, which holds the loop until the exec). Each
 * piece asks whether this loop turn has time left; when it has not, it is
 * deferred, first come first served, to an idle callback that runs
 * deferred pieces in slices of at most `budget_us` per turn, so API
 * requests and probes are served between slices (DESIGN: nothing holds the
 * loop for more than about a millisecond). A piece of work started is
 * never cut: a slice ends after the piece that used up its time.
 * Exits are counted apart (recover/supervisor.h): at most PACE_EXITS a
 * turn, the rest in order in the next turns' idle phase, before any
 * other deferred work and before those turns' I/O. Not by the time
 * budget: an exit left waiting leaves its process looking alive, and a
 * check whose probes fail meanwhile opens a second fault for the same
 * death (fall 2 at 100 ms: an exit queued behind a storm's restarts
 * waited that long); by count, a hundred exits take a dozen turns. */
#ifndef RECOVERD_RECOVER_PACE_H
#define RECOVERD_RECOVER_PACE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "lib/spawner.h"

/* Loop time a turn spends on paced work before the rest waits. */
#define PACE_BUDGET_US 2000
/* Exits handled in one stretch of the loop at most (each a reap, a group
 * kill, the cgroup's files, journal writes: 100-250 us on a loaded 2-core
 * VM, up to 500 us under heavy load), counted from one wait of the loop
 * to the next: a poll's exits and the next turn's deferred ones together.
 * At 6, a storm of 100 kills at 1,000 services took 2.8 s to serve
 * again against 1.6-1.7 s (bench: each stretch is long in a storm); at
 * 16, 1.6 s, and a stop's longest turn 2.4 ms of CPU. */
#define PACE_EXITS 16

struct pace_job {
    void (*run)(struct pace_job *j); /* called once, from the loop, dequeued already */
    struct pace_job *next;           /* owned by the pace while queued */
    bool queued;
};

struct pace {
    uv_loop_t *loop;        /* borrowed */
    uint64_t budget_us;     /* per turn; 0: one piece per turn */
    uv_idle_t slices;       /* runs deferred jobs while it has any */
    uv_check_t turn;        /* ends a turn (after its I/O): the next has its full budget */
    uv_prepare_t wait;      /* before the loop waits: the exits' count starts over */
    bool turn_used;         /* some paced work ran this turn */
    bool slicing;           /* in the idle callback: deferred jobs run first */
    bool granted;           /* a deferred job runs: its first ask is answered yes */
    uint64_t turn_start_us; /* monotonic time it began */
    struct pace_job *head;  /* deferred, oldest first */
    struct pace_job **tail;
    unsigned exits_max;         /* exits a turn; 0: one */
    unsigned exits_turn;        /* exits handled this turn */
    struct pace_job *exit_head; /* exits deferred, oldest first; run before head */
    struct pace_job **exit_tail;
    bool exit_slicing;      /* in the idle callback, running deferred exits */
    struct spawner spawner; /* spawns off the loop (lib/spawner.h) */
    bool spawner_up;        /* spawner_init succeeded */
};

/* Set up on loop (four handles, unreferenced while idle: they never keep
 * it alive; the spawner's threads start with its first job); exits_max
 * is PACE_EXITS but in tests. */
void pace_init(struct pace *p, uv_loop_t *loop, uint64_t budget_us, unsigned exits_max);
/* Close the handles, after the spawns in flight are reported; deferred
 * jobs are dropped without running. */
void pace_close(struct pace *p);
/* May one more piece run now? Not while older pieces wait (first come,
 * first served), except from the slice that runs them; else the first of
 * a turn always may, which starts the turn's clock. A NULL pace never
 * defers (tests of one service). */
bool pace_has_time(struct pace *p);
/* Run j once a later turn has time, after every job deferred before it. */
void pace_defer(struct pace *p, struct pace_job *j);
/* May an exit be handled now? Not while older exits wait (except from
 * the slice that runs them), nor past exits_max this turn; a yes counts
 * it. A NULL pace always may. */
bool pace_exit_now(struct pace *p);
/* Handle exit j in a later turn, after every exit deferred before it and
 * before the other deferred jobs. */
void pace_defer_exit(struct pace *p, struct pace_job *j);
/* Take j off its queue if it is there (its owner is going away). */
void pace_cancel(struct pace *p, struct pace_job *j);
/* Where a restart's spawn goes so that the loop does not wait for the
 * exec; NULL: spawn on the loop (no pace, no spawner, or recoverd is a
 * subreaper, whose table of its own children is the loop's alone). */
struct spawner *pace_spawner(struct pace *p);

#endif
