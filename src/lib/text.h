/* Words for people in fixed buffers (observation reasons, error strings):
 * cut on purpose when they do not fit, at a character boundary, and marked.
 * Never for machine-readable text (JSON, log values, identities), which
 * must not be cut at all. */
#ifndef RECOVERD_LIB_TEXT_H
#define RECOVERD_LIB_TEXT_H

#include <stddef.h>

#define TEXT_CUT_MARK "..." /* ends a cut text */

/* snprintf into buf (size > 0), except that a text that does not fit ends
 * with TEXT_CUT_MARK, cut before the UTF-8 character it would have split.
 * Returns the length written. */
size_t text_format(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
