/* Containment of a service's processes: see containment.h.
 *
 * cgroup mode keeps recoverd's subtree under its own cgroup. The "no
 * internal processes" rule of cgroup v2: a cgroup that hands controllers to
 * its children may hold no process itself (the root is exempt). So where
 * recoverd's cgroup has memory/pids/cpu to give but has not handed them
 * down, and recoverd sits in it, recoverd moves itself into root/daemon,
 * a leaf, and enables them; where other processes share its cgroup that
 * fails, and the services run without limits (warned at start).
 *
 * subreaper mode finds a service's strays without a cgroup: orphans become
 * recoverd's children (PR_SET_CHILD_SUBREAPER), so a service's processes
 * are the leader's subtree plus the subtrees of the orphans that carry its
 * marker. A scan reads /proc/<pid>/task/<tid>/children from recoverd down,
 * O(recoverd's descendants), and /proc/<pid>/environ of each orphan only.
 * The strays are stopped as a killed predecessor's leftovers are
 * (recover/leftover.c): signal, pidfd watch, SIGKILL after the grace. */
#include "recover/containment.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config-t.h"
#include "lib/cgroup.h"
#include "lib/log.h"
#include "lib/model.h"
#include "lib/procstat.h"
#include "lib/reaper.h"
#include "recover/leftover.h"

/* A scan stops collecting past this many processes: a fork bomb is killed
 * in rounds, each round's sweep followed by a new scan. */
#define CONTAINMENT__SCAN_MAX 4096

MODEL_NAME_OF(containment_mode_name, containment_mode, CONTAINMENT_MODE_MAP, CONTAINMENT__COUNT)

int containment_mode_parse(const char *name)
{
    for (int m = 0; m < CONTAINMENT__COUNT; m++)
        if (!strcmp(name, containment_mode_name(m)))
            return m;
    return -1;
}

/* ---- setting up ---- */

