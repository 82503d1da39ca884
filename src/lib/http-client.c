/* The HTTP/1.1 client: requests over uv_tcp with a deadline, one
 * kept-alive connection per client. */
#include "lib/http-client.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/lookup.h"
#include "lib/srcport.h"
#include "lib/uvclock.h"
#include "lib/wheel.h"

/* One TCP connection; on the heap because it closes asynchronously while
 * the client may already open the next one. */
struct http_client__conn {
    uv_tcp_t tcp;           /* data = this; the struct is freed in its close callback */
    struct http_client *cl; /* owner; NULL once dropped (callbacks then do nothing) */
    bool writing;           /* a uv_write is in flight (its callback frees the request): the
                             * connection cannot take another */
    bool reused;            /* has carried a whole response: the server may have dropped it */
    uint64_t born_ms;       /* uvclock_now() when it began connecting */
};

struct http_client {
    uv_loop_t *loop;                /* borrowed */
    struct wheel_timer deadline;    /* the request's, or 0 ms to report early; on the
                                       loop's wheel of 1 ms slots (lib/wheel.h) */
    struct http_client__conn *conn; /* idle or carrying the request; NULL: none */
    struct lookup *lookup;          /* resolution in flight; NULL: none */
    http_client_cb cb;              /* the request's */
    void *arg;                      /* for cb */
    bool busy;                      /* a request is in flight */
    bool starting;                  /* inside http_client_start: cb must wait for the loop */
    bool retried;                   /* the request already moved off a stale connection */
    bool head_only;                 /* done at the end of the final head */
    uint64_t reuse_ms;              /* the request's: a connection's age limit; 0: none */
    enum http_client_stage stage;   /* where the request is */
    int early;                      /* a failure for the deadline to report at 0 ms; 0: none */
    bool looked;                    /* the deadline passed and the loop read once since */
    bool numeric;                   /* the host is an address: never looked up */
    bool have_addr;                 /* addr is usable (numeric, or looked up, not refused since) */
    unsigned port;                  /* TCP port */
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } addr; /* the server's, with port, when have_addr (an IP address: not a whole
             * sockaddr_storage, 100 bytes more a client) */
    struct http_response *resp; /* the answer being read; NULL when idle (its line buffer
                                 * is most of a client: held only while a request is) */
    const char *host;           /* the name to look up, in tail */
    char *body;                 /* keep bytes in tail for the head of the body; NULL: none */
    size_t keep;                /* bytes at body */
    size_t req_len;             /* bytes of the request at the start of tail */
    char tail[];                /* request (head and body), host name, body buffer */
};

/* Every read lands here and is parsed before the callback returns: one
 * buffer serves all connections (the loop has one thread). */
static char http_client__rbuf[65536];

/* Answers being read come from here and go back here: a probe's malloc
 * and free of one (~600 bytes, past glibc's per-thread cache once a slot's
 * ten probes are in flight together) were ~260 instructions of a probe.
 * Kept up to the most that were read at once, at most HTTP_CLIENT__SPARE,
 * so an idle client still holds none (the loop has one thread). */
#define HTTP_CLIENT__SPARE 32
static struct http_response *http_client__spare[HTTP_CLIENT__SPARE];
static size_t http_client__spares;

static struct http_response *http_client__resp_get(void)
{
    if (http_client__spares)
        return http_client__spare[--http_client__spares];
    return malloc(sizeof(struct http_response));
}

static void http_client__resp_put(struct http_response *r)
{
    if (r && http_client__spares < HTTP_CLIENT__SPARE)
        http_client__spare[http_client__spares++] = r;
    else
        free(r);
}

static void http_client__conn_close_cb(uv_handle_t *h)
{
    free(h->data);
}

/* Forget the connection; callbacks still pending on it find no owner. */
static void http_client__conn_drop(struct http_client *cl)
{
    struct http_client__conn *k = cl->conn;
    if (!k)
        return;
    cl->conn = NULL;
    k->cl = NULL;
    uv_close((uv_handle_t *)&k->tcp, http_client__conn_close_cb);
}

static void http_client__lookup_drop(struct http_client *cl)
{
    lookup_cancel(cl->lookup);
    cl->lookup = NULL;
}

static void http_client__timer_cb(struct wheel_timer *d);

/* To the ms: a wheel of 1 ms slots. */
static int http_client__deadline(struct http_client *cl, uint64_t ms)
{
    return wheel_start(&cl->deadline, cl->loop, http_client__timer_cb, ms, 1);
}

