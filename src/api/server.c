/* The API's HTTP/1.1 server on libuv: keep-alive, pipelined requests
 * answered in order, bounded input and output per connection, an idle
 * timeout. Plain HTTP only: the API listens on loopback, and a TLS library
 * loaded for nothing cost 2.4 MB of RSS (libmicrohttpd pulled in GnuTLS). */
#include "api/api.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/request.h"
#include "api/routes.h"
#include "lib/log.h"

#define API__CONN_MAX 256    /* connections served at once; more are accepted and closed */
#define API__IDLE_MS 10000   /* ms without a byte either way before a connection is closed */
#define API__LINGER_MS 2000  /* ms a finished connection waits for the client's FIN */
#define API__BACKLOG 128     /* listen(2) queue */
#define API__READ_CHUNK 4096 /* bytes of room the read buffer grows by */
#define API__BUF_MAX (REQUEST_HEAD_MAX + REQUEST_BODY_MAX + API__READ_CHUNK) /* bytes */
#define API__OUT_MAX (64 * 1024) /* bytes of answers in flight past which reading pauses */
#define API__REPLY_HEAD 512      /* bytes for a status line and headers */

struct api {
    uv_loop_t *loop;             /* borrowed */
    const struct api_backend *b; /* borrowed: the state the routes answer from */
    uv_tcp_t listener;           /* listener.data: this api */
    uv_timer_t sweep;            /* repeats while connections exist: idle and linger limits */
    struct conn *conns;          /* open connections (closing ones until their close callback) */
    unsigned n_conns;            /* entries in conns */
    unsigned handles;            /* our handles not yet through their close callback */
    bool freed;                  /* api_free was called: the last close callback frees */
    uint64_t idle_ms;            /* ms, API__IDLE_MS unless a test sets it */
    char scratch[4096]; /* where bytes after a connection's last request are read, unused */
    char addr[INET6_ADDRSTRLEN + 8]; /* bound "127.0.0.1:7411", for messages */
};

/* One client connection. Requests are parsed from buf and answered in
 * arrival order: uv_write queues in call order, so pipelining needs nothing
 * more. Input stops while more than API__OUT_MAX bytes of answers are in
 * flight, so a client that never reads costs at most that. */
struct conn {
    uv_tcp_t tcp;             /* tcp.data: this conn */
    struct api *api;          /* owner */
    struct conn *prev, *next; /* in api->conns */
    char *buf;                /* received, not yet answered; NULL when empty */
    size_t len;               /* bytes in buf */
    size_t cap;               /* bytes allocated at buf */
    size_t need;              /* bytes of the request at buf once its head is in; 0: unknown */
    size_t out;               /* bytes of answers written, not yet through their callback */
    uint64_t active_ms;       /* uv_now, ms: last request byte read or answer written */
    bool reading;             /* uv_read_start in force */
    bool continued;           /* "100 Continue" sent for the request at buf */
    bool eof;                 /* the client sent its FIN */
    bool finishing;           /* last answer queued: no more requests, then FIN and close */
    bool shut;                /* our FIN is sent or on its way */
};

struct reply {
    uv_write_t req;             /* req.data: the conn */
    size_t len;                 /* bytes counted in conn->out */
    char *body;                 /* JSON text, freed with the reply; NULL: none */
    char head[API__REPLY_HEAD]; /* status line and headers */
};

static void conn__process(struct conn *c);

static void api__addr_format(const struct sockaddr_storage *ss, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        snprintf(buf, len, "%s:%u", host, ntohs(in->sin_port));
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        snprintf(buf, len, "[%s]:%u", host, ntohs(in6->sin6_port));
    } else {
        snprintf(buf, len, "(address family %d)", ss->ss_family);
    }
}

/* Our own socket rather than uv_tcp_bind: libuv may defer a bind error to
 * uv_listen and does not set V6ONLY unless asked; this way the errno is the
 * bind's, IPv6 binds exactly the address asked, and port 0 learns its port. */
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

