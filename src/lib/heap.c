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

/* Free memory at the top of the heap stays mapped up to this much; above
 * it glibc hands it back at once (brk). Its default, 128 KiB, is less
 * than what one journal write with triggers allocates and frees (SQLite
 * gives each ephemeral table a fresh page cache of about 90 KiB): every
 * such write shrank the heap, which flushes the TLB of every CPU (an IPI,
 * slow on a virtual machine), and grew it again, faulting each page back
 * in. Measured (perf, 100 exits at once): brk and those page faults were
 * a third of the loop's time. heap_trim still gives back what stays free
 * past a second; this threshold is its slack (daemon.c). */
#define HEAP__TRIM_THRESHOLD (4u << 20)

/* Blocks from this size up are mapped by themselves and unmapped when
 * freed. glibc's default, 128 KiB, made every large API answer (GET
 * /v1/services: 441 KB at 1,000 services) fresh pages: on this VM a page
 * faulted in costs 10-17 us (shadow page tables), 1.5-2.5 ms per listing,
 * most of its time (bench/scale, perf). From the heap, a listing asked
 * again reuses the pages the last one freed, until heap_trim gives them
 * back. Setting the trim threshold stops glibc from moving this one by
 * itself, so it is set too. Both before main, so SQLite's first
 * allocations see them. */
#define HEAP__MMAP_THRESHOLD (4u << 20)

__attribute__((constructor)) static void heap__thresholds(void)
{
    mallopt(M_TRIM_THRESHOLD, HEAP__TRIM_THRESHOLD);
    mallopt(M_MMAP_THRESHOLD, HEAP__MMAP_THRESHOLD);
}

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
