/* The cgroup v2 files recoverd reads and writes, behind one small
 * interface: hosts may be pure v2 (/sys/fs/cgroup) or a v1/v2 hybrid whose
 * v2 tree (/sys/fs/cgroup/unified) has no memory/pids/cpu controllers.
 * Readers treat -ENOENT as "not measurable here" and fall back to /proc.
 * A cgroup is named by its absolute directory. */
#ifndef RECOVERD_LIB_CGROUP_H
#define RECOVERD_LIB_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct pid_list;

/* The absolute directory of pid's v2 cgroup (the "0::/..." line of
 * /proc/PID/cgroup under the cgroup2 mount, found once in
 * /proc/self/mountinfo). 0, or -ENOENT (no such pid, no v2 hierarchy),
 * -ENAMETOOLONG, -errno. */
int cgroup_of_pid(pid_t pid, char *path, size_t len);

/* Read a single-number file such as memory.current in the cgroup dir.
 * "max" reads as UINT64_MAX. 0, -ENOENT when the file (its controller) is
 * absent, -EINVAL when it does not hold a number, -errno. */
int cgroup_read_u64(const char *dir, const char *file, uint64_t *out);

/* Read the value of key in a flat keyed file such as memory.stat
 * ("inactive_file 4096" lines). 0, -ENOENT when the file or the key is
 * absent, -errno. */
int cgroup_read_key(const char *dir, const char *file, const char *key, uint64_t *out);

/* The controllers recoverd may set limits with, as bits. */
#define CGROUP_CONTROLLER_MAP(X)                                                                   \
    X(MEMORY, "memory")                                                                            \
    X(PIDS, "pids")                                                                                \
    X(CPU, "cpu")
enum {
#define X(e, s) CGROUP__BIT_##e,
    CGROUP_CONTROLLER_MAP(X)
#undef X
};
enum {
#define X(e, s) CGROUP_##e = 1u << CGROUP__BIT_##e,
    CGROUP_CONTROLLER_MAP(X)
#undef X
};

/* The bits of the controllers a list file (cgroup.controllers,
 * cgroup.subtree_control) of dir names; others are ignored. 0 or -errno. */
int cgroup_read_controllers(const char *dir, const char *file, unsigned *mask);
/* "memory pids" for a mask, into buf ("" for none). */
const char *cgroup_controllers_text(unsigned mask, char *buf, size_t len);

/* Create the cgroup dir (its parent must exist); one that exists already
 * is fine. 0 or -errno. */
int cgroup_mkdir(const char *dir);
/* How a service's cgroup is made before a spawn: a plain value, so a
 * spawner thread can do it (mkdir and the limit writes take the kernel's
 * cgroup mutex, which other cgroup work holds for milliseconds at times:
 * off the loop). */
#define CGROUP_SPEC_LIMITS 3
struct cgroup_spec {
    bool renew; /* remove it first (it went through cgroup.kill); one that
                 * cannot go (still populated) is kept, and joined late */
    unsigned n_limits;
    struct {
        char file[16];  /* "memory.max", "pids.max", "cpu.max" */
        char value[48]; /* what is written there */
    } limits[CGROUP_SPEC_LIMITS];
};
/* What cgroup_build found. */
struct cgroup_built {
    int err;                           /* 0, or -errno: the cgroup cannot be made */
    bool late;                         /* renew failed: join by the child's own write */
    int limit_err[CGROUP_SPEC_LIMITS]; /* 0, or the -errno writing limits[i] (the spawn goes on) */
};
/* Make dir as s says, its parent too where that is gone (someone removed
 * the subtree), then write the limits. Filesystem work only: any thread.
 * out->err < 0: nothing was made. */
void cgroup_build(const char *dir, const struct cgroup_spec *s, struct cgroup_built *out);
/* Write text to a file of dir (cgroup.subtree_control, memory.max...).
 * 0 or the kernel's -errno (EBUSY, EINVAL, ENOENT for a missing
 * controller). */
int cgroup_write(const char *dir, const char *file, const char *text);
/* Move pid (0: the caller's whole process) into dir. 0 or -errno. */
int cgroup_attach(const char *dir, pid_t pid);

/* 1 while a process lives in dir or below it, 0 once none does
 * (cgroup.events "populated"; zombies do not count), or -errno. */
int cgroup_populated(const char *dir);
/* Send sig to each process in dir (cgroup.procs) but those of process
 * group skip_pgid (0: none): each through a pidfd opened before its
 * membership is confirmed, so a reused pid is never signalled. The count
 * signalled, or -errno when dir cannot be read. */
int cgroup_signal(const char *dir, int sig, pid_t skip_pgid);
/* SIGKILL every process in dir and below, forks racing with it included
 * (cgroup.kill). 0 or -errno (-ENOENT: a kernel without cgroup.kill). */
int cgroup_kill(const char *dir);
/* Append the processes of dir (cgroup.procs, not its children) to l. 0 or
 * -errno. */
int cgroup_procs(const char *dir, struct pid_list *l);

#endif
