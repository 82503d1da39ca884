/* Jittered delays for anything that retries: restarts, webhook deliveries. */
#ifndef RECOVERD_LIB_BACKOFF_H
#define RECOVERD_LIB_BACKOFF_H

#include <stdint.h>

/* +-20% around ms (ms < 5 unchanged); the only randomness in recoverd, and
 * it decides when, never what happened. */
uint64_t backoff_jitter(uint64_t ms);

#endif
