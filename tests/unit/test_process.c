/* Unit tests of process identity (/proc start ticks) and of the cleanup of
 * processes a killed recoverd left behind. Spawn and stop are covered by the
 * end-to-end tests (they need a whole daemon). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "recover/process.h"

/* Children end themselves (SIGALRM) even if the code under test fails to
 * kill them, so a failing test never leaves processes behind. */
#define CHILD_LIFE_S 10

/* Every child this process forked, so the teardown can kill what a failed
 * assertion left behind (a stopped child ignores SIGALRM until continued). */
static pid_t forked[16];
static int n_forked;

static pid_t fork_tracked(void)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid > 0 && n_forked < (int)(sizeof forked / sizeof *forked))
        forked[n_forked++] = pid;
    return pid;
}

/* Kill and reap the children still unreaped (an unreaped pid cannot have
 * been reused, so this never hits a stranger). */
static int children_teardown(void **state)
{
    (void)state;
    int st;
    for (int i = 0; i < n_forked; i++)
        if (waitpid(forked[i], &st, WNOHANG) == 0) {
            kill(forked[i], SIGKILL);
            waitpid(forked[i], &st, 0);
        }
    n_forked = 0;
    return 0;
}

/* Field 22 of /proc/pid/stat, parsed independently of process.c: split the
 * fields after the last ')' on spaces. 0 when absent. */
static uint64_t stat_field22(pid_t pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    assert_non_null(p);
    int field = 2; /* ')' closes field 2 (comm) */
    char *save = NULL;
    for (char *tok = strtok_r(p + 1, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
        if (++field == 22)
            return strtoull(tok, NULL, 10);
    return 0;
}

/* One byte through a pipe: the child reached its pause(). */
static void wait_ready(int fd)
{
    char c;
    assert_int_equal(read(fd, &c, 1), 1);
}

static void child_ready(int fd)
{
    char c = 'r';
    if (write(fd, &c, 1) != 1)
        _exit(99);
}

/* What the grandchild of fork_leader() does. */
enum grandchild {
    GC_NONE,    /* no grandchild */
    GC_PLAIN,   /* default SIGTERM action */
    GC_IGNORES, /* ignores SIGTERM */
};

/* A child in its own session (like a supervised service), optionally
 * ignoring SIGTERM, optionally with a grandchild in its group. The
 * grandchild's pid (or 0) is read from the pipe before returning. */
static pid_t fork_leader(bool ignore_term, enum grandchild gc, pid_t *grandchild)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork_tracked();
    if (pid == 0) {
        close(fds[0]);
        if (setsid() < 0)
            _exit(98);
        alarm(CHILD_LIFE_S);
        pid_t g = 0;
        int gp[2];
        if (pipe(gp) < 0)
            _exit(97);
        if (gc != GC_NONE && (g = fork()) == 0) {
            alarm(CHILD_LIFE_S);
            if (gc == GC_IGNORES)
                signal(SIGTERM, SIG_IGN);
            child_ready(gp[1]);
            for (;;)
                pause();
        }
        if (g > 0)
            wait_ready(gp[0]); /* its disposition is in place */
        if (ignore_term)
            signal(SIGTERM, SIG_IGN);
        if (write(fds[1], &g, sizeof g) != sizeof g)
            _exit(99);
        for (;;)
            pause();
    }
    close(fds[1]);
    pid_t g = -1;
    assert_int_equal(read(fds[0], &g, sizeof g), sizeof g);
    close(fds[0]);
    if (grandchild)
        *grandchild = g;
    if (g > 0 && n_forked < (int)(sizeof forked / sizeof *forked))
        forked[n_forked++] = g; /* ours once its parent is gone (subreaper) */
    return pid;
}

/* Reap pid (our child or, as subreaper, an orphan); return its wait status. */
static int reap(pid_t pid)
{
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

static void process_start_ticks_of_self_is_stable(void **state)
{
    (void)state;
    uint64_t a = process_start_ticks(getpid());
    assert_true(a > 0);
    assert_int_equal(a, stat_field22(getpid()));
    usleep(20000);
    assert_int_equal(process_start_ticks(getpid()), a);
}

static void process_start_ticks_of_missing_pid_is_zero(void **state)
{
    (void)state;
    pid_t pid = fork_tracked();
    if (pid == 0)
        _exit(0);
    reap(pid);
    assert_int_equal(process_start_ticks(pid), 0);
    assert_int_equal(process_start_ticks(0x3fffffff), 0); /* above any pid_max */
}

static void process_start_ticks_of_zombie_is_zero(void **state)
{
    (void)state;
    pid_t pid = fork_tracked();
    if (pid == 0)
        _exit(0);
    siginfo_t si;
    /* Wait for the exit but leave the zombie in place. */
    assert_int_equal(waitid(P_PID, pid, &si, WEXITED | WNOWAIT), 0);
    assert_int_equal(si.si_pid, pid);
    assert_int_equal(process_start_ticks(pid), 0);
    reap(pid);
}

/* comm may hold ") " and spaces: the fields are counted after the last ')'. */
static void process_start_ticks_survives_parens_in_name(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork_tracked();
    if (pid == 0) {
        close(fds[0]);
        alarm(CHILD_LIFE_S);
        prctl(PR_SET_NAME, "x) 1 2 (y) z", 0, 0, 0);
        child_ready(fds[1]);
        for (;;)
            pause();
    }
    close(fds[1]);
    wait_ready(fds[0]);
    close(fds[0]);
    uint64_t t = process_start_ticks(pid);
    assert_true(t > 0);
    assert_int_equal(t, stat_field22(pid));
    assert_true(t >= process_start_ticks(getpid())); /* started after us */
    kill(pid, SIGKILL);
    reap(pid);
}

static void process_reap_leftover_kills_the_group(void **state)
{
    (void)state;
    pid_t g = 0;
    pid_t pid = fork_leader(false, GC_PLAIN, &g);
    assert_true(g > 0);
    uint64_t ticks = process_start_ticks(pid);
    assert_true(ticks > 0);
    uint64_t t0 = clock_mono_us();
    assert_int_equal(process_reap_leftover(pid, ticks, 500), 1);
    uint64_t elapsed_ms = (clock_mono_us() - t0) / 1000;
    int st = reap(pid);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGTERM);
    /* The leader died at once: no need to wait out the grace period. */
    assert_true(elapsed_ms < 400);
    /* The grandchild was in the group and got the same SIGTERM; as
     * subreaper we collect it. */
    st = reap(g);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGTERM);
}

