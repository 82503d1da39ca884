/* Starting a program the way recoverd starts everything: an argv array (no
 * shell), its own session and process group, stdin from /dev/null, stdout
 * and stderr to one fd, and a pidfd so its exit is a loop event. It starts
 * with recoverd's signal dispositions at their defaults (see spawn_init),
 * nothing blocked, and the RLIMIT_NOFILE soft limit recoverd started with. */
#ifndef RECOVERD_LIB_SPAWN_H
#define RECOVERD_LIB_SPAWN_H

#include <stdbool.h>
#include <sys/types.h>

struct spawn_opts {
    char *const *argv;  /* NULL-terminated; argv[0] without '/' is looked up in PATH */
    char *const *envp;  /* NULL: recoverd's environment */
    const char *cwd;    /* NULL: recoverd's working directory */
    int out_fd;         /* becomes the child's stdout and stderr; -1: /dev/null */
    const char *cgroup; /* a cgroup v2 dir the child starts in; NULL: recoverd's */
    bool cgroup_late;   /* join it by the child's own write to cgroup.procs, not at birth */
};

/* Record which signals recoverd catches or ignores (every disposition not
 * SIG_DFL, read with sigaction, inherited ones such as nohup's SIGHUP too),
 * so that each child sets exactly those back to SIG_DFL before it execs.
 * Call once recoverd's signal setup is done (uv_signal_start handlers,
 * SIGPIPE ignored), and again after any later change of a disposition.
 * Never called, the first spawn_start records them: right only if nothing
 * changes a disposition after that spawn. Loop thread only, as spawn_start. */
void spawn_init(void);
/* Start the program; returns once it has exec'd (or failed to). 0 with
 * *pid and *pidfd (readable once it exits; the caller closes it) set, or
 * -errno (ENOENT, EACCES, ...; for o->cgroup, what the kernel said of
 * placing it there: EBUSY, EOPNOTSUPP, ENOENT...). */
int spawn_start(const struct spawn_opts *o, pid_t *pid, int *pidfd);
/* A pidfd for a process we did not start (readable once it exits), or
 * -errno. */
int spawn_pidfd(pid_t pid);

#endif
