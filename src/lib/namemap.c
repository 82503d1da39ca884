/* Open addressing with linear probing at a load of at most 3/4: a miss
 * ends at the first empty slot, and removal shifts the following entries
 * back so every entry stays reachable from its home slot. */
#include "lib/namemap.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct namemap__slot {
    const char *key; /* NULL: empty */
    void *value;
    uint64_t hash; /* compared before the key: most probes end without a strcmp */
};

#define NAMEMAP__MIN_CAP 16

uint64_t namemap_hash(const char *key)
{
    /* FNV-1a, then a final mix so that the low bits depend on every byte. */
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 0x100000001b3ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

/* The slot holding key, or the empty slot where it would go. */
static size_t namemap__find(const struct namemap *m, const char *key, uint64_t h)
{
    size_t mask = m->cap - 1, i = (size_t)h & mask;
    while (m->slots[i].key && (m->slots[i].hash != h || strcmp(m->slots[i].key, key) != 0))
        i = (i + 1) & mask;
    return i;
}

static int namemap__grow(struct namemap *m)
{
    size_t cap = m->cap ? m->cap * 2 : NAMEMAP__MIN_CAP;
    struct namemap__slot *v = calloc(cap, sizeof *v);
    if (!v)
        return -ENOMEM;
    struct namemap bigger = {.slots = v, .cap = cap, .n = m->n};
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key)
            v[namemap__find(&bigger, m->slots[i].key, m->slots[i].hash)] = m->slots[i];
    free(m->slots);
    *m = bigger;
    return 0;
}

int namemap_put(struct namemap *m, const char *key, void *value)
{
    uint64_t h = namemap_hash(key);
    if (m->cap) {
        size_t i = namemap__find(m, key, h);
        if (m->slots[i].key) {
            m->slots[i].key = key; /* the caller's current copy of the name */
            m->slots[i].value = value;
            return 0;
        }
    }
    if ((m->n + 1) * 4 > m->cap * 3) {
        int r = namemap__grow(m);
        if (r < 0)
            return r;
    }
    m->slots[namemap__find(m, key, h)] = (struct namemap__slot){key, value, h};
    m->n++;
    return 0;
}

void *namemap_get(const struct namemap *m, const char *key)
{
    if (!m->n)
        return NULL;
    const struct namemap__slot *s = &m->slots[namemap__find(m, key, namemap_hash(key))];
    return s->key ? s->value : NULL;
}

/* Whether home (an entry's first slot) lies cyclically in (hole, i]: the
 * entry at i may then not move back into the hole. */
static bool namemap__between(size_t hole, size_t home, size_t i)
{
    return hole <= i ? hole < home && home <= i : hole < home || home <= i;
}

void *namemap_remove(struct namemap *m, const char *key)
{
    if (!m->n)
        return NULL;
    size_t mask = m->cap - 1, hole = namemap__find(m, key, namemap_hash(key));
    if (!m->slots[hole].key)
        return NULL;
    void *value = m->slots[hole].value;
    for (size_t i = (hole + 1) & mask; m->slots[i].key; i = (i + 1) & mask) {
        size_t home = (size_t)m->slots[i].hash & mask;
        if (namemap__between(hole, home, i))
            continue;
        m->slots[hole] = m->slots[i];
        hole = i;
    }
    m->slots[hole] = (struct namemap__slot){0};
    m->n--;
    return value;
}

void namemap_clear(struct namemap *m)
{
    if (m->cap)
        memset(m->slots, 0, m->cap * sizeof *m->slots);
    m->n = 0;
}

void namemap_free(struct namemap *m)
{
    free(m->slots);
    *m = (struct namemap){0};
}
