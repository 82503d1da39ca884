/* lib/log: one whole line per event, however long its values, and no value
 * can end the line, forge a field or reach a terminal as a control. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"

/* What log_event wrote to stderr, caught in a temporary file. */
static char *caught(void (*fn)(const char *), const char *arg)
{
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    FILE *f = tmpfile();
    assert_non_null(f);
    dup2(fileno(f), STDERR_FILENO);
    fn(arg);
    dup2(saved, STDERR_FILENO);
    close(saved);
    off_t len = lseek(fileno(f), 0, SEEK_END);
    assert_true(len > 0);
    char *text = calloc(1, (size_t)len + 1);
    assert_non_null(text);
    assert_int_equal(pread(fileno(f), text, (size_t)len, 0), len);
    fclose(f);
    return text;
}

static void log_value(const char *v)
{
    log_event(LOG_WARN, "web", "probe", "why=\"%s\"", v);
}

static void log_line_has_its_fields(void **state)
{
    char *line = caught(log_value, "short");
    assert_non_null(strstr(line, "Z warn  web probe why=\"short\"\n"));
    assert_int_equal(strchr(line, '\n')[1], '\0');
    free(line);
}

/* Longer than any stack buffer: still whole, closing quote and newline. */
static void log_line_is_never_cut(void **state)
{
    size_t n = 10000;
    char *v = malloc(n + 1);
    assert_non_null(v);
    memset(v, 'v', n);
    v[n] = '\0';
    char *line = caught(log_value, v);
    char *at = strstr(line, "why=\"");
    assert_non_null(at);
    assert_int_equal(strspn(at + 5, "v"), n);
    assert_string_equal(at + 5 + n, "\"\n");
    free(line);
    free(v);
}

/* The key=value tail of the one line v makes in why="%s", checked to be
 * the only line. */
static char *tail_of(void (*fn)(const char *), const char *v)
{
    char *line = caught(fn, v);
    char *nl = strchr(line, '\n');
    assert_non_null(nl);
    assert_int_equal(nl[1], '\0'); /* exactly one line */
    *nl = '\0';
    char *at = strstr(line, " probe ");
    assert_non_null(at);
    memmove(line, at + 7, strlen(at + 7) + 1);
    return line;
}

static void expect_tail(void (*fn)(const char *), const char *v, const char *want)
{
    char *t = tail_of(fn, v);
    assert_string_equal(t, want);
    free(t);
}

static void log_quoted_value_escapes_newline_quote_backslash(void **state)
{
    expect_tail(log_value, "a\nb", "why=\"a\\nb\"");
    expect_tail(log_value, "x\" forged=\"1", "why=\"x\\\" forged=\\\"1\"");
    expect_tail(log_value, "C:\\tmp\\", "why=\"C:\\\\tmp\\\\\"");
    expect_tail(log_value, "cr\rtab\t", "why=\"cr\\rtab\\t\"");
    /* A whole forged line after a newline stays inside the one value. */
    expect_tail(log_value, "ok\n2026-01-01T00:00:00.000Z info  web check-passing check=x",
                "why=\"ok\\n2026-01-01T00:00:00.000Z info  web check-passing check=x\"");
}

static void log_value_escapes_terminal_controls(void **state)
{
    expect_tail(log_value, "\x1b[2J\x1b]0;pwned\a", "why=\"\\x1b[2J\\x1b]0;pwned\\x07\"");
    expect_tail(log_value, "del\x7f", "why=\"del\\x7f\"");
    /* C1 CSI (U+009B) and a right-to-left override (U+202E), valid UTF-8 that steers. */
    expect_tail(log_value,
                "\xc2\x9b"
                "2J \xe2\x80\xae",
                "why=\"\\xc2\\x9b2J \\xe2\\x80\\xae\"");
}

static void log_value_escapes_invalid_utf8_keeps_valid(void **state)
{
    expect_tail(log_value, "caf\xc3\xa9 \xe2\x82\xac", "why=\"caf\xc3\xa9 \xe2\x82\xac\"");
    expect_tail(log_value, "bad\xff", "why=\"bad\\xff\"");
    expect_tail(log_value, "cut\xe2\x82", "why=\"cut\\xe2\\x82\"");
    expect_tail(log_value, "\xc0\xaf", "why=\"\\xc0\\xaf\"");          /* overlong '/' */
    expect_tail(log_value, "\xed\xa0\x80", "why=\"\\xed\\xa0\\x80\""); /* a surrogate */
}

static void log_bare(const char *v)
{
    log_event(LOG_WARN, "web", "probe", "path=%s next=1", v);
}

/* A value the format left bare is quoted when a space, '=', quote or
 * escape would otherwise forge or blur a field. */
static void log_bare_value_is_quoted_when_it_must_be(void **state)
{
    expect_tail(log_bare, "/var/lib", "path=/var/lib next=1");
    expect_tail(log_bare, "a b=c", "path=\"a b=c\" next=1");
    expect_tail(log_bare, "x\"y", "path=\"x\\\"y\" next=1");
    expect_tail(log_bare, "nl\n", "path=\"nl\\n\" next=1");
    expect_tail(log_bare, "", "path=\"\" next=1");
}

static void log_mid_quote(const char *v)
{
    log_event(LOG_WARN, "web", "probe", "error=\"cannot watch pid %d: %s\" n=%zu", 42, v,
              (size_t)7);
}

static void log_value_inside_format_quotes_is_not_requoted(void **state)
{
    expect_tail(log_mid_quote, "no such \"process\"",
                "error=\"cannot watch pid 42: no such \\\"process\\\"\" n=7");
}

static void log_numbers(const char *v)
{
    log_event(LOG_WARN, "web", "probe",
              "a=%d b=%lld c=%llu d=%zu e=%.3f f=%u g=%ld h=%x i=%5d|%-3d|%%", -3, -1234567890123LL,
              18446744073709551615ULL, (size_t)99, 1.5, 7u, -8L, 255u, 42, 1);
}

static void log_conversions(const char *v)
{
    log_event(LOG_WARN, "web", "probe", "s=%.*s c=%c w=%-6s| q=\"%c\"", 3, v, 'z', "ab", '"');
}

/* The numbers come out as printf writes them; precision, width and %c as well. */
static void log_conversions_match_printf(void **state)
{
    expect_tail(log_numbers, NULL,
                "a=-3 b=-1234567890123 c=18446744073709551615 d=99 e=1.500 f=7 g=-8 h=ff i=   "
                "42|1  |%");
    expect_tail(log_conversions, "abc\ndef", "s=abc c=z w=ab    | q=\"\\\"\"");
}

static void log_service(const char *v)
{
    log_event(LOG_INFO, v, "probe", NULL);
}

static void log_service_name_is_escaped(void **state)
{
    char *line = caught(log_service, "we b\n\x1b");
    assert_non_null(strstr(line, " info  \"we b\\n\\x1b\" probe\n"));
    assert_null(strchr(line, '\x1b'));
    assert_int_equal(strchr(line, '\n')[1], '\0');
    free(line);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(log_line_has_its_fields),
        cmocka_unit_test(log_line_is_never_cut),
        cmocka_unit_test(log_quoted_value_escapes_newline_quote_backslash),
        cmocka_unit_test(log_value_escapes_terminal_controls),
        cmocka_unit_test(log_value_escapes_invalid_utf8_keeps_valid),
        cmocka_unit_test(log_bare_value_is_quoted_when_it_must_be),
        cmocka_unit_test(log_value_inside_format_quotes_is_not_requoted),
        cmocka_unit_test(log_conversions_match_printf),
        cmocka_unit_test(log_service_name_is_escaped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
