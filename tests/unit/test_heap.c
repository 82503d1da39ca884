/* lib/heap: free heap pages and start-up's code pages go back to the
 * kernel, and what runs afterwards still works. */
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/heap.h"

/* KiB of one line of /proc/self/status ("RssAnon:", "RssFile:"). */
static long status_kib(const char *key)
{
    char line[256];
    long kib = -1;
    FILE *f = fopen("/proc/self/status", "r");
    assert_non_null(f);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, strlen(key)) == 0)
            kib = strtol(line + strlen(key), NULL, 10);
    fclose(f);
    assert_true(kib >= 0);
    return kib;
}

#define BLOCKS 256
#define BLOCK (64 << 10) /* under glibc's mmap threshold: these come from the heap */

/* 16 MiB written then freed in the middle of the heap (a small block
 * after each keeps them from the top, which glibc trims by itself). */
static void fill_and_free(char **big, char **pin)
{
    for (int i = 0; i < BLOCKS; i++) {
        if (!big[i])
            assert_non_null(big[i] = malloc(BLOCK));
        memset(big[i], 0x5a, BLOCK);
        if (!pin[i])
            assert_non_null(pin[i] = malloc(32));
    }
    for (int i = 0; i < BLOCKS; i++) {
        free(big[i]);
        big[i] = NULL;
    }
}

static void trim_gives_freed_pages_back(void **state)
{
    (void)state;
    char *big[BLOCKS] = {0}, *pin[BLOCKS] = {0};
    heap_trim(512 << 10); /* whatever the runtime left */
    fill_and_free(big, pin);
    long before = status_kib("RssAnon:");
    assert_true(heap_trim(512 << 10) >= (size_t)BLOCKS * BLOCK / 2);
    long after = status_kib("RssAnon:");
    assert_true(before - after >= BLOCKS * (BLOCK >> 10) / 2);
    /* Used and freed again: given back again. */
    fill_and_free(big, pin);
    assert_true(status_kib("RssAnon:") - after >= BLOCKS * (BLOCK >> 10) / 2);
    assert_true(heap_trim(512 << 10) > 0);
    assert_true(status_kib("RssAnon:") - after < BLOCKS * (BLOCK >> 10) / 2);
    for (int i = 0; i < BLOCKS; i++)
        free(pin[i]);
}

/* Free memory within the slack stays: the slack is set from what is free
 * now (whatever the tests before left, trimmed or not: malloc_trim gives
 * pages back but leaves their chunks free in glibc's count). */
static void trim_leaves_a_small_heap_alone(void **state)
{
    (void)state;
    char *p = malloc(1000);
    assert_non_null(p);
    free(p);
    size_t slack = mallinfo2().fordblks + (64 << 10);
    assert_int_equal(heap_trim(slack), 0);
    assert_true(mallinfo2().fordblks < slack); /* nothing grew it past the slack meanwhile */
    /* and below what is free, the same heap is trimmed */
    assert_true(heap_trim(mallinfo2().fordblks - 1) > 0);
}

/* A block the size of a large API answer comes from the heap, not a
 * mapping of its own: freed and asked for again, its pages are still
 * there (no page faults), until heap_trim gives them back. */
static void large_blocks_come_from_the_heap(void **state)
{
    (void)state;
    char *p = malloc(1 << 20);
    assert_non_null(p);
    memset(p, 1, 1 << 20);
    assert_int_equal(mallinfo2().hblks, 0); /* nothing mapped by itself */
    long used = status_kib("RssAnon:");
    free(p);
    assert_true(status_kib("RssAnon:") > used - 512); /* kept for the next answer */
    assert_true(heap_trim(64 << 10) >= 1 << 20);
    assert_true(status_kib("RssAnon:") <= used - 512); /* then given back */
}

/* The code mapped so far goes; relocated pages (the GOT, written at load)
 * stay, so calls through them still work, and code maps back on use. */
static void shed_code_unmaps_file_pages_and_keeps_running(void **state)
{
    (void)state;
    char buf[64];
    snprintf(buf, sizeof buf, "%d %s %.2f", 42, "warm", 1.5); /* touch libc's printf code */
    long before = status_kib("RssFile:");
    size_t kib = heap_shed_code();
    long after = status_kib("RssFile:");
    assert_true(kib > 0);
    assert_true(after < before);
    /* Through the PLT and GOT again, into pages that must fault back in. */
    snprintf(buf, sizeof buf, "%d %s %.2f", 42, "again", 2.5);
    assert_string_equal(buf, "42 again 2.50");
    char *dup = strdup(buf);
    assert_non_null(dup);
    assert_int_equal(strcmp(dup, buf), 0);
    free(dup);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(trim_gives_freed_pages_back),
        cmocka_unit_test(trim_leaves_a_small_heap_alone),
        cmocka_unit_test(large_blocks_come_from_the_heap),
        cmocka_unit_test(shed_code_unmaps_file_pages_and_keeps_running),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
