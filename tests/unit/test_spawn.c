/* lib/spawn: real programs started the way services are, and what the
 * child finds at exec: its stdio, session, signal state, fd limit, cwd,
 * environment, fds; exec errors reported by the call itself. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/cgroup.h"
#include "lib/spawn.h"
#include "lib/spawner.h"
#include "loopwait.h"
#include "seccomp.h"

/* Start o with its output (stdout and stderr) in a pipe, put what it wrote
 * into out, and wait for it: its exit code (128 + a signal), or
 * spawn_start's -errno. */
static int run_opts(struct spawn_opts *o, char *out, size_t cap)
{
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    o->out_fd = p[1];
    pid_t pid = 0;
    int pidfd = -1;
    int started = spawn_start(o, &pid, &pidfd);
    close(p[1]);
    if (started < 0) {
        close(p[0]);
        return started;
    }
    size_t n = 0;
    ssize_t r;
    while (n + 1 < cap && (r = read(p[0], out + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = '\0';
    close(p[0]);
    /* The pidfd is the exit watch: readable once the child is gone. */
    struct pollfd pf = {.fd = pidfd, .events = POLLIN};
    assert_int_equal(poll(&pf, 1, LOOPWAIT_MS), 1);
    siginfo_t si = {0};
    assert_int_equal(waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED), 0);
    assert_int_equal(si.si_pid, pid);
    close(pidfd);
    return si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
}

/* Run argv (with cred, NULL: ours) with its output in a pipe; return its
 * exit code and put what it wrote (stdout and stderr) into out. */
static int run_as(char *const argv[], char *const envp[], const char *cwd,
                  const struct spawn_cred *cred, char *out, size_t cap)
{
    struct spawn_opts o = {.argv = argv, .envp = envp, .cwd = cwd, .cred = cred};
    int code = run_opts(&o, out, cap);
    assert_true(code >= 0);
    return code;
}

static int run(char *const argv[], char *const envp[], const char *cwd, char *out, size_t cap)
{
    return run_as(argv, envp, cwd, NULL, out, cap);
}

static void test_output_goes_to_out_fd_and_stdin_is_empty(void **state)
{
    char out[256];
    char *argv[] = {"/bin/sh", "-c", "cat; echo to-out; echo to-err >&2; exit 3", NULL};
    assert_int_equal(run(argv, NULL, NULL, out, sizeof out), 3);
    assert_string_equal(out, "to-out\nto-err\n");
}

static void test_bare_name_is_found_in_path(void **state)
{
    char out[64];
    char *argv[] = {"echo", "found", NULL};
    assert_int_equal(run(argv, NULL, NULL, out, sizeof out), 0);
    assert_string_equal(out, "found\n");
}

static void test_environment_and_cwd(void **state)
{
    char out[256];
    char *argv[] = {"sh", "-c", "echo \"$GREETING\"; pwd; env | wc -l", NULL};
    char *envp[] = {"GREETING=hello", NULL};
    assert_int_equal(run(argv, envp, "/tmp", out, sizeof out), 0);
    /* Only what envp gave (sh adds PWD, and its own SHLVL/_ at most). */
    char greet[32], dir[64];
    int lines = 0;
    assert_int_equal(sscanf(out, "%31s %63s %d", greet, dir, &lines), 3);
    assert_string_equal(greet, "hello");
    assert_string_equal(dir, "/tmp");
    assert_in_range(lines, 1, 4);
}

/* env_add is merged at the spawn: an entry replaces the inherited one of
 * its name, a bare name only removes it, the rest is inherited as is. */
static void test_env_add_goes_over_the_environment(void **state)
{
    char out[256];
    char *argv[] = {"sh", "-c", "echo \"$KEEP $SWAP $NEW ${GONE-unset}\"", NULL};
    char *base[] = {"KEEP=kept", "SWAP=old", "GONE=there", "PATH=/usr/bin:/bin", NULL};
    char *add[] = {"SWAP=new", "NEW=added", "GONE", NULL};
    struct spawn_opts o = {.argv = argv, .envp = base, .env_add = add};
    assert_int_equal(run_opts(&o, out, sizeof out), 0);
    assert_string_equal(out, "kept new added unset\n");
}

/* The first line of a /proc/PID/stat file into buf; false if unreadable. */
static bool proc_stat_line(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    bool ok = f && fgets(buf, (int)len, f);
    if (f)
        fclose(f);
    return ok;
}

static void on_signal(int sig)
{
    (void)sig;
}

/* The "SigXxx:" mask of /proc/<pid>/status text. */
static unsigned long long status_mask(const char *status, const char *key)
{
    const char *p = strstr(status, key);
    assert_non_null(p);
    return strtoull(p + strlen(key), NULL, 16);
}

#define BIT(sig) (1ULL << ((sig)-1))

/* Signal state at exec: nothing blocked, what recoverd ignores (SIGPIPE,
 * SIGQUIT here) back to default, and the child leads its own session and
 * group. A caught signal is reset by execve itself: see
 * child_resets_dispositions_before_it_unblocks for the window before. */
static void test_session_and_signals_are_reset(void **state)
{
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, &old);
    void (*prev_pipe)(int) = signal(SIGPIPE, SIG_IGN);
    void (*prev_quit)(int) = signal(SIGQUIT, SIG_IGN);
    void (*prev_usr1)(int) = signal(SIGUSR1, on_signal);
    spawn_init();
    char out[512];
    /* The masks are read by the shell's builtins before it forks anything:
     * while it waits for a child (a grep reading /proc/$$), dash blocks
     * every signal, and a child that looks then sees that. */
    char *argv[] = {"/bin/sh", "-c",
                    "while read -r l; do case $l in SigBlk:*|SigIgn:*) echo \"$l\";; esac; "
                    "done < /proc/$$/status; "
                    "echo sid=$(cut -d' ' -f6 /proc/$$/stat) pid=$$ pgrp=$(cut -d' ' -f5 "
                    "/proc/$$/stat)",
                    NULL};
    assert_int_equal(run(argv, NULL, NULL, out, sizeof out), 0);
    signal(SIGPIPE, prev_pipe);
    signal(SIGQUIT, prev_quit);
    signal(SIGUSR1, prev_usr1);
    spawn_init();
    sigprocmask(SIG_SETMASK, &old, NULL);

    assert_int_equal(status_mask(out, "SigBlk:"), 0);
    unsigned long long ign = status_mask(out, "SigIgn:");
    assert_false(ign & BIT(SIGPIPE));
    assert_false(ign & BIT(SIGQUIT));
    long sid = 0, pid = 0, pgrp = 0;
    char *ids = strstr(out, "sid=");
    assert_non_null(ids);
    assert_int_equal(sscanf(ids, "sid=%ld pid=%ld pgrp=%ld", &sid, &pid, &pgrp), 3);
    assert_int_equal(sid, pid);
    assert_int_equal(pgrp, pid);
}

/* ---- the window between unblocking and execve ----
 *
 * execve resets caught signals on its own, so a service can never show
 * whether the child reset SIGUSR1: what the reset prevents is recoverd's
 * handler running in the child should the signal arrive just before
 * execve. To see the child's dispositions at that moment, a helper
 * process (this binary, re-executed fresh, so nothing is recorded yet)
 * makes its child's execve wait on a seccomp user notification, reads
 * /proc/<child>/status while it waits, then lets the execve go on. */

struct window {
    int listener;      /* seccomp notification fd */
    char status[4096]; /* /proc/<child>/status as execve waited */
};

/* Answer the one execve: read the child's status first, then let it run. */
static void *window_answer(void *arg)
{
    struct window *w = arg;
    struct seccomp_notif req;
    struct seccomp_notif_resp resp;
    memset(&req, 0, sizeof req);
    if (ioctl(w->listener, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0)
        return NULL;
    char path[64];
    snprintf(path, sizeof path, "/proc/%u/status", req.pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, w->status, sizeof w->status - 1);
        w->status[n > 0 ? n : 0] = '\0';
        close(fd);
    }
    memset(&resp, 0, sizeof resp);
    resp.id = req.id;
    resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    ioctl(w->listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
    return NULL;
}

/* The helper: SIGUSR1 caught and SIGQUIT ignored, spawn_init called (mode
 * "init") or not ("lazy"), one spawn of /bin/true with its execve held.
 * Prints the child's SigBlk, SigCgt and SigIgn lines. */
static int window_main(const char *mode)
{
    static struct window w;
    signal(SIGUSR1, on_signal);
    signal(SIGQUIT, SIG_IGN);
    if (strcmp(mode, "init") == 0)
        spawn_init();
    if ((w.listener = seccomp_on(__NR_execve, SECCOMP_RET_USER_NOTIF)) < 0)
        return SECCOMP_SKIP;
    pthread_t t;
    if (pthread_create(&t, NULL, window_answer, &w) != 0)
        return 1;
    char *argv[] = {"/bin/true", NULL};
    struct spawn_opts o = {.argv = argv, .out_fd = -1};
    pid_t pid;
    int pidfd;
    int r = spawn_start(&o, &pid, &pidfd);
    pthread_join(t, NULL);
    if (r < 0)
        return 1;
    waitpid(pid, NULL, 0);
    close(pidfd);
    for (const char *l = w.status; (l = strstr(l, "\nSig")); l++)
        printf("%.*s\n", (int)strcspn(l + 1, "\n"), l + 1);
    return 0;
}

static void assert_window_clean(const char *mode)
{
    char self[4096], out[1024];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(n > 0);
    self[n] = '\0';
    char *argv[] = {self, "--window", (char *)mode, NULL};
    int code = run(argv, NULL, NULL, out, sizeof out);
    if (code == SECCOMP_SKIP)
        skip();
    assert_int_equal(code, 0);
    /* glibc's 32 and 33 are its own (see spawn_init). */
    unsigned long long glibc = BIT(32) | BIT(33);
    assert_int_equal(status_mask(out, "SigBlk:"), 0);
    assert_int_equal(status_mask(out, "SigCgt:") & ~glibc, 0);
    assert_int_equal(status_mask(out, "SigIgn:"), 0);
}

static void test_child_resets_dispositions_before_it_unblocks(void **state)
{
    assert_window_clean("init");
}

/* Without spawn_init, the first spawn reads the dispositions itself. */
static void test_first_spawn_records_dispositions_without_init(void **state)
{
    assert_window_clean("lazy");
}

/* The child gets the soft fd limit this process started with, not the
 * one it has now (raised here when it can be, lowered otherwise). */
static void test_child_gets_the_fd_limit_we_started_with(void **state)
{
    struct rlimit start, changed;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &start), 0);
    changed = start;
    changed.rlim_cur = start.rlim_cur < start.rlim_max ? start.rlim_max : start.rlim_cur - 1;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &changed), 0);
    char out[64];
    char *argv[] = {"/bin/sh", "-c", "ulimit -n", NULL};
    int code = run(argv, NULL, NULL, out, sizeof out);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &start), 0);
    assert_int_equal(code, 0);
    assert_int_equal(strtoull(out, NULL, 10), start.rlim_cur);
}

