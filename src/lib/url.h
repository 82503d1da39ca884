/* http:// and https:// URLs: the one parser shared by HTTP checks and
 * webhooks, and the redacted form that may appear in logs. */
#ifndef RECOVERD_LIB_URL_H
#define RECOVERD_LIB_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct url {
    bool tls;                     /* https */
    bool ipv6;                    /* host is an IPv6 literal (bracketed in Host) */
    bool numeric;                 /* addr is the host's address: no resolving */
    unsigned port;                /* TCP port, explicit or 80/443 */
    bool port_given;              /* the url names the port (then Host carries it) */
    char host[256];               /* as written, without brackets */
    const char *path;             /* path and query inside the parsed string; "" means "/" */
    size_t path_len;              /* bytes of path */
    struct sockaddr_storage addr; /* the address with port, when numeric */
};

/* Parse scheme://host[:port][/path][?query]; userinfo and fragments are
 * refused. u->path points into url (keep url alive while using it). On
 * error returns -EINVAL with the reason in why. */
int url_parse(const char *url, struct url *u, char *why, size_t len);

/* The Host header value: host, [v6] host, plus ":port" when it is not the
 * scheme's default. */
void url_host_header(const struct url *u, char *buf, size_t len);

/* Bytes that hold url_redact's result for any url url_parse accepts:
 * scheme (up to 8), "://", host (up to 255, and brackets), ":port". */
#define URL_REDACTED_MAX (8 + 3 + 255 + 2 + 6 + 1)

/* What of a url may be logged: "scheme://host:port", never the userinfo,
 * path or query, where webhook services put their tokens. Works on any
 * string, parsed or not. Never cut: what does not fit in len (a string no
 * url_parse accepts, with len >= URL_REDACTED_MAX) reads "(url too long)". */
void url_redact(const char *url, char *buf, size_t len);

#endif
