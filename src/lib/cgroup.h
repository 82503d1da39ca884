/* The few cgroup v2 reads recoverd needs, behind one small interface: hosts
 * may be pure v2 (/sys/fs/cgroup) or a v1/v2 hybrid whose v2 tree
 * (/sys/fs/cgroup/unified) has no memory/pids/cpu controllers. Callers
 * treat -ENOENT as "not measurable here" and fall back to /proc. */
#ifndef RECOVERD_LIB_CGROUP_H
#define RECOVERD_LIB_CGROUP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

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

#endif
