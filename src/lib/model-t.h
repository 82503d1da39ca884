/* The domain vocabulary: one X-macro list per enum, so the API, journal, CLI
 * and config all spell each value the same way. Types only. */
#ifndef RECOVERD_LIB_MODEL_T_H
#define RECOVERD_LIB_MODEL_T_H

#define STATE_MAP(X)                                                                               \
    X(NORMAL, "normal")                                                                            \
    X(DEGRADED, "degraded")                                                                        \
    X(FAILED, "failed")                                                                            \
    X(RECOVERING, "recovering")                                                                    \
    X(RECOVERED, "recovered")

#define FAULT_TYPE_MAP(X)                                                                          \
    X(HARDWARE, "hardware")                                                                        \
    X(SOFTWARE, "software")                                                                        \
    X(NETWORK, "network")                                                                          \
    X(CONFIGURATION, "configuration")                                                              \
    X(RESOURCE, "resource")

#define SEVERITY_MAP(X)                                                                            \
    X(LOW, "low")                                                                                  \
    X(MEDIUM, "medium")                                                                            \
    X(HIGH, "high")                                                                                \
    X(CRITICAL, "critical")

#define IMPACT_MAP(X)                                                                              \
    X(LOCAL, "local")                                                                              \
    X(SERVICE, "service")                                                                          \
    X(SYSTEM, "system")                                                                            \
    X(GLOBAL, "global")

#define ACTION_STATUS_MAP(X)                                                                       \
    X(PENDING, "pending")                                                                          \
    X(EXECUTING, "executing")                                                                      \
    X(COMPLETED, "completed")                                                                      \
    X(FAILED, "failed")                                                                            \
    X(ABORTED, "aborted")

#define STRATEGY_MAP(X)                                                                            \
    X(RESTART, "restart")                                                                          \
    X(FAILOVER, "failover")                                                                        \
    X(ROLLBACK, "rollback")                                                                        \
    X(REPAIR, "repair")                                                                            \
    X(REPLACE, "replace")

enum state {
#define X(e, s) STATE_##e,
    STATE_MAP(X)
#undef X
        STATE__COUNT
};

enum fault_type {
#define X(e, s) FAULT_##e,
    FAULT_TYPE_MAP(X)
#undef X
        FAULT_TYPE__COUNT
};

enum severity {
#define X(e, s) SEVERITY_##e,
    SEVERITY_MAP(X)
#undef X
        SEVERITY__COUNT
};

enum impact {
#define X(e, s) IMPACT_##e,
    IMPACT_MAP(X)
#undef X
        IMPACT__COUNT
};

enum action_status {
#define X(e, s) ACTION_##e,
    ACTION_STATUS_MAP(X)
#undef X
        ACTION_STATUS__COUNT
};

enum strategy {
#define X(e, s) STRATEGY_##e,
    STRATEGY_MAP(X)
#undef X
        STRATEGY__COUNT
};

#endif
