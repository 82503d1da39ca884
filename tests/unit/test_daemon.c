/* daemon/: a retired service whose process is down closes its handles over
 * several turns (its cgroup's rmdir waits in libuv's pool); from its close
 * on, it is out of d->services, so that every walk over them (the
 * listing, the status, a reload's apply, a stop, a detach) meets only
 * services whose parts are open, and the stop still waits for it. The
 * pool is held by the test (one thread, blocked on a semaphore), which
 * holds the rmdir and so the window, deterministically. Also: a chained
 * replacement waits for the oldest process; many first starts take several
 * turns, each bounded; the shed of start-up's code pages runs in the pool. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <semaphore.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api/routes.h"
#include "config/config.h"
#include "daemon/daemon.h"
#include "daemon/service.h"
#include "lib/jsonw.h"
#include "loopwait.h"
#include "recover/supervisor.h"

/* The pool's one thread waits here while a test holds it. */
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

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    remove(path);
    return 0;
}

/* The config at path, loaded, or the test fails with its error. */
static struct config *load_config(const char *path)
{
    struct cfg_err cerr;
    struct config *cfg = config_load(path, &daemon_registry, &cerr);
    if (!cfg)
        fail_msg("%s:%d:%d: %s", cerr.file, cerr.line, cerr.col, cerr.msg);
    return cfg;
}

/* keep and gone, both `sleep`; gone ignores SIGTERM, so that it stays up
 * after its retirement until the test kills it. without_gone: keep only. */
static void write_config(const char *path, const char *dir, bool with_gone)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "state_dir: %s\napi: { listen: \"127.0.0.1:0\" }\nservices:\n"
            "  keep:\n    command: [sleep, \"100\"]\n",
            dir);
    if (with_gone)
        fprintf(f, "  gone:\n    command: [sh, -c, \"trap '' TERM; exec sleep 100\"]\n"
                   "    stop: { grace: 60s }\n    depends_on: [keep]\n");
    assert_int_equal(fclose(f), 0);
}

/* The process exec'd sleep (gone's shell has set its trap by then). */
static bool runs_sleep(pid_t pid)
{
    char path[64], comm[32] = "";
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    FILE *f = fopen(path, "r");
    bool ok = f && fgets(comm, sizeof comm, f) && strcmp(comm, "sleep\n") == 0;
    if (f)
        fclose(f);
    return ok;
}

static bool both_up(struct daemon *d)
{
    if (d->creating || d->n_services != 2)
        return false;
    for (size_t i = 0; i < d->n_services; i++)
        if (d->services[i]->sup.state != SUP_RUNNING || !runs_sleep(d->services[i]->sup.pid))
            return false;
    return true;
}

static bool listed(const struct daemon *d, const struct service *s)
{
    for (size_t i = 0; i < d->n_services; i++)
        if (d->services[i] == s)
            return true;
    return false;
}

/* The names in a listing's rows, comma-joined, once it is whole; frees
 * what l holds. */
static void list_names(struct route_list *l, char *names, size_t len)
{
    size_t n = 0;
    free(l->names);
    char *text = jsonw_finish(&l->w, &n);
    assert_non_null(text);
    json_t *rows = json_loadb(text, n, 0, NULL);
    free(text);
    assert_true(json_is_array(rows));
    assert_int_equal(json_array_size(rows), l->rows);
    names[0] = '\0';
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        size_t at = strlen(names);
        snprintf(names + at, len - at, "%s%s", i ? "," : "",
                 json_string_value(json_object_get(row, "name")));
    }
    json_decref(rows);
    *l = (struct route_list){0};
}

/* The names of the listing from the one after `after`, comma-joined. */
static void listing(struct daemon *d, const char *after, char *names, size_t len)
{
    struct route_list l = {0};
    struct route_page page = {0};
    assert_int_equal(d->backend.services(d->backend.ctx, after, 0, &l, &page), 0);
    while (!routes_list_step(&d->backend, &l, 2)) /* small slices: the loop's way */
        ;
    assert_int_equal(l.count, page.rows);
    list_names(&l, names, len);
}

