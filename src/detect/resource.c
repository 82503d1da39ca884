/* Resource checks: /proc, statvfs and cgroup v2 samples against thresholds held for `for`. */
#include "detect/resource.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "config/config-t.h"
#include "detect/check-t.h"
#include "detect/kinds.h"
#include "lib/cgroup.h"
#include "lib/clock.h"
#include "lib/uvclock.h"

#define RESOURCE__DISKS_MAX 8
#define RESOURCE__LIMITS_MAX (5 + RESOURCE__DISKS_MAX)

/* In the order a failing probe names them: the host's condition first,
 * since it explains the service's. */
enum resource__metric { RES_MEMORY, RES_DISK, RES_HOST_CPU, RES_RSS, RES_CPU, RES_FDS, RES__N };

/* One threshold of a check, parsed from its params. */
struct resource__limit {
    enum resource__metric m; /* what is measured */
    double max;              /* bytes, % or a count; breached when strictly above */
    const char *mount;       /* RES_DISK: borrowed from the params' "MOUNT=PCT"; else NULL */
    int mount_len;           /* bytes of mount before the '=' */
};

/* A check's samples between probes (c->priv). Lives as long as the check,
 * because persistence and CPU deltas span probes. */
struct resource__state {
    uv_timer_t timer;    /* the 0 ms report of a probe; data = this */
    struct check *c;     /* owner; NULL once released (the close is pending) */
    bool pending;        /* the timer is armed for a probe not yet reported */
    pid_t pid;           /* the process proc_* and the service breaches belong to; 0: none */
    uint64_t proc_ticks; /* its utime + stime at proc_us, clock ticks */
    uint64_t proc_us;    /* monotonic us of that sample; 0: none yet */
    uint64_t host_busy;  /* /proc/stat non-idle jiffies at the previous probe */
    uint64_t host_total; /* /proc/stat all jiffies then; 0: no sample yet */
    uint64_t since_us[RESOURCE__LIMITS_MAX]; /* monotonic us each limit began breaching; 0: not */
    uint64_t under_us[RESOURCE__LIMITS_MAX]; /* monotonic us each has been under since; 0: not */
};

typedef int (*resource__parse_fn)(const char *s, double *v);
typedef void (*resource__format_fn)(double v, char *buf, size_t len);
/* 1 and *v when measured; 0 when there is nothing to measure (yet). */
typedef int (*resource__measure_fn)(struct resource__state *st, const struct resource__limit *l,
                                    uint64_t now_us, double *v);

struct resource__kind {
    const char *key;        /* YAML key, and the metric's word in reasons */
    size_t offset;          /* its char * in struct resource_params; disk: unused */
    bool host;              /* a host metric: host_wide, measured without a process */
    enum severity severity; /* of a failing probe */
    const char *expected;   /* for the validate message */
    resource__parse_fn parse;
    resource__format_fn format;
    resource__measure_fn measure;
};

static uv_loop_t *resource__loop; /* the daemon's loop; borrowed */

/* ---- values ---- */

/* A non-negative decimal number at the start of s ("1.5"); not strtod's
 * "inf", "0x10" or "-1". */
static int resource__number(const char *s, double *v, const char **end)
{
    char *e;
    if (!s || !((*s >= '0' && *s <= '9') || (*s == '.' && s[1] >= '0' && s[1] <= '9')))
        return -EINVAL;
    for (const char *q = s; *q && *q != ' '; q++)
        if (*q == 'x' || *q == 'X' || *q == 'p' || *q == 'P')
            return -EINVAL;
    errno = 0;
    *v = strtod(s, &e);
    if (errno || !isfinite(*v))
        return -EINVAL;
    while (*e == ' ')
        e++;
    *end = e;
    return 0;
}

int resource_size_parse(const char *s, double *bytes)
{
    static const struct {
        const char *unit;
        double mult;
    } units[] = {
        {"", 1.0},       {"B", 1.0},    {"K", 0x1p10},  {"k", 0x1p10},   {"Ki", 0x1p10},
        {"KiB", 0x1p10}, {"KB", 1e3},   {"kB", 1e3},    {"M", 0x1p20},   {"Mi", 0x1p20},
        {"MiB", 0x1p20}, {"MB", 1e6},   {"G", 0x1p30},  {"Gi", 0x1p30},  {"GiB", 0x1p30},
        {"GB", 1e9},     {"T", 0x1p40}, {"Ti", 0x1p40}, {"TiB", 0x1p40}, {"TB", 1e12},
    };
    const char *unit;
    double n;
    if (resource__number(s, &n, &unit) < 0)
        return -EINVAL;
    for (size_t i = 0; i < sizeof units / sizeof *units; i++) {
        if (!strcmp(unit, units[i].unit)) {
            *bytes = n * units[i].mult;
            return *bytes >= 1.0 ? 0 : -EINVAL;
        }
    }
    return -EINVAL;
}

