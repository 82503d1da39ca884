/* Time sources: wall clock for records, monotonic for intervals. */
#ifndef RECOVERD_LIB_CLOCK_H
#define RECOVERD_LIB_CLOCK_H

#include <stddef.h>
#include <stdint.h>

uint64_t clock_wall_ms(void); /* CLOCK_REALTIME, ms since the epoch */
uint64_t clock_mono_us(void); /* CLOCK_MONOTONIC, us */
/* Format wall ms as "2026-11-25T11:39:28.123Z" into buf (>= 32 bytes). */
char *clock_iso8601(uint64_t wall_ms, char *buf, size_t len);

#endif
