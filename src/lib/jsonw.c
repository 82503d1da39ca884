/* A JSON writer into one growing buffer: see jsonw.h. */
#include "lib/jsonw.h"

#include <stdlib.h>
#include <string.h>

#include "lib/escape.h"

#define JSONW__MIN_CAP 4096 /* bytes: the first allocation, doubled from there */

/* Grow for n more bytes and a NUL; false (and w failed) when out of memory. */
static bool jsonw__grow(struct jsonw *w, size_t n)
{
    if (w->failed)
        return false;
    size_t cap = w->cap ? w->cap : JSONW__MIN_CAP;
    while (cap < w->len + n + 1)
        cap *= 2;
    char *p = realloc(w->buf, cap);
    if (!p) {
        w->failed = true;
        w->cap = 0; /* no room ever again: every write ends in here */
        return false;
    }
    w->buf = p;
    w->cap = cap;
    return true;
}

/* Room for n more bytes and a NUL. A failed w has cap 0: never room. The
 * fast path is inline: a listing is tens of thousands of small pieces. */
static inline bool jsonw__room(struct jsonw *w, size_t n)
{
    return w->len + n < w->cap || jsonw__grow(w, n);
}

bool jsonw_reserve(struct jsonw *w, size_t n)
{
    return jsonw__room(w, n);
}

static inline void jsonw__put(struct jsonw *w, const char *s, size_t n)
{
    if (!jsonw__room(w, n))
        return;
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

static inline void jsonw__putc(struct jsonw *w, char c)
{
    if (jsonw__room(w, 1))
        w->buf[w->len++] = c;
}

/* A value (or key) starts: after a sibling, a comma. */
static inline void jsonw__begin(struct jsonw *w)
{
    if (w->more)
        jsonw__putc(w, ',');
    w->more = false;
}

void jsonw_close(struct jsonw *w)
{
    free(w->buf);
    *w = (struct jsonw){0};
}

char *jsonw_finish(struct jsonw *w, size_t *len)
{
    jsonw__putc(w, '\n');
    char *text = w->failed ? NULL : w->buf;
    if (text) {
        text[w->len] = '\0';
        *len = w->len;
    } else {
        free(w->buf);
    }
    *w = (struct jsonw){0};
    return text;
}

void jsonw_object(struct jsonw *w)
{
    jsonw__begin(w);
    jsonw__putc(w, '{');
}

void jsonw_object_end(struct jsonw *w)
{
    jsonw__putc(w, '}');
    w->more = true;
}

void jsonw_array(struct jsonw *w)
{
    jsonw__begin(w);
    jsonw__putc(w, '[');
}

void jsonw_array_end(struct jsonw *w)
{
    jsonw__putc(w, ']');
    w->more = true;
}

/* The escape of ASCII byte c, as jansson's dump writes it (\u with
 * upper-case hex for the controls without a short form); NULL: c as is. */
static const char *jsonw__escape(unsigned char c, char *u)
{
    static const char hex[] = "0123456789ABCDEF";
    switch (c) {
    case '"': return "\\\"";
    case '\\': return "\\\\";
    case '\b': return "\\b";
    case '\f': return "\\f";
    case '\n': return "\\n";
    case '\r': return "\\r";
    case '\t': return "\\t";
    default: break;
    }
    if (c >= 0x20)
        return NULL;
    memcpy(u, "\\u00", 4);
    u[4] = hex[c >> 4];
    u[5] = hex[c & 15];
    u[6] = '\0';
    return u;
}

/* Bytes of the UTF-8 character at s[0..n) (its lead byte >= 0x80), 0 if
 * s does not start with a valid one. */
static size_t jsonw__char(const unsigned char *s, size_t n)
{
    size_t len = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : 2;
    if (len > n)
        return 0;
    return escape_utf8_span((const char *)s, len) == len ? len : 0;
}

/* s[0..n), from its first byte that is not plain ASCII on: runs that
 * need nothing are copied whole. */
static void jsonw__text_rest(struct jsonw *w, const unsigned char *s, size_t n)
{
    static const char replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */
    size_t run = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            i++;
            continue;
        }
        size_t k = c < 0x80 ? 1 : jsonw__char(s + i, n - i);
        if (k > 1) { /* valid UTF-8, kept */
            i += k;
            continue;
        }
        jsonw__put(w, (const char *)s + run, i - run);
        char u[8];
        const char *e = k ? jsonw__escape(c, u) : replacement;
        jsonw__put(w, e, strlen(e));
        run = ++i;
    }
    jsonw__put(w, (const char *)s + run, n - run);
}