/* "90%", "90" or "92.5%". */
static int resource__percent(const char *s, double *v)
{
    const char *end;
    if (resource__number(s, v, &end) < 0)
        return -EINVAL;
    if (*end == '%')
        end++;
    return *end || *v <= 0 ? -EINVAL : 0;
}

static int resource__share(const char *s, double *v)
{
    return resource__percent(s, v) < 0 || *v > 100 ? -EINVAL : 0;
}

static int resource__count(const char *s, double *v)
{
    const char *end;
    return resource__number(s, v, &end) < 0 || *end || *v < 1 || *v != floor(*v) ? -EINVAL : 0;
}

/* One decimal, two below 1 (a 0.05% threshold must not read "0%"),
 * without trailing zeros: "200", "250.3", "0.05". */
static void resource__decimal(double v, char *buf, size_t len)
{
    size_t n = (size_t)snprintf(buf, len, "%.*f", v < 1 ? 2 : 1, v);
    if (n >= len || !strchr(buf, '.'))
        return;
    while (n > 0 && buf[n - 1] == '0')
        buf[--n] = '\0';
    if (n > 0 && buf[n - 1] == '.')
        buf[--n] = '\0';
}

static void resource__format_size(double v, char *buf, size_t len)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    char num[32];
    size_t u = 0;
    while (v >= 1024 && u + 1 < sizeof units / sizeof *units) {
        v /= 1024;
        u++;
    }
    resource__decimal(v, num, sizeof num);
    snprintf(buf, len, "%s %s", num, units[u]);
}

static void resource__format_percent(double v, char *buf, size_t len)
{
    char num[32];
    resource__decimal(v, num, sizeof num);
    snprintf(buf, len, "%s%%", num);
}

static void resource__format_count(double v, char *buf, size_t len)
{
    snprintf(buf, len, "%.0f", v);
}

/* "300 ms", "30 s", "1.5 s". */
static void resource__format_us(uint64_t us, char *buf, size_t len)
{
    char num[24]; /* UINT64_MAX us is 18446744073709.6 s: 16 characters */
    if (us < 1000000) {
        snprintf(buf, len, "%llu ms", (unsigned long long)(us / 1000));
        return;
    }
    resource__decimal((double)us / 1e6, num, sizeof num);
    snprintf(buf, len, "%s s", num);
}

/* ---- samples ---- */

/* A whole small /proc file (seq_file may hand it over in pieces), NUL
 * terminated and cut at len - 1 bytes. Bytes read or -errno. */
static ssize_t resource__slurp(const char *path, char *buf, size_t len)
{
    size_t got = 0;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    while (got < len - 1 && (n = read(fd, buf + got, len - 1 - got)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            n = -errno;
            close(fd);
            return n;
        }
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    return (ssize_t)got;
}

/* The number after "Key:" in a "Key:   1234 kB" file (status, meminfo). */
static int resource__field(const char *text, const char *key, unsigned long long *v)
{
    const char *p = text;
    size_t klen = strlen(key);
    while ((p = strstr(p, key))) {
        if ((p == text || p[-1] == '\n') && p[klen] == ':')
            return sscanf(p + klen + 1, "%llu", v) == 1 ? 0 : -EINVAL;
        p += klen;
    }
    return -ENOENT;
}

/* memory.current of the service's own cgroup less its inactive page cache
 * (reclaimable: the working set, as the kubelet counts it). -ENOENT when the
 * cgroup also holds recoverd (children share it unless placed elsewhere) or
 * the v2 tree has no memory controller (hybrid hosts): use /proc. */
static int resource__cgroup_rss(pid_t pid, double *v)
{
    char dir[PATH_MAX], self[PATH_MAX];
    uint64_t cur, inactive = 0;
    size_t dlen;
    int r;
    if ((r = cgroup_of_pid(pid, dir, sizeof dir)) < 0 ||
        (r = cgroup_of_pid(getpid(), self, sizeof self)) < 0)
        return r;
    dlen = strlen(dir);
    if (!strncmp(self, dir, dlen) && (self[dlen] == '\0' || self[dlen] == '/'))
        return -ENOENT;
    if ((r = cgroup_read_u64(dir, "memory.current", &cur)) < 0)
        return r;
    if (cgroup_read_key(dir, "memory.stat", "inactive_file", &inactive) < 0 || inactive > cur)
        inactive = 0;
    *v = (double)(cur - inactive);
    return 0;
}

static int resource__measure_rss(struct resource__state *st, const struct resource__limit *l,
                                 uint64_t now_us, double *v)
{
    char path[64], buf[4096];
    unsigned long long kb;
    if (!st->pid)
        return 0;
    if (resource__cgroup_rss(st->pid, v) == 0)
        return 1;
    snprintf(path, sizeof path, "/proc/%d/status", (int)st->pid);
    if (resource__slurp(path, buf, sizeof buf) < 0 || resource__field(buf, "VmRSS", &kb) < 0)
        return 0; /* gone, or a kernel thread: the process detector speaks for it */
    *v = (double)kb * 1024;
    return 1;
}

/* utime + stime of the process, in clock ticks. */
static int resource__proc_ticks(pid_t pid, uint64_t *ticks)
{
    char path[64], buf[1024], *p;
    unsigned long long ut, stime;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (resource__slurp(path, buf, sizeof buf) < 0)
        return -ENOENT;
    /* comm (field 2) may hold spaces and parentheses: fields count from its last ')'. */
    if (!(p = strrchr(buf, ')')) ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &stime) != 2)
        return -EINVAL;
    *ticks = ut + stime;
    return 0;
}

