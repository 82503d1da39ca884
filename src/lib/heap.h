/* Giving the heap's free pages back to the kernel. glibc keeps what is
 * freed in the middle of its heap resident: one GET /v1/services at 1,000
 * services builds and frees about 5 MiB of JSON, which then stayed in RSS
 * for good (14.4 -> 19.3 MiB, bench/scale's RSS at 1,000; malloc_trim
 * took it back to 14.3). */
#ifndef RECOVERD_LIB_HEAP_H
#define RECOVERD_LIB_HEAP_H

#include <stddef.h>

/* When more than slack bytes of the heap are free, hand the whole free
 * pages back (malloc_trim); returns the free bytes seen then, 0 when it
 * did nothing. Cheap when there is nothing to do (mallinfo2); a trim of a
 * few MiB takes well under a millisecond. Loop thread. */
size_t heap_trim(size_t slack);

#endif
