/* Unit tests of process supervision (recover/supervisor.c): real processes
 * spawned, watched, stopped and killed through the state x event table,
 * with a recording sink, a real journal and output log in a temporary
 * directory, and the test's own loop, which must end empty. Also process
 * identity (/proc start ticks). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "daemon/daemon.h"
#include "daemon/service-t.h"
#include "lib/cgroup.h"
#include "lib/clock.h"
#include "lib/procstat.h"
#include "lib/spawner.h"
#include "loopwait.h"
#include "recover/containment.h"
#include "recover/pace.h"
#include "recover/supervisor.h"
#include "store/journal.h"

/* Children the test forks end themselves even if a test fails to. */
#define CHILD_LIFE_S 20

struct fixture {
    char dir[64];                 /* mkdtemp directory, also the service's cwd */
    char log[128];                /* dir/svc.log */
    char fifo[128];               /* dir/svc.pipe */
    char jpath[128];              /* dir/journal.db */
    char pidfile[128];            /* dir/svc.pid */
    char script[512];             /* sh -c's argument */
    char *argv[4];                /* the command */
    uv_loop_t loop;               /* the test's own */
    struct journal *journal;      /* real */
    struct service_cfg cfg;       /* command or pidfile, stop, cwd */
    struct supervisor sp;         /* under test */
    int exits;                    /* sink.exited calls */
    struct sup_exit exit;         /* the last one */
    enum sup_state state_at_exit; /* sp.state when the sink heard it */
    int closed;                   /* sink.closed calls */
    int launched;                 /* sink.launched calls */
    int launch_err;               /* the last one's */
    int exits_at_launch;          /* exits when it came */
    pid_t forked[8];              /* processes the test forked itself */
    int n_forked;
    struct containment box; /* the containment of the *_cgroup/_subreaper fixtures */
    bool box_up;            /* box was set up and sp uses it */
    char *envp[3];          /* the mark and PATH, for a contained service */
};

static void sink_exited(void *ctx, const struct sup_exit *e)
{
    struct fixture *fx = ctx;
    fx->exits++;
    fx->exit = *e;
    fx->state_at_exit = fx->sp.state;
}

static void sink_launched(void *ctx, int err)
{
    struct fixture *fx = ctx;
    fx->launched++;
    fx->launch_err = err;
    fx->exits_at_launch = fx->exits;
}

static void sink_closed(void *ctx)
{
    struct fixture *fx = ctx;
    fx->closed++;
}

/* The fixture, with sp in a containment of mode (0: none). A containment
 * the host cannot give leaves box_up false: the test skips. */
static int fixture_setup_mode(void **state, enum containment_mode mode)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    char err[256] = "";
    assert_non_null(fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/test_supervisor.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->log, sizeof fx->log, "%s/svc.log", fx->dir);
    snprintf(fx->fifo, sizeof fx->fifo, "%s/svc.pipe", fx->dir);
    snprintf(fx->jpath, sizeof fx->jpath, "%s/journal.db", fx->dir);
    snprintf(fx->pidfile, sizeof fx->pidfile, "%s/svc.pid", fx->dir);
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    fx->journal = journal_open(fx->jpath, err, sizeof err);
    if (!fx->journal)
        fail_msg("journal_open: %s", err);
    fx->cfg.name = "svc";
    fx->cfg.cwd = fx->dir;
    fx->cfg.stop = (struct stop_cfg){.signal = SIGTERM, .grace_ms = 5000};
    fx->cfg.log_max_bytes = 1 << 20;
    fx->sp.loop = &fx->loop;
    fx->sp.service = "svc";
    fx->sp.cfg = &fx->cfg;
    fx->sp.journal = fx->journal;
    fx->sp.sink = (struct sup_sink){sink_exited, sink_launched, sink_closed, fx};
    if (mode != CONTAINMENT_AUTO) {
        char why[512];
        fx->box_up = containment_init(&fx->box, &fx->loop, mode, fx->dir, why, sizeof why) == 0;
        fx->sp.box = fx->box_up ? &fx->box : NULL;
        /* Supervised from the start: only what recoverd runs is contained
         * (the tests set their own command later, in the same argv). */
        fx->argv[0] = "true";
        fx->cfg.command = fx->argv;
    }
    assert_int_equal(supervisor_init(&fx->sp, fx->log, fx->fifo), 0);
    assert_int_equal(fx->sp.state, SUP_DOWN);
    assert_int_equal(fx->sp.handles_open, 2); /* output and grace timer */
    if (fx->box_up) {
        /* The service's environment carries its mark, as service.c makes it. */
        fx->envp[0] = fx->sp.encl.mark;
        fx->envp[1] = "PATH=/usr/bin:/bin";
        fx->sp.envp = fx->envp;
    }
    *state = fx;
    return 0;
}

static int fixture_setup(void **state)
{
    return fixture_setup_mode(state, CONTAINMENT_AUTO);
}

static int fixture_setup_cgroup(void **state)
{
    return fixture_setup_mode(state, CONTAINMENT_CGROUP);
}

static int fixture_setup_subreaper(void **state)
{
    return fixture_setup_mode(state, CONTAINMENT_SUBREAPER);
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static bool is_down(struct fixture *fx)
{
    return fx->sp.state == SUP_DOWN;
}

/* Whatever a test left running goes (SIGKILL to its group, the exit seen
 * through the loop), then every handle closes and the loop ends empty. */
static int fixture_teardown(void **state)
{
    struct fixture *fx = *state;
    if (fx->sp.state != SUP_DOWN) {
        if (!fx->cfg.command)
            supervisor_event(&fx->sp, SUP_EV_RELEASE, STOP_NONE);
        else if (fx->sp.pid > 0) /* never kill(-0): that is the test's own group */
            kill(-fx->sp.pid, SIGKILL);
        loopwait_try(&fx->loop, is_down(fx));
    }
    /* Draining: SIGKILL what is left, and then give up waiting for it. */
    for (int i = 0; i < 2 && fx->sp.state == SUP_DRAINING; i++)
        supervisor_event(&fx->sp, SUP_EV_GRACE, STOP_NONE);
    bool was_down = fx->sp.state == SUP_DOWN;
    for (int i = 0; i < fx->n_forked; i++) {
        kill(fx->forked[i], SIGKILL);
        waitpid(fx->forked[i], NULL, 0);
    }
    supervisor_close(&fx->sp);
    if (fx->box_up)
        containment_close(&fx->box);
    int r = uv_run(&fx->loop, UV_RUN_DEFAULT);
    int handles = fx->sp.handles_open;
    int closed = uv_loop_close(&fx->loop);
    journal_free(fx->journal);
    if (fx->sp.envp != fx->envp)
        free(fx->sp.envp);
    nftw(fx->dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
    free(fx);
    assert_true(was_down);
    assert_int_equal(r, 0);
    assert_int_equal(handles, 0);
    assert_int_equal(closed, 0);
    return 0;
}

/* ---- helpers ---- */

static void command_sh(struct fixture *fx, const char *script)
{
    snprintf(fx->script, sizeof fx->script, "%s", script);
    fx->argv[0] = "/bin/sh";
    fx->argv[1] = "-c";
    fx->argv[2] = fx->script;
    fx->argv[3] = NULL;
    fx->cfg.command = fx->argv;
}

static void command_sleep(struct fixture *fx)
{
    fx->argv[0] = "sleep"; /* looked up in PATH */
    fx->argv[1] = "100";
    fx->argv[2] = NULL;
    fx->cfg.command = fx->argv;
}

static bool exited(struct fixture *fx)
{
    return fx->exits > 0;
}

static void spawn_ok(struct fixture *fx)
{
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_SPAWN, STOP_NONE), 0);
    assert_int_equal(fx->sp.state, SUP_RUNNING);
    assert_true(fx->sp.pid > 1);
    assert_int_equal(fx->sp.result, 0);
}

/* Wait (without the loop) until dir/name exists. */
static void wait_file(struct fixture *fx, const char *name)
{
    char path[192];
    snprintf(path, sizeof path, "%s/%s", fx->dir, name);
    poll_until(access(path, F_OK) == 0);
}

/* The state letter of /proc/pid/stat ('R', 'S', 'T', 'Z'...), 0 if none. */
static char proc_state(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' ? p[2] : 0;
}

struct child_row {
    int n;
    pid_t pid;
    uint64_t ticks;
};

static void child_cb(const struct journal_child *c, void *arg)
{
    struct child_row *row = arg;
    if (strcmp(c->service, "svc") == 0) {
        row->n++;
        row->pid = c->pid;
        row->ticks = c->start_ticks;
    }
}

static struct child_row child_row(struct fixture *fx)
{
    struct child_row row = {0};
    assert_int_equal(journal_children(fx->journal, child_cb, &row), 0);
    return row;
}

/* A process of the test's own (fork), for external services: pauses until
 * killed, or exits at once when `exit_now`. */
static pid_t fork_child(struct fixture *fx, bool exit_now)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (exit_now)
            _exit(0);
        alarm(CHILD_LIFE_S);
        for (;;)
            pause();
    }
    fx->forked[fx->n_forked++] = pid;
    return pid;
}

