/* Line-per-event logger to stderr; one write(2) per line so lines from
 * concurrent writers never interleave. */
#include "lib/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static enum log_level log__level = LOG_INFO;
static const char *const log__names[] = {
#define X(e, s) s,
    LOG_LEVEL_MAP(X)
#undef X
};

void log_set_level(enum log_level lvl)
{
    log__level = lvl;
}

int log_level_parse(const char *name)
{
    for (unsigned i = 0; i < sizeof log__names / sizeof *log__names; i++)
        if (strcmp(name, log__names[i]) == 0)
            return (int)i;
    return -1;
}

int log_enabled(enum log_level lvl)
{
    return lvl >= log__level;
}

/* The line with its newline into buf, as much as fits in size (NUL
 * terminated if size > 0); returns the line's whole length. */
static size_t log__format(char *buf, size_t size, const char *stamp, long ms, enum log_level lvl,
                          const char *service, const char *event, const char *fmt, va_list ap)
{
    int k = snprintf(buf, size, "%s.%03ldZ %-5s %s %s%s", stamp, ms, log__names[lvl],
                     service ? service : "-", event, fmt ? " " : "");
    size_t n = k > 0 ? (size_t)k : 0;
    if (fmt) {
        /* ap is the caller's, started by log_event (the analyzer cannot see
         * across the call). */
        // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
        k = vsnprintf(n < size ? buf + n : NULL, n < size ? size - n : 0, fmt, ap);
        n += k > 0 ? (size_t)k : 0;
    }
    if (n + 1 < size) {
        buf[n] = '\n';
        buf[n + 1] = '\0';
    }
    return n + 1;
}

/* A line is never cut: its values are read by programs. The common short
 * one is built on the stack, a long one in a buffer of its size. */
void log_event(enum log_level lvl, const char *service, const char *event, const char *fmt, ...)
{
    if (!log_enabled(lvl))
        return;
    char small[2048], stamp[32], *line = small;
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    va_list ap;
    va_start(ap, fmt);
    size_t n = log__format(small, sizeof small, stamp, (long)tv.tv_usec / 1000, lvl, service, event,
                           fmt, ap);
    va_end(ap);
    if (n >= sizeof small) {
        if ((line = malloc(n + 1))) {
            va_start(ap, fmt);
            log__format(line, n + 1, stamp, (long)tv.tv_usec / 1000, lvl, service, event, fmt, ap);
            va_end(ap);
        } else { /* out of memory: the cut line rather than none */
            line = small;
            n = sizeof small - 1;
            small[n - 1] = '\n';
        }
    }
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
    if (line != small)
        free(line);
}
