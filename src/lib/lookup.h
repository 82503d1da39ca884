/* Host names looked up on libuv's thread pool (getaddrinfo blocks, so
 * never on the loop), for owners that may lose interest before the answer:
 * the http checks, the postgres plug-in and webhook posts. */
#ifndef RECOVERD_LIB_LOOKUP_H
#define RECOVERD_LIB_LOOKUP_H

#include <netdb.h>

#include <uv.h>

struct lookup;

/* status: 0, or a UV error (UV_EAI_NONAME...) with res NULL. res (TCP
 * addresses) and host (the name looked up) live until cb returns; so does
 * the lookup, which the owner forgets in cb. */
typedef void (*lookup_cb)(void *arg, int status, const struct addrinfo *res, const char *host);

/* Look host up. 0 with *out set, or a UV error (cb is then never called). */
int lookup_start(uv_loop_t *loop, const char *host, lookup_cb cb, void *arg, struct lookup **out);
/* The owner lost interest: cb will not be called. The memory goes when
 * libuv is done with it (a lookup already running cannot be stopped).
 * NULL-safe. */
void lookup_cancel(struct lookup *l);

#endif
