/* Giving the heap's free pages back to the kernel. */
#include "lib/heap.h"

#include <malloc.h>

/* Free memory at the top of the heap stays mapped up to this much; above
 * it glibc hands it back at once (brk), as before. Its default, 128 KiB,
 * is less than what one journal write with triggers allocates and frees
 * (SQLite gives each ephemeral table a fresh page cache of about 90 KiB):
 * every such write shrank the heap, which flushes the TLB of every CPU
 * (an IPI, slow on a virtual machine), and grew it again, faulting each
 * page back in. Measured (perf, 100 exits at once): brk and those page
 * faults were a third of the loop's time. heap_trim still gives back what
 * stays free past a second; this threshold is its slack (daemon.c). Set
 * before main, so SQLite's first allocations see it too. */
#define HEAP__TRIM_THRESHOLD (512u << 10)

__attribute__((constructor)) static void heap__threshold(void)
{
    mallopt(M_TRIM_THRESHOLD, HEAP__TRIM_THRESHOLD);
}

size_t heap_trim(size_t slack)
{
    struct mallinfo2 mi = mallinfo2();
    if (mi.fordblks <= slack)
        return 0;
    malloc_trim(0);
    return mi.fordblks;
}
