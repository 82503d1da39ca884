/* Timers on a grid of the loop's clock, many to one libuv timer: a timer
 * comes due at the start of a slot (grid_ms wide), the one its delay ends
 * in, so every timer of a slot fires from one wakeup, in the order they
 * were armed. The slots are buckets of a wheel (a timer many turns of the
 * wheel ahead waits in its bucket until its own turn); one libuv timer per
 * wheel is armed for the next slot holding a timer. Arming is an append,
 * disarming an unlink: libuv's timer heap is touched once per slot, not
 * once per timer. A wheel closes its timer when it holds none, so a loop
 * with no grid timer armed holds no handle of this module. */
#ifndef RECOVERD_LIB_GRID_H
#define RECOVERD_LIB_GRID_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "lib/grid-t.h"

/* Arm t (disarming it first) to run cb once, at the start of the slot of
 * grid_ms that ms from now falls in (the loop's clock, updated first), or
 * at the next slot when that one has already run. Timers of one slot run
 * in arming order; cb runs from libuv's timer phase and may arm or disarm
 * any grid timer. 0, or -ENOMEM (t is then left as it was). */
int grid_start(struct grid_timer *t, uv_loop_t *loop, grid_cb cb, uint64_t ms, uint64_t grid_ms);
/* Disarm t: cb will not run. NULL-safe, and a no-op on a disarmed t. */
void grid_stop(struct grid_timer *t);
bool grid_armed(const struct grid_timer *t);
/* ms from the loop's time to the start of t's slot, 0 when due or
 * disarmed (as uv_timer_get_due_in). */
uint64_t grid_due_in(const struct grid_timer *t);

#endif
