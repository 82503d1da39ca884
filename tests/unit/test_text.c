/* lib/text: words for people cut on purpose, marked, whole characters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "lib/text.h"

static void text_that_fits_is_formatted_as_is(void **state)
{
    char buf[16];
    assert_int_equal(text_format(buf, sizeof buf, "%s %d", "exit", 3), 6);
    assert_string_equal(buf, "exit 3");
    /* Exactly full: no cut. */
    assert_int_equal(text_format(buf, sizeof buf, "%s", "0123456789abcde"), 15);
    assert_string_equal(buf, "0123456789abcde");
}

static void text_too_long_ends_with_the_mark(void **state)
{
    char buf[16];
    assert_int_equal(text_format(buf, sizeof buf, "%s", "0123456789abcdef"), 15);
    assert_string_equal(buf, "0123456789ab...");
}

/* "é" is 2 bytes, "€" 3: the cut drops a character it would split. */
static void text_cut_keeps_whole_utf8_characters(void **state)
{
    char buf[16];
    /* 12 bytes fit before the mark: "0123456789a" + the first byte of é. */
    assert_int_equal(text_format(buf, sizeof buf, "0123456789a\xc3\xa9xxxxx"), 14);
    assert_string_equal(buf, "0123456789a...");
    /* 12 bytes: "0123456789" + 2 of the 3 bytes of €. */
    assert_int_equal(text_format(buf, sizeof buf, "0123456789\xe2\x82\xacxxxxx"), 13);
    assert_string_equal(buf, "0123456789...");
    /* A whole € at the edge stays. */
    assert_int_equal(text_format(buf, sizeof buf, "012345678\xe2\x82\xacxxxxxx"), 15);
    assert_string_equal(buf, "012345678\xe2\x82\xac...");
}

/* Without room for the mark, the bare cut (still on a boundary). */
static void text_in_a_tiny_buffer_is_cut_without_mark(void **state)
{
    char buf[4];
    assert_int_equal(text_format(buf, sizeof buf, "abcdef"), 3);
    assert_string_equal(buf, "abc");
    assert_int_equal(text_format(buf, sizeof buf, "ab\xc3\xa9"), 2);
    assert_string_equal(buf, "ab");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(text_that_fits_is_formatted_as_is),
        cmocka_unit_test(text_too_long_ends_with_the_mark),
        cmocka_unit_test(text_cut_keeps_whole_utf8_characters),
        cmocka_unit_test(text_in_a_tiny_buffer_is_cut_without_mark),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
