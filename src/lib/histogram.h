/* The bucket bounds of every duration histogram recoverd keeps (detection
 * and recovery time; the RTO and Prometheus work reuse them), in one place.
 * Fixed: the journal counts per bucket (store/journal.c, schema 5), so a
 * change here needs a migration that re-buckets, not an edit.
 *
 * Why these: Prometheus's default buckets (5 ms .. 10 s) cover what
 * recoverd sees most (a process exit is detected in milliseconds and a
 * restart verified in tens to hundreds of them; a check fault takes fall x
 * interval, 0.1 to 30 s), and 30 s, 1 min and 5 min add the slow starts
 * (databases, replacements) and the RTO targets operators state in
 * minutes. Beyond 5 min only the count matters: +Inf. */
#ifndef RECOVERD_LIB_HISTOGRAM_H
#define RECOVERD_LIB_HISTOGRAM_H

#include <stdint.h>

/* X(upper bound in ms, the same in seconds as Prometheus's "le" label). */
#define HISTOGRAM_BOUNDS(X)                                                                        \
    X(5, "0.005")                                                                                  \
    X(10, "0.01")                                                                                  \
    X(25, "0.025")                                                                                 \
    X(50, "0.05")                                                                                  \
    X(100, "0.1")                                                                                  \
    X(250, "0.25")                                                                                 \
    X(500, "0.5")                                                                                  \
    X(1000, "1")                                                                                   \
    X(2500, "2.5")                                                                                 \
    X(5000, "5")                                                                                   \
    X(10000, "10")                                                                                 \
    X(30000, "30")                                                                                 \
    X(60000, "60")                                                                                 \
    X(300000, "300")

#define HISTOGRAM__MS(ms, le) (ms),
static const int64_t histogram_bounds_ms[] = {HISTOGRAM_BOUNDS(HISTOGRAM__MS)};
#undef HISTOGRAM__MS

/* Buckets, the last one +Inf. */
enum { HISTOGRAM_BUCKETS = (int)(sizeof histogram_bounds_ms / sizeof histogram_bounds_ms[0]) + 1 };

#define HISTOGRAM__LE(ms, le) le,
/* Each bucket's "le" label, "+Inf" last. */
static const char *const histogram_le[HISTOGRAM_BUCKETS] = {HISTOGRAM_BOUNDS(HISTOGRAM__LE) "+Inf"};
#undef HISTOGRAM__LE

/* The bucket of a duration: the first whose bound is >= ms (Prometheus's
 * le), i.e. how many bounds lie below it. */
static inline unsigned histogram_bucket(int64_t ms)
{
    unsigned b = 0;
    while (b < HISTOGRAM_BUCKETS - 1 && histogram_bounds_ms[b] < ms)
        b++;
    return b;
}

#endif
