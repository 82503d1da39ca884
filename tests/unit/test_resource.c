/* The resource detector against real child processes, the host's /proc and
 * the root file system; and the cgroup reader. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config-t.h"
#include "detect/check-t.h"
#include "detect/kinds.h"
#include "detect/resource.h"
#include "lib/cgroup.h"
#include "lib/clock.h"
#include "loopwait.h"

/* ---- the fake of detect/check.c ---- */

#define GOT_MAX 64
static struct observation got[GOT_MAX]; /* reports in arrival order */
static int n_got;
static void (*report_hook)(struct check *c); /* run inside check_report */

void check_report(struct check *c, struct observation *obs)
{
    assert_true(n_got < GOT_MAX);
    got[n_got++] = *obs;
    if (report_hook)
        report_hook(c);
}

/* ---- fixture ---- */

#define CHILD_MB 64 /* what the child allocates and touches */

struct fx {
    uv_loop_t loop;
    struct check_set set; /* only pid is read */
    struct check c;
    struct check_cfg cfg;
    struct resource_params rp; /* strings borrowed from the test */
    char *disk[3];             /* rp.disk */
    pid_t child[2];            /* children to kill at the end; 0: none */
    int n_child;               /* used slots of child */
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(resource_detector.init(&f->loop), 0);
    f->set.service = "svc";
    f->cfg.name = "resource";
    f->cfg.ops = &resource_detector;
    f->cfg.params = &f->rp;
    f->cfg.timeout_ms = 1000;
    f->cfg.severity = -1;
    f->c.cfg = &f->cfg;
    f->c.ops = &resource_detector;
    f->c.set = &f->set;
    n_got = 0;
    report_hook = NULL;
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    resource_detector.release(&f->c);
    assert_null(f->c.priv);
    resource_detector.shutdown();
    for (int i = 0; i < f->n_child; i++) {
        kill(f->child[i], SIGKILL);
        waitpid(f->child[i], NULL, 0);
    }
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

enum child_job { CHILD_ALLOC, CHILD_FDS, CHILD_SPIN };

/* A child that allocates and touches CHILD_MB, or opens 50 fds, or spins;
 * it says so on a pipe and then waits to be killed. It becomes the service's
 * process. */
static void fx_child(struct fx *f, enum child_job job)
{
    int p[2];
    char ok;
    pid_t pid;
    assert_true(f->n_child < 2);
    assert_int_equal(pipe(p), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        if (job == CHILD_ALLOC) {
            size_t len = (size_t)CHILD_MB << 20;
            char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (m == MAP_FAILED)
                _exit(1);
            memset(m, 0x5a, len);
        } else if (job == CHILD_FDS) {
            for (int i = 0; i < 50; i++)
                if (open("/dev/null", O_RDONLY) < 0)
                    _exit(1);
        }
        if (write(p[1], "k", 1) != 1)
            _exit(1);
        for (volatile unsigned long n = 0; job == CHILD_SPIN; n++)
            ;
        for (;;)
            pause();
    }
    f->child[f->n_child++] = pid;
    close(p[1]);
    assert_int_equal(read(p[0], &ok, 1), 1);
    close(p[0]);
    f->set.pid = pid;
}

/* One probe; asserts it did not report from inside start. */
static const struct observation *fx_probe(struct fx *f)
{
    int before = n_got;
    assert_int_equal(resource_detector.start(&f->c), 0);
    assert_int_equal(n_got, before);
    uv_run(&f->loop, UV_RUN_DEFAULT); /* the report timer is the only handle */
    assert_int_equal(n_got, before + 1);
    return &got[before];
}

/* Let ms pass between two probes of what the detector measures over time
 * (CPU ticks, how long a breach has lasted): a span to measure, which a
 * busy host only makes longer, never a wait for an event. */
static void time_passes(uint64_t ms)
{
    loopwait_nap(ms);
}

static int fx_validate(struct fx *f, char *why, size_t len)
{
    why[0] = '\0';
    return resource_detector.validate(&f->rp, why, len);
}

/* ---- per service ---- */

static void resource_rss_over_threshold_fails_at_once_without_for(void **state)
{
    struct fx *f = *state;
    fx_child(f, CHILD_ALLOC);
    f->rp.rss = "32MiB";
    const struct observation *o = fx_probe(f);
    assert_false(o->ok);
    assert_int_equal(o->type, FAULT_RESOURCE);
    assert_int_equal(o->severity, SEVERITY_MEDIUM);
    assert_false(o->host_wide);
    assert_int_equal(strncmp(o->reason, "rss ", 4), 0);
    assert_non_null(strstr(o->reason, " MiB > 32 MiB"));
    assert_null(strstr(o->reason, " for "));
}

static void resource_rss_must_breach_for_the_for_duration(void **state)
{
    struct fx *f = *state;
    fx_child(f, CHILD_ALLOC);
    f->rp.rss = "32MiB";
    f->rp.for_ms = 300;
    uint64_t t0 = clock_mono_us(); /* the breach begins after this */
    /* Over, not for long enough: neither a pass nor a failure. */
    const struct observation *o = fx_probe(f);
    assert_true(o->inconclusive);
    assert_false(o->ok);
    assert_non_null(strstr(o->reason, "> 32 MiB for "));
    assert_non_null(strstr(o->reason, " of 300 ms"));
    o = fx_probe(f);
    if (clock_mono_us() - t0 < 300000) /* a busy host may have taken longer */
        assert_true(o->inconclusive);
    /* Probe until it fails: that must be, and not before 300 ms. */
    do {
        time_passes(50);
        o = fx_probe(f);
    } while (o->inconclusive && clock_mono_us() - t0 < LOOPWAIT_MS * 1000ull);
    assert_false(o->ok);
    assert_true(clock_mono_us() - t0 >= 300000);
    assert_non_null(strstr(o->reason, "> 32 MiB for "));
    assert_null(strstr(o->reason, " of "));
    assert_false(fx_probe(f)->ok); /* and stays failing while it lasts */
}

static void resource_breach_that_ends_restarts_the_for_clock(void **state)
{
    struct fx *f = *state;
    fx_child(f, CHILD_ALLOC);
    f->rp.rss = "32MiB";
    f->rp.for_ms = 200;
    assert_true(fx_probe(f)->inconclusive);
    f->rp.rss = "64GiB";                    /* the same limit slot stops breaching */
    assert_true(fx_probe(f)->inconclusive); /* under again, settling for `for` */
    time_passes(250); /* longer than for: a clock not restarted would fail below */
    const struct observation *o = fx_probe(f);
    assert_true(o->ok && !o->inconclusive); /* under for longer than `for`: a pass */
    f->rp.rss = "32MiB";
    o = fx_probe(f);
    assert_true(o->inconclusive && !o->ok); /* a new breach: the clock starts again */
}

static void resource_rss_under_threshold_passes_with_its_value(void **state)
{
    struct fx *f = *state;
    fx_child(f, CHILD_ALLOC);
    f->rp.rss = "64GiB";
    const struct observation *o = fx_probe(f);
    assert_true(o->ok);
    assert_int_equal(strncmp(o->reason, "rss ", 4), 0);
    assert_non_null(strstr(o->reason, " MiB"));
}

static void resource_fds_over_threshold_fails(void **state)
{
    struct fx *f = *state;
    fx_child(f, CHILD_FDS);
    f->rp.fds = "40";
    const struct observation *o = fx_probe(f);
    assert_false(o->ok);
    assert_int_equal(o->type, FAULT_RESOURCE);
    assert_int_equal(strncmp(o->reason, "fds ", 4), 0);
    assert_non_null(strstr(o->reason, " > 40"));
    f->rp.fds = "1000";
    assert_true(fx_probe(f)->ok);
}

static void resource_cpu_needs_two_samples(void **state)
{
    struct fx *f = *state;
    fx_child(f, CHILD_SPIN);
    f->rp.cpu = "5%";
    assert_true(fx_probe(f)->ok); /* no previous sample: no value */
    time_passes(300);
    const struct observation *o = fx_probe(f);
    assert_false(o->ok);
    assert_int_equal(strncmp(o->reason, "cpu ", 4), 0);
    assert_non_null(strstr(o->reason, "% > 5%"));
}

static void resource_new_process_forgets_the_old_cpu_sample(void **state)
{
    struct fx *f = *state;
    fx_child(f, CHILD_FDS); /* idle: a sample of about 0 ticks */
    f->rp.cpu = "5%";
    assert_true(fx_probe(f)->ok);
    fx_child(f, CHILD_SPIN); /* a restart: another process, busy since */
    time_passes(300);
    assert_true(fx_probe(f)->ok); /* its first sample, not a delta against the old one */
    time_passes(300);
    assert_false(fx_probe(f)->ok);
}

static void resource_service_down_passes(void **state)
{
    struct fx *f = *state;
    f->set.pid = 0;
    f->rp.rss = "1";
    f->rp.fds = "1";
    const struct observation *o = fx_probe(f);
    assert_true(o->ok);
    assert_string_equal(o->reason, "not running: nothing to measure");
}

/* ---- host ---- */

static void resource_host_memory_over_threshold_is_host_wide(void **state)
{
    struct fx *f = *state;
    f->set.pid = 0; /* host metrics need no process */
    f->rp.memory = "1%";
    const struct observation *o = fx_probe(f);
    assert_false(o->ok);
    assert_true(o->host_wide);
    assert_int_equal(o->type, FAULT_RESOURCE);
    assert_int_equal(o->severity, SEVERITY_HIGH);
    assert_int_equal(strncmp(o->reason, "memory ", 7), 0);
    assert_non_null(strstr(o->reason, "% > 1%"));
    f->rp.memory = "100%";
    assert_true(fx_probe(f)->ok);
}

static void resource_disk_threshold_on_root(void **state)
{
    struct fx *f = *state;
    f->disk[0] = "/=1%";
    f->rp.disk = f->disk;
    const struct observation *o = fx_probe(f);
    assert_false(o->ok);
    assert_true(o->host_wide);
    assert_int_equal(o->severity, SEVERITY_HIGH);
    assert_int_equal(strncmp(o->reason, "disk / ", 7), 0);
    f->disk[0] = "/=100%";
    o = fx_probe(f);
    assert_true(o->ok);
    assert_int_equal(strncmp(o->reason, "disk / ", 7), 0);
}

static void resource_host_cpu_needs_two_samples(void **state)
{
    struct fx *f = *state;
    fx_child(f, CHILD_SPIN);
    f->rp.host_cpu = "0.01%";
    assert_true(fx_probe(f)->ok);
    time_passes(300);
    const struct observation *o = fx_probe(f);
    assert_false(o->ok);
    assert_true(o->host_wide);
    assert_int_equal(o->severity, SEVERITY_MEDIUM);
    assert_int_equal(strncmp(o->reason, "host_cpu ", 9), 0);
    assert_non_null(strstr(o->reason, "% > 0.01%"));
}

static void resource_host_metric_is_named_before_service_metric(void **state)
{
    struct fx *f = *state;
    fx_child(f, CHILD_ALLOC);
    f->rp.rss = "1MiB";
    f->rp.memory = "1%";
    const struct observation *o = fx_probe(f);
    assert_false(o->ok);
    assert_true(o->host_wide);
    assert_int_equal(strncmp(o->reason, "memory ", 7), 0);
    assert_non_null(strstr(o->reason, "(+1 more)"));
}

/* ---- lifecycle ---- */

static void resource_release_while_pending_reports_nothing(void **state)
{
    struct fx *f = *state;
    f->rp.memory = "1%";
    assert_int_equal(resource_detector.start(&f->c), 0);
    assert_int_equal(resource_detector.start(&f->c), -EBUSY);
    resource_detector.release(&f->c);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(n_got, 0);
}

static void resource_cancel_then_start_again_reports_once(void **state)
{
    struct fx *f = *state;
    f->rp.memory = "1%";
    assert_int_equal(resource_detector.start(&f->c), 0);
    resource_detector.cancel(&f->c);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(n_got, 0);
    assert_false(fx_probe(f)->ok);
    assert_int_equal(n_got, 1);
}

static void restart_hook(struct check *c)
{
    if (n_got < 3)
        assert_int_equal(resource_detector.start(c), 0);
}

static void resource_start_from_inside_report_runs_next_probe(void **state)
{
    struct fx *f = *state;
    report_hook = restart_hook;
    f->rp.memory = "1%";
    assert_int_equal(resource_detector.start(&f->c), 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(n_got, 3);
}

/* ---- validate ---- */

static void resource_validate_accepts_each_threshold(void **state)
{
    struct fx *f = *state;
    char why[256];
    f->rp.rss = "200MiB";
    f->rp.cpu = "250%";
    f->rp.fds = "1000";
    f->rp.host_cpu = "95";
    f->rp.memory = "90%";
    f->disk[0] = "/=90%";
    f->disk[1] = "/var=95";
    f->rp.disk = f->disk;
    assert_int_equal(fx_validate(f, why, sizeof why), 0);
}

static void resource_validate_rejects_bad_percent(void **state)
{
    struct fx *f = *state;
    char why[256];
    f->rp.memory = "abc%";
    assert_int_equal(fx_validate(f, why, sizeof why), -EINVAL);
    assert_non_null(strstr(why, "memory"));
    assert_non_null(strstr(why, "abc%"));
    f->rp.memory = "101%";
    assert_int_equal(fx_validate(f, why, sizeof why), -EINVAL);
    f->rp.memory = "0%";
    assert_int_equal(fx_validate(f, why, sizeof why), -EINVAL);
    f->rp.memory = "90%%";
    assert_int_equal(fx_validate(f, why, sizeof why), -EINVAL);
}

static void resource_validate_rejects_no_threshold(void **state)
{
    struct fx *f = *state;
    char why[256];
    f->rp.for_ms = 30000;
    assert_int_equal(fx_validate(f, why, sizeof why), -EINVAL);
    assert_non_null(strstr(why, "at least one threshold"));
}

static void resource_validate_rejects_negative_or_unknown_size(void **state)
{
    struct fx *f = *state;
    char why[256];
    const char *bad[] = {"-5MiB", "5XB", "MiB", "inf", "0x10", "0", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        f->rp.rss = (char *)bad[i];
        assert_int_equal(fx_validate(f, why, sizeof why), -EINVAL);
        assert_non_null(strstr(why, "rss"));
    }
}

static void resource_validate_rejects_bad_disk_and_fds(void **state)
{
    struct fx *f = *state;
    char why[256];
    const char *bad[] = {"var=90%", "/var", "/var=", "/var=abc"};
    f->rp.disk = f->disk;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        f->disk[0] = (char *)bad[i];
        assert_int_equal(fx_validate(f, why, sizeof why), -EINVAL);
        assert_non_null(strstr(why, "disk"));
    }
    f->rp.disk = NULL;
    f->rp.fds = "1.5";
    assert_int_equal(fx_validate(f, why, sizeof why), -EINVAL);
    f->rp.fds = "-3";
    assert_int_equal(fx_validate(f, why, sizeof why), -EINVAL);
}

static void resource_size_units(void **state)
{
    double b;
    assert_int_equal(resource_size_parse("200MiB", &b), 0);
    assert_true(b == 200.0 * 1048576);
    assert_int_equal(resource_size_parse("1G", &b), 0);
    assert_true(b == 1073741824.0);
    assert_int_equal(resource_size_parse("1.5GB", &b), 0);
    assert_true(b == 1.5e9);
    assert_int_equal(resource_size_parse("512", &b), 0);
    assert_true(b == 512.0);
    assert_int_equal(resource_size_parse("4 KiB", &b), 0);
    assert_true(b == 4096.0);
    assert_int_equal(resource_size_parse("10kB", &b), 0);
    assert_true(b == 10000.0);
    assert_int_equal(resource_size_parse("1Q", &b), -EINVAL);
}

/* ---- cgroup ---- */

static void cgroup_of_self_is_a_directory(void **state)
{
    char dir[4096];
    struct stat st;
    assert_int_equal(cgroup_of_pid(getpid(), dir, sizeof dir), 0);
    assert_int_equal(dir[0], '/');
    assert_int_equal(stat(dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    /* Every v2 cgroup, root included, lists its processes. */
    char procs[4200];
    snprintf(procs, sizeof procs, "%s/cgroup.procs", dir);
    assert_int_equal(access(procs, R_OK), 0);
}

static void cgroup_of_missing_pid_fails(void **state)
{
    char dir[4096];
    assert_int_equal(cgroup_of_pid(0, dir, sizeof dir), -ENOENT);
    assert_true(cgroup_of_pid(0x3ffffff, dir, sizeof dir) < 0);
    assert_int_equal(cgroup_of_pid(getpid(), dir, 4), -ENAMETOOLONG);
}

static void cgroup_read_u64_absent_file_is_enoent(void **state)
{
    char dir[4096];
    uint64_t v;
    assert_int_equal(cgroup_of_pid(getpid(), dir, sizeof dir), 0);
    assert_int_equal(cgroup_read_u64(dir, "no.such.controller", &v), -ENOENT);
    assert_int_equal(cgroup_read_key(dir, "no.such.stat", "x", &v), -ENOENT);
}

static void cgroup_read_parses_numbers_max_and_keys(void **state)
{
    char dir[] = "/tmp/test_resource.XXXXXX", path[64];
    uint64_t v;
    FILE *fp;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/memory.current", dir);
    fp = fopen(path, "w");
    fputs("123456\n", fp);
    fclose(fp);
    assert_int_equal(cgroup_read_u64(dir, "memory.current", &v), 0);
    assert_true(v == 123456);
    snprintf(path, sizeof path, "%s/memory.max", dir);
    fp = fopen(path, "w");
    fputs("max\n", fp);
    fclose(fp);
    assert_int_equal(cgroup_read_u64(dir, "memory.max", &v), 0);
    assert_true(v == UINT64_MAX);
    snprintf(path, sizeof path, "%s/memory.stat", dir);
    fp = fopen(path, "w");
    fputs("anon 10\nactive_file 20\ninactive_file 30\n", fp);
    fclose(fp);
    assert_int_equal(cgroup_read_key(dir, "memory.stat", "inactive_file", &v), 0);
    assert_true(v == 30);
    assert_int_equal(cgroup_read_key(dir, "memory.stat", "file", &v), -ENOENT);
    assert_int_equal(cgroup_read_u64(dir, "memory.stat", &v), -EINVAL);
    for (const char *n = "memory.current\0memory.max\0memory.stat\0"; *n; n += strlen(n) + 1) {
        snprintf(path, sizeof path, "%s/%s", dir, n);
        unlink(path);
    }
    rmdir(dir);
}

#define FX(t) cmocka_unit_test_setup_teardown(t, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        FX(resource_rss_over_threshold_fails_at_once_without_for),
        FX(resource_rss_must_breach_for_the_for_duration),
        FX(resource_breach_that_ends_restarts_the_for_clock),
        FX(resource_rss_under_threshold_passes_with_its_value),
        FX(resource_fds_over_threshold_fails),
        FX(resource_cpu_needs_two_samples),
        FX(resource_new_process_forgets_the_old_cpu_sample),
        FX(resource_service_down_passes),
        FX(resource_host_memory_over_threshold_is_host_wide),
        FX(resource_disk_threshold_on_root),
        FX(resource_host_cpu_needs_two_samples),
        FX(resource_host_metric_is_named_before_service_metric),
        FX(resource_release_while_pending_reports_nothing),
        FX(resource_cancel_then_start_again_reports_once),
        FX(resource_start_from_inside_report_runs_next_probe),
        FX(resource_validate_accepts_each_threshold),
        FX(resource_validate_rejects_bad_percent),
        FX(resource_validate_rejects_no_threshold),
        FX(resource_validate_rejects_negative_or_unknown_size),
        FX(resource_validate_rejects_bad_disk_and_fds),
        cmocka_unit_test(resource_size_units),
        cmocka_unit_test(cgroup_of_self_is_a_directory),
        cmocka_unit_test(cgroup_of_missing_pid_fails),
        cmocka_unit_test(cgroup_read_u64_absent_file_is_enoent),
        cmocka_unit_test(cgroup_read_parses_numbers_max_and_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
