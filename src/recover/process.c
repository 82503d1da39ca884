/* Spawning and stopping a service's process. The child gets its own session
 * (UV_PROCESS_DETACHED -> setsid), so its process group is its pid and a
 * stop reaches every process it started. */
#include "recover/process.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/clock.h"
#include "config/config-t.h"
#include "daemon/daemon.h"
#include "lib/log.h"
#include "lib/spawn.h"
#include "recover/executor.h"
#include "store/journal.h"

uint64_t process_start_ticks(pid_t pid)
{
    char path[64], buf[1024];
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
    if (!p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X')
        return 0;
    unsigned long long ticks = 0;
    /* After ')': state(3) ... starttime is field 22, the 20th after state. */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d "
                      "%*d %llu",
               &ticks) != 1)
        return 0;
    return ticks;
}

int process_reap_leftover(pid_t pid, uint64_t start_ticks, uint64_t grace_ms)
{
    if (pid <= 1 || start_ticks == 0 || process_start_ticks(pid) != start_ticks)
        return 0;
    kill(-pid, SIGTERM);
    kill(-pid, SIGCONT);
    for (uint64_t waited = 0; waited < grace_ms; waited += 10) {
        if (process_start_ticks(pid) != start_ticks)
            break;
        usleep(10000);
    }
    /* Whatever is left of the group goes, leader gone or not. */
    kill(-pid, SIGKILL);
    return 1;
}

static void process__closed_cb(uv_handle_t *h)
{
    struct service *s = h->data;
    free(h);
    if (--s->handles_open == 0 && s->retired)
        daemon_service_gone(s->d, s);
}

/* The pidfd became readable: the process is gone. Reap it and report. */
static int process__watch(struct service *s, pid_t pid, int pidfd);

/* Close the pidfd watch; its memory goes in the close callback. */
static void process__unwatch_handle(uv_poll_t *w)
{
    uv_os_fd_t pidfd = -1;
    uv_fileno((uv_handle_t *)w, &pidfd);
    uv_close((uv_handle_t *)w, process__closed_cb);
    close(pidfd); /* safe once uv_close stopped polling it; libuv never closes it */
}

static void process__exit_cb(uv_poll_t *w, int status, int events)
{
    struct service *s = w->data;
    pid_t pid = s->pid;
    int wstatus = 0;
    int64_t code = -1; /* an external process is not our child: its status is not ours */
    int term_signal = 0;
    if (s->cfg->command) {
        if (waitpid(pid, &wstatus, WNOHANG) == 0)
            return; /* spurious wakeup: still running */
        code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 0;
        term_signal = WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : 0;
        /* The leader is gone; anything it left in its group goes with it, so
         * a restarted service never finds its port held by an orphan. */
        kill(-pid, SIGKILL);
    }
    process__unwatch_handle(w);
    uv_timer_stop(&s->timer);
    s->exit_watch = NULL;
    s->pid = 0;
    s->has_exit = true;
    s->last_exit_code = code;
    s->last_exit_signal = term_signal;
    s->last_exit_ms = clock_wall_ms();
    s->proc_state = PROC_DOWN;
    enum stop_reason why = s->stop_reason;
    s->stop_reason = STOP_NONE;
    uint64_t up_ms = (clock_mono_us() - s->spawned_us) / 1000;
    if (term_signal)
        log_event(why == STOP_NONE ? LOG_WARN : LOG_INFO, s->name, "exited",
                  "pid=%d signal=%s uptime_ms=%llu", (int)pid, sigabbrev_np(term_signal),
                  (unsigned long long)up_ms);
    else
        log_event(why == STOP_NONE ? LOG_WARN : LOG_INFO, s->name, "exited",
                  "pid=%d code=%lld uptime_ms=%llu", (int)pid, (long long)code,
                  (unsigned long long)up_ms);
    bool supervised = s->cfg->command != NULL;
    executor_process_exited(s, why, up_ms);
    /* After: a restart may have spawned already (its journal_child_set
     * replaced the row), and the journal's first write of a loop turn, which
     * takes the WAL lock, should not delay that spawn. */
    if (supervised && s->proc_state != PROC_RUNNING)
        journal_child_clear(s->d->journal, s->name);
}

