/* Deadlines on a libuv loop, many to a timer: the deadlines of one
 * duration (every probe of a check with a 500 ms timeout, say) come due in
 * the order they were armed, so they share one list kept in due order and
 * one libuv timer armed for its head. Arming one is an append, disarming an
 * unlink; libuv's timer heap (a handful of cache misses per insert and per
 * removal at a thousand timers) is touched once per list and loop turn,
 * not once per deadline. A list's timer is not re-armed when its head is
 * disarmed: it may wake the loop once for nothing, at a time the
 * deadlines' owners chose anyway. A list closes its timer when it empties,
 * so a loop with no deadline armed holds no handle of this module. */
#ifndef RECOVERD_LIB_DEADLINE_H
#define RECOVERD_LIB_DEADLINE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct deadline;
typedef void (*deadline_cb)(struct deadline *d);

struct deadline__list;

/* Embedded in its owner; zeroed is disarmed. */
struct deadline {
    struct deadline *prev, *next; /* in its list, due order */
    struct deadline__list *list;  /* NULL: disarmed */
    uint64_t due_ms;              /* the loop's time (uv_now) it is due at */
    uint64_t seq;                 /* arming order: a list runs only the deadlines
                                     armed before its timer fired */
    deadline_cb cb;
};

/* Arm d (disarming it first) to run cb once, ms from now on loop's clock
 * (read now, as a timer armed after a long callback must count from then;
 * lib/uvclock: one armed while timers run comes due in a later timers
 * phase, after the loop has read its sockets). Deadlines of one ms on one loop run in due order,
 * those due together in arming order; cb runs from libuv's timer phase, like a uv_timer's, and may
 * arm or disarm any deadline. 0, or -ENOMEM (d is then left as it was). */
int deadline_start(struct deadline *d, uv_loop_t *loop, deadline_cb cb, uint64_t ms);
/* Disarm d: cb will not run. NULL-safe, and a no-op on a disarmed d. */
void deadline_stop(struct deadline *d);
bool deadline_armed(const struct deadline *d);

#endif
