/* Line-per-event logger to stderr; one write(2) per line so lines from
 * concurrent writers never interleave. */
#include "lib/log.h"

#include <stdarg.h>
#include <stdio.h>
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

void log_set_level(enum log_level lvl) { log__level = lvl; }

int log_level_parse(const char *name)
{
    for (unsigned i = 0; i < sizeof log__names / sizeof *log__names; i++)
        if (strcmp(name, log__names[i]) == 0)
            return (int)i;
    return -1;
}

int log_enabled(enum log_level lvl) { return lvl >= log__level; }

void log_event(enum log_level lvl, const char *service, const char *event, const char *fmt, ...)
{
    if (!log_enabled(lvl))
        return;
    char line[2048];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    int k = snprintf(line + n, sizeof line - n, ".%03ldZ %-5s %s %s", (long)tv.tv_usec / 1000,
                     log__names[lvl], service ? service : "-", event);
    n += k > 0 ? (size_t)k : 0;
    if (fmt && n < sizeof line - 2) {
        line[n++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        k = vsnprintf(line + n, sizeof line - n, fmt, ap);
        va_end(ap);
        n += k > 0 ? (size_t)k : 0;
    }
    if (n > sizeof line - 2)
        n = sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}
