/* The HTTP API: libmicrohttpd driven from the libuv loop (no threads). */
#ifndef RECOVERD_API_API_H
#define RECOVERD_API_API_H

#include <stddef.h>
#include <sys/socket.h>
#include <uv.h>

struct daemon;
struct api;

/* Listen on addr and serve from d's state. NULL with a message in err. */
struct api *api_new(uv_loop_t *loop, struct daemon *d, const struct sockaddr_storage *addr,
                    char *err, size_t errlen);
/* Stop serving and close the loop handles; memory is released from the
 * close callbacks, so run the loop afterwards. NULL-safe. */
void api_free(struct api *a);

#endif
