/* The API's HTTP/1.1 server on libuv: keep-alive, pipelined requests
 * answered in order, bounded input and output per connection, a deadline
 * per request. Two doors, each with its own connections and cap, so the
 * clients of one never crowd out the other: TCP (the Host header checked,
 * the token for mutating calls) and the operators' Unix socket (the
 * peer's credentials decide). Plain HTTP only: the API listens on
 * loopback, and a TLS library loaded for nothing cost 2.4 MB of RSS
 * (libmicrohttpd pulled in GnuTLS). */
#include "api/api.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "api/request.h"
#include "api/routes.h"
#include "config/config-t.h"
#include "lib/hostnames.h"
#include "lib/log.h"
#include "lib/uvclock.h"

#define API__TCP_MAX 256     /* TCP connections served at once */
#define API__LOCAL_MAX 64    /* Unix-socket connections served at once */
#define API__IDLE_MS 10000   /* ms a kept-alive connection may wait for its next request */
#define API__REQUEST_MS 5000 /* ms a request may take to arrive whole, from its first byte */
#define API__LINGER_MS 2000  /* ms a finished connection waits for the client's FIN */
#define API__BACKLOG 1024    /* listen(2) queue: a burst of connects waits, not SYN retries */
#define API__ACCEPT_BATCH 64 /* accepts per wake-up: a connect flood leaves room for requests */
#define API__PAUSE_MS 100    /* ms the doors rest when accept fails for want of resources */
#define API__READ_CHUNK 4096 /* bytes of room the read buffer grows by */
#define API__BUF_MAX (REQUEST_HEAD_MAX + REQUEST_BODY_MAX + API__READ_CHUNK) /* bytes */
#define API__OUT_MAX (64 * 1024) /* bytes of answers in flight past which reading pauses */
/* Bytes of answers queued for writing at a door past which its next
 * requests wait: 4 MiB holds nine GET /v1/services at 1,000 services
 * (441 KB) or a full journal page at once, and bounds what 256 clients that
 * never read hold to about 4 MiB plus one answer, against 150 MB unbounded. */
#define API__DOOR_OUT_MAX (4 * 1024 * 1024)
/* Bytes a journal read on the reader counts at its door until its answer,
 * whose size nobody knows before: a row's worth per row asked (a page of
 * 10,000 rows is some 5 MB), at least a small page's. */
#define API__READ_ROW 512
#define API__READ_MIN (64 * 1024)
#define API__STALL_MS 1000   /* ms without a byte of output taken: a stalled reader */
#define API__REPLY_HEAD 1024 /* bytes for a status line and headers */
/* A listing (GET /v1/services) is written API__SLICE_ROWS rows at a time,
 * slices of every listing in progress taking turns, for at most
 * API__TURN_US of a loop turn (one slice at least): at 1,000 services
 * (about 1.5 ms of work when warm) a listing at rest is done in the turn
 * its request came in, and one on a busy loop never holds it longer. */
#define API__SLICE_ROWS 64
#define API__TURN_US 1500
/* ms the buffer of the last listing is kept for the next one: a listing
 * polled every second or so writes into pages already mapped (a fresh
 * 441 KB buffer cost 110 page faults and cold caches each time, 5-10 x a
 * warm listing), while a daemon nobody polls gives it back. */
#define API__SPARE_MS 5000
/* Bytes a kept buffer may hold at most (its allocation): a listing of up
 * to about 300 services. At 1,000 the kept 441 KB took recoverd's RSS to
 * 9.96-10.16 MiB and its cost per service to 6.0 KiB (bench/scale; the
 * targets are 10 MiB and under 6 KiB), so a listing that large page-faults
 * afresh each time instead. */
#define API__SPARE_MAX (256 * 1024)
#define API__WHY_MAX 512 /* bytes of a refusal's reason */

/* A way in: its listening socket, which we accept from ourselves (not
 * uv_listen) so that EMFILE can be answered from our reserve, and the
 * connections that came through it. */
struct door {
    struct api *api;    /* owner */
    uv_poll_t poll;     /* readiness of fd; poll.data: this door */
    int fd;             /* listening socket; -1: this door is not open */
    bool local;         /* the Unix socket: peers are known by their credentials */
    bool polling;       /* uv_poll_start in force */
    struct conn *conns; /* open connections (closing ones until their close callback) */
    unsigned n_conns;   /* entries in conns */
    unsigned n_live;    /* of them, not closing: what max counts */
    unsigned max;       /* connections at once */
    size_t out;         /* bytes of answers queued on live connections, reads' reserve included */
    size_t out_max;     /* past out, requests wait (API__DOOR_OUT_MAX unless a test says) */
    unsigned n_waiting; /* connections whose next request waits for out to fall */
    char *name;         /* "127.0.0.1:7411" or the socket's path, for messages; owned */
    struct stat made;   /* the socket file we made (local), to remove only that one */
};

struct api {
    uv_loop_t *loop;             /* borrowed */
    const struct api_backend *b; /* borrowed: the state the routes answer from */
    struct door tcp;             /* api.listen */
    struct door local;           /* state_dir/api.sock */
    uv_timer_t sweep;            /* repeats while connections exist: deadlines and limits */
    uv_timer_t pause;            /* ends a rest of the doors after accept ran out of resources */
    uv_check_t slicer;           /* after each poll: the slices of the listings in progress */
    uv_idle_t spin;              /* active with slicer: the poll does not block meanwhile */
    uv_timer_t spare_timer;      /* frees spare once unused for API__SPARE_MS */
    unsigned n_listing;          /* connections whose listing is in progress */
    size_t slice_rows;           /* rows a slice writes (API__SLICE_ROWS unless a test says) */
    uint64_t turn_ns;            /* listing work per loop turn, ns (0: one slice) */
    uint64_t turn_used_ns;       /* of it, spent in this turn's poll phase */
    char *spare;                 /* the last listing's buffer, lent to the next; owned */
    size_t spare_cap;            /* bytes allocated at spare */
    unsigned n_conns;            /* connections of both doors */
    struct api_out_stats stats;  /* answer bytes in flight, both doors */
    uint64_t wait_seq;           /* order of the waits: the oldest goes on first */
    unsigned handles;            /* our handles not yet through their close callback */
    bool freed;                  /* api_free was called: the last close callback frees */
    bool short_of_fds;           /* EMFILE seen and not yet followed by a normal accept */
    int reserve;                 /* an fd given up to accept one client when none is left;
                                  * -1: spent and not yet taken back */
    char **hostnames;            /* the Host allow-list, NULL-terminated; owned */
    unsigned port;               /* the TCP port bound */
    uid_t self;                  /* our own euid: a peer with it may act */
    gid_t group;                 /* the acting group's gid (API_GROUP unless a test says) */
    bool have_group;             /* that group exists */
    uint64_t idle_ms;            /* ms, API__IDLE_MS unless a test sets it */
    uint64_t request_ms;         /* ms, API__REQUEST_MS unless a test sets it */
    uint64_t stall_ms;           /* ms, API__STALL_MS unless a test sets it */
    char scratch[4096]; /* where bytes after a connection's last request are read, unused */
};