/* The share of one CPU the process used since the previous probe. */
static int resource__measure_cpu(struct resource__state *st, const struct resource__limit *l,
                                 uint64_t now_us, double *v)
{
    uint64_t ticks, prev = st->proc_ticks, prev_us = st->proc_us;
    long hz = sysconf(_SC_CLK_TCK);
    if (!st->pid || resource__proc_ticks(st->pid, &ticks) < 0)
        return 0;
    st->proc_ticks = ticks;
    st->proc_us = now_us;
    if (!prev_us || now_us <= prev_us || ticks < prev || hz <= 0)
        return 0;
    *v = (double)(ticks - prev) / (double)hz * 1e8 / (double)(now_us - prev_us);
    return 1;
}

static int resource__measure_fds(struct resource__state *st, const struct resource__limit *l,
                                 uint64_t now_us, double *v)
{
    char path[64];
    struct dirent *e;
    DIR *dir;
    unsigned long n = 0;
    if (!st->pid)
        return 0;
    snprintf(path, sizeof path, "/proc/%d/fd", (int)st->pid);
    if (!(dir = opendir(path)))
        return 0; /* gone, or another user's process and we are not root */
    while ((e = readdir(dir)))
        n += e->d_name[0] != '.';
    closedir(dir);
    *v = (double)n;
    return 1;
}

/* The share of all CPUs busy since the previous probe (/proc/stat's first line). */
static int resource__measure_host_cpu(struct resource__state *st, const struct resource__limit *l,
                                      uint64_t now_us, double *v)
{
    unsigned long long f[8];
    uint64_t busy, total, prev_busy = st->host_busy, prev_total = st->host_total;
    char buf[512];
    if (resource__slurp("/proc/stat", buf, sizeof buf) < 0 ||
        sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &f[0], &f[1], &f[2], &f[3],
               &f[4], &f[5], &f[6], &f[7]) != 8)
        return 0;
    total = f[0] + f[1] + f[2] + f[3] + f[4] + f[5] + f[6] + f[7];
    busy = total - f[3] - f[4]; /* idle and iowait are not busy */
    st->host_busy = busy;
    st->host_total = total;
    if (!prev_total || total <= prev_total || busy < prev_busy)
        return 0;
    *v = 100.0 * (double)(busy - prev_busy) / (double)(total - prev_total);
    return 1;
}

static int resource__measure_memory(struct resource__state *st, const struct resource__limit *l,
                                    uint64_t now_us, double *v)
{
    char buf[4096];
    unsigned long long total, avail;
    if (resource__slurp("/proc/meminfo", buf, sizeof buf) < 0 ||
        resource__field(buf, "MemTotal", &total) < 0 ||
        resource__field(buf, "MemAvailable", &avail) < 0 || !total || avail > total)
        return 0;
    *v = 100.0 * (1.0 - (double)avail / (double)total);
    return 1;
}

/* Used blocks over the blocks an unprivileged user could have, as df shows:
 * the root-reserved blocks count as neither. statvfs is synchronous: a dead
 * network mount would stall the loop, so list local mounts. */