static void containment__why(struct containment *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void containment__why(struct containment *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    free(c->why);
    if (vasprintf(&c->why, fmt, ap) < 0)
        c->why = NULL;
    va_end(ap);
}

static void containment__tag(struct containment *c, const char *state_dir)
{
    char real[PATH_MAX];
    const char *p = realpath(state_dir, real) ? real : state_dir;
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a 64 */
    for (; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    snprintf(c->tag, sizeof c->tag, "%016" PRIx64, h);
}

/* Hand the controllers recoverd's cgroup has down to root's children, as
 * far as the host allows; never fails the mode. */
static void containment__controllers(struct containment *c, const char *own)
{
    unsigned avail = 0, enabled = 0;
    char self[PATH_MAX];
    if (cgroup_read_controllers(own, "cgroup.controllers", &avail) < 0 || !avail)
        return;
    for (unsigned bit = 1; bit <= CGROUP_CPU; bit <<= 1) {
        char word[32], name[16];
        if (!(avail & bit))
            continue;
        snprintf(word, sizeof word, "+%s", cgroup_controllers_text(bit, name, sizeof name));
        int r = cgroup_write(own, "cgroup.subtree_control", word);
        if (r == -EBUSY && !c->self &&
            snprintf(self, sizeof self, "%s/daemon", c->root) < (int)sizeof self) {
            /* recoverd is an internal process of own: into a leaf, then again. */
            if (cgroup_mkdir(self) == 0 && cgroup_attach(self, 0) == 0 && (c->self = strdup(self)))
                cgroup_write(own, "cgroup.subtree_control", word);
        }
    }
    if (cgroup_read_controllers(own, "cgroup.subtree_control", &enabled) < 0)
        return;
    for (unsigned bit = 1; bit <= CGROUP_CPU; bit <<= 1) {
        char word[32], name[16];
        if (enabled & avail & bit) {
            snprintf(word, sizeof word, "+%s", cgroup_controllers_text(bit, name, sizeof name));
            cgroup_write(c->root, "cgroup.subtree_control", word);
        }
    }
    if (cgroup_read_controllers(c->root, "cgroup.subtree_control", &enabled) == 0)
        c->controllers = enabled;
}

/* 0 with c->root made, or -errno with the reason in c->why. */
static int containment__cgroup(struct containment *c)
{
    char own[PATH_MAX], root[PATH_MAX], kill_file[PATH_MAX];
    int r = cgroup_of_pid(getpid(), own, sizeof own);
    if (r < 0) {
        containment__why(c, "no cgroup v2 hierarchy for recoverd (%s)", strerror(-r));
        return r;
    }
    if (snprintf(root, sizeof root, "%s/recoverd.%s", own, c->tag) >= (int)sizeof root ||
        snprintf(kill_file, sizeof kill_file, "%s/cgroup.kill", root) >= (int)sizeof kill_file)
        return -ENAMETOOLONG;
    if ((r = cgroup_mkdir(root)) < 0) {
        containment__why(c, "cannot create %s (%s)", root, strerror(-r));
        return r;
    }
    if (access(kill_file, W_OK) < 0) {
        r = -errno;
        containment__why(c, "%s is not usable (%s: cgroup.kill needs Linux 5.14)", root,
                         strerror(errno));
        rmdir(root);
        return r;
    }
    if (!(c->root = strdup(root)))
        return -ENOMEM;
    containment__controllers(c, own);
    return 0;
}

static void containment__sigchld_cb(uv_signal_t *h, int signum)
{
    int n = reaper_reap();
    if (n > 0)
        log_event(LOG_DEBUG, NULL, "orphans-reaped", "count=%d", n);
}

static int containment__subreaper(struct containment *c, char *err, size_t len)
{
    int r = reaper_enable();
    if (r < 0) {
        snprintf(err, len, "cannot become a child subreaper: %s", strerror(-r));
        return r;
    }
    uv_signal_init(c->loop, &c->sigchld);
    c->sigchld.data = c;
    c->sigchld_up = true;
    if ((r = uv_signal_start(&c->sigchld, containment__sigchld_cb, SIGCHLD)) < 0) {
        snprintf(err, len, "cannot watch SIGCHLD: %s", uv_strerror(r));
        return r;
    }
    c->mode = CONTAINMENT_SUBREAPER;
    return 0;
}

int containment_init(struct containment *c, uv_loop_t *loop, enum containment_mode want,
                     const char *state_dir, char *err, size_t len)
{
    memset(c, 0, sizeof *c);
    c->loop = loop;
    containment__tag(c, state_dir);
    if (want == CONTAINMENT_SUBREAPER) {
        containment__why(c, "subreaper mode asked for");
    } else if (containment__cgroup(c) == 0) {
        c->mode = CONTAINMENT_CGROUP;
        return 0;
    } else if (want == CONTAINMENT_CGROUP) {
        snprintf(err, len, "cgroup containment is not possible here: %s",
                 c->why ? c->why : strerror(ENOMEM));
        containment_close(c);
        return -ENOTSUP;
    }
    int r = containment__subreaper(c, err, len);
    if (r < 0)
        containment_close(c);
    return r;
}

void containment_close(struct containment *c)
{
    if (c->sigchld_up)
        uv_close((uv_handle_t *)&c->sigchld, NULL);
    c->sigchld_up = false;
    /* Gone where empty; the one holding recoverd itself stays (it is in it). */
    if (c->root)
        rmdir(c->root);
    free(c->root);
    free(c->self);
    free(c->why);
    c->root = c->self = c->why = NULL;
}

const char *containment_limits_unmet(const struct containment *c, const struct cgroup_cfg *lim,
                                     char *buf, size_t len)
{
    unsigned need = (lim->memory_max ? CGROUP_MEMORY : 0) | (lim->pids_max ? CGROUP_PIDS : 0) |
                    (lim->cpu_period_us ? CGROUP_CPU : 0);
    unsigned have = c->mode == CONTAINMENT_CGROUP ? c->controllers : 0;
    char names[64];
    if (!(need & ~have))
        return NULL;
    cgroup_controllers_text(need & ~have, names, sizeof names);
    if (c->mode != CONTAINMENT_CGROUP)
        snprintf(buf, len, "cgroup limits not applied (controllers: %s): no cgroup in %s mode",
                 names, containment_mode_name(c->mode));
    else
        snprintf(buf, len, "cgroup limits not applied: no %s controller in %s", names, c->root);
    return buf;
}

/* ---- finding strays (subreaper) ---- */

/* Whether the environment file fd holds the entry mark exactly. Read as a
 * stream: an environment may be large, and this runs on the loop. -1 when
 * the file was empty. */
static int containment__marked_fd(int fd, const char *mark)
{
    char buf[4096];
    size_t mlen = strlen(mark), at = 0; /* bytes of the current entry matched so far */
    bool match = true, any = false;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        any = true;
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\0') {
                if (match && at == mlen)
                    return 1;
                at = 0;
                match = true;
            } else if (match && (at >= mlen || buf[i] != mark[at++])) {
                match = false;
            }
        }
    }
    return any ? 0 : -1;
}

