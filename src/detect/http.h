/* HTTP(S) checks: one GET per probe. http:// is our own HTTP/1.1 client on
 * the libuv loop; https:// is delegated to libcurl inside the plug-in
 * recoverd-https.so, loaded on first use so that recoverd does not carry
 * libcurl and OpenSSL unless a check needs TLS. The ops table is
 * http_detector (detect/kinds.h). */
#ifndef RECOVERD_DETECT_HTTP_H
#define RECOVERD_DETECT_HTTP_H

#include <stdbool.h>
#include <stddef.h>

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

/* Where the plug-in is loaded from; NULL restores the default (the directory
 * of /proc/self/exe). For tests; call while no https check is alive. */
void http_plugin_path_set(const char *path);

#endif
