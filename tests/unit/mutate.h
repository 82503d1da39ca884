/* Seeded mutations of a valid input, for tests that feed a parser what a
 * careless user or a hostile peer might send. Deterministic: a failure
 * names its iteration, and the same seed repeats it. */
#ifndef RECOVERD_TEST_MUTATE_H
#define RECOVERD_TEST_MUTATE_H

#include <stddef.h>
#include <stdint.h>

struct mutator {
    uint64_t s; /* xorshift64 state, never 0 */
};

void mutate_seed(struct mutator *m, uint64_t seed);
uint32_t mutate_next(struct mutator *m);
/* One to four edits of buf[0..*len) within cap bytes: a flipped bit, a
 * byte of `alphabet` inserted, a span deleted or repeated, a cut. */
void mutate(struct mutator *m, char *buf, size_t *len, size_t cap, const char *alphabet);
/* A mutated copy of base[0..n) in a heap buffer of exactly its size *len
 * (one byte at least), so that ASan catches a read past its end. NULL
 * when out of memory; the caller frees it. */
char *mutate_copy(struct mutator *m, const char *base, size_t n, const char *alphabet, size_t *len);

#endif
