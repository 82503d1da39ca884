/* Token storage and comparison. The file is created with O_EXCL and mode
 * 0600 so no other user can read it, even for a moment. */
#include "lib/token.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

static int token__create(const char *path, char *out)
{
    unsigned char raw[TOKEN_LEN / 2];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
        return -EIO;
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    char line[TOKEN_LEN + 1];
    memcpy(line, out, TOKEN_LEN);
    line[TOKEN_LEN] = '\n';
    ssize_t w = write(fd, line, sizeof line);
    int r = w == (ssize_t)sizeof line && fsync(fd) == 0 ? 0 : -EIO;
    close(fd);
    return r;
}

int token_load(const char *state_dir, char *out)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/token", state_dir) >= (int)sizeof path)
        return -ENAMETOOLONG; /* a cut path would name another file */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? token__create(path, out) : -errno;
    ssize_t n = read(fd, out, TOKEN_LEN);
    close(fd);
    if (n != TOKEN_LEN)
        return -EINVAL;
    out[TOKEN_LEN] = '\0';
    return 0;
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
