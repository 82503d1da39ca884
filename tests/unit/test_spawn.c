/* lib/spawn: real programs started the way services are, and what the
 * child finds at exec: its stdio, session, signal state, cwd, environment,
 * fds; exec errors reported by the call itself. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/spawn.h"
#include "loopwait.h"

/* Run argv with its output in a pipe; return its exit code and put what
 * it wrote (stdout and stderr) into out. */
static int run(char *const argv[], char *const envp[], const char *cwd, char *out, size_t cap)
{
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    struct spawn_opts o = {.argv = argv, .envp = envp, .cwd = cwd, .out_fd = p[1]};
    pid_t pid = 0;
    int pidfd = -1;
    assert_int_equal(spawn_start(&o, &pid, &pidfd), 0);
    close(p[1]);
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

/* Signal state at exec: nothing blocked, SIGPIPE (ignored by recoverd)
 * back to default, and the child leads its own session and group. */
/* The first line of a /proc/PID/stat file into buf; false if unreadable. */
static bool proc_stat_line(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    bool ok = f && fgets(buf, (int)len, f);
    if (f)
        fclose(f);
    return ok;
}

static void test_session_and_signals_are_reset(void **state)
{
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, &old);
    void (*prev)(int) = signal(SIGPIPE, SIG_IGN);
    char out[512];
    char *argv[] = {"/bin/sh", "-c",
                    "grep -E '^Sig(Blk|Ign)' /proc/$$/status; "
                    "echo sid=$(cut -d' ' -f6 /proc/$$/stat) pid=$$ pgrp=$(cut -d' ' -f5 /proc/$$/stat)",
                    NULL};
    assert_int_equal(run(argv, NULL, NULL, out, sizeof out), 0);
    signal(SIGPIPE, prev);
    sigprocmask(SIG_SETMASK, &old, NULL);

    unsigned long long blk = ~0ULL, ign = ~0ULL;
    char *b = strstr(out, "SigBlk:"), *i = strstr(out, "SigIgn:");
    assert_non_null(b);
    assert_non_null(i);
    blk = strtoull(b + 7, NULL, 16);
    ign = strtoull(i + 7, NULL, 16);
    assert_int_equal(blk, 0);
    assert_false(ign & (1ULL << (SIGPIPE - 1)));
    long sid = 0, pid = 0, pgrp = 0;
    char *ids = strstr(out, "sid=");
    assert_non_null(ids);
    assert_int_equal(sscanf(ids, "sid=%ld pid=%ld pgrp=%ld", &sid, &pid, &pgrp), 3);
    assert_int_equal(sid, pid);
    assert_int_equal(pgrp, pid);
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
        char path[128], target[128] = "";
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
static void assert_fails(char *const argv[], const char *cwd, int err)
{
    struct spawn_opts o = {.argv = argv, .cwd = cwd, .out_fd = -1};
    pid_t pid = -7;
    int pidfd = -7;
    assert_int_equal(spawn_start(&o, &pid, &pidfd), -err);
    assert_int_equal(pid, -7);
    assert_int_equal(pidfd, -7);
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_output_goes_to_out_fd_and_stdin_is_empty),
        cmocka_unit_test(test_bare_name_is_found_in_path),
        cmocka_unit_test(test_environment_and_cwd),
        cmocka_unit_test(test_session_and_signals_are_reset),
        cmocka_unit_test(test_stdio_without_out_fd_and_no_fd_leak),
        cmocka_unit_test(test_exec_errors_are_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
