/* Text from outside (program output, server error words, request paths)
 * made safe to put in a log line or on a terminal: it cannot end the line,
 * forge a field, or send the terminal a control sequence. Shared by the
 * log (lib/log.c) and recoverctl's tables, so both read the same way. */
#ifndef RECOVERD_LIB_ESCAPE_H
#define RECOVERD_LIB_ESCAPE_H

#include <stdbool.h>
#include <stddef.h>

#define ESCAPE_QUOTE 1u /* also '"' -> \" (the text goes between quotes) */

/* s[0..n) into dst with '\\' -> \\, newline, CR and tab -> \n \r \t, and as
 * \xNN each byte of: other C0 controls, DEL, bytes that are not UTF-8,
 * and the characters that steer a terminal or a reader's eye (C1
 * controls, line and paragraph separators, bidirectional overrides).
 * Other valid UTF-8 is kept. Writes whole escapes and characters only,
 * as many as fit in cap - 1 bytes, then a NUL (when cap > 0); returns the
 * length of the whole escaped text (call with cap 0 to size a buffer). */
size_t escape_text(char *dst, size_t cap, const char *s, size_t n, unsigned flags);

/* s[0..n) may stand as a bare key=value value: not empty, and no space,
 * '=', '"' or anything escape_text would change. */
bool escape_bare_ok(const char *s, size_t n);

/* Bytes at the start of s[0..n) that are valid UTF-8 (n if all are): the
 * decoder escape_text uses, for whoever must refuse what is not text. */
size_t escape_utf8_span(const char *s, size_t n);

/* Columns s (escaped: UTF-8) takes on a terminal, one per character. */
size_t escape_width(const char *s);

#endif
