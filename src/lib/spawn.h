/* Starting a program the way recoverd starts everything: an argv array (no
 * shell), its own session and process group, stdin from /dev/null, stdout
 * and stderr to one fd, and a pidfd so its exit is a loop event. It starts
 * with recoverd's signal dispositions at their defaults (see spawn_init),
 * nothing blocked, and the RLIMIT_NOFILE soft limit recoverd started with. */
#ifndef RECOVERD_LIB_SPAWN_H
#define RECOVERD_LIB_SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#define SPAWN_LIMITS_MAX 8
#define SPAWN_STACK_SIZE                                                                           \
    (32 * 1024) /* the child's stack until it execs */ /* nofile core nproc memlock as stack cpu   \
                                                          fsize */

struct spawn_limit {
    int resource;   /* RLIMIT_* */
    uint64_t value; /* both soft and hard limit; RLIM_INFINITY: unlimited */
};

/* Who the child runs as and what it may use. The parent prepares it (user
 * and group names are resolved there: NSS may block, allocate and lock,
 * none of which the child may do); the child applies it just before it
 * changes directory and execs (after joining o->cgroup, which needs the
 * privilege it may give up), in this order: limits (raising a hard limit
 * needs root, so before setuid), setgroups, setgid, setuid, umask,
 * no_new_privs. All zero: recoverd's own credentials, nothing changed. */
struct spawn_cred {
    int error;           /* -errno: the identity is unknown or unusable; spawn_start refuses
                          * with it, so a program that names a user never runs as another */
    bool set_ids;        /* switch to uid, gid and groups (needs root) */
    uid_t uid;           /* real, effective and saved user id */
    gid_t gid;           /* real, effective and saved group id */
    const gid_t *groups; /* supplementary groups, n_groups of them (0: none); borrowed */
    size_t n_groups;     /* entries of groups */
    bool set_umask;      /* apply umask */
    mode_t umask;        /* the file mode creation mask */
    bool no_new_privs;   /* PR_SET_NO_NEW_PRIVS: exec can never grant privileges (setuid bits) */
    unsigned n_limits;   /* entries of limits */
    struct spawn_limit limits[SPAWN_LIMITS_MAX]; /* set after recoverd's fd limit is restored */
};

struct spawn_opts {
    char *const *argv;             /* NULL-terminated; argv[0] without '/' is looked up in PATH */
    char *const *envp;             /* NULL: recoverd's environment */
    char *const *env_add;          /* NULL-terminated, or NULL: entries put over envp's (a
                                    * name's inherited entry goes; "NAME" alone only removes
                                    * it); merged at each spawn, so a service keeps these few
                                    * pointers, not a copy of the whole environment */
    const char *cwd;               /* NULL: recoverd's working directory */
    int out_fd;                    /* becomes the child's stdout and stderr; -1: /dev/null */
    const struct spawn_cred *cred; /* NULL: recoverd's own credentials */
    const char *cgroup;            /* a cgroup v2 dir the child starts in; NULL: recoverd's */
    bool cgroup_late; /* join it by the child's own write to cgroup.procs, not at birth */
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
 * -errno (ENOENT, EACCES, EPERM from a credential step, o->cred->error...;
 * for o->cgroup, what the kernel said of placing it there: EBUSY,
 * EOPNOTSUPP, ENOENT...). */
int spawn_start(const struct spawn_opts *o, pid_t *pid, int *pidfd);
/* spawn_start with the child running on stack (stack_size bytes, 16-byte
 * aligned, at least SPAWN_STACK_SIZE), so that a thread other than the
 * loop's may spawn: each thread its own stack. Only the calling thread
 * waits for the exec. spawn_init must have run (from the loop thread) and
 * nothing may change a signal disposition meanwhile; reaper_own is the
 * caller's business when recoverd is a subreaper (it is not thread-safe):
 * spawn only from the loop then. */
int spawn_start_on(const struct spawn_opts *o, void *stack, size_t stack_size, pid_t *pid,
                   int *pidfd);
/* recoverd's nice as it was started (the main thread's, read before main). */
int spawn_nice(void);
/* The nice at which a thread of a process at `nice` may run work that
 * yields the CPU by `by` (at most 19): only where the thread's children
 * can be put back to `nice` before exec, so that a service runs at
 * recoverd's priority. That needs cap_sys_nice (CAP_SYS_NICE effective)
 * or an RLIMIT_NICE soft limit (nice_limit) that allows it; without
 * either, `nice` itself (the thread is not lowered). Pure. */
int spawn_nice_yield(int nice, int by, rlim_t nice_limit, bool cap_sys_nice);
/* spawn_nice_yield for recoverd as it is now (its nice, RLIMIT_NICE, its
 * capabilities): a getrlimit and a capget, so decide once (spawner_init),
 * not per job. */
int spawn_nice_decide(int by);
/* Set the calling thread's nice to `to`: spawn_nice_decide's answer, or
 * spawn_nice() to put it back. A thread above spawn_nice() is lowered:
 * its children set their nice back to spawn_nice() before exec, which the
 * decision made sure they may. Nothing is asked of the kernel when the
 * thread is already where `to` puts it. Returns whether the thread is now
 * lowered. */
bool spawn_thread_nice(int to);
/* A pidfd for a process we did not start (readable once it exits), or
 * -errno. */
int spawn_pidfd(pid_t pid);

#endif