/* One client connection. Requests are parsed from buf and answered in
 * arrival order: uv_write queues in call order, so pipelining needs nothing
 * more. Input stops while more than API__OUT_MAX bytes of answers are in
 * flight, so a client that never reads costs at most that. */
struct conn {
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } io;                     /* io.handle.data: this conn; tcp or pipe as door->local says */
    struct door *door;        /* the way it came in */
    struct api *api;          /* owner */
    struct conn *prev, *next; /* in door->conns */
    char *buf;                /* received, not yet answered; NULL when empty */
    size_t len;               /* bytes in buf */
    size_t cap;               /* bytes allocated at buf */
    size_t need;              /* bytes of the request at buf once its head is in; 0: unknown */
    size_t out;               /* bytes of answers written, not yet through their callback */
    uint64_t active_ms;       /* uv_now, ms: last request byte read or answer written */
    uint64_t request_ms;      /* uv_now, ms: the request being read began (its first byte; the
                               * accept for the first request): its deadline runs from here */
    unsigned served;          /* requests answered */
    long uid;                 /* a local peer's uid; -1 over TCP */
    bool may_act;             /* a local peer that may act without the token */
    bool reading;             /* uv_read_start in force */
    bool continued;           /* "100 Continue" sent for the request at buf */
    bool eof;                 /* the client sent its FIN */
    bool finishing;           /* last answer queued: no more requests, then FIN and close */
    bool shut;                /* our FIN is sent or on its way */
    struct route_read *read;  /* a journal read on the reader: the requests after it wait */
    bool read_head;           /* that read answers a HEAD */
    bool read_last;           /* that read answers the connection's last request */
    size_t read_reserve;      /* bytes that read counts at the door until its answer */
    bool waiting;             /* its next request waits for room in the door's budget */
    uint64_t wait_seq;        /* when it began to wait, in api->wait_seq's order */
    uint64_t progress_ms;     /* uv_now, ms: output began or the client last took some */
    size_t queue_seen;        /* conn__pending when last looked at */
    struct route_list *list;  /* a listing being written: the requests after it wait; owned */
    bool list_head;           /* that listing answers a HEAD */
    bool list_last;           /* that listing answers the connection's last request */
    size_t list_counted;      /* bytes that listing counts at the door until its answer */
    uint64_t list_ns;         /* uv_hrtime when its request was answered */
    uint64_t list_cpu_ns;     /* the loop thread's CPU time its slices took, ns */
};

struct reply {
    uv_write_t req;             /* req.data: the conn */
    size_t len;                 /* bytes counted in conn->out */
    char *body;                 /* JSON text, freed with the reply; NULL: none */
    size_t spare_cap;           /* bytes allocated at body when it may become api->spare; 0 */
    char head[API__REPLY_HEAD]; /* status line and headers */
};

static void conn__process(struct conn *c);
static void door__resume(struct door *d);

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

/* One of our handles went through its close callback: the last one after
 * api_free releases the rest. */
