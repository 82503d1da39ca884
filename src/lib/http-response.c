/* Reading an HTTP/1.1 response byte by byte as it arrives, strictly: each
 * head byte is checked once, so no read ever waits for "the rest of the
 * head" and nothing but one line is buffered. The one leniency is the bare
 * LF line end, which RFC 9112 section 2.2 lets a recipient accept. */
#include "lib/http-response.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

/* RFC 9110 token characters (header names and transfer codings) as a
 * table: strspn with a set this long builds a table of its own on every
 * call, which was a seventh of a probe's instructions (callgrind). */
static bool http_response__tchar[256];
/* Bytes a head line takes as they are: printable, or HTAB. */
static bool http_response__plainc[256];

__attribute__((constructor)) static void http_response__tables(void)
{
    for (int c = 1; c < 256; c++) {
        http_response__tchar[c] = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                                  (c >= 'A' && c <= 'Z') || strchr("!#$%&'*+-.^_`|~", c);
        http_response__plainc[c] = c >= 0x20 ? c != 0x7f : c == '\t';
    }
}

/* How many token characters s starts with. */
static size_t http_response__token(const char *s)
{
    size_t n = 0;
    while (http_response__tchar[(unsigned char)s[n]])
        n++;
    return n;
}

static const char *const http_response__words[] = {
#define X(e, s) s,
    HTTP_RESPONSE_ERROR_MAP(X)
#undef X
};

const char *http_response_error_str(enum http_response_error e)
{
    return (size_t)e < sizeof http_response__words / sizeof *http_response__words
               ? http_response__words[e]
               : "?";
}

static int http_response__bad(struct http_response *r, enum http_response_error e)
{
    r->error = e;
    return -EPROTO;
}

/* line[] is last and left alone: it is rewritten from its first byte. */
void http_response_init(struct http_response *r, char *keep, size_t keep_cap, bool head_only)
{
    memset(r, 0, offsetof(struct http_response, line));
    r->line[0] = '\0';
    r->keep = keep;
    r->keep_cap = keep ? keep_cap : 0;
    r->head_only = head_only;
}

/* Forget the head of an interim answer; what was counted stays counted. */
static void http_response__next_head(struct http_response *r)
{
    r->status = 0;
    r->http10 = r->close = r->keep_alive = false;
    r->chunked = r->encoded = r->have_len = r->framing = false;
    r->left = 0;
    r->phase = HTTP_RESPONSE_STATUS;
}

/* ---- the head ---- */

static int http_response__status_line(struct http_response *r)
{
    const char *l = r->line;
    if (r->line_len < 12 || memcmp(l, "HTTP/1.", 7) != 0 || (l[7] != '0' && l[7] != '1') ||
        l[8] != ' ' || l[9] < '1' || l[9] > '5' || l[10] < '0' || l[10] > '9' || l[11] < '0' ||
        l[11] > '9' || (l[12] != ' ' && l[12] != '\0'))
        return http_response__bad(r, HTTP_RESPONSE_E_STATUS_LINE);
    r->http10 = l[7] == '0';
    r->status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
    r->phase = HTTP_RESPONSE_HEADER;
    return 0;
}

/* 1*DIGIT, nothing else: a list ("5, 5") is refused too, which RFC 9110
 * section 8.6 allows, since no server of ours sends one. */
static int http_response__length(struct http_response *r, const char *v)
{
    size_t digits = strspn(v, "0123456789");
    uint64_t n = 0;
    if (digits == 0 || v[digits] != '\0' || digits > HTTP_RESPONSE_LENGTH_DIGITS)
        return http_response__bad(r, HTTP_RESPONSE_E_CONTENT_LENGTH);
    for (size_t i = 0; i < digits; i++)
        n = n * 10 + (uint64_t)(v[i] - '0');
    if (r->have_len && r->left != n)
        return http_response__bad(r, HTTP_RESPONSE_E_LENGTH_CONFLICT);
    r->have_len = true;
    r->left = n;
    return 0;
}

/* A list of codings, each a token with optional ";params"; the last one
 * decides how the body ends (RFC 9112 section 6.3). Empty elements are
 * skipped, as list syntax wants; a value with none is refused. */
