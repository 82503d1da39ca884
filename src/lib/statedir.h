/* The state directory (journal, token, lock, service logs): found the same
 * way by recoverd and recoverctl, checked before recoverd trusts it, locked
 * for the life of the one recoverd that uses it, and its files opened
 * without following a symbolic link. */
#ifndef RECOVERD_LIB_STATEDIR_H
#define RECOVERD_LIB_STATEDIR_H

#include <stddef.h>
#include <sys/types.h>

struct statedir {
    char *path;  /* absolute, without symbolic links (realpath at open); owned */
    int fd;      /* the directory itself, -1 when closed */
    int lock_fd; /* path/lock, write-locked (fcntl) while open; -1 when closed */
};

/* The state_dir of a configuration that names none: /var/lib/recoverd for
 * root, else $XDG_STATE_HOME/recoverd (an absolute XDG_STATE_HOME only),
 * else $HOME/.local/state/recoverd. A new string, or NULL (no home, or out
 * of memory). */
char *statedir_default(void);

/* Create path if missing (0750, parents too), refuse it unless it is a
 * directory owned by recoverd's effective user and not writable by group or
 * others, then lock it. 0, or -errno with the reason in err: -EBUSY when
 * another process holds the lock (err names its pid), -EPERM for an owner
 * or mode refused. Nothing is left open on failure. */
int statedir_open(struct statedir *sd, const char *path, char *err, size_t len);
/* Create (0750) and check the subfolder name like the state_dir itself.
 * 0 or -errno with the reason in err. */
int statedir_subdir(const struct statedir *sd, const char *name, char *err, size_t len);
/* Release the lock and the directory. NULL-safe members; idempotent. */
void statedir_close(struct statedir *sd);

/* open(2) path with O_NOFOLLOW and O_CLOEXEC added (and O_NONBLOCK, so a
 * planted FIFO cannot block), then refuse what is not a regular file owned
 * by recoverd's effective user with a single link. The fd, or -errno with
 * the reason in why: -ELOOP a symbolic link, -EPERM another owner, -EMLINK
 * hard links, -EINVAL not a regular file. */
int statedir_file_open(const char *path, int flags, mode_t mode, char *why, size_t len);

#endif