/* The child holds 0, 1 and 2 and none of our close-on-exec fds; with no
 * out_fd all three are /dev/null. */
static void test_stdio_without_out_fd_and_no_fd_leak(void **state)
{
    int keep[2];
    assert_int_equal(pipe2(keep, O_CLOEXEC), 0);
    char mine[64];
    snprintf(mine, sizeof mine, "/proc/self/fd/%d", keep[0]);
    char pipe_name[64] = "";
    assert_true(readlink(mine, pipe_name, sizeof pipe_name - 1) > 0);

    char *argv[] = {"sleep", "60", NULL}; /* asleep for longer than the wait; killed below */
    struct spawn_opts o = {.argv = argv, .out_fd = -1};
    pid_t pid = 0;
    int pidfd = -1;
    assert_int_equal(spawn_start(&o, &pid, &pidfd), 0);
    /* The call returns as exec replaces the memory; the kernel closes
     * close-on-exec fds a little later. Asleep in sleep(1), it is done. */
    char stat[64], buf[256] = "";
    snprintf(stat, sizeof stat, "/proc/%d/stat", (int)pid);
    poll_until(proc_stat_line(stat, buf, sizeof buf) && strstr(buf, "(sleep) S"));
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n_stdio = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[sizeof dir + sizeof e->d_name], target[128] = "";
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        assert_true(readlink(path, target, sizeof target - 1) > 0);
        assert_string_not_equal(target, pipe_name);
        int fd = atoi(e->d_name);
        if (fd <= 2) {
            assert_string_equal(target, "/dev/null");
            n_stdio++;
        }
    }
    closedir(d);
    assert_int_equal(n_stdio, 3);
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    close(pidfd);
    close(keep[0]);
    close(keep[1]);
}

