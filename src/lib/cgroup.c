/* cgroup v2 files: where a process's cgroup is, its single-number files,
 * making one, moving a process, limits, emptiness, signalling and killing
 * what it holds. */
#include "lib/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/reaper.h"

/* The cgroup2 mount, found once: mounts do not move under a running daemon,
 * and mountinfo is hundreds of lines on a container host. */
static struct {
    int state;           /* 0: not looked yet, 1: found, -errno: none */
    char dir[PATH_MAX];  /* the mount point, e.g. /sys/fs/cgroup/unified */
    char root[PATH_MAX]; /* the cgroup path the mount shows at dir, usually "/" */
} cgroup__mnt;

/* mountinfo escapes space, tab, newline and backslash as \ooo. In place. */
static void cgroup__unescape(char *s)
{
    char *out = s;
    for (; *s; s++) {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
            s[3] >= '0' && s[3] <= '7') {
            *out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
            s += 3;
        } else {
            *out++ = *s;
        }
    }
    *out = '\0';
}

/* One mountinfo line: "id parent maj:min root point opts [tags...] - fstype src super".
 * 1 and root/point filled when it is the cgroup2 mount. */
static int cgroup__mount_line(char *line, char **root, char **point)
{
    char *save = NULL, *f[5], *tok;
    int i;
    for (i = 0; i < 5 && (f[i] = strtok_r(i ? NULL : line, " \n", &save)); i++)
        ;
    if (i < 5)
        return 0;
    while ((tok = strtok_r(NULL, " \n", &save)) && strcmp(tok, "-") != 0)
        ;
    if (!tok || !(tok = strtok_r(NULL, " \n", &save)) || strcmp(tok, "cgroup2") != 0)
        return 0;
    *root = f[3];
    *point = f[4];
    return 1;
}

static int cgroup__find_mount(void)
{
    FILE *fp;
    char *line = NULL, *root, *point;
    size_t cap = 0;
    int r = -ENOENT;

    if (cgroup__mnt.state)
        return cgroup__mnt.state < 0 ? cgroup__mnt.state : 0;
    if (!(fp = fopen("/proc/self/mountinfo", "re")))
        return -errno; /* not cached: /proc may come back (early boot, EMFILE) */
    while (getline(&line, &cap, fp) > 0) {
        if (!cgroup__mount_line(line, &root, &point))
            continue;
        cgroup__unescape(root);
        cgroup__unescape(point);
        size_t plen = strlen(point), rlen = strlen(root);
        if (plen >= sizeof cgroup__mnt.dir || rlen >= sizeof cgroup__mnt.root)
            continue;
        memcpy(cgroup__mnt.dir, point, plen + 1);
        memcpy(cgroup__mnt.root, root, rlen + 1);
        r = 0;
        break;
    }
    free(line);
    fclose(fp);
    cgroup__mnt.state = r < 0 ? r : 1;
    return r;
}

/* The "0::/path" line of /proc/PID/cgroup into rel (without " (deleted)"). */
static int cgroup__pid_path(pid_t pid, char *rel, size_t len)
{
    char file[64], *line = NULL;
    size_t cap = 0;
    ssize_t n;
    FILE *fp;
    int r = -ENOENT;

    snprintf(file, sizeof file, "/proc/%d/cgroup", (int)pid);
    if (!(fp = fopen(file, "re")))
        return -errno;
    while ((n = getline(&line, &cap, fp)) > 0) {
        if (strncmp(line, "0::", 3) != 0)
            continue;
        if (line[n - 1] == '\n')
            line[--n] = '\0';
        if (n > 10 && !strcmp(line + n - 10, " (deleted)"))
            line[n - 10] = '\0';
        r = snprintf(rel, len, "%s", line + 3) < (int)len ? 0 : -ENAMETOOLONG;
        break;
    }
    free(line);
    fclose(fp);
    return r;
}