/* One of our handles went through its close callback. */
static void api__handle_closed(struct api *a)
{
    if (--a->handles == 0 && a->freed)
        free(a);
}

static void api__close_cb(uv_handle_t *h)
{
    api__handle_closed(h->data);
}

static const char *api__reason(unsigned status)
{
    static const struct {
        unsigned status;
        const char *text;
    } reasons[] = {
        {100, "Continue"},
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {409, "Conflict"},
        {411, "Length Required"},
        {413, "Content Too Large"},
        {415, "Unsupported Media Type"},
        {422, "Unprocessable Content"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {503, "Service Unavailable"},
        {505, "HTTP Version Not Supported"},
    };
    for (size_t i = 0; i < sizeof reasons / sizeof *reasons; i++)
        if (reasons[i].status == status)
            return reasons[i].text;
    return "Unknown";
}

/* The Date header's value, formatted once a second at most. */
static const char *api__date(void)
{
    static char text[40];
    static time_t last;
    time_t now = time(NULL);
    struct tm tm;
    if (now != last && gmtime_r(&now, &tm)) {
        strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        last = now;
    }
    return text;
}

/* ---- one connection --------------------------------------------------------------------- */

static void conn__close_cb(uv_handle_t *h)
{
    struct conn *c = h->data;
    struct api *a = c->api;
    *(c->prev ? &c->prev->next : &a->conns) = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (--a->n_conns == 0 && !a->freed)
        uv_timer_stop(&a->sweep);
    free(c->buf);
    free(c);
    api__handle_closed(a);
}

/* Close now, answers still queued included (their callbacks run first). */
static void conn__close(struct conn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, conn__close_cb);
}

static void conn__alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = h->data;
    if (c->finishing) {
        *buf = uv_buf_init(c->api->scratch, sizeof c->api->scratch);
        return;
    }
    /* A request in progress never exceeds head + body maximum, and complete
     * ones are answered before reading on, so API__BUF_MAX leaves room. */
    if (c->cap - c->len < API__READ_CHUNK && c->cap < API__BUF_MAX) {
        size_t cap = c->cap * 2 > c->len + API__READ_CHUNK ? c->cap * 2 : c->len + API__READ_CHUNK;
        cap = cap < API__BUF_MAX ? cap : API__BUF_MAX;
        char *p = realloc(c->buf, cap);
        if (p) {
            c->buf = p;
            c->cap = cap;
        }
    }
    *buf = uv_buf_init(c->buf + c->len, (unsigned)(c->cap - c->len)); /* 0 bytes: UV_ENOBUFS */
}

static void conn__reading(struct conn *c, bool on);

static void conn__shutdown_cb(uv_shutdown_t *req, int status)
{
    struct conn *c = req->data;
    free(req);
    if (status < 0)
        conn__close(c);
}

/* Our FIN once the last answer is out. Reading goes on to the client's
 * own: closing with its bytes unread would send RST, which can destroy the
 * answer still on its way (a 413 to a client busy sending its body). */
static int conn__shutdown(struct conn *c)
{
    uv_shutdown_t *req = malloc(sizeof *req);
    int r = req ? uv_shutdown(req, (uv_stream_t *)&c->tcp, conn__shutdown_cb) : -ENOMEM;
    if (r < 0) {
        free(req);
        return r;
    }
    req->data = c;
    c->shut = true;
    return 0;
}

/* After every change: close once both sides are done, FIN after the last
 * answer, and read while requests may still come and the answers in
 * flight are within bounds. */