/* Whether pid carries mark in its environment. A process in the middle of
 * an execve shows an empty environment for a moment: looked at again. */
static bool containment__marked(pid_t pid, const char *mark)
{
    char path[64];
    int r = -1;
    snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
    for (int tries = 0; r < 0 && tries < 3; tries++) {
        if (tries)
            sched_yield();
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return false;
        r = containment__marked_fd(fd, mark);
        close(fd);
    }
    return r > 0;
}

/* Add what lies below pid to out; with skip_pgid, not the members of that
 * process group (the caller signals the group itself), though below them. */
static void containment__below(pid_t pid, pid_t skip_pgid, struct pid_list *out)
{
    struct pid_list todo = {0};
    if (pid_list_add(&todo, pid) < 0)
        return;
    for (size_t i = 0; i < todo.n && out->n < CONTAINMENT__SCAN_MAX; i++) {
        size_t from = todo.n;
        reaper_children(todo.v[i], &todo);
        for (size_t k = from; k < todo.n; k++)
            if (!skip_pgid || getpgid(todo.v[k]) != skip_pgid)
                pid_list_add(out, todo.v[k]);
    }
    free(todo.v);
}

/* The processes of service mark outside leader's group (mark NULL: every
 * orphan, marked or not, as at shutdown). */
static void containment__scan(const char *mark, pid_t leader, struct pid_list *out)
{
    struct pid_list kids = {0};
    reaper_children(getpid(), &kids);
    for (size_t i = 0; i < kids.n; i++) {
        pid_t k = kids.v[i];
        if (k == leader)
            containment__below(k, leader, out);
        else if (!reaper_is_own(k) && (!mark || containment__marked(k, mark)) &&
                 procstat_start_ticks(k) && pid_list_add(out, k) == 0)
            containment__below(k, 0, out);
    }
    free(kids.v);
}

/* A pid directory name of /proc, or 0. */
static pid_t containment__pid_of(const char *name)
{
    char *end;
    long pid = strtol(name, &end, 10);
    return *name && !*end && pid > 1 && pid <= INT32_MAX ? (pid_t)pid : 0;
}

/* The processes on the host that carry mark, outside leader's group: an
 * adopted service's strays were orphaned to init when its recoverd died,
 * so they are not below this one. O(processes on the host). */
static void containment__scan_host(const char *mark, pid_t leader, struct pid_list *out)
{
    DIR *dir = opendir("/proc");
    struct dirent *de;
    if (!dir)
        return;
    while ((de = readdir(dir)) && out->n < CONTAINMENT__SCAN_MAX) {
        pid_t pid = containment__pid_of(de->d_name);
        if (pid && pid != getpid() && (!leader || getpgid(pid) != leader) &&
            containment__marked(pid, mark) && procstat_start_ticks(pid))
            pid_list_add(out, pid);
    }
    closedir(dir);
}

/* Stop the processes of l together: sig, grace_ms, SIGKILL (leftover.c).
 * 0 with done(ctx) owed, 1: nothing to stop, -ENOMEM. */
