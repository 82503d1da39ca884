/* recoverd-demo: a tiny HTTP/1.1 service with fault switches, supervised in demos and tests. */
/* memmem, strcasestr: _GNU_SOURCE comes from the build */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

#include <uv.h>

#define CONN_BUF_SIZE 4096 /* bytes; a request head larger than this gets 431 */
#define FLOOD_CHUNK 65536  /* bytes per write() of --flood */

struct demo_opts {
    const char *host;   /* listen address; default 127.0.0.1 */
    long port;          /* TCP port; required */
    long exit_after_ms; /* ms after start to exit with 3; -1: never */
    bool fail_start;    /* exit 1 before listening */
    long print_lines;   /* lines written to stdout at start */
    bool flood;         /* write to stdout forever from a thread */
    long alloc_mb;      /* MiB allocated and touched at start */
};

struct conn {
    uv_tcp_t tcp;            /* must stay first: the handle is cast back to its conn */
    size_t len;              /* bytes held in buf */
    size_t skip;             /* request body bytes still to discard, bytes */
    char buf[CONN_BUF_SIZE]; /* received bytes not yet consumed */
};

struct reply {
    uv_write_t req;   /* req.data: the conn */
    bool close_after; /* close the connection once written */
    size_t len;       /* bytes in data */
    char data[];      /* status line, headers and body */
};

/* What a parsed request head says. */
struct request {
    char *method;    /* points into the conn buffer, NUL-terminated */
    char *path;      /* without the query string */
    bool keep_alive; /* HTTP/1.1 default unless "Connection: close" */
    size_t body_len; /* Content-Length, bytes */
};

static bool demo_failing;  /* set by /fail, cleared by /recover: /health answers 500 */
static void *demo_ballast; /* --alloc memory, kept reachable for the process lifetime */

static const char demo_index[] = "recoverd-demo endpoints:\n"
                                 "  GET /health   200 ok, or 500 after /fail\n"
                                 "  GET /fail     make /health answer 500\n"
                                 "  GET /recover  undo /fail\n"
                                 "  GET /crash    abort()\n"
                                 "  GET /hang     stop answering, stay alive\n";

static __attribute__((noreturn)) void demo__hang(void)
{
    /* Blocks the whole process, loop included; SIGTERM still ends it. */
    for (;;)
        pause();
}

/* Each route answers a status and a body (static storage). */
static int route__health(const char **body)
{
    *body = demo_failing ? "failing\n" : "ok\n";
    return demo_failing ? 500 : 200;
}

static int route__fail(const char **body)
{
    demo_failing = true;
    *body = "failing from now on\n";
    return 200;
}

static int route__recover(const char **body)
{
    demo_failing = false;
    *body = "recovered\n";
    return 200;
}

static int route__crash(const char **body)
{
    abort();
}

static int route__hang(const char **body)
{
    demo__hang();
}

static int route__index(const char **body)
{
    *body = demo_index;
    return 200;
}

static const struct route {
    const char *path;
    int (*answer)(const char **body);
} demo_routes[] = {
    {"/health", route__health}, {"/fail", route__fail}, {"/recover", route__recover},
    {"/crash", route__crash},   {"/hang", route__hang}, {"/", route__index},
};

static const char *status__text(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 431: return "Request Header Fields Too Large";
    default: return "Internal Server Error";
    }
}

static void conn__close_cb(uv_handle_t *h)
{
    free(h); /* the handle is the first member of its conn */
}

static void conn__close(struct conn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, conn__close_cb);
}

static void reply__write_cb(uv_write_t *req, int status)
{
    struct reply *r = (struct reply *)req;
    struct conn *c = req->data;
    if (status < 0 || r->close_after)
        conn__close(c); /* still valid: close_cb runs after cancelled writes */
    free(r);
}

/* Queue one response; head_only for HEAD requests. */
static void conn__reply(struct conn *c, int status, const char *body, bool keep_alive,
                        bool head_only)
{
    size_t blen = strlen(body);
    size_t cap = 160 + blen;
    struct reply *r = malloc(sizeof(*r) + cap);
    if (!r) {
        conn__close(c);
        return;
    }
    int n = snprintf(r->data, cap,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                     "Connection: %s\r\n\r\n%s",
                     status, status__text(status), blen, keep_alive ? "keep-alive" : "close",
                     head_only ? "" : body);
    r->len = (size_t)n;
    r->close_after = !keep_alive;
    r->req.data = c;
    uv_buf_t b = uv_buf_init(r->data, (unsigned)r->len);
    if (uv_write(&r->req, (uv_stream_t *)&c->tcp, &b, 1, reply__write_cb) < 0) {
        free(r);
        conn__close(c);
    }
}