/* Does any of the 8 bytes of v need more than a copy (a control, '"',
 * '\\' or a byte >= 0x80)? Each test is the classic "has a zero byte"
 * (x - 0x01..) & ~x & 0x80..: it may flag a byte after one that truly
 * matches, never a word with none, which is all that is asked here. */
static inline bool jsonw__special8(uint64_t v)
{
    const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
    uint64_t quote = v ^ (ones * '"'), slash = v ^ (ones * '\\');
    uint64_t hit = ((v - ones * 0x20) & ~v) | ((quote - ones) & ~quote) |
                   ((slash - ones) & ~slash) | v;
    return (hit & high) != 0;
}

/* s[0..n) between quotes. Its plain ASCII start (all of it, for nearly
 * every string a view has) is copied as it is scanned, eight bytes at a
 * time: a listing at 1,000 services writes 15,000 strings, and the byte
 * loop was half of its instructions. */
static void jsonw__text(struct jsonw *w, const unsigned char *s, size_t n)
{
    if (!jsonw__room(w, n + 2))
        return;
    char *out = w->buf + w->len;
    size_t i = 0;
    *out++ = '"';
    for (uint64_t v; i + 8 <= n; i += 8) {
        memcpy(&v, s + i, 8);
        if (jsonw__special8(v))
            break;
        memcpy(out + i, &v, 8);
    }
    for (; i < n; i++) {
        unsigned char c = s[i];
        if (c < 0x20 || c == '"' || c == '\\' || c >= 0x80)
            break;
        out[i] = (char)c;
    }
    w->len += 1 + i;
    if (i < n)
        jsonw__text_rest(w, s + i, n - i);
    jsonw__putc(w, '"');
}

void jsonw_key(struct jsonw *w, const char *key)
{
    jsonw__begin(w);
    jsonw__text(w, (const unsigned char *)key, strlen(key));
    jsonw__putc(w, ':');
}

void jsonw_string(struct jsonw *w, const char *s)
{
    if (!s) {
        jsonw_null(w);
        return;
    }
    jsonw__begin(w);
    jsonw__text(w, (const unsigned char *)s, strlen(s));
    w->more = true;
}

/* The decimal digits of v written backwards from end; returns the first. */
static char *jsonw__digits(uint64_t v, char *end)
{
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return end;
}

void jsonw_int(struct jsonw *w, int64_t v)
{
    char buf[24], *end = buf + sizeof buf;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    char *p = jsonw__digits(u, end);
    if (v < 0)
        *--p = '-';
    jsonw__begin(w);
    jsonw__put(w, p, (size_t)(end - p));
    w->more = true;
}

void jsonw_decimal(struct jsonw *w, uint64_t v, unsigned places)
{
    static const uint64_t pow10[] = {1,      10,      100,      1000,      10000,
                                     100000, 1000000, 10000000, 100000000, 1000000000};
    char buf[48], *end = buf + sizeof buf;
    uint64_t scale = pow10[places < 10 ? places : 9];
    uint64_t frac = v % scale;
    char *p = end;
    unsigned digits = places;
    while (digits && frac % 10 == 0) { /* trailing zeros go, one digit stays */
        frac /= 10;
        digits--;
    }
    if (!digits) {
        *--p = '0';
    } else {
        for (unsigned i = 0; i < digits; i++, frac /= 10)
            *--p = (char)('0' + frac % 10);
    }
    *--p = '.';
    p = jsonw__digits(v / scale, p);
    jsonw__begin(w);
    jsonw__put(w, p, (size_t)(end - p));
    w->more = true;
}

void jsonw_bool(struct jsonw *w, bool v)
{
    jsonw__begin(w);
    jsonw__put(w, v ? "true" : "false", v ? 4 : 5);
    w->more = true;
}

void jsonw_null(struct jsonw *w)
{
    jsonw__begin(w);
    jsonw__put(w, "null", 4);
    w->more = true;
}
