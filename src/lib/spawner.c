/* Spawner threads: a queue in, a finished list out, one uv_async. */
#include "lib/spawner.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/procstat.h"

static void spawner__report(struct spawner_job *j)
{
    struct spawner *sw = j->sw;
    j->reported = true;
    j->done(j);
    free(j);
    if (--sw->in_flight == 0)
        uv_unref((uv_handle_t *)&sw->async);
}

/* Take j off the finished list (the lock held). */
static void spawner__unlist(struct spawner *sw, struct spawner_job *j)
{
    for (struct spawner_job **p = &sw->done_head; *p; p = &(*p)->next)
        if (*p == j) {
            *p = j->next;
            if (!*p)
                sw->done_tail = p;
            break;
        }
    j->next = NULL;
}

/* Up to SPAWNER_REPORTS_PER_TURN finished jobs, oldest first; with more
 * left, the handle is sent again so that the next turn (after a poll)
 * goes on with them. */
static void spawner__async_cb(uv_async_t *h)
{
    struct spawner *sw = h->data;
    struct spawner_job *list, **cut;
    unsigned n = 0;
    pthread_mutex_lock(&sw->mu);
    list = sw->done_head;
    for (cut = &sw->done_head; *cut && n < SPAWNER_REPORTS_PER_TURN; cut = &(*cut)->next)
        n++;
    sw->done_head = *cut;
    if (!*cut)
        sw->done_tail = &sw->done_head;
    *cut = NULL;
    bool more = sw->done_head != NULL;
    pthread_mutex_unlock(&sw->mu);
    if (more)
        uv_async_send(&sw->async);
    while (list) {
        struct spawner_job *j = list;
        list = j->next;
        j->next = NULL;
        spawner__report(j);
    }
}

/* The first queued job a thread may run now (the lock held): a yielding
 * one only below SPAWNER_YIELDING at once. NULL: none. The queue is short
 * (the daemon keeps a few first starts queued), so the walk is too. */
static struct spawner_job **spawner__next(struct spawner *sw)
{
    struct spawner_job **p = &sw->todo;
    while (*p && (*p)->yield && sw->yielding >= SPAWNER_YIELDING)
        p = &(*p)->next;
    return *p ? p : NULL;
}

/* Off the queue: the job at p (the lock held). */
static struct spawner_job *spawner__take(struct spawner *sw, struct spawner_job **p)
{
    struct spawner_job *j = *p;
    *p = j->next;
    if (!*p)
        sw->todo_tail = p;
    j->next = NULL;
    if (j->yield)
        sw->yielding++;
    return j;
}

/* The job's work, on its thread (stack: the child's), or on the loop
 * (NULL: spawn_start's). */
static void spawner__run(struct spawner_job *j, void *stack)
{
    /* The cgroup here too: its mkdir and limit writes wait for the
     * kernel's cgroup mutex, which at 1,000 first starts on the loop took
     * 8 % of the loop's time. */
    if (j->cgroup_make) {
        cgroup_build(j->opts.cgroup, &j->cgroup_spec, &j->cgroup_built);
        if ((j->result = j->cgroup_built.err) < 0)
            return;
        j->opts.cgroup_late |= j->cgroup_built.late;
    }
    j->result = stack ? spawn_start_on(&j->opts, stack, SPAWN_STACK_SIZE, &j->pid, &j->pidfd)
                      : spawn_start(&j->opts, &j->pid, &j->pidfd);
    /* Here, not on the loop: a /proc read per spawn adds up in a storm. */
    if (j->result == 0)
        j->start_ticks = procstat_start_ticks(j->pid);
}

