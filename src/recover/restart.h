/* The restart strategy's policy: intensity limit within a window and
 * exponential backoff with jitter for processes that die young. Its
 * configuration (restart: under a service) and pure bookkeeping, no I/O,
 * so it is tested on its own. */
#ifndef RECOVERD_RECOVER_RESTART_H
#define RECOVERD_RECOVER_RESTART_H

#include <stdbool.h>
#include <stdint.h>

/* restart: { max, window, stable, backoff: { initial, max } } of a
 * service: config_strategy(cfg, STRATEGY_RESTART). */
struct restart_cfg {
    unsigned max;                /* restarts allowed within window; default 5 */
    uint64_t window_ms;          /* default 60000, > 0 */
    uint64_t stable_ms;          /* uptime after which a death restarts at once; default 1000 */
    uint64_t backoff_initial_ms; /* default 100, <= backoff_max_ms */
    uint64_t backoff_max_ms;     /* default 10000 */
};

struct restart_policy {
    uint64_t *log;       /* monotonic ms of recent restarts, oldest first; owned */
    unsigned len;        /* entries used */
    unsigned cap;        /* entries allocated (grows to the limit + 1) */
    uint64_t backoff_ms; /* the next delay for a quick death; 0: the initial one */
};

/* Fewer than rc->max restarts within rc->window before now_ms (monotonic
 * ms). Forgets entries older than the window. */
bool restart_allowed(struct restart_policy *p, const struct restart_cfg *rc, uint64_t now_ms);
/* Count a restart at now_ms (keeps at most rc->max + 1). -ENOMEM or 0. */
int restart_record(struct restart_policy *p, const struct restart_cfg *rc, uint64_t now_ms);
/* The delay before the next spawn: 0 when the process lived at least
 * rc->stable (and the backoff resets), else the current backoff with
 * +-20% jitter, doubling the backoff up to rc->backoff.max. */
uint64_t restart_delay(struct restart_policy *p, const struct restart_cfg *rc, uint64_t uptime_ms);
/* Forget the restarts and the backoff (an operator acted). */
void restart_policy_reset(struct restart_policy *p);
void restart_policy_free(struct restart_policy *p);

#endif
