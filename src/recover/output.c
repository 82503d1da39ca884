/* Child output capture: one named FIFO per service for all its lives and
 * all of recoverd's, so neither a restart of the service nor one of
 * recoverd loses output, and no service dies of recoverd's death. */
#include "recover/output.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "lib/statedir.h"
#include "lib/uvclock.h"

#define OUTPUT__FIFO_MIN (64 << 10) /* the kernel's default: no use asking below it */

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
        return; /* no EOF: our end of the FIFO is a writer too; errors: keep going */
    output__write(o, buf->base, (size_t)n);
    uint64_t now = clock_mono_us();
    if (now - o->window_us >= 1000000) {
        o->window_us = now;
        o->window_bytes = 0;
    }
    o->window_bytes += (uint64_t)n;
    if (o->window_bytes < OUTPUT_RATE_BYTES)
        return;
    /* Most services never write this fast: the timer exists from their first pause on. */
    if (!o->resume) {
        if (!(o->resume = malloc(sizeof *o->resume)))
            return; /* no pause this time rather than a pause without an end */
        uv_timer_init(s->loop, o->resume);
        o->resume->data = o;
    }
    uv_read_stop(s);
    o->reading = false;
    uvclock_arm(o->resume, output__resume_cb, (o->window_us + 1000000 - now) / 1000 + 1);
}

static void output__resume(struct output *o)
{
    o->window_us = clock_mono_us();
    o->window_bytes = 0;
    if (!o->reading &&
        uv_read_start((uv_stream_t *)&o->pipe, output__alloc_cb, output__read_cb) == 0)
        o->reading = true;
}

static void output__resume_cb(uv_timer_t *t)
{
    output__resume(t->data);
}

/* A FIFO recoverd trusts: its own, one link, nobody else may open it. */
static bool output__fifo_ok(const struct stat *st)
{
    return S_ISFIFO(st->st_mode) && st->st_uid == geteuid() && st->st_nlink == 1 &&
           (st->st_mode & 077) == 0;
}

/* Make path a trusted FIFO, keeping one that is. Anything else there is
 * removed, never followed: logs/ is recoverd's own (statedir_subdir checked
 * it), so it was left by hand or planted, and a link would send a service's
 * output wherever it points. */
