/* An HTTP/1.1 client on the libuv loop for http:// URLs: the host name
 * looked up off the loop (lib/lookup.c), one request at a time under a
 * deadline, the answer read by the strict parser (lib/http-response.c) and
 * the connection kept for the next request when the answer allows it. Its
 * users are the http check and the webhook poster; https:// goes through
 * the libcurl plug-in (recoverd-https.so) instead. Needs SIGPIPE ignored:
 * a write to a server that has gone is an error to report, not a signal. */
#ifndef RECOVERD_LIB_HTTP_CLIENT_H
#define RECOVERD_LIB_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lib/http-response.h"
#include "lib/url.h"

/* Where a request is (and failed). */
enum http_client_stage {
    HTTP_CLIENT_RESOLVE, /* looking the host name up */
    HTTP_CLIENT_CONNECT, /* opening the connection */
    HTTP_CLIENT_SEND,    /* writing the request */
    HTTP_CLIENT_RECV,    /* reading the answer */
};

/* What to send; the client builds the bytes once, in http_client_new:
 * "<method> <path> HTTP/1.1", Host, User-Agent, headers, Content-Length
 * when there is a body, "Connection: close" when head_only. */
struct http_request {
    const char *method;  /* "GET", "POST" */
    const char *headers; /* more header lines, each ending in CRLF; NULL: none */
    const char *body;    /* sent after the head; NULL: no body */
    size_t body_len;     /* bytes of body */
    size_t keep;         /* bytes of the response body handed to the callback; 0: none */
    bool head_only;      /* done at the end of the final head; the connection is not kept */
    uint64_t reuse_ms;   /* a kept connection this old (ms since its connect) is closed and
                          * the request connects anew; 0: kept at any age */
};

/* How one request ended. */
struct http_result {
    int err;                      /* 0: a whole response; else a libuv error (UV_ETIMEDOUT,
                                     UV_ECONNREFUSED, UV_EAI_*, UV_EPROTO...) */
    enum http_client_stage stage; /* where the request was when it ended */
    int status;                   /* HTTP status read; 0: none */
    enum http_response_error bad; /* err == UV_EPROTO: what was malformed (EMPTY: no byte came) */
    const char *body;             /* the first bytes of the body (at most keep); valid in the cb */
    size_t body_len;              /* bytes at body */
};

typedef void (*http_client_cb)(void *arg, const struct http_result *res);

struct http_client;

/* A client of u (http://; what it needs of u is copied) sending rq, with
 * its handles on loop. NULL when out of memory. Free with http_client_free. */
struct http_client *http_client_new(uv_loop_t *loop, const struct url *u,
                                    const struct http_request *rq);
/* Send the request, on the kept connection if there is one. cb gets the
 * result exactly once, always from a later loop callback, unless
 * http_client_cancel or http_client_free comes first; from cb the client
 * may be started again or freed. 0, -EBUSY while a request is in flight,
 * or -ENOMEM (no deadline could be kept: nothing was sent). */
int http_client_start(struct http_client *cl, uint64_t timeout_ms, http_client_cb cb, void *arg);
/* Forget the request in flight: no callback. Its connection closes, since
 * its answer would be taken for the next request's. NULL-safe. */
void http_client_cancel(struct http_client *cl);
/* Cancel, close the connection (its memory goes in its close callback)
 * and free cl. NULL-safe; allowed inside cb. */
void http_client_free(struct http_client *cl);

#endif
