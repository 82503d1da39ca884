/* daemon/: the first start of many services is spread over loop turns,
 * DAEMON_START_PER_TURN first starts at most in each (the API, probes and
 * spawn reports are served between them), and every service comes up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "daemon/daemon.h"
#include "daemon/service.h"
#include "loopwait.h"
#include "recover/supervisor.h"

#define N_SERVICES (3 * DAEMON_START_PER_TURN + 2)

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    remove(path);
    return 0;
}

/* First starts per turn, counted by a prepare hook (once a turn, after
 * the idle phase the start's slices run in). */
struct turns {
    const struct daemon *d;
    size_t seen;   /* d->start_next at the last turn's end */
    size_t max;    /* most starts in one turn */
    unsigned busy; /* turns that started any */
};

static void turns_prepare_cb(uv_prepare_t *p)
{
    struct turns *t = p->data;
    size_t now = t->d->start_next, n = now > t->seen ? now - t->seen : 0;
    t->max = n > t->max ? n : t->max;
    t->busy += n > 0;
    t->seen = now;
}

static bool all_up(const struct daemon *d)
{
    if (d->creating || d->n_services != N_SERVICES)
        return false;
    for (size_t i = 0; i < d->n_services; i++)
        if (d->services[i]->sup.state != SUP_RUNNING)
            return false;
    return true;
}

static void first_start_takes_several_turns_each_bounded(void **state)
{
    char dir[64] = "/tmp/test_daemon_start.XXXXXX", path[128];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/recoverd.yaml", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "state_dir: %s\napi: { listen: \"127.0.0.1:0\" }\nservices:\n", dir);
    for (int i = 0; i < N_SERVICES; i++)
        fprintf(f, "  s%02d:\n    command: [sleep, \"100\"]\n", i);
    assert_int_equal(fclose(f), 0);
    struct cfg_err cerr;
    struct config *cfg = config_load(path, &daemon_registry, &cerr);
    if (!cfg)
        fail_msg("%s:%d:%d: %s", cerr.file, cerr.line, cerr.col, cerr.msg);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct daemon *d = calloc(1, sizeof *d);
    assert_non_null(d);
    struct turns t = {.d = d};
    uv_prepare_t prep;
    uv_prepare_init(&loop, &prep);
    prep.data = &t;
    uv_prepare_start(&prep, turns_prepare_cb);
    assert_int_equal(daemon_start(d, &loop, cfg, path,
                                  &(struct daemon_opts){CONTAINMENT_AUTO, false}),
                     0);
    loopwait_until(&loop, all_up(d));
    uv_close((uv_handle_t *)&prep, NULL);
    daemon_stop(d);
    int ran = uv_run(&loop, UV_RUN_DEFAULT);
    daemon_free(d);
    free(d);
    int closed = uv_loop_close(&loop);
    nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
    assert_int_equal(ran, 0);
    assert_int_equal(closed, 0);
    assert_true(t.max >= 1);
    assert_true(t.max <= DAEMON_START_PER_TURN);
    assert_true(t.busy >= (N_SERVICES + DAEMON_START_PER_TURN - 1) / DAEMON_START_PER_TURN);
}

/* The pool's one thread (UV_THREADPOOL_SIZE=1, set in main) waits here
 * while a test holds it. */
static sem_t gate;

static void hold_work(uv_work_t *w)
{
    (void)w;
    sem_wait(&gate);
}

static void hold_done(uv_work_t *w, int status)
{
    (*(int *)w->data)++;
}

/* Once every service is started, the shed of start-up's code pages (a
 * page walk of /proc/self/smaps: ~10 ms of CPU) goes to libuv's pool: with
 * the pool held, it is a request waiting there, and the loop goes on. */
static void code_shed_after_the_start_runs_in_the_pool(void **state)
{
    char dir[64] = "/tmp/test_daemon_start.XXXXXX", path[128];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/recoverd.yaml", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "state_dir: %s\napi: { listen: \"127.0.0.1:0\" }\nservices:\n"
            "  s:\n    command: [sleep, \"100\"]\n",
            dir);
    assert_int_equal(fclose(f), 0);
    struct cfg_err cerr;
    struct config *cfg = config_load(path, &daemon_registry, &cerr);
    if (!cfg)
        fail_msg("%s:%d:%d: %s", cerr.file, cerr.line, cerr.col, cerr.msg);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct daemon *d = calloc(1, sizeof *d);
    assert_non_null(d);
    assert_int_equal(daemon_start(d, &loop, cfg, path,
                                  &(struct daemon_opts){CONTAINMENT_AUTO, false}),
                     0);
    loopwait_until(&loop,
                   !d->creating && d->n_services == 1 && d->services[0]->sup.state == SUP_RUNNING);
    int held = 0;
    uv_work_t hold = {.data = &held};
    assert_int_equal(uv_queue_work(&loop, &hold, hold_work, hold_done), 0);
    unsigned reqs = loop.active_reqs.count; /* the hold, and whatever else waits */
    loopwait_until(&loop, d->code_shed);
    unsigned waiting = loop.active_reqs.count;
    sem_post(&gate);
    loopwait_until(&loop, held == 1);
    daemon_stop(d);
    int ran = uv_run(&loop, UV_RUN_DEFAULT);
    daemon_free(d);
    free(d);
    int closed = uv_loop_close(&loop);
    nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
    assert_int_equal(ran, 0);
    assert_int_equal(closed, 0);
    assert_true(waiting > reqs); /* the shed, behind the hold */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(first_start_takes_several_turns_each_bounded),
        cmocka_unit_test(code_shed_after_the_start_runs_in_the_pool),
    };
    setenv("UV_THREADPOOL_SIZE", "1", 1);
    sem_init(&gate, 0, 0);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
