/* Cutting words for people: see text.h. */
#include "lib/text.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* How many of the first len bytes of s hold whole UTF-8 characters: the
 * last sequence is dropped if the cut left it short. Bytes that are not
 * UTF-8 are kept as they are. */
static size_t text__whole(const char *s, size_t len)
{
    size_t i = len;
    while (i > 0 && len - i < 3 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
        i--; /* back over continuation bytes (10xxxxxx) */
    if (i == 0)
        return len;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    return len - (i - 1) < need ? i - 1 : len;
}

size_t text_format(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    /* Started just above; clang-analyzer 14 loses track of it here. */
    // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
    int n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    if (n < 0) {
        buf[0] = '\0';
        return 0;
    }
    if ((size_t)n < size)
        return (size_t)n;
    size_t mark = size > sizeof TEXT_CUT_MARK ? sizeof TEXT_CUT_MARK - 1 : 0; /* if it fits */
    size_t keep = text__whole(buf, size - 1 - mark);
    memcpy(buf + keep, TEXT_CUT_MARK, mark);
    buf[keep + mark] = '\0';
    return keep + mark;
}
