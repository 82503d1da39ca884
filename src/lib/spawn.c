/* Our own vfork-style spawn, as musl's posix_spawn does it: clone with
 * CLONE_VM|CLONE_VFORK (no page tables copied, which on a virtualised host
 * is most of the cost of fork) and CLONE_PIDFD (the exit watch comes with
 * the pid). We do not use glibc's posix_spawn because its child asks the
 * kernel about each of the 64 signal dispositions and maps a fresh stack:
 * measured here, 320-390 us per spawn against 130-180 us for this one, and
 * a restart's latency is mostly this call.
 *
 * The child borrows the parent's memory while the parent is suspended, so
 * it may only make system calls: no allocation, no locks, nothing a signal
 * handler of ours could see. All signals stay blocked until just before
 * execve, and the ones recoverd catches or ignores are set back to their
 * defaults first. Binaries link with -z now: a lazily bound first call
 * would run the dynamic linker's resolver on the child's stack. */
#include "lib/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif

extern char **environ;

struct spawn__job {
    const struct spawn_opts *o;
    char *const *envp;
    const char *path; /* PATH for a bare argv[0] */
    int null_fd;
    int err; /* the child's errno when it could not exec; read after it is gone */
};

/* The signals daemon/daemon.c catches (TERM, INT, HUP) or ignores (PIPE):
 * a caught one arriving before execve would run recoverd's handler in the
 * child; an ignored one would stay ignored in the service. */
static const int spawn__reset[] = {SIGTERM, SIGINT, SIGHUP, SIGPIPE};

/* dup2 that also works when fd is already target (dup2 would then leave
 * its close-on-exec flag set). */
__attribute__((no_sanitize("address"))) static long spawn__dup(int fd, int target)
{
    if (fd == target)
        return syscall(SYS_fcntl, fd, F_SETFD, 0);
    return syscall(SYS_dup2, fd, target);
}

__attribute__((no_sanitize("address"))) static int spawn__child(void *arg)
{
    struct spawn__job *j = arg;
    const struct spawn_opts *o = j->o;
    int out = o->out_fd >= 0 ? o->out_fd : j->null_fd;
    /* The kernel's struct sigaction, not glibc's: all zero is SIG_DFL. */
    struct {
        unsigned long handler, flags, restorer, mask;
    } dfl = {0};
    for (size_t i = 0; i < sizeof spawn__reset / sizeof spawn__reset[0]; i++)
        if (syscall(SYS_rt_sigaction, spawn__reset[i], &dfl, NULL, _NSIG / 8) < 0)
            goto fail;
    /* Own session and process group, so the whole group can be signalled. */
    if (syscall(SYS_setsid) < 0)
        goto fail;
    /* stdout and stderr first: out may be fd 0 if recoverd started without
     * a stdin. */
    if (spawn__dup(out, 1) < 0 || spawn__dup(out, 2) < 0 || spawn__dup(j->null_fd, 0) < 0)
        goto fail;
    if (o->cwd && syscall(SYS_chdir, o->cwd) < 0)
        goto fail;
    sigset_t none;
    sigemptyset(&none);
    if (syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, _NSIG / 8) < 0)
        goto fail;
    const char *file = o->argv[0];
    if (!j->path) {
        syscall(SYS_execve, file, o->argv, j->envp);
        goto fail;
    }
    /* PATH search as execvp does it: ENOENT and ENOTDIR move on, EACCES is
     * remembered, anything else ends the search. */
    char buf[PATH_MAX];
    size_t flen = strlen(file);
    int seen_eacces = 0;
    errno = ENOENT; /* what a PATH without a usable entry amounts to */
    for (const char *p = j->path;; p++) {
        const char *z = strchr(p, ':');
        size_t dlen = z ? (size_t)(z - p) : strlen(p);
        if (dlen + 1 + flen + 1 <= sizeof buf) {
            memcpy(buf, p, dlen);
            buf[dlen] = '/';
            memcpy(buf + dlen + 1, file, flen + 1);
            /* An empty entry means the current directory. */
            syscall(SYS_execve, dlen ? buf : buf + 1, o->argv, j->envp);
            if (errno == EACCES)
                seen_eacces = 1;
            else if (errno != ENOENT && errno != ENOTDIR)
                goto fail;
        }
        if (!z)
            break;
        p = z;
    }
    if (seen_eacces)
        errno = EACCES;
fail:
    j->err = errno ? errno : ENOEXEC;
    syscall(SYS_exit_group, 127);
    return 0;
}

/* The child's stack. Not a piece of the caller's stack: a first call
 * through the PLT (without -z now) or a sanitizer's runtime can use more
 * than a frame's worth, and an overflow would land in the suspended
 * caller's variables. One loop thread spawns, so one stack serves. */
static _Alignas(16) char spawn__stack[32 * 1024];

/* /dev/null, opened once and kept: one open fewer on the restart path. */
static int spawn__null(void)
{
    static int fd = -1;
    if (fd < 0) {
        int f = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (f < 0)
            return -errno;
        /* Above 2, so that it never is one of the child's stdio fds. */
        fd = fcntl(f, F_DUPFD_CLOEXEC, 3);
        close(f);
        if (fd < 0)
            return -errno;
    }
    return fd;
}

int spawn_start(const struct spawn_opts *o, pid_t *pid, int *pidfd)
{
    struct spawn__job j = {.o = o, .envp = o->envp ? o->envp : environ};
    if ((j.null_fd = spawn__null()) < 0)
        return j.null_fd;
    if (!strchr(o->argv[0], '/')) {
        j.path = getenv("PATH");
        if (!j.path)
            j.path = "/usr/local/bin:/bin:/usr/bin";
    }
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    int fd = -1;
    pid_t p = clone(spawn__child, spawn__stack + sizeof spawn__stack,
                    CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, &j, &fd);
    int err = errno;
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (p < 0)
        return -err;
    if (j.err) {
        if (fd >= 0)
            close(fd);
        waitpid(p, NULL, 0);
        return -j.err;
    }
    /* A kernel (or valgrind) that ignored CLONE_PIDFD. */
    if (fd < 0 && (fd = spawn_pidfd(p)) < 0) {
        kill(p, SIGKILL);
        waitpid(p, NULL, 0);
        return fd;
    }
    *pid = p;
    *pidfd = fd;
    return 0;
}

int spawn_pidfd(pid_t pid)
{
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    return fd < 0 ? -errno : fd;
}
