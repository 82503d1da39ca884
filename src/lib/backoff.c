/* Jitter spreads the retries of things that failed together (a shared
 * cause), so they do not all come back at the same instant. */
#include "lib/backoff.h"

#include <stdlib.h>

uint64_t backoff_jitter(uint64_t ms)
{
    if (ms < 5)
        return ms;
    uint64_t span = ms * 2 / 5;
    return ms - ms / 5 + (uint64_t)random() % (span + 1); /* jitter, never an outcome */
}
