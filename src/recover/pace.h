/* The loop's time for a burst of process work: the restarts a storm of
 * exits queues (each a spawn, which holds the loop until the exec). Each
 * piece asks whether this loop turn has time left; when it has not, it is
 * deferred, first come first served, to an idle callback that runs
 * deferred pieces in slices of at most `budget_us` per turn, so API
 * requests and probes are served between slices (DESIGN: nothing holds the
 * loop for more than about a millisecond). A piece of work started is
 * never cut: a slice ends after the piece that used up its time. Exits
 * are pieces too (recover/supervisor.h): past the budget they wait, in
 * order, for the next turns' idle phase, before those turns' I/O. While
 * one waits its process looks alive, and a probe that fails meanwhile
 * counts towards its check's fall, as an answer read in the same poll as
 * the exit always could: a queue of exits is a few turns (a hundred at
 * 100-200 us each, 2 ms a turn), well inside a check's interval. */
#ifndef RECOVERD_RECOVER_PACE_H
#define RECOVERD_RECOVER_PACE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "lib/spawner.h"

/* Loop time a turn spends on paced work before the rest waits. */
#define PACE_BUDGET_US 2000

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
    bool turn_used;         /* some paced work ran this turn */
    bool slicing;           /* in the idle callback: deferred jobs run first */
    bool granted;           /* a deferred job runs: its first ask is answered yes */
    uint64_t turn_start_us; /* monotonic time it began */
    struct pace_job *head;  /* deferred, oldest first */
    struct pace_job **tail;
    struct spawner spawner; /* spawns off the loop (lib/spawner.h) */
    bool spawner_up;        /* spawner_init succeeded */
};

/* Set up on loop (three handles, unreferenced while idle: they never keep
 * it alive; the spawner's threads start with its first job). */
void pace_init(struct pace *p, uv_loop_t *loop, uint64_t budget_us);
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
/* Take j off the queue if it is there (its owner is going away). */
void pace_cancel(struct pace *p, struct pace_job *j);
/* Where a restart's spawn goes so that the loop does not wait for the
 * exec; NULL: spawn on the loop (no pace, no spawner, or recoverd is a
 * subreaper, whose table of its own children is the loop's alone). */
struct spawner *pace_spawner(struct pace *p);

#endif
