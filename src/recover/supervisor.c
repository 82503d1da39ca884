/* Spawning, watching and stopping a service's process, as one table. The
 * child gets its own session (spawn.c), so its process group is its pid;
 * what leaves the group (a double fork under setsid) is reached through
 * the enclosure (its cgroup, or as a marked orphan of a subreaper). */
#include "recover/supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config/config-t.h"
#include "config/config.h"
#include "lib/cgroup.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/model.h"
#include "lib/procstat.h"
#include "lib/spawn.h"
#include "lib/spawner.h"
#include "lib/uvclock.h"
#include "recover/output.h"
#include "store/journal.h"

MODEL_NAME_OF(sup_state_name, sup_state, SUP_STATE_MAP, SUP__COUNT)
MODEL_NAME_OF(sup_event_name, sup_event, SUP_EVENT_MAP, SUP_EV__COUNT)

static void sup__closed(struct supervisor *sp)
{
    sp->handles_open--;
    if (sp->sink.closed)
        sp->sink.closed(sp->sink.ctx);
}

static void sup__handle_closed_cb(uv_handle_t *h)
{
    sup__closed(h->data);
}

static void sup__watch_closed_cb(uv_handle_t *h)
{
    struct supervisor *sp = h->data;
    free(h);
    sup__closed(sp);
}

static void sup__output_closed_cb(struct output *o)
{
    sup__closed((struct supervisor *)((char *)o - offsetof(struct supervisor, output)));
}

static void sup__exit_cb(uv_poll_t *w, int status, int events);
static void sup__grace_cb(uv_timer_t *t);
static void sup__empty_cb(void *ctx);

static void sup__enclosure_closed_cb(void *ctx)
{
    sup__closed(ctx);
}

int supervisor_init(struct supervisor *sp, const char *log_path, const char *fifo_path)
{
    sp->encl.empty = sup__empty_cb;
    sp->encl.closed = sup__enclosure_closed_cb;
    sp->encl.ctx = sp;
    /* Only what recoverd starts is contained: an external process is not ours. */
    int r = enclosure_init(&sp->encl, sp->cfg->command ? sp->box : NULL, sp->service);
    if (r < 0)
        return r;
    r = output_open(&sp->output, sp->loop, log_path, fifo_path, sp->cfg->log_max_bytes);
    if (r < 0) {
        enclosure_close(&sp->encl); /* nothing of it is open yet */
        return r;
    }
    sp->handles_open = 1; /* the output, as one unit */
    uv_timer_init(sp->loop, &sp->grace);
    sp->grace.data = sp;
    sp->handles_open++;
    sp->state = SUP_DOWN;
    return 0;
}

void supervisor_close(struct supervisor *sp)
{
    if (sp->job) /* not down, against the rule: its child is killed when it reports */
        sp->job->data = NULL;
    sp->job = NULL;
    pace_cancel(sp->pace, &sp->exit_job);
    uv_close((uv_handle_t *)&sp->grace, sup__handle_closed_cb);
    output_close(&sp->output, sup__output_closed_cb);
    if (enclosure_close(&sp->encl))
        sp->handles_open++; /* its closed callback comes later */
}

void supervisor_set_envp(struct supervisor *sp, char **envp)
{
    free(sp->envp);
    sp->envp = envp;
}

/* Close the pidfd watch; its memory goes in the close callback. */
static void sup__unwatch(struct supervisor *sp)
{
    uv_poll_t *w = sp->exit_watch;
    uv_os_fd_t pidfd = -1;
    if (!w)
        return;
    pace_cancel(sp->pace, &sp->exit_job);
    uv_fileno((uv_handle_t *)w, &pidfd);
    uv_close((uv_handle_t *)w, sup__watch_closed_cb);
    close(pidfd); /* safe once uv_close stopped polling it; libuv never closes it */
    sp->exit_watch = NULL;
}

/* Watch pidfd (owned from here on, even on failure): the process is up. */
static int sup__watch(struct supervisor *sp, pid_t pid, int pidfd)
{
    if (pidfd < 0)
        return pidfd;
    uv_poll_t *w = calloc(1, sizeof *w);
    int r = w ? uv_poll_init(sp->loop, w, pidfd) : -ENOMEM;
    if (r < 0) {
        close(pidfd);
        free(w);
        return r;
    }
    w->data = sp;
    uv_poll_start(w, UV_READABLE, sup__exit_cb);
    sp->handles_open++;
    sp->exit_watch = w;
    sp->pid = pid;
    sp->state = SUP_RUNNING;
    sp->stop_reason = STOP_NONE;
    sp->spawned_us = clock_mono_us();
    sp->spawned_ms = clock_wall_ms();
    return 0;
}

