/* The API token: created on first start in state_dir/token (mode 0600),
 * read by recoverctl, compared in constant time. */
#ifndef RECOVERD_LIB_TOKEN_H
#define RECOVERD_LIB_TOKEN_H

#include <stdbool.h>
#include <stddef.h>

#define TOKEN_LEN 64 /* hex characters */

/* Read state_dir/token, creating it (64 hex characters from getrandom)
 * when absent. An existing file is refused when it is a symbolic link, not
 * a regular file of recoverd's user, writable by group or others, readable
 * by others, or anything but 64 hex digits and a newline. out has
 * TOKEN_LEN + 1 bytes. 0, or -errno with the reason in why (words that
 * follow the file's path). */
int token_load(const char *state_dir, char *out, char *why, size_t len);
/* "Bearer <token>" matches, in time independent of where it differs. */
bool token_authorizes(const char *token, const char *authorization);

#endif