static void write_pidfile(struct fixture *fx, const char *text)
{
    FILE *f = fopen(fx->pidfile, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void write_pid(struct fixture *fx, pid_t pid)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%d\n", (int)pid);
    write_pidfile(fx, buf);
}

static void count_cb(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        ++*(int *)arg;
}

/* Loop handles not closing. */
static int loop_handles(struct fixture *fx)
{
    int n = 0;
    uv_walk(&fx->loop, count_cb, &n);
    return n;
}

/* ---- names ---- */

static void sup_names_spell_states_and_events(void **state)
{
    (void)state;
    static const char *const states[] = {"down", "running", "stopping", "draining", "spawning"};
    static const char *const events[] = {"spawn",  "watch",         "adopt", "stop",   "release",
                                         "exited", "grace-expired", "empty", "launch", "spawned"};
    for (int s = 0; s < SUP__COUNT; s++)
        assert_string_equal(sup_state_name((enum sup_state)s), states[s]);
    for (int e = 0; e < SUP_EV__COUNT; e++)
        assert_string_equal(sup_event_name((enum sup_event)e), events[e]);
    assert_string_equal(sup_state_name(SUP__COUNT), "unknown");
    assert_string_equal(sup_event_name(SUP_EV__COUNT), "unknown");
    assert_string_equal(sup_event_name((enum sup_event) - 1), "unknown");
}

/* ---- DOWN ---- */

/* DOWN + spawn: the command runs; its exit code reaches the sink, down. */
static void down_spawn_runs_the_command_and_its_exit_code_is_reported(void **state)
{
    struct fixture *fx = *state;
    command_sh(fx, "exit 3");
    uint64_t t0 = clock_mono_us();
    spawn_ok(fx);
    pid_t pid = fx->sp.pid;
    assert_int_equal(fx->sp.handles_open, 3); /* + the exit watch */
    assert_non_null(fx->sp.exit_watch);
    assert_true(fx->sp.spawned_us >= t0);
    assert_true(fx->sp.spawned_ms > 0);
    assert_false(fx->sp.has_exit);
    struct child_row row = child_row(fx);
    assert_int_equal(row.n, 1);
    assert_int_equal(row.pid, pid);
    loopwait_until(&fx->loop, exited(fx));
    assert_int_equal(fx->exits, 1);
    assert_int_equal(fx->exit.pid, pid);
    assert_int_equal(fx->exit.code, 3);
    assert_int_equal(fx->exit.signal, 0);
    assert_int_equal(fx->exit.why, STOP_NONE);
    assert_true(fx->exit.uptime_ms <= (clock_mono_us() - t0) / 1000);
    assert_int_equal(fx->state_at_exit, SUP_DOWN); /* down before the sink hears it */
    assert_int_equal(fx->sp.state, SUP_DOWN);
    assert_int_equal(fx->sp.pid, 0);
    assert_null(fx->sp.exit_watch);
    assert_true(fx->sp.has_exit);
    assert_int_equal(fx->sp.last.code, 3);
    assert_true(fx->sp.last_exit_ms > 0);
    assert_int_equal(child_row(fx).n, 0); /* the journal forgets it */
    /* Reaped: the pid is no child of ours any more. */
    assert_int_equal(waitpid(pid, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
    uv_run(&fx->loop, UV_RUN_NOWAIT); /* the watch's close callback */
    assert_int_equal(fx->sp.handles_open, 2);
}

/* Killed from outside: the signal reaches the sink; a new spawn works. */
static void killed_process_reports_the_signal_and_spawns_again(void **state)
{
    struct fixture *fx = *state;
    command_sleep(fx);
    spawn_ok(fx);
    pid_t first = fx->sp.pid;
    kill(first, SIGKILL);
    loopwait_until(&fx->loop, exited(fx));
    assert_int_equal(fx->exit.signal, SIGKILL);
    assert_int_equal(fx->exit.code, 0);
    assert_int_equal(fx->exit.why, STOP_NONE);
    assert_int_equal(fx->sp.state, SUP_DOWN);
    spawn_ok(fx);
    assert_int_not_equal(fx->sp.pid, first);
    assert_int_equal(child_row(fx).pid, fx->sp.pid);
}

/* DOWN + spawn of a missing binary: -errno, still down, nothing opened. */
static void down_spawn_failure_returns_errno_and_stays_down(void **state)
{
    struct fixture *fx = *state;
    int handles = loop_handles(fx);
    fx->argv[0] = "/nonexistent/recoverd-test-binary";
    fx->argv[1] = NULL;
    fx->cfg.command = fx->argv;
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_SPAWN, STOP_NONE), -ENOENT);
    assert_int_equal(fx->sp.state, SUP_DOWN);
    assert_int_equal(fx->sp.result, -ENOENT);
    assert_int_equal(fx->sp.pid, 0);
    assert_null(fx->sp.exit_watch);
    assert_int_equal(fx->sp.handles_open, 2);
    assert_int_equal(child_row(fx).n, 0);
    /* Not in PATH either. */
    fx->argv[0] = "recoverd-test-no-such-program";
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_SPAWN, STOP_NONE), -ENOENT);
    /* A file that is not executable. */
    char path[192];
    snprintf(path, sizeof path, "%s/not-executable", fx->dir);
    int fd = open(path, O_CREAT | O_WRONLY, 0644);
    assert_true(fd >= 0);
    close(fd);
    fx->argv[0] = path;
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_SPAWN, STOP_NONE), -EACCES);
    assert_int_equal(fx->sp.state, SUP_DOWN);
    assert_int_equal(fx->exits, 0);
    /* Nothing new in the loop. */
    assert_int_equal(loop_handles(fx), handles);
}

/* DOWN + spawn without a command (watched or external service). */
static void down_spawn_without_command_is_enoexec(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_SPAWN, STOP_NONE), -ENOEXEC);
    assert_int_equal(fx->sp.state, SUP_DOWN);
    assert_int_equal(fx->sp.result, -ENOEXEC);
}

/* DOWN + stop, release, exited, grace: nothing happens. */
static void down_ignores_stop_release_exited_and_grace(void **state)
{
    struct fixture *fx = *state;
    command_sleep(fx);
    static const enum sup_event evs[] = {SUP_EV_STOP, SUP_EV_RELEASE, SUP_EV_EXITED, SUP_EV_GRACE};
    for (size_t i = 0; i < sizeof evs / sizeof *evs; i++) {
        assert_int_equal(supervisor_event(&fx->sp, evs[i], STOP_SHUTDOWN), 0);
        assert_int_equal(fx->sp.state, SUP_DOWN);
    }
    assert_int_equal(fx->exits, 0);
    assert_int_equal(fx->sp.stop_reason, STOP_NONE);
    assert_false(uv_is_active((uv_handle_t *)&fx->sp.grace));
    assert_int_equal(fx->sp.result, 0); /* only spawn and watch set it */
}

static void unknown_event_is_einval(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV__COUNT, STOP_NONE), -EINVAL);
    assert_int_equal(supervisor_event(&fx->sp, (enum sup_event) - 1, STOP_NONE), -EINVAL);
    assert_int_equal(fx->sp.state, SUP_DOWN);
}

/* DOWN + watch: an external service's pid from its pidfile. */
static void down_watch_refuses_what_is_not_a_live_pid(void **state)
{
    struct fixture *fx = *state;
    int handles = loop_handles(fx);
    /* No pidfile configured. */
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_WATCH, STOP_NONE), -ENOENT);
    fx->cfg.pidfile = fx->pidfile;
    /* Configured, absent. */
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_WATCH, STOP_NONE), -ENOENT);
    assert_int_equal(fx->sp.result, -ENOENT);
    static const char *const bad[] = {"", "abc\n", "12x\n", "1\n", "0", "-5\n", "99999999999\n"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        write_pidfile(fx, bad[i]);
        int r = supervisor_event(&fx->sp, SUP_EV_WATCH, STOP_NONE);
        if (r != -EINVAL)
            fail_msg("pidfile \"%s\": %d, expected -EINVAL", bad[i], r);
    }
    /* A zombie nobody reaped is no live process. */
    pid_t z = fork_child(fx, true);
    siginfo_t si;
    assert_int_equal(waitid(P_PID, (id_t)z, &si, WEXITED | WNOWAIT), 0);
    write_pid(fx, z);
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_WATCH, STOP_NONE), -ESRCH);
    /* Nor a pid that is gone. */
    waitpid(z, NULL, 0);
    fx->n_forked = 0;
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_WATCH, STOP_NONE), -ESRCH);
    assert_int_equal(fx->sp.state, SUP_DOWN);
    assert_int_equal(fx->sp.handles_open, 2);
    assert_int_equal(loop_handles(fx), handles);
}

/* DOWN + adopt: a process a previous recoverd started and left running
 * (here one of the test's, in a session of its own like a service). It is
 * taken only when its start time is the recorded one; the record is
 * rewritten with the running configuration's fingerprint; its death comes
 * through the pidfd without a status (it is not recoverd's child). */
static void down_adopt_takes_over_a_recorded_process(void **state)
{
    struct fixture *fx = *state;
    command_sleep(fx);
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(60);
        if (setsid() < 0 || write(ready[1], "x", 1) != 1)
            _exit(99);
        for (;;)
            pause();
    }
    fx->forked[fx->n_forked++] = pid;
    char c;
    close(ready[1]);
    assert_int_equal(read(ready[0], &c, 1), 1);
    close(ready[0]);
    uint64_t ticks = procstat_start_ticks(pid);
    assert_true(ticks > 0);
    /* Another process's start time: not that one (a reused pid). */
    assert_int_equal(supervisor_adopt(&fx->sp, pid, ticks + 1), -ESRCH);
    assert_int_equal(fx->sp.state, SUP_DOWN);
    assert_int_equal(supervisor_adopt(&fx->sp, 0, 0), -EINVAL);
    loopwait_nap(20); /* an age to see */
    assert_int_equal(supervisor_adopt(&fx->sp, pid, ticks), 0);
    assert_int_equal(fx->sp.state, SUP_RUNNING);
    assert_int_equal(fx->sp.pid, pid);
    assert_true(fx->sp.adopted);
    assert_true(clock_mono_us() - fx->sp.spawned_us >= 10000); /* its age, not "now" */
    struct child_row row = child_row(fx);
    assert_int_equal(row.n, 1);
    assert_int_equal(row.pid, pid);
    assert_int_equal(row.ticks, ticks);
    assert_int_equal(supervisor_adopt(&fx->sp, pid, ticks), -EALREADY);
    kill(pid, SIGKILL);
    loopwait_until(&fx->loop, exited(fx));
    assert_int_equal(fx->exit.pid, pid);
    assert_int_equal(fx->exit.code, -1);
    assert_int_equal(fx->exit.why, STOP_NONE);
    assert_int_equal(fx->sp.state, SUP_DOWN);
    assert_false(fx->sp.adopted);
    assert_int_equal(child_row(fx).n, 0);
}

