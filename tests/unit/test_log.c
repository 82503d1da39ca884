/* lib/log: one whole line per event, however long its values. */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(log_line_has_its_fields),
        cmocka_unit_test(log_line_is_never_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