static int resource__measure_disk(struct resource__state *st, const struct resource__limit *l,
                                  uint64_t now_us, double *v)
{
    char mount[PATH_MAX];
    struct statvfs fs;
    double used, avail;
    snprintf(mount, sizeof mount, "%.*s", l->mount_len, l->mount);
    if (statvfs(mount, &fs) < 0 || fs.f_blocks == 0)
        return 0;
    used = (double)(fs.f_blocks - fs.f_bfree);
    avail = (double)fs.f_bavail;
    if (used + avail <= 0)
        return 0;
    *v = 100.0 * used / (used + avail);
    return 1;
}

#define RES_OFF(f) offsetof(struct resource_params, f)
static const struct resource__kind resource__kinds[RES__N] = {
    [RES_MEMORY] = {"memory", RES_OFF(memory), true, SEVERITY_HIGH, "a percentage in (0, 100]",
                    resource__share, resource__format_percent, resource__measure_memory},
    [RES_DISK] = {"disk", 0, true, SEVERITY_HIGH, "a mount point and a percentage in (0, 100]",
                  resource__share, resource__format_percent, resource__measure_disk},
    [RES_HOST_CPU] = {"host_cpu", RES_OFF(host_cpu), true, SEVERITY_MEDIUM,
                      "a percentage in (0, 100]", resource__share, resource__format_percent,
                      resource__measure_host_cpu},
    [RES_RSS] = {"rss", RES_OFF(rss), false, SEVERITY_MEDIUM, "a size like 200MiB or 1G",
                 resource_size_parse, resource__format_size, resource__measure_rss},
    [RES_CPU] = {"cpu", RES_OFF(cpu), false, SEVERITY_MEDIUM, "a percentage of one CPU like 90%",
                 resource__percent, resource__format_percent, resource__measure_cpu},
    [RES_FDS] = {"fds", RES_OFF(fds), false, SEVERITY_MEDIUM, "a positive count", resource__count,
                 resource__format_count, resource__measure_fds},
};

/* ---- thresholds ---- */

/* "MOUNT=PCT", split at the last '=' so a mount may hold one. */
static int resource__disk_limit(const char *s, struct resource__limit *out, char *why, size_t len)
{
    const char *eq = strrchr(s, '=');
    *out = (struct resource__limit){.m = RES_DISK, .mount = s};
    if (!eq || s[0] != '/' || eq - s >= PATH_MAX ||
        resource__kinds[RES_DISK].parse(eq + 1, &out->max) < 0) {
        snprintf(why, len, "disk: '%s': expected %s", s, resource__kinds[RES_DISK].expected);
        return -EINVAL;
    }
    out->mount_len = (int)(eq - s);
    return 0;
}

/* Every threshold of p into out (RESOURCE__LIMITS_MAX slots), in
 * enum resource__metric order, which since_us indexes: the same params
 * always give the same order. */
static int resource__limits(const struct resource_params *p, struct resource__limit *out, size_t *n,
                            char *why, size_t len)
{
    *n = 0;
    for (int m = 0; m < RES__N; m++) {
        const struct resource__kind *k = &resource__kinds[m];
        if (m == RES_DISK) {
            for (size_t i = 0; p->disk && p->disk[i]; i++) {
                if (i == RESOURCE__DISKS_MAX) {
                    snprintf(why, len, "disk: at most %d mounts", RESOURCE__DISKS_MAX);
                    return -EINVAL;
                }
                if (resource__disk_limit(p->disk[i], &out[*n], why, len) < 0)
                    return -EINVAL;
                (*n)++;
            }
            continue;
        }
        const char *s = *(char *const *)((const char *)p + k->offset);
        if (!s)
            continue;
        out[*n] = (struct resource__limit){.m = (enum resource__metric)m};
        if (k->parse(s, &out[*n].max) < 0) {
            snprintf(why, len, "%s: '%s': expected %s", k->key, s, k->expected);
            return -EINVAL;
        }
        (*n)++;
    }
    if (*n == 0) {
        snprintf(why, len, "set at least one threshold: rss, cpu, fds, host_cpu, memory or disk");
        return -EINVAL;
    }
    return 0;
}

/* ---- the probe ---- */

