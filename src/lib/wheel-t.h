/* A timer on a wheel of the loop's clock (lib/wheel.h). Types only. */
#ifndef RECOVERD_LIB_WHEEL_T_H
#define RECOVERD_LIB_WHEEL_T_H

#include <stdint.h>

struct wheel_timer;
typedef void (*wheel_cb)(struct wheel_timer *t);

struct wheel;

/* Embedded in its owner; zeroed is disarmed. */
struct wheel_timer {
    struct wheel_timer *prev, *next; /* in its bucket, arming order */
    struct wheel *wheel;             /* NULL: disarmed */
    uint64_t slot;                   /* due at the start of this slot (uv_now / slot_ms) */
    wheel_cb cb;
};

#endif
