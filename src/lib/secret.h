/* Keeping passwords out of words meant for people: observation reasons, log
 * lines, config errors. Built into recoverd and into each plug-in that
 * handles credentials (postgres, redis). */
#ifndef RECOVERD_LIB_SECRET_H
#define RECOVERD_LIB_SECRET_H

#include <stddef.h>

#define SECRET_MASK "***" /* what a hidden secret reads as: never its length */

/* Rewrite text (a C string in a buffer of size bytes) with SECRET_MASK in
 * place of: every occurrence of secret (NULL or "" for none), the value of
 * every password=VALUE token (libpq syntax: bare, or 'quoted' with \'
 * escapes) and the password of every URI (scheme://user:PASSWORD@host).
 * The result is cut to fit size. */
void secret_scrub(char *text, size_t size, const char *secret);

#endif
