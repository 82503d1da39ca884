/* Containment (recover/containment.c) and the pieces under it: the cgroup
 * v2 writes of lib/cgroup.c on a real cgroup of this host, the subreaper's
 * bookkeeping (lib/reaper.c) with real orphans, the choice of mode, the
 * limits a service's cgroup gets, and the shutdown sweep. Tests that need a
 * writable cgroup v2 tree skip where there is none. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config/config-t.h"
#include "lib/cgroup.h"
#include "lib/procstat.h"
#include "lib/reaper.h"
#include "lib/spawn.h"
#include "loopwait.h"
#include "recover/containment.h"

#define CHILD_LIFE_S 20 /* children the tests fork end themselves even if a test fails to */

/* ---- helpers ---- */

/* A cgroup below this process's own, made fresh, or skip. */
static void cgroup_make(char *dir, size_t len, const char *name)
{
    char own[PATH_MAX];
    if (cgroup_of_pid(getpid(), own, sizeof own) < 0)
        skip();
    if (snprintf(dir, len, "%s/%s.%d", own, name, (int)getpid()) >= (int)len ||
        cgroup_mkdir(dir) < 0)
        skip();
}

/* A child that pauses (ignoring SIGTERM and in a session of its own if
 * told), in cgroup dir if given. */
static pid_t fork_pauser(const char *dir, bool ignore_term)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        alarm(CHILD_LIFE_S);
        if (ignore_term && (signal(SIGTERM, SIG_IGN) == SIG_ERR || setsid() < 0))
            _exit(96);
        if (dir && cgroup_attach(dir, 0) < 0)
            _exit(97);
        if (write(p[1], "r", 1) != 1)
            _exit(98);
        for (;;)
            pause();
    }
    close(p[1]);
    char c;
    assert_int_equal(read(p[0], &c, 1), 1);
    close(p[0]);
    return pid;
}

/* The signal that ended child pid (reaped here), or 0 for an exit. */
static int ended_by(pid_t pid)
{
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFSIGNALED(st) ? WTERMSIG(st) : 0;
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    remove(path);
    return 0;
}

/* ---- lib/cgroup: writes on a real cgroup ---- */

