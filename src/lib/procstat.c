/* Reading /proc/<pid>/stat: see procstat.h. */
#include "lib/procstat.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t procstat__ticks(pid_t pid, bool zombies)
{
    char path[32], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    /* comm may hold spaces and parentheses: fields restart after the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ' || (!zombies && (p[2] == 'Z' || p[2] == 'X')))
        return 0;
    unsigned long long ticks = 0;
    /* After ')': state(3) ... starttime is field 22, the 20th after state. */
    if (sscanf(p + 2,
               "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d "
               "%*d %llu",
               &ticks) != 1)
        return 0;
    return ticks;
}

uint64_t procstat_start_ticks(pid_t pid)
{
    return procstat__ticks(pid, false);
}

uint64_t procstat_start_ticks_any(pid_t pid)
{
    return procstat__ticks(pid, true);
}

uint64_t procstat_age_ms(uint64_t start_ticks)
{
    /* Field 22 counts from boot, suspended time included: CLOCK_BOOTTIME. */
    struct timespec ts;
    long hz = sysconf(_SC_CLK_TCK);
    if (clock_gettime(CLOCK_BOOTTIME, &ts) < 0 || hz <= 0)
        return 0;
    uint64_t now_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    uint64_t start_ms = start_ticks * 1000 / (uint64_t)hz;
    return now_ms > start_ms ? now_ms - start_ms : 0;
}