/* A config replaced by a reload that still holds s's. */
static bool cfg_kept_for(const struct daemon *d, const struct service *s)
{
    for (size_t i = 0; i < d->n_old_cfg; i++) {
        const struct config *c = d->old_cfg_list[i];
        if (s->cfg >= c->services && s->cfg < c->services + c->n_services)
            return true;
    }
    return false;
}

/* Start keep and gone; reload without gone (retired: SIGTERM, ignored);
 * hold the pool, queue a second reload behind the hold, then a second
 * hold; kill gone's process: it closes, its rmdir waits behind both. Then
 * every walk over the services while it closes, the stop or the detach
 * last. */
static void closing_retired_service_is_out_of_every_walk(bool detach)
{
    char dir[64] = "/tmp/test_daemon.XXXXXX", path[128];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/recoverd.yaml", dir);
    write_config(path, dir, true);
    struct config *cfg = load_config(path);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct daemon *d = calloc(1, sizeof *d);
    assert_non_null(d);
    /* cgroup: the rmdir in the pool is what holds a closed service open. */
    int r = daemon_start(d, &loop, cfg, path, &(struct daemon_opts){CONTAINMENT_CGROUP, false});
    if (r == -ENOTSUP) {
        daemon_stop(d);
        uv_run(&loop, UV_RUN_DEFAULT);
        daemon_free(d);
        free(d);
        uv_loop_close(&loop);
        nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
        skip(); /* no cgroup here */
    }
    assert_int_equal(r, 0);
    loopwait_until(&loop, both_up(d));
    struct service *keep = daemon_service(d, "keep"), *gone = daemon_service(d, "gone");
    pid_t keep_pid = keep->sup.pid, gone_pid = gone->sup.pid;
    char *keep_cgroup = strdup(keep->sup.encl.cgroup), *root = strdup(d->containment.root);
    assert_non_null(keep_cgroup);
    assert_non_null(root);

    /* Two listings in flight across the reload, both wrote keep before
     * it: one goes on once gone is retired, the other once gone is freed
     * (ASan: a row read from a service gone would be a use after free). */
    struct route_list early = {0}, late = {0};
    struct route_page page = {0};
    char names[256];
    assert_int_equal(d->backend.services(d->backend.ctx, NULL, 0, &early, &page), 0);
    assert_int_equal(d->backend.services(d->backend.ctx, NULL, 0, &late, &page), 0);
    assert_int_equal(early.count, 2);
    assert_string_equal(page.last, "gone");
    assert_false(routes_list_step(&d->backend, &early, 1));
    assert_false(routes_list_step(&d->backend, &late, 1));

    write_config(path, dir, false);
    assert_int_equal(daemon_reload(d), 0);
    loopwait_until(&loop, !d->reload && gone->retired);
    /* Retired (still stopping): out of the listing already. */
    assert_true(routes_list_step(&d->backend, &early, 1));
    list_names(&early, names, sizeof names);
    assert_string_equal(names, "keep");
    assert_int_equal(gone->sup.state, SUP_STOPPING); /* SIGTERM ignored: up, still listed */
    assert_true(listed(d, gone));

    int held = 0;
    uv_work_t hold[2] = {{.data = &held}, {.data = &held}};
    assert_int_equal(uv_queue_work(&loop, &hold[0], hold_work, hold_done), 0);
    assert_int_equal(daemon_reload(d), 0); /* its load waits behind the hold */
    assert_int_equal(uv_queue_work(&loop, &hold[1], hold_work, hold_done), 0);
    assert_int_equal(kill(gone_pid, SIGKILL), 0);
    loopwait_until(&loop, gone->sup.state == SUP_DOWN);

    /* Closed: its handles still open, yet out of the services already. */
    assert_true(service_handles_open(gone) > 0);
    assert_false(listed(d, gone));
    assert_ptr_equal(d->leaving, gone);
    assert_null(daemon_service(d, "gone"));
    assert_int_equal(keep->n_dependents, 0);
    assert_true(cfg_kept_for(d, gone)); /* its config outlives its handles */
    listing(d, NULL, names, sizeof names);
    assert_string_equal(names, "keep");
    listing(d, "keep", names, sizeof names);
    assert_string_equal(names, "");
    json_t *status = d->backend.status(d->backend.ctx);
    assert_int_equal(json_integer_value(json_object_get(status, "services")), 1);
    assert_int_equal(json_integer_value(json_object_get(status, "services_starting")), 0);
    json_decref(status);

    /* The second reload's apply walks the services while gone closes. */
    sem_post(&gate);
    loopwait_until(&loop, !d->reload);
    assert_ptr_equal(d->leaving, gone);
    assert_int_equal(d->n_services, 1);
    assert_ptr_equal(d->services[0], keep);
    assert_int_equal(keep->sup.pid, keep_pid);
    assert_true(cfg_kept_for(d, gone));

    /* The stop's (or detach's) slices walk them too, and the end waits. */
    if (detach)
        daemon_detach(d);
    else
        daemon_stop(d);
    loopwait_until(&loop,
                   !uv_is_active((uv_handle_t *)&d->stop_slices) && keep->sup.state == SUP_DOWN);
    loopwait_idle(&loop, 100); /* for a close that must not begin */
    assert_false(d->closing);
    assert_ptr_equal(d->leaving, gone);

    sem_post(&gate);
    int ran = uv_run(&loop, UV_RUN_DEFAULT);
    assert_null(d->leaving);
    assert_int_equal(held, 2);
    assert_true(routes_list_step(&d->backend, &late, 1));
    list_names(&late, names, sizeof names);
    assert_string_equal(names, "keep");
    daemon_free(d);
    free(d);
    int closed = uv_loop_close(&loop);
    if (detach) { /* left running for a next recoverd: ours to end */
        assert_int_equal(kill(keep_pid, SIGKILL), 0);
        assert_int_equal(waitpid(keep_pid, NULL, 0), keep_pid);
    }
    rmdir(keep_cgroup); /* a detach leaves both */
    rmdir(root);
    free(keep_cgroup);
    free(root);
    nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
    assert_int_equal(ran, 0);
    assert_int_equal(closed, 0);
    if (!detach)
        assert_int_equal(kill(keep_pid, 0), -1); /* stopped, and reaped by the daemon */
}

