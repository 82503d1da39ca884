/* The HTTP server: libmicrohttpd in epoll mode, driven by the libuv loop
 * (one uv_poll on MHD's epoll fd, one timer for MHD's timeouts), no threads. */
#include "api/api.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/routes.h"
#include "core/log.h"

#define API__CONNECTION_TIMEOUT 10 /* s of inactivity before MHD drops a connection */
#define API__CONNECTION_LIMIT 256  /* concurrent connections; a flood stalls the loop */
#define API__BACKLOG 128           /* listen(2) queue */

struct api {
    uv_loop_t *loop;         /* borrowed */
    struct daemon *d;        /* borrowed: the state the routes answer from */
    struct MHD_Daemon *mhd;  /* NULL once stopped */
    uv_poll_t poll;          /* readable when MHD's epoll fd has events */
    uv_prepare_t prepare;    /* re-arms timer before the loop blocks */
    uv_timer_t timer;        /* fires when MHD has a timeout due */
    int handles_open;        /* handles not yet through their close callback */
    char addr[INET6_ADDRSTRLEN + 8]; /* bound "127.0.0.1:7411", for messages */
};

/* MHD's own messages as our log lines, at info: most are about clients
 * ("closed by remote side"), and a failure to start is reported by api_new. */
static void api__mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\r\n")] = '\0';
    log_event(LOG_INFO, NULL, "api-mhd", "msg=\"%s\"", msg);
}

static void api__addr_format(const struct sockaddr_storage *ss, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        port = ntohs(in->sin_port);
        snprintf(buf, len, "%s:%u", host, port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        port = ntohs(in6->sin6_port);
        snprintf(buf, len, "[%s]:%u", host, port);
    } else {
        snprintf(buf, len, "(address family %d)", ss->ss_family);
    }
}

/* Our own listening socket rather than MHD_OPTION_SOCK_ADDR: bind errors
 * keep their errno (MHD logs "port 0" and may clobber it), IPv6 binds
 * exactly the address asked (V6ONLY), and port 0 learns its real port. */
static int api__listen(const struct sockaddr_storage *addr, int *out,
                       struct sockaddr_storage *bound)
{
    socklen_t len = addr->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                : sizeof(struct sockaddr_in);
    int one = 1;
    int fd = -1;
    int r = -EAFNOSUPPORT;
    if (addr->ss_family != AF_INET && addr->ss_family != AF_INET6)
        goto fail;
    fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
        goto fail_errno;
    if (addr->ss_family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0)
        goto fail_errno;
    if (bind(fd, (const struct sockaddr *)addr, len) < 0 || listen(fd, API__BACKLOG) < 0)
        goto fail_errno;
    len = sizeof *bound;
    if (getsockname(fd, (struct sockaddr *)bound, &len) < 0)
        goto fail_errno;
    *out = fd;
    return 0;
fail_errno:
    r = -errno;
fail:
    if (fd >= 0)
        close(fd);
    return r;
}

/* Copies MHD's decoded query arguments into the request, in order. */
static enum MHD_Result api__query_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    struct route_request *req = cls;
    if (req->n_query == ROUTES_MAX_QUERY) {
        req->query_overflow = true;
        return MHD_NO;
    }
    req->query[req->n_query++] = (struct route_query){.key = key, .value = value};
    return MHD_YES;
}

/* Queue the reply; body becomes the response buffer (one allocation). */
static enum MHD_Result api__send(struct MHD_Connection *c, struct route_reply *rep)
{
    static char oom[] = "{\"error\":\"out of memory\"}\n";
    unsigned status = rep->status;
    char *text = rep->body ? json_dumps(rep->body, JSON_COMPACT) : NULL;
    size_t n = text ? strlen(text) : 0;
    char *buf = text ? realloc(text, n + 2) : NULL;
    struct MHD_Response *resp;
    if (buf) {
        buf[n++] = '\n'; /* curl at a terminal leaves the prompt on its own line */
        buf[n] = '\0';
        resp = MHD_create_response_from_buffer(n, buf, MHD_RESPMEM_MUST_FREE);
    } else {
        free(text);
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        resp = MHD_create_response_from_buffer(sizeof oom - 1, oom, MHD_RESPMEM_PERSISTENT);
    }
    if (!resp) {
        free(buf);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (rep->allow[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, rep->allow);
    enum MHD_Result r = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return r;
}

/* Does the request announce a body? */
static bool api__has_body(struct MHD_Connection *c)
{
    const char *len = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                  MHD_HTTP_HEADER_CONTENT_LENGTH);
    return (len && strcmp(len, "0") != 0) ||
           MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
}

/* MHD calls this once when the headers are in, then per body chunk, then
 * once more. A request without a body is answered on the second call: an
 * answer on the first costs keep-alive (0.9.75 closes such connections).
 * No route reads a body yet, so one with a body is answered at once, unread
 * (answering later would mean draining it, and MHD refuses an answer while
 * body bytes are unconsumed); MHD then closes that connection. */
static enum MHD_Result api__request_cb(void *cls, struct MHD_Connection *c, const char *url,
                                       const char *method, const char *version,
                                       const char *upload_data, size_t *upload_data_size,
                                       void **con_cls)
{
    static int headers_seen; /* its address marks a request past its first call */
    struct api *a = cls;
    if (!*con_cls && !api__has_body(c)) {
        *con_cls = &headers_seen;
        return MHD_YES;
    }
    struct route_request req = {.d = a->d, .method = method, .path = url};
    struct route_reply rep;
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, api__query_cb, &req);
    routes_dispatch(&req, &rep);
    if (log_enabled(LOG_DEBUG))
        log_event(LOG_DEBUG, NULL, "api-request", "method=%s path=%s status=%u", method, url,
                  rep.status);
    enum MHD_Result r = api__send(c, &rep);
    json_decref(rep.body);
    return r;
}

