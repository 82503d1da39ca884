/* What the libFuzzer targets share: the entry point's prototype, a check
 * that aborts (so a broken property is a crash libFuzzer saves), and a
 * hash of the input to derive choices from without a prefix in the seeds. */
#ifndef RECOVERD_FUZZ_FUZZ_H
#define RECOVERD_FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv); /* optional */

/* A property of the code under test; its failure is a finding. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond);            \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* FNV-1a of the input: choices (split points, chunk sizes) that follow the
 * bytes, so a seed stays a plain request, response, url or config. */
static inline uint64_t fuzz_hash(const uint8_t *d, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ d[i]) * 1099511628211ULL;
    return h;
}

/* xorshift64: the next choice from a state seeded with fuzz_hash. */
static inline uint64_t fuzz_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

#endif
