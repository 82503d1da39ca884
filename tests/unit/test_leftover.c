/* recover/leftover: real processes left "by a predecessor" (started here,
 * then handed over as journal_children would), stopped from a running
 * loop. Run twice by ctest: as is (pidfd watches) and with --no-pidfd
 * (pidfd_open refused by seccomp, so /proc is watched). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "lib/procstat.h"
#include "lib/spawn.h"
#include "procfs.h"
#include "recover/leftover.h"
#include "seccomp.h"

#define DEADLINE_MS 10000 /* for anything a test waits for */
#define MAX_EVENTS 8

/* What the loop saw, in order. */
struct fx {
    uv_loop_t loop;
    uv_timer_t tick;  /* repeating: counts loop turns while the stop runs */
    uv_timer_t guard; /* ends a test whose done never comes */
    unsigned ticks;   /* tick callbacks so far */
    uint64_t t0;      /* loop time at leftover_stop_all, ms */
    int n_gone;
    struct {
        char service[16];        /* whose */
        enum leftover_fate fate; /* how it ended */
        unsigned ticks;          /* ticks before it */
        uint64_t after_ms;       /* loop time since t0 */
    } gone[MAX_EVENTS];
    bool done;                     /* done was called */
    struct leftover_counts counts; /* as done gave them */
    bool timed_out;                /* the guard fired */
};

static void tick_cb(uv_timer_t *t)
{
    struct fx *f = t->data;
    f->ticks++;
}

static void guard_cb(uv_timer_t *t)
{
    struct fx *f = t->data;
    f->timed_out = true;
    uv_stop(&f->loop);
}

static void gone_cb(void *ctx, const struct leftover *l, enum leftover_fate fate)
{
    struct fx *f = ctx;
    assert_false(f->done);
    assert_true(f->n_gone < MAX_EVENTS);
    snprintf(f->gone[f->n_gone].service, sizeof f->gone[0].service, "%s", l->service);
    f->gone[f->n_gone].fate = fate;
    f->gone[f->n_gone].ticks = f->ticks;
    f->gone[f->n_gone].after_ms = uv_now(&f->loop) - f->t0;
    f->n_gone++;
}

static void done_cb(void *ctx, const struct leftover_counts *c)
{
    struct fx *f = ctx;
    assert_false(f->done);
    f->done = true;
    f->counts = *c;
    uv_close((uv_handle_t *)&f->tick, NULL);
    uv_close((uv_handle_t *)&f->guard, NULL);
}

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    uv_timer_init(&f->loop, &f->tick);
    uv_timer_init(&f->loop, &f->guard);
    f->tick.data = f->guard.data = f;
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    free(f);
    return 0;
}