static void api__handle_closed(struct api *a)
{
    if (--a->handles > 0 || !a->freed)
        return;
    for (char **n = a->hostnames; n && *n; n++)
        free(*n);
    free(a->hostnames);
    free(a->tcp.name);
    free(a->local.name);
    free(a->spare);
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
        {421, "Misdirected Request"},
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

/* ---- the budget of answers in flight --------------------------------------------------- */

static void door__out_add(struct door *d, size_t n)
{
    struct api_out_stats *st = &d->api->stats;
    d->out += n;
    st->queued += n;
    st->peak = st->queued > st->peak ? st->queued : st->peak;
}

static void door__out_sub(struct door *d, size_t n)
{
    d->out -= n;
    d->api->stats.queued -= n;
}

/* Room for one more answer: it may end past out_max, by its own size. */
static bool door__room(const struct door *d)
{
    return d->out < d->out_max;
}

/* ---- one connection --------------------------------------------------------------------- */

/* Bytes of answers the client has not taken: those still in our write
 * queue and those in the kernel's send queue. The kernel's part matters:
 * it takes megabytes before our queue moves, and a client reading those
 * is making progress. */
static size_t conn__pending(struct conn *c)
{
    int fd = -1, q = 0;
    size_t n = uv_stream_get_write_queue_size(&c->io.stream);
    if (uv_fileno(&c->io.handle, &fd) == 0 && ioctl(fd, TIOCOUTQ, &q) == 0 && q > 0)
        n += (size_t)q;
    return n;
}

/* Has the client taken bytes since we last looked? Then it progresses now. */
static void conn__look(struct conn *c, uint64_t now)
{
    size_t pending = conn__pending(c);
    if (pending < c->queue_seen)
        c->progress_ms = now;
    c->queue_seen = pending;
}

static void conn__close_cb(uv_handle_t *h)
{
    struct conn *c = h->data;
    struct api *a = c->api;
    struct door *d = c->door;
    *(c->prev ? &c->prev->next : &d->conns) = c->next;
    if (c->next)
        c->next->prev = c->prev;
    d->n_conns--;
    if (--a->n_conns == 0 && !a->freed)
        uv_timer_stop(&a->sweep);
    if (c->read)
        c->read->ctx = NULL; /* its answer, when it comes, has nowhere to go */
    routes_list_free(c->list);
    free(c->buf);
    free(c);
    if (!a->freed)
        door__resume(d); /* its answers' bytes are free: who waited for them goes on */
    api__handle_closed(a);
}

static bool conn__closing(const struct conn *c)
{
    return uv_is_closing(&c->io.handle) != 0;
}

/* Close now, answers still queued included (their callbacks run first). */
static void conn__close(struct conn *c)
{
    if (conn__closing(c))
        return;
    c->door->n_live--;
    /* What it holds is freed by the close callbacks of this same turn, and
     * no longer counts against the door from now. */
    door__out_sub(c->door,
                  c->out + (c->read ? c->read_reserve : 0) + (c->list ? c->list_counted : 0));
    if (c->list)
        c->api->n_listing--; /* the slicer skips it; its close callback frees it */
    if (c->waiting)
        c->door->n_waiting--;
    c->waiting = false;
    uv_close(&c->io.handle, conn__close_cb);
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
    int r = req ? uv_shutdown(req, &c->io.stream, conn__shutdown_cb) : -ENOMEM;
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
    if (conn__closing(c))
        return;
    if ((c->eof || c->finishing) && c->out == 0 && !c->read && !c->list) {
        if (c->eof || (!c->shut && conn__shutdown(c) < 0)) {
            conn__close(c);
            return;
        }
    }
    /* Not while a journal read or a listing is out: what follows it waits
     * in the kernel's buffer, not in ours. */
    conn__reading(c, !c->eof && !c->read && !c->list && !c->waiting &&
                         (c->finishing || c->out <= API__OUT_MAX));
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
    c->active_ms = uv_now(c->api->loop);
    if (c->len == 0 && c->served) /* the first byte of a kept-alive connection's next request */
        c->request_ms = c->active_ms;
    c->len += (size_t)n;
    conn__process(c);
}

static void conn__reading(struct conn *c, bool on)
{
    if (on == c->reading)
        return;
    if (on && uv_read_start(&c->io.stream, conn__alloc_cb, conn__read_cb) < 0) {
        conn__close(c);
        return;
    }
    if (!on)
        uv_read_stop(&c->io.stream);
    c->reading = on;
}

static void api__spare_cb(uv_timer_t *t)
{
    struct api *a = t->data;
    free(a->spare);
    a->spare = NULL;
}

/* A listing's buffer (cap bytes) is done with: kept for the next listing
 * when none is kept yet and it is no larger than API__SPARE_MAX, freed
 * otherwise. */
static void api__spare_keep(struct api *a, char *buf, size_t cap)
{
    if (a->spare || !cap || cap > API__SPARE_MAX || a->freed) {
        free(buf);
        return;
    }
    a->spare = buf;
    a->spare_cap = cap;
    uv_timer_start(&a->spare_timer, api__spare_cb, API__SPARE_MS, 0);
}

static void reply__write_cb(uv_write_t *req, int status)
{
    struct reply *rp = (struct reply *)req;
    struct conn *c = req->data;
    c->out -= rp->len;
    if (!conn__closing(c)) /* a closing one gave its share back at conn__close */
        door__out_sub(c->door, rp->len);
    if (rp->spare_cap)
        api__spare_keep(c->api, rp->body, rp->spare_cap);
    else
        free(rp->body);
    free(rp);
    if (status < 0) {
        conn__close(c); /* also UV_ECANCELED from a close: c lives until close_cb */
        return;
    }
    c->active_ms = c->progress_ms = uv_now(c->api->loop);
    c->queue_seen = conn__pending(c);
    conn__process(c); /* requests paused by the output bound go on */
    door__resume(c->door);
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
    if (c->out > 0)
        conn__look(c, uv_now(c->api->loop)); /* what it took before this answer adds up */
    if (uv_write(&rp->req, &c->io.stream, bufs, body ? 2 : 1, reply__write_cb) < 0) {
        free(body);
        free(rp);
        conn__close(c);
        return;
    }
    if (c->out == 0)
        c->progress_ms = uv_now(c->api->loop);
    c->out += rp->len;
    c->queue_seen = conn__pending(c);
    door__out_add(c->door, rp->len);
}

/* Answer status with text (JSON and a newline, owned from here on; NULL:
 * out of memory), head_only for HEAD; allow and link: the Allow and Link
 * headers' values, when not empty; spare_cap: the bytes allocated at text
 * when it may be kept for the next listing (api__spare_keep), else 0. */
static void conn__send(struct conn *c, unsigned status, const char *allow, const char *link,
                       char *text, size_t len, bool head_only, size_t spare_cap)
{
    struct reply *rp = malloc(sizeof *rp);
    if (!rp || !text) {
        free(rp);
        free(text);
        conn__close(c);
        return;
    }
    int n = snprintf(rp->head, sizeof rp->head,
                     "HTTP/1.1 %u %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nCache-Control: no-store\r\nDate: %s\r\n"
                     "Connection: %s\r\n%s%s%s%s%s%s\r\n",
                     status, api__reason(status), len, api__date(),
                     c->finishing ? "close" : "keep-alive", *allow ? "Allow: " : "", allow,
                     *allow ? "\r\n" : "", *link ? "Link: " : "", link, *link ? "\r\n" : "");
    if (head_only) {
        if (spare_cap)
            api__spare_keep(c->api, text, spare_cap);
        else
            free(text);
        text = NULL;
    }
    rp->spare_cap = spare_cap;
    conn__write(c, rp, (size_t)n < sizeof rp->head ? (size_t)n : sizeof rp->head - 1, text,
                text ? len : 0);
}

/* Answer status with body (JSON, borrowed). */
static void conn__reply(struct conn *c, unsigned status, const char *allow, const char *link,
                        json_t *body, bool head_only)
{
    size_t len = 0;
    char *text = routes_json_text(body, &status, &len);
    conn__send(c, status, allow, link, text, len, head_only, 0);
}

/* A request refused by the server itself: {"error": why}, then close, as
 * the bytes after it cannot be trusted to start a request. */
static void conn__refuse(struct conn *c, unsigned status, const char *why)
{
    json_t *body = json_pack("{s:s}", "error", why);
    c->finishing = true;
    conn__reply(c, status, "", "", body, false);
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
    rp->spare_cap = 0;
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

/* Over TCP the Host header must name this API (hostnames.h says why);
 * otherwise the request is refused and false returned. A local peer is no
 * web page, and curl names no host on a Unix socket. */
static bool conn__host_checked(struct conn *c, const struct request *rq)
{
    struct api *a = c->api;
    char host[128], names[256] = "", why[API__WHY_MAX];
    if (c->door->local ||
        (rq->host && hostnames_allow(a->hostnames, a->port, rq->host, rq->host_len)))
        return true;
    if (!rq->host) {
        conn__refuse(c, 400, "missing Host header");
        return false;
    }
    size_t n = rq->host_len < sizeof host - 1 ? rq->host_len : sizeof host - 1;
    memcpy(host, rq->host, n);
    host[n] = '\0';
    conn__log_path(host, host, sizeof host);
    for (char **p = a->hostnames; *p; p++)
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s",
                 p == a->hostnames ? "" : ", ", *p);
    snprintf(why, sizeof why,
             "Host '%s' is not a name of this API (allowed: %s; add it to api.hostnames)", host,
             names);
    conn__refuse(c, 421, why);
    return false;
}

/* The reader ran a connection's journal read (or closed first: ran
 * false): its answer goes out, and the requests behind it go on. */
static void conn__read_answered(struct route_read *rd, bool ran)
{
    struct conn *c = rd->ctx;
    if (!c) {
        routes_read_free(rd); /* the connection went meanwhile */
        return;
    }
    c->read = NULL;
    if (!conn__closing(c)) {
        door__out_sub(c->door, c->read_reserve); /* the answer counts its real size */
        c->finishing = c->read_last;
        if (ran) {
            conn__send(c, rd->status, "", rd->link, rd->text, rd->len, c->read_head, 0);
            rd->text = NULL;
        } else {
            json_t *body = json_pack("{s:s}", "error", "recoverd is stopping");
            c->finishing = true;
            conn__reply(c, 503, "", "", body, c->read_head);
            json_decref(body);
        }
    }
    routes_read_free(rd);
    c->active_ms = uv_now(c->api->loop);
    conn__process(c);
    door__resume(c->door); /* the answer may be smaller than its reserve */
}

/* Hand rd to the reader; the connection waits for it. When too many reads
 * wait already, 503 at once: memory stays bounded whatever the clients ask. */
static void conn__read_start(struct conn *c, struct route_read *rd, const struct request *rq)
{
    int r = routes_read_start(c->api->b, rd, conn__read_answered, c);
    bool head = strcmp(rq->route.method, "HEAD") == 0;
    if (r < 0) {
        char why[API__WHY_MAX];
        routes_read_free(rd);
        if (r == -EAGAIN)
            snprintf(why, sizeof why, "too many journal reads wait (%u); retry in a moment",
                     reader_waiting(c->api->b->reader));
        else
            snprintf(why, sizeof why, "recoverd is stopping");
        json_t *body = json_pack("{s:s}", "error", why);
        c->finishing = !rq->keep_alive;
        conn__reply(c, 503, "", "", body, head);
        json_decref(body);
        return;
    }
    c->read = rd;
    c->read_reserve = rd->q.limit * API__READ_ROW;
    c->read_reserve = c->read_reserve > API__READ_MIN ? c->read_reserve : API__READ_MIN;
    door__out_add(c->door, c->read_reserve);
    c->read_head = head;
    c->read_last = !rq->keep_alive;
    c->request_ms = uv_now(c->api->loop); /* its deadline: a reader stuck on a disk */
}

/* The loop thread's CPU time, for the debug log of a request. */
static uint64_t conn__cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- listings in slices ---------------------------------------------------------------- */

static void api__spin_cb(uv_idle_t *h)
{
    (void)h; /* its being active is what counts: the poll does not block */
}

static void api__slice_cb(uv_check_t *h);

/* What c's listing counts at its door: a row's worth per row, or the
 * text so far once longer, until the answer's real size is known. Its
 * first slice is written when the request is answered, so that a request
 * after it on the door sees a big listing's size. */
static void conn__list_count(struct conn *c)
{
    size_t want = (c->list->count ? c->list->count : 1) * API__READ_ROW;
    want = c->list->w.len > want ? c->list->w.len : want;
    if (want > c->list_counted) {
        door__out_add(c->door, want - c->list_counted);
        c->list_counted = want;
    }
}

static bool conn__list_step(struct conn *c);

/* c answers a listing: a slice now, the rest by the slicer after each
 * poll; the requests after it wait. It writes into the spare buffer when
 * there is one. */
static void conn__list_start(struct conn *c, struct route_list *l, const struct request *rq)
{
    struct api *a = c->api;
    if (a->spare) {
        l->w.buf = a->spare;
        l->w.cap = a->spare_cap;
        a->spare = NULL;
        uv_timer_stop(&a->spare_timer);
    }
    c->list = l;
    c->list_head = strcmp(rq->route.method, "HEAD") == 0;
    c->list_last = !rq->keep_alive;
    c->list_counted = 0;
    c->list_ns = uv_hrtime();
    c->list_cpu_ns = 0;
    conn__list_count(c);
    if (a->n_listing++ == 0) {
        uv_check_start(&a->slicer, api__slice_cb);
        uv_idle_start(&a->spin, api__spin_cb);
    }
    /* Whatever the turn's time: a request after it on the door must see
     * its first slice counted (a listing's count is at least a row's
     * worth per row, so at most a few slices run here in one turn). */
    conn__list_step(c); /* done: the caller's conn__process goes on after it */
}

/* c's listing is whole: its answer goes out (the caller lets the requests
 * after it go on). */
static void conn__list_done(struct conn *c)
{
    struct api *a = c->api;
    struct route_list *l = c->list;
    size_t len = 0;
    c->list = NULL;
    a->n_listing--;
    door__out_sub(c->door, c->list_counted);
    c->finishing = c->list_last;
    jsonw_reserve(&l->w, 1); /* finish's newline: no realloc after cap is read */
    size_t cap = l->w.cap;
    char *text = jsonw_finish(&l->w, &len);
    if (text) {
        conn__send(c, 200, "", l->link, text, len, c->list_head, cap);
    } else {
        json_t *body = json_pack("{s:s}", "error", "services view failed: out of memory");
        conn__reply(c, 500, "", "", body, c->list_head);
        json_decref(body);
    }
    if (log_enabled(LOG_DEBUG))
        log_event(LOG_DEBUG, NULL, "api-request",
                  "method=%s path=/v1/services status=%u rows=%zu ms=%.3f cpu_ms=%.3f",
                  c->list_head ? "HEAD" : "GET", text ? 200u : 500u, l->rows,
                  (double)(uv_hrtime() - c->list_ns) / 1e6, (double)c->list_cpu_ns / 1e6);
    routes_list_free(l);
    c->active_ms = uv_now(a->loop);
}

/* One slice of c's listing, its time counted in the turn's. True: it was
 * the last, the answer is on its way. */
static bool conn__list_step(struct conn *c)
{
    struct api *a = c->api;
    bool debug = log_enabled(LOG_DEBUG);
    uint64_t cpu0 = debug ? conn__cpu_ns() : 0, t0 = uv_hrtime();
    bool done = routes_list_step(a->b, c->list, a->slice_rows);
    a->turn_used_ns += uv_hrtime() - t0;
    /* Not idle: each turn writes some, whatever the request's deadline (a
     * listing on a loop slowed down by a storm may take longer). */
    c->active_ms = uv_now(a->loop);
    if (debug)
        c->list_cpu_ns += conn__cpu_ns() - cpu0;
    if (done)
        conn__list_done(c);
    else
        conn__list_count(c);
    return done;
}

/* A slice of each of d's listings, until the turn's time is spent (a
 * slice at least when first). True: some listing was written. */
static bool door__slice(struct door *d, uint64_t end, bool first)
{
    bool any = false;
    for (struct conn *c = d->conns; c; c = c->next) {
        if (!c->list || conn__closing(c))
            continue;
        if (!first && uv_hrtime() >= end)
            return any;
        if (conn__list_step(c)) {
            conn__process(c); /* the requests after it */
            door__resume(d);  /* the answer may be smaller than its count */
        }
        any = true;
        first = false;
    }
    return any;
}

/* After the poll, once per loop turn: the listings in progress take
 * turns by slices for what is left of turn_ns, the earlier connections
 * first, a slice at least. */
static void api__slice_cb(uv_check_t *h)
{
    struct api *a = h->data;
    uint64_t left = a->turn_ns > a->turn_used_ns ? a->turn_ns - a->turn_used_ns : 0;
    uint64_t end = uv_hrtime() + left;
    bool first = true, any = true;
    while (any && a->n_listing > 0 && (first || uv_hrtime() < end)) {
        bool t = door__slice(&a->tcp, end, first);
        any = door__slice(&a->local, end, first && !t) || t;
        first = false;
    }
    a->turn_used_ns = 0; /* the next turn's */
    if (a->n_listing == 0) {
        uv_check_stop(&a->slicer);
        uv_idle_stop(&a->spin);
    }
}

static void conn__answer(struct conn *c, struct request *rq)
{
    struct route_reply rep;
    uint64_t t0 = uv_hrtime(), cpu0 = log_enabled(LOG_DEBUG) ? conn__cpu_ns() : 0;
    c->served++;
    if (!conn__host_checked(c, rq))
        return;
    rq->route.b = c->api->b;
    rq->route.may_act = c->may_act;
    rq->route.local = c->door->local;
    rq->route.peer_uid = c->uid;
    routes_dispatch(&rq->route, &rep);
    if (rep.read) {
        conn__read_start(c, rep.read, rq);
        return;
    }
    if (rep.list) {
        conn__list_start(c, rep.list, rq);
        return;
    }
    c->finishing = !rq->keep_alive;
    bool head = strcmp(rq->route.method, "HEAD") == 0;
    if (rep.text) /* a view written as text: sent as it is, not copied again */
        conn__send(c, rep.status, rep.allow, rep.link, rep.text, rep.text_len, head, 0);
    else
        conn__reply(c, rep.status, rep.allow, rep.link, rep.body, head);
    json_decref(rep.body);
    if (log_enabled(LOG_DEBUG)) {
        char path[256];
        conn__log_path(rq->route.path, path, sizeof path);
        /* cpu_ms below ms: the request waited for a CPU (a busy host). */
        log_event(LOG_DEBUG, NULL, "api-request", "method=%s path=%s status=%u ms=%.3f cpu_ms=%.3f",
                  rq->route.method, path, rep.status, (double)(uv_hrtime() - t0) / 1e6,
                  (double)(conn__cpu_ns() - cpu0) / 1e6);
    }
}

/* c's next request waits (on) for room in its door's budget, in the
 * order the waits began; its input meanwhile stays in the kernel. */
static void conn__wait(struct conn *c, bool on)
{
    if (on == c->waiting)
        return;
    c->waiting = on;
    if (on) {
        c->wait_seq = ++c->api->wait_seq;
        c->door->n_waiting++;
    } else {
        c->door->n_waiting--;
    }
}

/* Answer every complete request in buf, in order, until the output bound
 * or the last request; keep the rest for the next read. */
static void conn__process(struct conn *c)
{
    size_t used = 0;
    if (conn__closing(c))
        return;
    bool more = false; /* stopped by the door's budget with bytes to answer */
    while (!c->finishing && !c->read && !c->list && c->out <= API__OUT_MAX && used < c->len &&
           c->len - used >= c->need && !conn__closing(c)) {
        /* Behind the ones that waited already, whatever room there is. */
        if (!door__room(c->door) || (c->door->n_waiting > 0 && !c->waiting)) {
            more = true;
            break;
        }
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
        c->request_ms = uv_now(c->api->loop); /* the next one began with the last read */
    }
    conn__wait(c, more && !conn__closing(c));
    conn__flow(c);
}

/* ---- deadlines ------------------------------------------------------------------------ */

/* A request is on its way: bytes of it are in, or a fresh connection has
 * not sent its first one yet. Its deadline runs from request_ms, and more
 * bytes do not extend it: a client sending a byte every few seconds
 * cannot hold a connection longer than any other. */
static bool conn__requesting(const struct conn *c)
{
    return !c->finishing && (c->len > 0 || c->served == 0 || c->read);
}

/* Kept alive between requests, nothing in either direction: the one kind
 * of connection given up for a newcomer when the door is full. */
static bool conn__idle(const struct conn *c)
{
    return c->served > 0 && c->len == 0 && c->out == 0 && !c->finishing && !c->shut && !c->read &&
           !c->list && !conn__closing(c);
}

/* Its output stands still: answers queued and not a byte of them taken
 * for stall_ms (API__STALL_MS). Progress within an answer shows as fewer bytes
 * pending than last time we looked. */
static bool conn__stalled(struct conn *c, uint64_t now)
{
    if (c->out == 0 || conn__closing(c))
        return false;
    conn__look(c, now);
    return now - c->progress_ms >= c->api->stall_ms;
}

/* The requests that waited for room go on, the oldest wait first, while
 * the budget has room. */
static void door__resume(struct door *d)
{
    while (d->n_waiting > 0 && door__room(d)) {
        struct conn *first = NULL;
        for (struct conn *c = d->conns; c; c = c->next)
            if (c->waiting && (!first || c->wait_seq < first->wait_seq))
                first = c;
        if (!first)
            return;
        conn__process(first); /* answers, or waits on with its place kept */
        if (first->waiting && door__room(d))
            return; /* cannot happen; never spin on it */
    }
}

/* Requests wait and the budget is spent: stalled readers are closed, the
 * one stalled longest first, until there is room. A reader that takes
 * bytes keeps its answer. */
static void door__evict_stalled(struct api *a, struct door *d, uint64_t now)
{
    for (;;) {
        door__resume(d);
        if (d->n_waiting == 0 || door__room(d))
            return;
        struct conn *worst = NULL;
        for (struct conn *c = d->conns; c; c = c->next)
            if (conn__stalled(c, now) && (!worst || c->progress_ms < worst->progress_ms))
                worst = c;
        if (!worst)
            return;
        log_event(LOG_DEBUG, NULL, "api-evicted-stalled",
                  "door=%s queued=%zu stalled_ms=%llu budget=%zu", d->name, worst->out,
                  (unsigned long long)(now - worst->progress_ms), d->out_max);
        a->stats.evicted++;
        conn__close(worst);
    }
}

/* A request waited for room until its deadline: 503 with why, then close. */
static void conn__wait_refused(struct conn *c)
{
    char why[API__WHY_MAX];
    snprintf(why, sizeof why,
             "the API's answers in flight fill its budget (%zu bytes queued for clients that "
             "read slowly or not at all); retry in a moment",
             c->door->out);
    conn__wait(c, false);
    c->api->stats.refused++;
    conn__refuse(c, 503, why);
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = 0;
    conn__flow(c);
}

static void api__sweep_door(struct api *a, struct door *d, uint64_t now)
{
    uint64_t linger = a->idle_ms < API__LINGER_MS ? a->idle_ms : API__LINGER_MS;
    for (struct conn *c = d->conns; c; c = c->next) {
        if (c->waiting && now - c->request_ms >= a->request_ms) {
            conn__wait_refused(c);
            continue;
        }
        /* An answer on its way is activity while the client takes its
         * bytes: one reading a large answer slowly is not idle (it was
         * closed mid-answer once idle_ms passed), one that stopped is. */
        uint64_t active = c->active_ms;
        if (c->out > 0 && !conn__closing(c)) {
            conn__look(c, now);
            active = c->progress_ms > active ? c->progress_ms : active;
        }
        /* Once our FIN is out only the client's is awaited, and not for long. */
        if (c->shut               ? now - c->active_ms >= linger
            : conn__requesting(c) ? now - c->request_ms >= a->request_ms
                                  : now - active >= a->idle_ms)
            conn__close(c);
    }
}

static void api__sweep_cb(uv_timer_t *t)
{
    struct api *a = t->data;
    uint64_t now = uv_now(a->loop);
    api__sweep_door(a, &a->tcp, now);
    api__sweep_door(a, &a->local, now);
    /* After the deadlines: a request past its own is refused, not served. */
    door__evict_stalled(a, &a->tcp, now);
    door__evict_stalled(a, &a->local, now);
}

static void api__sweep_start(struct api *a)
{
    uint64_t shortest = a->idle_ms < API__LINGER_MS ? a->idle_ms : API__LINGER_MS;
    shortest = a->request_ms < shortest ? a->request_ms : shortest;
    uint64_t period = shortest / 2 > 10 ? shortest / 2 : 10;
    uv_timer_start(&a->sweep, api__sweep_cb, uvclock_delay(a->loop, period), period);
}

/* ---- the doors ------------------------------------------------------------------------ */

static void door__polling(struct door *d, bool on);

/* The oldest idle connection, or NULL. O(n) at n <= the door's cap, and
 * only when the door is full. */
static struct conn *door__idle_oldest(struct door *d)
{
    struct conn *best = NULL;
    for (struct conn *c = d->conns; c; c = c->next)
        if (conn__idle(c) && (!best || c->active_ms < best->active_ms))
            best = c;
    return best;
}

/* Is the peer in group, by the supplementary groups the kernel recorded
 * when it connected (its own, not what NSS says now)? */
static bool door__peer_in_group(int fd, gid_t group)
{
    gid_t some[64], *g = some;
    socklen_t len = sizeof some;
    bool in = false;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &len) < 0) {
        if (errno != ERANGE || !(g = malloc(len)))
            return false;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &len) < 0)
            len = 0;
    }
    for (size_t i = 0; i < len / sizeof *g; i++)
        in |= g[i] == group;
    if (g != some)
        free(g);
    return in;
}

