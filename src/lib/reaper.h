/* recoverd as a child subreaper (PR_SET_CHILD_SUBREAPER), where it cannot
 * give its services cgroups: what a service leaves behind when it double
 * forks becomes recoverd's child instead of init's, so it can still be
 * found, stopped and reaped. This module tells those adopted orphans from
 * the children recoverd started itself (which their owners reap: the
 * supervisor, lib/program.c), reaps the orphans, and lists the children of
 * a process. */
#ifndef RECOVERD_LIB_REAPER_H
#define RECOVERD_LIB_REAPER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* A growing list of pids; free v when done. */
struct pid_list {
    pid_t *v;   /* n entries */
    size_t n;   /* used */
    size_t cap; /* allocated */
};

/* Make recoverd a subreaper and start telling its own children apart.
 * 0 or -errno. */
int reaper_enable(void);
bool reaper_enabled(void);
/* pid is a child spawn_start made: its owner reaps it, never reaper_reap.
 * Does nothing until reaper_enable. */
void reaper_own(pid_t pid);
/* pid is a child spawn_start made and its owner has not reaped yet (as far
 * as the last reaper_reap saw). */
bool reaper_is_own(pid_t pid);
/* Reap every adopted orphan that has exited, and forget own children their
 * owners reaped. The count reaped. */
int reaper_reap(void);
/* Append the children of pid (those of each of its threads) to l. 0, or
 * -errno (-ENOENT: pid is gone; -ENOMEM). */
int reaper_children(pid_t pid, struct pid_list *l);
/* Append pid to l; 0 or -ENOMEM. */
int pid_list_add(struct pid_list *l, pid_t pid);

#endif