/* Stop v from a running loop; returns when done has come (or the guard). */
static void fx_stop_all(struct fx *f, const struct leftover *v, size_t n)
{
    struct leftover_sink sink = {.gone = gone_cb, .done = done_cb, .ctx = f};
    uv_update_time(&f->loop);
    uv_timer_start(&f->tick, tick_cb, 5, 5);
    uv_timer_start(&f->guard, guard_cb, DEADLINE_MS, 0);
    f->t0 = uv_now(&f->loop);
    assert_int_equal(leftover_stop_all(&f->loop, v, n, &sink), 0);
    assert_int_equal(f->n_gone, 0); /* nothing reported from inside the call */
    assert_false(f->done);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_false(f->timed_out);
    assert_true(f->done);
    /* done came last: the stop holds no handle any more. */
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

static int fx_find(const struct fx *f, const char *service)
{
    for (int i = 0; i < f->n_gone; i++)
        if (strcmp(f->gone[i].service, service) == 0)
            return i;
    fail_msg("%s never went", service);
    return -1;
}

/* A service process of a predecessor: sh -c script in its own group (as
 * spawn starts services). When the script prints a line first (it has set
 * its traps), that line is returned as a number in *line. */
static pid_t start(const char *script, long *line)
{
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    char *argv[] = {"/bin/sh", "-c", (char *)script, NULL};
    struct spawn_opts o = {.argv = argv, .out_fd = p[1]};
    pid_t pid;
    int pidfd;
    assert_int_equal(spawn_start(&o, &pid, &pidfd), 0);
    close(pidfd);
    close(p[1]);
    if (line) {
        char buf[64] = "";
        struct pollfd pf = {.fd = p[0], .events = POLLIN};
        assert_int_equal(poll(&pf, 1, DEADLINE_MS), 1);
        assert_true(read(p[0], buf, sizeof buf - 1) > 0);
        *line = strtol(buf, NULL, 10);
    }
    close(p[0]);
    return pid;
}

static int reap(pid_t pid)
{
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return st;
}

#define LEFTOVER(name, p, ticks, grace)                                                            \
    {                                                                                              \
        .service = (name), .pid = (p), .start_ticks = (ticks), .signal = SIGTERM,                  \
        .grace_ms = (grace)                                                                        \
    }

/* Five recorded services: two ignore SIGTERM (one with a second process
 * in its group), one stops on it, one pid is now another process, one is
 * gone. All are signalled at once: the one that stops goes before either
 * grace runs out, and each ignoring group is killed when its own grace
 * does, the shorter first, while the loop keeps turning. */
static void leftover_stops_all_at_once_and_kills_after_each_grace(void **state)
{
    struct fx *f = *state;
    long member = 0, unused = 0;
    pid_t slow = start("trap '' TERM; sleep 30 & echo $!; wait", &member);
    pid_t stubborn = start("trap '' TERM; echo 0; exec sleep 30", &unused);
    pid_t polite = start("exec sleep 30", NULL);
    pid_t other = start("exec sleep 30", NULL);
    pid_t gone = start("exec sleep 30", NULL);
    uint64_t gone_ticks = procstat_start_ticks(gone);
    kill(gone, SIGKILL);
    reap(gone);
    struct leftover v[] = {
        LEFTOVER("slow", slow, procstat_start_ticks(slow), 2000),
        LEFTOVER("stubborn", stubborn, procstat_start_ticks(stubborn), 1000),
        LEFTOVER("other", other, procstat_start_ticks(other) + 1, 1000),
        LEFTOVER("polite", polite, procstat_start_ticks(polite), 5000),
        LEFTOVER("gone", gone, gone_ticks, 1000),
    };
    fx_stop_all(f, v, sizeof v / sizeof v[0]);

    assert_int_equal(f->n_gone, 5);
    assert_int_equal(f->counts.n[LEFTOVER_STOPPED], 1);
    assert_int_equal(f->counts.n[LEFTOVER_KILLED], 2);
    assert_int_equal(f->counts.n[LEFTOVER_ABSENT], 2);
    assert_int_equal(f->counts.n[LEFTOVER_STUCK], 0);
    int p = fx_find(f, "polite"), s = fx_find(f, "stubborn"), w = fx_find(f, "slow");
    assert_int_equal(f->gone[p].fate, LEFTOVER_STOPPED);
    assert_int_equal(f->gone[s].fate, LEFTOVER_KILLED);
    assert_int_equal(f->gone[w].fate, LEFTOVER_KILLED);
    assert_int_equal(f->gone[fx_find(f, "other")].fate, LEFTOVER_ABSENT);
    assert_int_equal(f->gone[fx_find(f, "gone")].fate, LEFTOVER_ABSENT);
    /* Together, not one after the other: listed last, polite went first. */
    assert_true(p < s && s < w);
    assert_true(f->gone[s].after_ms >= 1000);
    assert_true(f->gone[w].after_ms >= 2000);
    assert_true(f->gone[s].ticks > 0); /* the loop turned during the grace */

    int st = reap(polite);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
    st = reap(stubborn);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    st = reap(slow);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    assert_true(procfs_dies((pid_t)member)); /* its group went with it */
    assert_true(procfs_alive(other));        /* never signalled */
    kill(other, SIGKILL);
    reap(other);
}

/* A group whose leader stops leaves nothing behind in its group. */
static void leftover_sweeps_the_group_of_a_leader_that_stopped(void **state)
{
    struct fx *f = *state;
    long member = 0;
    /* The member ignores TERM (and says so once it does); the leader, a
     * shell waiting for it, does not. */
    pid_t leader = start("sh -c 'trap \"\" TERM; echo $$; exec sleep 30' & wait", &member);
    struct leftover v[] = {LEFTOVER("svc", leader, procstat_start_ticks(leader), 5000)};
    fx_stop_all(f, v, 1);
    assert_int_equal(f->counts.n[LEFTOVER_STOPPED], 1);
    int st = reap(leader);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
    assert_true(procfs_dies((pid_t)member));
}

/* Nothing to stop: done still comes from the loop, and the loop ends. */
static void leftover_with_no_entries_reports_from_the_loop(void **state)
{
    struct fx *f = *state;
    fx_stop_all(f, NULL, 0);
    assert_int_equal(f->n_gone, 0);
    for (int i = 0; i < LEFTOVER_FATES; i++)
        assert_int_equal(f->counts.n[i], 0);
}

static void leftover_fates_have_names(void **state)
{
    assert_string_equal(leftover_fate_name(LEFTOVER_ABSENT), "absent");
    assert_string_equal(leftover_fate_name(LEFTOVER_STUCK), "stuck");
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--no-pidfd") == 0 &&
        seccomp_on(__NR_pidfd_open, SECCOMP_RET_ERRNO | ENOSYS) < 0)
        return SECCOMP_SKIP;
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(leftover_stops_all_at_once_and_kills_after_each_grace),
        T(leftover_sweeps_the_group_of_a_leader_that_stopped),
        T(leftover_with_no_entries_reports_from_the_loop),
        cmocka_unit_test(leftover_fates_have_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
