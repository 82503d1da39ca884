/* recoverd's own log: one line per event on stderr,
 * "TIME LEVEL SERVICE EVENT key=value ...", greppable. */
#ifndef RECOVERD_LIB_LOG_H
#define RECOVERD_LIB_LOG_H

#define LOG_LEVEL_MAP(X)                                                                           \
    X(DEBUG, "debug")                                                                              \
    X(INFO, "info")                                                                                \
    X(WARN, "warn")                                                                                \
    X(ERROR, "error")

enum log_level {
#define X(e, s) LOG_##e,
    LOG_LEVEL_MAP(X)
#undef X
};

void log_set_level(enum log_level lvl);
/* Return the level for a name ("debug", "info", ...), or -1. */
int log_level_parse(const char *name);
int log_enabled(enum log_level lvl);
/* service may be NULL ("-"); fmt formats the key=value tail (may be NULL).
 * Every %s and %c value (and service) is escaped (lib/escape.h): a value
 * between the format's own quotes is only escaped, a bare one is quoted
 * as well when it holds a space, '=', '"' or anything escaped. Numbers
 * are printed as printf does; %n or an unknown conversion ends the tail
 * with "(bad format)". */
void log_event(enum log_level lvl, const char *service, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