/* Read one "Name: value" header line (NUL-terminated) into rq. */
static int request__header(struct request *rq, char *line)
{
    char *colon = strchr(line, ':');
    if (!colon)
        return -EINVAL;
    *colon = '\0';
    const char *value = colon + 1 + strspn(colon + 1, " \t");
    if (!strcasecmp(line, "connection")) {
        if (strcasestr(value, "close"))
            rq->keep_alive = false;
        else if (strcasestr(value, "keep-alive"))
            rq->keep_alive = true;
    } else if (!strcasecmp(line, "content-length")) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(value, &end, 10);
        if (errno || end == value)
            return -EINVAL;
        rq->body_len = (size_t)v;
    }
    return 0;
}

/* Parse the head (request line and headers, CRLF-separated, NUL-terminated
 * in place); 0 or -EINVAL. */
static int request_parse(struct request *rq, char *head)
{
    char *save = NULL;
    char *line = strtok_r(head, "\r\n", &save);
    if (!line)
        return -EINVAL;
    char *sp1 = strchr(line, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2)
        return -EINVAL;
    *sp1 = *sp2 = '\0';
    rq->method = line;
    rq->path = sp1 + 1;
    rq->keep_alive = strcmp(sp2 + 1, "HTTP/1.0") != 0;
    rq->body_len = 0;
    rq->path[strcspn(rq->path, "?#")] = '\0';
    while ((line = strtok_r(NULL, "\r\n", &save)))
        if (request__header(rq, line) < 0)
            return -EINVAL;
    return 0;
}

static void conn__answer(struct conn *c, const struct request *rq)
{
    bool get = !strcmp(rq->method, "GET");
    bool head = !strcmp(rq->method, "HEAD");
    for (size_t i = 0; i < sizeof(demo_routes) / sizeof(demo_routes[0]); i++) {
        if (strcmp(rq->path, demo_routes[i].path) != 0)
            continue;
        if (!get && !head) {
            conn__reply(c, 405, "method not allowed\n", rq->keep_alive, false);
            return;
        }
        const char *body = "";
        int status = demo_routes[i].answer(&body);
        conn__reply(c, status, body, rq->keep_alive, head);
        return;
    }
    conn__reply(c, 404, "not found\n", rq->keep_alive, head);
}

/* Answer every complete request in the buffer (pipelining keeps order
 * because uv_write queues in order); returns false once the connection is
 * to be closed. */
static bool conn__process(struct conn *c)
{
    size_t used = 0;
    bool open = true;
    while (open) {
        size_t drop = c->skip < c->len - used ? c->skip : c->len - used;
        used += drop;
        c->skip -= drop;
        char *start = c->buf + used;
        char *end = memmem(start, c->len - used, "\r\n\r\n", 4);
        if (!end)
            break;
        end[2] = '\0'; /* keeps the last header's CRLF for the tokenizer */
        struct request rq;
        used = (size_t)(end + 4 - c->buf);
        if (request_parse(&rq, start) < 0) {
            conn__reply(c, 400, "bad request\n", false, false);
            return false;
        }
        c->skip = rq.body_len;
        conn__answer(c, &rq);
        open = rq.keep_alive;
    }
    memmove(c->buf, c->buf + used, c->len - used);
    c->len -= used;
    if (open && c->len == sizeof(c->buf)) {
        conn__reply(c, 431, "request head too large\n", false, false);
        return false;
    }
    return open;
}

static void conn__alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = (struct conn *)h;
    *buf = uv_buf_init(c->buf + c->len, (unsigned)(sizeof(c->buf) - c->len));
}

static void conn__shutdown_cb(uv_shutdown_t *req, int status)
{
    conn__close((struct conn *)req->handle);
    free(req);
}

static void conn__read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct conn *c = (struct conn *)s;
    uv_shutdown_t *req;
    if (n == UV_EOF && (req = malloc(sizeof(*req)))) {
        /* The peer is done sending: let queued replies drain, then close. */
        uv_read_stop(s);
        if (uv_shutdown(req, s, conn__shutdown_cb) == 0)
            return;
        free(req);
    }
    if (n < 0) {
        conn__close(c);
        return;
    }
    c->len += (size_t)n;
    if (!conn__process(c))
        uv_read_stop(s); /* the close follows the last reply's write */
}

static void server__connection_cb(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    struct conn *c = malloc(sizeof(*c));
    if (!c)
        return;
    c->len = c->skip = 0;
    uv_tcp_init(server->loop, &c->tcp);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        conn__close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, conn__alloc_cb, conn__read_cb);
}

static int server_listen(uv_loop_t *loop, uv_tcp_t *server, const struct demo_opts *o)
{
    struct sockaddr_storage sa;
    int port = (int)o->port;
    int r = strchr(o->host, ':') ? uv_ip6_addr(o->host, port, (struct sockaddr_in6 *)&sa)
                                 : uv_ip4_addr(o->host, port, (struct sockaddr_in *)&sa);
    if (r < 0)
        return r;
    if ((r = uv_tcp_init(loop, server)) < 0)
        return r;
    /* Linux reports EADDRINUSE at bind or at listen: check both. */
    if ((r = uv_tcp_bind(server, (const struct sockaddr *)&sa, 0)) < 0)
        return r;
    return uv_listen((uv_stream_t *)server, SOMAXCONN, server__connection_cb);
}