/* The child's record: durable at the end of this loop turn, or before the
 * next spawn starts (sup__opts), whichever comes first. */
static void sup__record(struct supervisor *sp, pid_t pid, uint64_t start_ticks)
{
    char fp[CONFIG_FINGERPRINT_LEN];
    config_process_fingerprint(sp->cfg, fp);
    journal_child_set(sp->journal, &(struct journal_child){sp->service, pid, start_ticks, fp});
}

/* ---- the cells ---- */

typedef int (*sup_action)(struct supervisor *sp, enum stop_reason reason);

static int sup__ignore(struct supervisor *sp, enum stop_reason reason)
{
    return 0;
}

static int sup__busy(struct supervisor *sp, enum stop_reason reason)
{
    return -EALREADY;
}

/* The options of a spawn of cfg->command; *spec: how to make its cgroup
 * (o->cgroup, when there is one) just before. */
static void sup__opts(struct supervisor *sp, struct spawn_opts *o, struct cgroup_spec *spec)
{
    /* The children recorded before are durable before this one starts. */
    journal_sync_children(sp->journal);
    *o = (struct spawn_opts){.argv = sp->cfg->command,
                             .env_add = sp->envp,
                             .cwd = sp->cfg->cwd,
                             .out_fd = sp->output.write_fd,
                             .cred = &sp->cfg->ident.cred,
                             .cgroup = enclosure_prepare(&sp->encl, &sp->cfg->cgroup, spec)};
}

/* What cgroup_build found (on a spawner thread, or here): 0, or -errno
 * and the spawn is not made. */
static int sup__made(struct supervisor *sp, const struct cgroup_spec *spec,
                     const struct cgroup_built *b)
{
    int r = enclosure_prepared(&sp->encl, spec, b);
    if (r < 0)
        log_event(LOG_ERROR, sp->service, "spawn-failed", "error=\"cannot make its cgroup: %s\"",
                  strerror(-r));
    return r;
}

/* What spawn_start said (r, pid, pidfd; ticks: its start time, 0 to read
 * it here): watched and recorded, or why not. */
static int sup__started(struct supervisor *sp, int r, pid_t pid, int pidfd, uint64_t ticks)
{
    if (r < 0) {
        log_event(LOG_ERROR, sp->service, "spawn-failed", "command=%s error=\"%s\"",
                  sp->cfg->command[0], strerror(-r));
        return r;
    }
    /* A pidfd turns the exit into a loop event without SIGCHLD; it works
     * even if the child is already a zombie. */
    if ((r = sup__watch(sp, pid, pidfd)) < 0) {
        kill(-pid, SIGKILL);
        waitpid(pid, NULL, 0);
        log_event(LOG_ERROR, sp->service, "spawn-failed", "error=\"cannot watch pid %d: %s\"",
                  (int)pid, strerror(-r));
        return r;
    }
    sup__record(sp, pid, ticks ? ticks : procstat_start_ticks(pid));
    log_event(LOG_INFO, sp->service, "spawned", "pid=%d", (int)pid);
    return 0;
}

/* DOWN + spawn: start cfg->command, here. */
static int sup__spawn(struct supervisor *sp, enum stop_reason reason)
{
    pid_t pid = 0;
    int pidfd = -1;
    struct spawn_opts o;
    struct cgroup_spec spec;
    struct cgroup_built built;
    if (!sp->cfg->command)
        return -ENOEXEC;
    sup__opts(sp, &o, &spec);
    if (o.cgroup) {
        cgroup_build(o.cgroup, &spec, &built);
        int r = sup__made(sp, &spec, &built);
        if (r < 0)
            return r;
        o.cgroup_late = built.late;
    }
    int r = spawn_start(&o, &pid, &pidfd);
    return sup__started(sp, r, pid, pidfd, 0);
}

/* The spawner reports (on the loop). A supervisor closed meanwhile (its
 * owner broke the rule that it be down) left data NULL: the child goes. */
static void sup__launch_done(struct spawner_job *j)
{
    struct supervisor *sp = j->data;
    if (!sp) {
        if (j->result == 0) {
            kill(-j->pid, SIGKILL);
            close(j->pidfd);
            waitpid(j->pid, NULL, 0);
        }
        return;
    }
    sp->job = NULL;
    sp->ended = j;
    supervisor_event(sp, SUP_EV_SPAWNED, STOP_NONE);
    sp->ended = NULL;
}