/* Exec failures come back from the call, and leave no child behind. */
static void assert_fails_as(char *const argv[], const char *cwd, const struct spawn_cred *cred,
                            int err)
{
    struct spawn_opts o = {.argv = argv, .cwd = cwd, .out_fd = -1, .cred = cred};
    pid_t pid = -7;
    int pidfd = -7;
    assert_int_equal(spawn_start(&o, &pid, &pidfd), -err);
    assert_int_equal(pid, -7);
    assert_int_equal(pidfd, -7);
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

static void assert_fails(char *const argv[], const char *cwd, int err)
{
    assert_fails_as(argv, cwd, NULL, err);
}

static void test_exec_errors_are_reported(void **state)
{
    char *missing[] = {"/nonexistent/recoverd-test-binary", NULL};
    assert_fails(missing, NULL, ENOENT);
    char *not_in_path[] = {"recoverd-test-no-such-program", NULL};
    assert_fails(not_in_path, NULL, ENOENT);
    char *good[] = {"/bin/true", NULL};
    assert_fails(good, "/nonexistent-dir", ENOENT);

    /* Not executable: EACCES by path, and from a PATH search that found
     * nothing better. */
    char dir[] = "/tmp/recoverd-spawn-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char file[128];
    snprintf(file, sizeof file, "%s/plain", dir);
    int fd = open(file, O_CREAT | O_WRONLY, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "#!/bin/sh\n", 10), 10);
    close(fd);
    char *plain[] = {file, NULL};
    assert_fails(plain, NULL, EACCES);
    char *old_path = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
    char path[256];
    snprintf(path, sizeof path, "/nonexistent:%s", dir);
    setenv("PATH", path, 1);
    char *bare[] = {"plain", NULL};
    assert_fails(bare, NULL, EACCES);
    if (old_path)
        setenv("PATH", old_path, 1);
    free(old_path);
    unlink(file);
    rmdir(dir);
}

/* ---- credentials ---- */

/* The child runs with the ids, groups, umask, limits and no_new_privs it
 * was given, as the kernel reports them to the program itself. */
static void test_credentials_are_applied_before_exec(void **state)
{
    if (geteuid() != 0)
        skip(); /* switching users needs root */
    static const gid_t groups[] = {65534, 4};
    struct spawn_cred c = {.set_ids = true,
                           .uid = 65534,
                           .gid = 65534,
                           .groups = groups,
                           .n_groups = 2,
                           .set_umask = true,
                           .umask = 027,
                           .no_new_privs = true,
                           .n_limits = 3,
                           .limits = {{RLIMIT_NOFILE, 77}, {RLIMIT_CORE, 0}, {RLIMIT_CPU, 9}}};
    char out[1024];
    char *argv[] = {"/bin/sh", "-c",
                    "grep -E '^(Uid|Gid|Groups|Umask|NoNewPrivs):' /proc/self/status;"
                    "ulimit -n; ulimit -Hn; ulimit -c; ulimit -t",
                    NULL};
    assert_int_equal(run_as(argv, NULL, NULL, &c, out, sizeof out), 0);
    assert_non_null(strstr(out, "Umask:\t0027\n"));
    assert_non_null(strstr(out, "Uid:\t65534\t65534\t65534\t65534\n"));
    assert_non_null(strstr(out, "Gid:\t65534\t65534\t65534\t65534\n"));
    assert_non_null(strstr(out, "Groups:\t4 65534 \n"));
    assert_non_null(strstr(out, "NoNewPrivs:\t1\n"));
    assert_non_null(strstr(out, "\n77\n77\n0\n9\n"));
    /* Only the child changed. */
    assert_int_equal(geteuid(), 0);
}