/* ---- RUNNING ---- */

/* RUNNING + spawn / watch: busy; the process is left alone. */
static void running_spawn_and_watch_are_busy(void **state)
{
    struct fixture *fx = *state;
    command_sleep(fx);
    spawn_ok(fx);
    pid_t pid = fx->sp.pid;
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_SPAWN, STOP_NONE), -EALREADY);
    assert_int_equal(fx->sp.result, -EALREADY);
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_WATCH, STOP_NONE), -EALREADY);
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_ADOPT, STOP_NONE), -EALREADY);
    assert_int_equal(fx->sp.state, SUP_RUNNING);
    assert_int_equal(fx->sp.pid, pid);
    assert_int_equal(fx->sp.handles_open, 3);
    assert_int_equal(kill(pid, 0), 0);
}

/* RUNNING + exited while the process still runs (a spurious wakeup):
 * -EAGAIN, still running, nothing reported. */
static void running_spurious_exit_is_eagain(void **state)
{
    struct fixture *fx = *state;
    command_sleep(fx);
    spawn_ok(fx);
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_EXITED, STOP_NONE), -EAGAIN);
    assert_int_equal(fx->sp.state, SUP_RUNNING);
    assert_int_equal(fx->exits, 0);
    assert_int_equal(kill(fx->sp.pid, 0), 0);
}

/* RUNNING + grace expired (a stale timer): ignored. */
static void running_ignores_grace(void **state)
{
    struct fixture *fx = *state;
    command_sleep(fx);
    spawn_ok(fx);
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_GRACE, STOP_NONE), 0);
    assert_int_equal(fx->sp.state, SUP_RUNNING);
    assert_int_equal(kill(fx->sp.pid, 0), 0);
}

/* RUNNING + release of a supervised process: refused (only an external
 * watch is ever released). */
static void running_release_of_supervised_is_eperm(void **state)
{
    struct fixture *fx = *state;
    command_sleep(fx);
    spawn_ok(fx);
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_RELEASE, STOP_NONE), -EPERM);
    assert_int_equal(fx->sp.state, SUP_RUNNING);
    assert_non_null(fx->sp.exit_watch);
}

/* RUNNING + stop: the stop signal; the exit carries the reason. */
static void running_stop_sends_sigterm_and_the_exit_says_why(void **state)
{
    struct fixture *fx = *state;
    command_sleep(fx);
    spawn_ok(fx);
    pid_t pid = fx->sp.pid;
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_STOP, STOP_RESTART), 0);
    assert_int_equal(fx->sp.state, SUP_STOPPING);
    assert_int_equal(fx->sp.stop_reason, STOP_RESTART);
    assert_true(uv_is_active((uv_handle_t *)&fx->sp.grace));
    loopwait_until(&fx->loop, exited(fx));
    assert_int_equal(fx->exit.pid, pid);
    assert_int_equal(fx->exit.signal, SIGTERM);
    assert_int_equal(fx->exit.why, STOP_RESTART);
    assert_int_equal(fx->sp.state, SUP_DOWN);
    assert_int_equal(fx->sp.stop_reason, STOP_NONE);
    assert_false(uv_is_active((uv_handle_t *)&fx->sp.grace));
    assert_int_equal(child_row(fx).n, 0);
}

/* ---- SPAWNING (supervisor_launch) ---- */

static bool launched(struct fixture *fx)
{
    return fx->launched > 0;
}

/* Close a test's spawner (and whatever else it closed) before its frame goes. */
static void spawner_gone(struct fixture *fx, struct spawner *sw)
{
    spawner_close(sw);
    uv_run(&fx->loop, UV_RUN_NOWAIT); /* the close callbacks */
}

/* Launch fx's command on a fresh spawner sw (held: the launch waits in its
 * queue until released); the launch is in flight when this returns. */
static void launch_on_spawner(struct fixture *fx, struct spawner *sw, bool held)
{
    assert_int_equal(spawner_init(sw, &fx->loop), 0);
    spawner_hold(sw, held);
    assert_int_equal(supervisor_launch(&fx->sp, sw), -EINPROGRESS);
}

struct tick {
    uv_timer_t t;
    int fired;
};

static void tick_cb(uv_timer_t *t)
{
    ((struct tick *)t)->fired++;
}

/* A launch in flight holds neither the loop nor a pid: while the spawner
 * is held (no thread takes the job), the state
 * is spawning with no pid, the loop runs a timer, and a stop is kept.
 * Once the child is spawned its pid is known, watched and recorded, the
 * stop is done at once (SIGTERM), and the exit says why: launched first,
 * then exited, never an exit without a pid. */
static void spawning_leaves_the_loop_free_and_a_stop_meanwhile_ends_the_child(void **state)
{
    struct fixture *fx = *state;
    struct spawner sw;
    struct tick tk = {0};
    command_sleep(fx);
    launch_on_spawner(fx, &sw, true);
    assert_int_equal(fx->sp.state, SUP_SPAWNING);
    assert_int_equal(fx->sp.pid, 0);
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_SPAWN, STOP_NONE), -EALREADY);
    assert_int_equal(supervisor_launch(&fx->sp, &sw), -EALREADY);
    uv_timer_init(&fx->loop, &tk.t);
    uv_update_time(&fx->loop);
    uv_timer_start(&tk.t, tick_cb, 1, 0);
    uv_run(&fx->loop, UV_RUN_ONCE); /* the loop is not waiting for the exec */
    assert_int_equal(tk.fired, 1);
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_STOP, STOP_SHUTDOWN), 0);
    assert_int_equal(fx->sp.state, SUP_SPAWNING);
    assert_int_equal(fx->launched, 0);
    assert_int_equal(child_row(fx).n, 0);
    spawner_hold(&sw, false);
    loopwait_until(&fx->loop, exited(fx));
    assert_int_equal(fx->launched, 1);
    assert_int_equal(fx->launch_err, 0);
    assert_int_equal(fx->exits_at_launch, 0);
    assert_int_equal(fx->exits, 1);
    assert_true(fx->exit.pid > 1);
    assert_int_equal(fx->exit.signal, SIGTERM);
    assert_int_equal(fx->exit.why, STOP_SHUTDOWN);
    assert_int_equal(fx->sp.state, SUP_DOWN);
    assert_null(fx->sp.job);
    uv_close((uv_handle_t *)&tk.t, NULL);
    spawner_gone(fx, &sw);
}

/* A launch runs the command and reports its pid: running, watched,
 * recorded; a launch that cannot exec reports the errno and stays down. */
static void spawning_reports_the_pid_or_the_errno(void **state)
{
    struct fixture *fx = *state;
    struct spawner sw;
    command_sleep(fx);
    launch_on_spawner(fx, &sw, false);
    loopwait_until(&fx->loop, launched(fx));
    assert_int_equal(fx->launch_err, 0);
    assert_int_equal(fx->sp.state, SUP_RUNNING);
    assert_int_equal(fx->sp.result, 0);
    pid_t pid = fx->sp.pid;
    assert_true(pid > 1);
    assert_int_equal(child_row(fx).pid, pid);
    /* Its start time is read on the spawner's thread: the record names it. */
    assert_true(child_row(fx).ticks != 0);
    assert_int_equal(child_row(fx).ticks, procstat_start_ticks(pid));
    assert_int_equal(kill(pid, SIGKILL), 0);
    loopwait_until(&fx->loop, exited(fx));
    assert_int_equal(fx->exit.pid, pid);
    assert_int_equal(fx->exit.why, STOP_NONE);
    fx->launched = 0;
    fx->argv[0] = "/nonexistent/recoverd-test";
    assert_int_equal(supervisor_launch(&fx->sp, &sw), -EINPROGRESS);
    loopwait_until(&fx->loop, launched(fx));
    assert_int_equal(fx->launch_err, -ENOENT);
    assert_int_equal(fx->sp.result, -ENOENT);
    assert_int_equal(fx->sp.state, SUP_DOWN);
    assert_int_equal(fx->exits, 1); /* no exit of a process that never ran */
    spawner_gone(fx, &sw);
}

/* No spawner: the launch is a spawn on the loop, done when it returns. */
static void launch_without_spawner_spawns_here(void **state)
{
    struct fixture *fx = *state;
    command_sleep(fx);
    assert_int_equal(supervisor_launch(&fx->sp, NULL), 0);
    assert_int_equal(fx->sp.state, SUP_RUNNING);
    assert_true(fx->sp.pid > 1);
    assert_int_equal(fx->launched, 0);
}

/* recoverd leaving while a launch is in flight: the child is waited for,
 * recorded and left running for the next recoverd to adopt. */
static void detach_while_spawning_leaves_the_child_recorded(void **state)
{
    struct fixture *fx = *state;
    struct spawner sw;
    command_sleep(fx);
    launch_on_spawner(fx, &sw, false);
    supervisor_detach(&fx->sp);
    assert_int_equal(fx->sp.state, SUP_DOWN);
    assert_int_equal(fx->launched, 1);
    struct child_row row = child_row(fx);
    assert_int_equal(row.n, 1);
    assert_int_equal(proc_state(row.pid) != 0, true);
    kill(row.pid, SIGKILL);
    waitpid(row.pid, NULL, 0);
    spawner_gone(fx, &sw);
}

/* The configured stop signal is the one sent. */
static void running_stop_uses_the_configured_signal(void **state)
{
    struct fixture *fx = *state;
    command_sleep(fx);
    fx->cfg.stop.signal = SIGINT;
    spawn_ok(fx);
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_STOP, STOP_SHUTDOWN), 0);
    loopwait_until(&fx->loop, exited(fx));
    assert_int_equal(fx->exit.signal, SIGINT);
    assert_int_equal(fx->exit.why, STOP_SHUTDOWN);
}

