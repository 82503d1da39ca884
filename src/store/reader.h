/* The journal's reader: a thread of recoverd's own, with a read-only
 * connection to the journal (journal_open_readonly), that runs the API's
 * journal reads off the loop. While a query runs, probes, timers and the
 * other API answers go on. Not libuv's shared pool: a disk probe stuck
 * there would starve the reads, so they keep a thread for themselves. */
#ifndef RECOVERD_STORE_READER_H
#define RECOVERD_STORE_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

struct journal;
struct reader;

/* One read, owned by whoever submits it (it stays theirs: the reader only
 * links it while it waits). */
struct reader_job {
    /* On the reader's thread, inside one read transaction of ro: must
     * touch nothing the loop touches. */
    void (*work)(struct reader_job *job, struct journal *ro);
    /* On the loop, once: after work ran (ran true), or without it (ran
     * false) when the reader closed first. The job may be freed here. */
    void (*done)(struct reader_job *job, bool ran);
    struct reader_job *next; /* the reader's */
};

/* Open the journal at path read-only (after the writer opened it: the
 * schema must be there) and start the thread; at most max_jobs (0: 64)
 * submitted and not yet done. NULL with a message in err. */
struct reader *reader_new(uv_loop_t *loop, const char *path, unsigned max_jobs, char *err,
                          size_t errlen);
/* Queue job. 0; -EAGAIN when max_jobs wait already (the caller answers
 * "busy" at once rather than queue without bound); -ECANCELED once the
 * reader is closing. */
int reader_submit(struct reader *r, struct reader_job *job);
/* Jobs submitted and not yet done. */
unsigned reader_waiting(const struct reader *r);
/* Stop: the job running finishes, the thread is joined, every job not
 * run gets done(job, false) and every job run done(job, true), here; then
 * the loop handle closes and the memory goes with it (run the loop).
 * NULL-safe. */
void reader_free(struct reader *r);

#endif
