/* recoverd as a child subreaper: see reaper.h.
 *
 * Own children are kept in an array sorted by pid, each with its start
 * time: spawn_start adds each, and an entry is dropped once its pid names
 * another process or none (its owner reaped it; pids are reused quickly on
 * a busy host). An orphan is any other child. Sizes are O(services). */
#include "lib/reaper.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/procstat.h"

struct reaper__own {
    pid_t pid;      /* a child spawn_start made */
    uint64_t ticks; /* its start time (/proc/pid/stat field 22) */
};

static struct {
    bool on;                 /* reaper_enable succeeded */
    struct reaper__own *own; /* n_own entries, sorted by pid */
    size_t n_own, cap_own;
} reaper__g;

int pid_list_add(struct pid_list *l, pid_t pid)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        pid_t *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = pid;
    return 0;
}

int reaper_enable(void)
{
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
        return -errno;
    reaper__g.on = true;
    return 0;
}

bool reaper_enabled(void)
{
    return reaper__g.on;
}

/* The index of pid in own, or where it would go. */
static size_t reaper__find(pid_t pid)
{
    size_t lo = 0, hi = reaper__g.n_own;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (reaper__g.own[mid].pid < pid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void reaper__drop(size_t i)
{
    memmove(reaper__g.own + i, reaper__g.own + i + 1,
            (reaper__g.n_own - i - 1) * sizeof *reaper__g.own);
    reaper__g.n_own--;
}

void reaper_own(pid_t pid)
{
    if (!reaper__g.on)
        return;
    uint64_t ticks = procstat_start_ticks_any(pid);
    size_t i = reaper__find(pid);
    if (i < reaper__g.n_own && reaper__g.own[i].pid == pid) {
        reaper__g.own[i].ticks = ticks; /* a stale entry for a reused pid */
        return;
    }
    if (reaper__g.n_own == reaper__g.cap_own) {
        size_t cap = reaper__g.cap_own ? reaper__g.cap_own * 2 : 16;
        struct reaper__own *v = realloc(reaper__g.own, cap * sizeof *v);
        /* Out of memory: it is taken for an orphan, and reaped early; its
         * owner then sees ECHILD (lib/program.c and the supervisor cope). */
        if (!v)
            return;
        reaper__g.own = v;
        reaper__g.cap_own = cap;
    }
    memmove(reaper__g.own + i + 1, reaper__g.own + i,
            (reaper__g.n_own - i) * sizeof *reaper__g.own);
    reaper__g.own[i] = (struct reaper__own){pid, ticks};
    reaper__g.n_own++;
}

bool reaper_is_own(pid_t pid)
{
    size_t i = reaper__find(pid);
    if (i >= reaper__g.n_own || reaper__g.own[i].pid != pid)
        return false;
    if (procstat_start_ticks_any(pid) == reaper__g.own[i].ticks)
        return true;
    reaper__drop(i); /* reaped by its owner; the pid is someone else's now */
    return false;
}

/* Drop the own entries whose pid is no child of ours any more. */
static void reaper__prune(void)
{
    size_t k = 0;
    for (size_t i = 0; i < reaper__g.n_own; i++) {
        siginfo_t si;
        if (waitid(P_PID, (id_t)reaper__g.own[i].pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 ||
            errno != ECHILD)
            reaper__g.own[k++] = reaper__g.own[i];
    }
    reaper__g.n_own = k;
}

int reaper_reap(void)
{
    struct pid_list kids = {0};
    int reaped = 0;
    if (!reaper__g.on)
        return 0;
    reaper__prune();
    reaper_children(getpid(), &kids);
    for (size_t i = 0; i < kids.n; i++)
        if (!reaper_is_own(kids.v[i]) && waitpid(kids.v[i], NULL, WNOHANG) > 0)
            reaped++;
    free(kids.v);
    return reaped;
}

/* The pids of one children file ("12 34 \n") appended to l. */
static int reaper__read_children(const char *path, struct pid_list *l)
{
    char buf[4096];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    /* Reads end at a pid boundary? Not guaranteed: carry a partial number. */
    long cur = -1;
    ssize_t n;
    int r = 0;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n && r == 0; i++) {
            if (buf[i] >= '0' && buf[i] <= '9') {
                cur = (cur < 0 ? 0 : cur * 10) + (buf[i] - '0');
            } else if (cur >= 0) {
                r = pid_list_add(l, (pid_t)cur);
                cur = -1;
            }
        }
    }
    if (n < 0 && r == 0)
        r = -errno;
    if (cur >= 0 && r == 0)
        r = pid_list_add(l, (pid_t)cur);
    close(fd);
    return r;
}

int reaper_children(pid_t pid, struct pid_list *l)
{
    char path[64];
    struct dirent *de;
    int r = 0;
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *dir = opendir(path);
    if (!dir)
        return -errno;
    while ((de = readdir(dir)) && r != -ENOMEM) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%d/task/%.16s/children", (int)pid, de->d_name);
        r = reaper__read_children(path, l);
        if (r == -ENOENT)
            r = 0; /* that thread ended */
    }
    closedir(dir);
    return r;
}
