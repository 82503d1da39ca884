/* The API token: created on first start in state_dir/token (mode 0600),
 * read by recoverctl, compared in constant time. */
#ifndef RECOVERD_LIB_TOKEN_H
#define RECOVERD_LIB_TOKEN_H

#include <stdbool.h>
#include <stddef.h>

#define TOKEN_LEN 64 /* hex characters */

/* Read state_dir/token, creating it (64 hex characters from getrandom)
 * when absent. out has TOKEN_LEN + 1 bytes. 0 or -errno. */
int token_load(const char *state_dir, char *out);
/* "Bearer <token>" matches, in time independent of where it differs. */
bool token_authorizes(const char *token, const char *authorization);

#endif