/* A failure where the callback may not run (inside start): the deadline
 * reports it from the loop at once (out of memory for that: at the
 * request's own deadline, which start armed first). */
static void http_client__fail_soon(struct http_client *cl, int err)
{
    cl->early = err;
    http_client__conn_drop(cl);
    http_client__lookup_drop(cl);
    (void)http_client__deadline(cl, 0);
}

/* End the request: stop the deadline, keep or close the connection, and
 * call back last, because cb may start the next request or free cl. */
static void http_client__finish(struct http_client *cl, int err, bool keep)
{
    struct http_result res = {
        .err = err,
        .stage = cl->stage,
        .status = cl->resp ? cl->resp->status : 0,
        .bad = err == UV_EPROTO && cl->resp ? cl->resp->error : HTTP_RESPONSE_E_NONE,
        .body = cl->body,
        .body_len = cl->resp ? cl->resp->body_len : 0,
    };
    if (cl->starting) {
        assert(err != 0); /* an answer is never read inside start */
        http_client__fail_soon(cl, err);
        return;
    }
    wheel_stop(&cl->deadline);
    cl->busy = false;
    http_client__resp_put(cl->resp);
    cl->resp = NULL;
    if (keep && cl->conn && !cl->conn->writing)
        cl->conn->reused = true;
    else
        http_client__conn_drop(cl);
    http_client__lookup_drop(cl);
    cl->cb(cl->arg, &res);
}

/* Timers run before the loop reads its sockets: a deadline that came due
 * while the loop was held elsewhere (thousands of spawns and probes at a
 * start on a loaded host) would fail answers already waiting to be read,
 * and those failures feed more loop work. So the deadline is judged a
 * turn later: re-armed from its own firing, 1 ms on, it waits for a later
 * slot of the wheel, due after the loop's cached time (lib/uvclock never
 * moves it), so the loop polls its sockets first. */
static void http_client__timer_cb(struct wheel_timer *d)
{
    struct http_client *cl = (struct http_client *)((char *)d -
                                                    offsetof(struct http_client, deadline));
    if (!cl->busy)
        return;
    if (!cl->early && !cl->looked) {
        cl->looked = true;
        if (http_client__deadline(cl, 1) == 0)
            return; /* else out of memory: judged now */
    }
    http_client__finish(cl, cl->early ? cl->early : UV_ETIMEDOUT, false);
}

static void http_client__open(struct http_client *cl);

/* The connection carrying the request ended (UV_EOF) or broke. A
 * kept-alive connection that dies before a byte of answer was closed by
 * the server while idle: once per request that is not the server's
 * failure, and a fresh connection is tried. */
static void http_client__conn_lost(struct http_client *cl, int err)
{
    if (cl->conn->reused && cl->resp->got == 0 && !cl->retried) {
        cl->retried = true;
        http_client__conn_drop(cl);
        http_client__open(cl);
        return;
    }
    if (err == UV_EOF)
        err = http_response_eof(cl->resp) == HTTP_RESPONSE_COMPLETE ? 0 : UV_EPROTO;
    http_client__finish(cl, err, false);
}

static void http_client__write_cb(uv_write_t *w, int status)
{
    struct http_client__conn *k = w->data;
    struct http_client *cl = k->cl;
    free(w);
    k->writing = false;
    if (!cl || !cl->busy || cl->conn != k)
        return;
    if (status < 0)
        http_client__conn_lost(cl, status);
    else if (cl->stage == HTTP_CLIENT_SEND)
        cl->stage = HTTP_CLIENT_RECV;
}

/* uv_try_write first: a request of a few hundred bytes fits the socket
 * buffer, and uv_write would, once its callback has run, take POLLOUT off
 * the watcher with an epoll_ctl on every request. */
static void http_client__send(struct http_client *cl)
{
    struct http_client__conn *k = cl->conn;
    uv_buf_t b = uv_buf_init(cl->tail, (unsigned)cl->req_len);
    int r = uv_try_write((uv_stream_t *)&k->tcp, &b, 1);
    cl->stage = HTTP_CLIENT_SEND;
    if (r == (int)cl->req_len) {
        cl->stage = HTTP_CLIENT_RECV;
        return;
    }
    if (r >= 0 || r == UV_EAGAIN) {
        /* Rare (a full socket buffer): the request is on the heap only then. */
        uv_write_t *w = malloc(sizeof *w);
        size_t done = r > 0 ? (size_t)r : 0;
        b = uv_buf_init(cl->tail + done, (unsigned)(cl->req_len - done));
        if (!w)
            r = UV_ENOMEM;
        else if (w->data = k,
                 (r = uv_write(w, (uv_stream_t *)&k->tcp, &b, 1, http_client__write_cb)) == 0)
            k->writing = true;
        else
            free(w);
    }
    if (r < 0)
        http_client__conn_lost(cl, r);
}