/* Who is at the other end of a local connection: root, our own user and
 * API_GROUP's members may act; anyone else may only read. */
static void conn__peer(struct conn *c, int fd)
{
    struct api *a = c->api;
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
        return; /* unknown: treated as a TCP client, the token decides */
    c->uid = (long)cred.uid;
    c->may_act = cred.uid == 0 || cred.uid == a->self ||
                 (a->have_group && (cred.gid == a->group || door__peer_in_group(fd, a->group)));
}

/* A new client on d, which takes fd. */
static void door__admit(struct door *d, int fd)
{
    struct api *a = d->api;
    struct conn *c, *idle;
    if (d->n_live >= d->max) {
        if (!(idle = door__idle_oldest(d))) {
            close(fd); /* the client learns now rather than after a timeout in the backlog */
            log_event(LOG_DEBUG, NULL, "api-turned-away", "door=%s connections=%u", d->name,
                      d->n_live);
            return;
        }
        log_event(LOG_DEBUG, NULL, "api-evicted-idle", "door=%s connections=%u", d->name,
                  d->n_live);
        conn__close(idle);
    }
    if (!(c = calloc(1, sizeof *c))) {
        close(fd);
        return;
    }
    if (d->local)
        uv_pipe_init(a->loop, &c->io.pipe, 0);
    else
        uv_tcp_init(a->loop, &c->io.tcp);
    c->io.handle.data = c;
    c->door = d;
    c->api = a;
    c->uid = -1;
    c->next = d->conns;
    if (c->next)
        c->next->prev = c;
    d->conns = c;
    d->n_conns++;
    d->n_live++;
    a->handles++;
    if (a->n_conns++ == 0)
        api__sweep_start(a);
    int r = d->local ? uv_pipe_open(&c->io.pipe, fd) : uv_tcp_open(&c->io.tcp, fd);
    if (r < 0) {
        close(fd); /* not the handle's */
        conn__close(c);
        return;
    }
    if (d->local)
        conn__peer(c, fd);
    else
        uv_tcp_nodelay(&c->io.tcp, 1); /* one write per answer: Nagle would only delay it */
    c->active_ms = c->request_ms = uv_now(a->loop);
    conn__reading(c, true);
}