/* An identity that could not be resolved refuses to run anything: a
 * program that names a user never runs as recoverd's instead. */
static void test_unresolved_credentials_refuse_to_spawn(void **state)
{
    struct spawn_cred c = {.error = -EAGAIN};
    char *argv[] = {"/bin/true", NULL};
    assert_fails_as(argv, NULL, &c, EAGAIN);
}

/* A step the kernel refuses fails the spawn with its errno: an fd limit
 * above fs.nr_open, or a cwd the user may not enter (entered after the
 * switch, as the user). */
static void test_credential_failures_are_reported(void **state)
{
    char *argv[] = {"/bin/true", NULL};
    struct spawn_cred big = {.n_limits = 1, .limits = {{RLIMIT_NOFILE, RLIM_INFINITY}}};
    assert_fails_as(argv, NULL, &big, EPERM);
    if (geteuid() != 0)
        return;
    char dir[] = "/tmp/recoverd-spawn-XXXXXX"; /* 0700, root's */
    assert_non_null(mkdtemp(dir));
    struct spawn_cred nobody = {.set_ids = true, .uid = 65534, .gid = 65534};
    assert_fails_as(argv, dir, &nobody, EACCES);
    rmdir(dir);
}

/* ---- placement in a cgroup ---- */

/* A fresh cgroup below this process's own, or skip where there is no
 * writable cgroup v2 tree. */
static void cgroup_make(char *dir, size_t len)
{
    char own[4096];
    if (cgroup_of_pid(getpid(), own, sizeof own) < 0)
        skip();
    snprintf(dir, len, "%s/test_spawn.%d", own, (int)getpid());
    if (cgroup_mkdir(dir) < 0)
        skip();
}

/* The "0::/path" line the child printed, its path made absolute as
 * cgroup_of_pid does, compared with dir. */
static void assert_printed_cgroup(const char *out, const char *dir)
{
    char self[4096], rel[4096];
    const char *line = strstr(out, "0::");
    assert_non_null(line);
    snprintf(rel, sizeof rel, "%.*s", (int)strcspn(line + 3, "\n"), line + 3);
    assert_int_equal(cgroup_of_pid(getpid(), self, sizeof self), 0);
    /* dir is self + "/test_spawn.PID"; the child's relative path ends so. */
    const char *tail = strrchr(dir, '/');
    assert_non_null(tail);
    assert_true(strlen(rel) >= strlen(tail));
    assert_string_equal(rel + strlen(rel) - strlen(tail), tail);
}

/* cat /proc/self/cgroup started in cg: its exit code, or -errno. */
static int run_in(const char *cg, char *out, size_t cap)
{
    char *argv[] = {"/bin/cat", "/proc/self/cgroup", NULL};
    struct spawn_opts o = {.argv = argv, .cgroup = cg};
    return run_opts(&o, out, cap);
}

/* clone3 with CLONE_INTO_CGROUP: the child is there from its first
 * instruction, and so is what it execs. */
static void test_child_is_born_in_its_cgroup(void **state)
{
    char dir[4200], out[4096];
    cgroup_make(dir, sizeof dir);
    int r = run_in(dir, out, sizeof out);
    rmdir(dir);
    assert_int_equal(r, 0);
    assert_printed_cgroup(out, dir);
}

/* Where clone3 is refused (seccomp answers ENOSYS here, as container
 * profiles do), the child writes itself into cgroup.procs before exec. */
static int fallback_main(const char *dir)
{
    char out[4096];
    if (seccomp_on(__NR_clone3, SECCOMP_RET_ERRNO | ENOSYS) < 0)
        return SECCOMP_SKIP;
    if (run_in(dir, out, sizeof out) != 0)
        return 1;
    fputs(out, stdout);
    return 0;
}

static void test_child_is_placed_where_clone3_is_refused(void **state)
{
    char dir[4200], self[4096], out[4096];
    cgroup_make(dir, sizeof dir);
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(n > 0);
    self[n] = '\0';
    char *argv[] = {self, "--cgroup-fallback", dir, NULL};
    int code = run(argv, NULL, NULL, out, sizeof out);
    rmdir(dir);
    if (code == SECCOMP_SKIP)
        skip();
    assert_int_equal(code, 0);
    assert_printed_cgroup(out, dir);
}

/* A child that joins by its own write (cgroup_late) and runs as nobody
 * writes cgroup.procs (root's, 0644) while it is still root: placement
 * comes before the credential step. */
