/* Aligned text tables and cell formatting for recoverctl. */
#include "ctl/table.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "lib/escape.h"

void table_init(struct table *t, ...)
{
    va_list ap;
    const char *h;
    memset(t, 0, sizeof *t);
    va_start(ap, t);
    while ((h = va_arg(ap, const char *)) && t->n_cols < TABLE_MAX_COLS)
        t->head[t->n_cols++] = h;
    va_end(ap);
}

void table_close(struct table *t)
{
    for (size_t i = 0; i < t->n_rows * t->n_cols; i++)
        free(t->cells[i]);
    free(t->cells);
    t->cells = NULL;
    t->n_rows = t->cap_rows = 0;
}

/* A malloc'd escaped copy of s, or NULL. */
static char *table__escaped(const char *s)
{
    size_t n = strlen(s), len = escape_text(NULL, 0, s, n, 0) + 1;
    char *e = malloc(len);
    if (e)
        escape_text(e, len, s, n, 0);
    return e;
}

int table_add(struct table *t, ...)
{
    if (t->n_rows == t->cap_rows) {
        size_t cap = t->cap_rows ? t->cap_rows * 2 : 16;
        char **c = realloc(t->cells, cap * t->n_cols * sizeof *c);
        if (!c)
            return -ENOMEM;
        t->cells = c;
        t->cap_rows = cap;
    }
    char **row = t->cells + t->n_rows * t->n_cols;
    va_list ap;
    va_start(ap, t);
    for (size_t i = 0; i < t->n_cols; i++) {
        const char *s = va_arg(ap, const char *);
        row[i] = table__escaped(s ? s : "-");
    }
    va_end(ap);
    t->n_rows++;
    return 0;
}

static const char *table__at(const struct table *t, size_t row, size_t col)
{
    const char *s = t->cells[row * t->n_cols + col];
    return s ? s : "-"; /* strdup failed: print something rather than crash */
}

void table_print(const struct table *t, FILE *out)
{
    size_t w[TABLE_MAX_COLS]; /* columns, not bytes: a cell may hold UTF-8 */
    for (size_t c = 0; c < t->n_cols; c++) {
        w[c] = escape_width(t->head[c]);
        for (size_t r = 0; r < t->n_rows; r++) {
            size_t n = escape_width(table__at(t, r, c));
            w[c] = n > w[c] ? n : w[c];
        }
    }
    for (size_t r = 0; r <= t->n_rows; r++) { /* row 0 is the header */
        for (size_t c = 0; c < t->n_cols; c++) {
            const char *s = r ? table__at(t, r - 1, c) : t->head[c];
            fputs(s, out);
            if (c + 1 < t->n_cols)
                fprintf(out, "%*s", (int)(w[c] - escape_width(s) + 2), "");
        }
        fputc('\n', out);
    }
}

void table_print_kv(FILE *out, const char *key, const char *value)
{
    char k[64];
    char *v = table__escaped(value && *value ? value : "-");
    snprintf(k, sizeof k, "%s:", key); /* key: the program's own words */
    fprintf(out, "%-18s %s\n", k, v ? v : "?");
    free(v);
}

char *table_safe(const char *s, char *buf, size_t len)
{
    escape_text(buf, len, s, strlen(s), 0);
    return buf;
}

char *table_cell(const json_t *o, const char *key, char *buf, size_t len)
{
    const json_t *v = json_object_get(o, key);
    if (json_is_string(v))
        snprintf(buf, len, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_real(v))
        snprintf(buf, len, "%g", json_real_value(v));
    else if (json_is_boolean(v))
        snprintf(buf, len, "%s", json_is_true(v) ? "yes" : "no");
    else
        snprintf(buf, len, "-");
    return buf;
}

char *table_time(const json_t *o, const char *key, char *buf, size_t len)
{
    table_cell(o, key, buf, len);
    char *dot = strchr(buf, '.');
    size_t k = dot ? strcspn(dot, "Z") : 0;
    if (dot && dot[k] == 'Z') /* "...:28.123Z" -> "...:28Z" */
        memmove(dot, dot + k, strlen(dot + k) + 1);
    return buf;
}

char *table_duration(const json_t *o, const char *key, char *buf, size_t len)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_number(v)) {
        snprintf(buf, len, "-");
        return buf;
    }
    double ms = json_number_value(v);
    uint64_t s = ms >= 0 ? (uint64_t)(ms / 1000) : 0;
    if (ms < 1000)
        snprintf(buf, len, "%.0fms", ms);
    else if (ms < 60000)
        snprintf(buf, len, "%.1fs", ms / 1000);
    else if (s < 3600)
        snprintf(buf, len, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, len, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, s / 60 % 60);
    else
        snprintf(buf, len, "%" PRIu64 "d%" PRIu64 "h", s / 86400, s / 3600 % 24);
    return buf;
}
