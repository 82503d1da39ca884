/* One JSON POST with a deadline: a minimal HTTP/1.1 client on uv_tcp for
 * http://, the recoverd-https.so plug-in for https://. Only the status of
 * the final answer matters: the connection closes as soon as it is read. */
#include "monitor/post.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/lookup.h"
#include "lib/plugin.h"
#include "lib/url.h"

#define POST__HEAD_MAX 16384 /* bytes of status lines and interim headers accepted */
#define POST__LINE_MAX 256   /* bytes of one head line kept; the rest is only counted */

struct post;

struct post {
    uv_loop_t *loop;              /* borrowed */
    uv_timer_t timer;             /* deadline, or an early failure at 0 ms; data = this */
    uv_tcp_t tcp;                 /* http:// only, once tcp_open; data = this */
    uv_connect_t connect;         /* data = this */
    uv_write_t write;             /* data = this */
    struct lookup *lookup;        /* resolution in flight; NULL: none */
    struct https_post *tls;       /* the plug-in's transfer; NULL: none */
    post_cb done;                 /* the caller's */
    void *arg;                    /* for done */
    bool finished;                /* done ran or the post was cancelled: ignore callbacks */
    bool tcp_open;                /* tcp was initialised (so must be closed) */
    int closing;                  /* close callbacks still due; freed at 0 */
    int early;                    /* -errno for the timer to report; 0: a timeout */
    bool skip_head;               /* inside the headers of an interim 1xx answer */
    size_t head;                  /* bytes of head read */
    size_t line_len;              /* bytes in line */
    char line[POST__LINE_MAX];    /* the head line being assembled */
    struct sockaddr_storage addr; /* the server's, with port */
    bool have_addr;               /* addr is set (numeric host) */
    char host[256];               /* to resolve */
    size_t req_len;               /* bytes of req */
    char req[];                   /* request head and body */
};

static struct {
    const struct https_poster *ops; /* the plug-in's, once found (never unloaded) */
    bool logged;                    /* "need the plug-in" said once */
} post__tls;

/* Read buffer shared by all posts: each read is parsed before the callback
 * returns, and the loop has one thread. */
static char post__rbuf[4096];

static void post__close_cb(uv_handle_t *h)
{
    struct post *p = h->data;
    if (--p->closing == 0)
        free(p);
}

/* Release everything but the memory, which the close callbacks free. */
static void post__teardown(struct post *p)
{
    p->finished = true;
    lookup_cancel(p->lookup);
    p->lookup = NULL;
    if (p->tcp_open) {
        p->closing++;
        uv_close((uv_handle_t *)&p->tcp, post__close_cb);
    }
    p->closing++;
    uv_close((uv_handle_t *)&p->timer, post__close_cb);
}

/* Report once; p stays allocated until its close callbacks, after done. */
static void post__finish(struct post *p, int status)
{
    if (p->finished)
        return;
    post__teardown(p);
    p->done(status, p->arg);
}

void post_cancel(struct post *p)
{
    if (!p || p->finished)
        return;
    if (p->tls)
        post__tls.ops->cancel(p->tls);
    p->tls = NULL;
    post__teardown(p);
}

static void post__timer_cb(uv_timer_t *t)
{
    struct post *p = t->data;
    post__finish(p, p->early ? p->early : -ETIMEDOUT);
}

/* A failure found inside post_start: reported from the loop, never inline. */
static void post__fail_soon(struct post *p, int err)
{
    p->early = err;
    uv_timer_start(&p->timer, post__timer_cb, 0, 0);
}

/* ---- the answer ---- */

/* A whole head line: 1 = final status found (in *status), 0 = go on,
 * -1 = not HTTP. */
static int post__line(struct post *p, int *status)
{
    const char *l = p->line;
    if (p->skip_head) {
        p->skip_head = p->line_len != 0; /* the empty line ends the interim answer */
        return 0;
    }
    if (p->line_len < 12 || memcmp(l, "HTTP/1.", 7) != 0 || l[8] != ' ' || l[9] < '1' ||
        l[9] > '5' || l[10] < '0' || l[10] > '9' || l[11] < '0' || l[11] > '9')
        return -1;
    *status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
    if (*status >= 200)
        return 1;
    p->skip_head = true; /* 1xx: its headers, then the real answer */
    return 0;
}

/* Feed bytes; 1 = final status in *status, 0 = more needed, -1 = bad. */
static int post__feed(struct post *p, const char *d, size_t n, int *status)
{
    for (size_t i = 0; i < n; i++) {
        if (++p->head > POST__HEAD_MAX)
            return -1;
        if (d[i] != '\n') {
            if (p->line_len < sizeof p->line - 1)
                p->line[p->line_len++] = d[i];
            continue;
        }
        if (p->line_len && p->line[p->line_len - 1] == '\r')
            p->line_len--;
        p->line[p->line_len] = '\0';
        int r = post__line(p, status);
        p->line_len = 0;
        if (r)
            return r;
    }
    return 0;
}

static void post__alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    *b = uv_buf_init(post__rbuf, sizeof post__rbuf);
}

static void post__read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct post *p = s->data;
    int status = 0, r;
    if (p->finished || n == 0)
        return;
    if (n < 0) {
        post__finish(p, n == UV_EOF ? -ECONNRESET : (int)n);
        return;
    }
    if ((r = post__feed(p, b->base, (size_t)n, &status)) != 0)
        post__finish(p, r > 0 ? status : -EPROTO);
}

