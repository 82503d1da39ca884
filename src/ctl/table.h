/* recoverctl's human output: aligned tables and the cell formats (times,
 * durations, missing values) shared by every command. Text from the API
 * (check output, server errors) reaches the terminal only through here,
 * escaped (lib/escape.h): it cannot move the cursor, clear the screen or
 * add a line. */
#ifndef RECOVERD_CTL_TABLE_H
#define RECOVERD_CTL_TABLE_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#define TABLE_MAX_COLS 12 /* widest table (faults) has 8 */

struct table {
    const char *head[TABLE_MAX_COLS]; /* column titles */
    size_t n_cols;                    /* columns used */
    char **cells;                     /* n_rows * n_cols owned strings, row-major */
    size_t n_rows;                    /* rows added */
    size_t cap_rows;                  /* rows allocated */
};

/* A table with the given titles (NULL-terminated list). */
void table_init(struct table *t, ...);
void table_close(struct table *t);
/* Append one row of n_cols strings (escaped copies; NULL prints as "-").
 * 0 or -ENOMEM. */
int table_add(struct table *t, ...);
/* Columns padded to their widest cell, two spaces apart; the last column is
 * not padded so long descriptions need no truncation. */
void table_print(const struct table *t, FILE *out);
/* "key:" padded, then value escaped (whole, however long; NULL or "" as "-"). */
void table_print_kv(FILE *out, const char *key, const char *value);
/* s escaped into buf (len > 0) for one line of a terminal, cut before an
 * escape or character that does not fit. Returns buf. */
char *table_safe(const char *s, char *buf, size_t len);

/* Cell text of o[key] into buf: strings as they are, numbers in decimal,
 * true/false as yes/no, null or missing as "-". Returns buf. */
char *table_cell(const json_t *o, const char *key, char *buf, size_t len);
/* An ISO 8601 time from the API without its milliseconds ("-" if unset). */
char *table_time(const json_t *o, const char *key, char *buf, size_t len);
/* A duration in ms as "3d4h", "2h05m", "4m07s", "12.3s", "85ms" ("-" if unset). */
char *table_duration(const json_t *o, const char *key, char *buf, size_t len);

#endif
