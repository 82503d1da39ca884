/* The loop's clock. libuv counts a timer from the loop's cached time, which
 * is taken once per turn: armed after a callback that ran long (a fork, a
 * journal flush, a busy host), a timer counted from it fires that much
 * early. Every timer whose duration matters is armed through here. */
#ifndef RECOVERD_LIB_UVCLOCK_H
#define RECOVERD_LIB_UVCLOCK_H

#include <stdint.h>
#include <uv.h>

#include "lib/clock.h"

/* uv_timer_start(t, cb, ms, 0) counted from now: the loop's time is
 * brought up to date first. */
void uvclock_arm(uv_timer_t *t, uv_timer_cb cb, uint64_t ms);

/* The loop as a clock_src: CLOCK_MONOTONIC (clock_mono_us) for now, its
 * timers libuv timers armed with uvclock_arm; each timer holds one loop
 * handle until closed. */
struct clock_src uvclock_src(uv_loop_t *loop);

#endif