/* DOWN + launch: start cfg->command on the spawner's threads. */
static int sup__launch(struct supervisor *sp, enum stop_reason reason)
{
    struct spawn_opts o;
    struct cgroup_spec spec;
    if (!sp->launch_via)
        return sup__spawn(sp, reason);
    if (!sp->cfg->command)
        return -ENOEXEC;
    sup__opts(sp, &o, &spec);
    struct spawner_job *j = spawner_job_new(&o);
    if (!j) {
        log_event(LOG_ERROR, sp->service, "spawn-failed", "error=\"out of memory\"");
        return -ENOMEM;
    }
    j->yield = sp->launch_yields;
    /* The cgroup is made on the thread (sup__spawned learns how it went). */
    j->cgroup_make = o.cgroup != NULL;
    j->cgroup_spec = spec;
    sp->job = j;
    sp->state = SUP_SPAWNING;
    sp->stop_reason = STOP_NONE;
    sp->stop_pending = false;
    sp->spawned_us = clock_mono_us(); /* its uptime is nil until it runs */
    sp->spawned_ms = clock_wall_ms();
    spawner_submit(sp->launch_via, j, sup__launch_done, sp); /* may report at once */
    return -EINPROGRESS;
}

static int sup__stop(struct supervisor *sp, enum stop_reason reason);

/* SPAWNING + spawned: the pid is known (or the spawn failed); a stop that
 * came meanwhile is done now. */
static int sup__spawned(struct supervisor *sp, enum stop_reason reason)
{
    const struct spawner_job *j = sp->ended;
    bool stop = sp->stop_pending;
    enum stop_reason why = sp->stop_reason;
    sp->state = SUP_DOWN;
    sp->stop_reason = STOP_NONE;
    sp->stop_pending = false;
    int r = j->cgroup_make ? sup__made(sp, &j->cgroup_spec, &j->cgroup_built) : 0;
    if (r == 0)
        r = sup__started(sp, j->result, j->pid, j->pidfd, j->start_ticks);
    sp->result = r;
    if (r == 0 && stop)
        sup__stop(sp, why);
    if (sp->sink.launched)
        sp->sink.launched(sp->sink.ctx, r);
    return r;
}

/* SPAWNING + stop: kept for when the pid is known (a shutdown outranks a
 * restart). */
static int sup__spawning_stop(struct supervisor *sp, enum stop_reason reason)
{
    if (!sp->stop_pending || reason == STOP_SHUTDOWN)
        sp->stop_reason = reason;
    sp->stop_pending = true;
    return 0;
}

/* DOWN + adopt: a process a previous recoverd started (sp->adopting), left
 * running when that one died. Not our child: its exit comes through the
 * pidfd like any, without a status. -ESRCH: it is not that process. */
static int sup__adopt(struct supervisor *sp, enum stop_reason reason)
{
    pid_t pid = sp->adopting.pid;
    if (!sp->cfg->command || pid <= 1)
        return -EINVAL;
    /* The pidfd first: if the start time matches after, it names the
     * recorded process and not one that took its pid since. */
    int pidfd = spawn_pidfd(pid);
    if (pidfd < 0 || procstat_start_ticks(pid) != sp->adopting.start_ticks) {
        if (pidfd >= 0)
            close(pidfd);
        return -ESRCH;
    }
    int r = sup__watch(sp, pid, pidfd);
    if (r < 0)
        return r;
    sp->adopted = true;
    uint64_t age_ms = procstat_age_ms(sp->adopting.start_ticks);
    sp->spawned_us -= age_ms * 1000 < sp->spawned_us ? age_ms * 1000 : 0;
    sp->spawned_ms -= age_ms < sp->spawned_ms ? age_ms : 0;
    enclosure_adopt(&sp->encl);
    sup__record(sp, pid, sp->adopting.start_ticks);
    log_event(LOG_INFO, sp->service, "adopted", "pid=%d uptime_ms=%llu", (int)pid,
              (unsigned long long)age_ms);
    return 0;
}

/* DOWN + watch: an external service's pid, from its pidfile. -ENOENT (no
 * pidfile), -EINVAL (not a pid), -ESRCH (no such process). */
