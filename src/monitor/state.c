/* Service and system state machines. The service machine is the table
 * below; the system's state is derived from its services. */
#include "monitor/state.h"

#include <stdio.h>

#include "analyze/analyzer.h"
#include "lib/clock.h"
#include "config/config-t.h"
#include "daemon/daemon.h"
#include "lib/log.h"
#include "lib/model.h"
#include "store/journal.h"

#define N STATE_NORMAL
#define D STATE_DEGRADED
#define F STATE_FAILED
#define R STATE_RECOVERING
#define V STATE_RECOVERED

/* state x event -> state. Rows: from; columns: STATE_EVENT_MAP order
 * (fault-opened, recovery-started, recovery-succeeded, recovery-failed,
 * gave-up, faults-cleared, quiet). */
static const enum state state__table[STATE__COUNT][EV__COUNT] = {
    [STATE_NORMAL] = {D, R, V, R, F, N, N},
    [STATE_DEGRADED] = {D, R, V, R, F, V, D},
    [STATE_FAILED] = {F, R, V, F, F, V, F},
    [STATE_RECOVERING] = {R, R, V, R, F, V, R},
    [STATE_RECOVERED] = {D, R, V, R, F, V, N},
};

#undef N
#undef D
#undef F
#undef R
#undef V

static const char *const state__event_names[] = {
#define X(e, s) s,
    STATE_EVENT_MAP(X)
#undef X
};

const char *state_event_name(enum state_event ev)
{
    return (unsigned)ev < EV__COUNT ? state__event_names[ev] : "unknown";
}

enum state state_next(enum state from, enum state_event ev)
{
    if ((unsigned)from >= STATE__COUNT || (unsigned)ev >= EV__COUNT)
        return from;
    return state__table[from][ev];
}

static void state__quiet_cb(uv_timer_t *t) { state_quiet_tick(t->data); }

/* One timer serves every service: arm it only when it would not fire in
 * time anyway, so a flapping service cannot keep postponing another's due
 * tick (state_quiet_tick re-arms for what is not yet due). */
static void state__arm_quiet(struct daemon *d)
{
    uv_timer_t *t = &d->quiet_timer;
    if (!uv_is_active((uv_handle_t *)t) || uv_timer_get_due_in(t) > d->cfg->quiet_ms)
        uv_timer_start(t, state__quiet_cb, d->cfg->quiet_ms, 0);
}

void state_service_event(struct service *s, enum state_event ev, const char *cause)
{
    enum state from = s->state, to = state_next(from, ev);
    if (to != from) {
        s->state = to;
        s->state_ms = clock_wall_ms();
        journal_transition(s->d->journal, s->name, from, to, cause, s->state_ms);
        log_event(to == STATE_FAILED ? LOG_ERROR : LOG_INFO, s->name, "state",
                  "from=%s to=%s event=%s cause=\"%s\"", state_name(from), state_name(to),
                  state_event_name(ev), cause);
        if (to == STATE_RECOVERED)
            state__arm_quiet(s->d);
    }
    state_system_update(s->d, cause);
}

static enum state state__system_target(const struct daemon *d)
{
    bool critical = false, recovering = false, open = false;
    for (size_t i = 0; i < d->n_services; i++) {
        const struct service *s = d->services[i];
        if (s->retired)
            continue;
        for (size_t k = 0; k < s->n_checks + 2; k++)
            if (s->slots[k].open) {
                open = true;
                critical |= s->slots[k].fault.severity >= SEVERITY_CRITICAL;
            }
        critical |= s->state == STATE_FAILED;
        recovering |= s->state == STATE_RECOVERING;
    }
    if (critical)
        return STATE_FAILED;
    if (recovering)
        return STATE_RECOVERING;
    if (open)
        return STATE_DEGRADED;
    if (d->state == STATE_NORMAL)
        return STATE_NORMAL;
    return STATE_RECOVERED; /* normal again only after the quiet period */
}

void state_system_update(struct daemon *d, const char *cause)
{
    enum state from = d->state, to = state__system_target(d);
    if (to == from)
        return;
    d->state = to;
    d->state_ms = clock_wall_ms();
    journal_transition(d->journal, NULL, from, to, cause, d->state_ms);
    log_event(to == STATE_FAILED ? LOG_ERROR : LOG_INFO, NULL, "system-state",
              "from=%s to=%s cause=\"%s\"", state_name(from), state_name(to), cause);
    if (to == STATE_RECOVERED)
        state__arm_quiet(d);
}

void state_quiet_tick(struct daemon *d)
{
    uint64_t now = clock_wall_ms(), next = 0;
    for (size_t i = 0; i < d->n_services; i++) {
        struct service *s = d->services[i];
        if (s->retired || s->state != STATE_RECOVERED)
            continue;
        uint64_t due = s->state_ms + d->cfg->quiet_ms;
        if (due <= now + 5)
            state_service_event(s, EV_QUIET, "quiet period elapsed");
        else if (!next || due - now < next)
            next = due - now;
    }
    if (d->state == STATE_RECOVERED) {
        uint64_t due = d->state_ms + d->cfg->quiet_ms;
        if (due <= now + 5) {
            enum state from = d->state;
            d->state = STATE_NORMAL;
            d->state_ms = now;
            journal_transition(d->journal, NULL, from, STATE_NORMAL, "quiet period elapsed", now);
            log_event(LOG_INFO, NULL, "system-state", "from=%s to=normal cause=\"quiet period "
                      "elapsed\"", state_name(from));
        } else if (!next || due - now < next) {
            next = due - now;
        }
    }
    if (next)
        uv_timer_start(&d->quiet_timer, state__quiet_cb, next, 0);
}
