/* HTTP(S) checks: one GET per probe. http:// goes through lib's HTTP/1.1
 * client (lib/http-client.h) on one kept-alive connection per check;
 * https:// is delegated to libcurl inside the plug-in recoverd-https.so,
 * loaded on first use so that recoverd does not carry libcurl and OpenSSL
 * unless a check needs TLS. The ops table is http_detector (detect/kinds.h). */
#ifndef RECOVERD_DETECT_HTTP_H
#define RECOVERD_DETECT_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "detect/detector.h"
#include "monitor/post.h" /* HTTPS_PLUGIN: the plug-in also carries webhook POSTs */

#define HTTP_BODY_KEEP 4096 /* bytes of the body kept for the `body` match */
/* Probes ride a kept-alive connection (one write and one read each, where a
 * connection per probe costs a socket, a connect with its handshake, four
 * epoll_ctl and a close), but not one older than this: a service that stops
 * accepting (its listener closed, its accept loop stuck, its backlog full)
 * while it still answers on the connections it has is seen by the first
 * probe past this age, which connects anew. A service that dies or is
 * stopped (SIGSTOP) fails the very next probe either way: its connection is
 * reset and the retry refused, or the answer times out. */
#define HTTP_REUSE_MS 30000

struct http_params {
    char *url;              /* http:// or https://; required */
    unsigned expect_status; /* exact status wanted; 0: any 2xx */
    char *expect_body;      /* substring of the first HTTP_BODY_KEEP bytes; NULL: none */
    bool tls_verify;        /* verify the peer certificate and host name; default true */
    uint64_t reuse_ms;      /* not a key: HTTP_REUSE_MS (tests lower it) */
};

/* What the executable lends the plug-in's https checks: the detector host
 * (report) and the one judgement of a complete answer, shared by both
 * transports so that http and https checks classify alike. */
struct https_host {
    const struct detector_host *detector; /* report */
    /* Status and head of the body against hp: obs says ok, or why not. */
    void (*observe)(const struct http_params *hp, int status, const char *body, size_t body_len,
                    struct observation *obs);
};

/* The plug-in's entry point for checks: the ops of https checks (no fields,
 * no validate: http_detector owns the YAML), given their host. */
#define HTTPS_DETECTOR_ENTRY "recoverd_https_detector"
typedef const struct detector_ops *(*https_detector_entry)(const struct https_host *host);

#endif
