/* HTTP checks: a small HTTP/1.1 client on the libuv loop, one kept-alive
 * connection per check; https:// checks are handed to the libcurl plug-in
 * (recoverd-https.so), loaded the first time one runs. */
/* memmem: _GNU_SOURCE comes from the build (CMakeLists.txt) */
#include "detect/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>

#include "config/config-t.h"
#include "lib/log.h"
#include "lib/lookup.h"
#include "lib/plugin.h"
#include "lib/url.h"
#include "detect/kinds.h"

#define HTTP__HEAD_MAX 16384 /* bytes of status line + headers (or of trailers) accepted */
#define HTTP__LINE_MAX 512   /* bytes of one head line kept; longer lines are only counted */

/* Where a response is in its grammar (RFC 9112). */
enum http__phase {
    HTTP__STATUS,     /* status line */
    HTTP__HEADER,     /* header lines up to the empty line */
    HTTP__BODY,       /* Content-Length bytes */
    HTTP__CHUNK_SIZE, /* chunk-size line */
    HTTP__CHUNK_DATA, /* chunk bytes */
    HTTP__CHUNK_END,  /* the CRLF after chunk bytes */
    HTTP__TRAILER,    /* trailer lines up to the empty line */
    HTTP__TO_EOF,     /* body delimited by the server closing */
    HTTP__DONE,       /* complete */
};

/* The response being read: parsed as bytes arrive, so no read ever waits
 * for "the rest of the head" and nothing but one line is buffered. */
struct http__resp {
    enum http__phase phase;  /* where the next byte belongs */
    int status;              /* HTTP status; 0 before the status line */
    bool http10;             /* HTTP/1.0: the connection closes unless keep-alive */
    bool close;              /* Connection: close */
    bool keep_alive;         /* Connection: keep-alive */
    bool chunked;            /* Transfer-Encoding ends in chunked */
    bool te_other;           /* another transfer coding: the body runs to EOF */
    bool have_len;           /* Content-Length seen (value in left) */
    uint64_t left;           /* bytes still due: of the body or of the chunk */
    size_t head;             /* bytes of head (or trailer) lines so far */
    size_t got;              /* bytes of this probe's response received */
    size_t body_len;         /* bytes kept in the check's body buffer */
    size_t line_len;         /* bytes in line */
    bool line_long;          /* the current line did not fit and was cut */
    char line[HTTP__LINE_MAX]; /* the head line being assembled, NUL-terminated when whole */
};

struct http__check;

/* One TCP connection; on the heap because it closes asynchronously while
 * the check may already open the next one. */
struct http__conn {
    uv_tcp_t tcp;          /* data = this; the struct is freed in its close callback */
    uv_connect_t connect;  /* data = this */
    uv_write_t write;      /* data = this; one request at a time */
    struct http__check *p; /* owner; NULL once dropped (callbacks then do nothing) */
    bool reused;           /* has carried a whole response: the server may have dropped it */
};

/* One per check, kept across probes (c->priv). */
struct http__check {
    struct check *c;           /* owner; NULL once released */
    uv_timer_t timer;          /* the probe's deadline; data = this; freed in its close cb */
    struct http__conn *conn;   /* idle or carrying the probe; NULL: none */
    struct lookup *lookup;     /* resolution in flight; NULL: none */
    struct url url;            /* the target; url.addr cached across probes */
    bool have_addr;            /* url.addr is usable (numeric, or resolved and not refused) */
    bool busy;                 /* a probe is in flight */
    bool retried;              /* this probe already moved off a stale connection */
    enum fault_type why_type;  /* classification of why */
    enum severity why_sev;     /* classification of why */
    char why[200];             /* a failure for the timer to report at 0 ms, or a parse error */
    struct http__resp r;       /* the response being read */
    char *body;                /* HTTP_BODY_KEEP bytes after req if matching the body; else NULL */
    size_t req_len;            /* bytes of req */
    char req[];                /* "GET ... HTTP/1.1 ..." built once; then the body buffer */
};

static struct {
    uv_loop_t *loop;                /* the daemon's loop; borrowed; NULL outside init..shutdown */
    const struct detector_ops *tls; /* the plug-in's ops while tls_up */
    bool tls_up;                    /* tls->init done since our init */
    char tls_err[PATH_MAX + 128];   /* why the plug-in did not load; not retried until shutdown */
} http__g;

/* Every read lands here and is parsed before the callback returns: one
 * buffer serves all connections (the loop has one thread). */