static int output__fifo_make(const char *path)
{
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (output__fifo_ok(&st))
            return 0;
        log_event(LOG_WARN, NULL, "output-fifo-replaced", "path=%s mode=%o uid=%u links=%lu", path,
                  (unsigned)st.st_mode, (unsigned)st.st_uid, (unsigned long)st.st_nlink);
        if (unlink(path) < 0 && !(errno == EISDIR && rmdir(path) == 0) && errno != ENOENT)
            return -errno;
    } else if (errno != ENOENT) {
        return -errno;
    }
    if (mkfifo(path, 0600) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* Open the FIFO at path O_RDWR plus flags, without following a link, and
 * check what was opened (st: its stat). The fd or -errno. */
static int output__fifo_open(const char *path, int flags, struct stat *st)
{
    int fd = open(path, flags | O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -errno;
    int r = fstat(fd, st) < 0 ? -errno : output__fifo_ok(st) ? 0 : -EPERM;
    if (r < 0) {
        close(fd);
        return r;
    }
    return fd;
}

/* The user's soft cap on pipe slots (pages) over all its pipes. */
static long output__soft_slots(void)
{
    long v = 16384; /* the kernel's default */
    FILE *f = fopen("/proc/sys/fs/pipe-user-pages-soft", "re");
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = 16384;
        fclose(f);
    }
    return v > 0 ? v : LONG_MAX; /* 0: no cap */
}

/* Only ever grow: a FIFO a previous recoverd grew may hold data. An
 * unprivileged user past fs/pipe-user-pages-soft (16,384 slots: 64 FIFOs
 * of 1 MiB) gets 2-slot pipes for every pipe it makes after, its services'
 * too, so such a recoverd grows FIFOs within half of it; the count is never
 * given back, as a service may hold its FIFO after output_close. */
static void output__fifo_grow(int fd)
{
    static long grown; /* slots this process added to FIFOs; loop thread only */
    long page = sysconf(_SC_PAGESIZE);
    long room = geteuid() == 0 ? LONG_MAX : output__soft_slots() / 2 - grown;
    int now = fcntl(fd, F_GETPIPE_SZ);
    for (int want = OUTPUT_FIFO_BYTES; want > now && want > OUTPUT__FIFO_MIN; want /= 2) {
        if ((want - now) / page > room)
            continue;
        int got = fcntl(fd, F_SETPIPE_SZ, want);
        if (got >= 0) {
            grown += (got - now) / page;
            return;
        }
    }
}

/* The two ends, two opens so they share no file status flags: recoverd's
 * non-blocking for the loop; the children's blocking, so a full pipe holds
 * a service back instead of failing its write with EAGAIN. Both O_RDWR:
 * recoverd's never reads EOF (nor fails ENXIO to open); the children's
 * makes each process of the service a reader of its own FIFO, so while no
 * recoverd runs its writes fill the pipe and then wait, never SIGPIPE or
 * EPIPE, and the next recoverd reads them, in order. */
static int output__fifo_ends(const char *path, int *read_fd, int *write_fd)
{
    struct stat r_st = {0}, w_st = {0};
    int r = output__fifo_make(path);
    if (r < 0)
        return r;
    if ((*read_fd = output__fifo_open(path, O_NONBLOCK, &r_st)) < 0)
        return *read_fd;
    if ((*write_fd = output__fifo_open(path, 0, &w_st)) < 0) {
        r = *write_fd;
    } else if (w_st.st_dev != r_st.st_dev || w_st.st_ino != r_st.st_ino) {
        r = -EPERM; /* replaced between the two opens: only by hand */
        close(*write_fd);
    } else {
        output__fifo_grow(*read_fd);
        return 0;
    }
    close(*read_fd);
    *read_fd = *write_fd = -1;
    return r;
}

int output_prepare(const char *log_path, const char *fifo_path)
{
    struct stat st;
    char why[160];
    if (lstat(log_path, &st) < 0 && errno == ENOENT) {
        int fd = statedir_file_open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0640, why, sizeof why);
        if (fd < 0)
            return fd;
        close(fd);
    }
    /* Anything else already there is output_open's to judge (and log). */
    if (lstat(fifo_path, &st) < 0 && errno == ENOENT && mkfifo(fifo_path, 0600) < 0 &&
        errno != EEXIST)
        return -errno;
    return 0;
}

int output_open(struct output *o, uv_loop_t *loop, const char *log_path, const char *fifo_path,
                uint64_t max_bytes)
{
    int read_fd = -1, write_fd = -1;
    int r;
    memset(o, 0, sizeof *o);
    o->write_fd = -1;
    o->log_fd = -1;
    o->max_bytes = max_bytes ? max_bytes : 1;
    if (!(o->path = strdup(log_path)))
        return -ENOMEM;
    if ((r = output__reopen(o)) < 0)
        goto fail;
    if ((r = output__fifo_ends(fifo_path, &read_fd, &write_fd)) < 0) {
        log_event(LOG_ERROR, NULL, "output-fifo-failed", "path=%s error=\"%s\"", fifo_path,
                  strerror(-r));
        goto fail;
    }
    uv_pipe_init(loop, &o->pipe, 0);
    o->pipe.data = o;
    if ((r = uv_pipe_open(&o->pipe, read_fd)) < 0) {
        /* The handles are initialised: they must be closed, not just dropped. */
        close(read_fd);
        close(write_fd);
        output_close(o, NULL);
        return r;
    }
    o->write_fd = write_fd;
    o->window_us = clock_mono_us();
    output__resume(o);
    return 0;
fail:
    if (o->log_fd >= 0)
        close(o->log_fd);
    o->log_fd = -1;
    free(o->path);
    o->path = NULL;
    return r;
}

static void output__closed_cb(uv_handle_t *h)
{
    struct output *o = h->data;
    if (h != (uv_handle_t *)&o->pipe)
        free(h); /* the resume timer */
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
    o->closing = o->resume ? 2 : 1;
    uv_close((uv_handle_t *)&o->pipe, output__closed_cb);
    if (o->resume)
        uv_close((uv_handle_t *)o->resume, output__closed_cb);
    o->resume = NULL;
}
