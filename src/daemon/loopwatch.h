/* The loop's stall gauge: a timer that measures how late it fires. DESIGN
 * says nothing may hold the loop for more than about a millisecond; this
 * is how a running recoverd (and bench/scale) sees whether that holds. */
#ifndef RECOVERD_DAEMON_LOOPWATCH_H
#define RECOVERD_DAEMON_LOOPWATCH_H

#include <stdint.h>
#include <uv.h>

/* The timer's period. Each tick is a wakeup of the loop: measured with
 * bench/idle on a loaded 2-core VM, 100 a second raised a quiet daemon's
 * CPU from about 0.5 to 6-8 ms a second (issue 10). A stall is seen only
 * when a tick falls due inside it, and then only from that tick on: the
 * longest stall reported is a lower bound, short by up to a period. */
#define LOOPWATCH_PERIOD_MS 10
/* A tick this late counts as a stall (the target, 5 ms). */
#define LOOPWATCH_STALL_NS 5000000ull

struct loopwatch {
    uv_timer_t timer;     /* the tick; data = this; closed by loopwatch_close */
    uint64_t due_ns;      /* uv_hrtime() (CLOCK_MONOTONIC) at which the pending tick is due */
    uint64_t max_late_ns; /* the longest lateness seen, ns */
    uint64_t stalls;      /* ticks later than LOOPWATCH_STALL_NS */
    uint64_t since_ms;    /* CLOCK_REALTIME, ms: when counting began (loopwatch_init) */
};

/* Set w up on loop (its timer initialised, not armed); zeroes the counts. */
void loopwatch_init(struct loopwatch *w, uv_loop_t *loop);
/* Arm the first tick LOOPWATCH_PERIOD_MS from now; each tick re-arms. */
void loopwatch_start(struct loopwatch *w);
/* Account one tick seen at now_ns (uv_hrtime() time) against due_ns and
 * return its lateness in ns (0 when it came early: libuv counts timers in
 * whole milliseconds). The timer's callback; public for its unit test. */
uint64_t loopwatch_tick(struct loopwatch *w, uint64_t now_ns);
/* Close the timer; w must stay valid until the loop has run its close. */
void loopwatch_close(struct loopwatch *w);

#endif
