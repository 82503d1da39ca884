/* Stopping a predecessor's leftovers: see leftover.h.
 *
 * One set per call: a timer for the deadlines (and the /proc watch), one
 * uv_poll per pidfd. They are not our children, so there is no SIGCHLD and
 * no waitpid: a pidfd becomes readable when its process has exited, reaped
 * by whoever adopted it or not. Each entry is a small state machine:
 *
 *              exit           deadline
 *     TERM     STOPPED        SIGKILL the group -> KILL
 *     KILL     KILLED         STUCK
 *
 * (an entry found absent at start is FOUND until the first timer turn
 * reports it, so that nothing is reported from inside the call).
 *
 * Scans are O(N) per event, fine for N <= the number of services. */
#include "recover/leftover.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/procstat.h"
#include "lib/spawn.h"
#include "lib/uvclock.h"

#define LEFTOVER__PROC_POLL_MS 10 /* /proc watch period when there is no pidfd */

enum leftover__state {
    LEFTOVER__FOUND, /* fate known at start (absent), not reported yet */
    LEFTOVER__TERM,  /* stop signal sent, grace running */
    LEFTOVER__KILL,  /* SIGKILL sent, LEFTOVER_KILL_WAIT_MS running */
    LEFTOVER__OVER,  /* fate reported */
};

struct leftover__set;

struct leftover__entry {
    struct leftover l;          /* the caller's entry; l.service is a heap copy */
    struct leftover__set *set;  /* owner */
    enum leftover__state state; /* see the table above */
    enum leftover_fate fate;    /* when FOUND: what to report */
    int pidfd;                  /* watched by poll; -1: watched through /proc */
    uv_poll_t poll;             /* on pidfd; data = this entry */
    uint64_t deadline_ms;       /* loop time, ms: the grace's end, then the kill wait's */
};

struct leftover__set {
    uv_loop_t *loop;               /* borrowed */
    uv_timer_t timer;              /* next deadline or /proc look; data = this set */
    struct leftover_sink sink;     /* copied */
    struct leftover_counts counts; /* fates so far */
    size_t live;                   /* entries not OVER */
    size_t open;                   /* handles not closed yet */
    size_t n;                      /* entries in e */
    struct leftover__entry e[];    /* n of them */
};

static const char *const leftover__names[] = {
#define X(e, s) s,
    LEFTOVER_FATE_MAP(X)
#undef X
};

const char *leftover_fate_name(enum leftover_fate f)
{
    return (unsigned)f < LEFTOVER_FATES ? leftover__names[f] : "?";
}

/* The group: services run setsid, so its id is the leader's pid. The leader
 * alone if nobody is in that group (it moved itself out). */
static void leftover__signal(pid_t pid, int sig)
{
    if (kill(-pid, sig) < 0 && errno == ESRCH)
        kill(pid, sig);
}

static void leftover__free(struct leftover__set *s)
{
    for (size_t i = 0; i < s->n; i++)
        free((char *)s->e[i].l.service);
    free(s);
}

/* After the last handle closed, nothing of the set is left but what done
 * gets. */
static void leftover__closed(struct leftover__set *s)
{
    if (--s->open > 0)
        return;
    struct leftover_counts c = s->counts;
    struct leftover_sink sink = s->sink;
    leftover__free(s);
    sink.done(sink.ctx, &c);
}

static void leftover__timer_closed_cb(uv_handle_t *h)
{
    leftover__closed(h->data);
}

static void leftover__poll_closed_cb(uv_handle_t *h)
{
    struct leftover__entry *e = h->data;
    leftover__closed(e->set);
}

/* Stop watching e's pidfd (its fd is ours to close, libuv never does). */
static void leftover__unwatch(struct leftover__entry *e)
{
    if (e->pidfd < 0)
        return;
    uv_close((uv_handle_t *)&e->poll, leftover__poll_closed_cb);
    close(e->pidfd);
    e->pidfd = -1;
}

static void leftover__finish(struct leftover__entry *e, enum leftover_fate fate)
{
    struct leftover__set *s = e->set;
    leftover__unwatch(e);
    /* The leader is gone: what it left in its group goes too. The group id
     * stays reserved while any member lives, so this reaches no stranger. */
    if (fate == LEFTOVER_STOPPED || fate == LEFTOVER_KILLED)
        kill(-e->l.pid, SIGKILL);
    e->state = LEFTOVER__OVER;
    s->counts.n[fate]++;
    s->live--;
    if (s->sink.gone)
        s->sink.gone(s->sink.ctx, &e->l, fate);
}

static void leftover__exited(struct leftover__entry *e)
{
    leftover__finish(e, e->state == LEFTOVER__TERM ? LEFTOVER_STOPPED : LEFTOVER_KILLED);
}

