/* lib/jsonw: JSON text byte for byte as json_dumps writes it (strings,
 * integers, nesting), reals that parse to the double the division gives,
 * and text that is not UTF-8 replaced rather than refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/jsonw.h"

/* The writer's text for w, without its newline (static copy). */
static const char *text_of(struct jsonw *w)
{
    static char out[8192];
    size_t len = 0;
    char *t = jsonw_finish(w, &len);
    assert_non_null(t);
    assert_int_equal(t[len - 1], '\n');
    snprintf(out, sizeof out, "%.*s", (int)len - 1, t);
    free(t);
    return out;
}

/* jsonw_string(s) is what json_dumps writes for json_string(s). */
static void expect_as_jansson(const char *s)
{
    struct jsonw w = {0};
    jsonw_string(&w, s);
    json_t *v = json_string(s);
    assert_non_null(v);
    char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    assert_string_equal(text_of(&w), want);
    free(want);
    json_decref(v);
}

static void strings_are_escaped_as_jansson_does(void **state)
{
    char all[128];
    for (int c = 1; c < 128; c++) /* every ASCII byte but NUL */
        all[c - 1] = (char)c;
    all[127] = '\0';
    expect_as_jansson(all);
    expect_as_jansson("");
    expect_as_jansson("plain");
    expect_as_jansson("\"quoted\" \\back\\ /slash/");
    expect_as_jansson("\b\f\n\r\t\x01\x1f\x7f");
    expect_as_jansson("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xe2\x80\xae \xe2\x80\xa8 "
                      "\xc2\x9b");
    expect_as_jansson("\xef\xbf\xbf\xf4\x8f\xbf\xbf"); /* U+FFFF, U+10FFFF */
}

static void bytes_that_are_not_utf8_become_replacement_characters(void **state)
{
    struct jsonw w = {0};
    jsonw_string(&w, "a\xff"
                     "b\xe2\x82"
                     "c\xed\xa0\x80"
                     "d\xc0\xaf"
                     "e\xc3");
    assert_string_equal(text_of(&w), "\"a\xEF\xBF\xBD"
                                     "b\xEF\xBF\xBD\xEF\xBF\xBD"
                                     "c\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
                                     "d\xEF\xBF\xBD\xEF\xBF\xBD"
                                     "e\xEF\xBF\xBD\"");
    jsonw_string(&w, NULL);
    assert_string_equal(text_of(&w), "null");
}

static void integers_and_nesting_are_written_as_jansson_does(void **state)
{
    struct jsonw w = {0};
    jsonw_object(&w);
    jsonw_key(&w, "a");
    jsonw_array(&w);
    jsonw_int(&w, 0);
    jsonw_int(&w, -1);
    jsonw_int(&w, INT64_MAX);
    jsonw_int(&w, INT64_MIN);
    jsonw_array(&w);
    jsonw_array_end(&w);
    jsonw_object(&w);
    jsonw_object_end(&w);
    jsonw_bool(&w, true);
    jsonw_bool(&w, false);
    jsonw_null(&w);
    jsonw_array_end(&w);
    jsonw_key(&w, "k\"ey");
    jsonw_string(&w, "v");
    jsonw_object_end(&w);
    json_t *v = json_pack("{s:[I,I,I,I,[],{},b,b,n], s:s}", "a", (json_int_t)0, (json_int_t)-1,
                          (json_int_t)INT64_MAX, (json_int_t)INT64_MIN, 1, 0, "k\"ey", "v");
    char *want = json_dumps(v, JSON_COMPACT);
    assert_string_equal(text_of(&w), want);
    free(want);
    json_decref(v);
}

/* "12.345" parses to the double 12345 / 1000.0 is: both are the nearest
 * double to the exact quotient. */
