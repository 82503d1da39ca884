/* HTTP(S) checks: one GET per probe through libcurl's multi interface,
 * driven by the libuv loop. The ops table is http_detector (detect/kinds.h). */
#ifndef RECOVERD_DETECT_HTTP_H
#define RECOVERD_DETECT_HTTP_H

#include <stdbool.h>

#define HTTP_BODY_KEEP 4096 /* bytes of the body kept for the `body` match */

struct http_params {
    char *url;              /* http:// or https://; required */
    unsigned expect_status; /* exact status wanted; 0: any 2xx */
    char *expect_body;      /* substring of the first HTTP_BODY_KEEP bytes; NULL: none */
    bool tls_verify;        /* verify the peer certificate and host name; default true */
};

#endif
