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
#include "lib/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
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
    const char *procs;           /* <cgroup>/cgroup.procs the child writes itself to; NULL: none */
    bool set_nofile;             /* the fd limit changed since start: set nofile */
    struct spawn__rlimit nofile; /* RLIMIT_NOFILE for the child */
    bool reset_nice;   /* the calling thread is lowered: the child takes recoverd's nice */
    int err;           /* the child's errno when it could not exec; read after it is gone */
    char *stack;       /* the child's stack: the caller's thread's own */
    size_t stack_size; /* bytes */
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
    bool have_nice;       /* nice was read */
    int nice;             /* recoverd's nice, as it was started */
} spawn__g;

/* The calling thread is lowered (spawn_thread_nice). */
static _Thread_local bool spawn__lowered;

/* Before main, so before anything raises the fd limit (detect/http.c
 * raises it to the hard limit, one socket per check). A program that
 * select()s breaks on fds above 1024, so services get the limit recoverd
 * was given, not the one it took for itself. */
__attribute__((constructor)) static void spawn__record_nofile(void)
{
    spawn__g.have_nofile = getrlimit(RLIMIT_NOFILE, &spawn__g.nofile) == 0;
    /* The main thread's, before any thread lowers itself. */
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, 0);
    spawn__g.have_nice = errno == 0;
    spawn__g.nice = nice;
}

/* CAP_SYS_NICE is in our effective set. */
static bool spawn__may_renice(void)
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3] = {0};
    if (syscall(SYS_capget, &h, d) < 0)
        return false;
    return (d[CAP_TO_INDEX(CAP_SYS_NICE)].effective & CAP_TO_MASK(CAP_SYS_NICE)) != 0;
}

int spawn_nice(void)
{
    return spawn__g.nice;
}

int spawn_nice_yield(int nice, int by, rlim_t nice_limit, bool cap_sys_nice)
{
    int to = nice + by > 19 ? 19 : nice + by;
    /* The child's way back down: RLIMIT_NICE allows nice down to
     * 20 - limit, else it takes the capability. */
    bool back = cap_sys_nice || nice_limit == RLIM_INFINITY || nice_limit >= (rlim_t)(20 - nice);
    return back ? to : nice;
}

int spawn_nice_decide(int by)
{
    struct rlimit rl;
    if (!spawn__g.have_nice)
        return spawn__g.nice; /* 0, never moved: nothing to put back to */
    rlim_t limit = getrlimit(RLIMIT_NICE, &rl) == 0 ? rl.rlim_cur : 0;
    return spawn_nice_yield(spawn__g.nice, by, limit, spawn__may_renice());
}

bool spawn_thread_nice(int to)
{
    bool lower = to > spawn__g.nice;
    if (lower == spawn__lowered)
        return spawn__lowered;
    /* PRIO_PROCESS of a tid: that thread alone (nice is per thread). */
    if (setpriority(PRIO_PROCESS, (id_t)gettid(), to) < 0)
        return spawn__lowered;
    spawn__lowered = lower;
    return spawn__lowered;
}

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
    int out = o->out_fd >= 0 ? o->out_fd : j->null_fd;
    /* The kernel's struct sigaction, not glibc's: all zero is SIG_DFL. */
    struct {
        unsigned long handler, flags, restorer, mask;
    } dfl = {0};
    static const sigset_t none; /* all zero: nothing blocked */
    if (j->procs && spawn__place(j->procs) < 0)
        goto fail;
    /* Before the credentials drop the right to lower a nice. */
    if (j->reset_nice && syscall(SYS_setpriority, PRIO_PROCESS, 0, spawn__g.nice) < 0)
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

/* The loop thread's child stack (spawn_start_on takes another thread's).
 * Not a piece of the caller's stack: a first call through the PLT
 * (without -z now) or a sanitizer's runtime can use more than a frame's
 * worth, and an overflow would land in the suspended caller's variables. */
static _Alignas(16) char spawn__stack[SPAWN_STACK_SIZE];

/* /dev/null, opened once and kept: one open fewer on the restart path.
 * Spawner threads may ask at once: the first fd published wins. */
static int spawn__null(void)
{
    static int fd = -1;
    int cur = __atomic_load_n(&fd, __ATOMIC_ACQUIRE);
    if (cur >= 0)
        return cur;
    int f = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (f < 0)
        return -errno;
    /* Above 2, so that it never is one of the child's stdio fds. */
    int mine = fcntl(f, F_DUPFD_CLOEXEC, 3);
    close(f);
    if (mine < 0)
        return -errno;
    if (!__atomic_compare_exchange_n(&fd, &cur, mine, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        close(mine); /* another thread's is kept: cur has it */
        return cur;
    }
    return mine;
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
        .flags = CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SPAWN__CLONE_INTO_CGROUP,
        .pidfd = (uint64_t)(uintptr_t)fd,
        .exit_signal = SIGCHLD,
        .stack = (uint64_t)(uintptr_t)j->stack,
        .stack_size = j->stack_size,
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
    pid_t p = clone(spawn__child, j->stack + j->stack_size,
                    CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, j, fd);
    return p < 0 ? -errno : p;
}

/* Environment entries a spawn merges without malloc: a spawner thread
 * holding glibc's one arena lock (M_ARENA_MAX 1) while it waits for a CPU
 * at its lowered priority would hold up the loop's next malloc. */
#define SPAWN__ENV_SMALL 128

/* base with add over it (spawn_opts.env_add): an array of borrowed
 * strings, small (SPAWN__ENV_SMALL entries) when they fit, else one to
 * free once the child has exec'd; NULL: out of memory. */
static char **spawn__env(char *const *base, char *const *add, char **small)
{
    size_t n = 0, m = 0, k = 0;
    while (base[n])
        n++;
    while (add[m])
        m++;
    char **v = n + m + 1 <= SPAWN__ENV_SMALL ? small : malloc((n + m + 1) * sizeof *v);
    if (!v)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        size_t len = strcspn(base[i], "=");
        bool over = false;
        for (size_t a = 0; a < m && !over; a++)
            over = strncmp(add[a], base[i], len) == 0 && (add[a][len] == '=' || !add[a][len]);
        if (!over)
            v[k++] = base[i];
    }
    for (size_t a = 0; a < m; a++)
        if (strchr(add[a], '='))
            v[k++] = add[a];
    v[k] = NULL;
    return v;
}

int spawn_start(const struct spawn_opts *o, pid_t *pid, int *pidfd)
{
    return spawn_start_on(o, spawn__stack, sizeof spawn__stack, pid, pidfd);
}

int spawn_start_on(const struct spawn_opts *o, void *stack, size_t stack_size, pid_t *pid,
                   int *pidfd)
{
    struct spawn__job j = {.o = o,
                           .envp = o->envp ? o->envp : environ,
                           .stack = stack,
                           .stack_size = stack_size,
                           .reset_nice = spawn__lowered};
    if (o->cred && o->cred->error)
        return o->cred->error;
    char *small[SPAWN__ENV_SMALL];
    char **env = o->env_add ? spawn__env(j.envp, o->env_add, small) : NULL;
    if (o->env_add && !env)
        return -ENOMEM;
    if (env)
        j.envp = env;
    if ((j.null_fd = spawn__null()) < 0) {
        if (env != small)
            free(env);
        return j.null_fd;
    }
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
    sigprocmask(SIG_BLOCK, &all, &old);
    int fd = -1;
    pid_t p = spawn__clone(&j, &fd);
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (env != small)
        free(env); /* the child has exec'd or is gone (CLONE_VFORK) */
    if (p < 0)
        return p;
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
