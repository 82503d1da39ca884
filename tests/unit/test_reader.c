/* Unit tests of store/reader: the journal's reads on a thread of their
 * own, handed back to the loop; a bounded queue; a clean stop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/fault.h"
#include "store/journal.h"
#include "store/reader.h"

struct fixture {
    char dir[64];
    char path[128];
    struct journal *j; /* the writer */
    uv_loop_t loop;
};

static int fixture_setup(void **state)
{
    char err[256] = "";
    struct fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/test_reader.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof fx->path, "%s/journal.db", fx->dir);
    if (!(fx->j = journal_open(fx->path, err, sizeof err)))
        fail_msg("journal_open: %s", err);
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    *state = fx;
    return 0;
}

static int fixture_teardown(void **state)
{
    static const char *const files[] = {"journal.db", "journal.db-wal", "journal.db-shm"};
    struct fixture *fx = *state;
    char p[200];
    assert_int_equal(uv_loop_close(&fx->loop), 0); /* nothing left in it */
    journal_free(fx->j);
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(p, sizeof p, "%s/%s", fx->dir, files[i]);
        unlink(p);
    }
    rmdir(fx->dir);
    free(fx);
    return 0;
}

/* A job that records where and in which order it ran; with hold, it
 * keeps the reader's thread until released. */
struct job {
    struct reader_job job;
    int64_t fault_id;  /* read this fault */
    bool hold;         /* wait for release first */
    uv_sem_t *running; /* posted once it holds the thread */
    uv_sem_t *release;
    uv_thread_t ran_on;
    bool found;           /* the fault was there */
    int done, ran, order; /* done: how many times done ran */
    int *counter;         /* order of done calls */
    uv_thread_t done_on;
};

static void job_work(struct reader_job *rj, struct journal *ro)
{
    struct job *x = (struct job *)rj;
    x->ran_on = uv_thread_self();
    if (x->hold) {
        uv_sem_post(x->running);
        uv_sem_wait(x->release);
    }
    json_t *f = x->fault_id ? journal_fault_json(ro, x->fault_id) : NULL;
    x->found = f != NULL;
    json_decref(f);
}

static void job_done(struct reader_job *rj, bool ran)
{
    struct job *x = (struct job *)rj;
    x->done++;
    x->ran = ran;
    x->order = ++*x->counter;
    x->done_on = uv_thread_self();
}

static int64_t fault_add(struct journal *j)
{
    struct fault f = {.type = FAULT_SOFTWARE,
                      .severity = SEVERITY_HIGH,
                      .impact = IMPACT_SERVICE,
                      .opened_ms = 1700000000000};
    snprintf(f.service, sizeof f.service, "web");
    snprintf(f.check, sizeof f.check, "http");
    f.context = (char *)"{}";
    assert_int_equal(journal_fault_open(j, &f), 0);
    return f.id;
}

/* Jobs run on another thread, in order, and come back on the loop's,
 * each once; a read sees what the writer committed before it. */
static void reader_runs_jobs_off_the_loop_in_order(void **state)
{
    struct fixture *fx = *state;
    char err[256] = "";
    int counter = 0;
    journal_set_batching(fx->j, true);
    int64_t id = fault_add(fx->j);
    assert_int_equal(journal_flush(fx->j), 0);
    struct reader *r = reader_new(&fx->loop, fx->path, 0, err, sizeof err);
    if (!r)
        fail_msg("reader_new: %s", err);
    struct job jobs[5];
    for (int i = 0; i < 5; i++) {
        jobs[i] = (struct job){.job = {.work = job_work, .done = job_done},
                               .fault_id = id,
                               .counter = &counter};
        assert_int_equal(reader_submit(r, &jobs[i].job), 0);
    }
    assert_int_equal(reader_waiting(r), 5);
    while (counter < 5)
        uv_run(&fx->loop, UV_RUN_ONCE);
    uv_thread_t self = uv_thread_self();
    for (int i = 0; i < 5; i++) {
        assert_int_equal(jobs[i].done, 1);
        assert_true(jobs[i].ran);
        assert_int_equal(jobs[i].order, i + 1);
        assert_true(jobs[i].found);
        assert_false(uv_thread_equal(&jobs[i].ran_on, &self));
        assert_true(uv_thread_equal(&jobs[i].done_on, &self));
    }
    assert_int_equal(reader_waiting(r), 0);
    reader_free(r);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
}

/* At most max_jobs wait: the next is refused at once, not queued; the
 * stop hands every job back once (run or not), joins the thread and
 * leaves the loop empty. */
static void reader_bounds_its_queue_and_stops_cleanly(void **state)
{
    struct fixture *fx = *state;
    char err[256] = "";
    int counter = 0;
    uv_sem_t running, release;
    uv_sem_init(&running, 0);
    uv_sem_init(&release, 0);
    struct reader *r = reader_new(&fx->loop, fx->path, 3, err, sizeof err);
    if (!r)
        fail_msg("reader_new: %s", err);
    struct job hold = {.job = {.work = job_work, .done = job_done},
                       .hold = true,
                       .running = &running,
                       .release = &release,
                       .counter = &counter};
    struct job more[3];
    assert_int_equal(reader_submit(r, &hold.job), 0);
    uv_sem_wait(&running); /* the thread is held */
    for (int i = 0; i < 3; i++)
        more[i] = (struct job){.job = {.work = job_work, .done = job_done}, .counter = &counter};
    assert_int_equal(reader_submit(r, &more[0].job), 0);
    assert_int_equal(reader_submit(r, &more[1].job), 0);
    assert_int_equal(reader_submit(r, &more[2].job), -EAGAIN);
    assert_int_equal(reader_waiting(r), 3);
    uv_sem_post(&release); /* whether the queued ones run before the stop or not */
    reader_free(r);
    assert_int_equal(reader_submit(r, &more[2].job), -ECANCELED); /* until its handle closed */
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(hold.done, 1);
    assert_true(hold.ran);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(more[i].done, 1);
        assert_true(more[i].order > hold.order);
    }
    assert_true(more[0].ran || !more[1].ran); /* in order: none runs past one left out */
    assert_int_equal(more[2].done, 0);
    uv_sem_destroy(&running);
    uv_sem_destroy(&release);
}

/* No journal at the path (or an older schema): NULL, with words. */
static void reader_refuses_a_missing_journal(void **state)
{
    struct fixture *fx = *state;
    char err[256] = "", path[200];
    snprintf(path, sizeof path, "%s/none.db", fx->dir);
    assert_null(reader_new(&fx->loop, path, 0, err, sizeof err));
    assert_non_null(strstr(err, "none.db"));
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, fixture_setup, fixture_teardown)
    const struct CMUnitTest tests[] = {
        T(reader_runs_jobs_off_the_loop_in_order),
        T(reader_bounds_its_queue_and_stops_cleanly),
        T(reader_refuses_a_missing_journal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
