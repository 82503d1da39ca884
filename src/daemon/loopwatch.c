/* The loop's stall gauge: each turn's busy time, from a prepare hook. */
#include "daemon/loopwatch.h"

#include <time.h>

#include "lib/clock.h"
#include "lib/log.h"

static uint64_t loopwatch__cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* After the wait and its I/O callbacks: what they held of the turn. */
static void loopwatch__check_cb(uv_check_t *c)
{
    struct loopwatch *w = c->data;
    if (!w->turn_ns)
        return;
    uint64_t span = uv_hrtime() - w->turn_ns;
    uint64_t idle = uv_metrics_idle_time(c->loop) - w->idle_ns;
    w->io_ns = span > idle ? span - idle : 0;
}

/* A stall, told with where it went: the lead to its cause. At debug
 * level, or at info within a marked span (a reload, the stop), whose
 * stalls are the span's own. */
static void loopwatch__tell(const struct loopwatch *w, uint64_t busy, uint64_t cpu)
{
    enum log_level level = w->marking ? LOG_INFO : LOG_DEBUG;
    if (busy <= LOOPWATCH_STALL_NS || !log_enabled(level))
        return;
    struct loopwatch_split s = loopwatch_split(w, busy);
    log_event(level, NULL, "loop-stall",
              "busy_ms=%.2f io_ms=%.2f flush_ms=%.2f timers_ms=%.2f cpu_ms=%.2f",
              (double)busy / 1e6, (double)s.io_ns / 1e6, (double)s.flush_ns / 1e6,
              (double)s.timers_ns / 1e6, (double)cpu / 1e6);
}

static void loopwatch__prepare_cb(uv_prepare_t *p)
{
    struct loopwatch *w = p->data;
    uint64_t cpu = 0; /* the turn's CPU time, ns; 0: not counted */
    /* A syscall per turn: only while someone asked (a span, or the debug
     * level, whose stall lines at rest and in a storm need it as much). */
    if (w->marking || log_enabled(LOG_DEBUG)) {
        uint64_t now = loopwatch__cpu_ns();
        cpu = now - w->cpu_ns;
        w->cpu_ns = now;
        if (cpu > w->mark_max_cpu_ns)
            w->mark_max_cpu_ns = cpu;
    }
    if (w->turn_ns) { /* started */
        uint64_t now = uv_hrtime(), more = 0;
        uint64_t busy = loopwatch_turn(w, now, uv_metrics_idle_time(p->loop));
        loopwatch__tell(w, busy, cpu);
        if (loopwatch_warn_due(w, now, busy, &more))
            log_event(LOG_WARN, NULL, "loop-held",
                      "busy_ms=%llu more=%llu what=\"timers, probe deadlines, exits and "
                      "requests waited this long: a host short of CPU, or recoverd\"",
                      (unsigned long long)(busy / 1000000), (unsigned long long)more);
    }
    w->io_ns = 0;
    w->flush_ns = 0;
}

/* The hook goes in at once: libuv runs the prepare hooks started last
 * first, so this one, started before the journal's, runs after its commit
 * and counts it in the turn that made it. */
int loopwatch_init(struct loopwatch *w, uv_loop_t *loop)
{
    *w = (struct loopwatch){.since_ms = clock_wall_ms()};
    uv_prepare_init(loop, &w->prepare); /* cannot fail */
    uv_check_init(loop, &w->check);
    w->prepare.data = w;
    w->check.data = w;
    int r = uv_loop_configure(loop, UV_METRICS_IDLE_TIME);
    if (r == 0) {
        uv_prepare_start(&w->prepare, loopwatch__prepare_cb);
        uv_check_start(&w->check, loopwatch__check_cb);
    }
    return r;
}

struct loopwatch_split loopwatch_split(const struct loopwatch *w, uint64_t busy_ns)
{
    struct loopwatch_split s = {.io_ns = w->io_ns < busy_ns ? w->io_ns : busy_ns};
    uint64_t rest = busy_ns - s.io_ns;
    s.flush_ns = w->flush_ns < rest ? w->flush_ns : rest;
    s.timers_ns = rest - s.flush_ns;
    return s;
}

void loopwatch_flushed(struct loopwatch *w, uint64_t ns)
{
    w->flush_ns += ns;
}

uint64_t loopwatch_turn(struct loopwatch *w, uint64_t now_ns, uint64_t idle_ns)
{
    uint64_t span = now_ns - w->turn_ns, idle = idle_ns - w->idle_ns;
    uint64_t busy = span > idle ? span - idle : 0;
    w->turn_ns = now_ns;
    w->idle_ns = idle_ns;
    if (busy > w->max_busy_ns) {
        w->max_busy_ns = busy;
        w->max_split = loopwatch_split(w, busy);
    }
    if (busy > w->mark_max_ns)
        w->mark_max_ns = busy;
    if (busy > LOOPWATCH_STALL_NS)
        w->stalls++;
    return busy;
}

bool loopwatch_warn_due(struct loopwatch *w, uint64_t now_ns, uint64_t busy_ns, uint64_t *more)
{
    if (busy_ns < LOOPWATCH_WARN_NS)
        return false;
    if (w->warned_ns && now_ns - w->warned_ns < LOOPWATCH_WARN_EVERY_NS) {
        w->unwarned++;
        return false;
    }
    *more = w->unwarned;
    w->unwarned = 0;
    w->warned_ns = now_ns;
    return true;
}

void loopwatch_start(struct loopwatch *w)
{
    w->turn_ns = uv_hrtime();
    w->idle_ns = uv_metrics_idle_time(w->prepare.loop);
    w->cpu_ns = loopwatch__cpu_ns();
}

void loopwatch_mark(struct loopwatch *w)
{
    w->mark_max_ns = 0;
    w->mark_max_cpu_ns = 0;
    w->marking = true;
    w->cpu_ns = loopwatch__cpu_ns();
}

void loopwatch_unmark(struct loopwatch *w)
{
    w->marking = false;
}

void loopwatch_close(struct loopwatch *w)
{
    uv_close((uv_handle_t *)&w->prepare, NULL);
    uv_close((uv_handle_t *)&w->check, NULL);
}