static int containment__stop(uv_loop_t *loop, const char *who, const struct pid_list *l, int sig,
                             uint64_t grace_ms, const struct leftover_sink *sink)
{
    if (l->n == 0)
        return 1;
    struct leftover *v = calloc(l->n, sizeof *v);
    if (!v)
        return -ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < l->n; i++) {
        uint64_t ticks = procstat_start_ticks(l->v[i]);
        if (ticks)
            v[n++] = (struct leftover){who, l->v[i], ticks, sig, grace_ms};
    }
    int r = n ? leftover_stop_all(loop, v, n, sink) : 1;
    free(v);
    return r;
}

static void containment__stray_gone(void *ctx, const struct leftover *l, enum leftover_fate f)
{
    if (f != LEFTOVER_ABSENT)
        log_event(f == LEFTOVER_STUCK ? LOG_ERROR : LOG_INFO, l->service, "stray-stopped",
                  "pid=%d fate=%s", (int)l->pid, leftover_fate_name(f));
}

/* ---- the shutdown sweep ---- */

struct containment__sweep {
    void (*done)(void *ctx);
    void *ctx;
};

static void containment__sweep_done(void *ctx, const struct leftover_counts *c)
{
    struct containment__sweep sw = *(struct containment__sweep *)ctx;
    free(ctx);
    sw.done(sw.ctx);
}

int containment_sweep(struct containment *c, int sig, uint64_t grace_ms, void (*done)(void *ctx),
                      void *ctx)
{
    struct pid_list l = {0};
    if (c->mode != CONTAINMENT_SUBREAPER)
        return 1;
    containment__scan(NULL, 0, &l);
    struct containment__sweep *sw = malloc(sizeof *sw);
    if (!sw) {
        free(l.v);
        return 1;
    }
    *sw = (struct containment__sweep){done, ctx};
    struct leftover_sink sink = {containment__stray_gone, containment__sweep_done, sw};
    int r = containment__stop(c->loop, "-", &l, sig, grace_ms, &sink);
    free(l.v);
    if (r != 0)
        free(sw);
    return r == 0 ? 0 : 1;
}

/* ---- what a previous recoverd left ---- */

/* The value of the environment entry of pid that starts with prefix, into
 * out; false if none (or pid is gone, or not ours to read). */
static bool containment__mark_value(pid_t pid, const char *prefix, char *out, size_t len)
{
    char path[64], buf[4096];
    size_t plen = strlen(prefix), at = 0, got = 0;
    bool match = true;
    ssize_t n;
    snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\0') {
                if (match && at == plen && got > 0 && got < len) {
                    out[got] = '\0';
                    close(fd);
                    return true;
                }
                at = got = 0;
                match = true;
            } else if (!match) {
                continue;
            } else if (at < plen) {
                match = buf[i] == prefix[at++];
            } else if (got + 1 < len) {
                out[got++] = buf[i];
            } else {
                match = false; /* longer than any service name */
            }
        }
    }
    close(fd);
    return false;
}

/* Every process in dir and the cgroups below it, for fn. */
static void containment__find_below(const char *dir, const char *service,
                                    void (*fn)(const char *service, pid_t pid, void *ctx),
                                    void *ctx, int depth)
{
    char path[PATH_MAX];
    struct pid_list l = {0};
    if (cgroup_procs(dir, &l) == 0)
        for (size_t i = 0; i < l.n; i++)
            fn(service, l.v[i], ctx);
    free(l.v);
    DIR *d = depth < 8 ? opendir(dir) : NULL; /* a service may nest cgroups of its own */
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (de->d_type == DT_DIR && de->d_name[0] != '.' &&
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name) < (int)sizeof path)
            containment__find_below(path, service, fn, ctx, depth + 1);
    if (d)
        closedir(d);
}

