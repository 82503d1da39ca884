/* The restart strategy's policy: intensity limit within a window and
 * exponential backoff with jitter for processes that die young. Pure
 * bookkeeping on struct service; no I/O. */
#ifndef RECOVERD_RECOVER_RESTART_H
#define RECOVERD_RECOVER_RESTART_H

#include <stdbool.h>
#include <stdint.h>

struct service;

/* Fewer than restart.max restarts within restart.window before now_ms
 * (monotonic ms). Forgets entries older than the window. */
bool restart_allowed(struct service *s, uint64_t now_ms);
/* Count a restart at now_ms. */
void restart_record(struct service *s, uint64_t now_ms);
/* The delay before the next spawn: 0 when the process lived at least
 * restart.stable (and the backoff resets), else the current backoff with
 * +-20% jitter, doubling the backoff up to restart.backoff.max. */
uint64_t restart_delay(struct service *s, uint64_t uptime_ms);
/* +-20% around ms; the only randomness in recoverd. */
uint64_t backoff_jitter(uint64_t ms);
/* The restart strategy's second half: the old process is gone (or the
 * backoff elapsed): spawn and report to the executor. */
void restart_spawn(struct service *s);

#endif