/* A stopped (SIGSTOP) process is woken so the stop signal acts now, not
 * after the grace period (60 s here, longer than the test may wait). */
static void running_stop_wakes_a_stopped_process(void **state)
{
    struct fixture *fx = *state;
    command_sleep(fx);
    fx->cfg.stop.grace_ms = 60000;
    spawn_ok(fx);
    kill(fx->sp.pid, SIGSTOP);
    poll_until(proc_state(fx->sp.pid) == 'T');
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_STOP, STOP_SHUTDOWN), 0);
    loopwait_until(&fx->loop, exited(fx));
    assert_int_equal(fx->exit.signal, SIGTERM);
}

/* The leader's exit takes what it left in its group with it. */
static void exit_kills_what_the_leader_left_in_its_group(void **state)
{
    struct fixture *fx = *state;
    command_sh(fx, "sleep 100 & echo $! > grandchild; exit 0");
    spawn_ok(fx);
    loopwait_until(&fx->loop, exited(fx));
    assert_int_equal(fx->exit.code, 0);
    char path[192];
    snprintf(path, sizeof path, "%s/grandchild", fx->dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int g = 0;
    assert_int_equal(fscanf(f, "%d", &g), 1);
    fclose(f);
    /* As subreaper the orphan is ours to reap: it died of the SIGKILL. */
    int st = 0;
    uint64_t until = uv_hrtime() + LOOPWAIT_MS * 1000000ull;
    pid_t got;
    while ((got = waitpid(g, &st, WNOHANG)) == 0 && uv_hrtime() < until)
        loopwait_nap(1);
    if (got != g) {
        kill(g, SIGKILL);
        waitpid(g, NULL, 0);
        fail_msg("the grandchild %d outlived its group's leader", g);
    }
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGKILL);
}

/* ---- STOPPING ---- */

/* A service that ignores TERM (set before it says it is ready). */
static void spawn_term_ignorer(struct fixture *fx)
{
    command_sh(fx, "trap '' TERM; touch ready; exec sleep 100");
    spawn_ok(fx);
    wait_file(fx, "ready");
}

/* STOPPING + grace expired (the timer): SIGKILL to the group. */
static void stopping_kills_after_the_grace_period(void **state)
{
    struct fixture *fx = *state;
    fx->cfg.stop.grace_ms = 300;
    spawn_term_ignorer(fx);
    uv_update_time(&fx->loop);
    uint64_t t0 = clock_mono_us();
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_STOP, STOP_SHUTDOWN), 0);
    assert_int_equal(fx->sp.state, SUP_STOPPING);
    loopwait_until(&fx->loop, exited(fx));
    uint64_t waited_ms = (clock_mono_us() - t0) / 1000;
    assert_int_equal(fx->exit.signal, SIGKILL); /* TERM did nothing */
    assert_int_equal(fx->exit.why, STOP_SHUTDOWN);
    assert_true(waited_ms + 2 >= fx->cfg.stop.grace_ms); /* not before the grace */
    assert_int_equal(fx->sp.state, SUP_DOWN);
}

/* STOPPING + grace fed by hand: the same SIGKILL, at once. */
static void stopping_grace_event_sends_sigkill(void **state)
{
    struct fixture *fx = *state;
    fx->cfg.stop.grace_ms = 60000;
    spawn_term_ignorer(fx);
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_STOP, STOP_RESTART), 0);
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_GRACE, STOP_NONE), 0);
    assert_int_equal(fx->sp.state, SUP_STOPPING); /* down once the exit is seen */
    assert_true(fx->sp.killed);                   /* a drain after this waits only the kill wait */
    loopwait_until(&fx->loop, exited(fx));
    assert_int_equal(fx->exit.signal, SIGKILL);
    assert_int_equal(fx->exit.why, STOP_RESTART);
}

/* STOPPING + spawn / watch: busy. STOPPING + exited while it still runs:
 * -EAGAIN. STOPPING + release of a supervised process: -EPERM. */
static void stopping_refuses_spawn_watch_release_and_spurious_exit(void **state)
{
    struct fixture *fx = *state;
    fx->cfg.stop.grace_ms = 60000;
    spawn_term_ignorer(fx);
    pid_t pid = fx->sp.pid;
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_STOP, STOP_RESTART), 0);
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_SPAWN, STOP_NONE), -EALREADY);
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_WATCH, STOP_NONE), -EALREADY);
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_ADOPT, STOP_NONE), -EALREADY);
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_RELEASE, STOP_NONE), -EPERM);
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_EXITED, STOP_NONE), -EAGAIN);
    assert_int_equal(fx->sp.state, SUP_STOPPING);
    assert_int_equal(fx->sp.pid, pid);
    assert_int_equal(fx->exits, 0);
    assert_int_equal(kill(pid, 0), 0);
}

/* STOPPING + stop: only the reason can change, and a shutdown outranks a
 * restart, never the other way round. */
/* stop, again and again, in state (stopping or draining): a restart, then
 * a shutdown, which a restart never undoes; the state stays. */
static void assert_shutdown_outranks_restart(struct fixture *fx, enum sup_state state)
{
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_STOP, STOP_RESTART), 0);
    assert_int_equal(fx->sp.stop_reason, STOP_RESTART);
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_STOP, STOP_SHUTDOWN), 0);
    assert_int_equal(fx->sp.stop_reason, STOP_SHUTDOWN);
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_STOP, STOP_RESTART), 0);
    assert_int_equal(fx->sp.stop_reason, STOP_SHUTDOWN);
    assert_int_equal(fx->sp.state, state);
}

static void stopping_stop_again_upgrades_the_reason_only(void **state)
{
    struct fixture *fx = *state;
    fx->cfg.stop.grace_ms = 60000;
    spawn_term_ignorer(fx);
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_STOP, STOP_RESTART), 0);
    assert_shutdown_outranks_restart(fx, SUP_STOPPING);
    kill(-fx->sp.pid, SIGKILL);
    loopwait_until(&fx->loop, exited(fx));
    assert_int_equal(fx->exit.why, STOP_SHUTDOWN);
}

/* ---- what leaves the group: DRAINING, and the empty event ---- */

/* A service whose shell double-forks a sleep under setsid (its own session
 * and group: out of the supervisor's kill(-pid)), writes the escapee's pid
 * to "escaped", then runs sleep itself. With trap_term, the escapee
 * ignores SIGTERM. */
static void spawn_escaper(struct fixture *fx, bool trap_term)
{
    char script[512];
    snprintf(script, sizeof script,
             "( setsid sh -c '%s echo $$ > escaped.tmp; mv escaped.tmp escaped; exec sleep 100' & "
             "); "
             "while [ ! -f escaped ]; do sleep 0.01; done; exec sleep 100",
             trap_term ? "trap \"\" TERM;" : "");
    command_sh(fx, script);
    spawn_ok(fx);
    wait_file(fx, "escaped");
}

static bool runs_sleep(pid_t pid)
{
    char path[64], buf[64] = "";
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    return n >= 6 && !memcmp(buf, "sleep", 6);
}

/* The escapee's pid, once it runs its sleep (a daemon at work, not one in
 * the middle of its exec). */