void containment_find(struct containment *c, void (*fn)(const char *service, pid_t pid, void *ctx),
                      void *ctx)
{
    char prefix[64], service[256], path[PATH_MAX];
    DIR *dir;
    struct dirent *de;
    if (c->mode == CONTAINMENT_CGROUP && (dir = opendir(c->root))) {
        while ((de = readdir(dir))) {
            size_t n = strlen(de->d_name);
            if (de->d_type != DT_DIR || n <= 8 || n - 8 >= sizeof service ||
                strcmp(de->d_name + n - 8, ".service") != 0 ||
                snprintf(path, sizeof path, "%s/%s", c->root, de->d_name) >= (int)sizeof path)
                continue;
            memcpy(service, de->d_name, n - 8);
            service[n - 8] = '\0';
            containment__find_below(path, service, fn, ctx, 0);
        }
        closedir(dir);
    }
    /* Both modes: a process that left the cgroup (or never had one) still
     * carries the marker its recoverd gave it. */
    snprintf(prefix, sizeof prefix, CONTAINMENT_MARK "=%s:", c->tag);
    if (!(dir = opendir("/proc")))
        return;
    while ((de = readdir(dir))) {
        pid_t pid = containment__pid_of(de->d_name);
        if (pid && pid != getpid() && containment__mark_value(pid, prefix, service, sizeof service))
            fn(service, pid, ctx);
    }
    closedir(dir);
}

/* ---- one service ---- */

int enclosure_init(struct enclosure *e, struct containment *box, const char *service)
{
    char path[PATH_MAX];
    e->box = box;
    e->service = service;
    e->cgroup = NULL;
    e->events = NULL;
    e->rmdir = NULL;
    e->mark[0] = '\0';
    e->sweeps = 0;
    e->waiting = e->closing = e->events_open = e->adopted = e->detached = false;
    e->made = e->removing = false;
    e->killed = true; /* its past is unknown: made afresh before the first spawn */
    if (!box)
        return 0;
    snprintf(e->mark, sizeof e->mark, CONTAINMENT_MARK "=%s:%s", box->tag, service);
    if (box->mode == CONTAINMENT_CGROUP) {
        if (snprintf(path, sizeof path, "%s/%s.service", box->root, service) >= (int)sizeof path)
            return -ENAMETOOLONG;
        if (!(e->cgroup = strdup(path)))
            return -ENOMEM;
    }
    return 0;
}