static void decimals_parse_to_the_quotient(void **state)
{
    static const struct {
        uint64_t v;
        unsigned places;
        const char *text;
    } cases[] = {
        {0, 3, "0.0"},
        {1, 3, "0.001"},
        {1000, 3, "1.0"},
        {1234, 3, "1.234"},
        {1230, 3, "1.23"},
        {999999, 3, "999.999"},
        {123456789, 3, "123456.789"},
        {5, 0, "5.0"},
        {15, 1, "1.5"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct jsonw w = {0};
        jsonw_decimal(&w, cases[i].v, cases[i].places);
        assert_string_equal(text_of(&w), cases[i].text);
    }
    uint64_t x = 88172645463325252ull; /* xorshift: latencies of every size */
    for (int i = 0; i < 100000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint64_t us = x >> (i % 50 + 14); /* under 2^50 */
        struct jsonw w = {0};
        jsonw_decimal(&w, us, 3);
        json_t *v = json_loads(text_of(&w), JSON_DECODE_ANY, NULL);
        assert_true(json_is_real(v));
        if (json_real_value(v) != (double)us / 1000.0)
            fail_msg("%llu us: %.17g != %.17g", (unsigned long long)us, json_real_value(v),
                     (double)us / 1000.0);
        json_decref(v);
    }
}

static void text_grows_past_its_first_allocation(void **state)
{
    struct jsonw w = {0};
    json_t *want = json_array();
    jsonw_array(&w);
    for (int i = 0; i < 20000; i++) {
        jsonw_string(&w, "0123456789");
        json_array_append_new(want, json_string("0123456789"));
    }
    jsonw_array_end(&w);
    size_t len = 0;
    char *t = jsonw_finish(&w, &len);
    char *d = json_dumps(want, JSON_COMPACT);
    assert_int_equal(len, strlen(d) + 1);
    assert_memory_equal(t, d, len - 1);
    assert_null(w.buf); /* handed over */
    free(t);
    free(d);
    json_decref(want);
    jsonw_array(&w);
    jsonw_close(&w); /* an unfinished text is freed */
    assert_null(w.buf);
}

/* A key given as a literal is the text jsonw_key writes for it, commas
 * and all; a reserved writer's text is the same as one grown bit by bit. */
static void literal_keys_and_a_reserved_buffer_write_the_same_text(void **state)
{
    struct jsonw a = {0}, b = {0};
    assert_true(jsonw_reserve(&b, 1 << 20));
    assert_true(b.cap > 1 << 20);
    jsonw_array(&a);
    jsonw_array(&b);
    for (int i = 0; i < 3; i++) {
        jsonw_object(&a);
        jsonw_key(&a, "name");
        jsonw_string(&a, "web \"1\"");
        jsonw_key(&a, "uptime_ms");
        jsonw_int(&a, i);
        jsonw_key(&a, "checks");
        jsonw_array(&a);
        jsonw_array_end(&a);
        jsonw_object_end(&a);
        jsonw_object(&b);
        jsonw_key_lit(&b, "name");
        jsonw_string(&b, "web \"1\"");
        jsonw_key_lit(&b, "uptime_ms");
        jsonw_int(&b, i);
        jsonw_key_lit(&b, "checks");
        jsonw_array(&b);
        jsonw_array_end(&b);
        jsonw_object_end(&b);
    }
    jsonw_array_end(&a);
    jsonw_array_end(&b);
    char want[256];
    snprintf(want, sizeof want, "%s", text_of(&a));
    assert_string_equal(want, "[{\"name\":\"web \\\"1\\\"\",\"uptime_ms\":0,\"checks\":[]},"
                              "{\"name\":\"web \\\"1\\\"\",\"uptime_ms\":1,\"checks\":[]},"
                              "{\"name\":\"web \\\"1\\\"\",\"uptime_ms\":2,\"checks\":[]}]");
    assert_string_equal(text_of(&b), want);
    /* A failed writer stays failed: a literal key does not write either. */
    struct jsonw f = {.failed = true};
    jsonw_key_lit(&f, "name");
    assert_int_equal(f.len, 0);
    assert_false(jsonw_reserve(&f, 1));
}

/* A plain start, then bytes to escape, then plain again: the fast copy
 * and the escaping path meet where they should. */
static void strings_escaped_after_a_plain_start(void **state)
{
    expect_as_jansson("plain start then \"quote\" and \x01 then plain end");
    expect_as_jansson("plain then caf\xc3\xa9 then \xe2\x82\xac");
    expect_as_jansson("\n");
    expect_as_jansson("a\\");
}

/* The plain start is scanned eight bytes at a time: a byte to escape (or
 * a UTF-8 one) at each place of each word, and every length around a
 * word's, still reads as jansson writes it. */
static void strings_escaped_at_every_place_of_a_word(void **state)
{
    static const char *const odd[] = {"\"", "\\", "\x01", "\x1f", "\x7f", "\xc3\xa9", "~", " "};
    char s[40];
    for (size_t len = 0; len <= 25; len++) {
        memset(s, 'a', len);
        s[len] = '\0';
        expect_as_jansson(s);
        for (size_t at = 0; at < len; at++)
            for (size_t k = 0; k < sizeof odd / sizeof *odd; k++) {
                memset(s, 'a', len);
                size_t n = strlen(odd[k]);
                memcpy(s + at, odd[k], n);
                s[at + n > len ? at + n : len] = '\0';
                expect_as_jansson(s);
            }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(strings_are_escaped_as_jansson_does),
        cmocka_unit_test(bytes_that_are_not_utf8_become_replacement_characters),
        cmocka_unit_test(integers_and_nesting_are_written_as_jansson_does),
        cmocka_unit_test(decimals_parse_to_the_quotient),
        cmocka_unit_test(text_grows_past_its_first_allocation),
        cmocka_unit_test(literal_keys_and_a_reserved_buffer_write_the_same_text),
        cmocka_unit_test(strings_escaped_after_a_plain_start),
        cmocka_unit_test(strings_escaped_at_every_place_of_a_word),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
