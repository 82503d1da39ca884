/* The state machine of a service and of the system (DESIGN.md section 2):
 * a state x event table; every transition is journaled with its cause.
 * The system's state is derived from counters its services keep up to
 * date, so an event costs O(1), not a scan of every service. */
#ifndef RECOVERD_MONITOR_STATE_H
#define RECOVERD_MONITOR_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lib/model-t.h"

struct journal;

#define STATE_EVENT_MAP(X)                                                                         \
    X(FAULT_OPENED, "fault-opened")                                                                \
    X(RECOVERY_STARTED, "recovery-started")                                                        \
    X(RECOVERY_SUCCEEDED, "recovery-succeeded")                                                    \
    X(RECOVERY_FAILED, "recovery-failed")                                                          \
    X(GAVE_UP, "gave-up")                                                                          \
    X(FAULTS_CLEARED, "faults-cleared")                                                            \
    X(QUIET, "quiet")

enum state_event {
#define X(e, s) EV_##e,
    STATE_EVENT_MAP(X)
#undef X
        EV__COUNT
};

/* The system: every service's state part registers here. */
struct monitor {
    struct journal *journal; /* borrowed */
    uv_timer_t quiet_timer;  /* recovered -> normal; data = this */
    uint64_t quiet_ms;       /* the quiet period */
    enum state state;        /* the system's state */
    uint64_t state_ms;       /* CLOCK_REALTIME ms of its last transition */
    struct svc_state **list; /* n registered parts (order irrelevant) */
    size_t n, cap;
    unsigned by_state[STATE__COUNT]; /* registered services in each state */
    unsigned open_faults;            /* open faults of registered services */
    unsigned critical_faults;        /* of which critical */
};

/* One service's place in the machine. */
struct svc_state {
    struct monitor *m;    /* the system; borrowed */
    const char *name;     /* the service's; borrowed */
    enum state state;     /* as journaled */
    uint64_t state_ms;    /* CLOCK_REALTIME ms of the last transition */
    unsigned open_faults; /* its open faults (kept by the analyzer) */
    unsigned critical;    /* of which critical */
    size_t index;         /* in m->list; SIZE_MAX when not registered */
};

const char *state_event_name(enum state_event ev);
/* The table: the state a service in `from` moves to on `ev`. */
enum state state_next(enum state from, enum state_event ev);

/* Init the system part (arms nothing). 0 or -errno from libuv. */
int monitor_init(struct monitor *m, uv_loop_t *loop, struct journal *j, uint64_t quiet_ms);
/* Close the quiet timer (memory of m stays the caller's; free after the
 * loop ran the close callback) and free the list. */
void monitor_close(struct monitor *m);

/* Register st (state normal, no faults) / take it out of the system's
 * counts (a retired service). 0 or -ENOMEM. */
int state_register(struct monitor *m, struct svc_state *st, const char *name);
void state_unregister(struct svc_state *st);

/* Apply ev to st; a change is journaled and logged with cause, then the
 * system state is re-derived. */
void state_service_event(struct svc_state *st, enum state_event ev, const char *cause);
/* A fault of st's service opened (+1) or resolved (-1); critical: its
 * severity is critical. Feeds the system's state (no event by itself). */
void state_fault_count(struct svc_state *st, int delta, bool critical);
/* The system state from the counts: failed if a critical fault is open
 * (or a service failed), recovering while a recovery runs, degraded while
 * faults are open, recovered once they closed, normal after the quiet
 * period. Journals a change. */
void state_system_update(struct monitor *m, const char *cause);
/* The quiet timer fired: recovered -> normal where due. */
void state_quiet_tick(struct monitor *m);

#endif