static void closing_retired_service_is_out_of_every_walk_to_a_stop(void **state)
{
    closing_retired_service_is_out_of_every_walk(false);
}

static void closing_retired_service_is_out_of_every_walk_to_a_detach(void **state)
{
    closing_retired_service_is_out_of_every_walk(true);
}

/* One service "a" at version v: 1 ignores SIGTERM (it stays up after its
 * retirement until the test kills it), 2 and 3 are plain sleeps that
 * differ in their argument (so a reload replaces the process). */
static void write_version(const char *path, const char *dir, int v)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "state_dir: %s\napi: { listen: \"127.0.0.1:0\" }\nservices:\n  a:\n", dir);
    if (v == 1)
        fprintf(f, "    command: [sh, -c, \"trap '' TERM; exec sleep 100\"]\n"
                   "    stop: { grace: 60s }\n");
    else
        fprintf(f, "    command: [sleep, \"10%d\"]\n", v);
    assert_int_equal(fclose(f), 0);
}

static bool a_runs_sleep(struct daemon *d)
{
    struct service *a = daemon_service(d, "a");
    return !d->creating && a && a->sup.state == SUP_RUNNING && runs_sleep(a->sup.pid);
}

/* Two reloads replace "a" before its first instance's process is gone:
 * the second replacement waits for that first instance (whose port and
 * log the never-started middle one did not have), not for the middle one,
 * and starts once the first is gone, found through its back link. */