/* "rss 250.3 MiB > 200 MiB", "disk /var 93.1% > 90%". */
static int resource__describe(const struct resource__limit *l, double v, char *buf, size_t len)
{
    const struct resource__kind *k = &resource__kinds[l->m];
    char val[48], max[48];
    k->format(v, val, sizeof val);
    k->format(l->max, max, sizeof max);
    if (l->m == RES_DISK)
        return snprintf(buf, len, "disk %.*s %s > %s", l->mount_len, l->mount, val, max);
    return snprintf(buf, len, "%s %s > %s", k->key, val, max);
}

/* The samples when nothing breaches: "rss 12.1 MiB, fds 7". */
static void resource__summary(const struct resource__limit *lim, const double *val,
                              const bool *have, size_t n, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used < len; i++) {
        const struct resource__kind *k = &resource__kinds[lim[i].m];
        char v[48];
        if (!have[i])
            continue;
        k->format(val[i], v, sizeof v);
        if (lim[i].m == RES_DISK)
            used += (size_t)snprintf(buf + used, len - used, "%sdisk %.*s %s", used ? ", " : "",
                                     lim[i].mount_len, lim[i].mount, v);
        else
            used += (size_t)snprintf(buf + used, len - used, "%s%s %s", used ? ", " : "", k->key,
                                     v);
    }
    if (!used)
        snprintf(buf, len, "nothing measured yet");
}

/* A new process (or none): its CPU sample and breaches are not the old one's. */
static void resource__follow(struct resource__state *st, pid_t pid,
                             const struct resource__limit *lim, size_t n)
{
    if (pid == st->pid)
        return;
    st->pid = pid;
    st->proc_us = 0;
    for (size_t i = 0; i < n; i++)
        if (!resource__kinds[lim[i].m].host)
            st->since_us[i] = st->under_us[i] = 0;
}

/* The reason of a probe that fails on lim[failed] (n_failed limits held
 * long enough), or that passes while lim[waiting] breaches, not yet for long. */
static void resource__explain(const struct resource__state *st, const struct resource__limit *lim,
                              const double *val, int i, int n_failed, uint64_t held, uint64_t now,
                              struct observation *obs)
{
    char *buf = obs->reason, dur[32], of[32];
    size_t len = sizeof obs->reason;
    size_t used = (size_t)resource__describe(&lim[i], val[i], buf, len);
    resource__format_us(now - st->since_us[i], dur, sizeof dur);
    resource__format_us(held, of, sizeof of);
    if (used >= len)
        return;
    if (obs->ok || obs->inconclusive)
        snprintf(buf + used, len - used, " for %s of %s", dur, of);
    else if (held)
        used += (size_t)snprintf(buf + used, len - used, " for %s", dur);
    if (!obs->ok && n_failed > 1 && used < len)
        snprintf(buf + used, len - used, " (+%d more)", n_failed - 1);
}

static void resource__observe(struct resource__state *st, const struct check *c,
                              struct observation *obs)
{
    const struct resource_params *p = c->cfg->params;
    struct resource__limit lim[RESOURCE__LIMITS_MAX];
    double val[RESOURCE__LIMITS_MAX];
    bool have[RESOURCE__LIMITS_MAX] = {false}, host = false;
    uint64_t now = clock_mono_us(), held = p->for_ms * 1000;
    size_t n;
    int failed = -1, waiting = -1, settling = -1, n_failed = 0;

    *obs = (struct observation){.ok = true,
                                .type = FAULT_RESOURCE,
                                .severity = SEVERITY_MEDIUM,
                                .code = -1};
    if (resource__limits(p, lim, &n, obs->reason, sizeof obs->reason) < 0) {
        obs->ok = false; /* validate should have refused these params */
        return;
    }
    resource__follow(st, c->set ? c->set->pid : 0, lim, n);
    for (size_t i = 0; i < n; i++) {
        host |= resource__kinds[lim[i].m].host;
        have[i] = resource__kinds[lim[i].m].measure(st, &lim[i], now, &val[i]) == 1;
        if (!have[i]) /* nothing to measure yet (a first CPU sample): no verdict */
            continue;
        if (val[i] <= lim[i].max) {
            st->since_us[i] = 0;
            if (!st->under_us[i])
                st->under_us[i] = now;
            if (now - st->under_us[i] < held && settling < 0)
                settling = (int)i;
            continue;
        }
        st->under_us[i] = 0;
        if (!st->since_us[i])
            st->since_us[i] = now;
        if (now - st->since_us[i] < held) {
            waiting = waiting < 0 ? (int)i : waiting;
        } else {
            failed = failed < 0 ? (int)i : failed;
            n_failed++;
        }
    }
    if (failed >= 0) {
        obs->ok = false;
        obs->severity = resource__kinds[lim[failed].m].severity;
        obs->host_wide = resource__kinds[lim[failed].m].host;
        resource__explain(st, lim, val, failed, n_failed, held, now, obs);
    } else if (waiting >= 0) {
        /* Over, not for long enough to fail, and not a pass either: a
         * recovery is not verified while its service breaches. */
        obs->ok = false;
        obs->inconclusive = true;
        resource__explain(st, lim, val, waiting, 0, held, now, obs);
    } else if (settling >= 0) {
        /* Under, but a pass counts only after `for` under the limit: a
         * process just started has not opened its files yet. */
        obs->ok = false;
        obs->inconclusive = true;
        char dur[32], of[32];
        resource__format_us(now - st->under_us[settling], dur, sizeof dur);
        resource__format_us(held, of, sizeof of);
        snprintf(obs->reason, sizeof obs->reason, "under its %s limit for %s of %s",
                 resource__kinds[lim[settling].m].key, dur, of);
    } else if (!st->pid && !host) {
        snprintf(obs->reason, sizeof obs->reason, "not running: nothing to measure");
    } else {
        resource__summary(lim, val, have, n, obs->reason, sizeof obs->reason);
    }
}

