/* Our own vfork-style spawn, as musl's posix_spawn does it: clone with
 * CLONE_VM|CLONE_VFORK (no page tables copied, which on a virtualised host
 * is most of the cost of fork) and CLONE_PIDFD (the exit watch comes with
 * the pid). We do not use glibc's posix_spawn because its child asks the
 * kernel about each of the 64 signal dispositions and maps a fresh stack:
 * measured here, 320-390 us per spawn against 130-180 us for this one, and
 * a restart's latency is mostly this call. We ask about the dispositions
 * once (spawn_init) instead of once per child.
 *
 * The child borrows the parent's memory while the parent is suspended, so
 * it may only make system calls: no allocation, no locks, nothing a signal
 * handler of ours could see. All signals stay blocked until just before
 * execve, and every one recoverd catches or ignores is set back to its
 * default first. Binaries link with -z now: a lazily bound first call
 * would run the dynamic linker's resolver on the child's stack. */
/*
 * A child bound for a cgroup (spawn_opts.cgroup) is born in it: clone3
 * with CLONE_INTO_CGROUP, so nothing it forks can start outside it, and
 * without the cgroup migration that writing cgroup.procs costs (it takes
 * the cgroup threadgroup lock for writing; measured here, about 1 ms more
 * per spawn on a busy host). glibc has no clone3 wrapper that runs a
 * function on a new stack, hence the few lines of assembly (x86-64). Where
 * clone3 is missing or refused (older kernels, seccomp profiles), and on
 * other architectures, the child writes itself into cgroup.procs before
 * anything else, still before exec; so does one asked to (cgroup_late: a
 * cgroup that went through cgroup.kill SIGKILLs what is born into it, on
 * Linux 6.14 and later). */
/*
 * The child shares recoverd's fd table (CLONE_FILES) and its first call
 * gives it a private copy of only the lowest few fds (close_range with
 * CLOSE_RANGE_UNSHARE), where the fds it needs wait (spawn__low). A
 * plain clone copies the whole table and exec then closes every fd in it:
 * with the thousands of fds of 1,000 or 3,000 services (logs, FIFOs,
 * pidfds, check sockets) that was 0.2 ms (5,000 fds) to 0.6-1.6 ms
 * (15,000) more per spawn, measured here. Where close_range cannot
 * unshare (before Linux 5.9), children are cloned the plain way. */
#include "lib/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/reaper.h"

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#define SPAWN__CLONE_INTO_CGROUP 0x200000000ULL
#define SPAWN__CLOSE_RANGE_UNSHARE (1U << 1)

extern char **environ;

/* The kernel's struct rlimit64, as prlimit64 takes it. */
struct spawn__rlimit {
    uint64_t cur; /* soft limit */
    uint64_t max; /* hard limit */
};

struct spawn__job {
    const struct spawn_opts *o;
    char *const *envp;
    const char *path; /* PATH for a bare argv[0] */
    int null_fd;
    int out_fd;          /* the child's stdout and stderr */
    int keep;            /* fds below this stay in a child sharing the table; 0: not shared */
    bool unshare_failed; /* the child could not unshare the table (an old kernel) */
    const char *procs;   /* <cgroup>/cgroup.procs the child writes itself to; NULL: none */
    bool set_nofile;     /* the fd limit changed since start: set nofile */
    struct spawn__rlimit nofile; /* RLIMIT_NOFILE for the child */
    int err; /* the child's errno when it could not exec; read after it is gone */
};

/* What every child sets back before exec. Written by the loop thread
 * between spawns, read by the child while the parent is suspended. */
static struct {
    bool recorded;        /* spawn_init has run */
    int n_sigs;           /* entries in sigs */
    int sigs[_NSIG];      /* signals not SIG_DFL in recoverd: caught or ignored */
    bool have_nofile;     /* nofile was read */
    struct rlimit nofile; /* RLIMIT_NOFILE as recoverd was started */
    bool no_clone3;       /* clone3 was refused once: place children by cgroup.procs */
    bool no_unshare;      /* close_range could not unshare once: copy the whole fd table */
} spawn__g;

/* Before main, so before anything raises the fd limit (detect/http.c
 * raises it to the hard limit, one socket per check). A program that
 * select()s breaks on fds above 1024, so services get the limit recoverd
 * was given, not the one it took for itself. */