/* Accepted with the reserve, when no descriptor was left: answered 503 at
 * once and closed. What the client sent is read first, so that the close
 * does not reset the connection under the answer. */
static void api__turn_away_busy(struct api *a, int fd)
{
    static const char body[] = "{\"error\":\"recoverd is out of file descriptors; retry\"}\n";
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nRetry-After: 1\r\nConnection: close\r\n\r\n",
                     sizeof body - 1);
    struct iovec iov[2] = {{head, (size_t)n}, {(void *)body, sizeof body - 1}};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
    while (recv(fd, a->scratch, sizeof a->scratch, MSG_DONTWAIT) > 0)
        ;
    (void)!sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    shutdown(fd, SHUT_WR);
    close(fd);
}

static void api__pause_cb(uv_timer_t *t)
{
    struct api *a = t->data;
    if (a->reserve < 0)
        a->reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
    door__polling(&a->tcp, true);
    door__polling(&a->local, true);
}

/* Accepting failed for want of resources: the doors rest a moment rather
 * than wake the loop again at once for the same readable listener. */
static void api__pause(struct api *a)
{
    door__polling(&a->tcp, false);
    door__polling(&a->local, false);
    uvclock_arm(&a->pause, api__pause_cb, API__PAUSE_MS);
}

/* EMFILE: no descriptor for the next client. The reserve is given up:
 * on TCP to accept the waiting clients one by one, each told 503 and
 * closed, so the listener stops being readable (the loop would spin on it
 * otherwise); on the Unix socket to let one operator in and serve them,
 * since the operators' door must stay open when TCP clients hold every
 * other descriptor. Then it is taken back; while that fails (the slot is
 * in use), the doors rest and try again. */
