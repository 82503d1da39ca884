/* HTTP/1.1 request parsing for the API server: request line, the few
 * headers the server and routes use, Content-Length bodies, percent-decoding.
 * Strict where leniency would let two parsers disagree on where a request
 * ends (bare CR, folded lines, conflicting lengths, chunked bodies). */
#include "api/request.h"

#include <string.h>
#include <strings.h>

/* A piece of the head, not yet NUL-terminated: the buffer is only written
 * once the whole request is in, so an incomplete one can be parsed again. */
struct request__span {
    char *p;  /* inside the buffer; NULL: absent */
    size_t n; /* bytes */
};

/* What a pass over a complete head found. */
struct request__head {
    struct request__span method, target, auth, ctype, host;
    size_t length;   /* Content-Length, bytes; REQUEST_BODY_MAX + 1: larger */
    bool has_length; /* a Content-Length header was seen */
    bool has_te;     /* a Transfer-Encoding header was seen */
    bool http10;     /* HTTP/1.0 rather than HTTP/1.1 */
    bool conn_close; /* "Connection: close" */
    bool conn_keep;  /* "Connection: keep-alive" (matters for HTTP/1.0) */
    bool expect;     /* "Expect: 100-continue" */
};

static int request__fail(struct request *rq, int status, const char *why)
{
    rq->error = why;
    return -status;
}

/* RFC 9110 token characters (methods, header names). */
static bool request__tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool request__tokens(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!request__tchar((unsigned char)p[i]))
            return false;
    return n > 0;
}

static bool request__is(struct request__span s, const char *word)
{
    return strlen(word) == s.n && strncasecmp(s.p, word, s.n) == 0;
}

/* The line starting at p: its length without CR LF in *n, and where the
 * next line starts; NULL when its LF has not arrived. */
static char *request__line(char *p, const char *end, size_t *n)
{
    char *lf = memchr(p, '\n', (size_t)(end - p));
    if (!lf)
        return NULL;
    *n = (size_t)(lf - p) - (lf > p && lf[-1] == '\r');
    return lf + 1;
}

/* Bytes of the head at p (through its blank line), 0 when not all in. */
static size_t request__head_len(char *p, size_t len)
{
    char *q = p, *next;
    size_t n;
    while ((next = request__line(q, p + len, &n))) {
        if (n == 0)
            return (size_t)(next - p);
        q = next;
    }
    return 0;
}

/* "METHOD SP target SP HTTP/1.x"; the method's support is checked later so
 * that a well-formed unknown method gets 501 rather than 400. */
