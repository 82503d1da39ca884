/* Restart intensity and backoff, after Erlang/OTP's supervisor: at most
 * `max` restarts within `window`, and a process that dies before it was
 * `stable` waits longer each time so a crash loop cannot spin the host. */
#include "recover/restart.h"

#include <stdlib.h>
#include <string.h>

#include "core/config-t.h"
#include "core/service-t.h"

bool restart_allowed(struct service *s, uint64_t now_ms)
{
    const struct restart_cfg *rc = &s->cfg->restart;
    unsigned keep = 0;
    for (unsigned i = 0; i < s->restart_log_len; i++)
        if (now_ms - s->restart_log[i] < rc->window_ms)
            s->restart_log[keep++] = s->restart_log[i];
    s->restart_log_len = keep;
    return s->restart_log_len < rc->max;
}

void restart_record(struct service *s, uint64_t now_ms)
{
    unsigned cap = s->cfg->restart.max + 1;
    if (s->restart_log_len == cap) {
        memmove(s->restart_log, s->restart_log + 1, (cap - 1) * sizeof *s->restart_log);
        s->restart_log_len--;
    }
    s->restart_log[s->restart_log_len++] = now_ms;
}

uint64_t backoff_jitter(uint64_t ms)
{
    if (ms < 5)
        return ms;
    /* Jitter spreads restarts of services that died together (shared cause). */
    uint64_t span = ms * 2 / 5;
    return ms - ms / 5 + (uint64_t)random() % (span + 1);
}

uint64_t restart_delay(struct service *s, uint64_t uptime_ms)
{
    const struct restart_cfg *rc = &s->cfg->restart;
    if (uptime_ms >= rc->stable_ms) {
        s->backoff_ms = rc->backoff_initial_ms;
        return 0;
    }
    uint64_t delay = backoff_jitter(s->backoff_ms);
    s->backoff_ms = s->backoff_ms * 2 > rc->backoff_max_ms ? rc->backoff_max_ms : s->backoff_ms * 2;
    if (s->backoff_ms == 0)
        s->backoff_ms = rc->backoff_initial_ms;
    return delay;
}
