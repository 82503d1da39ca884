/* The state directory: default location, checks, the one-instance lock and
 * opening its files without following links. */
#include "lib/statedir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATEDIR__MODE 0750 /* group may read (a recoverd group reads the token) */

char *statedir_default(void)
{
    char *out = NULL;
    if (geteuid() == 0)
        return strdup("/var/lib/recoverd");
    const char *xdg = getenv("XDG_STATE_HOME");
    if (xdg && xdg[0] == '/') /* the XDG spec ignores a relative value */
        return asprintf(&out, "%s/recoverd", xdg) < 0 ? NULL : out;
    const char *home = getenv("HOME");
    if (!home || home[0] != '/') {
        const struct passwd *pw = getpwuid(geteuid());
        home = pw ? pw->pw_dir : NULL;
    }
    if (!home || home[0] != '/')
        return NULL;
    return asprintf(&out, "%s/.local/state/recoverd", home) < 0 ? NULL : out;
}

/* mkdir -p with STATEDIR__MODE for what it creates. */
static int statedir__mkdirs(const char *path)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return -ENAMETOOLONG;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, STATEDIR__MODE) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(buf, STATEDIR__MODE) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* A directory others could plant files in (or that someone else owns) is
 * refused: whoever writes there chooses what recoverd opens. */
static int statedir__check_dir(int fd, const char *path, char *err, size_t len)
{
    struct stat st;
    if (fstat(fd, &st) < 0) {
        snprintf(err, len, "%s: %s", path, strerror(errno));
        return -errno;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, len, "%s is not a directory", path);
        return -ENOTDIR;
    }
    if (st.st_uid != geteuid()) {
        snprintf(err, len, "%s is owned by uid %u, not by recoverd's user (uid %u): refused", path,
                 (unsigned)st.st_uid, (unsigned)geteuid());
        return -EPERM;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(err, len, "%s is writable by %s (mode %04o): refused; chmod go-w it", path,
                 (st.st_mode & S_IWOTH) ? "others" : "its group", (unsigned)(st.st_mode & 07777));
        return -EPERM;
    }
    return 0;
}

/* Who holds the lock: the kernel's answer, else the pid the holder wrote
 * (a holder in another pid namespace reads as 0). */
static long statedir__holder(int fd)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK && fl.l_pid > 0)
        return fl.l_pid;
    char buf[24] = "";
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    return n > 0 ? strtol(buf, NULL, 10) : 0;
}

/* A POSIX record lock, not flock: F_GETLK names the holder, and a child
 * never inherits it, so services left running by a dead recoverd do not
 * keep its successor out. The one trap (any close of the file by this
 * process drops it) does not apply: nothing else opens the lock file. */
static int statedir__lock(struct statedir *sd, char *err, size_t len)
{
    char why[160];
    char path[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s/lock", sd->path);
    int fd = statedir_file_open(path, O_RDWR | O_CREAT, 0600, why, sizeof why);
    if (fd < 0) {
        snprintf(err, len, "%s %s", path, why);
        return fd;
    }
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(fd, F_SETLK, &fl) < 0) {
        int e = errno;
        if (e == EAGAIN || e == EACCES) {
            snprintf(err, len, "%s is in use by another recoverd (pid %ld holds %s)", sd->path,
                     statedir__holder(fd), path);
            e = EBUSY;
        } else {
            snprintf(err, len, "locking %s: %s", path, strerror(e));
        }
        close(fd);
        return -e;
    }
    char pid[24];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        /* The lock holds without it: the pid there is only for humans. */
    }
    sd->lock_fd = fd;
    return 0;
}

int statedir_open(struct statedir *sd, const char *path, char *err, size_t len)
{
    int r;
    *sd = (struct statedir){.fd = -1, .lock_fd = -1};
    if ((r = statedir__mkdirs(path)) < 0) {
        snprintf(err, len, "cannot create %s: %s", path, strerror(-r));
        return r;
    }
    /* Resolved once: every later open goes through this path, which has no
     * symbolic link for anyone to swap (SQLite is told to refuse one). */
    if (!(sd->path = realpath(path, NULL))) {
        r = -errno;
        snprintf(err, len, "%s: %s", path, strerror(-r));
        return r;
    }
    sd->fd = open(sd->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sd->fd < 0) {
        r = -errno;
        snprintf(err, len, "%s: %s", sd->path, strerror(-r));
        goto fail;
    }
    if ((r = statedir__check_dir(sd->fd, sd->path, err, len)) < 0 ||
        (r = statedir__lock(sd, err, len)) < 0)
        goto fail;
    return 0;
fail:
    statedir_close(sd);
    return r;
}

int statedir_subdir(const struct statedir *sd, const char *name, char *err, size_t len)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", sd->path, name);
    if (mkdirat(sd->fd, name, STATEDIR__MODE) < 0 && errno != EEXIST) {
        int e = errno;
        snprintf(err, len, "cannot create %s: %s", path, strerror(e));
        return -e;
    }
    int fd = openat(sd->fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, len, "%s: %s", path,
                 e == ELOOP || e == ENOTDIR ? "not a directory (a symbolic link?): refused"
                                            : strerror(e));
        return -e;
    }
    int r = statedir__check_dir(fd, path, err, len);
    close(fd);
    return r;
}

void statedir_close(struct statedir *sd)
{
    if (sd->lock_fd >= 0)
        close(sd->lock_fd);
    if (sd->fd >= 0)
        close(sd->fd);
    free(sd->path);
    *sd = (struct statedir){.fd = -1, .lock_fd = -1};
}

int statedir_file_open(const char *path, int flags, mode_t mode, char *why, size_t len)
{
    struct stat st;
    int fd = open(path, flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, mode);
    if (fd < 0) {
        int e = errno;
        snprintf(why, len, "%s", e == ELOOP ? "is a symbolic link: refused" : strerror(e));
        return -e;
    }
    int r;
    if (fstat(fd, &st) < 0) {
        r = -errno;
        snprintf(why, len, "%s", strerror(-r));
    } else if (!S_ISREG(st.st_mode)) {
        snprintf(why, len, "is not a regular file: refused");
        r = -EINVAL;
    } else if (st.st_uid != geteuid()) {
        snprintf(why, len, "is owned by uid %u, not by recoverd's user (uid %u): refused",
                 (unsigned)st.st_uid, (unsigned)geteuid());
        r = -EPERM;
    } else if (st.st_nlink != 1) {
        snprintf(why, len, "has %lu hard links: refused", (unsigned long)st.st_nlink);
        r = -EMLINK;
    } else {
        return fd;
    }
    close(fd);
    return r;
}
