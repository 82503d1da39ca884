/* A helper program as one loop object: its exit (pidfd), its output (a pipe)
 * and its deadline (a timer), finished once all of them have spoken. */
#include "lib/program.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/spawn.h"
#include "lib/uvclock.h"

/* How long the output may stay open after the leader exited: something it
 * left running in the background holds the pipe, and nothing it writes
 * later belongs to this program's result. */
#define PROGRAM__LINGER_MS 100

struct program {
    uv_loop_t *loop;         /* borrowed */
    program_done_cb cb;      /* NULL once cancelled */
    void *arg;               /* for cb */
    pid_t pid;               /* leader and process group id; 0 when spawn failed */
    int pidfd;               /* readable once the leader exited; -1 when none */
    uv_pipe_t out;           /* read end of the output pipe; data = this */
    uv_poll_t exit_watch;    /* on pidfd; data = this */
    uv_timer_t timer;        /* timeout, then linger after exit, or the spawn-error report */
    int open;                /* handles initialised and not yet closed; freed at 0 */
    bool has_out;            /* out was initialised */
    bool has_watch;          /* exit_watch was initialised */
    bool exited;             /* the leader's exit was seen (it stays a zombie until finish) */
    bool eof;                /* the output reached EOF (or a read error ended it) */
    bool finished;           /* handles are closing; nothing more happens */
    bool keep_group;         /* a clean exit leaves what it started alone (start programs) */
    uint64_t started_us;     /* clock_mono_us at program_run */
    struct program_result r; /* built up as events arrive */
    char *buf;               /* max + 1 bytes: the kept output and its NUL */
    size_t max;              /* output bytes kept */
};

/* Where output beyond max is read and dropped. One for all programs: its
 * bytes are never looked at, and only the kernel writes them. */
static char program__sink[65536];

static void program__closed_cb(uv_handle_t *h)
{
    struct program *p = h->data;
    if (h == (uv_handle_t *)&p->exit_watch)
        close(p->pidfd); /* libuv never closes a polled fd */
    if (--p->open == 0) {
        free(p->buf);
        free(p);
    }
}

static void program__close(uv_handle_t *h, bool present)
{
    if (present && !uv_is_closing(h))
        uv_close(h, program__closed_cb);
}

/* The leader is still a zombie here (its exit was read with WNOWAIT), so
 * its pid cannot have been reused as a process group id: killing the group
 * reaches only what it left behind. Then reap it: it has exited, so
 * waitpid does not wait. */
static void program__reap(struct program *p)
{
    if (p->pid <= 0)
        return;
    bool clean = !p->r.timed_out && !p->r.signal && p->r.exit_code == 0;
    if (!(p->keep_group && clean))
        kill(-p->pid, SIGKILL);
    while (waitpid(p->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    p->pid = 0;
}

static void program__timer_cb(uv_timer_t *t);

/* Complete: reap, report (unless cancelled), close everything. */
static void program__finish(struct program *p)
{
    program_done_cb cb = p->cb;
    p->finished = true;
    program__reap(p);
    p->r.duration_ms = (clock_mono_us() - p->started_us) / 1000;
    p->buf[p->r.output_len] = '\0';
    p->r.output = p->buf;
    uv_timer_stop(&p->timer);
    if (p->has_out)
        uv_read_stop((uv_stream_t *)&p->out);
    if (p->has_watch)
        uv_poll_stop(&p->exit_watch);
    /* The memory lives until the close callbacks, which run after cb. */
    if (cb)
        cb(&p->r, p->arg);
    program__close((uv_handle_t *)&p->out, p->has_out);
    program__close((uv_handle_t *)&p->exit_watch, p->has_watch);
    program__close((uv_handle_t *)&p->timer, true);
}

/* Finish once the leader exited and its output is done (or the linger ran out). */
static void program__maybe_finish(struct program *p)
{
    if (p->finished || !p->exited)
        return;
    if (p->eof || !p->cb) {
        program__finish(p);
        return;
    }
    uvclock_arm(&p->timer, program__timer_cb, PROGRAM__LINGER_MS);
}

static void program__alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct program *p = h->data;
    size_t room = p->max - p->r.output_len;
    if (room > 0)
        *b = uv_buf_init(p->buf + p->r.output_len,
                         room < suggested ? (unsigned)room : (unsigned)suggested);
    else
        *b = uv_buf_init(program__sink, sizeof program__sink);
}

static void program__read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct program *p = s->data;
    if (n > 0) {
        if (b->base == program__sink)
            p->r.truncated = true;
        else
            p->r.output_len += (size_t)n;
        return;
    }
    if (n == 0)
        return; /* EAGAIN */
    /* UV_EOF, or a read error: either way no more output will come. */
    uv_read_stop(s);
    p->eof = true;
    program__maybe_finish(p);
}

