/* Service and system state machines. The service machine is the table
 * below; the system's state is derived from counters its services keep. */
#include "monitor/state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "lib/model.h"
#include "lib/uvclock.h"
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
    [STATE_NORMAL] = {D, R, V, R, F, N, N},    [STATE_DEGRADED] = {D, R, V, R, F, V, D},
    [STATE_FAILED] = {F, R, V, F, F, V, F},    [STATE_RECOVERING] = {R, R, V, R, F, V, R},
    [STATE_RECOVERED] = {D, R, V, R, F, V, N},
};

#undef N
#undef D
#undef F
#undef R
#undef V

MODEL_NAME_OF(state_event_name, state_event, STATE_EVENT_MAP, EV__COUNT)

enum state state_next(enum state from, enum state_event ev)
{
    if ((unsigned)from >= STATE__COUNT || (unsigned)ev >= EV__COUNT)
        return from;
    return state__table[from][ev];
}

static void state__quiet_cb(uv_timer_t *t)
{
    state_quiet_tick(t->data);
}

int monitor_init(struct monitor *m, uv_loop_t *loop, struct journal *j, uint64_t quiet_ms)
{
    int r = uv_timer_init(loop, &m->quiet_timer);
    if (r < 0)
        return r;
    m->quiet_timer.data = m;
    m->journal = j;
    m->quiet_ms = quiet_ms;
    m->state = STATE_NORMAL;
    m->state_ms = clock_wall_ms();
    return 0;
}

void monitor_close(struct monitor *m)
{
    uv_close((uv_handle_t *)&m->quiet_timer, NULL);
    free(m->list);
    m->list = NULL;
    m->n = m->cap = 0;
}

int state_register(struct monitor *m, struct svc_state *st, const char *name)
{
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        struct svc_state **v = realloc(m->list, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        m->list = v;
        m->cap = cap;
    }
    st->m = m;
    st->name = name;
    if (!st->state_ms) {
        st->state = STATE_NORMAL;
        st->state_ms = clock_wall_ms();
    }
    st->index = m->n;
    m->list[m->n++] = st;
    m->by_state[st->state]++;
    m->open_faults += st->open_faults;
    m->critical_faults += st->critical;
    return 0;
}

void state_unregister(struct svc_state *st)
{
    struct monitor *m = st->m;
    if (!m || st->index == SIZE_MAX)
        return;
    m->list[st->index] = m->list[--m->n];
    m->list[st->index]->index = st->index;
    st->index = SIZE_MAX;
    m->by_state[st->state]--;
    m->open_faults -= st->open_faults;
    m->critical_faults -= st->critical;
}

/* One timer serves every service: arm it only when it would not fire in
 * time anyway, so a flapping service cannot keep postponing another's due
 * tick (state_quiet_tick re-arms for what is not yet due). */
static void state__arm_quiet(struct monitor *m)
{
    uv_timer_t *t = &m->quiet_timer;
    if (!uv_is_active((uv_handle_t *)t) || uv_timer_get_due_in(t) > m->quiet_ms)
        uvclock_arm(t, state__quiet_cb, m->quiet_ms);
}

static bool state__registered(const struct svc_state *st)
{
    return st->m && st->index != SIZE_MAX;
}

void state_service_event(struct svc_state *st, enum state_event ev, const char *cause)
{
    enum state from = st->state, to = state_next(from, ev);
    if (to != from) {
        if (state__registered(st)) {
            st->m->by_state[from]--;
            st->m->by_state[to]++;
        }
        st->state = to;
        st->state_ms = clock_wall_ms();
        journal_transition(st->m->journal, st->name, from, to, cause, st->state_ms);
        log_event(to == STATE_FAILED ? LOG_ERROR : LOG_INFO, st->name, "state",
                  "from=%s to=%s event=%s cause=\"%s\"", state_name(from), state_name(to),
                  state_event_name(ev), cause);
        if (to == STATE_RECOVERED)
            state__arm_quiet(st->m);
    }
    state_system_update(st->m, cause);
}

void state_fault_count(struct svc_state *st, int delta, bool critical)
{
    st->open_faults += delta;
    st->critical += critical ? delta : 0;
    if (state__registered(st)) {
        st->m->open_faults += delta;
        st->m->critical_faults += critical ? delta : 0;
    }
}

static enum state state__system_target(const struct monitor *m)
{
    if (m->critical_faults || m->by_state[STATE_FAILED])
        return STATE_FAILED;
    if (m->by_state[STATE_RECOVERING])
        return STATE_RECOVERING;
    if (m->open_faults)
        return STATE_DEGRADED;
    if (m->state == STATE_NORMAL)
        return STATE_NORMAL;
    return STATE_RECOVERED; /* normal again only after the quiet period */
}

static void state__system_set(struct monitor *m, enum state to, const char *cause)
{
    enum state from = m->state;
    m->state = to;
    m->state_ms = clock_wall_ms();
    journal_transition(m->journal, NULL, from, to, cause, m->state_ms);
    log_event(to == STATE_FAILED ? LOG_ERROR : LOG_INFO, NULL, "system-state",
              "from=%s to=%s cause=\"%s\"", state_name(from), state_name(to), cause);
    if (to == STATE_RECOVERED)
        state__arm_quiet(m);
}

void state_system_update(struct monitor *m, const char *cause)
{
    enum state to = state__system_target(m);
    if (to != m->state)
        state__system_set(m, to, cause);
}

/* Rare (once per quiet period at most): the scan is fine. */
void state_quiet_tick(struct monitor *m)
{
    uint64_t now = clock_wall_ms(), next = 0;
    for (size_t i = 0; i < m->n; i++) {
        struct svc_state *st = m->list[i];
        if (st->state != STATE_RECOVERED)
            continue;
        uint64_t due = st->state_ms + m->quiet_ms;
        if (due <= now)
            state_service_event(st, EV_QUIET, "quiet period elapsed");
        else if (!next || due - now < next)
            next = due - now;
    }
    if (m->state == STATE_RECOVERED) {
        uint64_t due = m->state_ms + m->quiet_ms;
        if (due <= now && state__system_target(m) == STATE_RECOVERED)
            state__system_set(m, STATE_NORMAL, "quiet period elapsed");
        else if (due > now && (!next || due - now < next))
            next = due - now;
    }
    /* The loop clock is coarse (a tick may fire a few ms early by the wall
     * clock): a due time not reached yet is simply re-armed, never bent. */
    if (next)
        uvclock_arm(&m->quiet_timer, state__quiet_cb, next);
}
