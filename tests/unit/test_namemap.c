/* lib/namemap: insert, find, replace, remove, growth, and keys that all
 * start probing at the same slot, checked against a plain array. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/namemap.h"

static void test_empty_map_finds_nothing(void **state)
{
    (void)state;
    struct namemap m = {0};
    assert_null(namemap_get(&m, "web"));
    assert_null(namemap_remove(&m, "web"));
    namemap_free(&m);
}

static void test_insert_find_replace_remove(void **state)
{
    (void)state;
    struct namemap m = {0};
    int a = 1, b = 2, c = 3;
    assert_int_equal(namemap_put(&m, "web", &a), 0);
    assert_int_equal(namemap_put(&m, "db", &b), 0);
    assert_ptr_equal(namemap_get(&m, "web"), &a);
    assert_ptr_equal(namemap_get(&m, "db"), &b);
    assert_null(namemap_get(&m, "cache"));
    assert_int_equal(namemap_put(&m, "web", &c), 0); /* replaces */
    assert_int_equal(m.n, 2);
    assert_ptr_equal(namemap_get(&m, "web"), &c);
    assert_ptr_equal(namemap_remove(&m, "web"), &c);
    assert_null(namemap_get(&m, "web"));
    assert_ptr_equal(namemap_get(&m, "db"), &b);
    assert_int_equal(m.n, 1);
    namemap_clear(&m);
    assert_null(namemap_get(&m, "db"));
    assert_int_equal(m.n, 0);
    namemap_free(&m);
}

/* The key found equal by content, not by pointer: a lookup with a copy. */
static void test_keys_compare_by_content(void **state)
{
    (void)state;
    struct namemap m = {0};
    int a = 1;
    char key[] = "api", copy[] = "api";
    assert_int_equal(namemap_put(&m, key, &a), 0);
    assert_ptr_equal(namemap_get(&m, copy), &a);
    namemap_free(&m);
}

#define MANY 3000

/* Past many doublings every key is still found, and every removal leaves
 * the others reachable. */
static void test_growth_and_removals_keep_every_key(void **state)
{
    (void)state;
    static char keys[MANY][16];
    struct namemap m = {0};
    for (int i = 0; i < MANY; i++) {
        snprintf(keys[i], sizeof keys[i], "svc-%d", i);
        assert_int_equal(namemap_put(&m, keys[i], keys[i]), 0);
        assert_true(m.n * 4 <= m.cap * 3);
    }
    assert_int_equal(m.n, MANY);
    for (int i = 0; i < MANY; i++)
        assert_ptr_equal(namemap_get(&m, keys[i]), keys[i]);
    for (int i = 0; i < MANY; i += 2)
        assert_ptr_equal(namemap_remove(&m, keys[i]), keys[i]);
    for (int i = 0; i < MANY; i++)
        assert_ptr_equal(namemap_get(&m, keys[i]), i % 2 ? keys[i] : NULL);
    namemap_free(&m);
}

#define SAME 120
#define SAME_BITS 0xfffU /* identical low bits: one home slot up to 4096 slots */

/* Keys chosen so that all start at the same slot, plus others mixed in:
 * a long probe run through which removals must shift entries back. */
static void test_many_collisions(void **state)
{
    (void)state;
    static char same[SAME][24], other[SAME][24];
    struct namemap m = {0};
    uint64_t home = namemap_hash("x0") & SAME_BITS;
    int found = 0;
    for (unsigned long i = 0; found < SAME; i++) {
        char k[24];
        snprintf(k, sizeof k, "x%lu", i);
        if ((namemap_hash(k) & SAME_BITS) == home)
            memcpy(same[found++], k, sizeof k);
    }
    for (int i = 0; i < SAME; i++) {
        snprintf(other[i], sizeof other[i], "y%d", i);
        assert_int_equal(namemap_put(&m, same[i], same[i]), 0);
        assert_int_equal(namemap_put(&m, other[i], other[i]), 0);
    }
    for (int i = 0; i < SAME; i++) {
        assert_ptr_equal(namemap_get(&m, same[i]), same[i]);
        assert_ptr_equal(namemap_get(&m, other[i]), other[i]);
    }
    /* Remove from the middle and the front of the run, in a scattered order. */
    bool gone[SAME] = {0};
    for (int k = 0; k < SAME; k++) {
        int i = (k * 37) % SAME;
        if (k % 3 == 0)
            continue;
        assert_ptr_equal(namemap_remove(&m, same[i]), same[i]);
        gone[i] = true;
        assert_null(namemap_remove(&m, same[i]));
    }
    for (int i = 0; i < SAME; i++) {
        assert_ptr_equal(namemap_get(&m, same[i]), gone[i] ? NULL : same[i]);
        assert_ptr_equal(namemap_get(&m, other[i]), other[i]);
    }
    /* And back in: the run is rebuilt and everything found. */
    for (int i = 0; i < SAME; i++)
        if (gone[i])
            assert_int_equal(namemap_put(&m, same[i], same[i]), 0);
    for (int i = 0; i < SAME; i++)
        assert_ptr_equal(namemap_get(&m, same[i]), same[i]);
    assert_int_equal(m.n, 2 * SAME);
    namemap_free(&m);
}

/* Random puts and removes against a plain array of what must be mapped. */
static void test_random_operations_agree_with_a_list(void **state)
{
    (void)state;
    enum { KEYS = 200, OPS = 20000 };
    static char keys[KEYS][16];
    static int model[KEYS]; /* 0: unmapped; else the value's tag */
    static int tags[KEYS * 4];
    struct namemap m = {0};
    unsigned seed = 12345;
    for (int i = 0; i < KEYS; i++)
        snprintf(keys[i], sizeof keys[i], "k%d", i);
    for (int op = 0; op < OPS; op++) {
        int i = rand_r(&seed) % KEYS;
        if (rand_r(&seed) % 3) {
            int t = rand_r(&seed) % (KEYS * 4);
            assert_int_equal(namemap_put(&m, keys[i], &tags[t]), 0);
            model[i] = t + 1;
        } else {
            void *v = namemap_remove(&m, keys[i]);
            assert_ptr_equal(v, model[i] ? &tags[model[i] - 1] : NULL);
            model[i] = 0;
        }
    }
    size_t n = 0;
    for (int i = 0; i < KEYS; i++) {
        assert_ptr_equal(namemap_get(&m, keys[i]), model[i] ? &tags[model[i] - 1] : NULL);
        n += model[i] != 0;
    }
    assert_int_equal(m.n, n);
    namemap_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_map_finds_nothing),
        cmocka_unit_test(test_insert_find_replace_remove),
        cmocka_unit_test(test_keys_compare_by_content),
        cmocka_unit_test(test_growth_and_removals_keep_every_key),
        cmocka_unit_test(test_many_collisions),
        cmocka_unit_test(test_random_operations_agree_with_a_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