static int sup__watch_pidfile(struct supervisor *sp, enum stop_reason reason)
{
    char buf[32];
    if (!sp->cfg->pidfile)
        return -ENOENT;
    int fd = open(sp->cfg->pidfile, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -EINVAL;
    buf[n] = '\0';
    char *end;
    long pid = strtol(buf, &end, 10);
    if (pid <= 1 || pid > INT32_MAX || (*end && *end != '\n'))
        return -EINVAL;
    if (procstat_start_ticks((pid_t)pid) == 0)
        return -ESRCH; /* gone, or a zombie nobody reaped */
    int r = sup__watch(sp, (pid_t)pid, spawn_pidfd((pid_t)pid));
    if (r == 0)
        log_event(LOG_INFO, sp->service, "watching", "pid=%ld pidfile=%s", pid, sp->cfg->pidfile);
    return r;
}

/* RUNNING + stop: the stop signal to the group, SIGKILL after the grace.
 * recoverd never signals an external service: a shutdown stops watching
 * it; otherwise only why its next exit comes is recorded (STOP_RESTART: a
 * restart program will end it; STOP_NONE: that is off, an exit is a
 * fault again). */
static int sup__stop(struct supervisor *sp, enum stop_reason reason)
{
    if (!sp->cfg->command) {
        if (reason == STOP_SHUTDOWN) {
            sup__unwatch(sp);
            sp->pid = 0;
            sp->state = SUP_DOWN;
        } else {
            sp->stop_reason = reason; /* its restart program will end it */
        }
        return 0;
    }
    sp->stop_reason = reason;
    sp->state = SUP_STOPPING;
    log_event(LOG_INFO, sp->service, "stopping", "pid=%d signal=%s grace_ms=%llu", (int)sp->pid,
              sigabbrev_np(sp->cfg->stop.signal), (unsigned long long)sp->cfg->stop.grace_ms);
    kill(-sp->pid, sp->cfg->stop.signal);
    /* A stopped (SIGSTOP) process would hold the signal pending until the
     * grace period ran out: wake it so it can act on it now. */
    kill(-sp->pid, SIGCONT);
    /* What left the group hears it too, and has the same grace. */
    enclosure_signal(&sp->encl, sp->pid, sp->cfg->stop.signal, sp->cfg->stop.grace_ms);
    uvclock_arm(&sp->grace, sup__grace_cb, sp->cfg->stop.grace_ms);
    return 0;
}

/* STOPPING + stop: already on its way down; only the reason changes
 * (a shutdown outranks a restart). */
static int sup__restop(struct supervisor *sp, enum stop_reason reason)
{
    if (reason == STOP_SHUTDOWN)
        sp->stop_reason = reason;
    return 0;
}

/* RUNNING/STOPPING + release: stop watching an external process without
 * signalling it (the watch of a supervised one is never released). */
static int sup__release(struct supervisor *sp, enum stop_reason reason)
{
    if (sp->cfg->command)
        return -EPERM;
    sup__unwatch(sp);
    sp->pid = 0;
    sp->state = SUP_DOWN;
    return 0;
}

/* STOPPING + grace expired: SIGKILL the group and what left it. */
static int sup__kill(struct supervisor *sp, enum stop_reason reason)
{
    log_event(LOG_WARN, sp->service, "stop-timeout", "pid=%d grace_ms=%llu action=SIGKILL",
              (int)sp->pid, (unsigned long long)sp->cfg->stop.grace_ms);
    kill(-sp->pid, SIGKILL);
    enclosure_kill(&sp->encl, sp->pid);
    sp->killed = true;
    return 0;
}

/* Down, and the sink hears the exit (sp->last) with why it came. */
static int sup__down(struct supervisor *sp)
{
    uv_timer_stop(&sp->grace);
    sp->last.why = sp->stop_reason;
    sp->state = SUP_DOWN;
    sp->stop_reason = STOP_NONE;
    sp->killed = false;
    bool supervised = sp->cfg->command != NULL;
    sp->sink.exited(sp->sink.ctx, &sp->last);
    /* After: a restart may have spawned already (its journal_child_set
     * replaced the row), and the journal's first write of a loop turn,
     * which takes the WAL lock, should not delay that spawn. */
    if (supervised && sp->state != SUP_RUNNING)
        journal_child_clear(sp->journal, sp->service);
    return 0;
}

/* The leader has gone: wait for what it left, or be down now. Stopping,
 * the rest have what remains of the grace; after a death, or once the
 * grace ran out, they have had SIGKILL, and a while to go. */
static int sup__drain(struct supervisor *sp, bool died, bool empty)
{
    if (!sp->cfg->command || empty || enclosure_wait(&sp->encl) == 0)
        return sup__down(sp);
    sp->state = SUP_DRAINING;
    sp->killed |= died;
    if (sp->killed)
        uvclock_arm(&sp->grace, sup__grace_cb, SUP_KILL_WAIT_MS);
    log_event(LOG_INFO, sp->service, "draining", "why=\"processes it started are still running\"");
    return 0;
}

/* RUNNING/STOPPING + exited: the leader is gone; down once the rest is. */
static int sup__exited(struct supervisor *sp, enum stop_reason reason)
{
    pid_t pid = sp->pid;
    bool died = sp->state == SUP_RUNNING;
    bool empty = false; /* its cgroup was seen with nothing alive: no wait */
    struct sup_exit e = {.pid = pid,
                         .code = -1,
                         .why = sp->stop_reason,
                         .uptime_ms = (clock_mono_us() - sp->spawned_us) / 1000};
    if (sp->cfg->command && sp->adopted) {
        /* Not our child (its parent died): no status to read, nothing to
         * reap. Its group and what left it go, as below. */
        kill(-pid, SIGKILL);
        if (died)
            empty = enclosure_kill(&sp->encl, pid);
    } else if (sp->cfg->command) {
        siginfo_t info = {0};
        if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) < 0 || info.si_pid == 0)
            return -EAGAIN; /* a spurious wakeup: still running */
        /* The leader is gone; anything it left in its group goes with it
         * (so a restarted service never finds its port held by an orphan),
         * and before the reap: until then the zombie leader keeps the group
         * id from being reused by someone else. After a death, so does what
         * left the group. */
        kill(-pid, SIGKILL);
        if (died)
            empty = enclosure_kill(&sp->encl, pid);
        int wstatus = 0;
        waitpid(pid, &wstatus, 0);
        e.code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 0;
        e.signal = WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : 0;
    }
    sup__unwatch(sp);
    sp->pid = 0;
    sp->adopted = false;
    sp->has_exit = true;
    sp->last = e;
    sp->last_exit_ms = clock_wall_ms();
    enum log_level lvl = e.why == STOP_NONE ? LOG_WARN : LOG_INFO;
    if (e.signal)
        log_event(lvl, sp->service, "exited", "pid=%d signal=%s uptime_ms=%llu", (int)pid,
                  sigabbrev_np(e.signal), (unsigned long long)e.uptime_ms);
    else
        log_event(lvl, sp->service, "exited", "pid=%d code=%lld uptime_ms=%llu", (int)pid,
                  (long long)e.code, (unsigned long long)e.uptime_ms);
    return sup__drain(sp, died, empty);
}

