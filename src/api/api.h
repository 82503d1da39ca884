/* The HTTP API: our own HTTP/1.1 server in the libuv loop (no threads). */
#ifndef RECOVERD_API_API_H
#define RECOVERD_API_API_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

struct api_backend;
struct api;

/* Listen on addr and serve from b (borrowed: must outlive the api). NULL with a message in err. */
struct api *api_new(uv_loop_t *loop, const struct api_backend *b,
                    const struct sockaddr_storage *addr, char *err, size_t errlen);
/* Stop serving and close the loop handles; memory is released from the
 * close callbacks, so run the loop afterwards. NULL-safe. */
void api_free(struct api *a);
/* Close connections idle (no byte read or written) for ms; default 10 s.
 * For tests, which cannot wait that long. */
void api_set_idle_timeout(struct api *a, uint64_t ms);

#endif
