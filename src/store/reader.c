/* The journal's reader thread: a queue in, a queue out and a uv_async_t
 * that tells the loop answers are waiting. The thread owns the read-only
 * connection; the loop owns the jobs before and after. */
#include "store/reader.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "store/journal.h"

#define READER__MAX_JOBS 64 /* default bound of the queue */

/* A FIFO of jobs linked through job->next. */
struct reader__fifo {
    struct reader_job *head;
    struct reader_job **tail;
};

struct reader {
    uv_loop_t *loop;          /* borrowed */
    uv_async_t async;         /* the thread finished jobs; async.data: this reader */
    uv_thread_t thread;       /* runs reader__main */
    uv_mutex_t lock;          /* guards todo, done and stop */
    uv_cond_t wake;           /* todo got a job, or stop was set */
    struct reader__fifo todo; /* submitted, not yet run */
    struct reader__fifo done; /* run, not yet handed back */
    bool stop;                /* the thread leaves after the job it runs */
    struct journal *ro;       /* the thread's, until it was joined */
    unsigned waiting;         /* loop only: submitted, not yet handed back */
    unsigned max;             /* bound of waiting */
    bool closing;             /* loop only: reader_free was called */
};

static void reader__push(struct reader__fifo *q, struct reader_job *job)
{
    job->next = NULL;
    *q->tail = job;
    q->tail = &job->next;
}

/* The whole queue, emptied. */
static struct reader_job *reader__take(struct reader__fifo *q)
{
    struct reader_job *all = q->head;
    q->head = NULL;
    q->tail = &q->head;
    return all;
}

/* The reader's niceness above the loop's: on a busy host the loop (probes,
 * timers, every other answer) gets the CPU first, and a large page
 * serializing here waits instead (bench/journal, largest pages). */
#define READER__NICE 10

static void reader__main(void *arg)
{
    struct reader *r = arg;
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, 0);
    if (errno == 0) /* this thread only: Linux's nice is per thread */
        (void)setpriority(PRIO_PROCESS, (id_t)gettid(), nice + READER__NICE);
    uv_mutex_lock(&r->lock);
    while (!r->stop) {
        struct reader_job *job = r->todo.head;
        if (!job) {
            uv_cond_wait(&r->wake, &r->lock);
            continue;
        }
        r->todo.head = job->next;
        if (!r->todo.head)
            r->todo.tail = &r->todo.head;
        uv_mutex_unlock(&r->lock);
        /* One snapshot per job; a failed BEGIN leaves autocommit reads,
         * whose failure the views report. */
        bool txn = journal_read_begin(r->ro) == 0;
        job->work(job, r->ro);
        if (txn)
            journal_read_end(r->ro);
        uv_mutex_lock(&r->lock);
        reader__push(&r->done, job);
        uv_async_send(&r->async);
    }
    uv_mutex_unlock(&r->lock);
}

/* Hand every finished job back, in the order they ran. */
static void reader__deliver(struct reader *r, struct reader_job *job, bool ran)
{
    while (job) {
        struct reader_job *next = job->next;
        r->waiting--;
        job->done(job, ran);
        job = next;
    }
}

static void reader__async_cb(uv_async_t *h)
{
    struct reader *r = h->data;
    uv_mutex_lock(&r->lock);
    struct reader_job *done = reader__take(&r->done);
    uv_mutex_unlock(&r->lock);
    reader__deliver(r, done, true);
}

static void reader__close_cb(uv_handle_t *h)
{
    free(h->data);
}

struct reader *reader_new(uv_loop_t *loop, const char *path, unsigned max_jobs, char *err,
                          size_t errlen)
{
    struct reader *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    /* jansson is thread-safe for values no two threads share, once its
     * one global, the hash seed, is set (jansson's "Portability: thread
     * safety"): set here, before the thread makes its first object. */
    json_object_seed(0);
    if (!(r->ro = journal_open_readonly(path, err, errlen))) {
        free(r);
        return NULL;
    }
    r->loop = loop;
    r->max = max_jobs ? max_jobs : READER__MAX_JOBS;
    r->todo.tail = &r->todo.head;
    r->done.tail = &r->done.head;
    int e;
    if ((e = uv_mutex_init(&r->lock)) < 0)
        goto fail_mutex;
    if ((e = uv_cond_init(&r->wake)) < 0)
        goto fail_cond;
    if ((e = uv_async_init(loop, &r->async, reader__async_cb)) < 0)
        goto fail_async;
    r->async.data = r;
    if ((e = uv_thread_create(&r->thread, reader__main, r)) < 0) {
        journal_free(r->ro);
        uv_cond_destroy(&r->wake);
        uv_mutex_destroy(&r->lock);
        uv_close((uv_handle_t *)&r->async, reader__close_cb); /* frees r */
        snprintf(err, errlen, "cannot start the journal reader thread: %s", uv_strerror(e));
        return NULL;
    }
    return r;
fail_async:
    uv_cond_destroy(&r->wake);
fail_cond:
    uv_mutex_destroy(&r->lock);
fail_mutex:
    journal_free(r->ro);
    free(r);
    snprintf(err, errlen, "cannot start the journal reader: %s", uv_strerror(e));
    return NULL;
}

int reader_submit(struct reader *r, struct reader_job *job)
{
    if (r->closing)
        return -ECANCELED;
    if (r->waiting >= r->max)
        return -EAGAIN;
    r->waiting++;
    uv_mutex_lock(&r->lock);
    reader__push(&r->todo, job);
    uv_cond_signal(&r->wake);
    uv_mutex_unlock(&r->lock);
    return 0;
}

unsigned reader_waiting(const struct reader *r)
{
    return r->waiting;
}

void reader_free(struct reader *r)
{
    if (!r || r->closing)
        return;
    r->closing = true;
    uv_mutex_lock(&r->lock);
    r->stop = true;
    uv_cond_signal(&r->wake);
    uv_mutex_unlock(&r->lock);
    uv_thread_join(&r->thread);
    /* The thread is gone: what it left is ours without the lock. */
    reader__deliver(r, reader__take(&r->done), true);
    reader__deliver(r, reader__take(&r->todo), false);
    journal_free(r->ro);
    r->ro = NULL;
    uv_cond_destroy(&r->wake);
    uv_mutex_destroy(&r->lock);
    uv_close((uv_handle_t *)&r->async, reader__close_cb);
}