static void test_child_joins_its_cgroup_before_dropping_root(void **state)
{
    if (geteuid() != 0)
        skip();
    char dir[4200], out[4096];
    cgroup_make(dir, sizeof dir);
    char *argv[] = {"/bin/sh", "-c", "id -u; cat /proc/self/cgroup", NULL};
    struct spawn_cred nobody = {.set_ids = true, .uid = 65534, .gid = 65534};
    struct spawn_opts o = {.argv = argv, .cgroup = dir, .cgroup_late = true, .cred = &nobody};
    int r = run_opts(&o, out, sizeof out);
    rmdir(dir);
    assert_int_equal(r, 0);
    assert_int_equal(strncmp(out, "65534\n", 6), 0);
    assert_printed_cgroup(out, dir);
}

/* A cgroup that is not there: the spawn fails with the reason, and no
 * child is left. */
static void test_missing_cgroup_fails_the_spawn(void **state)
{
    char out[64];
    assert_int_equal(run_in("/nonexistent/recoverd-cgroup", out, sizeof out), -ENOENT);
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

/* A child of a parent with many fds (its output on one of the highest)
 * writes to its output and holds none of the parent's close-on-exec fds
 * (it lists where its fds point), and the parent's stdio is as it was. */
static int many_fds_run(char *out, size_t cap)
{
    char *argv[] = {"/bin/sh", "-c", "echo hi; for f in /proc/$$/fd/*; do readlink $f; done; true",
                    NULL};
    struct spawn_opts o = {.argv = argv};
    return run_opts(&o, out, cap);
}

/* What many_fds_run printed: "hi", then no pipe of fds[0..n). */
static bool many_fds_clean(const char *out, const int *fds, int n)
{
    if (strncmp(out, "hi\n", 3) != 0)
        return false;
    for (int i = 0; i < n; i++) {
        struct stat st;
        char name[64];
        if (fstat(fds[i], &st) < 0)
            return false;
        snprintf(name, sizeof name, "pipe:[%lu]", (unsigned long)st.st_ino);
        if (strstr(out, name))
            return false;
    }
    return true;
}

#define MANY_FDS 400

static int many_fds_open(int *fds)
{
    for (int i = 0; i < MANY_FDS; i += 2)
        if (pipe2(fds + i, O_CLOEXEC) < 0)
            return -1;
    return 0;
}

static void test_child_of_many_fds_gets_its_output_and_nothing_else(void **state)
{
    int fds[MANY_FDS];
    struct stat before[3], after[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(fstat(i, &before[i]), 0);
    assert_int_equal(many_fds_open(fds), 0);
    char out[16384];
    for (int k = 0; k < 2; k++) {
        assert_int_equal(many_fds_run(out, sizeof out), 0);
        assert_true(many_fds_clean(out, fds, MANY_FDS));
    }
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fstat(i, &after[i]), 0);
        assert_int_equal(after[i].st_ino, before[i].st_ino);
        assert_int_equal(after[i].st_dev, before[i].st_dev);
    }
    for (int i = 0; i < MANY_FDS; i++)
        close(fds[i]);
}

/* ---- priority ---- */

/* Field k (1-based, as proc(5) numbers them; k >= 3) of a /proc stat line. */
static long stat_field(const char *line, int k)
{
    const char *p = strrchr(line, ')');
    assert_non_null(p);
    p += 2; /* field 3 */
    for (int i = 3; i < k; i++) {
        p = strchr(p, ' ');
        assert_non_null(p);
        p++;
    }
    return strtol(p, NULL, 10);
}

/* The spawner threads' nice values (field 19 of each task but ours). */
static int lowered_threads(int nice)
{
    DIR *d = opendir("/proc/self/task");
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[300], line[1024];
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
        if (proc_stat_line(path, line, sizeof line) && stat_field(line, 19) == nice)
            n++;
    }
    closedir(d);
    return n;
}

static void spawned(struct spawner_job *j)
{
    *(struct spawner_job **)j->data = NULL; /* reported: the job is freed next */
    assert_int_equal(j->result, 0);
    close(j->pidfd);
}

/* A spawner thread runs a yielding job (a first start) nicer than
 * recoverd, so the loop gets the CPU first; the service it starts runs at
 * recoverd's own priority and policy, as the kernel reports them to the
 * service itself. */
static void test_spawner_threads_yield_but_children_run_at_our_priority(void **state)
{
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, 0);
    assert_int_equal(errno, 0);
    int policy = sched_getscheduler(0);
    if (nice >= 19)
        skip(); /* started too nice to be lowered further */
    int lower = nice + SPAWNER_NICE > 19 ? 19 : nice + SPAWNER_NICE;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct spawner sw;
    assert_int_equal(spawner_init(&sw, &loop), 0);
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    char *argv[] = {"/bin/cat", "/proc/self/stat", NULL};
    struct spawn_opts o = {.argv = argv, .out_fd = p[1]};
    struct spawner_job *j = spawner_job_new(&o);
    assert_non_null(j);
    j->yield = true; /* as a first start's */
    struct spawner_job *pending = j;
    spawner_submit(&sw, j, spawned, &pending);
    spawner_wait(j);
    assert_null(pending);
    close(p[1]);
    char out[1024];
    size_t n = 0;
    ssize_t r;
    while (n + 1 < sizeof out && (r = read(p[0], out + n, sizeof out - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = '\0';
    close(p[0]);
    int lowered = lowered_threads(lower);
    spawner_close(&sw);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&loop), 0);
    if (lowered == 0 && geteuid() != 0)
        skip(); /* unprivileged: the threads stay as they are */
    assert_true(lowered >= 1);
    assert_int_equal(stat_field(out, 19), nice);
    assert_int_equal(stat_field(out, 41), policy);
    /* Only the spawner's threads changed. */
    assert_int_equal(getpriority(PRIO_PROCESS, 0), nice);
}

