/* JSON text written straight into one growing buffer, for the large views
 * (GET /v1/services at 1,000 services: 441 KB) that a jansson tree would
 * cost tens of thousands of allocations to build and a second copy to
 * dump. Strings come out as json_dumps writes them (same escapes), so a
 * reader cannot tell the two apart. */
#ifndef RECOVERD_LIB_JSONW_H
#define RECOVERD_LIB_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Zero-initialised: an empty text. The caller puts keys and values in a
 * valid order; commas and colons are the writer's. */
struct jsonw {
    char *buf;   /* the text so far; owned; NULL while empty */
    size_t len;  /* bytes in buf */
    size_t cap;  /* bytes allocated at buf */
    bool more;   /* a value ended at this level: the next key or value needs a comma */
    bool failed; /* out of memory: later writes do nothing, jsonw_finish says NULL */
};

/* Free the text (NULL-safe fields); w is empty again. */
void jsonw_close(struct jsonw *w);
/* The text with a newline after it, NUL-terminated, *len bytes (without the
 * NUL); the caller frees it. NULL when out of memory (w is freed then too).
 * w is empty again either way. */
char *jsonw_finish(struct jsonw *w, size_t *len);

void jsonw_object(struct jsonw *w); /* { */
void jsonw_object_end(struct jsonw *w);
void jsonw_array(struct jsonw *w); /* [ */
void jsonw_array_end(struct jsonw *w);
/* A member's key; its value follows. */
void jsonw_key(struct jsonw *w, const char *key);
/* The same for a key written in the source as a string literal that needs
 * no escape ("uptime_ms"): its text, quotes and colon are the compiler's,
 * copied inline (a listing at 1,000 services writes 25,000 keys). */
#define jsonw_key_lit(w, key) jsonw_key_text((w), "\"" key "\":", sizeof(key) + 2)
/* s as a JSON string, escaped as json_dumps does (", \, control
 * characters); a byte that is not UTF-8 becomes U+FFFD (jansson would
 * refuse the whole string). NULL: null. */
void jsonw_string(struct jsonw *w, const char *s);
void jsonw_int(struct jsonw *w, int64_t v);
/* v / 10^places as a JSON real, exactly ("12.345", "7.0"): a reader parses
 * the double nearest to it, the same one (double)v / 10^places gives for v
 * under 2^53. places <= 9. */
void jsonw_decimal(struct jsonw *w, uint64_t v, unsigned places);
void jsonw_bool(struct jsonw *w, bool v);
void jsonw_null(struct jsonw *w);

/* Room for n more bytes (and a NUL) at once: a writer that knows about
 * how long its text will be grows its buffer once. false: out of memory
 * (w failed). */
bool jsonw_reserve(struct jsonw *w, size_t n);

/* jsonw_key_lit's: text is a key's JSON text with its colon. Inline, so
 * that a constant n copies without a call. */
static inline void jsonw_key_text(struct jsonw *w, const char *text, size_t n)
{
    if (w->len + n + 1 < w->cap || jsonw_reserve(w, n + 1)) {
        char *p = w->buf + w->len;
        if (w->more)
            *p++ = ',';
        memcpy(p, text, n);
        w->len = (size_t)(p + n - w->buf);
    }
    w->more = false;
}

#endif
