/* Timers many to one libuv timer: a wheel of slots of the loop's clock.
 * A timer comes due at the start of a slot (slot_ms wide), the one its
 * delay ends in, so every timer of a slot fires from one wakeup, in the
 * order they were armed; with 1 ms slots a timer is due to the ms (a
 * request's deadline), with wider ones the timers due close together share
 * a wakeup (the checks' next probes on a 10 ms grid). The slots are the
 * buckets of a wheel (a timer many turns ahead waits in its bucket until
 * its own turn), and one libuv timer per wheel is armed for the earliest
 * slot holding a timer. Arming is an append, disarming an unlink: libuv's
 * timer heap (a handful of cache misses per insert and per removal at a
 * thousand timers) is touched once per slot, not once per timer. A
 * disarmed timer does not re-arm the wheel: it may wake the loop once for
 * nothing, at a time the timer's owner chose anyway.
 *
 * A firing runs callbacks for about 2 ms of the loop at most: timers due
 * beyond that run first in the next firing, after a poll, still in order.
 *
 * A loop has one wheel per slot width in use, found through a short list
 * of the wheels of the thread's loops (a loop is run by one thread; the
 * loop's own memory is left alone). A wheel closes its libuv timer when it
 * holds no timer, so a loop with no wheel timer armed holds no handle of
 * this module. */
#ifndef RECOVERD_LIB_WHEEL_H
#define RECOVERD_LIB_WHEEL_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "lib/wheel-t.h"

/* Arm t (disarming it first) to run cb once, at the start of the slot of
 * slot_ms that ms from now falls in (now: the loop's clock read now, its
 * cached time left alone, lib/uvclock.h), or at the next slot when that
 * one has already run. Timers of one slot run in arming order; one armed
 * from a callback of its wheel waits for a later slot, so a timers phase
 * never runs what it armed. cb runs from libuv's timer phase and may arm
 * or disarm any wheel timer. 0, or -ENOMEM (t is then left as it was). */
int wheel_start(struct wheel_timer *t, uv_loop_t *loop, wheel_cb cb, uint64_t ms, uint64_t slot_ms);
/* Disarm t: cb will not run. NULL-safe, and a no-op on a disarmed t. */
void wheel_stop(struct wheel_timer *t);
bool wheel_armed(const struct wheel_timer *t);
/* ms from the real now to the start of t's slot, 0 when due or disarmed
 * (as uv_timer_get_due_in, counted from now). */
uint64_t wheel_due_in(const struct wheel_timer *t);

#endif
