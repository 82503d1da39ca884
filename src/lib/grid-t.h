/* A timer on a grid of the loop's clock (lib/grid.h). Types only. */
#ifndef RECOVERD_LIB_GRID_T_H
#define RECOVERD_LIB_GRID_T_H

#include <stdint.h>

struct grid_timer;
typedef void (*grid_cb)(struct grid_timer *t);

struct grid__wheel;

/* Embedded in its owner; zeroed is disarmed. */
struct grid_timer {
    struct grid_timer *prev, *next; /* in its bucket, arming order */
    struct grid__wheel *wheel;      /* NULL: disarmed */
    uint64_t slot;                  /* due at the start of this slot (uv_now / grid_ms) */
    grid_cb cb;
};

#endif