static void cgroup_populated_follows_its_members(void **state)
{
    char dir[PATH_MAX];
    cgroup_make(dir, sizeof dir, "test_containment_pop");
    assert_int_equal(cgroup_populated(dir), 0);
    pid_t pid = fork_pauser(dir, false);
    assert_int_equal(cgroup_populated(dir), 1);
    char got[PATH_MAX];
    assert_int_equal(cgroup_of_pid(pid, got, sizeof got), 0);
    assert_string_equal(got, dir);
    kill(pid, SIGKILL);
    /* A zombie does not count: empty before the reap. */
    siginfo_t si;
    assert_int_equal(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
    assert_int_equal(cgroup_populated(dir), 0);
    assert_int_equal(ended_by(pid), SIGKILL);
    assert_int_equal(rmdir(dir), 0);
    assert_int_equal(cgroup_populated(dir), -ENOENT);
}

/* cgroup_signal reaches every member but the group it is told to skip;
 * cgroup_kill ends the rest. */
static void cgroup_signal_skips_a_group_and_kill_ends_all(void **state)
{
    char dir[PATH_MAX];
    cgroup_make(dir, sizeof dir, "test_containment_sig");
    pid_t a = fork_pauser(dir, false), b = fork_pauser(dir, true), c = fork_pauser(dir, false);
    pid_t a_group = getpgid(a);
    /* a and c share this test's group: skipping it spares both; b has its own. */
    assert_int_equal(cgroup_signal(dir, SIGTERM, a_group), 1); /* b, which ignores it */
    assert_int_equal(kill(a, 0), 0);
    assert_int_equal(cgroup_signal(dir, SIGTERM, 0), 3);
    assert_int_equal(ended_by(a), SIGTERM);
    assert_int_equal(ended_by(c), SIGTERM);
    assert_int_equal(cgroup_populated(dir), 1); /* b ignored it */
    assert_int_equal(cgroup_kill(dir), 0);
    assert_int_equal(ended_by(b), SIGKILL);
    assert_int_equal(cgroup_populated(dir), 0);
    assert_int_equal(cgroup_signal(dir, SIGTERM, 0), 0);
    assert_int_equal(rmdir(dir), 0);
    assert_int_equal(cgroup_signal(dir, SIGTERM, 0), -ENOENT);
    assert_int_equal(cgroup_kill(dir), -ENOENT);
}

static void cgroup_controllers_read_and_spell(void **state)
{
    char dir[PATH_MAX], text[64];
    unsigned mask = 99;
    cgroup_make(dir, sizeof dir, "test_containment_ctl");
    assert_int_equal(cgroup_read_controllers(dir, "cgroup.controllers", &mask), 0);
    assert_true((mask & ~(unsigned)(CGROUP_MEMORY | CGROUP_PIDS | CGROUP_CPU)) == 0);
    assert_int_equal(cgroup_read_controllers(dir, "no.such.file", &mask), -ENOENT);
    assert_int_equal(cgroup_write(dir, "no.such.file", "1"), -ENOENT);
    rmdir(dir);
    assert_string_equal(cgroup_controllers_text(0, text, sizeof text), "");
    assert_string_equal(cgroup_controllers_text(CGROUP_MEMORY | CGROUP_CPU, text, sizeof text),
                        "memory cpu");
    assert_string_equal(cgroup_controllers_text(CGROUP_MEMORY | CGROUP_PIDS | CGROUP_CPU, text,
                                                sizeof text),
                        "memory pids cpu");
}

/* ---- lib/reaper: own children and adopted orphans ---- */

/* A child that forks a grandchild and exits at once: the grandchild is an
 * orphan, adopted by this (subreaper) process; it exits when told by
 * SIGTERM, or lives until killed. Its pid. */
static pid_t make_orphan(void)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t mid = fork();
    assert_true(mid >= 0);
    if (mid == 0) {
        pid_t g = fork();
        if (g == 0) {
            alarm(CHILD_LIFE_S);
            for (;;)
                pause();
        }
        if (write(p[1], &g, sizeof g) != sizeof g)
            _exit(99);
        _exit(0);
    }
    close(p[1]);
    pid_t g = 0;
    assert_int_equal(read(p[0], &g, sizeof g), sizeof g);
    close(p[0]);
    assert_int_equal(waitpid(mid, NULL, 0), mid);
    return g;
}

static bool pid_in(const struct pid_list *l, pid_t pid)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i] == pid)
            return true;
    return false;
}

/* reaper_reap takes the exited orphans and never an own child, zombie or
 * not; reaper_children lists both. */
static void reaper_reaps_orphans_and_leaves_own_children(void **state)
{
    assert_int_equal(reaper_enable(), 0);
    assert_true(reaper_enabled());
    pid_t orphan = make_orphan();
    char *argv[] = {"/bin/true", NULL};
    struct spawn_opts o = {.argv = argv, .out_fd = -1};
    pid_t own = 0;
    int pidfd = -1;
    assert_int_equal(spawn_start(&o, &own, &pidfd), 0);
    assert_true(reaper_is_own(own));
    assert_false(reaper_is_own(orphan));
    struct pid_list kids = {0};
    assert_int_equal(reaper_children(getpid(), &kids), 0);
    assert_true(pid_in(&kids, orphan));
    assert_true(pid_in(&kids, own));
    free(kids.v);
    /* Both exit; only the orphan is reaped here. */
    siginfo_t si;
    assert_int_equal(waitid(P_PID, (id_t)own, &si, WEXITED | WNOWAIT), 0);
    kill(orphan, SIGKILL);
    assert_int_equal(waitid(P_PID, (id_t)orphan, &si, WEXITED | WNOWAIT), 0);
    assert_int_equal(reaper_reap(), 1);
    assert_int_equal(waitpid(orphan, NULL, WNOHANG), -1); /* gone: reaped */
    assert_int_equal(errno, ECHILD);
    assert_true(reaper_is_own(own)); /* still ours to reap, a zombie */
    assert_int_equal(waitpid(own, NULL, 0), own);
    close(pidfd);
    /* Its owner reaped it: the entry goes. */
    assert_int_equal(reaper_reap(), 0);
    assert_false(reaper_is_own(own));
    assert_int_equal(reaper_children(0x3fffffff, &kids), -ENOENT);
}

/* ---- the choice of mode ---- */