/* The pidfd is readable: read the leader's status without reaping it. */
static void program__exit_cb(uv_poll_t *w, int status, int events)
{
    struct program *p = w->data;
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0) {
        if (errno != ECHILD)
            return;
        /* Someone else reaped it (a stray waitpid(-1)): its status is lost,
         * and its pid may be reused, so the group is not killed either. */
        p->pid = 0;
        si.si_code = CLD_EXITED;
        si.si_status = -1;
    } else if (si.si_pid == 0) {
        return; /* spurious wakeup: still running */
    }
    uv_poll_stop(w); /* a zombie keeps the pidfd readable */
    p->exited = true;
    if (si.si_code == CLD_EXITED)
        p->r.exit_code = si.si_status;
    else
        p->r.signal = si.si_status;
    uv_timer_stop(&p->timer);
    program__maybe_finish(p);
}

/* One timer, three roles: the spawn failure's report, the linger after
 * the leader's exit, and before that the timeout. */
static void program__timer_cb(uv_timer_t *t)
{
    struct program *p = t->data;
    if (p->r.spawn_error || p->exited) {
        program__finish(p);
        return;
    }
    /* Timeout: the exit (and EOF) that follows the SIGKILL completes it. */
    p->r.timed_out = true;
    kill(-p->pid, SIGKILL);
}

/* Spawn the leader with the pipe's write end as its stdout and stderr,
 * then watch its pidfd. 0, or -errno for a spawn failure. */
static int program__spawn(struct program *p, char *const argv[], char *const env_add[],
                          const char *cwd, const struct spawn_cred *cred, int wfd)
{
    struct spawn_opts o = {.argv = argv,
                           .env_add = env_add,
                           .cwd = cwd,
                           .out_fd = wfd,
                           .cred = cred};
    int r = spawn_start(&o, &p->pid, &p->pidfd);
    if (r < 0) {
        p->pid = 0;
        return r;
    }
    if ((r = uv_poll_init(p->loop, &p->exit_watch, p->pidfd)) < 0) {
        close(p->pidfd);
        goto fail;
    }
    p->has_watch = true;
    p->open++;
    uv_poll_start(&p->exit_watch, UV_READABLE, program__exit_cb);
    return 0;
fail:
    /* Rare (no fds): without a watch the child cannot be waited for in the
     * loop, so it is killed and reaped here; SIGKILL makes that quick. */
    kill(-p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    p->pid = 0;
    return r;
}

static struct program *program__new(uv_loop_t *loop, size_t max_output, program_done_cb cb,
                                    void *arg)
{
    struct program *p = max_output < SIZE_MAX ? calloc(1, sizeof *p) : NULL;
    if (!p || !(p->buf = calloc(1, max_output + 1))) {
        free(p);
        return NULL;
    }
    p->loop = loop;
    p->cb = cb;
    p->arg = arg;
    p->max = max_output;
    p->pidfd = -1;
    p->out.data = p->exit_watch.data = p->timer.data = p;
    p->started_us = clock_mono_us();
    uv_timer_init(loop, &p->timer); /* cannot fail */
    p->open = 1;
    return p;
}

struct program *program_run(uv_loop_t *loop, char *const argv[], char *const env_add[],
                            const char *cwd, uint64_t timeout_ms, size_t max_output,
                            program_done_cb cb, void *arg)
{
    return program_run_as(loop, argv, env_add, cwd, NULL, timeout_ms, max_output, cb, arg);
}

struct program *program_run_as(uv_loop_t *loop, char *const argv[], char *const env_add[],
                               const char *cwd, const struct spawn_cred *cred, uint64_t timeout_ms,
                               size_t max_output, program_done_cb cb, void *arg)
{
    uv_file fds[2] = {-1, -1};
    struct program *p = program__new(loop, max_output, cb, arg);
    int r;
    if (!p)
        return NULL;
    if ((r = uv_pipe(fds, UV_NONBLOCK_PIPE, 0)) < 0)
        goto fail;
    uv_pipe_init(loop, &p->out, 0); /* cannot fail */
    p->open++;
    p->has_out = true;
    if ((r = uv_pipe_open(&p->out, fds[0])) < 0) {
        close(fds[0]);
        close(fds[1]);
        goto fail;
    }
    r = program__spawn(p, argv, env_add, cwd, cred, fds[1]);
    close(fds[1]); /* only the child's copies keep the pipe open now */
    if (r < 0)
        goto fail;
    uv_read_start((uv_stream_t *)&p->out, program__alloc_cb, program__read_cb);
    if (timeout_ms) /* counted from now, after the spawn */
        uvclock_arm(&p->timer, program__timer_cb, timeout_ms);
    return p;
fail:
    /* Reported from the loop like any other result, never from in here. */
    p->r.spawn_error = r;
    p->r.exit_code = -1;
    uvclock_arm(&p->timer, program__timer_cb, 0);
    return p;
}

void program_keep_group(struct program *p)
{
    if (p)
        p->keep_group = true;
}

void program_cancel(struct program *p)
{
    if (!p || p->finished)
        return;
    p->cb = NULL;
    if (p->pid > 0)
        kill(-p->pid, SIGKILL);
    /* Still running: the exit it now makes finishes it (reaped in the loop,
     * never waited for here). Otherwise finish at once. */
    if (p->pid > 0 && !p->exited) {
        uv_timer_stop(&p->timer);
        return;
    }
    program__finish(p);
}
