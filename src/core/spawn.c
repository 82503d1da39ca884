/* posix_spawn (glibc: clone(CLONE_VM|CLONE_VFORK)) instead of fork: no
 * page tables are copied, which on a virtualised host is most of the cost
 * of a restart, and it is safe beside threads because the child only execs.
 * It reports exec's error synchronously. */
#include "core/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

int spawn_start(const struct spawn_opts *o, pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, ignored;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    sigemptyset(&none);
    /* Caught signals reset at exec by themselves; ignored ones would stay
     * ignored in the child. recoverd ignores only SIGPIPE. */
    sigemptyset(&ignored);
    sigaddset(&ignored, SIGPIPE);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (o->out_fd >= 0) {
        posix_spawn_file_actions_adddup2(&fa, o->out_fd, 1);
        posix_spawn_file_actions_adddup2(&fa, o->out_fd, 2);
    } else {
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_adddup2(&fa, 1, 2);
    }
    if (o->cwd)
        posix_spawn_file_actions_addchdir_np(&fa, o->cwd);
    /* Own session and process group; default dispositions; empty mask. */
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF |
                                        POSIX_SPAWN_SETSIGMASK);
    posix_spawnattr_setsigdefault(&attr, &ignored);
    posix_spawnattr_setsigmask(&attr, &none);
    char *const *envp = o->envp ? o->envp : environ;
    int r = strchr(o->argv[0], '/') ? posix_spawn(pid, o->argv[0], &fa, &attr, o->argv, envp)
                                    : posix_spawnp(pid, o->argv[0], &fa, &attr, o->argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    return -r;
}

int spawn_pidfd(pid_t pid)
{
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    return fd < 0 ? -errno : fd;
}
