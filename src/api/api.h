/* The HTTP API: our own HTTP/1.1 server in the libuv loop (no threads),
 * on TCP and on the operators' Unix socket. */
#ifndef RECOVERD_API_API_H
#define RECOVERD_API_API_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct api_backend;
struct api_cfg;
struct api;

/* What the composition root decides beyond the configuration. */
struct api_options {
    const char *socket_path; /* the operators' Unix socket (state_dir/api.sock); NULL: none */
    const char *group;       /* whose members may act through it; NULL: API_GROUP (routes.h) */
    unsigned tcp_max;        /* TCP connections served at once; 0: 256 */
    unsigned local_max;      /* Unix-socket connections served at once; 0: 64 */
    size_t out_max;          /* bytes of answers queued per door before requests wait; 0: 4 MiB */
};

/* Answers in flight: bytes queued for writing (or reserved by journal
 * reads) on live connections of both doors. */
struct api_out_stats {
    size_t queued;         /* now */
    size_t peak;           /* the most at once */
    unsigned long evicted; /* stalled readers closed to make room */
    unsigned long refused; /* requests answered 503 after waiting for room until their deadline */
};

/* Listen as cfg says (borrowed for the call) and on opt->socket_path, and
 * serve from b (borrowed: must outlive the api). NULL with a message in err. */
struct api *api_new(uv_loop_t *loop, const struct api_backend *b, const struct api_cfg *cfg,
                    const struct api_options *opt, char *err, size_t errlen);
/* Stop serving, remove the socket and close the loop handles; memory is
 * released from the close callbacks, so run the loop afterwards. NULL-safe. */
void api_free(struct api *a);
/* For tests, which cannot wait that long: close a kept-alive connection
 * idle (no byte read or written) for idle_ms (default 10 s), and one whose
 * request has not arrived whole request_ms after its first byte (default
 * 5 s; for a connection's first request, after the accept). */
void api_set_timeouts(struct api *a, uint64_t idle_ms, uint64_t request_ms);
/* A reader whose answer has not moved for stall_ms (default 1 s) may be
 * closed when requests wait for the byte budget (for tests). */
void api_set_stall(struct api *a, uint64_t stall_ms);
/* A listing (GET /v1/services) is written rows at a time (0: 64), its
 * slices taking up to turn_us of a loop turn (default 1,500; 0: one slice
 * a turn), for tests that look between slices. */
void api_set_slicing(struct api *a, size_t rows, uint64_t turn_us);
/* What the answers in flight cost, for tests and the curious. */
void api_out_stats(const struct api *a, struct api_out_stats *out);
/* The TCP port listened on (the real one when 0 was asked). */
unsigned api_port(const struct api *a);

#endif