static void mode_names_parse_back(void **state)
{
    for (int m = 0; m < CONTAINMENT__COUNT; m++)
        assert_int_equal(containment_mode_parse(containment_mode_name(m)), m);
    assert_int_equal(containment_mode_parse("cgroups"), -1);
    assert_int_equal(containment_mode_parse(""), -1);
    assert_string_equal(containment_mode_name(CONTAINMENT__COUNT), "unknown");
}

struct box_fx {
    char dir[64];         /* the state_dir */
    uv_loop_t loop;       /* the test's own */
    struct containment c; /* under test */
    bool up;              /* c is set up */
};

static int box_setup(void **state)
{
    struct box_fx *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/test_containment.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    *state = fx;
    return 0;
}

static int box_teardown(void **state)
{
    struct box_fx *fx = *state;
    if (fx->up)
        containment_close(&fx->c);
    assert_int_equal(uv_run(&fx->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    nftw(fx->dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

static void box_init(struct box_fx *fx, enum containment_mode want)
{
    char err[512] = "";
    int r = containment_init(&fx->c, &fx->loop, want, fx->dir, err, sizeof err);
    if (r == -ENOTSUP)
        skip(); /* no cgroup for recoverd here */
    if (r < 0)
        fail_msg("containment_init: %s", err);
    fx->up = true;
}

/* cgroup mode: recoverd's subtree under its own cgroup, named by a tag
 * that is the same for the same state_dir, and gone again at close. */
static void cgroup_mode_makes_a_subtree_per_state_dir(void **state)
{
    struct box_fx *fx = *state;
    box_init(fx, CONTAINMENT_CGROUP);
    char own[PATH_MAX], want[PATH_MAX + 32];
    assert_int_equal(fx->c.mode, CONTAINMENT_CGROUP);
    assert_int_equal(cgroup_of_pid(getpid(), own, sizeof own), 0);
    if (fx->c.self) /* recoverd moved itself into a leaf to hand down controllers */
        assert_true(strncmp(own, fx->c.root, strlen(fx->c.root)) == 0);
    else {
        snprintf(want, sizeof want, "%s/recoverd.%s", own, fx->c.tag);
        assert_string_equal(fx->c.root, want);
    }
    assert_int_equal(strlen(fx->c.tag), 16);
    struct stat st;
    assert_int_equal(stat(fx->c.root, &st), 0);
    /* The same state_dir, the same tag; another, another. */
    struct containment again;
    char err[256];
    assert_int_equal(containment_init(&again, &fx->loop, CONTAINMENT_SUBREAPER, fx->dir, err,
                                      sizeof err),
                     0);
    assert_string_equal(again.tag, fx->c.tag);
    containment_close(&again);
    /* Its SIGCHLD handle is closed by the loop's next turn; that turn must
     * come before `again` leaves scope (the release build aborted in the
     * teardown's run, on the dead stack slot's flags). */
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    char root[PATH_MAX];
    snprintf(root, sizeof root, "%s", fx->c.root);
    containment_close(&fx->c);
    fx->up = false;
    if (!fx->c.self)
        assert_int_equal(stat(root, &st), -1);
}

/* subreaper mode, asked for: this process becomes a child subreaper. */
static void subreaper_mode_says_why_and_adopts_orphans(void **state)
{
    struct box_fx *fx = *state;
    box_init(fx, CONTAINMENT_SUBREAPER);
    assert_int_equal(fx->c.mode, CONTAINMENT_SUBREAPER);
    assert_null(fx->c.root);
    assert_string_equal(fx->c.why, "subreaper mode asked for");
    int on = 0;
    assert_int_equal(prctl(PR_GET_CHILD_SUBREAPER, &on, 0, 0, 0), 0);
    assert_int_equal(on, 1);
    /* An exited orphan is reaped from the loop (SIGCHLD). */
    pid_t orphan = make_orphan();
    kill(orphan, SIGKILL);
    siginfo_t si;
    loopwait_until(&fx->loop, waitid(P_PID, (id_t)orphan, &si, WEXITED | WNOHANG | WNOWAIT) == -1 &&
                                  errno == ECHILD);
}

/* ---- limits ---- */

/* A containment whose root is a plain directory standing in for a cgroup
 * with every controller: what enclosure_prepare writes is read back. */
static void closed_cb(void *ctx)
{
    *(bool *)ctx = true;
}

static void limits_are_written_into_the_service_cgroup(void **state)
{
    struct box_fx *fx = *state;
    char root[128], svc[192], path[256], buf[64];
    snprintf(root, sizeof root, "%s/fake", fx->dir);
    assert_int_equal(mkdir(root, 0755), 0);
    snprintf(svc, sizeof svc, "%s/web.service", root);
    assert_int_equal(mkdir(svc, 0755), 0);
    static const char *const files[] = {"memory.max", "pids.max", "cpu.max"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", svc, files[i]);
        int fd = open(path, O_CREAT | O_WRONLY, 0644);
        assert_true(fd >= 0);
        close(fd);
    }
    struct containment c = {.loop = &fx->loop,
                            .mode = CONTAINMENT_CGROUP,
                            .root = root,
                            .controllers = CGROUP_MEMORY | CGROUP_PIDS | CGROUP_CPU,
                            .tag = "0123456789abcdef"};
    struct enclosure e = {0};
    assert_int_equal(enclosure_init(&e, &c, "web"), 0);
    assert_string_equal(e.cgroup, svc);
    assert_string_equal(e.mark, "RECOVERD_MARK=0123456789abcdef:web");
    struct cgroup_cfg lim = {.memory_max = 256u << 20,
                             .pids_max = 100,
                             .cpu_quota_us = 50000,
                             .cpu_period_us = 100000};
    struct cgroup_spec spec;
    struct cgroup_built built;
    /* The first prepare renews the cgroup: here the stand-in holds files
     * (a real cgroup's are the kernel's), so it cannot go and the child
     * is told to join it late. */
    assert_string_equal(enclosure_prepare(&e, &lim, &spec), svc);
    assert_true(spec.renew);
    cgroup_build(svc, &spec, &built);
    assert_int_equal(enclosure_prepared(&e, &spec, &built), 0);
    assert_true(built.late);
    assert_true(e.killed); /* so the next spawn tries to renew it again */
    static const char *const want[] = {"268435456", "100", "50000 100000"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", svc, files[i]);
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        buf[fread(buf, 1, sizeof buf - 1, f)] = '\0';
        fclose(f);
        assert_string_equal(buf, want[i]);
    }
    /* "max" quota; a controller the host lacks is left alone. (A plain
     * file keeps its old tail: empty the one written again.) */
    snprintf(path, sizeof path, "%s/cpu.max", svc);
    assert_int_equal(truncate(path, 0), 0);
    lim = (struct cgroup_cfg){.cpu_quota_us = UINT64_MAX, .cpu_period_us = 20000, .pids_max = 7};
    c.controllers = CGROUP_CPU;
    assert_non_null(enclosure_prepare(&e, &lim, &spec));
    cgroup_build(svc, &spec, &built);
    assert_int_equal(enclosure_prepared(&e, &spec, &built), 0);
    snprintf(path, sizeof path, "%s/cpu.max", svc);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    buf[fread(buf, 1, sizeof buf - 1, f)] = '\0';
    fclose(f);
    assert_string_equal(buf, "max 20000");
    snprintf(path, sizeof path, "%s/pids.max", svc);
    f = fopen(path, "r");
    assert_non_null(f);
    buf[fread(buf, 1, sizeof buf - 1, f)] = '\0';
    fclose(f);
    assert_string_equal(buf, "100"); /* untouched */
    /* The cgroup's rmdir runs on libuv's pool (here it finds the stand-in's
     * files and leaves it): closed once that is done. */
    bool closed = false;
    e.closed = closed_cb;
    e.ctx = &closed;
    assert_int_equal(enclosure_close(&e), 1);
    assert_false(closed);
    while (!closed)
        uv_run(&fx->loop, UV_RUN_ONCE);
    assert_null(e.cgroup);
}

static void limits_unmet_name_the_missing_controllers(void **state)
{
    char buf[256];
    struct containment c = {.mode = CONTAINMENT_CGROUP,
                            .root = "/cg/r",
                            .controllers = CGROUP_PIDS};
    struct cgroup_cfg none = {0}, lim = {.memory_max = 1, .pids_max = 2, .cpu_period_us = 100000};
    assert_null(containment_limits_unmet(&c, &none, buf, sizeof buf));
    const char *why = containment_limits_unmet(&c, &lim, buf, sizeof buf);
    assert_non_null(why);
    assert_non_null(strstr(why, "memory cpu"));
    assert_null(strstr(why, "pids"));
    assert_non_null(strstr(why, "/cg/r"));
    c.controllers = CGROUP_MEMORY | CGROUP_PIDS | CGROUP_CPU;
    assert_null(containment_limits_unmet(&c, &lim, buf, sizeof buf));
    c.mode = CONTAINMENT_SUBREAPER;
    why = containment_limits_unmet(&c, &lim, buf, sizeof buf);
    assert_non_null(why);
    assert_non_null(strstr(why, "subreaper"));
    assert_non_null(strstr(why, "memory pids cpu"));
}

/* ---- the shutdown sweep ---- */

static bool swept;

static void swept_cb(void *ctx)
{
    swept = true;
}

/* subreaper: at shutdown an orphan no service claimed (no mark) is stopped
 * with the signal, and one ignoring it gets SIGKILL after the grace. */
static void shutdown_sweep_stops_unclaimed_orphans(void **state)
{
    struct box_fx *fx = *state;
    box_init(fx, CONTAINMENT_SUBREAPER);
    pid_t plain = make_orphan();
    /* One that ignores SIGTERM: an orphan whose grandparent set it up. */
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t mid = fork();
    if (mid == 0) {
        pid_t g = fork();
        if (g == 0) {
            alarm(CHILD_LIFE_S);
            signal(SIGTERM, SIG_IGN);
            if (write(p[1], "r", 1) != 1)
                _exit(98);
            for (;;)
                pause();
        }
        _exit(0);
    }
    char c;
    assert_int_equal(read(p[0], &c, 1), 1);
    close(p[0]);
    close(p[1]);
    assert_int_equal(waitpid(mid, NULL, 0), mid);
    swept = false;
    uv_update_time(&fx->loop);
    assert_int_equal(containment_sweep(&fx->c, SIGTERM, 200, swept_cb, NULL), 0);
    loopwait_until(&fx->loop, swept);
    /* Both gone (and reaped by the subreaper's own SIGCHLD watch). */
    loopwait_until(&fx->loop, procstat_start_ticks(plain) == 0);
    struct pid_list kids = {0};
    assert_int_equal(reaper_children(getpid(), &kids), 0);
    for (size_t i = 0; i < kids.n; i++)
        assert_int_equal(procstat_start_ticks(kids.v[i]), 0); /* nothing alive is left */
    free(kids.v);
    /* Nothing left: nothing to do, no call. */
    swept = false;
    assert_int_equal(containment_sweep(&fx->c, SIGTERM, 200, swept_cb, NULL), 1);
    assert_false(swept);
}

/* cgroup mode has nothing to sweep: every service's cgroup was drained. */
static void shutdown_sweep_in_cgroup_mode_is_nothing(void **state)
{
    struct box_fx *fx = *state;
    box_init(fx, CONTAINMENT_CGROUP);
    assert_int_equal(containment_sweep(&fx->c, SIGTERM, 200, swept_cb, NULL), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cgroup_populated_follows_its_members),
        cmocka_unit_test(cgroup_signal_skips_a_group_and_kill_ends_all),
        cmocka_unit_test(cgroup_controllers_read_and_spell),
        cmocka_unit_test(mode_names_parse_back),
        cmocka_unit_test_setup_teardown(cgroup_mode_makes_a_subtree_per_state_dir, box_setup,
                                        box_teardown),
        cmocka_unit_test_setup_teardown(limits_are_written_into_the_service_cgroup, box_setup,
                                        box_teardown),
        cmocka_unit_test(limits_unmet_name_the_missing_controllers),
        cmocka_unit_test_setup_teardown(shutdown_sweep_in_cgroup_mode_is_nothing, box_setup,
                                        box_teardown),
        /* From here on this process is a subreaper. */
        cmocka_unit_test(reaper_reaps_orphans_and_leaves_own_children),
        cmocka_unit_test_setup_teardown(subreaper_mode_says_why_and_adopts_orphans, box_setup,
                                        box_teardown),
        cmocka_unit_test_setup_teardown(shutdown_sweep_stops_unclaimed_orphans, box_setup,
                                        box_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