/* DRAINING + stop: what is left is on its way; the reason the exit will be
 * reported with changes (a shutdown outranks a restart, which outranks a
 * death: the restart that asked spawns once it is reported). */
static int sup__drain_stop(struct supervisor *sp, enum stop_reason reason)
{
    if (reason == STOP_SHUTDOWN || sp->stop_reason == STOP_NONE)
        sp->stop_reason = reason;
    return 0;
}

/* DRAINING + grace expired: SIGKILL what is left; if that was done and it
 * is still there, it is stuck (uninterruptible): down anyway, said loudly. */
static int sup__drain_timeout(struct supervisor *sp, enum stop_reason reason)
{
    if (!sp->killed) {
        log_event(LOG_WARN, sp->service, "stop-timeout", "grace_ms=%llu action=SIGKILL",
                  (unsigned long long)sp->cfg->stop.grace_ms);
        enclosure_kill(&sp->encl, 0);
        sp->killed = true;
        uvclock_arm(&sp->grace, sup__grace_cb, SUP_KILL_WAIT_MS);
        return 0;
    }
    log_event(LOG_ERROR, sp->service, "drain-stuck",
              "wait_ms=%d why=\"processes it started survive SIGKILL\"", SUP_KILL_WAIT_MS);
    enclosure_unwait(&sp->encl);
    return sup__down(sp);
}

/* DRAINING + empty: nothing of it is left. */
static int sup__drained(struct supervisor *sp, enum stop_reason reason)
{
    log_event(LOG_INFO, sp->service, "drained", NULL);
    return sup__down(sp);
}