/* One job of the order test: reported yet, and its child. */
struct ordered {
    struct spawner_job *job; /* NULL once reported (the job is freed next) */
    pid_t pid;               /* its child, to reap */
};

static void ordered_done(struct spawner_job *j)
{
    struct ordered *o = j->data;
    assert_int_equal(j->result, 0);
    o->pid = j->pid;
    o->job = NULL;
    close(j->pidfd);
}

static void ordered_submit(struct spawner *sw, struct ordered *o, bool yield, const char *cg)
{
    char *argv[] = {"/bin/true", NULL};
    struct spawn_opts opts = {.argv = argv, .out_fd = -1, .cgroup = cg};
    o->job = spawner_job_new(&opts);
    assert_non_null(o->job);
    o->job->yield = yield;
    spawner_submit(sw, o->job, ordered_done, o);
}

/* First starts (yielding jobs) take SPAWNER_YIELDING threads at most: with
 * that many held up in their children's exec (born in a frozen cgroup),
 * the next first start waits, and a restart queued after it goes past. */
static void test_spawner_runs_few_yielding_jobs_and_restarts_pass_them(void **state)
{
    char dir[4096];
    cgroup_make(dir, sizeof dir);
    if (cgroup_write(dir, "cgroup.freeze", "1") < 0) {
        rmdir(dir);
        skip(); /* no freezer here */
    }
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct spawner sw;
    assert_int_equal(spawner_init(&sw, &loop), 0);
    struct ordered frozen[SPAWNER_YIELDING], first = {0}, restart = {0};
    spawner_hold(&sw, true); /* all queued before any thread picks */
    for (int i = 0; i < SPAWNER_YIELDING; i++)
        ordered_submit(&sw, &frozen[i], true, dir);
    ordered_submit(&sw, &first, true, NULL);
    ordered_submit(&sw, &restart, false, NULL);
    spawner_hold(&sw, false);
    loopwait_try(&loop, restart.job == NULL);
    bool restart_went = restart.job == NULL;
    /* Nothing can free a yielding slot while the cgroup is frozen. */
    if (restart_went)
        loopwait_idle(&loop, 100);
    bool first_waited = first.job != NULL, frozen_held = true;
    for (int i = 0; i < SPAWNER_YIELDING; i++)
        frozen_held &= frozen[i].job != NULL;
    /* Thawed before any assertion: a failure leaves no frozen child. */
    assert_int_equal(cgroup_write(dir, "cgroup.freeze", "0"), 0);
    loopwait_until(&loop, first.job == NULL && restart.job == NULL);
    for (int i = 0; i < SPAWNER_YIELDING; i++)
        loopwait_until(&loop, frozen[i].job == NULL);
    assert_true(restart_went);
    assert_true(first_waited);
    assert_true(frozen_held);
    spawner_close(&sw);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&loop), 0);
    for (int i = 0; i < SPAWNER_YIELDING; i++)
        assert_int_equal(waitpid(frozen[i].pid, NULL, 0), frozen[i].pid);
    assert_int_equal(waitpid(first.pid, NULL, 0), first.pid);
    assert_int_equal(waitpid(restart.pid, NULL, 0), restart.pid);
    assert_int_equal(rmdir(dir), 0);
}

/* One job of the cgroup tests: what its report said. */
struct made {
    bool reported;
    int result;
    struct cgroup_built built;
    pid_t pid;
};

static void made_done(struct spawner_job *j)
{
    struct made *m = j->data;
    m->reported = true;
    m->result = j->result;
    m->built = j->cgroup_built;
    m->pid = j->result == 0 ? j->pid : 0;
    if (j->result == 0)
        close(j->pidfd);
}

/* A job whose cgroup the spawner thread makes: NULL cgroup: a cat of
 * /proc/self/cgroup into out_fd. */
static void made_run(uv_loop_t *loop, struct spawner *sw, const char *cg, int out_fd,
                     struct made *m)
{
    char *argv[] = {"/bin/cat", "/proc/self/cgroup", NULL};
    struct spawn_opts o = {.argv = argv, .out_fd = out_fd, .cgroup = cg};
    struct spawner_job *j = spawner_job_new(&o);
    assert_non_null(j);
    j->yield = true; /* a first start's */
    j->cgroup_make = true;
    j->cgroup_spec = (struct cgroup_spec){.renew = true, .n_limits = 1};
    snprintf(j->cgroup_spec.limits[0].file, sizeof j->cgroup_spec.limits[0].file, "pids.max");
    snprintf(j->cgroup_spec.limits[0].value, sizeof j->cgroup_spec.limits[0].value, "64");
    *m = (struct made){0};
    spawner_submit(sw, j, made_done, m);
    loopwait_until(loop, m->reported);
}

/* The service's cgroup is made on the spawner's thread, not the loop's:
 * the job names a cgroup that is not there yet, and its child is born in
 * it; the report says it was made. A limit the host cannot take (no pids
 * controller in this v2 tree) is reported too, and the spawn goes on. */
