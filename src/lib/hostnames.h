/* The names the API answers to: an allow-list checked against the Host
 * header, because a page on evil.example whose name is made to resolve to
 * 127.0.0.1 (DNS rebinding) would otherwise read the API's GET answers. */
#ifndef RECOVERD_LIB_HOSTNAMES_H
#define RECOVERD_LIB_HOSTNAMES_H

#include <stdbool.h>
#include <stddef.h>

/* The list in force when the configuration names none, NULL-terminated. */
extern char *const hostnames_default[];

/* Is the authority host[0..len) ("name" or "name:port", as a Host header
 * gives it) allowed by names (NULL-terminated)? An entry without a port
 * allows its name alone and with port (the API's own); an entry with a
 * port allows exactly that. Names compare without regard to case. */
bool hostnames_allow(char *const *names, unsigned port, const char *host, size_t len);

/* Is s a valid entry: a DNS name, an IPv4 address or a bracketed IPv6
 * address, then optionally ":port" (1 to 65535)? */
bool hostnames_entry_valid(const char *s);

#endif