int cgroup_of_pid(pid_t pid, char *path, size_t len)
{
    char rel[PATH_MAX];
    const char *tail = rel;
    size_t rootlen;
    int r;

    if (pid <= 0)
        return -ENOENT;
    if ((r = cgroup__find_mount()) < 0 || (r = cgroup__pid_path(pid, rel, sizeof rel)) < 0)
        return r;
    /* A mount of a subtree (containers) shows only paths below its root. */
    rootlen = strlen(cgroup__mnt.root);
    if (strcmp(cgroup__mnt.root, "/") != 0) {
        if (strncmp(rel, cgroup__mnt.root, rootlen) != 0 || (rel[rootlen] && rel[rootlen] != '/'))
            return -ENOENT;
        tail = rel + rootlen;
    }
    if (!strcmp(tail, "/"))
        tail = "";
    if (snprintf(path, len, "%s%s", cgroup__mnt.dir, tail) >= (int)len)
        return -ENAMETOOLONG;
    return 0;
}

int cgroup_read_u64(const char *dir, const char *file, uint64_t *out)
{
    char path[PATH_MAX], buf[32], *end;
    ssize_t n;
    int fd, r;

    if (snprintf(path, sizeof path, "%s/%s", dir, file) >= (int)sizeof path)
        return -ENAMETOOLONG;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return -errno;
    n = read(fd, buf, sizeof buf - 1);
    r = n < 0 ? -errno : 0;
    close(fd);
    if (r < 0)
        return r;
    buf[n] = '\0';
    if (!strcmp(buf, "max\n") || !strcmp(buf, "max")) {
        *out = UINT64_MAX;
        return 0;
    }
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 10);
    if (errno || end == buf || buf[0] < '0' || buf[0] > '9' || (*end && *end != '\n'))
        return -EINVAL;
    *out = v;
    return 0;
}

int cgroup_read_key(const char *dir, const char *file, const char *key, uint64_t *out)
{
    char path[PATH_MAX], *line = NULL, *end;
    size_t cap = 0, klen = strlen(key);
    FILE *fp;
    int r = -ENOENT;

    if (snprintf(path, sizeof path, "%s/%s", dir, file) >= (int)sizeof path)
        return -ENAMETOOLONG;
    if (!(fp = fopen(path, "re")))
        return -errno;
    while (getline(&line, &cap, fp) > 0) {
        if (strncmp(line, key, klen) != 0 || line[klen] != ' ')
            continue;
        errno = 0;
        *out = strtoull(line + klen + 1, &end, 10);
        r = errno || end == line + klen + 1 ? -EINVAL : 0;
        break;
    }
    free(line);
    fclose(fp);
    return r;
}

static const char *const cgroup__controller_names[] = {
#define X(e, s) s,
    CGROUP_CONTROLLER_MAP(X)
#undef X
};
#define CGROUP__N_CONTROLLERS (sizeof cgroup__controller_names / sizeof *cgroup__controller_names)

int cgroup_read_controllers(const char *dir, const char *file, unsigned *mask)
{
    char path[PATH_MAX], buf[512], *save = NULL;
    ssize_t n;
    int fd;

    if (snprintf(path, sizeof path, "%s/%s", dir, file) >= (int)sizeof path)
        return -ENAMETOOLONG;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return -errno;
    n = read(fd, buf, sizeof buf - 1);
    int r = n < 0 ? -errno : 0;
    close(fd);
    if (r < 0)
        return r;
    buf[n] = '\0';
    *mask = 0;
    for (char *w = strtok_r(buf, " \n", &save); w; w = strtok_r(NULL, " \n", &save))
        for (size_t i = 0; i < CGROUP__N_CONTROLLERS; i++)
            if (!strcmp(w, cgroup__controller_names[i]))
                *mask |= 1u << i;
    return 0;
}

const char *cgroup_controllers_text(unsigned mask, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < CGROUP__N_CONTROLLERS; i++) {
        if (!(mask & (1u << i)))
            continue;
        int n = snprintf(buf + used, len - used, "%s%s", used ? " " : "",
                         cgroup__controller_names[i]);
        if (n < 0 || (size_t)n >= len - used)
            break; /* a caller's buffer holds all three names */
        used += (size_t)n;
    }
    return buf;
}