static pid_t escaped_pid(struct fixture *fx)
{
    char path[192];
    int pid = 0;
    snprintf(path, sizeof path, "%s/escaped", fx->dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%d", &pid), 1);
    fclose(f);
    assert_true(pid > 1);
    poll_until(runs_sleep(pid));
    return pid;
}

/* How the escapee ended: its wait status, reaped here (the test process is
 * a subreaper: the orphan is its child), or -1 if something else (the
 * subreaper mode's own reaper) reaped it, or it still runs after a while. */
static int escapee_end(pid_t pid)
{
    int st = 0;
    uint64_t deadline = clock_mono_us() + LOOPWAIT_MS * 1000ull;
    pid_t got;
    while ((got = waitpid(pid, &st, WNOHANG)) == 0 && clock_mono_us() < deadline)
        usleep(1000);
    if (got == pid)
        return st;
    if (got == 0) {
        char cmd[256];
        snprintf(cmd, sizeof cmd,
                 "cat /proc/%d/cgroup; grep -E 'State|PPid|Sig' /proc/%d/status; cat "
                 "/proc/%d/cmdline | tr '\\0' ' '; echo",
                 pid, pid, pid);
        if (system(cmd)) {
        }
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fail_msg("the escapee %d still runs", pid);
    }
    return -1;
}

/* The escapee is gone by the time the exit is reported, and ended by sig
 * (seen where this test reaped it, not the subreaper mode's own reaper). */
static void assert_escapee_ended(pid_t esc, int sig)
{
    assert_true(procstat_start_ticks(esc) == 0);
    int st = escapee_end(esc);
    if (st != -1 && !(WIFSIGNALED(st) && WTERMSIG(st) == sig))
        fail_msg("the escapee ended with status %#x, not by signal %d", st, sig);
}

static void need_box(struct fixture *fx)
{
    if (!fx->box_up)
        skip(); /* this host cannot give that containment (unprivileged, no cgroup v2) */
}

/* A contained child starts in its service's own cgroup, under recoverd's. */
static void cgroup_child_is_born_in_its_service_cgroup(void **state)
{
    struct fixture *fx = *state;
    need_box(fx);
    command_sleep(fx);
    spawn_ok(fx);
    char dir[PATH_MAX], want[PATH_MAX];
    assert_int_equal(cgroup_of_pid(fx->sp.pid, dir, sizeof dir), 0);
    snprintf(want, sizeof want, "%s/svc.service", fx->box.root);
    assert_string_equal(dir, want);
    assert_string_equal(fx->sp.encl.cgroup, want);
    assert_int_equal(cgroup_populated(want), 1);
    /* The mark is in its environment. */
    assert_non_null(strstr(fx->sp.encl.mark, "RECOVERD_MARK="));
}

/* A cgroup that cannot be made fails the start the same way on the loop
 * (a spawn there: supervisor_launch returns the errno) and on a spawner
 * (its thread makes the cgroup; the report carries the errno): down, no
 * process, no child recorded; and the launch's cgroup was made on the
 * thread, the loop only learns how it went. */
static void cgroup_that_cannot_be_made_fails_the_launch_on_either_path(void **state)
{
    struct fixture *fx = *state;
    need_box(fx);
    command_sleep(fx);
    char *made = fx->sp.encl.cgroup;
    fx->sp.encl.cgroup = strdup("/nonexistent/recoverd.test/svc.service");
    assert_non_null(fx->sp.encl.cgroup);
    assert_int_equal(supervisor_launch(&fx->sp, NULL), -ENOENT);
    assert_int_equal(fx->sp.state, SUP_DOWN);
    struct spawner sw;
    launch_on_spawner(fx, &sw, false);
    loopwait_until(&fx->loop, launched(fx));
    assert_int_equal(fx->launch_err, -ENOENT);
    assert_int_equal(fx->sp.result, -ENOENT);
    assert_int_equal(fx->sp.state, SUP_DOWN);
    assert_int_equal(fx->sp.pid, 0);
    assert_int_equal(child_row(fx).n, 0);
    assert_false(fx->sp.encl.made);
    /* The real one, made by the launch's thread: the child is born in it. */
    free(fx->sp.encl.cgroup);
    fx->sp.encl.cgroup = made;
    fx->launched = 0;
    assert_int_equal(rmdir(made) == 0 || errno == ENOENT, 1);
    assert_int_equal(supervisor_launch(&fx->sp, &sw), -EINPROGRESS);
    loopwait_until(&fx->loop, launched(fx));
    assert_int_equal(fx->launch_err, 0);
    assert_true(fx->sp.encl.made);
    char dir[PATH_MAX];
    assert_int_equal(cgroup_of_pid(fx->sp.pid, dir, sizeof dir), 0);
    assert_string_equal(dir, made);
    spawner_gone(fx, &sw);
}

/* RUNNING + stop reaches the escapee too; the exit is reported once it is
 * gone as well, not before. */
static void stop_reaches_what_left_the_group(void **state)
{
    struct fixture *fx = *state;
    need_box(fx);
    spawn_escaper(fx, false);
    pid_t esc = escaped_pid(fx);
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_STOP, STOP_SHUTDOWN), 0);
    loopwait_until(&fx->loop, exited(fx));
    assert_int_equal(fx->exit.why, STOP_SHUTDOWN);
    assert_int_equal(fx->exit.signal, SIGTERM);
    assert_escapee_ended(esc, SIGTERM); /* the stop signal, no SIGKILL needed */
    if (fx->sp.encl.cgroup)
        assert_int_equal(cgroup_populated(fx->sp.encl.cgroup), 0);
}

/* RUNNING + exited (a death): what left the group is SIGKILLed with it. */
static void death_takes_what_left_the_group(void **state)
{
    struct fixture *fx = *state;
    need_box(fx);
    spawn_escaper(fx, true);
    pid_t esc = escaped_pid(fx);
    kill(fx->sp.pid, SIGKILL);
    loopwait_until(&fx->loop, exited(fx));
    assert_int_equal(fx->exit.why, STOP_NONE);
    assert_int_equal(fx->exit.signal, SIGKILL);
    assert_escapee_ended(esc, SIGKILL);
    /* A new process in the same (renewed) cgroup lives: a cgroup that went
     * through cgroup.kill would SIGKILL it at birth. */
    command_sleep(fx);
    spawn_ok(fx);
    int before = fx->exits;
    usleep(100000);
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    assert_int_equal(fx->exits, before);
    assert_int_equal(fx->sp.state, SUP_RUNNING);
    assert_int_equal(kill(fx->sp.pid, 0), 0);
}

/* A cgroup a predecessor left, killed once (cgroup.kill) and still holding
 * a process: it cannot be made afresh, and a child born into it would be
 * SIGKILLed by the kernel at once; the child joins it by its own write. */
static void spawn_into_a_killed_busy_cgroup_lives(void **state)
{
    struct fixture *fx = *state;
    need_box(fx);
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/svc.service", fx->box.root);
    assert_int_equal(cgroup_mkdir(dir), 0);
    assert_int_equal(cgroup_kill(dir), 0);
    pid_t old = fork_child(fx, false);
    assert_int_equal(cgroup_attach(dir, old), 0);
    command_sleep(fx);
    spawn_ok(fx);
    char got[PATH_MAX];
    assert_int_equal(cgroup_of_pid(fx->sp.pid, got, sizeof got), 0);
    assert_string_equal(got, dir);
    usleep(100000);
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    assert_int_equal(fx->exits, 0);
    assert_int_equal(fx->sp.state, SUP_RUNNING);
    /* Stopped, the cgroup empties: the next spawn renews it and is born in it. */
    kill(old, SIGKILL);
    waitpid(old, NULL, 0);
    fx->n_forked = 0;
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_STOP, STOP_RESTART), 0);
    loopwait_until(&fx->loop, exited(fx));
    spawn_ok(fx);
    usleep(100000);
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    assert_int_equal(fx->exits, 1);
    assert_int_equal(fx->sp.state, SUP_RUNNING);
}

/* STOPPING + exited with an escapee ignoring the stop signal: DRAINING
 * until the grace ends, then SIGKILL, then down on the empty event. */
static void draining_kills_what_ignores_the_stop_after_the_grace(void **state)
{
    struct fixture *fx = *state;
    need_box(fx);
    fx->cfg.stop.grace_ms = 300;
    spawn_escaper(fx, true);
    pid_t esc = escaped_pid(fx);
    uv_update_time(&fx->loop);
    uint64_t t0 = clock_mono_us();
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_STOP, STOP_RESTART), 0);
    loopwait_until(&fx->loop, exited(fx));
    uint64_t waited_ms = (clock_mono_us() - t0) / 1000;
    assert_int_equal(fx->exit.why, STOP_RESTART);
    assert_int_equal(fx->exit.signal, SIGTERM); /* the leader went at once */
    assert_true(waited_ms + 2 >= fx->cfg.stop.grace_ms);
    assert_escapee_ended(esc, SIGKILL);
}

/* STOPPING + grace expired: SIGKILL reaches what left the group too, and
 * the exit is reported once both are gone. */
static void stopping_grace_kills_what_left_the_group_too(void **state)
{
    struct fixture *fx = *state;
    need_box(fx);
    fx->cfg.stop.grace_ms = 60000;
    command_sh(fx, "( setsid sh -c 'trap \"\" TERM; echo $$ > escaped.tmp; mv escaped.tmp escaped; "
                   "exec sleep 100' & ); trap '' TERM; while :; do sleep 0.05; done");
    spawn_ok(fx);
    wait_file(fx, "escaped");
    pid_t esc = escaped_pid(fx);
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_STOP, STOP_SHUTDOWN), 0);
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_GRACE, STOP_NONE), 0);
    assert_true(fx->sp.killed);
    loopwait_until(&fx->loop, exited(fx));
    assert_int_equal(fx->exit.signal, SIGKILL);
    assert_int_equal(fx->exit.why, STOP_SHUTDOWN);
    assert_escapee_ended(esc, SIGKILL);
}

/* Into DRAINING by hand: the leader goes at SIGTERM, the escapee ignores
 * it, and the grace is long. */
static pid_t enter_draining(struct fixture *fx, enum stop_reason reason)
{
    fx->cfg.stop.grace_ms = 60000;
    spawn_escaper(fx, true);
    pid_t esc = escaped_pid(fx);
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_STOP, reason), 0);
    loopwait_until(&fx->loop, fx->sp.state != SUP_STOPPING);
    assert_int_equal(fx->sp.state, SUP_DRAINING);
    assert_int_equal(fx->sp.pid, 0);
    assert_null(fx->sp.exit_watch);
    assert_int_equal(fx->exits, 0); /* not reported while something is left */
    assert_int_equal(kill(esc, 0), 0);
    return esc;
}

/* DRAINING + spawn / watch: busy; + release: -EPERM; + exited: nothing to
 * see (the leader is reaped). Then grace: SIGKILL, and empty: down. */
static void draining_refuses_spawn_watch_release_and_ignores_exited(void **state)
{
    struct fixture *fx = *state;
    need_box(fx);
    pid_t esc = enter_draining(fx, STOP_SHUTDOWN);
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_SPAWN, STOP_NONE), -EALREADY);
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_WATCH, STOP_NONE), -EALREADY);
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_ADOPT, STOP_NONE), -EALREADY);
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_RELEASE, STOP_NONE), -EPERM);
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_EXITED, STOP_NONE), 0);
    assert_int_equal(fx->sp.state, SUP_DRAINING);
    assert_int_equal(kill(esc, 0), 0);
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_GRACE, STOP_NONE), 0);
    assert_true(fx->sp.killed);
    assert_int_equal(fx->sp.state, SUP_DRAINING); /* down once it is seen gone */
    loopwait_until(&fx->loop, exited(fx));
    assert_int_equal(fx->state_at_exit, SUP_DOWN);
    assert_int_equal(fx->exit.why, STOP_SHUTDOWN);
    assert_false(fx->sp.killed);
    escapee_end(esc);
}

/* DRAINING + stop: a shutdown outranks a restart; a stop asked for after a
 * death (reason none) is the reason the exit is reported with, so the
 * restart that asked spawns. */
static void draining_stop_changes_the_reported_reason(void **state)
{
    struct fixture *fx = *state;
    need_box(fx);
    pid_t esc = enter_draining(fx, STOP_NONE);
    assert_int_equal(fx->sp.stop_reason, STOP_NONE);
    assert_shutdown_outranks_restart(fx, SUP_DRAINING);
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_GRACE, STOP_NONE), 0);
    loopwait_until(&fx->loop, exited(fx));
    assert_int_equal(fx->exit.why, STOP_SHUTDOWN);
    escapee_end(esc);
}

