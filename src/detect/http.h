/* HTTP(S) checks: one GET per probe. http:// is our own HTTP/1.1 client on
 * the libuv loop; https:// is delegated to libcurl inside the plug-in
 * recoverd-https.so, loaded on first use so that recoverd does not carry
 * libcurl and OpenSSL unless a check needs TLS. The ops table is
 * http_detector (detect/kinds.h). */
#ifndef RECOVERD_DETECT_HTTP_H
#define RECOVERD_DETECT_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "detect/detector.h"

#define HTTP_BODY_KEEP 4096 /* bytes of the body kept for the `body` match */

struct http_params {
    char *url;              /* http:// or https://; required */
    unsigned expect_status; /* exact status wanted; 0: any 2xx */
    char *expect_body;      /* substring of the first HTTP_BODY_KEEP bytes; NULL: none */
    bool tls_verify;        /* verify the peer certificate and host name; default true */
};

/* Judge a complete response (status, head of the body) against the check's
 * params: the one classification shared by both transports. Exported by the
 * recoverd executable for the plug-in. */
void http_response_observe(const struct http_params *hp, int status, const char *body,
                           size_t body_len, struct observation *obs);

/* The plug-in's entry point: the ops of https checks (no fields, no
 * validate: http_detector owns the YAML). */
#define HTTP_PLUGIN_FILE "recoverd-https.so"
#define HTTP_PLUGIN_SYMBOL "recoverd_https_detector"
typedef const struct detector_ops *(*http_plugin_entry)(void);

/* Webhook POSTs over https, also in the plug-in: one transfer per call on
 * the loop's libcurl multi (started on first use, stopped when the last
 * post and check are gone). post returns 0 and *out, or -errno; done gets
 * the HTTP status or -errno exactly once, from a loop callback, unless the
 * post is cancelled first. cancel ends it at once with no callback. */
struct https_post;
typedef void (*https_post_cb)(int status, void *arg);
typedef int (*https_post_fn)(uv_loop_t *loop, const char *url, const char *body, size_t len,
                             uint64_t timeout_ms, https_post_cb done, void *arg,
                             struct https_post **out);
typedef void (*https_post_cancel_fn)(struct https_post *p);
#define HTTPS_POST_SYMBOL "recoverd_https_post"
#define HTTPS_POST_CANCEL_SYMBOL "recoverd_https_post_cancel"

/* Another entry point of the plug-in (e.g. HTTPS_POST_SYMBOL), loading it
 * if needed; NULL with the reason in err when it cannot be had. */
void *http_plugin_symbol(const char *symbol, char *err, size_t len);

/* Where the plug-in is loaded from; NULL restores the default (the directory
 * of /proc/self/exe). For tests; call while no https check is alive. */
void http_plugin_path_set(const char *path);

#endif