static void chained_replacement_waits_for_the_oldest_process(void **state)
{
    char dir[64] = "/tmp/test_daemon.XXXXXX", path[128];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/recoverd.yaml", dir);
    write_version(path, dir, 1);
    struct config *cfg = load_config(path);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct daemon *d = calloc(1, sizeof *d);
    assert_non_null(d);
    assert_int_equal(daemon_start(d, &loop, cfg, path,
                                  &(struct daemon_opts){CONTAINMENT_AUTO, false}),
                     0);
    loopwait_until(&loop, a_runs_sleep(d));
    struct service *a1 = daemon_service(d, "a");
    pid_t a1_pid = a1->sup.pid;

    write_version(path, dir, 2);
    assert_int_equal(daemon_reload(d), 0);
    loopwait_until(&loop, !d->reload && a1->retired);
    struct service *a2 = daemon_service(d, "a");
    assert_ptr_not_equal(a2, a1);
    assert_int_equal(a1->sup.state, SUP_STOPPING); /* SIGTERM ignored */
    assert_ptr_equal(a2->replaces, a1);
    assert_ptr_equal(a1->replaced_by, a2);
    assert_int_equal(a2->sup.state, SUP_DOWN);

    write_version(path, dir, 3);
    assert_int_equal(daemon_reload(d), 0);
    /* a2 never ran: retired, it closes and is gone at once. */
    loopwait_until(&loop, !d->reload && !d->leaving); /* a2 is freed by then */
    struct service *a3 = daemon_service(d, "a");
    assert_ptr_not_equal(a3, a2);
    assert_ptr_equal(a3->replaces, a1);
    assert_ptr_equal(a1->replaced_by, a3);
    assert_true(listed(d, a1));
    loopwait_idle(&loop, 200); /* for a start that must not come */
    assert_int_equal(a3->sup.state, SUP_DOWN);
    assert_int_equal(a1->sup.state, SUP_STOPPING);

    assert_int_equal(kill(a1_pid, SIGKILL), 0);
    loopwait_until(&loop, a3->sup.state == SUP_RUNNING && runs_sleep(a3->sup.pid));
    assert_null(a3->replaces);
    assert_false(listed(d, a1)); /* gone, freed */
    assert_int_equal(d->n_services, 1);

    daemon_stop(d);
    int ran = uv_run(&loop, UV_RUN_DEFAULT);
    daemon_free(d);
    free(d);
    int closed = uv_loop_close(&loop);
    nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
    assert_int_equal(ran, 0);
    assert_int_equal(closed, 0);
}

#define N_SERVICES (3 * DAEMON_START_PER_TURN + 2)

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
    char dir[64] = "/tmp/test_daemon.XXXXXX", path[128];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/recoverd.yaml", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "state_dir: %s\napi: { listen: \"127.0.0.1:0\" }\nservices:\n", dir);
    for (int i = 0; i < N_SERVICES; i++)
        fprintf(f, "  s%02d:\n    command: [sleep, \"100\"]\n", i);
    assert_int_equal(fclose(f), 0);
    struct config *cfg = load_config(path);
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

/* Once every service is started, the shed of start-up's code pages (a
 * page walk of /proc/self/smaps: ~10 ms of CPU) goes to libuv's pool: with
 * the pool held, it is a request waiting there, and the loop goes on. */
static void code_shed_after_the_start_runs_in_the_pool(void **state)
{
    char dir[64] = "/tmp/test_daemon.XXXXXX", path[128];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/recoverd.yaml", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "state_dir: %s\napi: { listen: \"127.0.0.1:0\" }\nservices:\n"
            "  s:\n    command: [sleep, \"100\"]\n",
            dir);
    assert_int_equal(fclose(f), 0);
    struct config *cfg = load_config(path);
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
    /* One pool thread, set before libuv makes its pool: a single held job
     * holds everything queued after it, in order. */
    setenv("UV_THREADPOOL_SIZE", "1", 1);
    sem_init(&gate, 0, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(closing_retired_service_is_out_of_every_walk_to_a_stop),
        cmocka_unit_test(closing_retired_service_is_out_of_every_walk_to_a_detach),
        cmocka_unit_test(chained_replacement_waits_for_the_oldest_process),
        cmocka_unit_test(first_start_takes_several_turns_each_bounded),
        cmocka_unit_test(code_shed_after_the_start_runs_in_the_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
