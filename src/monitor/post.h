/* One HTTP POST of a JSON body with a deadline, for webhook alerts: lib's
 * HTTP/1.1 client for http://, the recoverd-https.so plug-in (libcurl) for
 * https://. A new connection per POST: alerts are rare. */
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

/* ---- the https side, in the plug-in ---- */

#define HTTPS_PLUGIN "https" /* recoverd-https.so: https checks and webhook POSTs */

/* What the plug-in's entry point HTTPS_POSTER_ENTRY returns: one transfer
 * per post on its libcurl multi (started on first use, stopped when the
 * last post and check are gone). post returns 0 and *out, or -errno; done
 * gets the HTTP status or -errno exactly once, from a loop callback, unless
 * cancel comes first, which ends the transfer at once with no callback. */
struct https_post;
typedef void (*https_post_cb)(int status, void *arg);
struct https_poster {
    int (*post)(uv_loop_t *loop, const char *url, const char *body, size_t len, uint64_t timeout_ms,
                https_post_cb done, void *arg, struct https_post **out);
    void (*cancel)(struct https_post *p); /* never after done */
};
#define HTTPS_POSTER_ENTRY "recoverd_https_poster"
/* srcport_apply: lib/srcport.h's, for the sockets the plug-in makes (the
 * executable exports nothing by name). */
typedef const struct https_poster *(*https_poster_entry)(int (*srcport_apply)(int fd, int family));

#endif
