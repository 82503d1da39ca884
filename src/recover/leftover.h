/* Stopping processes that are not recoverd's own children: what a killed
 * predecessor left running, and a service's strays (recover/containment.c).
 * Every entry's group signalled at once, watched from the loop (never
 * waited for on it), SIGKILLed when its own grace runs out. */
#ifndef RECOVERD_RECOVER_LEFTOVER_H
#define RECOVERD_RECOVER_LEFTOVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

/* How long a group may take to go after SIGKILL before it is given up as
 * stuck (uninterruptible sleep, a huge address space being torn down). */
#define LEFTOVER_KILL_WAIT_MS 5000

#define LEFTOVER_FATE_MAP(X)                                                                       \
    X(ABSENT, "absent")   /* not running, or its pid is another process now: untouched */          \
    X(STOPPED, "stopped") /* gone within its grace after the stop signal */                        \
    X(KILLED, "killed")   /* SIGKILLed when its grace ran out, then gone */                        \
    X(STUCK, "stuck")     /* still there LEFTOVER_KILL_WAIT_MS after SIGKILL */
enum leftover_fate {
#define X(e, s) LEFTOVER_##e,
    LEFTOVER_FATE_MAP(X)
#undef X
        LEFTOVER_FATES /* how many */
};

/* "absent", "stopped", ... */
const char *leftover_fate_name(enum leftover_fate f);

/* One service process a predecessor recorded (journal_children). */
struct leftover {
    const char *service;  /* the service's name */
    pid_t pid;            /* its process, leader of its own group (spawned with setsid) */
    uint64_t start_ticks; /* /proc/<pid>/stat start time recorded with pid; 0: unknown */
    int signal;           /* the service's stop signal */
    uint64_t grace_ms;    /* stop signal -> SIGKILL */
};

struct leftover_counts {
    unsigned n[LEFTOVER_FATES]; /* entries per fate */
};

/* What leftover_stop_all tells its caller, always from the loop. */
struct leftover_sink {
    /* One entry has its fate; for a stopped or killed one, what its leader
     * left in its group has been sent SIGKILL too. l is valid during the
     * call only. May be NULL. */
    void (*gone)(void *ctx, const struct leftover *l, enum leftover_fate fate);
    /* Once, after every gone, when nothing of the stop is left: no handle,
     * no fd, no memory. Required. */
    void (*done)(void *ctx, const struct leftover_counts *c);
    void *ctx; /* passed back as is */
};

/* Stop the n entries of v together: each whose pid still has start_ticks
 * gets its stop signal and SIGCONT (to its group, -pid) now, is watched
 * through a pidfd (or /proc every 10 ms), and gets SIGKILL after grace_ms.
 * Entries not running are left alone. v and its names are copied. Returns
 * 0, then reports through sink from the loop, never from inside this call
 * (n may be 0); or -ENOMEM with nothing signalled and nothing reported.
 * Ends within the longest grace + LEFTOVER_KILL_WAIT_MS. */
int leftover_stop_all(uv_loop_t *loop, const struct leftover *v, size_t n,
                      const struct leftover_sink *sink);

#endif