static void conn__flow(struct conn *c)
{
    if (uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    if ((c->eof || c->finishing) && c->out == 0) {
        if (c->eof || (!c->shut && conn__shutdown(c) < 0)) {
            conn__close(c);
            return;
        }
    }
    conn__reading(c, !c->eof && (c->finishing || c->out <= API__OUT_MAX));
}

static void conn__read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct conn *c = s->data;
    if (n < 0 && n != UV_EOF) {
        conn__close(c);
        return;
    }
    if (n == UV_EOF) {
        c->eof = true;
        conn__flow(c);
        return;
    }
    if (c->finishing)
        return;                  /* after the last request: read only to see the FIN */
    if (n == 0 && c->len == 0) { /* nothing came: keep no buffer for an idle connection */
        free(c->buf);
        c->buf = NULL;
        c->cap = 0;
    }
    if (n == 0)
        return;
    c->len += (size_t)n;
    c->active_ms = uv_now(c->api->loop);
    conn__process(c);
}

static void conn__reading(struct conn *c, bool on)
{
    if (on == c->reading)
        return;
    if (on && uv_read_start((uv_stream_t *)&c->tcp, conn__alloc_cb, conn__read_cb) < 0) {
        conn__close(c);
        return;
    }
    if (!on)
        uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = on;
}

static void reply__write_cb(uv_write_t *req, int status)
{
    struct reply *rp = (struct reply *)req;
    struct conn *c = req->data;
    c->out -= rp->len;
    free(rp->body);
    free(rp);
    if (status < 0) {
        conn__close(c); /* also UV_ECANCELED from a close: c lives until close_cb */
        return;
    }
    c->active_ms = uv_now(c->api->loop);
    conn__process(c); /* requests paused by the output bound go on */
}

/* Queue head then body (NULL: none; owned by the reply from here on). */
static void conn__write(struct conn *c, struct reply *rp, size_t head_len, char *body,
                        size_t body_len)
{
    uv_buf_t bufs[2] = {uv_buf_init(rp->head, (unsigned)head_len),
                        uv_buf_init(body, (unsigned)body_len)};
    rp->req.data = c;
    rp->body = body;
    rp->len = head_len + body_len;
    if (uv_write(&rp->req, (uv_stream_t *)&c->tcp, bufs, body ? 2 : 1, reply__write_cb) < 0) {
        free(body);
        free(rp);
        conn__close(c);
        return;
    }
    c->out += rp->len;
}

/* The JSON text of body plus a newline (curl at a terminal then leaves the
 * prompt on its own line); *status becomes 500 when it cannot be made. */
