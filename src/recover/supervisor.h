/* The process of a service: for a supervised one, spawned in its own
 * session (and its own cgroup, recover/containment.h) and stopped with
 * signal + grace + SIGKILL to its group and to whatever of it left the
 * group; it is down once nothing of it is left (draining: the leader has
 * gone, strays have not yet). For an external one, the pid of its pidfile,
 * watched. The exit is a loop event (pidfd), never SIGCHLD or polling. A
 * state x event table; the supervisor is the only writer of the process
 * state. */
#ifndef RECOVERD_RECOVER_SUPERVISOR_H
#define RECOVERD_RECOVER_SUPERVISOR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "recover/containment.h"
#include "recover/output-t.h"
#include "recover/pace.h"

struct journal;
struct service_cfg;
struct spawner;
struct spawner_job;

/* How long what is left of a service may take to go after SIGKILL before
 * it is given up as stuck (uninterruptible sleep) and the process counts as
 * down anyway. */
#define SUP_KILL_WAIT_MS 5000

#define SUP_STATE_MAP(X)                                                                           \
    X(DOWN, "down")                                                                                \
    X(RUNNING, "running")                                                                          \
    X(STOPPING, "stopping")                                                                        \
    X(DRAINING, "draining")                                                                        \
    X(SPAWNING, "spawning")
enum sup_state {
#define X(e, s) SUP_##e,
    SUP_STATE_MAP(X)
#undef X
        SUP__COUNT
};

#define SUP_EVENT_MAP(X)                                                                           \
    X(SPAWN, "spawn")                                                                              \
    X(WATCH, "watch")                                                                              \
    X(ADOPT, "adopt")                                                                              \
    X(STOP, "stop")                                                                                \
    X(RELEASE, "release")                                                                          \
    X(EXITED, "exited")                                                                            \
    X(GRACE, "grace-expired")                                                                      \
    X(EMPTY, "empty")                                                                              \
    X(LAUNCH, "launch")                                                                            \
    X(SPAWNED, "spawned")
enum sup_event {
#define X(e, s) SUP_EV_##e,
    SUP_EVENT_MAP(X)
#undef X
        SUP_EV__COUNT
};

/* Why the process is being stopped: decides what its exit means. */
enum stop_reason {
    STOP_NONE,     /* not stopping: an exit is a fault */
    STOP_RESTART,  /* a recovery stops it to start it again */
    STOP_SHUTDOWN, /* recoverd or the service is going away */
};

/* How a process ended, as the sink hears it. */
struct sup_exit {
    pid_t pid;            /* the process that ended */
    enum stop_reason why; /* STOP_NONE: nobody asked (a fault) */
    int64_t code;         /* exit status; -1 for an external process (not our child) */
    int signal;           /* the signal that ended it, 0 if none */
    uint64_t uptime_ms;   /* since spawn (or since the watch began) */
};

struct sup_sink {
    void (*exited)(void *ctx, const struct sup_exit *e); /* state is SUP_DOWN already */
    /* A launch (supervisor_launch) ended: 0, the process runs (or is
     * being stopped, if a stop came meanwhile); -errno, it is down. */
    void (*launched)(void *ctx, int err);
    void (*closed)(void *ctx); /* one loop handle closed */
    void *ctx;
};

