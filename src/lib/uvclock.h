/* The loop's clock. libuv counts a timer from the loop's cached time, which
 * is taken once per turn: armed after a callback that ran long (a fork, a
 * journal flush, a busy host), a timer counted from it fires that much
 * early. Every timer whose duration matters is armed through here.
 *
 * The cached time is never moved here (no uv_update_time): libuv 1.44
 * runs, in one timers phase, every timer due by the cached time, looking
 * again after each callback, so a callback that brought the cached time
 * forward made due, in the same phase, the timers armed meanwhile (a
 * probe's next one, a deadline's 1 ms second look). On a loop held long
 * enough (3,000 services, a starved CPU) the phase fed itself: probes
 * started, timed out and started again, thousands of them, for seconds,
 * with their answers waiting unread, exits and spawns unseen. A timer
 * armed here is due at the real now + ms, and always after the cached
 * time (a 0 ms timer armed in the millisecond the turn began is due a
 * millisecond later: at the cached time, libuv would run it in the timers
 * phase that armed it), so each timers phase runs only what was due when
 * it began, and the loop reads its sockets before it judges any deadline
 * armed during it. A "later, from the loop" callback is uvclock_arm(t, cb,
 * 0), never uv_timer_start(t, cb, 0, 0). */
#ifndef RECOVERD_LIB_UVCLOCK_H
#define RECOVERD_LIB_UVCLOCK_H

#include <stdint.h>
#include <uv.h>

#include "lib/clock.h"

/* The loop's clock read now (uv_now's scale, ms), without moving the
 * loop's cached time. */
uint64_t uvclock_now(const uv_loop_t *loop);
/* The timeout to give uv_timer_start for a timer due ms from now: at
 * least 1, due after the cached time. */
uint64_t uvclock_delay(const uv_loop_t *loop, uint64_t ms);
/* uv_timer_start(t, cb, ms, 0) counted from now (uvclock_delay). */
void uvclock_arm(uv_timer_t *t, uv_timer_cb cb, uint64_t ms);
/* Due at due_ms on uvclock_now's scale; if that is past, at the loop's
 * next timers phase (never the one running). */
void uvclock_arm_at(uv_timer_t *t, uv_timer_cb cb, uint64_t due_ms);

/* The loop as a clock_src: CLOCK_MONOTONIC (clock_mono_us) for now, its
 * timers libuv timers armed with uvclock_arm; each timer holds one loop
 * handle until closed. */
struct clock_src uvclock_src(uv_loop_t *loop);

#endif