/* The leader goes at SIGTERM; a group member ignoring it is SIGKILLed. */
static void process_reap_leftover_kills_what_is_left_of_the_group(void **state)
{
    (void)state;
    pid_t g = 0;
    pid_t pid = fork_leader(false, GC_IGNORES, &g);
    uint64_t ticks = process_start_ticks(pid);
    uint64_t t0 = clock_mono_us();
    assert_int_equal(process_reap_leftover(pid, ticks, 2000), 1);
    uint64_t elapsed_ms = (clock_mono_us() - t0) / 1000;
    int st = reap(pid);
    assert_int_equal(WTERMSIG(st), SIGTERM);
    st = reap(g);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGKILL);
    assert_true(elapsed_ms < 1000); /* the leader's exit ended the wait */
}

/* Ticks 0 (unknown start time) never match: a dead leader's group is left
 * alone, since its pid may have been reused as a group id. */
static void process_reap_leftover_with_zero_ticks_does_nothing(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork_tracked();
    if (pid == 0) {
        close(fds[0]);
        setsid();
        pid_t g = fork();
        if (g == 0) {
            alarm(CHILD_LIFE_S);
            for (;;)
                pause();
        }
        if (write(fds[1], &g, sizeof g) != sizeof g)
            _exit(99);
        _exit(0); /* the leader is gone, its group lives on */
    }
    close(fds[1]);
    pid_t g = -1;
    assert_int_equal(read(fds[0], &g, sizeof g), sizeof g);
    close(fds[0]);
    siginfo_t si;
    assert_int_equal(waitid(P_PID, pid, &si, WEXITED | WNOWAIT), 0); /* zombie */
    assert_int_equal(process_reap_leftover(pid, 0, 100), 0);
    usleep(50000);
    int st = 0;
    assert_int_equal(kill(g, 0), 0);
    assert_int_equal(waitpid(g, &st, WNOHANG), 0);
    kill(g, SIGKILL);
    reap(pid);
    reap(g);
}

static void process_reap_leftover_with_wrong_ticks_leaves_it_alone(void **state)
{
    (void)state;
    pid_t pid = fork_leader(false, GC_NONE, NULL);
    uint64_t ticks = process_start_ticks(pid);
    assert_true(ticks > 0);
    assert_int_equal(process_reap_leftover(pid, ticks + 1, 100), 0);
    assert_int_equal(process_reap_leftover(pid, 0, 100), 0);
    usleep(50000);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, WNOHANG), 0); /* still running */
    assert_int_equal(kill(pid, 0), 0);
    kill(pid, SIGKILL);
    st = reap(pid);
    assert_int_equal(WTERMSIG(st), SIGKILL);
}

static void process_reap_leftover_kills_after_grace_when_term_ignored(void **state)
{
    (void)state;
    const uint64_t grace_ms = 300;
    pid_t pid = fork_leader(true, GC_NONE, NULL); /* SIG_IGN is set before it reports */
    uint64_t ticks = process_start_ticks(pid);
    uint64_t t0 = clock_mono_us();
    assert_int_equal(process_reap_leftover(pid, ticks, grace_ms), 1);
    uint64_t elapsed_ms = (clock_mono_us() - t0) / 1000;
    int st = reap(pid);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGKILL);
    assert_true(elapsed_ms >= grace_ms - 10);
    assert_true(elapsed_ms < grace_ms + 300);
}

/* A stopped leftover is woken so SIGTERM acts at once. */
static void process_reap_leftover_wakes_a_stopped_group(void **state)
{
    (void)state;
    pid_t pid = fork_leader(false, GC_NONE, NULL);
    uint64_t ticks = process_start_ticks(pid);
    int st = 0;
    kill(pid, SIGSTOP);
    assert_int_equal(waitpid(pid, &st, WUNTRACED), pid);
    assert_true(WIFSTOPPED(st));
    uint64_t t0 = clock_mono_us();
    assert_int_equal(process_reap_leftover(pid, ticks, 2000), 1);
    uint64_t elapsed_ms = (clock_mono_us() - t0) / 1000;
    st = reap(pid);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGTERM);
    assert_true(elapsed_ms < 1000);
}

int main(void)
{
    /* Orphaned grandchildren come back to us, so the test can reap them. */
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
#define T(t) cmocka_unit_test_teardown(t, children_teardown)
    const struct CMUnitTest tests[] = {
        T(process_start_ticks_of_self_is_stable),
        T(process_start_ticks_of_missing_pid_is_zero),
        T(process_start_ticks_of_zombie_is_zero),
        T(process_start_ticks_survives_parens_in_name),
        T(process_reap_leftover_kills_the_group),
        T(process_reap_leftover_kills_what_is_left_of_the_group),
        T(process_reap_leftover_with_zero_ticks_does_nothing),
        T(process_reap_leftover_with_wrong_ticks_leaves_it_alone),
        T(process_reap_leftover_kills_after_grace_when_term_ignored),
        T(process_reap_leftover_wakes_a_stopped_group),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
