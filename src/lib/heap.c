/* Giving the heap's free pages back to the kernel. */
#include "lib/heap.h"

#include <malloc.h>

size_t heap_trim(size_t slack)
{
    struct mallinfo2 mi = mallinfo2();
    if (mi.fordblks <= slack)
        return 0;
    malloc_trim(0);
    return mi.fordblks;
}