static void *spawner__thread(void *arg)
{
    struct spawner *sw = arg;
    /* Its own child stack: the loop thread's (spawn.c) may be in use. */
    char *stack = aligned_alloc(16, SPAWN_STACK_SIZE);
    pthread_mutex_lock(&sw->mu);
    for (;;) {
        struct spawner_job **p;
        /* A stop runs what is queued, held or not. */
        while (!(p = sw->held && !sw->stopping ? NULL : spawner__next(sw)) &&
               !(sw->stopping && !sw->todo))
            pthread_cond_wait(&sw->work, &sw->mu);
        if (!p)
            break; /* stopping, and nothing is left */
        struct spawner_job *j = spawner__take(sw, p);
        pthread_mutex_unlock(&sw->mu);
        j->next = NULL;
        /* Bulk work must not take the loop's CPU: on 2 cores, 1,000 first
         * starts on 4 threads starved the loop (stalls of 18-50 ms). A
         * restart keeps our priority: a storm's recovery is the loop's own
         * business (nice 10 slowed a storm of 100 by 0.07-0.2 s here). */
        spawn_thread_nice(j->yield ? sw->nice_yield : sw->nice_own);
        if (stack)
            spawner__run(j, stack);
        else
            j->result = -ENOMEM;
        pthread_mutex_lock(&sw->mu);
        /* A yielding job queued may go now; at a stop, a thread waiting
         * for one may have nothing left to wait for. */
        if (j->yield) {
            sw->yielding--;
            if (sw->todo || sw->stopping)
                pthread_cond_broadcast(&sw->work);
        }
        j->finished = true;
        *sw->done_tail = j;
        sw->done_tail = &j->next;
        pthread_cond_broadcast(&sw->finished);
        pthread_mutex_unlock(&sw->mu);
        /* Outside the lock the loop's callback takes: a lowered thread
         * preempted in the write would hold the loop at that lock. */
        uv_async_send(&sw->async);
        pthread_mutex_lock(&sw->mu);
    }
    pthread_mutex_unlock(&sw->mu);
    free(stack);
    return NULL;
}

int spawner_init(struct spawner *sw, uv_loop_t *loop)
{
    memset(sw, 0, sizeof *sw);
    sw->loop = loop;
    sw->todo_tail = &sw->todo;
    sw->done_tail = &sw->done_head;
    /* Whether a thread may be lowered does not change while recoverd runs:
     * asked of the kernel here, not at every job of every thread. */
    sw->nice_own = spawn_nice();
    sw->nice_yield = spawn_nice_decide(SPAWNER_NICE);
    int r = uv_async_init(loop, &sw->async, spawner__async_cb);
    if (r < 0)
        return r;
    sw->async.data = sw;
    uv_unref((uv_handle_t *)&sw->async);
    pthread_mutex_init(&sw->mu, NULL);
    pthread_cond_init(&sw->work, NULL);
    pthread_cond_init(&sw->finished, NULL);
    return 0;
}

/* Start the threads with every signal blocked: signals are the loop's. */
static void spawner__start_threads(struct spawner *sw)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    while (sw->n_threads < SPAWNER_THREADS &&
           pthread_create(&sw->threads[sw->n_threads], NULL, spawner__thread, sw) == 0)
        sw->n_threads++;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void spawner_submit(struct spawner *sw, struct spawner_job *j, spawner_done_cb done, void *data)
{
    j->sw = sw;
    j->done = done;
    j->data = data;
    j->next = NULL;
    if (sw->in_flight++ == 0)
        uv_ref((uv_handle_t *)&sw->async);
    if (sw->n_threads == 0)
        spawner__start_threads(sw);
    if (sw->n_threads == 0) { /* no thread could start: spawn here */
        spawner__run(j, NULL);
        j->finished = true;
        spawner__report(j);
        return;
    }
    pthread_mutex_lock(&sw->mu);
    *sw->todo_tail = j;
    sw->todo_tail = &j->next;
    pthread_cond_signal(&sw->work);
    pthread_mutex_unlock(&sw->mu);
}

void spawner_hold(struct spawner *sw, bool held)
{
    pthread_mutex_lock(&sw->mu);
    sw->held = held;
    pthread_cond_broadcast(&sw->work);
    pthread_mutex_unlock(&sw->mu);
}