static void demo__flood(void *arg)
{
    static char chunk[FLOOD_CHUNK];
    static const char line[] = "recoverd-demo flood 0123456789abcdefghijklmnopqrstuvwxyz\n";
    size_t n = 0;
    while (n + sizeof(line) - 1 <= sizeof(chunk)) {
        memcpy(chunk + n, line, sizeof(line) - 1);
        n += sizeof(line) - 1;
    }
    /* Ends only when stdout does (EPIPE: SIGPIPE is ignored). */
    while (write(STDOUT_FILENO, chunk, n) > 0 || errno == EINTR)
        ;
}

static void demo__exit_cb(uv_timer_t *t)
{
    fprintf(stderr, "recoverd-demo exiting with 3 (--exit-after)\n");
    _exit(3); /* no atexit work: the flood thread may still be writing */
}

static void demo__signal(int sig)
{
    _exit(0); /* async-signal-safe, and works even while /hang blocks in pause() */
}

static void demo__usage(FILE *f)
{
    fprintf(f, "usage: recoverd-demo --port N [--host ADDR] [--exit-after MS] [--fail-start]\n"
               "                     [--print N] [--flood] [--alloc MB]\n");
}

/* A non-negative integer argument, or -1. */
static long demo__number(const char *s)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : -1;
    if (!s || errno || end == s || *end || v < 0)
        return -1;
    return v;
}

/* Options that take a number, and where it goes. */
static long *demo__numeric(struct demo_opts *o, const char *name)
{
    if (!strcmp(name, "--port"))
        return &o->port;
    if (!strcmp(name, "--exit-after"))
        return &o->exit_after_ms;
    if (!strcmp(name, "--print"))
        return &o->print_lines;
    if (!strcmp(name, "--alloc"))
        return &o->alloc_mb;
    return NULL;
}

static int demo_opts_parse(struct demo_opts *o, int argc, char **argv)
{
    *o = (struct demo_opts){.host = "127.0.0.1", .port = -1, .exit_after_ms = -1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long *slot = demo__numeric(o, a);
        if (!strcmp(a, "--fail-start"))
            o->fail_start = true;
        else if (!strcmp(a, "--flood"))
            o->flood = true;
        else if (!strcmp(a, "--host") && v)
            o->host = argv[++i];
        else if (slot && (*slot = demo__number(v)) >= 0)
            i++;
        else
            return -EINVAL;
    }
    return o->port < 0 || o->port > 65535 ? -EINVAL : 0;
}

/* The start-up switches that run before listening; 0 or -errno. */
static int demo_prepare(const struct demo_opts *o)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max; /* many connections */
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, demo__signal);
    signal(SIGINT, demo__signal);
    if (o->alloc_mb > 0) {
        size_t bytes = (size_t)o->alloc_mb << 20;
        if (!(demo_ballast = malloc(bytes)))
            return -ENOMEM;
        memset(demo_ballast, 0xa5, bytes); /* touch every page so it counts in RSS */
    }
    for (long i = 0; i < o->print_lines; i++)
        printf("recoverd-demo line %ld\n", i + 1);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    struct demo_opts o;
    if (demo_opts_parse(&o, argc, argv) < 0) {
        demo__usage(stderr);
        return 2;
    }
    if (o.fail_start) {
        fprintf(stderr, "recoverd-demo: failing at start (--fail-start)\n");
        return 1;
    }
    int r = demo_prepare(&o);
    if (r < 0) {
        fprintf(stderr, "recoverd-demo: %s\n", strerror(-r));
        return 1;
    }
    uv_loop_t *loop = uv_default_loop();
    static uv_tcp_t server;
    static uv_timer_t exit_timer;
    static uv_thread_t flooder;
    if ((r = server_listen(loop, &server, &o)) < 0) {
        fprintf(stderr, "recoverd-demo: cannot listen on %s:%ld: %s\n", o.host, o.port,
                uv_strerror(r));
        return 1;
    }
    fprintf(stderr, "recoverd-demo listening on %s:%ld pid=%d\n", o.host, o.port, (int)getpid());
    if (o.flood && uv_thread_create(&flooder, demo__flood, NULL) < 0)
        return 1;
    if (o.exit_after_ms >= 0) {
        uv_timer_init(loop, &exit_timer);
        uv_timer_start(&exit_timer, demo__exit_cb, (uint64_t)o.exit_after_ms, 0);
    }
    return uv_run(loop, UV_RUN_DEFAULT) < 0 ? 1 : 0;
}