struct supervisor {
    uv_loop_t *loop;               /* borrowed */
    const char *service;           /* its name; borrowed */
    const struct service_cfg *cfg; /* borrowed; command/pidfile/cwd/stop */
    struct journal *journal;       /* child records; borrowed */
    char **envp;                   /* put over environ at each spawn (mark, cfg->env); NULL: none */
    struct containment *box;       /* borrowed; NULL: the process group alone */
    struct sup_sink sink;          /* set before supervisor_init */
    enum sup_state state;          /* written only by supervisor.c */
    enum stop_reason stop_reason;  /* meaningful while SUP_STOPPING */
    uv_poll_t *exit_watch;         /* readable pidfd of the process; freed in its close cb */
    pid_t pid;                     /* 0 when down */
    uint64_t spawned_us;           /* monotonic time of the last spawn or watch */
    uint64_t spawned_ms;           /* wall time of the same */
    bool has_exit;                 /* last_* are meaningful */
    struct sup_exit last;          /* the last exit */
    uint64_t last_exit_ms;         /* wall time of that exit */
    uv_timer_t grace;              /* stop grace period; draining: the wait after SIGKILL */
    struct enclosure encl;         /* what holds its processes beyond the group */
    bool killed;                   /* stopping/draining: what is left has had SIGKILL */
    bool adopted;                  /* pid is a previous recoverd's child, not ours */
    struct {
        pid_t pid;
        uint64_t start_ticks;
    } adopting;                      /* the argument of SUP_EV_ADOPT (supervisor_adopt) */
    struct output output;            /* stdout+stderr: logs/<name>.pipe -> logs/<name>.log */
    int handles_open;                /* loop handles not closed yet (output counts as one) */
    int result;                      /* of the last SPAWN/WATCH/ADOPT/SPAWNED: 0 or -errno */
    struct spawner *launch_via;      /* the argument of SUP_EV_LAUNCH (supervisor_launch) */
    bool launch_yields;              /* ...and whether its spawn yields (spawner_job.yield) */
    struct spawner_job *job;         /* spawning: the spawner's job, until it reports */
    const struct spawner_job *ended; /* the argument of SUP_EV_SPAWNED */
    bool stop_pending; /* spawning: a stop came (stop_reason's), done once the pid is known */
    /* Shared loop time (borrowed; NULL: every exit at once). Exits that
     * come in one poll past the turn's count (PACE_EXITS) wait for the
     * next turns, oldest first, their watch stopped meanwhile: a stop or a storm
     * brings tens of exits in one poll, each a reap, a group kill, the
     * cgroup's files and journal writes (100-200 us), and handled at once
     * they made the longest turns of a stop at 1,000 services. */
    struct pace *pace;
    struct pace_job exit_job; /* the exit seen, waiting for a turn with time */
};

const char *sup_state_name(enum sup_state s);
const char *sup_event_name(enum sup_event e);

/* Set up (loop, service, cfg, journal, box, sink set by the caller); opens
 * the output log at log_path and the FIFO its processes write into at
 * fifo_path (recover/output.h). 0 or -errno (nothing left open). */
int supervisor_init(struct supervisor *sp, const char *log_path, const char *fifo_path);
/* Close every handle (sink.closed per handle); the process must be down. */
void supervisor_close(struct supervisor *sp);
/* Feed ev (with reason for SUP_EV_STOP); the table decides. Returns 0, or
 * -errno for a SPAWN/WATCH that failed (state stays SUP_DOWN). */
int supervisor_event(struct supervisor *sp, enum sup_event ev, enum stop_reason reason);
/* Start cfg->command on sw's threads, so that the loop does not wait for
 * its exec: -EINPROGRESS, the state is SUP_SPAWNING (no pid yet: nothing
 * may probe it) until sink.launched reports. A stop meanwhile is kept and
 * done once the pid is known; an exit cannot come before. sw NULL: spawns
 * here like SUP_EV_SPAWN (0 or -errno, no sink.launched). */
int supervisor_launch(struct supervisor *sp, struct spawner *sw);
/* Take over pid, which a previous recoverd started for this service and
 * left running (start_ticks: its /proc start time, as recorded): watched
 * by pidfd, contained as if spawned. 0, or -errno (-ESRCH: not that
 * process any more; -EALREADY: up already); the state stays SUP_DOWN. */
int supervisor_adopt(struct supervisor *sp, pid_t pid, uint64_t start_ticks);
/* Leave the process running and stop watching it (recoverd exits for the
 * next one to adopt it): down at once, no exit reported, the child's record
 * and its cgroup kept. */
void supervisor_detach(struct supervisor *sp);
/* Replace the spawn environment (owned from here on). */
void supervisor_set_envp(struct supervisor *sp, char **envp);
/* Whether its process's exit was seen and waits for loop time (sp->pace). */
bool supervisor_exit_waiting(const struct supervisor *sp);

#endif