__attribute__((constructor)) static void spawn__record_nofile(void)
{
    spawn__g.have_nofile = getrlimit(RLIMIT_NOFILE, &spawn__g.nofile) == 0;
}

static int spawn__low_fds(int *slot);

void spawn_init(void)
{
    int n = 0;
    for (int sig = 1; sig < _NSIG; sig++) {
        struct sigaction sa;
        if (sig == SIGKILL || sig == SIGSTOP)
            continue; /* always SIG_DFL */
        /* glibc refuses its own 32 and 33 (cancellation, setxid): EINVAL.
         * Both go only to threads of ours by tid, never to a child. */
        if (sigaction(sig, NULL, &sa) < 0)
            continue;
        if (sa.sa_handler != SIG_DFL) /* a handler (either kind) or SIG_IGN */
            spawn__g.sigs[n++] = sig;
    }
    spawn__g.n_sigs = n;
    spawn__g.recorded = true;
    int slot = -1;
    (void)spawn__low_fds(&slot); /* early, so low: see spawn__low_fds */
}

/* dup2 that also works when fd is already target (dup2 would then leave
 * its close-on-exec flag set). */
__attribute__((no_sanitize("address"))) static long spawn__dup(int fd, int target)
{
    if (fd == target)
        return syscall(SYS_fcntl, fd, F_SETFD, 0);
    return syscall(SYS_dup2, fd, target);
}

/* The credential steps (see struct spawn_cred), raw system calls only:
 * once recoverd has threads (libuv's pool), glibc's setuid, setgid and
 * setgroups wrappers signal every thread to change its ids too and wait
 * for them (setxid); this child shares recoverd's memory, thread list
 * included, but not its threads, so it would signal recoverd's threads
 * and wait on them. The system calls change only this process. -1 with
 * errno on failure. */