void spawner_wait(struct spawner_job *j)
{
    struct spawner *sw = j->sw;
    pthread_mutex_lock(&sw->mu);
    while (!j->finished)
        pthread_cond_wait(&sw->finished, &sw->mu);
    spawner__unlist(sw, j);
    pthread_mutex_unlock(&sw->mu);
    spawner__report(j);
}

void spawner_close(struct spawner *sw)
{
    /* No owner should leave a job in flight; each is reported anyway. */
    for (;;) {
        spawner__async_cb(&sw->async);
        if (!sw->in_flight)
            break;
        pthread_mutex_lock(&sw->mu);
        if (!sw->done_head)
            pthread_cond_wait(&sw->finished, &sw->mu);
        pthread_mutex_unlock(&sw->mu);
    }
    pthread_mutex_lock(&sw->mu);
    sw->stopping = true;
    pthread_cond_broadcast(&sw->work);
    pthread_mutex_unlock(&sw->mu);
    for (int i = 0; i < sw->n_threads; i++)
        pthread_join(sw->threads[i], NULL);
    sw->n_threads = 0;
    uv_close((uv_handle_t *)&sw->async, NULL);
    pthread_cond_destroy(&sw->finished);
    pthread_cond_destroy(&sw->work);
    pthread_mutex_destroy(&sw->mu);
}

/* ---- the job's copy of the options, in one block ---- */

static size_t spawner__vec_size(char *const *v, size_t *n)
{
    size_t bytes = 0;
    *n = 0;
    for (; v && v[*n]; (*n)++)
        bytes += strlen(v[*n]) + 1;
    return bytes;
}

/* Copy the NULL-terminated v (n entries) into slots and the strings to *text. */
static char **spawner__vec_copy(char *const *v, size_t n, char **slots, char **text)
{
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(v[i]) + 1;
        memcpy(*text, v[i], len);
        slots[i] = *text;
        *text += len;
    }
    slots[n] = NULL;
    return slots;
}

static const char *spawner__str_copy(const char *s, char **text)
{
    if (!s)
        return NULL;
    size_t len = strlen(s) + 1;
    char *d = memcpy(*text, s, len);
    *text += len;
    return d;
}

struct spawner_job *spawner_job_new(const struct spawn_opts *o)
{
    size_t n_argv, n_envp, n_add;
    size_t text = spawner__vec_size(o->argv, &n_argv) + spawner__vec_size(o->envp, &n_envp) +
                  spawner__vec_size(o->env_add, &n_add);
    text += (o->cwd ? strlen(o->cwd) + 1 : 0) + (o->cgroup ? strlen(o->cgroup) + 1 : 0);
    size_t n_groups = o->cred ? o->cred->n_groups : 0;
    size_t slots = n_argv + 1 + (o->envp ? n_envp + 1 : 0) + (o->env_add ? n_add + 1 : 0);
    /* job, then pointer slots, then groups, then text: each aligned for its type. */
    size_t size = sizeof(struct spawner_job) + slots * sizeof(char *) + n_groups * sizeof(gid_t) +
                  text;
    struct spawner_job *j = calloc(1, size);
    if (!j)
        return NULL;
    char **slot = (char **)(j + 1);
    gid_t *groups = (gid_t *)(slot + slots);
    char *t = (char *)(groups + n_groups);
    j->opts = *o;
    j->pidfd = -1;
    j->opts.argv = spawner__vec_copy(o->argv, n_argv, slot, &t);
    char **next = slot + n_argv + 1;
    if (o->envp) {
        j->opts.envp = spawner__vec_copy(o->envp, n_envp, next, &t);
        next += n_envp + 1;
    }
    if (o->env_add)
        j->opts.env_add = spawner__vec_copy(o->env_add, n_add, next, &t);
    j->opts.cwd = spawner__str_copy(o->cwd, &t);
    j->opts.cgroup = spawner__str_copy(o->cgroup, &t);
    if (o->cred) {
        j->cred = *o->cred;
        if (n_groups)
            memcpy(groups, o->cred->groups, n_groups * sizeof *groups);
        j->cred.groups = n_groups ? groups : NULL;
        j->opts.cred = &j->cred;
    }
    return j;
}