/* One limit into the spec, where the host has its controller. */
static void enclosure__limit(const struct enclosure *e, struct cgroup_spec *spec, unsigned ctl,
                             const char *file, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void enclosure__limit(const struct enclosure *e, struct cgroup_spec *spec, unsigned ctl,
                             const char *file, const char *fmt, ...)
{
    if (!(e->box->controllers & ctl) || spec->n_limits >= CGROUP_SPEC_LIMITS)
        return; /* warned at start: containment_limits_unmet */
    va_list ap;
    va_start(ap, fmt);
    snprintf(spec->limits[spec->n_limits].file, sizeof spec->limits[0].file, "%s", file);
    vsnprintf(spec->limits[spec->n_limits].value, sizeof spec->limits[0].value, fmt, ap);
    va_end(ap);
    spec->n_limits++;
}

const char *enclosure_prepare(struct enclosure *e, const struct cgroup_cfg *lim,
                              struct cgroup_spec *spec)
{
    memset(spec, 0, sizeof *spec);
    e->adopted = false; /* what the predecessor left was swept before this spawn */
    if (!e->cgroup)
        return NULL;
    /* One that went through cgroup.kill is made afresh (cgroup_build says
     * why); so is one found at start, whose past is unknown. */
    spec->renew = e->killed;
    if (lim->memory_max)
        enclosure__limit(e, spec, CGROUP_MEMORY, "memory.max", "%" PRIu64, lim->memory_max);
    if (lim->pids_max)
        enclosure__limit(e, spec, CGROUP_PIDS, "pids.max", "%u", lim->pids_max);
    if (lim->cpu_period_us && lim->cpu_quota_us == UINT64_MAX)
        enclosure__limit(e, spec, CGROUP_CPU, "cpu.max", "max %" PRIu64, lim->cpu_period_us);
    else if (lim->cpu_period_us)
        enclosure__limit(e, spec, CGROUP_CPU, "cpu.max", "%" PRIu64 " %" PRIu64, lim->cpu_quota_us,
                         lim->cpu_period_us);
    return e->cgroup;
}

int enclosure_prepared(struct enclosure *e, const struct cgroup_spec *spec,
                       const struct cgroup_built *b)
{
    e->killed = b->late;
    if (b->err < 0)
        return b->err;
    e->made = true;
    for (unsigned i = 0; i < spec->n_limits && i < CGROUP_SPEC_LIMITS; i++)
        if (b->limit_err[i] < 0)
            log_event(LOG_WARN, e->service, "cgroup-limit-failed",
                      "file=%s value=\"%s\" error=\"%s\"", spec->limits[i].file,
                      spec->limits[i].value, strerror(-b->limit_err[i]));
    return 0;
}

void enclosure_detach(struct enclosure *e)
{
    e->detached = true;
}

void enclosure_adopt(struct enclosure *e)
{
    e->adopted = true;
    e->made = true;
    e->killed = false; /* its cgroup holds the adopted process: not made afresh */
}

static void enclosure__closed_check(struct enclosure *e)
{
    if (e->closing && !e->events_open && e->sweeps == 0 && !e->removing && e->closed)
        e->closed(e->ctx);
}

static void enclosure__rescan(struct enclosure *e);

static void enclosure__sweep_done(void *ctx, const struct leftover_counts *c)
{
    struct enclosure *e = ctx;
    e->sweeps--;
    if (e->closing) {
        enclosure__closed_check(e);
        return;
    }
    if (e->waiting && e->sweeps == 0)
        enclosure__rescan(e);
}

/* SUBREAPER: stop what a scan finds; 1 when a sweep started, 0 if none. */
static int enclosure__sweep(struct enclosure *e, pid_t leader, int sig, uint64_t grace_ms)
{
    struct pid_list l = {0};
    if (e->adopted)
        containment__scan_host(e->mark, leader, &l);
    else
        containment__scan(e->mark, leader, &l);
    struct leftover_sink sink = {containment__stray_gone, enclosure__sweep_done, e};
    int r = containment__stop(e->box->loop, e->service, &l, sig, grace_ms, &sink);
    free(l.v);
    if (r == 0)
        e->sweeps++;
    return r == 0;
}

/* SUBREAPER, waiting and no sweep left: empty, or another round. */
static void enclosure__rescan(struct enclosure *e)
{
    if (enclosure__sweep(e, 0, SIGKILL, 0))
        return;
    e->waiting = false;
    if (e->empty)
        e->empty(e->ctx);
}

void enclosure_signal(struct enclosure *e, pid_t leader, int sig, uint64_t grace_ms)
{
    if (!e->box)
        return;
    if (e->cgroup) {
        cgroup_signal(e->cgroup, sig, leader);
        cgroup_signal(e->cgroup, SIGCONT, leader); /* a stopped one could not act on it */
        return;
    }
    enclosure__sweep(e, leader, sig, grace_ms);
}

bool enclosure_kill(struct enclosure *e, pid_t leader)
{
    if (!e->box)
        return false;
    if (e->cgroup) {
        /* Nothing alive in it (the leader's zombie does not count): no kill,
         * and so no cgroup to make afresh before the next spawn. */
        if (cgroup_populated(e->cgroup) == 0)
            return true;
        e->killed = true;
        int r = cgroup_kill(e->cgroup);
        if (r < 0 && r != -ENOENT)
            log_event(LOG_ERROR, e->service, "cgroup-kill-failed", "cgroup=%s error=\"%s\"",
                      e->cgroup, strerror(-r));
        return false;
    }
    enclosure__sweep(e, leader, SIGKILL, 0);
    return false;
}

static void enclosure__events_cb(uv_fs_event_t *h, const char *file, int events, int status)
{
    struct enclosure *e = h->data;
    if (!e->waiting || cgroup_populated(e->cgroup) > 0)
        return;
    uv_fs_event_stop(h);
    e->waiting = false;
    if (e->empty)
        e->empty(e->ctx);
}

int enclosure_wait(struct enclosure *e)
{
    char file[PATH_MAX];
    if (!e->box)
        return 0;
    if (e->cgroup) {
        /* Empty is for good (nothing of it is left to fork, and only its
         * own spawn puts a process in): most exits need no watch. */
        if (cgroup_populated(e->cgroup) <= 0)
            return 0;
        if (!e->events_open) { /* the first wait: most services never need one */
            if (!(e->events = malloc(sizeof *e->events))) {
                log_event(LOG_ERROR, e->service, "cgroup-watch-failed", "error=\"%s\"",
                          strerror(ENOMEM));
                return 0; /* as below: without a watch the wait would never end */
            }
            uv_fs_event_init(e->box->loop, e->events);
            e->events->data = e;
            e->events_open = true;
        }
        /* Watch, then look again: an emptying in between is not missed. */
        snprintf(file, sizeof file, "%s/cgroup.events", e->cgroup);
        int r = uv_fs_event_start(e->events, enclosure__events_cb, file, 0);
        if (cgroup_populated(e->cgroup) <= 0) { /* empty, or gone */
            uv_fs_event_stop(e->events);
            return 0;
        }
        if (r < 0) {
            log_event(LOG_ERROR, e->service, "cgroup-watch-failed", "file=%s error=\"%s\"", file,
                      uv_strerror(r));
            return 0; /* without a watch the wait would never end */
        }
        e->waiting = true;
        return 1;
    }
    e->waiting = true;
    if (e->sweeps > 0 || enclosure__sweep(e, 0, SIGKILL, 0))
        return 1;
    e->waiting = false;
    return 0;
}

void enclosure_unwait(struct enclosure *e)
{
    e->waiting = false;
    if (e->events_open)
        uv_fs_event_stop(e->events);
}

static void enclosure__events_closed_cb(uv_handle_t *h)
{
    struct enclosure *e = h->data;
    free(h);
    e->events = NULL;
    e->events_open = false;
    enclosure__closed_check(e);
}

static void enclosure__removed(struct enclosure *e)
{
    if (e->rmdir_errno && e->rmdir_errno != ENOENT)
        log_event(LOG_WARN, e->service, "cgroup-left", "cgroup=%s error=\"%s\"", e->cgroup,
                  strerror(e->rmdir_errno));
    free(e->cgroup);
    e->cgroup = NULL;
}

static void enclosure__rmdir_work(uv_work_t *w)
{
    struct enclosure *e = w->data;
    e->rmdir_errno = rmdir(e->cgroup) < 0 ? errno : 0;
}

static void enclosure__rmdir_done(uv_work_t *w, int status)
{
    struct enclosure *e = w->data;
    if (status < 0)
        e->rmdir_errno = -status;
    free(w);
    e->rmdir = NULL;
    e->removing = false;
    enclosure__removed(e);
    enclosure__closed_check(e);
}

int enclosure_close(struct enclosure *e)
{
    if (!e->box || e->closing)
        return 0;
    e->closing = true;
    e->waiting = false;
    e->rmdir_errno = 0;
    /* A cgroup's rmdir takes the kernel's cgroup mutex, which other cgroup
     * work on the host holds for milliseconds at times: on libuv's pool
     * (a stop of 1,000 services spent 5-10 ms of some turns in rmdir). One
     * never made (a failed start) is only looked for, at once. */
    if (e->cgroup && !e->detached && e->made && (e->rmdir = malloc(sizeof *e->rmdir))) {
        e->rmdir->data = e;
        e->removing = uv_queue_work(e->box->loop, e->rmdir, enclosure__rmdir_work,
                                    enclosure__rmdir_done) == 0;
        if (!e->removing) {
            free(e->rmdir);
            e->rmdir = NULL;
        }
    }
    if (!e->removing) {
        if (e->cgroup && !e->detached && rmdir(e->cgroup) < 0)
            e->rmdir_errno = errno;
        enclosure__removed(e);
    }
    if (e->events_open)
        uv_close((uv_handle_t *)e->events, enclosure__events_closed_cb);
    return e->events_open || e->sweeps > 0 || e->removing;
}
