/* The process of a service: for a supervised one, spawn in its own process
 * group, stop with signal + grace + SIGKILL; for an external one, the pid
 * from its pidfile, watched. Either way the exit is an event of the loop. */
#ifndef RECOVERD_RECOVER_PROCESS_H
#define RECOVERD_RECOVER_PROCESS_H

#include <stdint.h>
#include <sys/types.h>

struct service;

/* Spawn cfg->command. 0 (PROC_RUNNING) or -errno (still PROC_DOWN). */
int process_spawn(struct service *s);
/* Stop the running process: stop signal and SIGCONT to its group, SIGKILL
 * after the grace period. The exit arrives through executor_process_exited. */
void process_stop(struct service *s, int reason /* enum stop_reason */);
/* External service: read cfg->pidfile and watch that pid (a pidfd makes
 * its exit a loop event). 0 (PROC_RUNNING), -ENOENT (no pidfile), -EINVAL
 * (not a pid), -ESRCH (no such process). */
int process_watch_pidfile(struct service *s);
/* Stop watching an external service's pid (recoverd never signals it). */
void process_unwatch(struct service *s);
/* Start time of pid in clock ticks since boot (/proc/pid/stat field 22);
 * 0 when the process does not exist or is a zombie. */
uint64_t process_start_ticks(pid_t pid);
/* Kill what a previous recoverd left of a service: the process group of pid
 * when pid still is the process started at start_ticks. Waits up to grace_ms
 * after SIGTERM before SIGKILL. Returns 1 if something was killed. */
int process_reap_leftover(pid_t pid, uint64_t start_ticks, uint64_t grace_ms);

#endif
