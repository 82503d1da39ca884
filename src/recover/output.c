/* Child output capture: one pipe per service for all its lives, so a
 * restart never loses the tail of the previous process's output. */
#include "recover/output.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "lib/statedir.h"
#include "lib/uvclock.h"

/* Never through a link or into another's file planted in logs/: the
 * service's output would land wherever it points (as root, anywhere). */
static int output__reopen(struct output *o)
{
    char why[160];
    if (o->log_fd >= 0)
        close(o->log_fd);
    o->log_fd = statedir_file_open(o->path, O_WRONLY | O_CREAT | O_APPEND, 0640, why, sizeof why);
    if (o->log_fd < 0) {
        int r = o->log_fd;
        log_event(LOG_ERROR, NULL, "log-open-failed", "path=%s error=\"%s\"", o->path, why);
        o->log_fd = -1;
        return r;
    }
    off_t end = lseek(o->log_fd, 0, SEEK_END);
    o->size = end > 0 ? (uint64_t)end : 0;
    return 0;
}

/* Keep one previous generation: name.log -> name.log.1. If the rename
 * fails the full file cannot take more, so output is dropped (log_fd -1)
 * rather than rotating the same full file forever. */
static void output__rotate(struct output *o)
{
    char old[4096];
    snprintf(old, sizeof old, "%s.1", o->path);
    if (rename(o->path, old) < 0) {
        log_event(LOG_WARN, NULL, "log-rotate-failed", "path=%s error=\"%s\" output=dropped",
                  o->path, strerror(errno));
        close(o->log_fd);
        o->log_fd = -1;
        return;
    }
    output__reopen(o); /* logs why it could not */
}

static void output__write(struct output *o, const char *buf, size_t len)
{
    while (len > 0 && o->log_fd >= 0) {
        size_t room = o->size < o->max_bytes ? o->max_bytes - o->size : 0;
        if (room == 0) {
            output__rotate(o);
            continue;
        }
        size_t n = len < room ? len : room;
        ssize_t w = write(o->log_fd, buf, n);
        if (w <= 0)
            return; /* disk full or gone: drop output rather than block the loop */
        o->size += (uint64_t)w;
        buf += w;
        len -= (size_t)w;
    }
}

static void output__alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char slab[65536]; /* one read at a time on one thread */
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(slab, sizeof slab);
}

static void output__resume_cb(uv_timer_t *t);

static void output__read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct output *o = s->data;
    if (n <= 0)
        return; /* EOF cannot happen while we hold the write end; errors: keep going */
    output__write(o, buf->base, (size_t)n);
    uint64_t now = clock_mono_us();
    if (now - o->window_us >= 1000000) {
        o->window_us = now;
        o->window_bytes = 0;
    }
    o->window_bytes += (uint64_t)n;
    if (o->window_bytes >= OUTPUT_RATE_BYTES) {
        uv_read_stop(s);
        o->reading = false;
        uvclock_arm(&o->resume, output__resume_cb, (o->window_us + 1000000 - now) / 1000 + 1);
    }
}

static void output__resume_cb(uv_timer_t *t)
{
    struct output *o = t->data;
    o->window_us = clock_mono_us();
    o->window_bytes = 0;
    if (!o->reading &&
        uv_read_start((uv_stream_t *)&o->pipe, output__alloc_cb, output__read_cb) == 0)
        o->reading = true;
}

int output_open(struct output *o, uv_loop_t *loop, const char *path, uint64_t max_bytes)
{
    uv_file fds[2] = {-1, -1};
    int r;
    memset(o, 0, sizeof *o);
    o->write_fd = -1;
    o->log_fd = -1;
    o->max_bytes = max_bytes ? max_bytes : 1;
    if (!(o->path = strdup(path)))
        return -ENOMEM;
    if ((r = output__reopen(o)) < 0)
        goto fail;
    if ((r = uv_pipe(fds, UV_NONBLOCK_PIPE, 0)) < 0)
        goto fail;
    uv_pipe_init(loop, &o->pipe, 0);
    uv_timer_init(loop, &o->resume);
    o->pipe.data = o;
    o->resume.data = o;
    if ((r = uv_pipe_open(&o->pipe, fds[0])) < 0) {
        close(fds[0]);
        fds[0] = -1;
    } else {
        o->write_fd = fds[1];
        o->window_us = clock_mono_us();
        output__resume_cb(&o->resume);
        return 0;
    }
    /* The handles are initialised: they must be closed, not just dropped. */
    close(fds[1]);
    output_close(o, NULL);
    return r;
fail:
    if (o->log_fd >= 0)
        close(o->log_fd);
    free(o->path);
    o->path = NULL;
    return r;
}

static void output__closed_cb(uv_handle_t *h)
{
    struct output *o = h->data;
    if (--o->closing == 0) {
        free(o->path);
        o->path = NULL;
        if (o->closed_cb)
            o->closed_cb(o);
    }
}

void output_close(struct output *o, void (*cb)(struct output *o))
{
    if (o->write_fd >= 0)
        close(o->write_fd);
    if (o->log_fd >= 0)
        close(o->log_fd);
    o->write_fd = o->log_fd = -1;
    o->closed_cb = cb;
    o->closing = 2;
    uv_close((uv_handle_t *)&o->pipe, output__closed_cb);
    uv_close((uv_handle_t *)&o->resume, output__closed_cb);
}