static void http_client__alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    *b = uv_buf_init(http_client__rbuf, sizeof http_client__rbuf);
}

static void http_client__read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct http_client__conn *k = s->data;
    struct http_client *cl = k->cl;
    size_t used = 0;
    int r;
    if (!cl || n == 0)
        return;
    if (!cl->busy) {
        /* Idle: the server closed its side (keep-alive timeout) or spoke
         * unasked. Either way the next request goes on a new connection. */
        http_client__conn_drop(cl);
        return;
    }
    if (n < 0) {
        http_client__conn_lost(cl, (int)n);
        return;
    }
    cl->stage = HTTP_CLIENT_RECV;
    r = http_response_feed(cl->resp, b->base, (size_t)n, &used);
    if (r == HTTP_RESPONSE_MORE)
        return;
    /* Bytes past the answer were sent unasked: the connection is not trusted. */
    http_client__finish(cl, r < 0 ? UV_EPROTO : 0,
                        r == HTTP_RESPONSE_COMPLETE && used == (size_t)n &&
                            http_response_reusable(cl->resp));
}

static void http_client__connect_cb(uv_connect_t *req, int status)
{
    struct http_client__conn *k = req->data;
    struct http_client *cl = k->cl;
    free(req);
    if (!cl)
        return; /* dropped: cancelled, freed or timed out */
    if (status < 0) {
        if (!cl->numeric)
            cl->have_addr = false; /* the name may point elsewhere now */
        http_client__finish(cl, status, false);
        return;
    }
    /* Reading stays on for the connection's life, idle too: a server's
     * close is seen at once and no request pays an epoll_ctl. */
    uv_read_start((uv_stream_t *)&k->tcp, http_client__alloc_cb, http_client__read_cb);
    http_client__send(cl);
}

static int http_client__connect(struct http_client *cl)
{
    struct http_client__conn *k = calloc(1, sizeof *k);
    uv_connect_t *req;
    int r;
    cl->stage = HTTP_CLIENT_CONNECT;
    if (!k)
        return UV_ENOMEM;
    if ((r = uv_tcp_init_ex(cl->loop, &k->tcp, cl->addr.sa.sa_family)) < 0) {
        free(k); /* never initialised: no close needed */
        return r;
    }
    k->tcp.data = k;
    k->cl = cl;
    k->born_ms = uvclock_now(cl->loop);
    cl->conn = k;
    if ((r = srcport_uv(&k->tcp, cl->addr.sa.sa_family)) < 0) {
        http_client__conn_drop(cl);
        return r;
    }
    /* libuv defers ECONNREFUSED to the callback; other errors come now. */
    /* On the heap while connecting only; its callback (called on close too) frees it. */
    if (!(req = malloc(sizeof *req))) {
        http_client__conn_drop(cl);
        return UV_ENOMEM;
    }
    req->data = k;
    if ((r = uv_tcp_connect(req, &k->tcp, &cl->addr.sa, http_client__connect_cb)) < 0) {
        free(req);
        http_client__conn_drop(cl);
    }
    return r;
}

static void http_client__resolve_cb(void *arg, int status, const struct addrinfo *res,
                                    const char *host)
{
    struct http_client *cl = arg;
    int r;
    cl->lookup = NULL;
    if (status < 0) {
        http_client__finish(cl, status, false);
        return;
    }
    /* sin_port and sin6_port share their offset. */
    if (res->ai_addrlen > sizeof cl->addr) {
        http_client__finish(cl, UV_EAI_FAMILY, false);
        return;
    }
    memcpy(&cl->addr, res->ai_addr, res->ai_addrlen);
    cl->addr.in.sin_port = htons((uint16_t)cl->port);
    cl->have_addr = true;
    if ((r = http_client__connect(cl)) < 0)
        http_client__finish(cl, r, false);
}