__attribute__((no_sanitize("address"))) static int spawn__child_cred(const struct spawn_cred *c)
{
    for (unsigned i = 0; i < c->n_limits; i++) {
        struct spawn__rlimit l = {c->limits[i].value, c->limits[i].value};
        if (syscall(SYS_prlimit64, 0, c->limits[i].resource, &l, NULL) < 0)
            return -1;
    }
    if (c->set_ids) {
        if (syscall(SYS_setgroups, c->n_groups, c->groups) < 0 ||
            syscall(SYS_setresgid, c->gid, c->gid, c->gid) < 0 ||
            syscall(SYS_setresuid, c->uid, c->uid, c->uid) < 0)
            return -1;
    }
    if (c->set_umask)
        syscall(SYS_umask, c->umask); /* cannot fail */
    if (c->no_new_privs && syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -1;
    return 0;
}

/* The calling child into the cgroup whose cgroup.procs is procs ("0" is
 * the writer), first of all: before it gives up any privilege. */
__attribute__((no_sanitize("address"))) static long spawn__place(const char *procs)
{
    int fd = (int)syscall(SYS_openat, AT_FDCWD, procs, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    long r = syscall(SYS_write, fd, "0", 1);
    syscall(SYS_close, fd);
    return r < 0 ? -1 : 0;
}

/* All signals are still blocked here, as they were in the parent at clone.
 * A caught one must be back to default before they are unblocked, or
 * arriving before execve it would run recoverd's handler in the child, on
 * recoverd's memory; an ignored one would stay ignored in the service. */
__attribute__((no_sanitize("address"))) static int spawn__child(void *arg)
{
    struct spawn__job *j = arg;
    const struct spawn_opts *o = j->o;
    int out = j->out_fd;
    /* Sharing recoverd's table, the child must not change it: its own
     * copy of the low fds first, before anything opens or moves an fd. */
    if (j->keep && syscall(SYS_close_range, j->keep, ~0U, SPAWN__CLOSE_RANGE_UNSHARE) < 0) {
        j->unshare_failed = true;
        goto fail;
    }
    /* The kernel's struct sigaction, not glibc's: all zero is SIG_DFL. */
    struct {
        unsigned long handler, flags, restorer, mask;
    } dfl = {0};
    static const sigset_t none; /* all zero: nothing blocked */
    if (j->procs && spawn__place(j->procs) < 0)
        goto fail;
    for (int i = 0; i < spawn__g.n_sigs; i++)
        if (syscall(SYS_rt_sigaction, spawn__g.sigs[i], &dfl, NULL, _NSIG / 8) < 0)
            goto fail;
    if (j->set_nofile && syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, &j->nofile, NULL) < 0)
        goto fail;
    /* Own session and process group, so the whole group can be signalled. */
    if (syscall(SYS_setsid) < 0)
        goto fail;
    /* stdout and stderr first: out may be fd 0 if recoverd started without
     * a stdin. */
    if (spawn__dup(out, 1) < 0 || spawn__dup(out, 2) < 0 || spawn__dup(j->null_fd, 0) < 0)
        goto fail;
    /* Before chdir: the service's user must be able to enter its cwd. */
    if (o->cred && spawn__child_cred(o->cred) < 0)
        goto fail;
    if (o->cwd && syscall(SYS_chdir, o->cwd) < 0)
        goto fail;
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
            /* The directory, '/', then the name with its NUL (flen + 1). */
            // NOLINTNEXTLINE(bugprone-not-null-terminated-result)
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

/* /dev/null, opened once and kept (one open fewer on the restart path),
 * and a second low fd where a child's output waits for it (a copy of
 * /dev/null between spawns). Both above 2, so that neither is one of the
 * child's stdio fds, and as low as they can be when first asked for
 * (spawn_init, early): a child sharing the table copies the fds below
 * them. */
static int spawn__low_fds(int *slot)
{
    static int fd = -1, out = -1;
    if (fd < 0) {
        int f = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (f < 0)
            return -errno;
        fd = fcntl(f, F_DUPFD_CLOEXEC, 3);
        out = fd < 0 ? -1 : fcntl(f, F_DUPFD_CLOEXEC, 3);
        close(f);
        if (fd < 0 || out < 0) {
            int e = errno;
            if (fd >= 0)
                close(fd);
            fd = -1;
            return -e;
        }
    }
    *slot = out;
    return fd;
}

/* The fds a child needs, moved below j->keep so that it can drop the rest
 * of recoverd's table at once. */
static void spawn__low(struct spawn__job *j)
{
    int slot = -1;
    j->out_fd = j->o->out_fd >= 0 ? j->o->out_fd : j->null_fd;
    if (spawn__g.no_unshare || spawn__low_fds(&slot) < 0)
        return;
    if (j->out_fd != j->null_fd) {
        if (dup3(j->out_fd, slot, O_CLOEXEC) < 0)
            return;
        j->out_fd = slot;
    }
    j->keep = (j->null_fd > slot ? j->null_fd : slot) + 1;
}

/* The fd limit recoverd was started with, if it has changed since, capped
 * by today's hard limit (a soft limit moves freely below the hard one). */
static void spawn__nofile(struct spawn__job *j)
{
    struct rlimit now;
    rlim_t start = spawn__g.nofile.rlim_cur;
    if (!spawn__g.have_nofile || getrlimit(RLIMIT_NOFILE, &now) < 0 || now.rlim_cur == start)
        return;
    j->set_nofile = true;
    j->nofile.cur = start < now.rlim_max ? start : now.rlim_max;
    j->nofile.max = now.rlim_max;
}

#if defined(__x86_64__)
/* The kernel's struct clone_args, up to its cgroup field (v2, 88 bytes). */
struct spawn__clone_args {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
        set_tid_size, cgroup;
};

/* clone3 whose child runs fn(arg) on a->stack and exits with its value, as
 * glibc's clone() does for clone(2). The parent gets the pid or -errno. The
 * child starts with the parent's registers but its own stack pointer, so
 * fn and arg travel in registers the syscall keeps. */
static long spawn__clone3(struct spawn__clone_args *a, int (*fn)(void *), void *arg)
{
    /* Pinned: the child clears rbp (an outermost frame), so neither may
     * live there, and r12/r13 survive the syscall. */
    register int (*r_fn)(void *) __asm__("r12") = fn;
    register void *r_arg __asm__("r13") = arg;
    long ret = SYS_clone3;
    __asm__ volatile("syscall\n\t"
                     "test %%rax, %%rax\n\t"
                     "jnz 1f\n\t"
                     "mov %[arg], %%rdi\n\t"
                     "xor %%ebp, %%ebp\n\t"
                     "call *%[fn]\n\t"
                     "mov %%eax, %%edi\n\t"
                     "mov %[exit], %%eax\n\t"
                     "syscall\n\t"
                     "hlt\n\t"
                     "1:\n\t"
                     : "+a"(ret)
                     : "D"(a),
                       "S"(sizeof *a), [fn] "r"(r_fn), [arg] "r"(r_arg), [exit] "i"(SYS_exit)
                     : "rcx", "r11", "memory");
    return ret;
}

/* Born in the cgroup cgfd: the pid, or -errno (-ENOSYS: use clone). */
static pid_t spawn__into(struct spawn__job *j, int cgfd, int *fd)
{
    struct spawn__clone_args a = {
        .flags = CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SPAWN__CLONE_INTO_CGROUP |
                 (j->keep ? CLONE_FILES : 0),
        .pidfd = (uint64_t)(uintptr_t)fd,
        .exit_signal = SIGCHLD,
        .stack = (uint64_t)(uintptr_t)spawn__stack,
        .stack_size = sizeof spawn__stack,
        .cgroup = (uint64_t)cgfd,
    };
    long p = spawn__clone3(&a, spawn__child, j);
    /* Refused as a whole (no clone3, a seccomp filter, a kernel before
     * CLONE_INTO_CGROUP): never ask again. Errors about the cgroup itself
     * (EBUSY, EOPNOTSUPP) are the caller's. */
    if (p == -ENOSYS || p == -EPERM || p == -EINVAL) {
        spawn__g.no_clone3 = true;
        return -ENOSYS;
    }
    return (pid_t)p;
}
#else
static pid_t spawn__into(struct spawn__job *j, int cgfd, int *fd)
{
    return -ENOSYS;
}
#endif

/* clone, or clone3 into o->cgroup; the pid or -errno. The child has exec'd
 * or failed by the time this returns. */
static pid_t spawn__clone(struct spawn__job *j, int *fd)
{
    char procs[PATH_MAX];
    const char *cg = j->o->cgroup;
    if (cg && !spawn__g.no_clone3 && !j->o->cgroup_late) {
        int cgfd = open(cg, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (cgfd < 0)
            return -errno;
        pid_t p = spawn__into(j, cgfd, fd);
        close(cgfd);
        if (p != -ENOSYS)
            return p;
    }
    if (cg) {
        if (snprintf(procs, sizeof procs, "%s/cgroup.procs", cg) >= (int)sizeof procs)
            return -ENAMETOOLONG;
        j->procs = procs;
    }
    pid_t p = clone(spawn__child, spawn__stack + sizeof spawn__stack,
                    CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD | (j->keep ? CLONE_FILES : 0), j,
                    fd);
    return p < 0 ? -errno : p;
}

int spawn_start(const struct spawn_opts *o, pid_t *pid, int *pidfd)
{
    struct spawn__job j = {.o = o, .envp = o->envp ? o->envp : environ};
    if (o->cred && o->cred->error)
        return o->cred->error;
    int slot = -1;
    if ((j.null_fd = spawn__low_fds(&slot)) < 0)
        return j.null_fd;
    if (!strchr(o->argv[0], '/')) {
        j.path = getenv("PATH");
        if (!j.path)
            j.path = "/usr/local/bin:/bin:/usr/bin";
    }
    if (!spawn__g.recorded)
        spawn_init(); /* late for handlers set after this, see spawn.h */
    spawn__nofile(&j);
    sigset_t all, old;
    sigfillset(&all);
    int fd;
    pid_t p;
    for (;;) {
        spawn__low(&j);
        fd = -1;
        sigprocmask(SIG_BLOCK, &all, &old);
        p = spawn__clone(&j, &fd);
        sigprocmask(SIG_SETMASK, &old, NULL);
        if (j.out_fd == slot)
            dup3(j.null_fd, slot, O_CLOEXEC); /* the output's fd is the caller's alone again */
        if (p < 0)
            return p;
        if (!j.err)
            break;
        if (fd >= 0)
            close(fd);
        waitpid(p, NULL, 0);
        if (!j.unshare_failed)
            return -j.err;
        spawn__g.no_unshare = true; /* once more, copying the whole table */
        j.err = 0;
        j.keep = 0;
        j.unshare_failed = false;
    }
    /* A kernel (or valgrind) that ignored CLONE_PIDFD. */
    if (fd < 0 && (fd = spawn_pidfd(p)) < 0) {
        kill(p, SIGKILL);
        waitpid(p, NULL, 0);
        return fd;
    }
    reaper_own(p); /* its owner reaps it, not the subreaper's sweep */
    *pid = p;
    *pidfd = fd;
    return 0;
}

int spawn_pidfd(pid_t pid)
{
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    return fd < 0 ? -errno : fd;
}