/* state x event. */
static const sup_action sup__table[SUP__COUNT][SUP_EV__COUNT] = {
    /* columns: spawn, watch, adopt, stop, release, exited, grace-expired, empty, launch,
     * spawned */
    [SUP_DOWN] = {sup__spawn, sup__watch_pidfile, sup__adopt, sup__ignore, sup__ignore, sup__ignore,
                  sup__ignore, sup__ignore, sup__launch, sup__ignore},
    [SUP_RUNNING] = {sup__busy, sup__busy, sup__busy, sup__stop, sup__release, sup__exited,
                     sup__ignore, sup__ignore, sup__busy, sup__ignore},
    [SUP_STOPPING] = {sup__busy, sup__busy, sup__busy, sup__restop, sup__release, sup__exited,
                      sup__kill, sup__ignore, sup__busy, sup__ignore},
    [SUP_DRAINING] = {sup__busy, sup__busy, sup__busy, sup__drain_stop, sup__release, sup__ignore,
                      sup__drain_timeout, sup__drained, sup__busy, sup__ignore},
    /* No pid yet: nothing can exit, be signalled or released. */
    [SUP_SPAWNING] = {sup__busy, sup__busy, sup__busy, sup__spawning_stop, sup__busy, sup__ignore,
                      sup__ignore, sup__ignore, sup__busy, sup__spawned},
};

int supervisor_event(struct supervisor *sp, enum sup_event ev, enum stop_reason reason)
{
    if ((unsigned)ev >= SUP_EV__COUNT)
        return -EINVAL;
    int r = sup__table[sp->state][ev](sp, reason);
    if (ev == SUP_EV_SPAWN || ev == SUP_EV_WATCH || ev == SUP_EV_ADOPT ||
        (ev == SUP_EV_LAUNCH && r != -EINPROGRESS))
        sp->result = r;
    return r;
}

int supervisor_launch(struct supervisor *sp, struct spawner *sw)
{
    sp->launch_via = sw;
    int r = supervisor_event(sp, SUP_EV_LAUNCH, STOP_NONE);
    sp->launch_via = NULL;
    return r;
}

void supervisor_detach(struct supervisor *sp)
{
    /* recoverd is leaving: the child it is starting is left running and
     * recorded like the others, so the next recoverd adopts it. */
    if (sp->job)
        spawner_wait(sp->job);
    if (sp->state == SUP_DOWN)
        return;
    log_event(LOG_INFO, sp->service, "detached", "pid=%d", (int)sp->pid);
    uv_timer_stop(&sp->grace);
    enclosure_unwait(&sp->encl);
    enclosure_detach(&sp->encl);
    sup__unwatch(sp);
    sp->pid = 0;
    sp->adopted = false;
    sp->state = SUP_DOWN;
    sp->stop_reason = STOP_NONE;
}

int supervisor_adopt(struct supervisor *sp, pid_t pid, uint64_t start_ticks)
{
    sp->adopting.pid = pid;
    sp->adopting.start_ticks = start_ticks;
    return supervisor_event(sp, SUP_EV_ADOPT, STOP_NONE);
}

/* The exit waited for a turn with time: handled now; a spurious one (the
 * process still runs) is watched again. */
static void sup__exit_job_run(struct pace_job *j)
{
    struct supervisor *sp = (struct supervisor *)((char *)j -
                                                  offsetof(struct supervisor, exit_job));
    supervisor_event(sp, SUP_EV_EXITED, STOP_NONE);
    if (sp->exit_watch)
        uv_poll_start(sp->exit_watch, UV_READABLE, sup__exit_cb);
}

static void sup__exit_cb(uv_poll_t *w, int status, int events)
{
    struct supervisor *sp = w->data;
    if (!pace_exit_now(sp->pace)) {
        /* The pidfd stays readable: unwatched until its turn comes, or
         * every poll meanwhile would bring it back. */
        uv_poll_stop(w);
        sp->exit_job.run = sup__exit_job_run;
        pace_defer_exit(sp->pace, &sp->exit_job);
        return;
    }
    supervisor_event(sp, SUP_EV_EXITED, STOP_NONE);
}

bool supervisor_exit_waiting(const struct supervisor *sp)
{
    return sp->exit_job.queued;
}

static void sup__grace_cb(uv_timer_t *t)
{
    supervisor_event(t->data, SUP_EV_GRACE, STOP_NONE);
}

static void sup__empty_cb(void *ctx)
{
    supervisor_event(ctx, SUP_EV_EMPTY, STOP_NONE);
}