static int http_response__encoding(struct http_response *r, char *v)
{
    char *save = NULL;
    bool any = false;
    for (char *t = strtok_r(v, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        t += strspn(t, " \t");
        size_t n = http_response__token(t);
        const char *rest = t + n + strspn(t + n, " \t");
        if (n == 0 && *rest == '\0')
            continue;
        bool chunked = n == 7 && strncasecmp(t, "chunked", 7) == 0;
        if (n == 0 || (*rest != '\0' && *rest != ';') || (chunked && r->chunked))
            return http_response__bad(r, HTTP_RESPONSE_E_TRANSFER_ENCODING);
        r->chunked = chunked;
        any = true;
    }
    if (!any)
        return http_response__bad(r, HTTP_RESPONSE_E_TRANSFER_ENCODING);
    r->encoded = true;
    return 0;
}

/* The Connection header's tokens that matter: the value is split on
 * runs of commas and blanks by hand (strtok_r looked its delimiters up
 * again for every token of every probe's answer). */
static void http_response__connection(struct http_response *r, const char *v)
{
    for (;;) {
        while (*v == ',' || *v == ' ' || *v == '\t')
            v++;
        if (!*v)
            return;
        const char *t = v;
        while (*v && *v != ',' && *v != ' ' && *v != '\t')
            v++;
        size_t n = (size_t)(v - t);
        if (n == 5 && strncasecmp(t, "close", 5) == 0)
            r->close = true;
        else if (n == 10 && strncasecmp(t, "keep-alive", 10) == 0)
            r->keep_alive = true;
    }
}

/* "name: value" with name a token right against its colon (RFC 9112
 * section 5.1). Only the framing headers of a head are interpreted;
 * trailers are checked and dropped. */
static int http_response__header(struct http_response *r, bool interpret)
{
    char *name = r->line, *v, *e;
    size_t n = http_response__token(name);
    if (n == 0 || name[n] != ':') {
        size_t sp = n ? strspn(name + n, " \t") : 0;
        return http_response__bad(r, sp && name[n + sp] == ':' ? HTTP_RESPONSE_E_HEADER_SPACE
                                                               : HTTP_RESPONSE_E_HEADER);
    }
    name[n] = '\0';
    v = name + n + 1;
    v += strspn(v, " \t");
    for (e = v + strlen(v); e > v && (e[-1] == ' ' || e[-1] == '\t');)
        *--e = '\0';
    r->framing = false;
    if (!interpret)
        return 0;
    /* the length first: most names are none of these three */
    if (n == 14 && strcasecmp(name, "content-length") == 0) {
        r->framing = true;
        return r->line_long ? http_response__bad(r, HTTP_RESPONSE_E_CONTENT_LENGTH)
                            : http_response__length(r, v);
    }
    if (n == 17 && strcasecmp(name, "transfer-encoding") == 0) {
        r->framing = true;
        return r->line_long ? http_response__bad(r, HTTP_RESPONSE_E_TRANSFER_ENCODING)
                            : http_response__encoding(r, v);
    }
    if (n == 10 && strcasecmp(name, "connection") == 0)
        http_response__connection(r, v);
    return 0;
}

/* The empty line after the headers: skip an interim answer, or decide how
 * the body ends. Framing is judged only where a body is read. */
static int http_response__head_end(struct http_response *r)
{
    if (r->status < 200) {
        if (r->status == 101)
            return http_response__bad(r, HTTP_RESPONSE_E_SWITCHING);
        http_response__next_head(r); /* the real answer follows on the same stream */
        return 0;
    }
    r->head = 0; /* trailers get a budget of their own */
    r->framing = false;
    if (r->head_only || r->status == 204 || r->status == 304) {
        r->phase = HTTP_RESPONSE_DONE;
        return 0;
    }
    /* RFC 9112 section 6.3: both at once "ought to be handled as an
     * error", and a 1.0 message's Transfer-Encoding is faulty framing. */
    if (r->encoded && r->have_len)
        return http_response__bad(r, HTTP_RESPONSE_E_LENGTH_AND_ENCODING);
    if (r->encoded && r->http10)
        return http_response__bad(r, HTTP_RESPONSE_E_ENCODING_HTTP10);
    if (r->chunked)
        r->phase = HTTP_RESPONSE_CHUNK_SIZE;
    else if (r->encoded || !r->have_len)
        r->phase = HTTP_RESPONSE_TO_EOF;
    else
        r->phase = r->left ? HTTP_RESPONSE_BODY : HTTP_RESPONSE_DONE;
    return 0;
}

static int http_response__hex(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* 1*HEXDIG [BWS ";" chunk-ext]; the extensions are only checked for
 * control characters, like every head byte. */
static int http_response__chunk_size(struct http_response *r)
{
    const char *l = r->line;
    uint64_t n = 0;
    int digits = 0, d;
    for (; (d = http_response__hex(*l)) >= 0; l++)
        if (++digits <= HTTP_RESPONSE_CHUNK_DIGITS)
            n = n * 16 + (uint64_t)d;
    l += strspn(l, " \t");
    if (digits == 0 || digits > HTTP_RESPONSE_CHUNK_DIGITS || (*l && *l != ';'))
        return http_response__bad(r, HTTP_RESPONSE_E_CHUNK_SIZE);
    r->left = n;
    r->phase = n ? HTTP_RESPONSE_CHUNK_DATA : HTTP_RESPONSE_TRAILER;
    return 0;
}

/* A whole line is in r->line. A line starting with white space folds onto
 * the header before it (obsolete): ignored, as RFC 9112 section 5.2 lets
 * a user agent do, unless that header frames the body. */
static int http_response__line(struct http_response *r)
{
    bool empty = r->line_len == 0, fold = r->line[0] == ' ' || r->line[0] == '\t';
    switch (r->phase) {
    case HTTP_RESPONSE_STATUS: return http_response__status_line(r);
    case HTTP_RESPONSE_HEADER:
        if (empty)
            return http_response__head_end(r);
        if (fold)
            return r->framing ? http_response__bad(r, HTTP_RESPONSE_E_FOLD) : 0;
        return http_response__header(r, true);
    case HTTP_RESPONSE_CHUNK_SIZE: return http_response__chunk_size(r);
    case HTTP_RESPONSE_CHUNK_END: r->phase = HTTP_RESPONSE_CHUNK_SIZE; return 0;
    case HTTP_RESPONSE_TRAILER:
        if (empty)
            r->phase = HTTP_RESPONSE_DONE;
        return empty || fold ? 0 : http_response__header(r, false);
    default: return 0;
    }
}

/* One byte of a line-shaped phase, checked as it comes so that the verdict
 * never depends on how the bytes were split into reads: the head's size,
 * no control character but HTAB, CR only right before LF, a non-HTTP peer
 * refused at its first bytes, a chunk-size line within the line limit, no
 * byte between chunk data and its CRLF. 1: the byte ended the line. */
static int http_response__byte(struct http_response *r, unsigned char ch)
{
    enum http_response_phase ph = r->phase;
    bool head = ph == HTTP_RESPONSE_STATUS || ph == HTTP_RESPONSE_HEADER ||
                ph == HTTP_RESPONSE_TRAILER;
    if (head && ++r->head > HTTP_RESPONSE_HEAD_MAX)
        return http_response__bad(r, HTTP_RESPONSE_E_HEAD_SIZE);
    if (ch == '\n') {
        r->cr = false;
        return 1;
    }
    if (r->cr)
        return http_response__bad(r, HTTP_RESPONSE_E_BARE_CR);
    if (ch == '\r') {
        r->cr = true;
        return 0;
    }
    if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
        return http_response__bad(r, HTTP_RESPONSE_E_CONTROL);
    if (ph == HTTP_RESPONSE_STATUS && r->line_len < 7 &&
        ch != (unsigned char)"HTTP/1."[r->line_len])
        return http_response__bad(r, HTTP_RESPONSE_E_STATUS_LINE);
    if (ph == HTTP_RESPONSE_CHUNK_END)
        return http_response__bad(r, HTTP_RESPONSE_E_CHUNK_END);
    if (r->line_len < sizeof r->line - 1)
        r->line[r->line_len++] = (char)ch;
    else if (ph == HTTP_RESPONSE_CHUNK_SIZE)
        return http_response__bad(r, HTTP_RESPONSE_E_CHUNK_SIZE);
    else
        r->line_long = true;
    return 0;
}

/* The run of bytes at d that http_response__byte would only append to the
 * line: printable or HTAB, no CR pending, room in the line and in the
 * head's budget, and the status line's first bytes those of "HTTP/1.".
 * Taken in one go (most of a head's bytes), the rest byte by byte. */
static size_t http_response__plain(struct http_response *r, const char *d, size_t n)
{
    enum http_response_phase ph = r->phase;
    bool head = ph == HTTP_RESPONSE_STATUS || ph == HTTP_RESPONSE_HEADER ||
                ph == HTTP_RESPONSE_TRAILER;
    size_t room = sizeof r->line - 1 - r->line_len, i = 0;
    if (r->cr || ph == HTTP_RESPONSE_CHUNK_END)
        return 0;
    if (ph == HTTP_RESPONSE_STATUS && r->line_len < 7) {
        /* a byte that differs is the byte path's to refuse */
        static const char proto[] = "HTTP/1.";
        size_t k = 7 - r->line_len < n ? 7 - r->line_len : n;
        if (memcmp(d, &proto[r->line_len], k) != 0)
            return 0;
    }
    if (head) {
        size_t budget = r->head < HTTP_RESPONSE_HEAD_MAX ? HTTP_RESPONSE_HEAD_MAX - r->head : 0;
        room = budget < room ? budget : room;
    }
    n = n < room ? n : room;
    while (i < n && http_response__plainc[(unsigned char)d[i]])
        i++;
    memcpy(r->line + r->line_len, d, i);
    r->line_len += i;
    if (head)
        r->head += i;
    return i;
}

/* Line-shaped phases: take the bytes up to the next LF into r->line (*took
 * of them), and act on the line once it is whole (CR dropped). */
static int http_response__line_step(struct http_response *r, const char *d, size_t n, size_t *took)
{
    enum http_response_phase ph = r->phase;
    bool head = ph == HTTP_RESPONSE_STATUS || ph == HTTP_RESPONSE_HEADER ||
                ph == HTTP_RESPONSE_TRAILER;
    int rc = 0;
    size_t i = 0;
    while (i < n && rc == 0) {
        i += http_response__plain(r, d + i, n - i);
        /* A line's CRLF in one step, as the byte path would take it: no CR
         * pending, both bytes within the head's budget. */
        if (i + 1 < n && d[i] == '\r' && d[i + 1] == '\n' && !r->cr &&
            (!head || r->head + 2 <= HTTP_RESPONSE_HEAD_MAX)) {
            r->head += head ? 2 : 0;
            i += 2;
            rc = 1;
        } else if (i < n) {
            rc = http_response__byte(r, (unsigned char)d[i++]);
        }
    }
    *took = i;
    if (rc <= 0)
        return rc;
    r->line[r->line_len] = '\0';
    rc = http_response__line(r);
    r->line_len = 0;
    r->line_long = false;
    return rc;
}

/* ---- the body ---- */

static void http_response__keep(struct http_response *r, const char *d, size_t n)
{
    size_t room = r->keep_cap - r->body_len;
    if (n > room)
        n = room;
    if (n == 0)
        return; /* keep may be NULL */
    memcpy(r->keep + r->body_len, d, n);
    r->body_len += n;
}

int http_response_feed(struct http_response *r, const char *d, size_t n, size_t *used)
{
    size_t off = 0, t = 0;
    while (off < n && r->phase != HTTP_RESPONSE_DONE && !r->error) {
        switch (r->phase) {
        case HTTP_RESPONSE_BODY:
        case HTTP_RESPONSE_CHUNK_DATA:
            t = n - off < r->left ? n - off : (size_t)r->left;
            http_response__keep(r, d + off, t);
            off += t;
            if ((r->left -= t) == 0)
                r->phase = r->phase == HTTP_RESPONSE_BODY ? HTTP_RESPONSE_DONE
                                                          : HTTP_RESPONSE_CHUNK_END;
            break;
        case HTTP_RESPONSE_TO_EOF:
            http_response__keep(r, d + off, n - off);
            off = n;
            break;
        default:
            if (http_response__line_step(r, d + off, n - off, &t) == 0)
                off += t; /* on error r->error ends the loop */
        }
    }
    r->got += off;
    *used = off;
    if (r->error)
        return -EPROTO;
    return r->phase == HTTP_RESPONSE_DONE ? HTTP_RESPONSE_COMPLETE : HTTP_RESPONSE_MORE;
}

int http_response_eof(struct http_response *r)
{
    if (r->error)
        return -EPROTO;
    if (r->phase == HTTP_RESPONSE_TO_EOF)
        r->phase = HTTP_RESPONSE_DONE;
    if (r->phase == HTTP_RESPONSE_DONE)
        return HTTP_RESPONSE_COMPLETE;
    return http_response__bad(r, r->got == 0 ? HTTP_RESPONSE_E_EMPTY : HTTP_RESPONSE_E_TRUNCATED);
}

bool http_response_reusable(const struct http_response *r)
{
    bool delimited = r->status == 204 || r->status == 304 || r->chunked ||
                     (r->have_len && !r->encoded);
    return r->phase == HTTP_RESPONSE_DONE && !r->error && !r->head_only && delimited && !r->close &&
           (!r->http10 || r->keep_alive);
}