static int request__request_line(struct request *rq, struct request__head *h, char *line, size_t n)
{
    char *end = line + n;
    char *sp1 = memchr(line, ' ', n);
    char *t = sp1 ? sp1 + 1 : NULL;
    char *sp2 = t ? memchr(t, ' ', (size_t)(end - t)) : NULL;
    if (!sp2 || !request__tokens(line, (size_t)(sp1 - line)) || sp2 == t)
        return request__fail(rq, 400, "malformed request line");
    for (const char *c = t; c < sp2; c++)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
            return request__fail(rq, 400, "malformed request target");
    if (t[0] != '/' && !memmem(t, (size_t)(sp2 - t), "://", 3))
        return request__fail(rq, 400, "request target must be a path");
    const char *v = sp2 + 1;
    size_t vn = (size_t)(end - v);
    bool http = vn == 8 && memcmp(v, "HTTP/", 5) == 0 && v[6] == '.';
    if (!http || v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9')
        return request__fail(rq, 400, "malformed HTTP version");
    if (memcmp(v + 5, "1.1", 3) != 0 && memcmp(v + 5, "1.0", 3) != 0)
        return request__fail(rq, 505, "only HTTP/1.1 and HTTP/1.0 are served");
    h->http10 = v[7] == '0';
    h->method = (struct request__span){line, (size_t)(sp1 - line)};
    h->target = (struct request__span){t, (size_t)(sp2 - t)};
    return 0;
}

/* Content-Length: digits only, and the same value if repeated. */
static int request__length(struct request *rq, struct request__head *h, struct request__span v)
{
    size_t len = 0;
    for (size_t i = 0; i < v.n; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return request__fail(rq, 400, "malformed Content-Length");
        len = len > REQUEST_BODY_MAX ? len : len * 10 + (size_t)(v.p[i] - '0');
    }
    len = len > REQUEST_BODY_MAX ? REQUEST_BODY_MAX + 1 : len;
    if (v.n == 0 || (h->has_length && h->length != len))
        return request__fail(rq, 400, "malformed or conflicting Content-Length");
    h->has_length = true;
    h->length = len;
    return 0;
}

/* The comma-separated options of a Connection header. */
static void request__connection(struct request__head *h, struct request__span v)
{
    const char *end = v.p + v.n;
    for (char *p = v.p; p < end;) {
        char *comma = memchr(p, ',', (size_t)(end - p));
        struct request__span tok = {p, (size_t)((comma ? comma : end) - p)};
        while (tok.n && (*tok.p == ' ' || *tok.p == '\t'))
            tok.p++, tok.n--;
        while (tok.n && (tok.p[tok.n - 1] == ' ' || tok.p[tok.n - 1] == '\t'))
            tok.n--;
        h->conn_close |= request__is(tok, "close");
        h->conn_keep |= request__is(tok, "keep-alive");
        p = comma ? comma + 1 : (char *)end;
    }
}

/* A header that must appear at most once; a second one is ambiguous. */
static int request__single(struct request *rq, struct request__span *slot, struct request__span v)
{
    if (slot->p)
        return request__fail(rq, 400, "repeated header");
    *slot = v;
    return 0;
}

/* One "Name: value" line; only the headers the server or routes read are kept. */
static int request__header(struct request *rq, struct request__head *h, char *line, size_t n)
{
    char *colon = memchr(line, ':', n);
    if (!colon || !request__tokens(line, (size_t)(colon - line)))
        return request__fail(rq, 400, "malformed header line"); /* also folded lines */
    struct request__span name = {line, (size_t)(colon - line)};
    struct request__span v = {colon + 1, (size_t)(line + n - colon - 1)};
    for (size_t i = 0; i < v.n; i++)
        if (((unsigned char)v.p[i] < 0x20 && v.p[i] != '\t') || v.p[i] == 0x7f)
            return request__fail(rq, 400, "control character in a header");
    while (v.n && (*v.p == ' ' || *v.p == '\t'))
        v.p++, v.n--;
    while (v.n && (v.p[v.n - 1] == ' ' || v.p[v.n - 1] == '\t'))
        v.n--;
    if (request__is(name, "content-length"))
        return request__length(rq, h, v);
    if (request__is(name, "authorization"))
        return request__single(rq, &h->auth, v);
    if (request__is(name, "content-type"))
        return request__single(rq, &h->ctype, v);
    if (request__is(name, "host"))
        return request__single(rq, &h->host, v);
    if (request__is(name, "connection"))
        request__connection(h, v);
    else if (request__is(name, "transfer-encoding"))
        h->has_te = true;
    else if (request__is(name, "expect"))
        h->expect |= request__is(v, "100-continue");
    return 0;
}

static bool request__method_known(struct request__span m)
{
    static const char *const known[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"};
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (strlen(known[i]) == m.n && memcmp(m.p, known[i], m.n) == 0)
            return true;
    return false;
}

/* Read the whole head (hl bytes at p) into h, refusing what we do not serve. */
static int request__scan(struct request *rq, struct request__head *h, char *p, size_t hl)
{
    char *end = p + hl, *next;
    size_t n = 0;
    int r;
    next = request__line(p, end, &n); /* never NULL: the head ends with a blank line */
    if ((r = request__request_line(rq, h, p, n)) < 0)
        return r;
    for (p = next; (next = request__line(p, end, &n)) && n > 0; p = next)
        if ((r = request__header(rq, h, p, n)) < 0)
            return r;
    /* Chunked bodies would need a decoder for no client we have: refuse
     * them rather than guess where the request ends. */
    if (h->has_te)
        return request__fail(rq, 411, "Transfer-Encoding is not accepted; send Content-Length");
    if (h->length > REQUEST_BODY_MAX)
        return request__fail(rq, 413, "request body larger than 65536 bytes");
    if (!request__method_known(h->method))
        return request__fail(rq, 501, "method not implemented");
    return 0;
}

/* Garbage (a TLS hello, a stray protocol) is refused as soon as its first
 * bytes show it, rather than after 16 KiB or the idle timeout. */
static int request__check_start(struct request *rq, char *p, size_t len)
{
    struct request__head h = {0};
    size_t n;
    if (request__line(p, p + len, &n))
        return request__request_line(rq, &h, p, n);
    for (size_t i = 0; i < len && p[i] != ' '; i++)
        if (!request__tchar((unsigned char)p[i]))
            return request__fail(rq, 400, "malformed request line");
    return 0;
}

static int request__hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decode s[0..n) in place ('+' as a space too when plus, as in a
 * query) and NUL-terminate it over s[n] at the latest, which must be a
 * delimiter. A malformed "%zz" stays as sent; "%00" would cut the string
 * short unseen, so it is refused. */
static int request__decode(char *s, size_t n, bool plus)
{
    char *out = s;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        char c = s[i];
        if (c == '%' && i + 2 < n && (hi = request__hex(s[i + 1])) >= 0 &&
            (lo = request__hex(s[i + 2])) >= 0) {
            c = (char)(hi << 4 | lo);
            if (c == '\0')
                return -1;
            i += 2;
        } else if (c == '+' && plus) {
            c = ' ';
        }
        *out++ = c;
    }
    *out = '\0';
    return 0;
}

/* "key=value&key&..." in place into the route's query list. */
static int request__query(struct route_request *rt, char *q, char *end)
{
    while (q < end) {
        char *amp = memchr(q, '&', (size_t)(end - q));
        char *seg_end = amp ? amp : end;
        char *eq = memchr(q, '=', (size_t)(seg_end - q));
        if (seg_end > q && rt->n_query == ROUTES_MAX_QUERY) {
            rt->query_overflow = true;
            return 0;
        }
        if (seg_end > q) {
            struct route_query *a = &rt->query[rt->n_query++];
            a->key = q;
            a->value = eq ? eq + 1 : NULL;
            if (request__decode(q, (size_t)((eq ? eq : seg_end) - q), true) < 0 ||
                (eq && request__decode(eq + 1, (size_t)(seg_end - eq - 1), true) < 0))
                return -1;
        }
        q = seg_end + 1;
    }
    return 0;
}

/* Path and query of the target, decoded in place. The absolute form
 * ("http://host/path") is reduced to its path; a fragment is dropped. */
static int request__target(struct request *rq, struct request__span t)
{
    struct route_request *rt = &rq->route;
    char *end = t.p + t.n;
    char *p = t.p;
    if (*p != '/') {
        char *authority = (char *)memmem(p, t.n, "://", 3) + 3;
        p = memchr(authority, '/', (size_t)(end - authority));
        if (!p) {
            rt->path = "/";
            return 0;
        }
    }
    char *hash = memchr(p, '#', (size_t)(end - p));
    end = hash ? hash : end;
    char *q = memchr(p, '?', (size_t)(end - p));
    rt->path = p;
    if (request__decode(p, (size_t)((q ? q : end) - p), false) < 0 ||
        (q && request__query(rt, q + 1, end) < 0))
        return request__fail(rq, 400, "%00 in the request target");
    return 0;
}

/* The authority the client asked for: that of an absolute target
 * ("http://host:port/path"), which RFC 9112 3.2.2 puts before the Host
 * header, else the Host header's. */
static void request__authority(struct request *rq, const struct request__head *h)
{
    struct request__span a = h->host, t = h->target;
    if (t.p[0] != '/') {
        char *start = (char *)memmem(t.p, t.n, "://", 3) + 3, *p = start;
        while (p < t.p + t.n && *p != '/' && *p != '?' && *p != '#')
            p++;
        a = (struct request__span){start, (size_t)(p - start)};
    }
    rq->host = a.p;
    rq->host_len = a.n;
}

/* Every piece is followed by a delimiter of its own (SP, ':', CR or LF)
 * that the NUL may replace. */
static const char *request__cstr(struct request__span s)
{
    if (!s.p)
        return NULL;
    s.p[s.n] = '\0';
    return s.p;
}

int request_parse(struct request *rq, char *buf, size_t len)
{
    struct request__head h = {0};
    size_t lead = 0;
    int r;
    *rq = (struct request){0};
    /* Blank lines before a request are allowed (RFC 9112 2.2): some
     * clients send a CRLF after a body. */
    while (lead < len && (buf[lead] == '\r' || buf[lead] == '\n'))
        lead++;
    size_t window = len < REQUEST_HEAD_MAX ? len : REQUEST_HEAD_MAX;
    size_t hl = lead < window ? request__head_len(buf + lead, window - lead) : 0;
    if (!hl && len >= REQUEST_HEAD_MAX)
        return request__fail(rq, 431, "request head larger than 16384 bytes");
    if (!hl)
        return request__check_start(rq, buf + lead, len - lead);
    if ((r = request__scan(rq, &h, buf + lead, hl)) < 0)
        return r;
    rq->head_len = lead + hl;
    rq->size = rq->head_len + h.length;
    rq->keep_alive = !h.conn_close && (!h.http10 || h.conn_keep);
    rq->expect_continue = h.expect && !h.http10;
    if (len < rq->size)
        return 0;
    request__authority(rq, &h);
    struct route_request *rt = &rq->route;
    rt->method = request__cstr(h.method);
    rt->authorization = request__cstr(h.auth);
    rt->content_type = request__cstr(h.ctype);
    rt->body = h.length ? buf + rq->head_len : NULL;
    rt->body_len = h.length;
    if ((r = request__target(rq, h.target)) < 0)
        return r;
    return (int)rq->size;
}