/* DRAINING + grace after the SIGKILL (what is left did not go): stuck,
 * given up on, down and reported all the same. */
static void draining_gives_up_on_what_survives_sigkill(void **state)
{
    struct fixture *fx = *state;
    need_box(fx);
    pid_t esc = enter_draining(fx, STOP_SHUTDOWN);
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_GRACE, STOP_NONE), 0);
    assert_int_equal(fx->sp.state, SUP_DRAINING);
    /* Before the loop sees it gone: the kill wait "ran out". */
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_GRACE, STOP_NONE), 0);
    assert_int_equal(fx->sp.state, SUP_DOWN);
    assert_int_equal(fx->exits, 1);
    assert_int_equal(fx->exit.why, STOP_SHUTDOWN);
    assert_false(fx->sp.encl.waiting);
    escapee_end(esc);
    /* The empty event that may still come finds it down: ignored. */
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    assert_int_equal(fx->exits, 1);
}

/* empty in DOWN, RUNNING and STOPPING: ignored. */
static void empty_is_ignored_outside_draining(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_EMPTY, STOP_NONE), 0);
    assert_int_equal(fx->sp.state, SUP_DOWN);
    fx->cfg.stop.grace_ms = 60000;
    spawn_term_ignorer(fx);
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_EMPTY, STOP_NONE), 0);
    assert_int_equal(fx->sp.state, SUP_RUNNING);
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_STOP, STOP_RESTART), 0);
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_EMPTY, STOP_NONE), 0);
    assert_int_equal(fx->sp.state, SUP_STOPPING);
    assert_int_equal(fx->exits, 0);
}

/* Without a containment (the process group alone), an exit is reported at
 * once: there is nothing to drain. */
static void without_containment_the_exit_is_reported_at_once(void **state)
{
    struct fixture *fx = *state;
    assert_null(fx->sp.box);
    command_sh(fx, "exit 0");
    spawn_ok(fx);
    loopwait_until(&fx->loop, exited(fx));
    assert_null(fx->sp.encl.cgroup);
    assert_string_equal(fx->sp.encl.mark, "");
}

/* ---- external services ---- */

/* RUNNING (watched) + stop: recoverd never signals an external service. A
 * restart only records why (its program will end the process); a shutdown
 * stops watching. */
static void external_stop_never_signals(void **state)
{
    struct fixture *fx = *state;
    fx->cfg.pidfile = fx->pidfile;
    pid_t pid = fork_child(fx, false);
    write_pid(fx, pid);
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_WATCH, STOP_NONE), 0);
    assert_int_equal(fx->sp.state, SUP_RUNNING);
    assert_int_equal(fx->sp.pid, pid);
    assert_int_equal(fx->sp.result, 0);
    assert_int_equal(fx->sp.handles_open, 3);
    assert_int_equal(child_row(fx).n, 0); /* not our child: no journal row */
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_STOP, STOP_RESTART), 0);
    assert_int_equal(fx->sp.state, SUP_RUNNING);
    assert_int_equal(fx->sp.stop_reason, STOP_RESTART);
    assert_false(uv_is_active((uv_handle_t *)&fx->sp.grace));
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_STOP, STOP_SHUTDOWN), 0);
    assert_int_equal(fx->sp.state, SUP_DOWN);
    assert_int_equal(fx->sp.pid, 0);
    assert_null(fx->sp.exit_watch);
    assert_int_equal(fx->exits, 0);
    loopwait_nap(20);                                 /* time for an exit that must not come */
    assert_int_equal(waitpid(pid, NULL, WNOHANG), 0); /* still running */
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    assert_int_equal(fx->sp.handles_open, 2);
}

/* RUNNING (watched) + release: stop watching, leave it running; watch it
 * again later. */
static void external_release_stops_watching(void **state)
{
    struct fixture *fx = *state;
    fx->cfg.pidfile = fx->pidfile;
    pid_t pid = fork_child(fx, false);
    write_pid(fx, pid);
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_WATCH, STOP_NONE), 0);
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_RELEASE, STOP_NONE), 0);
    assert_int_equal(fx->sp.state, SUP_DOWN);
    assert_int_equal(fx->sp.pid, 0);
    assert_int_equal(waitpid(pid, NULL, WNOHANG), 0);
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_WATCH, STOP_NONE), 0);
    assert_int_equal(fx->sp.pid, pid);
}

/* A watched process that ends: the sink hears it with no exit code (it is
 * not our child), and with the restart reason if one was recorded. */
static void external_exit_is_reported_without_a_code(void **state)
{
    struct fixture *fx = *state;
    fx->cfg.pidfile = fx->pidfile;
    pid_t pid = fork_child(fx, false);
    write_pid(fx, pid);
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_WATCH, STOP_NONE), 0);
    assert_int_equal(supervisor_event(&fx->sp, SUP_EV_STOP, STOP_RESTART), 0);
    kill(pid, SIGKILL);
    loopwait_until(&fx->loop, exited(fx));
    assert_int_equal(fx->exit.pid, pid);
    assert_int_equal(fx->exit.code, -1);
    assert_int_equal(fx->exit.signal, 0);
    assert_int_equal(fx->exit.why, STOP_RESTART);
    assert_int_equal(fx->sp.state, SUP_DOWN);
    assert_int_equal(fx->sp.stop_reason, STOP_NONE);
    /* recoverd did not reap it: the zombie is still ours. */
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    fx->n_forked = 0;
}

/* ---- the process's environment, directory and output ---- */

static bool log_has_hello(struct fixture *fx)
{
    char buf[4096] = "";
    FILE *f = fopen(fx->log, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, "hello from") && strstr(buf, "FOO=bar") && strstr(buf, "err line");
}

/* stdout and stderr go to the output log; cwd and the environment are the
 * configured ones. */
static void spawn_uses_env_cwd_and_output_log(void **state)
{
    struct fixture *fx = *state;
    char **envp = calloc(3, sizeof *envp);
    assert_non_null(envp);
    envp[0] = "FOO=bar";
    envp[1] = "PATH=/usr/bin:/bin";
    supervisor_set_envp(&fx->sp, envp);
    command_sh(fx, "echo \"hello from $(pwd)\"; echo \"FOO=$FOO\"; echo err line >&2");
    spawn_ok(fx);
    loopwait_until(&fx->loop, exited(fx));
    assert_int_equal(fx->exit.code, 0);
    loopwait_until(&fx->loop, log_has_hello(fx));
    char buf[4096] = "", want[128];
    FILE *f = fopen(fx->log, "r");
    assert_non_null(f);
    buf[fread(buf, 1, sizeof buf - 1, f)] = '\0';
    fclose(f);
    char real[PATH_MAX];
    assert_non_null(realpath(fx->dir, real));
    assert_true(snprintf(want, sizeof want, "hello from %s", real) < (int)sizeof want);
    assert_non_null(strstr(buf, want));
}

/* The same through the spawner: its job carries the environment added
 * over recoverd's, a copy (the thread reads it after the loop moved on). */
static void launch_on_the_spawner_uses_the_env(void **state)
{
    struct fixture *fx = *state;
    struct spawner sw;
    char **envp = calloc(3, sizeof *envp);
    assert_non_null(envp);
    envp[0] = "FOO=bar";
    envp[1] = "PATH=/usr/bin:/bin";
    supervisor_set_envp(&fx->sp, envp);
    command_sh(fx, "echo \"hello from $(pwd)\"; echo \"FOO=$FOO\"; echo err line >&2");
    launch_on_spawner(fx, &sw, true);
    /* A reload replaces the service's environment (the old array freed)
     * while the launch waits: the child still gets the one it was given. */
    char **later = calloc(2, sizeof *later);
    assert_non_null(later);
    later[0] = "FOO=later";
    supervisor_set_envp(&fx->sp, later);
    spawner_hold(&sw, false);
    loopwait_until(&fx->loop, exited(fx));
    assert_int_equal(fx->exit.code, 0);
    loopwait_until(&fx->loop, log_has_hello(fx));
    spawner_gone(fx, &sw);
}

/* ---- init ---- */

/* A log that cannot be opened: -errno and nothing left in the loop. */
static void init_with_unopenable_log_fails_cleanly(void **state)
{
    struct fixture *fx = *state;
    struct supervisor other = {.loop = &fx->loop,
                               .service = "other",
                               .cfg = &fx->cfg,
                               .journal = fx->journal,
                               .sink = {sink_exited, sink_launched, sink_closed, fx}};
    char path[192], fifo[192];
    int handles = loop_handles(fx);
    snprintf(path, sizeof path, "%s/no/such/dir/other.log", fx->dir);
    snprintf(fifo, sizeof fifo, "%s/no/such/dir/other.pipe", fx->dir);
    assert_int_equal(supervisor_init(&other, path, fifo), -ENOENT);
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    assert_int_equal(loop_handles(fx), handles);
    assert_int_equal(fx->closed, 0);
}

/* ---- process identity ---- */

/* Field 22 of /proc/pid/stat, parsed independently of supervisor.c: split
 * the fields after the last ')' on spaces. 0 when absent. */
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

static void procstat_start_ticks_of_self_is_stable(void **state)
{
    (void)state;
    uint64_t a = procstat_start_ticks(getpid());
    assert_true(a > 0);
    assert_int_equal(a, stat_field22(getpid()));
    loopwait_nap(20);
    assert_int_equal(procstat_start_ticks(getpid()), a);
}

static void procstat_start_ticks_of_missing_pid_is_zero(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(0);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    assert_int_equal(procstat_start_ticks(pid), 0);
    assert_int_equal(procstat_start_ticks(0x3fffffff), 0); /* above any pid_max */
}

