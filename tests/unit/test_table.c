/* ctl/table: recoverctl's tables and key: value lines put API text on a
 * terminal escaped, and stay aligned. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/table.h"

/* What f wrote, as a string the caller frees. */
static char *written(FILE *f)
{
    long n = ftell(f);
    assert_true(n >= 0);
    char *s = calloc(1, (size_t)n + 1);
    assert_non_null(s);
    rewind(f);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return s;
}

static void table_cells_are_escaped_and_aligned(void **state)
{
    struct table t;
    table_init(&t, "NAME", "REASON", NULL);
    assert_int_equal(table_add(&t, "web", "CRITICAL\x1b[2J\nforged line\r\xc2\x9b"), 0);
    assert_int_equal(table_add(&t, "caf\xc3\xa9", "ok"), 0);
    assert_int_equal(table_add(&t, "a\x1b", NULL), 0);
    FILE *f = tmpfile();
    assert_non_null(f);
    table_print(&t, f);
    table_close(&t);
    char *out = written(f);
    /* "a\x1b" (5 columns) is the widest name; "caf\xc3\xa9" is 4 columns, 5 bytes. */
    assert_string_equal(out, "NAME   REASON\n"
                             "web    CRITICAL\\x1b[2J\\nforged line\\r\\xc2\\x9b\n"
                             "caf\xc3\xa9   ok\n"
                             "a\\x1b  -\n");
    free(out);
}

static void table_kv_escapes_long_values_whole(void **state)
{
    char big[3000];
    memset(big, 'x', sizeof big - 2);
    big[sizeof big - 2] = '\x1b';
    big[sizeof big - 1] = '\0';
    FILE *f = tmpfile();
    assert_non_null(f);
    table_print_kv(f, "reason", "a\x1b]0;title\a\nb");
    table_print_kv(f, "empty", "");
    table_print_kv(f, "context", big);
    char *out = written(f);
    assert_null(strchr(out, '\x1b'));
    assert_non_null(strstr(out,
                           "reason:            a\\x1b]0;title\\x07\\nb\nempty:             -\n"));
    char *ctx = strstr(out, "context:           ");
    assert_non_null(ctx);
    assert_int_equal(strspn(ctx + 19, "x"), sizeof big - 2); /* not cut */
    assert_string_equal(ctx + 19 + sizeof big - 2, "\\x1b\n");
    free(out);
}

static void table_safe_cuts_between_escapes(void **state)
{
    char buf[8];
    assert_string_equal(table_safe("ab\x1b[2J", buf, 6), "ab"); /* \x1b needs 4 + NUL */
    assert_string_equal(table_safe("ab\x1b[2J", buf, 7), "ab\\x1b");
    assert_string_equal(table_safe("plain", buf, sizeof buf), "plain");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(table_cells_are_escaped_and_aligned),
        cmocka_unit_test(table_kv_escapes_long_values_whole),
        cmocka_unit_test(table_safe_cuts_between_escapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
