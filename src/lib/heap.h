/* Giving memory back to the kernel. glibc keeps what is freed in the
 * middle of its heap resident: one GET /v1/services at 1,000 services
 * builds and frees about 5 MiB of JSON, which then stayed in RSS for good
 * (14.4 -> 19.3 MiB, bench/scale's RSS at 1,000; malloc_trim took it back
 * to 14.3). And the code only start-up runs (the YAML parser, preflight,
 * SQLite's schema and migration paths, the dynamic linker) stays mapped:
 * 4.7 MiB of recoverd's 6 MiB RSS at 10 services were file pages of its
 * libraries, most of them mapped by the kernel's fault-around (64 KiB
 * around each page touched), not used again. */
#ifndef RECOVERD_LIB_HEAP_H
#define RECOVERD_LIB_HEAP_H

#include <stddef.h>

/* When more than slack bytes of the heap are free, hand the whole free
 * pages back (malloc_trim); returns the free bytes seen then, 0 when it
 * did nothing. Cheap when there is nothing to do (mallinfo2); a trim of a
 * few MiB takes well under a millisecond. glibc counts the pages it gave
 * back as free still, so past slack this trims at every call: what the
 * loop freed since is given back within a call (counting from the free
 * bytes left after a trim instead kept 0.7 MiB more resident at 1,000
 * services). Loop thread. */
size_t heap_trim(size_t slack);

/* Unmap the clean file pages of read-only mappings (code and constants of
 * recoverd and its libraries; never a page written since it was mapped,
 * such as relocations): the page cache keeps them, and what runs again
 * maps back in on its next fault. Call when start-up is done. Returns the
 * resident KiB unmapped. Reads /proc/self/smaps: a few hundred
 * microseconds, once. */
size_t heap_shed_code(void);

#endif