int process_spawn(struct service *s)
{
    pid_t pid = 0;
    int pidfd = -1;
    struct spawn_opts o = {.argv = s->cfg->command, .envp = s->envp, .cwd = s->cfg->cwd,
                           .out_fd = s->output.write_fd};
    int r = spawn_start(&o, &pid, &pidfd);
    if (r < 0) {
        log_event(LOG_ERROR, s->name, "spawn-failed", "command=%s error=\"%s\"",
                  s->cfg->command[0], strerror(-r));
        return r;
    }
    /* A pidfd turns the exit into a loop event without SIGCHLD; it works
     * even if the child is already a zombie. */
    if ((r = process__watch(s, pid, pidfd)) < 0) {
        kill(-pid, SIGKILL);
        waitpid(pid, NULL, 0);
        log_event(LOG_ERROR, s->name, "spawn-failed", "error=\"cannot watch pid %d: %s\"",
                  (int)pid, strerror(-r));
        return r;
    }
    journal_child_set(s->d->journal, s->name, s->pid, process_start_ticks(s->pid));
    log_event(LOG_INFO, s->name, "spawned", "pid=%d", (int)s->pid);
    return 0;
}

/* Watch pidfd (which it owns from here on, even on failure). */
static int process__watch(struct service *s, pid_t pid, int pidfd)
{
    if (pidfd < 0)
        return pidfd;
    uv_poll_t *w = calloc(1, sizeof *w);
    int r = w ? uv_poll_init(s->d->loop, w, pidfd) : -ENOMEM;
    if (r < 0) {
        close(pidfd);
        free(w);
        return r;
    }
    w->data = s;
    uv_poll_start(w, UV_READABLE, process__exit_cb);
    s->handles_open++;
    s->exit_watch = w;
    s->pid = pid;
    s->proc_state = PROC_RUNNING;
    s->stop_reason = STOP_NONE;
    s->spawned_us = clock_mono_us();
    s->spawned_ms = clock_wall_ms();
    return 0;
}

int process_watch_pidfile(struct service *s)
{
    char buf[32];
    int fd = open(s->cfg->pidfile, O_RDONLY | O_CLOEXEC);
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
    if (process_start_ticks((pid_t)pid) == 0)
        return -ESRCH; /* gone, or a zombie nobody reaped */
    int r = process__watch(s, (pid_t)pid, spawn_pidfd((pid_t)pid));
    if (r == 0)
        log_event(LOG_INFO, s->name, "watching", "pid=%ld pidfile=%s", pid, s->cfg->pidfile);
    return r;
}

void process_unwatch(struct service *s)
{
    if (!s->exit_watch)
        return;
    process__unwatch_handle(s->exit_watch);
    s->exit_watch = NULL;
    s->pid = 0;
    s->proc_state = PROC_DOWN;
}

static void process__grace_cb(uv_timer_t *t)
{
    struct service *s = t->data;
    if (s->proc_state != PROC_STOPPING || s->pid <= 0)
        return;
    log_event(LOG_WARN, s->name, "stop-timeout", "pid=%d grace_ms=%llu action=SIGKILL",
              (int)s->pid, (unsigned long long)s->cfg->stop.grace_ms);
    kill(-s->pid, SIGKILL);
}

void process_stop(struct service *s, int reason)
{
    if (s->proc_state != PROC_RUNNING && s->proc_state != PROC_STOPPING)
        return;
    s->stop_reason = reason;
    if (s->proc_state == PROC_STOPPING)
        return; /* already on its way down; only the reason changes */
    s->proc_state = PROC_STOPPING;
    log_event(LOG_INFO, s->name, "stopping", "pid=%d signal=%s grace_ms=%llu", (int)s->pid,
              sigabbrev_np(s->cfg->stop.signal), (unsigned long long)s->cfg->stop.grace_ms);
    kill(-s->pid, s->cfg->stop.signal);
    /* A stopped (SIGSTOP) process would hold the signal pending until the
     * grace period ran out: wake it so it can act on it now. */
    kill(-s->pid, SIGCONT);
    uv_timer_start(&s->timer, process__grace_cb, s->cfg->stop.grace_ms, 0);
}