static void leftover__deadline(struct leftover__entry *e, uint64_t now)
{
    if (e->state == LEFTOVER__KILL) {
        leftover__finish(e, LEFTOVER_STUCK);
        return;
    }
    leftover__signal(e->l.pid, SIGKILL);
    e->state = LEFTOVER__KILL;
    e->deadline_ms = now + LEFTOVER_KILL_WAIT_MS;
}

static void leftover__tick_cb(uv_timer_t *t);

/* Everything is over: close the timer (the pollers closed as they ended).
 * Otherwise wake at the nearest deadline, or sooner for a /proc look. */
static void leftover__arm(struct leftover__set *s)
{
    if (s->live == 0) {
        if (!uv_is_closing((uv_handle_t *)&s->timer))
            uv_close((uv_handle_t *)&s->timer, leftover__timer_closed_cb);
        return;
    }
    uint64_t now = uvclock_now(s->loop), next = UINT64_MAX;
    for (size_t i = 0; i < s->n; i++) {
        const struct leftover__entry *e = &s->e[i];
        if (e->state == LEFTOVER__FOUND)
            next = now;
        else if (e->state != LEFTOVER__OVER && e->deadline_ms < next)
            next = e->deadline_ms;
        if ((e->state == LEFTOVER__TERM || e->state == LEFTOVER__KILL) && e->pidfd < 0 &&
            now + LEFTOVER__PROC_POLL_MS < next)
            next = now + LEFTOVER__PROC_POLL_MS;
    }
    uvclock_arm_at(&s->timer, leftover__tick_cb, next);
}

static void leftover__tick_cb(uv_timer_t *t)
{
    struct leftover__set *s = t->data;
    uint64_t now = uv_now(s->loop);
    for (size_t i = 0; i < s->n; i++) {
        struct leftover__entry *e = &s->e[i];
        if (e->state == LEFTOVER__FOUND)
            leftover__finish(e, e->fate);
        else if (e->state == LEFTOVER__OVER)
            continue;
        else if (e->pidfd < 0 && procstat_start_ticks(e->l.pid) != e->l.start_ticks)
            leftover__exited(e);
        else if (now >= e->deadline_ms)
            leftover__deadline(e, now);
    }
    leftover__arm(s);
}

static void leftover__poll_cb(uv_poll_t *p, int status, int events)
{
    struct leftover__entry *e = p->data;
    if (status < 0)
        leftover__unwatch(e); /* /proc from now on */
    else
        leftover__exited(e);
    leftover__arm(e->set);
}

/* Watch e's process through fd (a pidfd) or, failing that, through /proc. */
static void leftover__watch(struct leftover__entry *e, int fd)
{
    struct leftover__set *s = e->set;
    e->pidfd = -1;
    if (fd < 0)
        return;
    if (uv_poll_init(s->loop, &e->poll, fd) < 0) {
        close(fd);
        return;
    }
    e->poll.data = e;
    e->pidfd = fd;
    s->open++;
    if (uv_poll_start(&e->poll, UV_READABLE, leftover__poll_cb) < 0)
        leftover__unwatch(e);
}

/* Signal e's group if its process still is the one recorded. */
static void leftover__begin(struct leftover__entry *e, uint64_t now)
{
    const struct leftover *l = &e->l;
    e->pidfd = -1;
    e->state = LEFTOVER__FOUND;
    e->fate = LEFTOVER_ABSENT;
    if (l->pid <= 1 || l->start_ticks == 0)
        return;
    /* The pidfd first: if the start time matches after, the fd names the
     * recorded process and not one that took its pid in between. */
    int fd = spawn_pidfd(l->pid);
    if (procstat_start_ticks(l->pid) != l->start_ticks) {
        if (fd >= 0)
            close(fd);
        return;
    }
    leftover__signal(l->pid, l->signal);
    leftover__signal(l->pid, SIGCONT); /* a stopped group cannot act on it */
    e->state = LEFTOVER__TERM;
    e->deadline_ms = now + l->grace_ms;
    leftover__watch(e, fd);
}

int leftover_stop_all(uv_loop_t *loop, const struct leftover *v, size_t n,
                      const struct leftover_sink *sink)
{
    struct leftover__set *s = calloc(1, sizeof *s + n * sizeof s->e[0]);
    if (!s)
        return -ENOMEM;
    s->loop = loop;
    s->sink = *sink;
    s->n = n;
    s->live = n;
    for (size_t i = 0; i < n; i++) {
        s->e[i].l = v[i];
        s->e[i].set = s;
        if (!(s->e[i].l.service = strdup(v[i].service))) {
            leftover__free(s);
            return -ENOMEM;
        }
    }
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    s->open = 1;
    /* The graces count from now, not from the last loop turn: the caller
     * may have worked a while since (a journal read at start). */
    uint64_t now = uvclock_now(loop);
    for (size_t i = 0; i < n; i++)
        leftover__begin(&s->e[i], now);
    leftover__arm(s);
    return 0;
}