static void door__out_of_fds(struct door *d, int err)
{
    struct api *a = d->api;
    int fd, n = 0;
    if (!a->short_of_fds)
        log_event(LOG_WARN, NULL, "api-fds-exhausted",
                  "door=%s error=\"%s\" what=\"TCP clients get 503 until descriptors free up\"",
                  d->name, strerror(err));
    a->short_of_fds = true;
    if (a->reserve >= 0) {
        close(a->reserve);
        a->reserve = -1;
        if (d->local && (fd = accept4(d->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
            door__admit(d, fd);
        while (!d->local && n++ < API__ACCEPT_BATCH &&
               (fd = accept4(d->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
            api__turn_away_busy(a, fd);
        a->reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    if (a->reserve < 0)
        api__pause(a);
}

static void door__poll_cb(uv_poll_t *p, int status, int events)
{
    struct door *d = p->data;
    struct api *a = d->api;
    for (int i = 0; i < API__ACCEPT_BATCH; i++) {
        int fd = accept4(d->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            if (a->short_of_fds && a->reserve >= 0) {
                a->short_of_fds = false;
                log_event(LOG_INFO, NULL, "api-fds-available", "door=%s", d->name);
            }
            door__admit(d, fd);
        } else if (errno == EMFILE || errno == ENFILE) {
            door__out_of_fds(d, errno);
            return;
        } else if (errno == ENOBUFS || errno == ENOMEM) {
            log_event(LOG_WARN, NULL, "api-accept-failed", "door=%s error=\"%s\"", d->name,
                      strerror(errno));
            api__pause(a);
            return;
        } else if (errno != EINTR && errno != ECONNABORTED && errno != EPROTO) {
            return; /* EAGAIN: none left */
        }
    }
}

static void door__polling(struct door *d, bool on)
{
    if (d->fd < 0 || on == d->polling || uv_is_closing((uv_handle_t *)&d->poll))
        return;
    if (on)
        uv_poll_start(&d->poll, UV_READABLE, door__poll_cb);
    else
        uv_poll_stop(&d->poll);
    d->polling = on;
}

static void door__close_cb(uv_handle_t *h)
{
    struct door *d = h->data;
    close(d->fd);
    d->fd = -1;
    api__handle_closed(d->api);
}

/* Serve fd (a listening socket, now the door's) named name (owned from here on). */
static int door__open(struct api *a, struct door *d, int fd, char *name)
{
    int r = uv_poll_init(a->loop, &d->poll, fd);
    d->name = name;
    if (r < 0) {
        close(fd);
        return r;
    }
    d->poll.data = d;
    d->fd = fd;
    a->handles++;
    door__polling(d, true);
    return 0;
}

/* Stop accepting, close d's connections, remove its socket file if it is
 * still the one we made. */
static void door__close(struct door *d)
{
    struct stat st;
    for (struct conn *c = d->conns; c; c = c->next)
        conn__close(c);
    if (d->fd < 0)
        return;
    if (d->local && lstat(d->name, &st) == 0 && st.st_dev == d->made.st_dev &&
        st.st_ino == d->made.st_ino)
        unlink(d->name);
    uv_close((uv_handle_t *)&d->poll, door__close_cb);
}

/* ---- listening ------------------------------------------------------------------------ */

/* Our own socket rather than uv_tcp_bind: libuv may defer a bind error to
 * uv_listen and does not set V6ONLY unless asked; this way the errno is the
 * bind's, IPv6 binds exactly the address asked, and port 0 learns its port. */
static int api__tcp_listen(const struct sockaddr_storage *addr, int *out,
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

/* path as a socket address. sun_path holds 108 bytes: a longer path is
 * reached through its directory, opened into *dir (closed by the caller),
 * as /proc/self/fd/N/NAME. */
static int api__unix_addr(const char *path, struct sockaddr_un *sun, int *dir)
{
    const char *slash = strrchr(path, '/');
    char *parent = NULL;
    *sun = (struct sockaddr_un){.sun_family = AF_UNIX};
    if (strlen(path) < sizeof sun->sun_path) {
        memcpy(sun->sun_path, path, strlen(path) + 1);
        return 0;
    }
    if (!slash || !(parent = strndup(path, slash == path ? 1 : (size_t)(slash - path))))
        return slash ? -ENOMEM : -ENAMETOOLONG;
    *dir = open(parent, O_PATH | O_DIRECTORY | O_CLOEXEC);
    free(parent);
    if (*dir < 0)
        return -errno;
    if ((size_t)snprintf(sun->sun_path, sizeof sun->sun_path, "/proc/self/fd/%d/%s", *dir,
                         slash + 1) >= sizeof sun->sun_path)
        return -ENAMETOOLONG;
    return 0;
}

/* Someone answers on the socket at sun (a live recoverd, not a stale file). */
static bool api__unix_answered(const struct sockaddr_un *sun)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    bool live = fd >= 0 &&
                (connect(fd, (const struct sockaddr *)sun, sizeof *sun) == 0 || errno == EAGAIN);
    if (fd >= 0)
        close(fd);
    return live;
}

/* A file at path is removed only when it is a socket of ours that nobody
 * answers on (left by a killed recoverd); anything else is not ours to
 * remove. */
static int api__unix_clear(const struct api *a, const char *path, const struct sockaddr_un *sun)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISSOCK(st.st_mode) || st.st_uid != a->self)
        return -EEXIST;
    if (api__unix_answered(sun))
        return -EADDRINUSE;
    return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}

/* The operators' socket at path, mode 0660, in API_GROUP where that group
 * exists and we may give it. *made: the file, to remove only that one. */
static int api__unix_listen(const struct api *a, const char *path, int *out, struct stat *made)
{
    struct sockaddr_un sun;
    int dir = -1, fd = -1, r;
    if ((r = api__unix_addr(path, &sun, &dir)) < 0 || (r = api__unix_clear(a, path, &sun)) < 0)
        goto fail;
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
        goto fail_errno;
    /* Born 0660, never more open for a moment; the umask is the process's,
     * but nothing else creates files while the API starts. */
    mode_t mask = umask(0117);
    r = bind(fd, (const struct sockaddr *)&sun, sizeof sun);
    umask(mask);
    if (r < 0 || listen(fd, API__BACKLOG) < 0 || lstat(path, made) < 0)
        goto fail_errno;
    if (a->have_group && made->st_gid != a->group &&
        fchownat(AT_FDCWD, path, (uid_t)-1, a->group, AT_SYMLINK_NOFOLLOW) < 0)
        log_event(LOG_INFO, NULL, "api-socket-group", "path=%s gid=%u error=\"%s\"", path,
                  (unsigned)a->group, strerror(errno));
    if (dir >= 0)
        close(dir);
    *out = fd;
    return 0;
fail_errno:
    r = -errno;
fail:
    if (fd >= 0)
        close(fd);
    if (dir >= 0)
        close(dir);
    return r;
}

/* The group whose members may act through the socket, looked up once at
 * start (NSS may block: never from the loop's callbacks). */
static void api__group_lookup(struct api *a, const char *name)
{
    struct group gr, *found = NULL;
    char buf[4096];
    if (getgrnam_r(name, &gr, buf, sizeof buf, &found) == 0 && found) {
        a->group = found->gr_gid;
        a->have_group = true;
    }
}

static char **api__strv_dup(char *const *v)
{
    size_t n = 0;
    while (v[n])
        n++;
    char **out = calloc(n + 1, sizeof *out);
    for (size_t i = 0; out && i < n; i++) {
        if (!(out[i] = strdup(v[i]))) {
            while (i--)
                free(out[i]);
            free(out);
            return NULL;
        }
    }
    return out;
}

static int api__open_doors(struct api *a, const struct api_cfg *cfg, const struct api_options *opt,
                           char *err, size_t errlen)
{
    struct sockaddr_storage bound; /* api__tcp_listen fills it when it returns 0 */
    char name[INET6_ADDRSTRLEN + 8];
    int fd = -1, r;
    memset(&bound, 0, sizeof bound);
    api__addr_format(&cfg->listen, name, sizeof name);
    if ((r = api__tcp_listen(&cfg->listen, &fd, &bound)) < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", name, strerror(-r));
        return r;
    }
    api__addr_format(&bound, name, sizeof name);               /* the real port when asked for 0 */
    a->port = ntohs(((struct sockaddr_in *)&bound)->sin_port); /* same place in sockaddr_in6 */
    if ((r = door__open(a, &a->tcp, fd, strdup(name))) < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", name, uv_strerror(r));
        return r;
    }
    if (!opt->socket_path)
        return 0;
    if ((r = api__unix_listen(a, opt->socket_path, &fd, &a->local.made)) < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s%s", opt->socket_path, strerror(-r),
                 r == -EEXIST       ? " (not a socket of ours: left alone)"
                 : r == -EADDRINUSE ? " (another process answers on it)"
                                    : "");
        return r;
    }
    if ((r = door__open(a, &a->local, fd, strdup(opt->socket_path))) < 0) {
        unlink(opt->socket_path);
        snprintf(err, errlen, "cannot listen on %s: %s", opt->socket_path, uv_strerror(r));
    }
    return r;
}

struct api *api_new(uv_loop_t *loop, const struct api_backend *b, const struct api_cfg *cfg,
                    const struct api_options *opt, char *err, size_t errlen)
{
    struct api *a = calloc(1, sizeof *a);
    if (!a ||
        !(a->hostnames = api__strv_dup(cfg->hostnames ? cfg->hostnames : hostnames_default))) {
        snprintf(err, errlen, "out of memory");
        free(a);
        return NULL;
    }
    a->loop = loop;
    a->b = b;
    a->idle_ms = API__IDLE_MS;
    a->request_ms = API__REQUEST_MS;
    a->stall_ms = API__STALL_MS;
    a->self = geteuid();
    size_t out_max = opt->out_max ? opt->out_max : API__DOOR_OUT_MAX;
    a->tcp = (struct door){.api = a,
                           .fd = -1,
                           .max = opt->tcp_max ? opt->tcp_max : API__TCP_MAX,
                           .out_max = out_max};
    a->local = (struct door){.api = a,
                             .fd = -1,
                             .local = true,
                             .max = opt->local_max ? opt->local_max : API__LOCAL_MAX,
                             .out_max = out_max};
    api__group_lookup(a, opt->group ? opt->group : API_GROUP);
    a->slice_rows = API__SLICE_ROWS;
    a->turn_ns = (uint64_t)API__TURN_US * 1000;
    uv_timer_init(loop, &a->sweep);
    uv_timer_init(loop, &a->pause);
    uv_timer_init(loop, &a->spare_timer);
    uv_check_init(loop, &a->slicer);
    uv_idle_init(loop, &a->spin);
    a->sweep.data = a->pause.data = a->spare_timer.data = a->slicer.data = a->spin.data = a;
    a->handles = 5;
    a->reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (api__open_doors(a, cfg, opt, err, errlen) < 0) {
        api_free(a); /* memory goes with the handles' close callbacks */
        return NULL;
    }
    log_event(LOG_INFO, NULL, "api-listening", "addr=%s socket=%s max=%u+%u out_max=%zu",
              a->tcp.name, a->local.name ? a->local.name : "-", a->tcp.max, a->local.max, out_max);
    return a;
}

void api_set_slicing(struct api *a, size_t rows, uint64_t turn_us)
{
    a->slice_rows = rows ? rows : API__SLICE_ROWS;
    a->turn_ns = turn_us * 1000;
}

void api_set_stall(struct api *a, uint64_t stall_ms)
{
    a->stall_ms = stall_ms;
}

void api_out_stats(const struct api *a, struct api_out_stats *out)
{
    *out = a->stats;
}

void api_set_timeouts(struct api *a, uint64_t idle_ms, uint64_t request_ms)
{
    a->idle_ms = idle_ms;
    a->request_ms = request_ms;
    if (uv_is_active((uv_handle_t *)&a->sweep))
        api__sweep_start(a);
}

unsigned api_port(const struct api *a)
{
    return a->port;
}

void api_free(struct api *a)
{
    if (!a)
        return;
    a->freed = true;
    if (a->reserve >= 0)
        close(a->reserve);
    a->reserve = -1;
    uv_close((uv_handle_t *)&a->sweep, api__close_cb);
    uv_close((uv_handle_t *)&a->pause, api__close_cb);
    uv_close((uv_handle_t *)&a->spare_timer, api__close_cb);
    uv_close((uv_handle_t *)&a->slicer, api__close_cb);
    uv_close((uv_handle_t *)&a->spin, api__close_cb);
    door__close(&a->tcp);
    door__close(&a->local);
}
