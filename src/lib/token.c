/* Token storage and comparison. The file is created with O_EXCL and mode
 * 0600 so no other user can read it, even for a moment; an existing one is
 * used only when nobody but recoverd's user (and its group, to read) could
 * have written or read it, and when it holds exactly a token. */
#include "lib/token.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/statedir.h"

static int token__create(const char *path, char *out, char *why, size_t len)
{
    unsigned char raw[TOKEN_LEN / 2];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
        snprintf(why, len, "getrandom failed");
        return -EIO;
    }
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
    /* O_EXCL: never a file (or a link) someone placed there meanwhile. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        snprintf(why, len, "cannot create it: %s", strerror(e));
        return -e;
    }
    char line[TOKEN_LEN + 1];
    memcpy(line, out, TOKEN_LEN);
    line[TOKEN_LEN] = '\n';
    ssize_t w = write(fd, line, sizeof line);
    int r = w == (ssize_t)sizeof line && fsync(fd) == 0 ? 0 : -EIO;
    close(fd);
    if (r < 0)
        snprintf(why, len, "cannot write it");
    return r;
}

/* 64 lower- or upper-case hex digits and an optional newline, nothing else. */
static bool token__well_formed(const char *buf, ssize_t n)
{
    if (n != TOKEN_LEN && !(n == TOKEN_LEN + 1 && buf[TOKEN_LEN] == '\n'))
        return false;
    for (size_t i = 0; i < TOKEN_LEN; i++)
        if (!isxdigit((unsigned char)buf[i]))
            return false;
    return true;
}

/* Mode bits an existing token may not have: writable by anyone but its
 * owner, or readable by others (group read lets a recoverd group act). */
#define TOKEN__FORBIDDEN_MODE (S_IWGRP | S_IRWXO)

int token_load(const char *state_dir, char *out, char *why, size_t len)
{
    char path[4096], buf[TOKEN_LEN + 2];
    struct stat st;
    if (snprintf(path, sizeof path, "%s/token", state_dir) >= (int)sizeof path) {
        snprintf(why, len, "path too long");
        return -ENAMETOOLONG; /* a cut path would name another file */
    }
    int fd = statedir_file_open(path, O_RDONLY, 0, why, len);
    if (fd == -ENOENT)
        return token__create(path, out, why, len);
    if (fd < 0)
        return fd;
    int r = -EPERM;
    ssize_t n = -1;
    if (fstat(fd, &st) < 0) {
        r = -errno;
        snprintf(why, len, "%s", strerror(-r));
        goto done;
    }
    if (st.st_mode & TOKEN__FORBIDDEN_MODE) {
        snprintf(why, len, "is %s (mode %04o): refused; chmod 0600 it or remove it for a new one",
                 (st.st_mode & S_IROTH) ? "readable by others"
                                        : "writable by others than its owner",
                 (unsigned)(st.st_mode & 07777));
        goto done;
    }
    r = -EINVAL;
    n = read(fd, buf, sizeof buf);
    if (!token__well_formed(buf, n)) {
        snprintf(why, len,
                 "does not hold a token (%d hex digits and a newline): refused; remove it for a "
                 "new one",
                 TOKEN_LEN);
        goto done;
    }
    memcpy(out, buf, TOKEN_LEN);
    out[TOKEN_LEN] = '\0';
    r = 0;
done:
    memset(buf, 0, sizeof buf);
    close(fd);
    return r;
}

bool token_authorizes(const char *token, const char *authorization)
{
    static const char prefix[] = "Bearer ";
    if (!authorization || strncmp(authorization, prefix, sizeof prefix - 1) != 0)
        return false;
    const char *given = authorization + sizeof prefix - 1;
    size_t len = strlen(given);
    /* Compare every byte whatever the first mismatch; the length (public:
     * always TOKEN_LEN) is folded in rather than returned early. */
    unsigned char diff = len != TOKEN_LEN;
    for (size_t i = 0; i < TOKEN_LEN; i++)
        diff |= (unsigned char)token[i] ^ (unsigned char)(i < len ? given[i] : 0);
    return diff == 0;
}
