#include "procfs.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

bool procfs_alive(pid_t pid)
{
    for (int i = 0; i < 100; i++) {
        char path[64], buf[256];
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
        FILE *fp = fopen(path, "r");
        if (!fp)
            return false;
        size_t n = fread(buf, 1, sizeof buf - 1, fp);
        fclose(fp);
        buf[n] = '\0';
        const char *rp = strrchr(buf, ')');
        if (!rp || rp[1] == '\0' || rp[2] == 'Z' || rp[2] == 'X')
            return false;
        usleep(10000);
    }
    return true;
}
