/* Giving memory back to the kernel: the heap's free pages, and the code
 * pages only start-up ran. */
#include "lib/heap.h"

#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

size_t heap_trim(size_t slack)
{
    struct mallinfo2 mi = mallinfo2();
    if (mi.fordblks <= slack)
        return 0;
    malloc_trim(0);
    return mi.fordblks;
}

/* One mapping of /proc/self/smaps, judged at its last field. */
struct heap__map {
    uintptr_t from, to;
    bool file_ro; /* a private, read-only mapping of a file */
    size_t rss_kib;
    size_t anon_kib; /* pages written since mapped (copies): never dropped */
};

static size_t heap__shed(const struct heap__map *m)
{
    if (!m->file_ro || m->anon_kib || !m->rss_kib)
        return 0;
    return madvise((void *)m->from, m->to - m->from, MADV_DONTNEED) == 0 ? m->rss_kib : 0;
}

size_t heap_shed_code(void)
{
    FILE *f = fopen("/proc/self/smaps", "re");
    char *line = NULL;
    size_t cap = 0, kib = 0, n;
    struct heap__map m = {0};
    if (!f)
        return 0;
    while (getline(&line, &cap, f) > 0) {
        unsigned long from, to;
        char perms[8], path[2];
        int got = sscanf(line, "%lx-%lx %7s %*s %*s %*s %1s", &from, &to, perms, path);
        if (got >= 3) {
            kib += heap__shed(&m);
            m = (struct heap__map){
                .from = from,
                .to = to,
                .file_ro = got == 4 && path[0] == '/' && perms[1] == '-' && perms[3] == 'p',
            };
        } else if (sscanf(line, "Rss: %zu kB", &n) == 1) {
            m.rss_kib = n;
        } else if (sscanf(line, "Anonymous: %zu kB", &n) == 1) {
            m.anon_kib = n;
        }
    }
    kib += heap__shed(&m);
    free(line);
    fclose(f);
    return kib;
}
