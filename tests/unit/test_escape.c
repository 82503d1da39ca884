/* lib/escape: outside text for log lines and terminals, byte-exact and never
 * cut inside an escape or a character. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "lib/escape.h"

static void expect(const char *in, unsigned flags, const char *want)
{
    char out[256];
    size_t n = escape_text(out, sizeof out, in, strlen(in), flags);
    assert_string_equal(out, want);
    assert_int_equal(n, strlen(want));
    assert_int_equal(escape_text(NULL, 0, in, strlen(in), flags), n); /* sizing agrees */
}

static void escape_controls_and_backslash(void **state)
{
    expect("a\nb\rc\td\\e", 0, "a\\nb\\rc\\td\\\\e");
    expect("\x1b[2J\x01\x7f", 0, "\\x1b[2J\\x01\\x7f");
    expect("say \"hi\"", 0, "say \"hi\"");
    expect("say \"hi\"", ESCAPE_QUOTE, "say \\\"hi\\\"");
}

static void escape_utf8_valid_kept_invalid_and_steering_escaped(void **state)
{
    expect("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 0, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    expect("\xff\xfe", 0, "\\xff\\xfe");
    expect("\xe2\x82", 0, "\\xe2\\x82");                   /* cut short */
    expect("\xf4\x90\x80\x80", 0, "\\xf4\\x90\\x80\\x80"); /* past U+10FFFF */
    expect("\xc2\x9b", 0, "\\xc2\\x9b");                   /* C1 CSI */
    expect("\xe2\x80\xae", 0, "\\xe2\\x80\\xae");          /* right-to-left override */
    expect("\xe2\x80\xa8", 0, "\\xe2\\x80\\xa8");          /* line separator */
}

/* A short buffer gets whole escapes and characters only, NUL-terminated. */
static void escape_cut_never_splits(void **state)
{
    char out[6];
    assert_int_equal(escape_text(out, sizeof out, "ab\x1b", 3, 0), 6);
    assert_string_equal(out, "ab");
    assert_int_equal(escape_text(out, 4, "a\xc3\xa9", 3, 0), 3);
    assert_string_equal(out, "a\xc3\xa9");
    assert_int_equal(escape_text(out, 3, "a\xc3\xa9", 3, 0), 3);
    assert_string_equal(out, "a");
    /* Nothing after a cut, even what would fit. */
    assert_int_equal(escape_text(out, 5, "a\x1bz", 3, 0), 6);
    assert_string_equal(out, "a");
}

static void escape_bare_ok_only_for_plain_words(void **state)
{
    assert_true(escape_bare_ok("web-1.x", 7));
    assert_false(escape_bare_ok("", 0));
    assert_false(escape_bare_ok("a b", 3));
    assert_false(escape_bare_ok("a=b", 3));
    assert_false(escape_bare_ok("a\"", 2));
    assert_false(escape_bare_ok("a\\", 2));
    assert_false(escape_bare_ok("a\x1b", 2));
    assert_false(escape_bare_ok("a\xff", 2));
}

static void escape_utf8_span_stops_at_the_first_bad_byte(void **state)
{
    assert_int_equal(escape_utf8_span("caf\xc3\xa9", 5), 5);
    assert_int_equal(escape_utf8_span("a\xc3", 2), 1);             /* cut short */
    assert_int_equal(escape_utf8_span("ab\xc0\xaf", 4), 2);        /* overlong */
    assert_int_equal(escape_utf8_span("%\xf2xvices", 9), 1);       /* the fuzzer's */
    assert_int_equal(escape_utf8_span("\xf0\x9f\x98\x80!", 5), 5); /* 4 bytes */
    assert_int_equal(escape_utf8_span("", 0), 0);
}

static void escape_width_counts_characters(void **state)
{
    assert_int_equal(escape_width("caf\xc3\xa9"), 4);
    assert_int_equal(escape_width("\\x1b"), 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(escape_controls_and_backslash),
        cmocka_unit_test(escape_utf8_valid_kept_invalid_and_steering_escaped),
        cmocka_unit_test(escape_cut_never_splits),
        cmocka_unit_test(escape_bare_ok_only_for_plain_words),
        cmocka_unit_test(escape_utf8_span_stops_at_the_first_bad_byte),
        cmocka_unit_test(escape_width_counts_characters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