int cgroup_mkdir(const char *dir)
{
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

void cgroup_build(const char *dir, const struct cgroup_spec *s, struct cgroup_built *out)
{
    memset(out, 0, sizeof *out);
    /* A cgroup that has been through cgroup.kill kills every child born
     * into it by clone3(CLONE_INTO_CGROUP) from then on (Linux 6.14 and
     * later compare the kill count of the parent's cgroup at fork with the
     * child's: measured here on 6.18). A fresh one has a clean count; one
     * that cannot go (a predecessor's processes still in it) is joined by
     * the child's own write instead, which that check does not see. */
    if (s->renew && rmdir(dir) < 0 && errno != ENOENT)
        out->late = true;
    int r = cgroup_mkdir(dir);
    const char *slash = strrchr(dir, '/');
    if (r == -ENOENT && slash && slash != dir) { /* someone removed the subtree */
        char parent[PATH_MAX];
        if ((size_t)(slash - dir) >= sizeof parent) {
            out->err = -ENAMETOOLONG;
            return;
        }
        memcpy(parent, dir, (size_t)(slash - dir));
        parent[slash - dir] = '\0';
        if ((r = cgroup_mkdir(parent)) == 0)
            r = cgroup_mkdir(dir);
    }
    if (r < 0) {
        out->err = r;
        return;
    }
    for (unsigned i = 0; i < s->n_limits && i < CGROUP_SPEC_LIMITS; i++)
        out->limit_err[i] = cgroup_write(dir, s->limits[i].file, s->limits[i].value);
}

int cgroup_write(const char *dir, const char *file, const char *text)
{
    char path[PATH_MAX];
    size_t len = strlen(text);
    int fd, r = 0;

    if (snprintf(path, sizeof path, "%s/%s", dir, file) >= (int)sizeof path)
        return -ENAMETOOLONG;
    if ((fd = open(path, O_WRONLY | O_CLOEXEC)) < 0)
        return -errno;
    ssize_t n = write(fd, text, len);
    if (n < 0)
        r = -errno;
    else if ((size_t)n != len)
        r = -EIO;
    close(fd);
    return r;
}

int cgroup_attach(const char *dir, pid_t pid)
{
    char text[16];
    snprintf(text, sizeof text, "%d", (int)pid);
    return cgroup_write(dir, "cgroup.procs", text);
}

int cgroup_populated(const char *dir)
{
    uint64_t v = 0;
    int r = cgroup_read_key(dir, "cgroup.events", "populated", &v);
    return r < 0 ? r : v != 0;
}

/* Whether pid's cgroup is dir exactly. */
static bool cgroup__holds(const char *dir, pid_t pid)
{
    char path[PATH_MAX];
    return cgroup_of_pid(pid, path, sizeof path) == 0 && !strcmp(path, dir);
}

int cgroup_procs(const char *dir, struct pid_list *l)
{
    char path[PATH_MAX], *line = NULL;
    size_t cap = 0;
    FILE *fp;
    if (snprintf(path, sizeof path, "%s/cgroup.procs", dir) >= (int)sizeof path)
        return -ENAMETOOLONG;
    if (!(fp = fopen(path, "re")))
        return -errno;
    int r = 0;
    while (r == 0 && getline(&line, &cap, fp) > 0) {
        long pid = strtol(line, NULL, 10);
        if (pid > 1 && pid <= INT32_MAX)
            r = pid_list_add(l, (pid_t)pid);
    }
    free(line);
    fclose(fp);
    return r;
}

int cgroup_signal(const char *dir, int sig, pid_t skip_pgid)
{
    struct pid_list l = {0};
    int count = 0, r = cgroup_procs(dir, &l);
    for (size_t i = 0; i < l.n; i++) { /* what was read, even if not all (-ENOMEM) */
        pid_t pid = l.v[i];
        /* The pidfd first: if the process it names is in dir after, the
         * signal goes to a member and not to a stranger that took its pid. */
        int fd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (fd < 0)
            continue; /* gone */
        if ((skip_pgid <= 0 || getpgid(pid) != skip_pgid) && cgroup__holds(dir, pid) &&
            syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0) == 0)
            count++;
        close(fd);
    }
    free(l.v);
    return r < 0 && count == 0 ? r : count;
}

int cgroup_kill(const char *dir)
{
    return cgroup_write(dir, "cgroup.kill", "1");
}