static void api__run(struct api *a)
{
    if (a->mhd && MHD_run(a->mhd) != MHD_YES)
        log_event(LOG_WARN, NULL, "api-run-failed", NULL);
}

static void api__poll_cb(uv_poll_t *h, int status, int events) { api__run(h->data); }

static void api__timer_cb(uv_timer_t *h) { api__run(h->data); }

/* MHD's timeout changes with every request it handles, so re-read it each
 * time the loop is about to block. */
static void api__prepare_cb(uv_prepare_t *h)
{
    struct api *a = h->data;
    MHD_UNSIGNED_LONG_LONG ms;
    if (a->mhd && MHD_get_timeout(a->mhd, &ms) == MHD_YES)
        uv_timer_start(&a->timer, api__timer_cb, ms, 0);
    else
        uv_timer_stop(&a->timer);
}

static struct MHD_Daemon *api__mhd_start(struct api *a, int family, int fd)
{
    unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG | (family == AF_INET6 ? MHD_USE_IPv6 : 0);
    return MHD_start_daemon(flags, 0, NULL, NULL, api__request_cb, a,
                            MHD_OPTION_EXTERNAL_LOGGER, api__mhd_log, a,
                            MHD_OPTION_LISTEN_SOCKET, fd,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)API__CONNECTION_TIMEOUT,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)API__CONNECTION_LIMIT,
                            MHD_OPTION_END);
}

struct api *api_new(uv_loop_t *loop, struct daemon *d, const struct sockaddr_storage *addr,
                    char *err, size_t errlen)
{
    struct api *a = calloc(1, sizeof *a);
    struct sockaddr_storage bound;
    char asked[INET6_ADDRSTRLEN + 8];
    const char *why = NULL; /* set for failures that have no errno */
    int fd = -1;
    int r = -ENOMEM;
    api__addr_format(addr, asked, sizeof asked);
    if (!a)
        goto fail;
    a->loop = loop;
    a->d = d;
    if ((r = api__listen(addr, &fd, &bound)) < 0)
        goto fail;
    api__addr_format(&bound, a->addr, sizeof a->addr); /* the real port when asked for 0 */
    if (!(a->mhd = api__mhd_start(a, addr->ss_family, fd))) {
        why = "the HTTP server did not start (see the log)";
        goto fail; /* MHD leaves a given socket open when it fails to start */
    }
    fd = -1; /* MHD_stop_daemon closes it from now on */
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(a->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    if (!info) {
        why = "no epoll descriptor from the HTTP server";
        goto fail;
    }
    if ((r = uv_poll_init(loop, &a->poll, info->epoll_fd)) < 0)
        goto fail;
    uv_prepare_init(loop, &a->prepare);
    uv_timer_init(loop, &a->timer);
    a->poll.data = a->prepare.data = a->timer.data = a;
    a->handles_open = 3;
    uv_poll_start(&a->poll, UV_READABLE, api__poll_cb);
    uv_prepare_start(&a->prepare, api__prepare_cb);
    log_event(LOG_INFO, NULL, "api-listening", "addr=%s", a->addr);
    return a;
fail:
    snprintf(err, errlen, "cannot listen on %s: %s", asked, why ? why : strerror(-r));
    if (fd >= 0)
        close(fd);
    if (a && a->mhd)
        MHD_stop_daemon(a->mhd);
    free(a);
    return NULL;
}

static void api__close_cb(uv_handle_t *h)
{
    struct api *a = h->data;
    if (--a->handles_open == 0)
        free(a);
}

void api_free(struct api *a)
{
    if (!a)
        return;
    /* uv_close stops watching the epoll fd at once, before MHD closes it,
     * so libuv never polls a closed (or reused) descriptor. */
    uv_close((uv_handle_t *)&a->poll, api__close_cb);
    uv_close((uv_handle_t *)&a->prepare, api__close_cb);
    uv_close((uv_handle_t *)&a->timer, api__close_cb);
    MHD_stop_daemon(a->mhd);
    a->mhd = NULL;
}
