/* One HTTP POST of a JSON body with a deadline, for webhook alerts: our own
 * HTTP/1.1 client on the loop for http://, the recoverd-https.so plug-in
 * (libcurl) for https://. A new connection per POST: alerts are rare. */
#ifndef RECOVERD_MONITOR_POST_H
#define RECOVERD_MONITOR_POST_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct post;

/* status: the HTTP status of the final answer, or -errno: -ETIMEDOUT,
 * -ECONNREFUSED and other connect errors, -EHOSTUNREACH (name not
 * resolved), -EPROTO (not HTTP, TLS failure), -ECONNRESET (closed before
 * the status line), -EINVAL (bad url), -ENOPKG (https without the plug-in). */
typedef void (*post_cb)(int status, void *arg);

/* POST body (copied) as application/json to url. done runs exactly once,
 * always from a later loop callback, unless post_cancel comes first. The
 * post frees itself after that. NULL on OOM, with nothing started. */
struct post *post_start(uv_loop_t *loop, const char *url, const char *body, size_t len,
                        uint64_t timeout_ms, post_cb done, void *arg);

/* Abandon a post whose done has not run: no callback; its handles close
 * and it is freed in their close callbacks. */
void post_cancel(struct post *p);

#endif
