#include "mutate.h"

#include <stdlib.h>
#include <string.h>

void mutate_seed(struct mutator *m, uint64_t seed)
{
    m->s = seed ? seed : 0x9e3779b97f4a7c15ULL;
}

uint32_t mutate_next(struct mutator *m)
{
    m->s ^= m->s << 13;
    m->s ^= m->s >> 7;
    m->s ^= m->s << 17;
    return (uint32_t)(m->s >> 32);
}

void mutate(struct mutator *m, char *buf, size_t *len, size_t cap, const char *alphabet)
{
    unsigned edits = 1 + mutate_next(m) % 4;
    size_t n_alpha = strlen(alphabet) + 1; /* the NUL byte too */
    for (unsigned e = 0; e<edits && * len> 0; e++) {
        size_t pos = mutate_next(m) % *len;
        size_t span = 1 + mutate_next(m) % 40;
        switch (mutate_next(m) % 5) {
        case 0: buf[pos] ^= (char)(1u << (mutate_next(m) % 8)); break;
        case 1:
            if (*len + 1 > cap)
                break;
            memmove(buf + pos + 1, buf + pos, *len - pos);
            buf[pos] = alphabet[mutate_next(m) % n_alpha];
            (*len)++;
            break;
        case 2:
            if (span > *len - pos)
                span = *len - pos;
            memmove(buf + pos, buf + pos + span, *len - pos - span);
            *len -= span;
            break;
        case 3: {
            size_t from = mutate_next(m) % *len;
            if (span > *len - from)
                span = *len - from;
            if (*len + span > cap)
                break;
            memmove(buf + pos + span, buf + pos, *len - pos);
            /* from may have moved with the tail */
            memmove(buf + pos, buf + (from >= pos ? from + span : from), span);
            *len += span;
            break;
        }
        default: *len = pos;
        }
    }
}

char *mutate_copy(struct mutator *m, const char *base, size_t n, const char *alphabet, size_t *len)
{
    size_t cap = 2 * n + 1;
    char *work = malloc(cap);
    if (!work)
        return NULL;
    memcpy(work, base, n);
    *len = n;
    mutate(m, work, len, cap, alphabet);
    char *exact = malloc(*len ? *len : 1);
    if (exact)
        memcpy(exact, work, *len);
    free(work);
    return exact;
}