static void test_spawner_makes_the_cgroup_before_the_spawn(void **state)
{
    char dir[4096], sub[4200], out[4096];
    cgroup_make(dir, sizeof dir);
    snprintf(sub, sizeof sub, "%s/made.service", dir);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct spawner sw;
    assert_int_equal(spawner_init(&sw, &loop), 0);
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    struct made m;
    made_run(&loop, &sw, sub, p[1], &m);
    close(p[1]);
    ssize_t n = read(p[0], out, sizeof out - 1);
    out[n > 0 ? n : 0] = '\0';
    close(p[0]);
    uint64_t pids_max = 0;
    int has_pids = cgroup_read_u64(sub, "pids.max", &pids_max);
    spawner_close(&sw);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&loop), 0);
    if (m.pid > 0)
        waitpid(m.pid, NULL, 0);
    rmdir(sub);
    rmdir(dir);
    assert_int_equal(m.result, 0);
    assert_int_equal(m.built.err, 0);
    assert_printed_cgroup(out, sub);
    if (has_pids == -ENOENT) { /* no pids controller here: refused, spawned anyway */
        assert_true(m.built.limit_err[0] < 0);
    } else {
        assert_int_equal(m.built.limit_err[0], 0);
        assert_int_equal(pids_max, 64);
    }
}

/* A cgroup that cannot be made (its parent's parent is not there): the
 * report carries cgroup_build's error as the job's result, and no child
 * was started. */
static void test_spawner_reports_a_cgroup_it_cannot_make(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct spawner sw;
    assert_int_equal(spawner_init(&sw, &loop), 0);
    struct made m;
    made_run(&loop, &sw, "/nonexistent/recoverd.t/made.service", -1, &m);
    spawner_close(&sw);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(m.built.err, -ENOENT);
    assert_int_equal(m.result, -ENOENT);
    assert_int_equal(m.pid, 0); /* no child */
}

/* Reports per loop turn, counted by a prepare hook (it runs once a turn,
 * before the poll). */
struct turns {
    unsigned now;   /* reports in this turn so far */
    unsigned max;   /* most in one turn */
    unsigned busy;  /* turns that had any */
    unsigned total; /* reports in all */
    pid_t pids[64]; /* the children, to reap */
};

static void turns_prepare_cb(uv_prepare_t *p)
{
    struct turns *t = p->data;
    if (t->now > t->max)
        t->max = t->now;
    t->busy += t->now > 0;
    t->now = 0;
}

static void turns_done(struct spawner_job *j)
{
    struct turns *t = j->data;
    assert_int_equal(j->result, 0);
    t->pids[t->total++] = j->pid;
    t->now++;
    close(j->pidfd);
}

/* Many spawns finished together (all of them before the loop looks) are
 * reported over several turns, SPAWNER_REPORTS_PER_TURN at most in each,
 * none lost. */
static void test_spawner_reports_a_bounded_slice_per_turn(void **state)
{
    enum { N = 3 * SPAWNER_REPORTS_PER_TURN + 1 };
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct spawner sw;
    assert_int_equal(spawner_init(&sw, &loop), 0);
    struct turns t = {0};
    uv_prepare_t prep;
    uv_prepare_init(&loop, &prep);
    prep.data = &t;
    uv_prepare_start(&prep, turns_prepare_cb);
    char *argv[] = {"/bin/true", NULL};
    struct spawn_opts o = {.argv = argv, .out_fd = -1};
    for (int i = 0; i < N; i++) {
        struct spawner_job *j = spawner_job_new(&o);
        assert_non_null(j);
        spawner_submit(&sw, j, turns_done, &t);
    }
    /* Every one finished, none reported yet. */
    pthread_mutex_lock(&sw.mu);
    for (;;) {
        unsigned n = 0;
        for (const struct spawner_job *j = sw.done_head; j; j = j->next)
            n++;
        if (n == N)
            break;
        pthread_cond_wait(&sw.finished, &sw.mu);
    }
    pthread_mutex_unlock(&sw.mu);
    loopwait_until(&loop, t.total == N);
    uv_run(&loop, UV_RUN_NOWAIT); /* the last turn's count */
    uv_close((uv_handle_t *)&prep, NULL);
    spawner_close(&sw);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&loop), 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(waitpid(t.pids[i], NULL, 0), t.pids[i]);
    assert_int_equal(t.total, N);
    assert_true(t.max <= SPAWNER_REPORTS_PER_TURN);
    assert_true(t.busy >= (N + SPAWNER_REPORTS_PER_TURN - 1) / SPAWNER_REPORTS_PER_TURN);
}

/* A thread may be lowered only where its children can come back to our
 * nice: by CAP_SYS_NICE, or by an RLIMIT_NICE of at least 20 - nice. */
