#include "procfs.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "loopwait.h"

bool procfs_alive(pid_t pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    const char *rp = strrchr(buf, ')');
    return rp && rp[1] != '\0' && rp[2] != 'Z' && rp[2] != 'X';
}

bool procfs_dies(pid_t pid)
{
    uint64_t until = uv_hrtime() + (uint64_t)LOOPWAIT_MS * 1000000;
    while (procfs_alive(pid)) {
        if (uv_hrtime() >= until) {
            kill(pid, SIGKILL);
            return false;
        }
        loopwait_nap(5);
    }
    return true;
}