static char *conn__json(json_t *body, unsigned *status, size_t *len)
{
    static const char oom[] = "{\"error\":\"out of memory\"}\n";
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    size_t n = text ? strlen(text) : 0;
    char *buf = text ? realloc(text, n + 2) : NULL;
    if (!buf) {
        free(text);
        *status = 500;
        n = sizeof oom - 2;
        buf = malloc(sizeof oom);
        if (!buf)
            return NULL;
        memcpy(buf, oom, n);
    }
    buf[n++] = '\n';
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Answer status with body (JSON, borrowed), head_only for HEAD. */
static void conn__reply(struct conn *c, unsigned status, const char *allow, json_t *body,
                        bool head_only)
{
    struct reply *rp = malloc(sizeof *rp);
    size_t len = 0;
    char *text = conn__json(body, &status, &len);
    if (!rp || !text) {
        free(rp);
        free(text);
        conn__close(c);
        return;
    }
    int n = snprintf(rp->head, sizeof rp->head,
                     "HTTP/1.1 %u %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nCache-Control: no-store\r\nDate: %s\r\n"
                     "Connection: %s\r\n%s%s%s\r\n",
                     status, api__reason(status), len, api__date(),
                     c->finishing ? "close" : "keep-alive", allow && *allow ? "Allow: " : "",
                     allow ? allow : "", allow && *allow ? "\r\n" : "");
    if (head_only) {
        free(text);
        text = NULL;
    }
    conn__write(c, rp, (size_t)n < sizeof rp->head ? (size_t)n : sizeof rp->head - 1, text,
                text ? len : 0);
}

/* A request refused by the server itself: {"error": why}, then close, as
 * the bytes after it cannot be trusted to start a request. */
static void conn__refuse(struct conn *c, unsigned status, const char *why)
{
    json_t *body = json_pack("{s:s}", "error", why);
    c->finishing = true;
    conn__reply(c, status, "", body, false);
    json_decref(body);
    if (log_enabled(LOG_DEBUG))
        log_event(LOG_DEBUG, NULL, "api-refused", "status=%u reason=\"%s\"", status, why);
}

/* A client that sent "Expect: 100-continue" waits for this before its body. */
static void conn__continue(struct conn *c)
{
    static const char line[] = "HTTP/1.1 100 Continue\r\n\r\n";
    struct reply *rp = malloc(sizeof *rp);
    if (!rp) {
        conn__close(c);
        return;
    }
    memcpy(rp->head, line, sizeof line - 1);
    c->continued = true;
    conn__write(c, rp, sizeof line - 1, NULL, 0);
}

/* The path for the log: printable, bounded, no spaces or quotes to split on. */
static void conn__log_path(const char *path, char *out, size_t len)
{
    size_t i = 0;
    for (; path[i] && i + 1 < len; i++) {
        unsigned char ch = (unsigned char)path[i];
        out[i] = path[i];
        if (ch <= 0x20 || ch >= 0x7f || ch == '"')
            out[i] = '?';
    }
    out[i] = '\0';
}

static void conn__answer(struct conn *c, struct request *rq)
{
    struct route_reply rep;
    uint64_t t0 = uv_hrtime();
    rq->route.b = c->api->b;
    routes_dispatch(&rq->route, &rep);
    c->finishing = !rq->keep_alive;
    conn__reply(c, rep.status, rep.allow, rep.body, strcmp(rq->route.method, "HEAD") == 0);
    json_decref(rep.body);
    if (log_enabled(LOG_DEBUG)) {
        char path[256];
        conn__log_path(rq->route.path, path, sizeof path);
        log_event(LOG_DEBUG, NULL, "api-request", "method=%s path=%s status=%u ms=%.3f",
                  rq->route.method, path, rep.status, (double)(uv_hrtime() - t0) / 1e6);
    }
}

/* Answer every complete request in buf, in order, until the output bound
 * or the last request; keep the rest for the next read. */
static void conn__process(struct conn *c)
{
    size_t used = 0;
    if (uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    while (!c->finishing && c->out <= API__OUT_MAX && used < c->len && c->len - used >= c->need &&
           !uv_is_closing((uv_handle_t *)&c->tcp)) {
        struct request rq;
        int r = request_parse(&rq, c->buf + used, c->len - used);
        if (r < 0) {
            conn__refuse(c, (unsigned)-r, rq.error);
        } else if (r == 0) {
            c->need = rq.size; /* no need to parse again before the body is in */
            if (rq.expect_continue && !c->continued)
                conn__continue(c);
            break;
        } else {
            conn__answer(c, &rq);
            used += (size_t)r;
            c->need = 0;
            c->continued = false;
        }
    }
    if (c->finishing || used == c->len) {
        free(c->buf); /* nothing left worth keeping */
        c->buf = NULL;
        c->len = c->cap = 0;
    } else if (used) {
        memmove(c->buf, c->buf + used, c->len - used);
        c->len -= used;
    }
    conn__flow(c);
}

/* ---- the listener ----------------------------------------------------------------------- */

static void api__sweep_cb(uv_timer_t *t)
{
    struct api *a = t->data;
    uint64_t now = uv_now(a->loop);
    uint64_t linger = a->idle_ms < API__LINGER_MS ? a->idle_ms : API__LINGER_MS;
    /* Once our FIN is out only the client's is awaited, and not for long. */
    for (struct conn *c = a->conns; c; c = c->next)
        if (now - c->active_ms >= (c->shut ? linger : a->idle_ms))
            conn__close(c);
}

static void api__sweep_start(struct api *a)
{
    uint64_t linger = a->idle_ms < API__LINGER_MS ? a->idle_ms : API__LINGER_MS;
    uint64_t period = linger / 2 > 10 ? linger / 2 : 10;
    uv_timer_start(&a->sweep, api__sweep_cb, period, period);
}

static void api__turn_away_close_cb(uv_handle_t *h)
{
    struct api *a = h->data;
    free(h);
    api__handle_closed(a);
}

/* Over the limit: accept and close at once, so the client learns now
 * rather than after a timeout in the backlog. */
static void api__turn_away(struct api *a, uv_stream_t *server)
{
    uv_tcp_t *t = malloc(sizeof *t);
    if (!t)
        return;
    uv_tcp_init(a->loop, t);
    t->data = a;
    a->handles++;
    uv_accept(server, (uv_stream_t *)t);
    uv_close((uv_handle_t *)t, api__turn_away_close_cb);
    log_event(LOG_DEBUG, NULL, "api-turned-away", "connections=%u", a->n_conns);
}

static void api__accept_cb(uv_stream_t *server, int status)
{
    struct api *a = server->data;
    struct conn *c;
    if (status < 0) {
        log_event(LOG_WARN, NULL, "api-accept-failed", "error=\"%s\"", uv_strerror(status));
        return;
    }
    if (a->n_conns >= API__CONN_MAX || !(c = calloc(1, sizeof *c))) {
        api__turn_away(a, server);
        return;
    }
    uv_tcp_init(a->loop, &c->tcp);
    c->tcp.data = c;
    c->api = a;
    c->next = a->conns;
    if (c->next)
        c->next->prev = c;
    a->conns = c;
    a->handles++;
    if (a->n_conns++ == 0)
        api__sweep_start(a);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        conn__close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1); /* one write per answer: Nagle would only delay it */
    c->active_ms = uv_now(a->loop);
    conn__reading(c, true);
}

struct api *api_new(uv_loop_t *loop, const struct api_backend *b,
                    const struct sockaddr_storage *addr, char *err, size_t errlen)
{
    struct api *a = calloc(1, sizeof *a);
    struct sockaddr_storage bound = {0}; /* api__listen fills it when it returns 0 */
    char asked[INET6_ADDRSTRLEN + 8];
    int fd = -1;
    int r = -ENOMEM;
    api__addr_format(addr, asked, sizeof asked);
    if (!a)
        goto fail;
    if ((r = api__listen(addr, &fd, &bound)) < 0)
        goto fail;
    a->loop = loop;
    a->b = b;
    a->idle_ms = API__IDLE_MS;
    api__addr_format(&bound, a->addr, sizeof a->addr); /* the real port when asked for 0 */
    uv_tcp_init(loop, &a->listener);
    uv_timer_init(loop, &a->sweep);
    a->listener.data = a->sweep.data = a;
    a->handles = 2;
    if ((r = uv_tcp_open(&a->listener, fd)) < 0) {
        close(fd); /* not the handle's yet */
        goto fail_handles;
    }
    if ((r = uv_listen((uv_stream_t *)&a->listener, API__BACKLOG, api__accept_cb)) < 0)
        goto fail_handles;
    log_event(LOG_INFO, NULL, "api-listening", "addr=%s", a->addr);
    return a;
fail_handles:
    snprintf(err, errlen, "cannot listen on %s: %s", asked, uv_strerror(r));
    api_free(a); /* memory goes with the handles' close callbacks */
    return NULL;
fail:
    snprintf(err, errlen, "cannot listen on %s: %s", asked, strerror(-r));
    free(a);
    return NULL;
}

void api_set_idle_timeout(struct api *a, uint64_t ms)
{
    a->idle_ms = ms;
    if (uv_is_active((uv_handle_t *)&a->sweep))
        api__sweep_start(a);
}

void api_free(struct api *a)
{
    if (!a)
        return;
    a->freed = true;
    uv_close((uv_handle_t *)&a->listener, api__close_cb);
    uv_close((uv_handle_t *)&a->sweep, api__close_cb);
    for (struct conn *c = a->conns; c; c = c->next)
        conn__close(c);
}
