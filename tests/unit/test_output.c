/* Unit tests of a service's output capture: FIFO, file, rotation, rate cap,
 * close, and a reader (recoverd) that goes away and comes back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/clock.h"
#include "loopwait.h"
#include "recover/output.h"

#define SLAB 65536u /* output.c reads at most this much at once */

struct fixture {
    char dir[64];    /* mkdtemp directory */
    char path[128];  /* dir/svc.log */
    char path1[136]; /* dir/svc.log.1 */
    char fifo[128];  /* dir/svc.pipe */
    uv_loop_t loop;  /* the test's own */
    struct output o; /* under test */
    int closed;      /* closed_cb calls */
};

static int fixture_setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/test_output.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof fx->path, "%s/svc.log", fx->dir);
    snprintf(fx->path1, sizeof fx->path1, "%s.1", fx->path);
    snprintf(fx->fifo, sizeof fx->fifo, "%s/svc.pipe", fx->dir);
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    *state = fx;
    return 0;
}

/* Count (and close) a handle a test left open. */
static void leftover_cb(uv_handle_t *h, void *arg)
{
    ++*(int *)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* The loop must be empty; handles a failed test left are closed first so
 * the files are still removed, then the teardown fails. */
static int fixture_teardown(void **state)
{
    struct fixture *fx = *state;
    int left = 0;
    uv_walk(&fx->loop, leftover_cb, &left);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    int r = uv_loop_close(&fx->loop);
    nftw(fx->dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
    free(fx);
    assert_int_equal(left, 0);
    assert_int_equal(r, 0);
    return 0;
}

static void closed_cb(struct output *o)
{
    struct fixture *fx = (struct fixture *)((char *)o - offsetof(struct fixture, o));
    fx->closed++;
}

/* Close the output and require the callback once and an empty loop. */
static void close_and_drain(struct fixture *fx)
{
    output_close(&fx->o, closed_cb);
    assert_int_equal(fx->o.write_fd, -1);
    assert_int_equal(fx->closed, 0); /* only from the loop */
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(fx->closed, 1);
    assert_null(fx->o.path);
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* Read the whole file into buf (up to len); its size or -1. */
static long file_read(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    long n = (long)fread(buf, 1, len, f);
    fclose(f);
    return n;
}

static void write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        assert_true(w > 0);
        p += w;
        len -= (size_t)w;
    }
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

/* Turn the loop until path holds want bytes. */
static void pump_until_size(struct fixture *fx, const char *path, long want)
{
    loopwait_until(&fx->loop, file_size(path) == want);
}

static void output_writes_land_in_file(void **state)
{
    struct fixture *fx = *state;
    char buf[64] = "";
    assert_int_equal(output_open(&fx->o, &fx->loop, fx->path, fx->fifo, 1 << 20), 0);
    assert_true(fx->o.write_fd >= 0);
    assert_int_equal(file_size(fx->path), 0); /* created at once */
    write_all(fx->o.write_fd, "hello\n", 6);
    pump_until_size(fx, fx->path, 6);
    write_all(fx->o.write_fd, "world\n", 6);
    pump_until_size(fx, fx->path, 12);
    assert_int_equal(file_read(fx->path, buf, sizeof buf), 12);
    assert_memory_equal(buf, "hello\nworld\n", 12);
    close_and_drain(fx);
}

/* Off the loop, before the service is made: the log (0640, empty) and the
 * FIFO (0600) are there; what is there already is left as it is; then
 * output_open opens them and the output flows. */
static void output_prepare_makes_the_files_and_keeps_existing_ones(void **state)
{
    struct fixture *fx = *state;
    struct stat st;
    assert_int_equal(output_prepare(fx->path, fx->fifo), 0);
    assert_int_equal(lstat(fx->path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0640);
    assert_int_equal(st.st_size, 0);
    assert_int_equal(lstat(fx->fifo, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    write_file(fx->path, "kept\n");
    assert_int_equal(output_prepare(fx->path, fx->fifo), 0);
    assert_int_equal(file_size(fx->path), 5);
    assert_int_equal(output_open(&fx->o, &fx->loop, fx->path, fx->fifo, 1 << 20), 0);
    write_all(fx->o.write_fd, "more\n", 5);
    pump_until_size(fx, fx->path, 10);
    close_and_drain(fx);
}

static void output_appends_after_existing_content(void **state)
{
    struct fixture *fx = *state;
    char buf[64] = "";
    write_file(fx->path, "12345678"); /* 8 bytes from a previous recoverd */
    /* The existing 8 bytes count towards max: 2 more fit, then it rotates. */
    assert_int_equal(output_open(&fx->o, &fx->loop, fx->path, fx->fifo, 10), 0);
    write_all(fx->o.write_fd, "abcd", 4);
    pump_until_size(fx, fx->path1, 10);
    pump_until_size(fx, fx->path, 2);
    assert_int_equal(file_read(fx->path1, buf, sizeof buf), 10);
    assert_memory_equal(buf, "12345678ab", 10);
    assert_int_equal(file_read(fx->path, buf, sizeof buf), 2);
    assert_memory_equal(buf, "cd", 2);
    close_and_drain(fx);
}

static unsigned char pattern(size_t i)
{
    return (unsigned char)(i ^ (i >> 8) ^ (i >> 11) ^ 0x5a);
}

static void output_rotates_at_max_bytes(void **state)
{
    struct fixture *fx = *state;
    enum { MAX = 1000, TOTAL = 10 * MAX };
    static unsigned char data[TOTAL], got[2 * MAX];
    char p2[160];
    for (size_t i = 0; i < TOTAL; i++)
        data[i] = pattern(i);
    assert_int_equal(output_open(&fx->o, &fx->loop, fx->path, fx->fifo, MAX), 0);
    /* Odd-sized writes so chunk and rotation boundaries do not line up. */
    for (size_t off = 0; off < TOTAL; off += 333) {
        size_t n = TOTAL - off < 333 ? TOTAL - off : 333;
        write_all(fx->o.write_fd, data + off, n);
        uv_run(&fx->loop, UV_RUN_NOWAIT);
        assert_true(file_size(fx->path) <= MAX);
        assert_true(file_size(fx->path1) <= MAX);
    }
    /* The final state: the newest MAX bytes in path, the MAX before in .1. */
    loopwait_until(&fx->loop, file_read(fx->path, (char *)got, sizeof got) == MAX &&
                                  memcmp(got, data + TOTAL - MAX, MAX) == 0);
    assert_int_equal(file_read(fx->path1, (char *)got, sizeof got), MAX);
    assert_memory_equal(got, data + TOTAL - 2 * MAX, MAX);
    snprintf(p2, sizeof p2, "%s.2", fx->path);
    assert_int_equal(file_size(p2), -1); /* one previous generation only */
    close_and_drain(fx);
}

/* The rate test: a thread writes as fast as the pipe takes it. */
struct flood {
    int fd;           /* non-blocking write end */
    atomic_bool stop; /* set by the loop */
    uint64_t written; /* bytes the thread got into the pipe */
};

static void *flood_main(void *arg)
{
    struct flood *fl = arg;
    static char chunk[SLAB];
    memset(chunk, 'x', sizeof chunk);
    while (!atomic_load(&fl->stop)) {
        ssize_t w = write(fl->fd, chunk, sizeof chunk);
        if (w > 0) {
            fl->written += (uint64_t)w;
        } else if (errno == EAGAIN) {
            struct pollfd p = {.fd = fl->fd, .events = POLLOUT};
            poll(&p, 1, 20);
        } else {
            break;
        }
    }
    return NULL;
}

struct rate_run {
    struct fixture *fx;
    struct flood fl;
    pthread_t thread;
    uv_timer_t tick;       /* every 10 ms: the loop is alive */
    uint64_t last_tick_us; /* monotonic */
    uint64_t max_gap_us;   /* the longest time between two ticks: a figure, not a verdict */
    unsigned ticks;
    unsigned ticks_paused;    /* ticks that ran while reading was capped */
    uint64_t opened_us;       /* monotonic time of output_open */
    uint64_t first_window_us; /* the output's first window, by its own clock */
    long max_first_window;    /* most bytes in the file seen during that window */
    long max_before_900ms;    /* most bytes seen less than 900 ms after the open */
    bool paused;              /* reading was seen stopped by the cap */
};

/* One look at the output, between two turns of the loop or from a tick:
 * what the file holds against the output's own window, and whether the
 * cap has stopped the reading. The size is taken before the clock, so a
 * size counts as "before 900 ms" only if it was. */
static void rate_look(struct rate_run *rr)
{
    long size = file_size(rr->fx->path);
    uint64_t now = clock_mono_us();
    if (rr->fx->o.window_us == rr->first_window_us && size > rr->max_first_window)
        rr->max_first_window = size;
    if (now - rr->opened_us < 900000 && size > rr->max_before_900ms)
        rr->max_before_900ms = size;
    rr->paused |= !rr->fx->o.reading;
}

static void rate_tick_cb(uv_timer_t *t)
{
    struct rate_run *rr = t->data;
    uint64_t now = clock_mono_us();
    if (now - rr->last_tick_us > rr->max_gap_us)
        rr->max_gap_us = now - rr->last_tick_us;
    rr->last_tick_us = now;
    rr->ticks++;
    rr->ticks_paused += !rr->fx->o.reading;
    rate_look(rr);
}

/* Done once the file holds half a window more than one window's worth:
 * the cap stopped the reading and the next window started it again. */
static bool rate_done(struct rate_run *rr)
{
    rate_look(rr);
    return rr->paused && file_size(rr->fx->path) >= (long)(OUTPUT_RATE_BYTES * 3 / 2);
}

static void output_rate_cap_bounds_bytes_and_keeps_loop_responsive(void **state)
{
    struct fixture *fx = *state;
    struct rate_run rr = {.fx = fx};
    assert_int_equal(output_open(&fx->o, &fx->loop, fx->path, fx->fifo, 1ull << 30), 0);
    rr.opened_us = clock_mono_us();
    rr.first_window_us = fx->o.window_us;
    rr.fl.fd = fx->o.write_fd;
    int fl = fcntl(rr.fl.fd, F_GETFL);
    assert_int_equal(fcntl(rr.fl.fd, F_SETFL, fl | O_NONBLOCK), 0);
    uv_timer_init(&fx->loop, &rr.tick);
    rr.tick.data = &rr;
    uv_update_time(&fx->loop);
    rr.last_tick_us = clock_mono_us();
    uv_timer_start(&rr.tick, rate_tick_cb, 10, 10);
    assert_int_equal(pthread_create(&rr.thread, NULL, flood_main, &rr.fl), 0);
    loopwait_until(&fx->loop, rate_done(&rr));
    uint64_t took_us = clock_mono_us() - rr.opened_us;
    uint64_t window_at_end = fx->o.window_us;
    atomic_store(&rr.fl.stop, true);
    pthread_join(rr.thread, NULL);
    long size_at_end = file_size(fx->path);
    uv_close((uv_handle_t *)&rr.tick, NULL);
    output_close(&fx->o, closed_cb);
    uv_run(&fx->loop, UV_RUN_DEFAULT);

    assert_int_equal(fx->closed, 1);
    print_message("rate: written=%llu first_window=%ld before_900ms=%ld at_end=%ld in %llu ms, "
                  "max_gap_ms=%llu ticks=%u (%u paused)\n",
                  (unsigned long long)rr.fl.written, rr.max_first_window, rr.max_before_900ms,
                  size_at_end, (unsigned long long)took_us / 1000,
                  (unsigned long long)rr.max_gap_us / 1000, rr.ticks, rr.ticks_paused);
    /* The flood did exceed the cap, so the cap was exercised... */
    assert_true(rr.paused);
    assert_true(size_at_end >= (long)(OUTPUT_RATE_BYTES * 3 / 2));
    /* ...and held: one window's worth (plus one read) in the first window,
     * by the output's own clock and by ours (the first window lasts 1 s). */
    assert_true(rr.max_first_window <= (long)(OUTPUT_RATE_BYTES + SLAB));
    assert_true(rr.max_before_900ms <= (long)(OUTPUT_RATE_BYTES + SLAB));
    /* Reading resumed in a window of its own. */
    assert_true(window_at_end != rr.first_window_us);
    /* The writer was held back by the pipe, not reading ahead unboundedly. */
    assert_true(rr.fl.written <= (uint64_t)size_at_end + 4 * SLAB + (1u << 20));
    /* The loop kept running timers while the cap held the reading (how
     * promptly is the max_gap figure above, for a benchmark to judge). */
    assert_true(rr.ticks_paused >= 1);
}

static void output_close_calls_back_and_loop_ends(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(output_open(&fx->o, &fx->loop, fx->path, fx->fifo, 100), 0);
    int wfd = fx->o.write_fd;
    close_and_drain(fx);
    assert_int_equal(fcntl(wfd, F_GETFD), -1); /* the write end is closed */
    assert_int_equal(errno, EBADF);
    assert_int_equal(fx->o.log_fd, -1);
    /* The teardown asserts uv_loop_close() == 0: no handle is left. */
}

static void output_close_without_callback_still_frees(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(output_open(&fx->o, &fx->loop, fx->path, fx->fifo, 100), 0);
    output_close(&fx->o, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_null(fx->o.path);
}

static void output_open_fails_cleanly_on_bad_path(void **state)
{
    struct fixture *fx = *state;
    char bad[200], bad_fifo[200];
    snprintf(bad, sizeof bad, "%s/missing/dir/svc.log", fx->dir);
    snprintf(bad_fifo, sizeof bad_fifo, "%s/missing/dir/svc.pipe", fx->dir);
    assert_int_equal(output_open(&fx->o, &fx->loop, bad, bad_fifo, 100), -ENOENT);
    assert_int_equal(fx->o.write_fd, -1);
    assert_int_equal(fx->o.log_fd, -1);
    assert_null(fx->o.path);
    /* Nothing to close: the teardown's uv_loop_close() must succeed. */
}

/* Write what the pipe takes of *len more bytes; true once all are written
 * and the file holds want. Notes whether the cap ever stopped the reading. */
static bool feed_step(struct fixture *fx, size_t *len, long want, bool *paused)
{
    static char chunk[SLAB];
    memset(chunk, 'y', sizeof chunk);
    *paused |= !fx->o.reading;
    while (*len > 0) {
        ssize_t w = write(fx->o.write_fd, chunk, *len < sizeof chunk ? *len : sizeof chunk);
        if (w <= 0)
            break; /* the pipe is full: the loop reads, then more */
        *len -= (size_t)w;
    }
    return *len == 0 && file_size(fx->path) >= want;
}

/* Write len bytes without blocking while turning the loop, until path
 * holds want bytes. */
static void feed(struct fixture *fx, size_t len, long want, bool *paused)
{
    int fl = fcntl(fx->o.write_fd, F_GETFL);
    assert_int_equal(fcntl(fx->o.write_fd, F_SETFL, fl | O_NONBLOCK), 0);
    loopwait_until(&fx->loop, feed_step(fx, &len, want, paused));
}

/* A writer below the cap in each window is never held back: 6 MiB in one
 * window and 6 MiB in the next are read at once, though together they are
 * over the cap. The windows are the output's own (window_us), so however
 * slowly a busy host feeds it, each part stays within one window's cap. */
static void output_rate_window_restarts_each_second(void **state)
{
    struct fixture *fx = *state;
    const long part = (long)(OUTPUT_RATE_BYTES / 4 * 3);
    bool paused = false;
    assert_int_equal(output_open(&fx->o, &fx->loop, fx->path, fx->fifo, 1ull << 30), 0);
    uint64_t first = fx->o.window_us;
    feed(fx, (size_t)part, part, &paused);
    /* Past the current window: the next read opens a new one. */
    poll_until(clock_mono_us() >= fx->o.window_us + 1000000);
    feed(fx, (size_t)part, 2 * part, &paused);
    assert_true(fx->o.window_us != first);
    assert_false(paused);
    close_and_drain(fx);
}

static void free_cb(struct output *o)
{
    free(o);
}

/* The owner may free the output in the callback (service.c frees the
 * service): no handle may be touched after it. ASan checks. */
static void output_close_callback_may_free_the_output(void **state)
{
    struct fixture *fx = *state;
    struct output *o = malloc(sizeof *o);
    assert_non_null(o);
    assert_int_equal(output_open(o, &fx->loop, fx->path, fx->fifo, 100), 0);
    output_close(o, free_cb);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
}

/* ---- the FIFO ---- */

/* The log's whole content as a string (up to len - 1 bytes). */
static const char *log_text(struct fixture *fx, char *buf, size_t len)
{
    long n = file_read(fx->path, buf, len - 1);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

/* A real child with the children's end as its stdout and stderr, as
 * lib/spawn.c gives it: what it writes reaches the log, and its exit is no
 * end of the capture. */
static void output_child_writes_reach_the_log(void **state)
{
    struct fixture *fx = *state;
    char buf[64];
    struct stat st;
    assert_int_equal(output_open(&fx->o, &fx->loop, fx->path, fx->fifo, 1 << 20), 0);
    assert_int_equal(lstat(fx->fifo, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fx->o.write_fd, 1);
    posix_spawn_file_actions_adddup2(&fa, fx->o.write_fd, 2);
    char *argv[] = {"/bin/sh", "-c", "echo out; echo err >&2", NULL};
    pid_t pid;
    assert_int_equal(posix_spawn(&pid, argv[0], &fa, NULL, argv, NULL), 0);
    posix_spawn_file_actions_destroy(&fa);
    int wst = 0;
    assert_int_equal(waitpid(pid, &wst, 0), pid);
    assert_true(WIFEXITED(wst) && WEXITSTATUS(wst) == 0);
    loopwait_until(&fx->loop, strcmp(log_text(fx, buf, sizeof buf), "out\nerr\n") == 0);
    /* A later life of the service writes on through the same FIFO. */
    write_all(fx->o.write_fd, "next\n", 5);
    loopwait_until(&fx->loop, strcmp(log_text(fx, buf, sizeof buf), "out\nerr\nnext\n") == 0);
    close_and_drain(fx);
}

/* Write len bytes to fd with SIGPIPE blocked: 0, or the errno of a failed
 * write; *sigpipe tells whether the kernel raised SIGPIPE (then consumed). */
static int write_noting_sigpipe(int fd, const char *buf, size_t len, bool *sigpipe)
{
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    int e = 0;
    while (len > 0 && e == 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0) {
            e = errno;
        } else {
            buf += w;
            len -= (size_t)w;
        }
    }
    sigpending(&pending);
    *sigpipe = sigismember(&pending, SIGPIPE);
    if (*sigpipe) {
        struct timespec zero = {0};
        sigtimedwait(&pipe_set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return e;
}

/* recoverd dies (its ends of the FIFO closed, as a crash closes them): the
 * service, holding only the children's end, writes on without EPIPE or
 * SIGPIPE, and the next recoverd's output_open on the same paths gets what
 * was written meanwhile into the log, in order, before what comes after. */
static void output_writer_survives_the_readers_absence(void **state)
{
    struct fixture *fx = *state;
    char buf[128];
    bool sigpipe = true;
    assert_int_equal(output_open(&fx->o, &fx->loop, fx->path, fx->fifo, 1 << 20), 0);
    write_all(fx->o.write_fd, "before\n", 7);
    loopwait_until(&fx->loop, strcmp(log_text(fx, buf, sizeof buf), "before\n") == 0);
    int service = fcntl(fx->o.write_fd, F_DUPFD_CLOEXEC, 0);
    assert_true(service >= 0);
    close_and_drain(fx);

    assert_int_equal(write_noting_sigpipe(service, "gap 1\n", 6, &sigpipe), 0);
    assert_false(sigpipe);
    assert_int_equal(write_noting_sigpipe(service, "gap 2\n", 6, &sigpipe), 0);
    assert_false(sigpipe);
    assert_string_equal(log_text(fx, buf, sizeof buf), "before\n"); /* nobody read it */

    fx->closed = 0;
    assert_int_equal(output_open(&fx->o, &fx->loop, fx->path, fx->fifo, 1 << 20), 0);
    write_all(service, "after\n", 6);
    loopwait_until(&fx->loop,
                   strcmp(log_text(fx, buf, sizeof buf), "before\ngap 1\ngap 2\nafter\n") == 0);
    close(service);
    close_and_drain(fx);
}

/* While no recoverd reads, the FIFO takes OUTPUT_FIFO_BYTES before a
 * writer waits (as root; another user gets at least the kernel's 64 KiB),
 * and the next recoverd gets all of it, byte for byte. */
static void output_fifo_holds_a_megabyte_while_nobody_reads(void **state)
{
    struct fixture *fx = *state;
    static unsigned char chunk[4096], got[2 * OUTPUT_FIFO_BYTES];
    size_t total = 0;
    assert_int_equal(output_open(&fx->o, &fx->loop, fx->path, fx->fifo, 1ull << 30), 0);
    int service = fcntl(fx->o.write_fd, F_DUPFD_CLOEXEC, 0);
    assert_true(service >= 0);
    int size = fcntl(service, F_GETPIPE_SZ);
    print_message("fifo capacity: %d bytes\n", size);
    if (geteuid() == 0)
        assert_int_equal(size, OUTPUT_FIFO_BYTES);
    else
        assert_true(size >= 64 << 10);
    close_and_drain(fx);
    /* Non-blocking for the test only: a full pipe then says EAGAIN instead
     * of hanging it. */
    assert_int_equal(fcntl(service, F_SETFL, fcntl(service, F_GETFL) | O_NONBLOCK), 0);
    for (;;) {
        for (size_t i = 0; i < sizeof chunk; i++)
            chunk[i] = pattern(total + i);
        ssize_t w = write(service, chunk, sizeof chunk);
        if (w < 0) {
            assert_int_equal(errno, EAGAIN);
            break;
        }
        total += (size_t)w;
        assert_true(total <= (size_t)size);
    }
    assert_int_equal(total, (size_t)size);

    fx->closed = 0;
    assert_int_equal(output_open(&fx->o, &fx->loop, fx->path, fx->fifo, 1ull << 30), 0);
    pump_until_size(fx, fx->path, (long)total);
    assert_int_equal(file_read(fx->path, (char *)got, sizeof got), (long)total);
    for (size_t i = 0; i < total; i++)
        if (got[i] != pattern(i))
            fail_msg("byte %zu of the log is not the one written", i);
    close(service);
    close_and_drain(fx);
}

/* What was planted at the FIFO's path is removed and a FIFO of ours made:
 * the target of a link is never opened, written or changed. */
static void output_planted_links_are_replaced_never_followed(void **state)
{
    struct fixture *fx = *state;
    char bait[160], other[160], buf[64];
    struct stat st, other_st, w_st;
    snprintf(bait, sizeof bait, "%s/bait", fx->dir);
    snprintf(other, sizeof other, "%s/other.pipe", fx->dir);
    write_file(bait, "precious\n");
    assert_int_equal(chmod(bait, 0644), 0);
    assert_int_equal(mkfifo(other, 0600), 0);
    assert_int_equal(stat(other, &other_st), 0);
    const char *targets[] = {bait, other};
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(symlink(targets[i], fx->fifo), 0);
        assert_int_equal(output_open(&fx->o, &fx->loop, fx->path, fx->fifo, 1 << 20), 0);
        assert_int_equal(lstat(fx->fifo, &st), 0);
        assert_true(S_ISFIFO(st.st_mode));
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_int_equal(fstat(fx->o.write_fd, &w_st), 0);
        assert_true(w_st.st_ino == st.st_ino && w_st.st_ino != other_st.st_ino);
        write_all(fx->o.write_fd, "x\n", 2);
        pump_until_size(fx, fx->path, 2 * (long)(i + 1));
        fx->closed = 0;
        close_and_drain(fx);
        assert_int_equal(unlink(fx->fifo), 0);
    }
    assert_int_equal(file_read(bait, buf, sizeof buf), 9);
    assert_memory_equal(buf, "precious\n", 9);
    assert_int_equal(stat(bait, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    assert_int_equal(lstat(other, &st), 0);
    assert_true(S_ISFIFO(st.st_mode) && st.st_ino == other_st.st_ino);
}

/* A regular file, or a FIFO others may open, is not trusted: replaced by a
 * FIFO that only recoverd's user may open. */
static void output_untrusted_things_at_the_fifo_path_are_replaced(void **state)
{
    struct fixture *fx = *state;
    struct stat st;
    write_file(fx->fifo, "left here\n");
    assert_int_equal(output_open(&fx->o, &fx->loop, fx->path, fx->fifo, 1 << 20), 0);
    assert_int_equal(lstat(fx->fifo, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
    close_and_drain(fx);

    assert_int_equal(chmod(fx->fifo, 0666), 0);
    fx->closed = 0;
    assert_int_equal(output_open(&fx->o, &fx->loop, fx->path, fx->fifo, 1 << 20), 0);
    assert_int_equal(lstat(fx->fifo, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    write_all(fx->o.write_fd, "ok\n", 3);
    pump_until_size(fx, fx->path, 3);
    close_and_drain(fx);
}

/* Two opens, two file descriptions: recoverd's end is non-blocking for the
 * loop, the children's blocks (a full pipe holds a service back rather than
 * failing its write with EAGAIN); both O_RDWR, both close-on-exec, both the
 * FIFO at the path. */
static void output_childrens_end_blocks_and_recoverds_does_not(void **state)
{
    struct fixture *fx = *state;
    struct stat path_st, r_st, w_st;
    uv_os_fd_t rfd = -1;
    assert_int_equal(output_open(&fx->o, &fx->loop, fx->path, fx->fifo, 1 << 20), 0);
    assert_int_equal(uv_fileno((uv_handle_t *)&fx->o.pipe, &rfd), 0);
    int rfl = fcntl(rfd, F_GETFL), wfl = fcntl(fx->o.write_fd, F_GETFL);
    assert_true(rfl & O_NONBLOCK);
    assert_false(wfl & O_NONBLOCK);
    assert_int_equal(rfl & O_ACCMODE, O_RDWR);
    assert_int_equal(wfl & O_ACCMODE, O_RDWR);
    assert_true(fcntl(rfd, F_GETFD) & FD_CLOEXEC);
    assert_true(fcntl(fx->o.write_fd, F_GETFD) & FD_CLOEXEC);
    assert_int_equal(stat(fx->fifo, &path_st), 0);
    assert_int_equal(fstat(rfd, &r_st), 0);
    assert_int_equal(fstat(fx->o.write_fd, &w_st), 0);
    assert_true(r_st.st_ino == path_st.st_ino && w_st.st_ino == path_st.st_ino);
    close_and_drain(fx);
}

/* Regression (fixed): output__rotate(): when rename(path, path.1)
 * failed, it reopened the same full file (size == max_bytes), so room
 * stayed 0 and the while loop rotated again forever, blocking the loop
 * and flooding the log with log-rotate-failed. Here path.1 is a directory,
 * so rename() fails with EISDIR. Expected: output is dropped (or the file
 * truncated) and output__write returns; the file never exceeds max_bytes.
 * Run in a child with a deadline so the spin cannot hang the suite. */
static void output_rotation_failure_does_not_spin(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(mkdir(fx->path1, 0700), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(60);                              /* a backstop if the parent's kill never comes */
        if (!freopen("/dev/null", "w", stderr)) /* the spin logs without end */
            _exit(3);
        if (output_open(&fx->o, &fx->loop, fx->path, fx->fifo, 100) < 0)
            _exit(2);
        char buf[300];
        memset(buf, 'z', sizeof buf);
        if (write(fx->o.write_fd, buf, sizeof buf) != (ssize_t)sizeof buf)
            _exit(2);
        for (int i = 0; i < 100; i++) { /* 100 ms of loop turns */
            uv_run(&fx->loop, UV_RUN_NOWAIT);
            usleep(1000);
        }
        _exit(file_size(fx->path) <= 100 ? 0 : 1);
    }
    /* 100 turns take a moment, longer on a busy host; a spin never ends. */
    int st = 0;
    uint64_t deadline = clock_mono_us() + LOOPWAIT_MS * 1000ull;
    pid_t w;
    while ((w = waitpid(pid, &st, WNOHANG)) == 0 && clock_mono_us() < deadline)
        loopwait_nap(10);
    if (w == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        rmdir(fx->path1);
        fail_msg("output__write spun for %d s after a failed rotation", LOOPWAIT_MS / 1000);
    }
    rmdir(fx->path1);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
#define FX(t) cmocka_unit_test_setup_teardown(t, fixture_setup, fixture_teardown)
    const struct CMUnitTest tests[] = {
        FX(output_writes_land_in_file),
        FX(output_appends_after_existing_content),
        FX(output_prepare_makes_the_files_and_keeps_existing_ones),
        FX(output_rotates_at_max_bytes),
        FX(output_rate_cap_bounds_bytes_and_keeps_loop_responsive),
        FX(output_rate_window_restarts_each_second),
        FX(output_close_calls_back_and_loop_ends),
        FX(output_close_callback_may_free_the_output),
        FX(output_close_without_callback_still_frees),
        FX(output_open_fails_cleanly_on_bad_path),
        FX(output_rotation_failure_does_not_spin),
        FX(output_child_writes_reach_the_log),
        FX(output_writer_survives_the_readers_absence),
        FX(output_fifo_holds_a_megabyte_while_nobody_reads),
        FX(output_planted_links_are_replaced_never_followed),
        FX(output_untrusted_things_at_the_fifo_path_are_replaced),
        FX(output_childrens_end_blocks_and_recoverds_does_not),
    };
#undef FX
    return cmocka_run_group_tests(tests, NULL, NULL);
}