static void resource__timer_cb(uv_timer_t *t)
{
    struct resource__state *st = t->data;
    struct observation obs;
    st->pending = false; /* first: check_report may start the next probe */
    resource__observe(st, st->c, &obs);
    check_report(st->c, &obs);
}

/* ---- ops ---- */

static const struct cfg_field resource__fields[] = {
    {"rss", CFG_STRING, RES_OFF(rss), 0, NULL},
    {"cpu", CFG_STRING, RES_OFF(cpu), 0, NULL},
    {"fds", CFG_STRING, RES_OFF(fds), 0, NULL},
    {"host_cpu", CFG_STRING, RES_OFF(host_cpu), 0, NULL},
    {"memory", CFG_STRING, RES_OFF(memory), 0, NULL},
    {"disk", CFG_PAIRS, RES_OFF(disk), 0, NULL},
    {"for", CFG_DURATION, RES_OFF(for_ms), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

static uint64_t resource__settle_ms(const void *params)
{
    return ((const struct resource_params *)params)->for_ms;
}

static int resource__validate(const void *params, char *why, size_t len)
{
    struct resource__limit lim[RESOURCE__LIMITS_MAX];
    size_t n;
    return resource__limits(params, lim, &n, why, len);
}

static int resource__init(uv_loop_t *loop)
{
    resource__loop = loop;
    return 0;
}

static void resource__shutdown(void)
{
    resource__loop = NULL;
}

/* The samples are read in the timer callback, not here: start must never
 * report, and /proc and statvfs reads take microseconds, so a 0 ms timer
 * costs the loop nothing. */
static int resource__start(struct check *c)
{
    struct resource__state *st = c->priv;
    if (!resource__loop)
        return -EINVAL;
    if (!st) {
        if (!(st = calloc(1, sizeof *st)))
            return -ENOMEM;
        uv_timer_init(resource__loop, &st->timer); /* cannot fail */
        st->timer.data = st;
        st->c = c;
        c->priv = st;
    }
    if (st->pending)
        return -EBUSY;
    st->pending = true;
    uvclock_arm(&st->timer, resource__timer_cb, 0);
    return 0;
}

static void resource__cancel(struct check *c)
{
    struct resource__state *st = c->priv;
    if (!st)
        return;
    uv_timer_stop(&st->timer);
    st->pending = false;
}

static void resource__closed_cb(uv_handle_t *h)
{
    free(h->data);
}

static void resource__release(struct check *c)
{
    struct resource__state *st = c->priv;
    if (!st)
        return;
    st->c = NULL;
    c->priv = NULL;
    uv_close((uv_handle_t *)&st->timer, resource__closed_cb);
}

/* detector_ops.fds: every /proc, cgroup or statvfs read closes within its
 * callback. */
static unsigned resource__fds(const void *params)
{
    (void)params;
    return 0;
}

const struct detector_ops resource_detector = {
    .name = "resource",
    .fields = resource__fields,
    .params_size = sizeof(struct resource_params),
    .params_init = NULL,
    .validate = resource__validate,
    .init = resource__init,
    .shutdown = resource__shutdown,
    .start = resource__start,
    .cancel = resource__cancel,
    .release = resource__release,
    .settle_ms = resource__settle_ms,
    .fds = resource__fds,
};