static void procstat_start_ticks_of_zombie_is_zero(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(0);
    siginfo_t si;
    /* Wait for the exit but leave the zombie in place. */
    assert_int_equal(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
    assert_int_equal(si.si_pid, pid);
    assert_int_equal(procstat_start_ticks(pid), 0);
    /* ..._any still names it: a zombie is that process until reaped. */
    uint64_t t = procstat_start_ticks_any(pid);
    assert_true(t >= procstat_start_ticks(getpid()));
    assert_int_equal(t, stat_field22(pid));
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    assert_int_equal(procstat_start_ticks_any(pid), 0);
}

/* comm may hold ") " and spaces: the fields are counted after the last ')'. */
static void procstat_start_ticks_survives_parens_in_name(void **state)
{
    (void)state;
    int fds[2];
    char c;
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        alarm(CHILD_LIFE_S);
        prctl(PR_SET_NAME, "x) 1 2 (y) z", 0, 0, 0);
        if (write(fds[1], "r", 1) != 1)
            _exit(99);
        for (;;)
            pause();
    }
    close(fds[1]);
    assert_int_equal(read(fds[0], &c, 1), 1);
    close(fds[0]);
    uint64_t t = procstat_start_ticks(pid);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    assert_true(t > 0);
    assert_true(t >= procstat_start_ticks(getpid())); /* started after us */
}

/* ---- what a killed recoverd left running (daemon_start) ---- */

/* The old process.c's process_reap_leftover lives on in daemon.c, run by
 * daemon_start for every child row of the journal before any spawn: the
 * group of a pid that is still the process started at the recorded ticks
 * gets SIGTERM (and SIGCONT), then SIGKILL once the leader is gone or the
 * service's stop grace ran out. */

static pid_t leftovers[8]; /* forked by these tests; killed and reaped by the teardown */
static int n_leftovers;

static pid_t track(pid_t pid)
{
    if (pid > 0 && n_leftovers < (int)(sizeof leftovers / sizeof *leftovers))
        leftovers[n_leftovers++] = pid;
    return pid;
}

/* Kill and reap what is still unreaped (an unreaped pid cannot have been
 * reused, so this never hits a stranger). */
static int leftovers_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < n_leftovers; i++)
        if (waitpid(leftovers[i], NULL, WNOHANG) == 0) {
            kill(leftovers[i], SIGKILL);
            kill(leftovers[i], SIGCONT);
            waitpid(leftovers[i], NULL, 0);
        }
    n_leftovers = 0;
    return 0;
}

/* What the grandchild of fork_leader() does. */
enum grandchild {
    GC_NONE,    /* no grandchild */
    GC_PLAIN,   /* default SIGTERM action */
    GC_IGNORES, /* ignores SIGTERM */
};

static void child_ready(int fd)
{
    char c = 'r';
    if (write(fd, &c, 1) != 1)
        _exit(99);
}

/* A child in its own session (like a supervised service), optionally
 * ignoring SIGTERM, optionally with a grandchild in its group; the
 * grandchild's pid (or 0) is read before returning, once every
 * disposition is in place. */
static pid_t fork_leader(bool ignore_term, enum grandchild gc, pid_t *grandchild)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = track(fork());
    assert_true(pid >= 0);
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
        char c;
        if (g > 0 && read(gp[0], &c, 1) != 1)
            _exit(96);
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
    track(g); /* ours once its parent is gone (subreaper) */
    return pid;
}

/* Reap pid (a child, or an orphan as subreaper); its wait status. */
static int reap(pid_t pid)
{
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

/* Still running (not even a zombie) after a moment. */
static bool still_running(pid_t pid)
{
    loopwait_nap(50); /* time for an exit that must not come */
    return kill(pid, 0) == 0 && waitpid(pid, NULL, WNOHANG) == 0;
}

struct leftover_run {
    uint64_t elapsed_ms;  /* daemon_start until web was spawned */
    int rows_for_service; /* child rows left for service "svc" */
};

/* A journal in a fresh state_dir with one child row (service, pid, ticks),
 * then a daemon started on it whose service "web" (sleep) stops with
 * grace; then stopped, the loop run empty and everything freed. */
static struct leftover_run daemon_with_leftover(const char *service, pid_t pid, uint64_t ticks,
                                                const char *grace)
{
    struct leftover_run out = {0};
    char dir[64] = "/tmp/test_supervisor_d.XXXXXX", path[128], err[256] = "", yaml[512];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/journal.db", dir);
    struct journal *j = journal_open(path, err, sizeof err);
    if (!j)
        fail_msg("journal_open: %s", err);
    assert_int_equal(journal_child_set(j, &(struct journal_child){service, pid, ticks, ""}), 0);
    journal_free(j);
    snprintf(yaml, sizeof yaml,
             "state_dir: %s\napi: { listen: \"127.0.0.1:0\" }\nservices:\n"
             "  web:\n    command: [sleep, \"100\"]\n    stop: { grace: %s }\n",
             dir, grace);
    struct cfg_err cerr;
    struct config *cfg = config_load_string("t.yaml", yaml, strlen(yaml), &daemon_registry, &cerr);
    if (!cfg)
        fail_msg("%s:%d:%d: %s", cerr.file, cerr.line, cerr.col, cerr.msg);
    uv_loop_t loop;
    struct daemon *d = calloc(1, sizeof *d);
    assert_non_null(d);
    assert_int_equal(uv_loop_init(&loop), 0);
    uint64_t t0 = clock_mono_us();
    /* cgroup: a subreaper mode's reaper would take the test's own forks. */
    int r = daemon_start(d, &loop, cfg, NULL, &(struct daemon_opts){CONTAINMENT_CGROUP, false});
    if (r == -ENOTSUP) {
        daemon_stop(d);
        uv_run(&loop, UV_RUN_DEFAULT);
        daemon_free(d);
        free(d);
        uv_loop_close(&loop);
        nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
        skip(); /* no cgroup for this test here */
    }
    /* The leftovers go off the loop's back; web starts once they are gone. */
    if (r == 0)
        loopwait_try_ms(&loop, d->n_services == 1 && d->services[0]->sup.pid, 20000);
    out.elapsed_ms = (clock_mono_us() - t0) / 1000;
    struct child_row row = {0};
    if (r == 0) {
        journal_children(d->journal, child_cb, &row); /* counts "svc" rows */
        out.rows_for_service = row.n;
    }
    /* web's own row is its new process, not the leftover. */
    bool web_fresh = r == 0 && d->n_services == 1 && d->services[0]->sup.pid != pid;
    daemon_stop(d);
    int ran = uv_run(&loop, UV_RUN_DEFAULT);
    daemon_free(d);
    free(d);
    int closed = uv_loop_close(&loop);
    nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
    assert_int_equal(r, 0);
    assert_true(web_fresh);
    assert_int_equal(ran, 0);
    assert_int_equal(closed, 0);
    return out;
}

/* The leader goes at SIGTERM, and so does the rest of its group; nobody
 * waits out the grace period. The row is replaced by the new spawn's. */
static void leftover_group_is_stopped_with_sigterm(void **state)
{
    (void)state;
    pid_t g = 0;
    pid_t pid = fork_leader(false, GC_PLAIN, &g);
    assert_true(g > 0);
    uint64_t ticks = procstat_start_ticks(pid);
    assert_true(ticks > 0);
    struct leftover_run run = daemon_with_leftover("web", pid, ticks, "30s");
    int st = reap(pid);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGTERM);
    st = reap(g);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGTERM);
    assert_true(run.elapsed_ms < 20000); /* the leader's exit ended the wait */
}

/* A group member ignoring SIGTERM is SIGKILLed once the leader is gone. */
static void leftover_member_ignoring_term_is_sigkilled(void **state)
{
    (void)state;
    pid_t g = 0;
    pid_t pid = fork_leader(false, GC_IGNORES, &g);
    struct leftover_run run = daemon_with_leftover("web", pid, procstat_start_ticks(pid), "30s");
    int st = reap(pid);
    assert_int_equal(WTERMSIG(st), SIGTERM);
    st = reap(g);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGKILL);
    assert_true(run.elapsed_ms < 20000);
}

/* A leader ignoring SIGTERM is SIGKILLed after the service's grace. */
static void leftover_ignoring_term_is_killed_after_the_grace(void **state)
{
    (void)state;
    pid_t pid = fork_leader(true, GC_NONE, NULL);
    struct leftover_run run = daemon_with_leftover("web", pid, procstat_start_ticks(pid), "300ms");
    int st = reap(pid);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGKILL);
    assert_true(run.elapsed_ms >= 300); /* it did wait the grace first */
}

/* A stopped leftover is woken, so SIGTERM acts at once. */
static void leftover_stopped_group_is_woken(void **state)
{
    (void)state;
    pid_t pid = fork_leader(false, GC_NONE, NULL);
    uint64_t ticks = procstat_start_ticks(pid);
    int st = 0;
    kill(pid, SIGSTOP);
    assert_int_equal(waitpid(pid, &st, WUNTRACED), pid);
    assert_true(WIFSTOPPED(st));
    struct leftover_run run = daemon_with_leftover("web", pid, ticks, "30s");
    st = reap(pid);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGTERM);
    assert_true(run.elapsed_ms < 20000);
}

/* A pid that is no longer the process started at those ticks (reused) is
 * left alone, and so is one recorded without ticks. */
static void leftover_with_other_ticks_is_left_alone(void **state)
{
    (void)state;
    pid_t pid = fork_leader(false, GC_NONE, NULL);
    uint64_t ticks = procstat_start_ticks(pid);
    assert_true(ticks > 0);
    daemon_with_leftover("web", pid, ticks + 1, "300ms");
    assert_true(still_running(pid));
    daemon_with_leftover("web", pid, 0, "300ms");
    assert_true(still_running(pid));
}

/* Ticks 0 (unknown start time) never match: a dead leader's group is left
 * alone, since its pid may have been reused as a group id. */
