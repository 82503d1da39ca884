/* One HTTP/1.1 request read from the bytes a connection received: framing
 * (where it ends), limits, and the fields the routes see. No I/O. */
#ifndef RECOVERD_API_REQUEST_H
#define RECOVERD_API_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include "api/routes.h"

#define REQUEST_HEAD_MAX (16 * 1024) /* bytes of request line + headers; more: 431 */
#define REQUEST_BODY_MAX (64 * 1024) /* bytes of body (Content-Length); more: 413 */

struct request {
    struct route_request route; /* what the routes read; .d is left for the caller */
    size_t head_len;            /* bytes up to the blank line included; 0: not all in yet */
    size_t size;                /* bytes of the whole request (head + body); 0: unknown */
    bool keep_alive;            /* the connection may carry another request */
    bool expect_continue;       /* "Expect: 100-continue": the client waits before the body */
    const char *host;           /* the authority the client asked for (the Host header, or that
                                 * of an absolute target); NOT NUL-terminated; NULL: absent */
    size_t host_len;            /* bytes at host */
    const char *error;          /* why, when request_parse returned an error status */
};

/* Parse the request at the start of buf[0..len). Returns its size once all
 * of it is in: its strings are then NUL-terminated and decoded in place
 * inside buf (so a complete request is parsed once). Returns 0 while bytes
 * are missing, buf untouched, with head_len, size and expect_continue set
 * once the head is in. Returns -status (400, 411, 413, 431, 501, 505) with
 * error set for a request that must be refused; the connection cannot be
 * trusted to frame another request after that. */
int request_parse(struct request *rq, char *buf, size_t len);

#endif
