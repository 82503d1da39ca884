/* Escaping outside text for log lines and terminals: see escape.h. */
#include "lib/escape.h"

#include <stdint.h>
#include <string.h>

/* Bytes of the valid UTF-8 character at s[0..n), with its code point in
 * *cp; 0 if s does not start with one (overlong forms, surrogates and
 * values past U+10FFFF are not UTF-8). */
static size_t escape__utf8(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2, v = c & 0x1Fu, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, v = c & 0x0Fu, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, v = c & 0x07u, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3Fu);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

/* Characters that are valid text but act on a terminal (C1 controls: 0x9B
 * is CSI on some) or reorder or break what a reader sees (line and
 * paragraph separators, bidirectional marks and overrides). */
static bool escape__steers(uint32_t cp)
{
    return (cp >= 0x80 && cp <= 0x9F) || cp == 0x061C || (cp >= 0x200E && cp <= 0x200F) ||
           (cp >= 0x2028 && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

/* "\xNN" for each of the n bytes at s into out; returns the bytes written. */
static size_t escape__hex(const unsigned char *s, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[4 * i] = '\\';
        out[4 * i + 1] = 'x';
        out[4 * i + 2] = digits[s[i] >> 4];
        out[4 * i + 3] = digits[s[i] & 0xF];
    }
    return 4 * n;
}

/* The escaped form of the character (or stray byte) at s[0..n) into unit
 * (16 bytes: four \xNN at most); returns its length, *took the bytes of s
 * it stands for. */
static size_t escape__unit(const unsigned char *s, size_t n, unsigned flags, char *unit,
                           size_t *took)
{
    static const char named[] =
        {['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't', ['\\'] = '\\', ['"'] = '"'};
    uint32_t cp = 0;
    size_t len = escape__utf8(s, n, &cp);
    *took = len ? len : 1;
    if (!len || (len > 1 && escape__steers(cp)) || cp < 0x20 || cp == 0x7F) {
        if (cp < sizeof named && named[cp] && len) {
            unit[0] = '\\';
            unit[1] = named[cp];
            return 2;
        }
        return escape__hex(s, *took, unit);
    }
    if (cp == '\\' || (cp == '"' && (flags & ESCAPE_QUOTE))) {
        unit[0] = '\\';
        unit[1] = (char)cp;
        return 2;
    }
    memcpy(unit, s, len);
    return len;
}

size_t escape_text(char *dst, size_t cap, const char *s, size_t n, unsigned flags)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t out = 0, written = 0, room = cap ? cap - 1 : 0;
    for (size_t i = 0; i < n;) {
        char unit[16];
        size_t took;
        size_t k = escape__unit(u + i, n - i, flags, unit, &took);
        if (dst && written == out && out + k <= room) { /* nothing cut so far, and it fits */
            memcpy(dst + out, unit, k);
            written = out + k;
        }
        out += k;
        i += took;
    }
    if (cap)
        dst[written] = '\0';
    return out;
}

bool escape_bare_ok(const char *s, size_t n)
{
    if (!n || memchr(s, ' ', n) || memchr(s, '=', n) || memchr(s, '"', n))
        return false;
    return escape_text(NULL, 0, s, n, ESCAPE_QUOTE) == n; /* escaping only ever adds bytes */
}

size_t escape_utf8_span(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, k;
    uint32_t cp;
    while (i < n && (k = escape__utf8(u + i, n - i, &cp)))
        i += k;
    return i;
}

size_t escape_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}
