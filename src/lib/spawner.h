/* Spawning off the loop: a few threads run spawn_start_on, each waiting
 * for its own child's exec (which is most of a spawn's time: measured in a
 * storm of 100 restarts here, a median 5 ms of wall time against 0.34 ms of
 * the spawning thread's CPU), and hand each result back to the loop by
 * uv_async. The loop never waits for an exec, and several children exec
 * at once. A job carries its own copy of everything the child reads (argv,
 * environment, cwd, cgroup, credentials), so a reload may free the
 * configuration it came from while it runs. */
#ifndef RECOVERD_LIB_SPAWNER_H
#define RECOVERD_LIB_SPAWNER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "lib/cgroup.h"
#include "lib/spawn.h"

/* Children exec'ing at once. More than the cores: in a storm a child
 * waits for a CPU behind the services started just before it (each busy
 * while it starts), and a thread waiting for its child's exec spawns
 * nothing meanwhile. Storm of 100 on 2 cores (load ~10): action start ->
 * spawned median 0.23 s with 2 threads, 0.15 s with 4. */
#define SPAWNER_THREADS 4
/* How much nicer than recoverd a spawner thread runs a job that yields
 * (spawner_job.yield; its child is put back before exec, see
 * spawn_nice_yield): the loop gets the CPU first while it spawns. */
#define SPAWNER_NICE 10
/* Yielding jobs running at once, at most; the other threads stay for
 * restarts, which pass the yielding jobs queued before them. A child
 * exec'ing takes a CPU from the loop: at 1,000 first starts on 2 cores,
 * 8 at once starved it (stalls of 48-53 ms), 2 did not (17.6-17.9 ms). */
#define SPAWNER_YIELDING 2
/* Reports (done callbacks) one loop turn runs at most; the rest run in
 * the next turns, I/O served between. A report watches the child, records
 * it in the journal and starts its verification: at a storm's end or
 * under a starved start, dozens finish together. */
#define SPAWNER_REPORTS_PER_TURN 8

struct spawner_job;
typedef void (*spawner_done_cb)(struct spawner_job *j);

struct spawner_job {
    struct spawn_opts opts; /* pointers into this job's own block */
    struct spawn_cred cred; /* opts.cred points here when there was one */
    spawner_done_cb done;   /* on the loop, once (at most SPAWNER_REPORTS_PER_TURN a turn);
                             * the job is freed after it returns */
    void *data;             /* the owner's */
    int result;             /* 0 or -errno of spawn_start_on */
    pid_t pid;              /* on success */
    int pidfd;              /* on success; the done callback owns it */
    uint64_t start_ticks;   /* on success: its /proc start time, read on the thread (0: gone) */
    bool yield;       /* spawn at SPAWNER_NICE (bulk work: first starts), not at our priority */
    bool cgroup_make; /* make opts.cgroup by cgroup_spec on the thread first */
    struct cgroup_spec cgroup_spec;   /* how (set with cgroup_make, before submit) */
    struct cgroup_built cgroup_built; /* what it found; built.err < 0: no spawn, result is it */
    bool finished;                    /* the thread is done with it (under the spawner's lock) */
    bool reported;                    /* done has run (loop thread only) */
    struct spawner *sw;
    struct spawner_job *next; /* the queue or the finished list */
};

struct spawner {
    uv_loop_t *loop;  /* borrowed */
    uv_async_t async; /* finished jobs are there; referenced while jobs are in flight */
    pthread_mutex_t mu;
    pthread_cond_t work;     /* a job queued, or stopping */
    pthread_cond_t finished; /* a job finished (spawner_wait) */
    pthread_t threads[SPAWNER_THREADS];
    int n_threads;                              /* started (lazily, at the first job) */
    struct spawner_job *todo, **todo_tail;      /* queued, oldest first */
    struct spawner_job *done_head, **done_tail; /* finished, not reported yet */
    unsigned in_flight;                         /* submitted, not reported (loop thread) */
    unsigned yielding;                          /* yielding jobs on a thread now (under mu) */
    bool stopping;                              /* threads end once the queue is empty */
    bool held;                                  /* spawner_hold: queued jobs wait */
    int nice_own;   /* recoverd's nice: a thread's for jobs that do not yield */
    int nice_yield; /* a thread's for jobs that yield, decided at init: nice_own
                       where the children could not be put back (spawn_nice_yield) */
};

/* Set up on loop (one handle; threads start with the first job). 0 or
 * -errno. */
int spawner_init(struct spawner *sw, uv_loop_t *loop);
/* Wait for jobs in flight (reported first), end the threads, close the
 * handle. */
void spawner_close(struct spawner *sw);
/* A job that starts o (copied whole: nothing of o is read later), or NULL
 * (out of memory). */
struct spawner_job *spawner_job_new(const struct spawn_opts *o);
/* Queue j (owned from here on); done(j) runs on the loop once its child
 * has exec'd or failed to. Jobs start in order, but a yielding one waits
 * while SPAWNER_YIELDING others run, and the jobs after it go first. */
void spawner_submit(struct spawner *sw, struct spawner_job *j, spawner_done_cb done, void *data);
/* While held, queued jobs wait in the queue (a test's launch in flight,
 * for as long as it needs); released, they go. */
void spawner_hold(struct spawner *sw, bool held);
/* Block the loop until j has finished, and report it now (its done runs
 * before this returns). For the rare paths that cannot wait (recoverd
 * exits leaving its services running). */
void spawner_wait(struct spawner_job *j);

#endif
