/* The state machine of a service and of the system (DESIGN.md section 2):
 * a state x event table; every transition is journaled with its cause. */
#ifndef RECOVERD_MONITOR_STATE_H
#define RECOVERD_MONITOR_STATE_H

#include "lib/model-t.h"

struct daemon;
struct service;

#define STATE_EVENT_MAP(X)                                                 \
    X(FAULT_OPENED, "fault-opened") X(RECOVERY_STARTED, "recovery-started") \
    X(RECOVERY_SUCCEEDED, "recovery-succeeded") X(RECOVERY_FAILED, "recovery-failed") \
    X(GAVE_UP, "gave-up") X(FAULTS_CLEARED, "faults-cleared") X(QUIET, "quiet")

enum state_event {
#define X(e, s) EV_##e,
    STATE_EVENT_MAP(X)
#undef X
        EV__COUNT
};

const char *state_event_name(enum state_event ev);
/* The table: the state a service in `from` moves to on `ev`. */
enum state state_next(enum state from, enum state_event ev);
/* Apply ev to s; a change is journaled and logged with cause, then the
 * system state is re-derived. */
void state_service_event(struct service *s, enum state_event ev, const char *cause);
/* The system state from its services: failed if a critical fault is open
 * (or a service failed), recovering while a recovery runs, degraded while
 * faults are open, recovered once they closed, normal after the quiet
 * period. Journals a change. */
void state_system_update(struct daemon *d, const char *cause);
/* The quiet timer fired: recovered -> normal where due. */
void state_quiet_tick(struct daemon *d);

#endif