static void test_yield_nice_needs_a_way_back_for_the_children(void **state)
{
    assert_int_equal(spawn_nice_yield(0, 10, 0, true), 10);
    assert_int_equal(spawn_nice_yield(0, 10, RLIM_INFINITY, false), 10);
    assert_int_equal(spawn_nice_yield(0, 10, 20, false), 10);
    assert_int_equal(spawn_nice_yield(0, 10, 19, false), 0);
    assert_int_equal(spawn_nice_yield(0, 10, 0, false), 0);
    assert_int_equal(spawn_nice_yield(5, 10, 15, false), 15);
    assert_int_equal(spawn_nice_yield(5, 10, 14, false), 5);
    assert_int_equal(spawn_nice_yield(-5, 10, 25, false), 5);
    assert_int_equal(spawn_nice_yield(-5, 10, 24, false), -5);
    assert_int_equal(spawn_nice_yield(15, 10, 0, true), 19); /* at most 19 */
    assert_int_equal(spawn_nice_yield(19, 10, 0, true), 19);
}

/* Set CAP_SYS_NICE in this thread's effective set on or off; false where
 * it is not permitted (unprivileged). */
static bool cap_sys_nice_effective(bool on)
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3] = {0};
    if (syscall(SYS_capget, &h, d) < 0)
        return false;
    struct __user_cap_data_struct *w = &d[CAP_TO_INDEX(CAP_SYS_NICE)];
    if (!(w->permitted & CAP_TO_MASK(CAP_SYS_NICE)))
        return false;
    if (on)
        w->effective |= CAP_TO_MASK(CAP_SYS_NICE);
    else
        w->effective &= ~CAP_TO_MASK(CAP_SYS_NICE);
    return syscall(SYS_capset, &h, d) == 0;
}

/* The spawner asks whether its threads may yield once, at init: made
 * while the process could not put a child back (no CAP_SYS_NICE in
 * effect, RLIMIT_NICE 0), the answer stands after both came back, and a
 * yielding job's thread (started after that) stays at our nice. */
static void test_spawner_decides_at_init_whether_its_threads_may_yield(void **state)
{
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, 0);
    assert_int_equal(errno, 0);
    if (nice >= 19)
        skip(); /* started too nice to be lowered further */
    int lower = nice + SPAWNER_NICE > 19 ? 19 : nice + SPAWNER_NICE;
    struct rlimit limit, none;
    assert_int_equal(getrlimit(RLIMIT_NICE, &limit), 0);
    none = limit;
    none.rlim_cur = 0;
    if (!cap_sys_nice_effective(false))
        skip(); /* unprivileged: nothing to take away and give back */
    assert_int_equal(setrlimit(RLIMIT_NICE, &none), 0);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct spawner sw;
    int init = spawner_init(&sw, &loop);
    assert_int_equal(setrlimit(RLIMIT_NICE, &limit), 0);
    assert_true(cap_sys_nice_effective(true));
    assert_int_equal(init, 0);
    assert_int_equal(sw.nice_yield, nice);
    char *argv[] = {"/bin/true", NULL};
    struct spawn_opts o = {.argv = argv, .out_fd = -1};
    struct spawner_job *j = spawner_job_new(&o);
    assert_non_null(j);
    j->yield = true;
    struct spawner_job *pending = j;
    spawner_submit(&sw, j, spawned, &pending);
    spawner_wait(j);
    assert_null(pending);
    int lowered = lowered_threads(lower);
    spawner_close(&sw);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&loop), 0);
    while (waitpid(-1, NULL, 0) > 0) /* /bin/true, and the cat before */
        ;
    assert_int_equal(lowered, 0);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--window") == 0)
        return window_main(argv[2]);
    if (argc == 3 && strcmp(argv[1], "--cgroup-fallback") == 0)
        return fallback_main(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_output_goes_to_out_fd_and_stdin_is_empty),
        cmocka_unit_test(test_bare_name_is_found_in_path),
        cmocka_unit_test(test_environment_and_cwd),
        cmocka_unit_test(test_env_add_goes_over_the_environment),
        cmocka_unit_test(test_session_and_signals_are_reset),
        cmocka_unit_test(test_child_resets_dispositions_before_it_unblocks),
        cmocka_unit_test(test_first_spawn_records_dispositions_without_init),
        cmocka_unit_test(test_child_gets_the_fd_limit_we_started_with),
        cmocka_unit_test(test_stdio_without_out_fd_and_no_fd_leak),
        cmocka_unit_test(test_exec_errors_are_reported),
        cmocka_unit_test(test_credentials_are_applied_before_exec),
        cmocka_unit_test(test_unresolved_credentials_refuse_to_spawn),
        cmocka_unit_test(test_credential_failures_are_reported),
        cmocka_unit_test(test_child_is_born_in_its_cgroup),
        cmocka_unit_test(test_child_is_placed_where_clone3_is_refused),
        cmocka_unit_test(test_child_joins_its_cgroup_before_dropping_root),
        cmocka_unit_test(test_missing_cgroup_fails_the_spawn),
        cmocka_unit_test(test_child_of_many_fds_gets_its_output_and_nothing_else),
        cmocka_unit_test(test_spawner_threads_yield_but_children_run_at_our_priority),
        cmocka_unit_test(test_spawner_runs_few_yielding_jobs_and_restarts_pass_them),
        cmocka_unit_test(test_spawner_makes_the_cgroup_before_the_spawn),
        cmocka_unit_test(test_spawner_reports_a_cgroup_it_cannot_make),
        cmocka_unit_test(test_spawner_reports_a_bounded_slice_per_turn),
        cmocka_unit_test(test_yield_nice_needs_a_way_back_for_the_children),
        cmocka_unit_test(test_spawner_decides_at_init_whether_its_threads_may_yield),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
