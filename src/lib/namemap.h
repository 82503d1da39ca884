/* Names to pointers in O(1): an open-addressing table (linear probing,
 * backward-shift removal, so no tombstones pile up) for lookups by name
 * on hot paths (a service by its name on every API call or dependency).
 * Keys are borrowed: each must stay valid and unchanged while mapped. */
#ifndef RECOVERD_LIB_NAMEMAP_H
#define RECOVERD_LIB_NAMEMAP_H

#include <stddef.h>
#include <stdint.h>

struct namemap__slot;

/* Zero-initialised: an empty map. */
struct namemap {
    struct namemap__slot *slots; /* cap of them; NULL while cap is 0 */
    size_t cap;                  /* a power of two, or 0 */
    size_t n;                    /* keys mapped */
};

/* The hash a key's slot derives from (its low bits pick the first slot). */
uint64_t namemap_hash(const char *key);
/* Map key to value (replacing what key mapped to); 0 or -ENOMEM (the map
 * is unchanged then). value must not be NULL. */
int namemap_put(struct namemap *m, const char *key, void *value);
/* What key maps to, or NULL. */
void *namemap_get(const struct namemap *m, const char *key);
/* Unmap key; what it mapped to, or NULL. */
void *namemap_remove(struct namemap *m, const char *key);
/* Unmap every key, keeping the slots for reuse. */
void namemap_clear(struct namemap *m);
/* Free the slots; m is an empty map again. */
void namemap_free(struct namemap *m);

#endif