static void leftover_dead_leader_without_ticks_leaves_the_group(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = track(fork());
    assert_true(pid >= 0);
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
    track(g);
    siginfo_t si;
    assert_int_equal(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0); /* a zombie */
    daemon_with_leftover("web", pid, 0, "300ms");
    assert_true(still_running(g));
}

/* A service no longer configured: its leftover goes all the same, and its
 * row is forgotten. */
static void leftover_of_a_removed_service_is_stopped_and_forgotten(void **state)
{
    (void)state;
    pid_t pid = fork_leader(false, GC_NONE, NULL);
    struct leftover_run run = daemon_with_leftover("svc", pid, procstat_start_ticks(pid), "30s");
    int st = reap(pid);
    assert_int_equal(WTERMSIG(st), SIGTERM);
    assert_int_equal(run.rows_for_service, 0);
}

/* ---- exits past the loop turn's budget ---- */

#define BURST 6

struct burst {
    struct pace pace; /* here, not on the stack: a failed assertion leaves its handles open */
    struct supervisor sp[BURST];
    struct service_cfg cfg[BURST];
    char names[BURST][8];
    char log[BURST][160], fifo[BURST][160];
    int exits[BURST]; /* sink.exited calls, each */
    int handled;      /* exits heard in all */
    int turn_max;     /* the most heard in one turn of the loop */
};

static void burst_exited(void *ctx, const struct sup_exit *e)
{
    int *n = ctx;
    (*n)++;
}

static void burst_closed(void *ctx)
{
    (void)ctx;
}

static bool burst_all_closed(const struct burst *b)
{
    for (int i = 0; i < BURST; i++)
        if (b->sp[i].handles_open)
            return false;
    return true;
}

/* /proc/pid/stat says Z: dead, its pidfd readable, not reaped. */
static bool is_zombie(pid_t pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && p[2] == 'Z';
}

/* BURST processes die together: their exits all come in one poll. At two
 * exits a turn, two are handled in that turn and the rest wait, two a
 * turn: none lost, none twice, each with its own signal, no turn holding
 * more than two. */
static void exits_in_one_poll_are_handled_a_budget_per_turn_none_lost(void **state)
{
    struct fixture *fx = *state;
    struct burst *b = calloc(1, sizeof *b);
    assert_non_null(b);
    pace_init(&b->pace, &fx->loop, 0, 2); /* two exits a turn */
    char *argv[] = {"sleep", "100", NULL};
    for (int i = 0; i < BURST; i++) {
        snprintf(b->names[i], sizeof b->names[i], "b%d", i);
        snprintf(b->log[i], sizeof b->log[i], "%s/b%d.log", fx->dir, i);
        snprintf(b->fifo[i], sizeof b->fifo[i], "%s/b%d.pipe", fx->dir, i);
        b->cfg[i] = fx->cfg;
        b->cfg[i].name = b->names[i];
        b->cfg[i].command = argv;
        struct supervisor *sp = &b->sp[i];
        *sp = (struct supervisor){.loop = &fx->loop,
                                  .service = b->names[i],
                                  .cfg = &b->cfg[i],
                                  .journal = fx->journal,
                                  .sink = {burst_exited, NULL, burst_closed, &b->exits[i]},
                                  .pace = &b->pace};
        assert_int_equal(supervisor_init(sp, b->log[i], b->fifo[i]), 0);
        assert_int_equal(supervisor_event(sp, SUP_EV_SPAWN, STOP_NONE), 0);
        assert_int_equal(sp->state, SUP_RUNNING);
    }
    for (int i = 0; i < BURST; i++)
        assert_int_equal(kill(b->sp[i].pid, SIGKILL), 0);
    for (int i = 0; i < BURST; i++) { /* every pidfd readable before the next poll */
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        while (!is_zombie(b->sp[i].pid)) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            assert_true(now.tv_sec - t0.tv_sec < LOOPWAIT_MS / 1000);
            usleep(1000);
        }
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int turns = 0;
    while (b->handled < BURST) {
        int before = 0, after = 0;
        for (int i = 0; i < BURST; i++)
            before += b->exits[i];
        uv_run(&fx->loop, UV_RUN_ONCE);
        turns++;
        for (int i = 0; i < BURST; i++)
            after += b->exits[i];
        if (after - before > b->turn_max)
            b->turn_max = after - before;
        b->handled = after;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec >= LOOPWAIT_MS / 1000)
            break; /* failed below, once closed */
    }
    bool waiting = false;
    for (int i = 0; i < BURST; i++)
        waiting |= supervisor_exit_waiting(&b->sp[i]);
    /* Closed before any assertion: a failure must not leave the loop
     * handles the teardown would wait for. */
    for (int i = 0; i < BURST; i++)
        supervisor_close(&b->sp[i]);
    loopwait_until(&fx->loop, burst_all_closed(b));
    pace_close(&b->pace);
    uv_run(&fx->loop, UV_RUN_NOWAIT); /* its handles' closes; the teardown checks none is left */
    assert_int_equal(b->handled, BURST);
    assert_int_equal(b->turn_max, 2);
    assert_true(turns >= BURST / 2);
    assert_false(waiting);
    for (int i = 0; i < BURST; i++) {
        assert_int_equal(b->exits[i], 1);
        assert_int_equal(b->sp[i].state, SUP_DOWN);
        assert_int_equal(b->sp[i].last.signal, SIGKILL);
        assert_int_equal(kill(b->sp[i].last.pid, 0), -1); /* reaped */
    }
    free(b);
}

int main(void)
{
    /* Orphaned grandchildren come back to us, so a test can reap them. */
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
#define FX(t) cmocka_unit_test_setup_teardown(t, fixture_setup, fixture_teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sup_names_spell_states_and_events),
        FX(down_spawn_runs_the_command_and_its_exit_code_is_reported),
        FX(killed_process_reports_the_signal_and_spawns_again),
        FX(exits_in_one_poll_are_handled_a_budget_per_turn_none_lost),
        FX(down_spawn_failure_returns_errno_and_stays_down),
        FX(down_spawn_without_command_is_enoexec),
        FX(down_ignores_stop_release_exited_and_grace),
        FX(unknown_event_is_einval),
        FX(down_watch_refuses_what_is_not_a_live_pid),
        FX(running_spawn_and_watch_are_busy),
        FX(running_spurious_exit_is_eagain),
        FX(running_ignores_grace),
        FX(running_release_of_supervised_is_eperm),
        FX(running_stop_sends_sigterm_and_the_exit_says_why),
        FX(spawning_leaves_the_loop_free_and_a_stop_meanwhile_ends_the_child),
        FX(spawning_reports_the_pid_or_the_errno),
        FX(launch_without_spawner_spawns_here),
        FX(detach_while_spawning_leaves_the_child_recorded),
        FX(running_stop_uses_the_configured_signal),
        FX(running_stop_wakes_a_stopped_process),
        FX(exit_kills_what_the_leader_left_in_its_group),
        FX(stopping_kills_after_the_grace_period),
        FX(stopping_grace_event_sends_sigkill),
        FX(stopping_refuses_spawn_watch_release_and_spurious_exit),
        FX(stopping_stop_again_upgrades_the_reason_only),
#define FC(t) cmocka_unit_test_setup_teardown(t, fixture_setup_cgroup, fixture_teardown)
#define FS(t) cmocka_unit_test_setup_teardown(t, fixture_setup_subreaper, fixture_teardown)
        FC(cgroup_child_is_born_in_its_service_cgroup),
        FC(cgroup_that_cannot_be_made_fails_the_launch_on_either_path),
        FC(stop_reaches_what_left_the_group),
        FS(stop_reaches_what_left_the_group),
        FC(spawn_into_a_killed_busy_cgroup_lives),
        FC(death_takes_what_left_the_group),
        FS(death_takes_what_left_the_group),
        FC(draining_kills_what_ignores_the_stop_after_the_grace),
        FS(draining_kills_what_ignores_the_stop_after_the_grace),
        FC(stopping_grace_kills_what_left_the_group_too),
        FS(stopping_grace_kills_what_left_the_group_too),
        FC(draining_refuses_spawn_watch_release_and_ignores_exited),
        FS(draining_refuses_spawn_watch_release_and_ignores_exited),
        FC(draining_stop_changes_the_reported_reason),
        FS(draining_stop_changes_the_reported_reason),
        FC(draining_gives_up_on_what_survives_sigkill),
        FS(draining_gives_up_on_what_survives_sigkill),
        FX(empty_is_ignored_outside_draining),
        FC(empty_is_ignored_outside_draining),
        FX(without_containment_the_exit_is_reported_at_once),
#undef FS
#undef FC
        FX(down_adopt_takes_over_a_recorded_process),
        FX(external_stop_never_signals),
        FX(external_release_stops_watching),
        FX(external_exit_is_reported_without_a_code),
        FX(spawn_uses_env_cwd_and_output_log),
        FX(launch_on_the_spawner_uses_the_env),
        FX(init_with_unopenable_log_fails_cleanly),
        cmocka_unit_test(procstat_start_ticks_of_self_is_stable),
        cmocka_unit_test(procstat_start_ticks_of_missing_pid_is_zero),
        cmocka_unit_test(procstat_start_ticks_of_zombie_is_zero),
        cmocka_unit_test(procstat_start_ticks_survives_parens_in_name),
#define LT(t) cmocka_unit_test_teardown(t, leftovers_teardown)
        LT(leftover_group_is_stopped_with_sigterm),
        LT(leftover_member_ignoring_term_is_sigkilled),
        LT(leftover_ignoring_term_is_killed_after_the_grace),
        LT(leftover_stopped_group_is_woken),
        LT(leftover_with_other_ticks_is_left_alone),
        LT(leftover_dead_leader_without_ticks_leaves_the_group),
        LT(leftover_of_a_removed_service_is_stopped_and_forgotten),
#undef LT
    };
#undef FX
    return cmocka_run_group_tests(tests, NULL, NULL);
}
