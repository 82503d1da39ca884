/* Reading /proc/<pid>/stat: see procstat.h. */
#include "lib/procstat.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
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
