/* Hiding passwords in text: see secret.h. */
#include "lib/secret.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct secret__out {
    char *buf;  /* the rewritten text */
    size_t len; /* bytes written, without the NUL */
    size_t cap; /* bytes of buf */
};

static void secret__put(struct secret__out *o, const char *s, size_t n)
{
    size_t room = o->cap - 1 - o->len;
    if (n > room)
        n = room;
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

/* A libpq value after "password=": 'quoted' (\' and \\ escaped) or up to
 * the next blank; a quote of the surrounding message ends it too. */
static size_t secret__value_len(const char *v)
{
    size_t i = 0;
    if (v[0] == '\'') {
        for (i = 1; v[i] && v[i] != '\''; i++)
            if (v[i] == '\\' && v[i + 1])
                i++;
        return v[i] ? i + 1 : i;
    }
    while (v[i] && !isspace((unsigned char)v[i]) && v[i] != '"')
        i++;
    return i;
}

/* At t: "password" (a whole word) then '=' with optional blanks. Returns
 * the bytes up to the value, 0 if t is not there. */
static size_t secret__key_len(const char *text, const char *t)
{
    size_t i = 8;
    if (strncasecmp(t, "password", 8) != 0)
        return 0;
    if (t > text && (isalnum((unsigned char)t[-1]) || t[-1] == '_'))
        return 0;
    while (t[i] == ' ' || t[i] == '\t')
        i++;
    if (t[i] != '=')
        return 0;
    for (i++; t[i] == ' ' || t[i] == '\t'; i++)
        ;
    return i;
}

/* At t: "://user:PASSWORD@". Returns the bytes up to PASSWORD and sets
 * *pass to its length; 0 if t is not there. */
static size_t secret__uri_len(const char *t, size_t *pass)
{
    size_t i, colon = 0;
    if (strncmp(t, "://", 3) != 0)
        return 0;
    for (i = 3; t[i] && !strchr("/@?#\"' \t\n", t[i]); i++)
        if (t[i] == ':' && !colon)
            colon = i;
    if (t[i] != '@' || !colon)
        return 0;
    *pass = i - colon - 1;
    return colon + 1;
}

void secret_scrub(char *text, size_t size, const char *secret)
{
    size_t slen = secret ? strlen(secret) : 0, k, v;
    struct secret__out o = {.buf = malloc(size), .cap = size};
    const char *t = text;
    if (!size)
        return;
    if (!o.buf) {
        text[0] = '\0'; /* nothing is better than a leak */
        return;
    }
    while (*t) {
        if (slen && strncmp(t, secret, slen) == 0) {
            secret__put(&o, SECRET_MASK, strlen(SECRET_MASK));
            t += slen;
        } else if ((k = secret__key_len(text, t)) > 0) {
            secret__put(&o, t, k);
            secret__put(&o, SECRET_MASK, strlen(SECRET_MASK));
            t += k + secret__value_len(t + k);
        } else if ((k = secret__uri_len(t, &v)) > 0) {
            secret__put(&o, t, k);
            secret__put(&o, SECRET_MASK, strlen(SECRET_MASK));
            t += k + v;
        } else {
            secret__put(&o, t++, 1);
        }
    }
    o.buf[o.len] = '\0';
    memcpy(text, o.buf, o.len + 1);
    free(o.buf);
}