/* A new connection, looking the name up first unless the address is known. */
static void http_client__open(struct http_client *cl)
{
    int r;
    if (cl->have_addr) {
        r = http_client__connect(cl);
    } else {
        cl->stage = HTTP_CLIENT_RESOLVE;
        r = lookup_start(cl->loop, cl->host, http_client__resolve_cb, cl, &cl->lookup);
    }
    if (r < 0)
        http_client__fail_soon(cl, r);
}

int http_client_start(struct http_client *cl, uint64_t timeout_ms, http_client_cb cb, void *arg)
{
    if (cl->busy)
        return -EBUSY;
    if (http_client__deadline(cl, timeout_ms) < 0)
        return -ENOMEM;
    cl->busy = cl->starting = true;
    cl->retried = false;
    cl->early = 0;
    cl->looked = false;
    cl->cb = cb;
    cl->arg = arg;
    if (!(cl->resp = http_client__resp_get())) {
        http_client__fail_soon(cl, UV_ENOMEM);
        cl->starting = false;
        return 0;
    }
    http_response_init(cl->resp, cl->body, cl->keep, cl->head_only);
    if (cl->conn && cl->reuse_ms && uvclock_now(cl->loop) - cl->conn->born_ms >= cl->reuse_ms)
        http_client__conn_drop(cl); /* aged out: this request connects anew */
    if (cl->conn)
        http_client__send(cl); /* the kept connection: one write, then one read */
    else
        http_client__open(cl);
    cl->starting = false;
    return 0;
}

void http_client_cancel(struct http_client *cl)
{
    if (!cl || !cl->busy)
        return;
    wheel_stop(&cl->deadline);
    cl->busy = false;
    http_client__resp_put(cl->resp);
    cl->resp = NULL;
    http_client__conn_drop(cl);
    http_client__lookup_drop(cl);
}

void http_client_free(struct http_client *cl)
{
    if (!cl)
        return;
    http_client_cancel(cl);
    http_client__conn_drop(cl); /* what libuv still holds of it points here no more */
    free(cl);
}

/* The request's bytes into tail; returns how many (cap is enough: the
 * caller counted every piece). */
static size_t http_client__request(char *tail, size_t cap, const struct url *u,
                                   const struct http_request *rq, const char *host)
{
    int n = snprintf(tail, cap, "%s %s%.*s HTTP/1.1\r\nHost: %s\r\nUser-Agent: recoverd\r\n%s",
                     rq->method, u->path[0] == '/' ? "" : "/", (int)u->path_len, u->path, host,
                     rq->headers ? rq->headers : "");
    if (rq->body)
        n += snprintf(tail + n, cap - (size_t)n, "Content-Length: %zu\r\n", rq->body_len);
    n += snprintf(tail + n, cap - (size_t)n, "%s\r\n",
                  rq->head_only ? "Connection: close\r\n" : "");
    if (rq->body)
        memcpy(tail + n, rq->body, rq->body_len);
    return (size_t)n + (rq->body ? rq->body_len : 0);
}

struct http_client *http_client_new(uv_loop_t *loop, const struct url *u,
                                    const struct http_request *rq)
{
    char host[300];
    url_host_header(u, host, sizeof host);
    size_t name = strlen(u->host) + 1;
    size_t cap = strlen(rq->method) + u->path_len + strlen(host) +
                 (rq->headers ? strlen(rq->headers) : 0) + (rq->body ? rq->body_len : 0) + 160;
    struct http_client *cl = calloc(1, sizeof *cl + cap + name + rq->keep), *fit;
    if (!cl)
        return NULL;
    cl->req_len = http_client__request(cl->tail, cap, u, rq, host);
    /* cap is a bound, often 100 bytes over: give back what the request did not take. */
    if ((fit = realloc(cl, sizeof *cl + cl->req_len + name + rq->keep)))
        cl = fit;
    cl->host = memcpy(cl->tail + cl->req_len, u->host, name);
    cl->body = rq->keep ? cl->tail + cl->req_len + name : NULL;
    cl->keep = rq->keep;
    cl->head_only = rq->head_only;
    cl->reuse_ms = rq->reuse_ms;
    cl->loop = loop;
    cl->numeric = cl->have_addr = u->numeric;
    cl->port = u->port;
    if (u->numeric) {
        memcpy(&cl->addr, &u->addr,
               u->addr.ss_family == AF_INET6 ? sizeof cl->addr.in6 : sizeof cl->addr.in);
        cl->addr.in.sin_port = htons((uint16_t)u->port);
    }
    return cl;
}