static char http__rbuf[65536];

static const struct cfg_field http__fields[] = {
    {"url", CFG_STRING, offsetof(struct http_params, url), 1, NULL},
    {"status", CFG_UINT, offsetof(struct http_params, expect_status), 0, NULL},
    {"body", CFG_STRING, offsetof(struct http_params, expect_body), 0, NULL},
    {"tls_verify", CFG_BOOL, offsetof(struct http_params, tls_verify), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

static void http__params_init(void *params)
{
    struct http_params *hp = params;
    memset(hp, 0, sizeof *hp);
    hp->tls_verify = true;
}

static int http__validate(const void *params, char *why, size_t len)
{
    const struct http_params *hp = params;
    struct url u;
    if (url_parse(hp->url, &u, why, len) < 0)
        return -EINVAL;
    if (hp->expect_status && (hp->expect_status < 100 || hp->expect_status > 599)) {
        snprintf(why, len, "status must be an HTTP status, 100 to 599");
        return -EINVAL;
    }
    return 0;
}

/* ---- observations ---- */

static void http__obs(struct observation *obs, enum fault_type type, enum severity sev, int code,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void http__obs(struct observation *obs, enum fault_type type, enum severity sev, int code,
                      const char *fmt, ...)
{
    va_list ap;
    memset(obs, 0, sizeof *obs);
    obs->type = type;
    obs->severity = sev;
    obs->code = code;
    va_start(ap, fmt);
    vsnprintf(obs->reason, sizeof obs->reason, fmt, ap);
    va_end(ap);
}

/* https_host.observe: the judgement of a whole answer, for both transports. */
static void http__observe(const struct http_params *hp, int status, const char *body,
                          size_t body_len, struct observation *obs)
{
    http__obs(obs, FAULT_SOFTWARE, SEVERITY_HIGH, status, "HTTP %d", status);
    if (hp->expect_status ? status != (int)hp->expect_status : status < 200 || status > 299) {
        if (hp->expect_status)
            snprintf(obs->reason, sizeof obs->reason, "HTTP %d (expected %u)", status,
                     hp->expect_status);
        return;
    }
    if (hp->expect_body && !memmem(body, body_len, hp->expect_body, strlen(hp->expect_body))) {
        snprintf(obs->reason, sizeof obs->reason, "body does not contain \"%.120s\"",
                 hp->expect_body);
        return;
    }
    obs->ok = true;
}

/* ---- the response parser ---- */

static int http__bad(struct http__check *p, const char *what)
{
    snprintf(p->why, sizeof p->why, "bad HTTP response: %s", what);
    return -1;
}

static int http__status_line(struct http__check *p)
{
    struct http__resp *r = &p->r;
    const char *l = r->line;
    if (r->line_len < 12 || memcmp(l, "HTTP/1.", 7) != 0 || (l[7] != '0' && l[7] != '1') ||
        l[8] != ' ' || l[9] < '1' || l[9] > '5' || l[10] < '0' || l[10] > '9' || l[11] < '0' ||
        l[11] > '9' || (l[12] != ' ' && l[12] != '\0'))
        return http__bad(p, "not an HTTP/1.x status line");
    r->http10 = l[7] == '0';
    r->status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
    r->phase = HTTP__HEADER;
    return 0;
}

static int http__content_length(struct http__check *p, const char *v)
{
    struct http__resp *r = &p->r;
    uint64_t n = 0;
    if (!*v)
        return http__bad(p, "bad Content-Length");
    for (; *v; v++) {
        if (*v < '0' || *v > '9' || n > (UINT64_MAX >> 5))
            return http__bad(p, "bad Content-Length");
        n = n * 10 + (uint64_t)(*v - '0');
    }
    if (r->have_len && r->left != n)
        return http__bad(p, "conflicting Content-Length");
    r->have_len = true;
    r->left = n;
    return 0;
}

/* The Connection header's tokens that matter. */
static void http__tokens(char *v, struct http__resp *r)
{
    char *save = NULL;
    for (char *t = strtok_r(v, ", \t", &save); t; t = strtok_r(NULL, ", \t", &save)) {
        if (strcasecmp(t, "close") == 0)
            r->close = true;
        else if (strcasecmp(t, "keep-alive") == 0)
            r->keep_alive = true;
    }
}

static int http__header(struct http__check *p)
{
    struct http__resp *r = &p->r;
    char *name = r->line, *v = strchr(name, ':'), *e;
    if (*name == ' ' || *name == '\t')
        return 0; /* obsolete line folding: continues a header we do not read */
    if (!v || v == name)
        return http__bad(p, "header line without a name");
    *v++ = '\0';
    v += strspn(v, " \t");
    for (e = v + strlen(v); e > v && (e[-1] == ' ' || e[-1] == '\t');)
        *--e = '\0';
    if (strcasecmp(name, "content-length") == 0) {
        return r->line_long ? http__bad(p, "bad Content-Length") : http__content_length(p, v);
    } else if (strcasecmp(name, "transfer-encoding") == 0) {
        /* Only the last coding decides how the body ends. */
        char *last = strrchr(v, ',');
        last = last ? last + 1 + strspn(last + 1, " \t") : v;
        r->chunked = !r->line_long && strcasecmp(last, "chunked") == 0;
        r->te_other = !r->chunked;
    } else if (strcasecmp(name, "connection") == 0) {
        http__tokens(v, r);
    }
    return 0;
}

/* The empty line after the headers: decide how the body ends. */
static int http__head_end(struct http__check *p)
{
    struct http__resp *r = &p->r;
    if (r->status < 200) {
        size_t got = r->got;
        if (r->status == 101)
            return http__bad(p, "101 Switching Protocols to a GET");
        /* An interim 1xx answer: the real one follows on the same stream. */
        memset(r, 0, offsetof(struct http__resp, line));
        r->got = got;
        return 0;
    }
    r->head = 0;
    if (r->status == 204 || r->status == 304)
        r->phase = HTTP__DONE;
    else if (r->chunked)
        r->phase = HTTP__CHUNK_SIZE;
    else if (r->te_other || !r->have_len)
        r->phase = HTTP__TO_EOF;
    else
        r->phase = r->left ? HTTP__BODY : HTTP__DONE;
    return 0;
}

static int http__chunk_size(struct http__check *p)
{
    struct http__resp *r = &p->r;
    const char *l = r->line;
    uint64_t n = 0;
    int digits = 0;
    for (; *l; l++, digits++) {
        int d = *l >= '0' && *l <= '9'   ? *l - '0'
                : *l >= 'a' && *l <= 'f' ? *l - 'a' + 10
                : *l >= 'A' && *l <= 'F' ? *l - 'A' + 10
                                         : -1;
        if (d < 0)
            break;
        n = n * 16 + (uint64_t)d;
    }
    if (r->line_long || digits == 0 || digits > 15 || (*l && *l != ';' && *l != ' ' && *l != '\t'))
        return http__bad(p, "bad chunk size");
    r->left = n;
    r->head = 0;
    r->phase = n ? HTTP__CHUNK_DATA : HTTP__TRAILER;
    return 0;
}

/* A whole line is in r->line. */
static int http__line(struct http__check *p)
{
    struct http__resp *r = &p->r;
    switch (r->phase) {
    case HTTP__STATUS:
        return http__status_line(p);
    case HTTP__HEADER:
        return r->line_len ? http__header(p) : http__head_end(p);
    case HTTP__CHUNK_SIZE:
        return http__chunk_size(p);
    case HTTP__CHUNK_END:
        r->phase = HTTP__CHUNK_SIZE;
        return r->line_len ? http__bad(p, "chunk not followed by CRLF") : 0;
    case HTTP__TRAILER:
        if (!r->line_len)
            r->phase = HTTP__DONE;
        return 0;
    default:
        return 0;
    }
}

/* Append up to the next LF to r->line; the bytes taken are returned and
 * *whole says the line is complete (then NUL-terminated, CR dropped). */
static size_t http__line_take(struct http__resp *r, const char *d, size_t n, bool *whole)
{
    const char *nl = memchr(d, '\n', n);
    size_t seg = nl ? (size_t)(nl - d) : n, room = sizeof r->line - 1 - r->line_len;
    size_t took = nl ? seg + 1 : n;
    if (seg > room) {
        seg = room;
        r->line_long = true;
    }
    memcpy(r->line + r->line_len, d, seg);
    r->line_len += seg;
    r->line[r->line_len] = '\0';
    *whole = nl != NULL;
    if (nl && r->line_len && r->line[r->line_len - 1] == '\r')
        r->line[--r->line_len] = '\0';
    return took;
}

static void http__body_keep(struct http__check *p, const char *d, size_t n)
{
    size_t room = HTTP_BODY_KEEP - p->r.body_len;
    if (!p->body || !room)
        return;
    memcpy(p->body + p->r.body_len, d, n < room ? n : room);
    p->r.body_len += n < room ? n : room;
}

/* Feed received bytes. 1: the response is complete after *used bytes;
 * 0: more is needed; -1: malformed (p->why says how). */
static int http__feed(struct http__check *p, const char *d, size_t n, size_t *used)
{
    struct http__resp *r = &p->r;
    size_t off = 0, t;
    bool whole;
    r->got += n;
    while (off < n && r->phase != HTTP__DONE) {
        switch (r->phase) {
        case HTTP__BODY:
        case HTTP__CHUNK_DATA:
            t = n - off < r->left ? n - off : (size_t)r->left;
            http__body_keep(p, d + off, t);
            off += t;
            if ((r->left -= t) == 0)
                r->phase = r->phase == HTTP__BODY ? HTTP__DONE : HTTP__CHUNK_END;
            break;
        case HTTP__TO_EOF:
            http__body_keep(p, d + off, n - off);
            off = n;
            break;
        default:
            t = http__line_take(r, d + off, n - off, &whole);
            off += t;
            /* Reject a non-HTTP peer at its first bytes, not at its first LF. */
            if (r->phase == HTTP__STATUS &&
                memcmp(r->line, "HTTP/1.", r->line_len < 7 ? r->line_len : 7) != 0)
                return http__bad(p, "not an HTTP/1.x status line");
            if (r->phase == HTTP__CHUNK_SIZE || r->phase == HTTP__CHUNK_END) {
                if (r->line_long)
                    return http__bad(p, "bad chunk size");
            } else if ((r->head += t) > HTTP__HEAD_MAX) {
                return http__bad(p, "headers over 16 KiB");
            }
            if (whole) {
                if (http__line(p) < 0)
                    return -1;
                r->line_len = 0;
                r->line_long = false;
            }
        }
    }
    *used = off;
    return r->phase == HTTP__DONE;
}

/* ---- probes ---- */

static void http__conn_close_cb(uv_handle_t *h)
{
    free(h->data);
}

/* Forget the connection; callbacks still pending on it find no owner. */
static void http__conn_drop(struct http__check *p)
{
    struct http__conn *k = p->conn;
    if (!k)
        return;
    p->conn = NULL;
    k->p = NULL;
    uv_close((uv_handle_t *)&k->tcp, http__conn_close_cb);
}

static void http__lookup_drop(struct http__check *p)
{
    lookup_cancel(p->lookup);
    p->lookup = NULL;
}

/* End the probe: stop its deadline, keep or close the connection, and
 * report last, because check_report may start the next probe or release
 * the check. */
static void http__done(struct http__check *p, bool keep, struct observation *obs)
{
    uv_timer_stop(&p->timer);
    p->busy = false;
    if (keep && p->conn)
        p->conn->reused = true;
    else
        http__conn_drop(p);
    http__lookup_drop(p);
    check_report(p->c, obs);
}

static void http__timer_cb(uv_timer_t *t);

/* A failure found where reporting is not allowed (inside start): the timer
 * reports it from the loop at once. */
static void http__fail_soon(struct http__check *p, enum fault_type type, enum severity sev,
                            const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void http__fail_soon(struct http__check *p, enum fault_type type, enum severity sev,
                            const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->why, sizeof p->why, fmt, ap);
    va_end(ap);
    p->why_type = type;
    p->why_sev = sev;
    http__conn_drop(p);
    http__lookup_drop(p);
    uv_timer_start(&p->timer, http__timer_cb, 0, 0);
}

static void http__timer_cb(uv_timer_t *t)
{
    struct http__check *p = t->data;
    struct observation obs;
    if (!p->busy)
        return;
    if (p->why[0])
        http__obs(&obs, p->why_type, p->why_sev, -1, "%s", p->why);
    else
        http__obs(&obs, FAULT_NETWORK, SEVERITY_MEDIUM, -1, "timeout after %llu ms",
                  (unsigned long long)p->c->cfg->timeout_ms);
    http__done(p, false, &obs);
}

/* recoverd's own shortage, not the service's fault. */
static bool http__local_error(int r)
{
    return r == UV_EMFILE || r == UV_ENFILE || r == UV_ENOMEM || r == UV_ENOBUFS;
}

static void http__fail_connect(struct http__check *p, int err)
{
    if (http__local_error(err))
        http__fail_soon(p, FAULT_RESOURCE, SEVERITY_MEDIUM, "cannot start probe: %s",
                        strerror(-err));
    else
        http__fail_soon(p, FAULT_NETWORK, SEVERITY_HIGH, "Failed to connect to %s port %u (%s)",
                        p->url.host, p->url.port, strerror(-err));
}

static void http__open(struct http__check *p);

/* The connection carrying the probe ended or broke (err: UV_EOF or an
 * error; what: "Send" or "Recv"). A kept-alive connection that dies before
 * answering was closed by the server while idle: once per probe, that is
 * not the service's failure, and a fresh connection is tried. */
static void http__conn_lost(struct http__check *p, int err, const char *what)
{
    struct observation obs;
    struct http__resp *r = &p->r;
    if (p->conn->reused && r->got == 0 && !p->retried) {
        p->retried = true;
        http__conn_drop(p);
        http__open(p);
        return;
    }
    if (err == UV_EOF && r->phase == HTTP__TO_EOF) {
        http__observe(p->c->cfg->params, r->status, p->body, r->body_len, &obs);
        http__done(p, false, &obs);
        return;
    }
    if (err == UV_EOF && r->got == 0)
        http__obs(&obs, FAULT_NETWORK, SEVERITY_HIGH, -1, "Empty reply from server");
    else if (err == UV_EOF)
        http__obs(&obs, FAULT_SOFTWARE, SEVERITY_HIGH, r->status ? r->status : -1,
                  "bad HTTP response: connection closed mid-response");
    else
        http__obs(&obs, FAULT_NETWORK, SEVERITY_HIGH, -1, "%s failure: %s", what, strerror(-err));
    http__done(p, false, &obs);
}

static void http__write_cb(uv_write_t *w, int status)
{
    struct http__conn *k = w->data;
    if (status < 0 && k->p && k->p->busy)
        http__conn_lost(k->p, status, "Send");
}

/* uv_try_write first: a request of ~100 bytes always fits the socket
 * buffer, and uv_write would, once its callback has run, take POLLOUT off
 * the watcher with an epoll_ctl on every probe. */
static void http__send(struct http__check *p)
{
    uv_buf_t b = uv_buf_init(p->req, (unsigned)p->req_len);
    int r = uv_try_write((uv_stream_t *)&p->conn->tcp, &b, 1);
    if (r == (int)p->req_len)
        return;
    if (r >= 0 || r == UV_EAGAIN) {
        b = uv_buf_init(p->req + (r > 0 ? r : 0), (unsigned)(p->req_len - (r > 0 ? r : 0)));
        r = uv_write(&p->conn->write, (uv_stream_t *)&p->conn->tcp, &b, 1, http__write_cb);
    }
    if (r < 0)
        http__conn_lost(p, r, "Send");
}

static void http__alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    *b = uv_buf_init(http__rbuf, sizeof http__rbuf);
}

static void http__read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct http__conn *k = s->data;
    struct http__check *p = k->p;
    struct observation obs;
    size_t used = 0;
    int r;
    if (!p || n == 0)
        return;
    if (!p->busy) {
        /* Idle: the server closed its side (keep-alive timeout) or spoke
         * unasked. Either way the next probe starts on a new connection. */
        http__conn_drop(p);
        return;
    }
    if (n < 0) {
        http__conn_lost(p, (int)n, "Recv");
        return;
    }
    r = http__feed(p, b->base, (size_t)n, &used);
    if (r == 0)
        return;
    if (r < 0) {
        http__obs(&obs, FAULT_SOFTWARE, SEVERITY_HIGH, p->r.status ? p->r.status : -1, "%s",
                  p->why);
        http__done(p, false, &obs);
        return;
    }
    struct http__resp *rs = &p->r;
    bool keep = !rs->close && (!rs->http10 || rs->keep_alive) && used == (size_t)n;
    http__observe(p->c->cfg->params, rs->status, p->body, rs->body_len, &obs);
    http__done(p, keep, &obs);
}

static void http__connect_cb(uv_connect_t *req, int status)
{
    struct http__conn *k = req->data;
    struct http__check *p = k->p;
    struct observation obs;
    if (!p)
        return; /* dropped: cancelled, released or timed out */
    if (status < 0) {
        if (!p->url.numeric)
            p->have_addr = false; /* the name may point elsewhere now */
        http__obs(&obs, FAULT_NETWORK, SEVERITY_HIGH, -1, "Failed to connect to %s port %u (%s)",
                  p->url.host, p->url.port, strerror(-status));
        http__done(p, false, &obs);
        return;
    }
    /* Reading stays on for the connection's life, idle too: a server's
     * close is seen at once and no probe pays an epoll_ctl. */
    uv_read_start((uv_stream_t *)&k->tcp, http__alloc_cb, http__read_cb);
    http__send(p);
}

static int http__connect(struct http__check *p)
{
    struct http__conn *k = calloc(1, sizeof *k);
    int r;
    if (!k)
        return UV_ENOMEM;
    if ((r = uv_tcp_init(http__g.loop, &k->tcp)) < 0) {
        free(k); /* never initialised: no close needed */
        return r;
    }
    k->tcp.data = k->connect.data = k->write.data = k;
    k->p = p;
    p->conn = k;
    /* libuv defers ECONNREFUSED to the callback; other errors come now. */
    r = uv_tcp_connect(&k->connect, &k->tcp, (const struct sockaddr *)&p->url.addr,
                       http__connect_cb);
    if (r < 0)
        http__conn_drop(p);
    return r;
}

static void http__resolve_cb(void *arg, int status, const struct addrinfo *res, const char *host)
{
    struct http__check *p = arg;
    struct observation obs;
    int r;
    p->lookup = NULL;
    if (status < 0) {
        http__obs(&obs, FAULT_NETWORK, SEVERITY_HIGH, -1, "Could not resolve host: %s (%s)", host,
                  uv_strerror(status));
        http__done(p, false, &obs);
        return;
    }
    memcpy(&p->url.addr, res->ai_addr, res->ai_addrlen);
    ((struct sockaddr_in *)&p->url.addr)->sin_port = htons((uint16_t)p->url.port);
    p->have_addr = true;
    if ((r = http__connect(p)) < 0)
        http__fail_connect(p, r);
}

/* A new connection: resolve first unless the address is known. Failures
 * are reported by the timer, so this may run inside start. */
static void http__open(struct http__check *p)
{
    int r = p->have_addr ? http__connect(p)
                         : lookup_start(http__g.loop, p->url.host, http__resolve_cb, p, &p->lookup);
    if (r < 0)
        http__fail_connect(p, r);
}

static void http__check_close_cb(uv_handle_t *h)
{
    free(h->data);
}

/* Parse the url and build the request, once per check. */
static int http__check_new(struct check *c)
{
    const struct http_params *hp = c->cfg->params;
    struct url u;
    struct http__check *p;
    char why[128], host[300];
    if (url_parse(hp->url, &u, why, sizeof why) < 0)
        return -EINVAL;
    url_host_header(&u, host, sizeof host);
    size_t cap = u.path_len + strlen(host) + 80, keep = hp->expect_body ? HTTP_BODY_KEEP : 0;
    if (!(p = calloc(1, sizeof *p + cap + keep)))
        return -ENOMEM;
    p->req_len = (size_t)snprintf(p->req, cap,
                                  "GET %s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: recoverd\r\n"
                                  "Accept: */*\r\n\r\n",
                                  u.path[0] == '/' ? "" : "/", u.path, host);
    p->body = keep ? p->req + cap : NULL;
    p->url = u;
    p->url.path = NULL; /* points into the config: not needed past here */
    p->have_addr = u.numeric;
    uv_timer_init(http__g.loop, &p->timer); /* cannot fail */
    p->timer.data = p;
    p->c = c;
    c->priv = p;
    return 0;
}

static void http__begin(struct http__check *p)
{
    p->busy = true;
    p->retried = false;
    p->why[0] = '\0';
    memset(&p->r, 0, offsetof(struct http__resp, line));
    uv_timer_start(&p->timer, http__timer_cb, p->c->cfg->timeout_ms, 0);
}

static void http__cancel_own(struct http__check *p)
{
    if (!p || !p->busy)
        return;
    uv_timer_stop(&p->timer);
    p->busy = false;
    /* The request is out: its answer would be taken for the next probe's. */
    http__conn_drop(p);
    http__lookup_drop(p);
}

/* ---- https: the plug-in ---- */

static bool http__is_tls(const struct check *c)
{
    const struct http_params *hp = c->cfg ? c->cfg->params : NULL;
    return hp && hp->url && strncasecmp(hp->url, "https:", 6) == 0;
}

static const struct https_host http__https_host = {
    .detector = &detector_host,
    .observe = http__observe,
};

/* Load the plug-in (lib/plugin.c keeps it) and start it, once per init.
 * Its libcurl, OpenSSL and their 30 libraries cost about 6 MB of RSS:
 * only paid once a check needs TLS. */
static int http__tls_up(void)
{
    https_detector_entry entry;
    int r;
    if (http__g.tls_up)
        return 0;
    if (http__g.tls_err[0])
        return -ENOENT; /* failed since init: say so without searching again */
    *(void **)&entry = plugin_load(HTTPS_PLUGIN, HTTPS_DETECTOR_ENTRY, http__g.tls_err,
                                   sizeof http__g.tls_err);
    if (!entry)
        goto fail;
    if (!(http__g.tls = entry(&http__https_host))) {
        snprintf(http__g.tls_err, sizeof http__g.tls_err, "%s returned no ops",
                 HTTPS_DETECTOR_ENTRY);
        goto fail;
    }
    if ((r = http__g.tls->init(http__g.loop)) < 0) {
        snprintf(http__g.tls_err, sizeof http__g.tls_err, "cannot initialise libcurl: %s",
                 strerror(-r));
        goto fail;
    }
    http__g.tls_up = true;
    return 0;
fail:
    log_event(LOG_ERROR, NULL, "https_plugin", "error=\"%s\"", http__g.tls_err);
    return -ENOENT;
}

/* Without the plug-in an https check still runs, and fails with words. */
static int http__tls_start(struct check *c)
{
    struct http__check *p = c->priv;
    int r;
    if (http__tls_up() == 0)
        return http__g.tls->start(c);
    if (!p && (r = http__check_new(c)) < 0)
        return r;
    p = c->priv;
    if (p->busy)
        return -EBUSY;
    http__begin(p);
    http__fail_soon(p, FAULT_CONFIGURATION, SEVERITY_HIGH,
                    "https checks need " PLUGIN_FILE_FMT ": %s", HTTPS_PLUGIN, http__g.tls_err);
    return 0;
}

/* ---- the ops ---- */

static int http__start(struct check *c)
{
    struct http__check *p = c->priv;
    int r;
    if (!http__g.loop)
        return -EINVAL;
    if (http__is_tls(c))
        return http__tls_start(c);
    if (!p && (r = http__check_new(c)) < 0)
        return r;
    p = c->priv;
    if (p->busy)
        return -EBUSY;
    http__begin(p);
    if (p->conn)
        http__send(p); /* the kept-alive connection: one write, then one read */
    else
        http__open(p);
    return 0;
}

static void http__cancel(struct check *c)
{
    if (http__g.tls_up && http__is_tls(c))
        http__g.tls->cancel(c);
    else
        http__cancel_own(c->priv);
}

static void http__release(struct check *c)
{
    struct http__check *p = c->priv;
    if (http__g.tls_up && http__is_tls(c)) {
        http__g.tls->release(c);
        return;
    }
    if (!p)
        return;
    http__cancel_own(p);
    http__conn_drop(p);
    c->priv = NULL;
    p->c = NULL;
    uv_close((uv_handle_t *)&p->timer, http__check_close_cb);
}

/* Each check holds a socket (its kept-alive connection), so the soft fd
 * limit of 1024 would be a ceiling on the number of checks. */
static void http__raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
        return;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        log_event(LOG_WARN, NULL, "rlimit_nofile", "error=\"%s\"", strerror(errno));
}

/* Needs SIGPIPE ignored (daemon/daemon.c does): a write to a server that
 * has gone is an error to handle, not a signal. */
static int http__init(uv_loop_t *loop)
{
    if (http__g.loop)
        return -EALREADY;
    http__raise_nofile();
    http__g.loop = loop;
    return 0;
}

static void http__shutdown(void)
{
    if (http__g.tls_up)
        http__g.tls->shutdown();
    http__g.tls_up = false;
    http__g.tls = NULL;
    http__g.tls_err[0] = '\0';
    http__g.loop = NULL;
}

const struct detector_ops http_detector = {
    .name = "http",
    .fields = http__fields,
    .params_size = sizeof(struct http_params),
    .params_init = http__params_init,
    .validate = http__validate,
    .init = http__init,
    .shutdown = http__shutdown,
    .start = http__start,
    .cancel = http__cancel,
    .release = http__release,
};