/* ---- the request ---- */

static void post__write_cb(uv_write_t *w, int status)
{
    struct post *p = w->data;
    if (status < 0 && !p->finished)
        post__finish(p, status);
}

static void post__connect_cb(uv_connect_t *req, int status)
{
    struct post *p = req->data;
    uv_buf_t b = uv_buf_init(p->req, (unsigned)p->req_len);
    int r;
    if (p->finished)
        return;
    if (status < 0) {
        post__finish(p, status);
        return;
    }
    if ((r = uv_read_start((uv_stream_t *)&p->tcp, post__alloc_cb, post__read_cb)) < 0 ||
        (r = uv_write(&p->write, (uv_stream_t *)&p->tcp, &b, 1, post__write_cb)) < 0)
        post__finish(p, r);
}

static int post__connect(struct post *p)
{
    int r;
    if ((r = uv_tcp_init(p->loop, &p->tcp)) < 0)
        return r;
    p->tcp_open = true;
    p->tcp.data = p->connect.data = p->write.data = p;
    /* libuv defers ECONNREFUSED to the callback; other errors come now. */
    return uv_tcp_connect(&p->connect, &p->tcp, (const struct sockaddr *)&p->addr,
                          post__connect_cb);
}

static void post__resolve_cb(void *arg, int status, const struct addrinfo *res, const char *host)
{
    struct post *p = arg;
    int r;
    p->lookup = NULL;
    if (status < 0) {
        post__finish(p, -EHOSTUNREACH);
        return;
    }
    /* Same offset for both families: sin_port and sin6_port share it. */
    in_port_t port = ((struct sockaddr_in *)&p->addr)->sin_port;
    memcpy(&p->addr, res->ai_addr, res->ai_addrlen);
    ((struct sockaddr_in *)&p->addr)->sin_port = port;
    if ((r = post__connect(p)) < 0)
        post__finish(p, r);
}

/* "POST path HTTP/1.1" with the body; NULL on OOM. */
static struct post *post__new(const struct url *u, const char *body, size_t len)
{
    char host[300];
    url_host_header(u, host, sizeof host);
    size_t cap = u->path_len + strlen(host) + len + 200;
    struct post *p = calloc(1, sizeof *p + cap);
    if (!p)
        return NULL;
    int n = snprintf(p->req, cap,
                     "POST %s%.*s HTTP/1.1\r\nHost: %s\r\nUser-Agent: recoverd\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     u->path[0] == '/' ? "" : "/", (int)u->path_len, u->path, host, len);
    memcpy(p->req + n, body, len);
    p->req_len = (size_t)n + len;
    memcpy(&p->addr, &u->addr, sizeof p->addr);
    ((struct sockaddr_in *)&p->addr)->sin_port = htons((uint16_t)u->port);
    p->have_addr = u->numeric;
    snprintf(p->host, sizeof p->host, "%s", u->host);
    return p;
}

/* The plug-in's poster, looked up on the first https post. */
static int post__tls_find(void)
{
    char err[PATH_MAX + 128];
    https_poster_entry entry;
    if (post__tls.ops)
        return 0;
    *(void **)&entry = plugin_load(HTTPS_PLUGIN, HTTPS_POSTER_ENTRY, err, sizeof err);
    if (entry && (post__tls.ops = entry()))
        return 0;
    if (entry)
        snprintf(err, sizeof err, "%s returned no ops", HTTPS_POSTER_ENTRY);
    if (!post__tls.logged)
        log_event(LOG_ERROR, NULL, "alert-webhook",
                  "error=\"https webhooks need " PLUGIN_FILE_FMT ": %s\"", HTTPS_PLUGIN, err);
    post__tls.logged = true;
    return -ENOPKG;
}

static void post__tls_done(int status, void *arg)
{
    struct post *p = arg;
    p->tls = NULL;
    post__finish(p, status);
}

struct post *post_start(uv_loop_t *loop, const char *url, const char *body, size_t len,
                        uint64_t timeout_ms, post_cb done, void *arg)
{
    static const struct url none = {.path = ""};
    struct url u;
    char why[128];
    int bad = url_parse(url, &u, why, sizeof why), r = 0;
    struct post *p = post__new(bad < 0 ? &none : &u, bad < 0 ? "" : body, bad < 0 ? 0 : len);
    if (!p)
        return NULL;
    p->loop = loop;
    p->done = done;
    p->arg = arg;
    uv_timer_init(loop, &p->timer); /* cannot fail */
    p->timer.data = p;
    if (bad < 0) {
        post__fail_soon(p, -EINVAL);
    } else if (u.tls) {
        /* curl keeps the deadline: it has the whole transfer in hand. */
        if ((r = post__tls_find()) < 0 ||
            (r = post__tls.ops->post(loop, url, body, len, timeout_ms, post__tls_done, p,
                                     &p->tls)) < 0)
            post__fail_soon(p, r);
    } else {
        uv_timer_start(&p->timer, post__timer_cb, timeout_ms, 0);
        if ((r = p->have_addr ? post__connect(p)
                             : lookup_start(p->loop, p->host, post__resolve_cb, p, &p->lookup)) < 0)
            post__fail_soon(p, r);
    }
    return p;
}
