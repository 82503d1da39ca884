/* lib/http-response: the strict HTTP/1.1 response parser, fed whole and
 * in every split, on good answers, each class of malformed one, limits,
 * pipelined answers and seeded mutations. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/http-response.h"
#include "mutate.h"

#define KEEP 64 /* bytes of body the tests keep */

/* What a parse came to. */
struct verdict {
    int rc;                         /* last feed's (or eof's) return */
    enum http_response_error error; /* r.error */
    int status;                     /* r.status */
    size_t used;                    /* bytes consumed in all */
    size_t body_len;                /* r.body_len */
    char body[KEEP + 1];            /* the kept body, NUL-terminated */
    bool reusable;                  /* http_response_reusable */
};

/* Feed text in pieces of `step` bytes (0: whole); stop at the first
 * verdict. eof: then say the peer closed, if the answer is still open. */
static struct verdict parse_in_steps(const char *text, size_t n, size_t step, bool eof,
                                     bool head_only)
{
    struct http_response r;
    struct verdict v = {0};
    size_t at = 0, used;
    http_response_init(&r, v.body, KEEP, head_only);
    v.rc = HTTP_RESPONSE_MORE;
    while (at < n && v.rc == HTTP_RESPONSE_MORE) {
        size_t piece = step && n - at > step ? step : n - at;
        v.rc = http_response_feed(&r, text + at, piece, &used);
        assert_true(used <= piece);
        if (v.rc == HTTP_RESPONSE_MORE)
            assert_int_equal(used, piece);
        at += used;
        v.used += used;
        if (used < piece)
            break;
    }
    if (eof && v.rc == HTTP_RESPONSE_MORE)
        v.rc = http_response_eof(&r);
    v.error = r.error;
    v.status = r.status;
    v.body_len = r.body_len;
    v.body[r.body_len] = '\0';
    v.reusable = http_response_reusable(&r);
    return v;
}

/* The verdict on text, asserted to be the same whether it arrives whole,
 * a byte at a time or in pieces of 2, 3, 7 and 64 bytes. */
static struct verdict parse_opts(const char *text, bool eof, bool head_only)
{
    static const size_t steps[] = {1, 2, 3, 7, 64};
    size_t n = strlen(text);
    struct verdict whole = parse_in_steps(text, n, 0, eof, head_only);
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
        struct verdict v = parse_in_steps(text, n, steps[i], eof, head_only);
        if (v.rc != whole.rc || v.error != whole.error || v.status != whole.status ||
            v.body_len != whole.body_len || strcmp(v.body, whole.body) != 0 ||
            (whole.rc == HTTP_RESPONSE_COMPLETE && v.used != whole.used))
            fail_msg("pieces of %zu: rc %d error %s status %d body \"%s\"; whole: rc %d error %s "
                     "status %d body \"%s\"",
                     steps[i], v.rc, http_response_error_str(v.error), v.status, v.body, whole.rc,
                     http_response_error_str(whole.error), whole.status, whole.body);
    }
    return whole;
}

static struct verdict parse(const char *text)
{
    return parse_opts(text, false, false);
}

static struct verdict parse_eof(const char *text)
{
    return parse_opts(text, true, false);
}

static void assert_complete(struct verdict v, int status, const char *body)
{
    if (v.rc != HTTP_RESPONSE_COMPLETE)
        fail_msg("rc %d, error %s", v.rc, http_response_error_str(v.error));
    assert_int_equal(v.status, status);
    assert_string_equal(v.body, body);
}

/* ---- good answers ---- */

static void length_delimited_body_completes_and_is_kept(void **state)
{
    struct verdict v = parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello");
    assert_complete(v, 200, "hello");
    assert_true(v.reusable);
}

static void status_line_without_reason_is_accepted(void **state)
{
    assert_complete(parse("HTTP/1.1 503\r\nContent-Length: 0\r\n\r\n"), 503, "");
    assert_complete(parse("HTTP/1.0 404 \r\nContent-Length: 0\r\n\r\n"), 404, "");
}

static void bare_lf_line_ends_are_accepted(void **state)
{
    assert_complete(parse("HTTP/1.1 200 OK\nContent-Length: 2\n\nok"), 200, "ok");
}

static void header_names_are_case_insensitive_and_values_trimmed(void **state)
{
    assert_complete(parse("HTTP/1.1 200 OK\r\ncOnTeNt-LeNgTh: \t 2 \t\r\n\r\nok"), 200, "ok");
}

static void chunked_body_is_kept_without_framing(void **state)
{
    struct verdict v = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "5\r\nhello\r\n6;name=\"v\"\r\n world\r\nA \r\n, chunked!\r\n"
                             "10\r\n 0123456789abcde\r\n0\r\nX-Trailer: t\r\n\r\n");
    assert_complete(v, 200, "hello world, chunked! 0123456789abcde");
    assert_true(v.reusable);
}

static void chunked_after_other_codings_is_chunked(void **state)
{
    struct verdict v = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n"
                             "Transfer-Encoding: , chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n");
    assert_complete(v, 200, "ok");
}

static void other_final_coding_reads_to_close(void **state)
{
    const char *text = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nraw";
    assert_int_equal(parse(text).rc, HTTP_RESPONSE_MORE);
    struct verdict v = parse_eof(text);
    assert_complete(v, 200, "raw");
    assert_false(v.reusable);
}

static void body_without_length_ends_at_close(void **state)
{
    const char *text = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nthe body ends at close";
    assert_int_equal(parse(text).rc, HTTP_RESPONSE_MORE);
    struct verdict v = parse_eof(text);
    assert_complete(v, 200, "the body ends at close");
    assert_false(v.reusable);
}

static void no_body_statuses_complete_at_the_head(void **state)
{
    assert_complete(parse("HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n"), 204, "");
    assert_complete(parse("HTTP/1.1 304 Not Modified\r\n\r\n"), 304, "");
    assert_true(parse("HTTP/1.1 204 No Content\r\n\r\n").reusable);
}

static void interim_answers_are_skipped(void **state)
{
    struct verdict v = parse("HTTP/1.1 100 Continue\r\n\r\n"
                             "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                             "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok");
    assert_complete(v, 201, "ok");
}

static void folded_line_of_another_header_is_ignored(void **state)
{
    assert_complete(parse("HTTP/1.1 200 OK\r\nX-Long: a\r\n  b\r\nContent-Length: 2\r\n\r\nok"),
                    200, "ok");
}

static void reuse_follows_version_and_connection(void **state)
{
    const struct {
        const char *text;
        bool reusable;
    } cases[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true},
        {"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", false},
        {"HTTP/1.1 200 OK\r\nConnection: x, Close\r\nContent-Length: 0\r\n\r\n", false},
        {"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false},
        {"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct verdict v = parse(cases[i].text);
        assert_int_equal(v.rc, HTTP_RESPONSE_COMPLETE);
        if (v.reusable != cases[i].reusable)
            fail_msg("case %zu: reusable %d", i, v.reusable);
    }
}

static void head_only_completes_at_the_head(void **state)
{
    const char *head = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
    char text[256];
    snprintf(text, sizeof text, "%s{\"partial", head);
    struct verdict v = parse_opts(text, false, true);
    assert_complete(v, 200, "");
    assert_int_equal(v.used, strlen(head));
    assert_false(v.reusable);
    /* The body's framing is not judged when it is not read. */
    v = parse_opts("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
                   false, true);
    assert_complete(v, 200, "");
}

/* ---- pipelined answers on one connection ---- */

static void pipelined_answers_are_read_one_after_another(void **state)
{
    static const char text[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none"
                               "HTTP/1.1 204 No Content\r\n\r\n"
                               "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                               "5\r\nthree\r\n0\r\n\r\n"
                               "HTTP/1.1 500 Oops\r\nContent-Length: 4\r\n\r\nfour";
    static const struct {
        int status;
        const char *body;
    } want[] = {{200, "one"}, {204, ""}, {200, "three"}, {500, "four"}};
    size_t at = 0, n = sizeof text - 1;
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        struct http_response r;
        char keep[KEEP + 1];
        size_t used;
        http_response_init(&r, keep, KEEP, false);
        assert_int_equal(http_response_feed(&r, text + at, n - at, &used), HTTP_RESPONSE_COMPLETE);
        assert_int_equal(r.status, want[i].status);
        keep[r.body_len] = '\0';
        assert_string_equal(keep, want[i].body);
        assert_true(http_response_reusable(&r));
        /* A complete answer takes no more bytes. */
        size_t more;
        assert_int_equal(http_response_feed(&r, text + at + used, n - at - used, &more),
                         HTTP_RESPONSE_COMPLETE);
        assert_int_equal(more, 0);
        at += used;
    }
    assert_int_equal(at, n);
}

/* ---- limits ---- */

/* An answer whose headers fill about `bytes`. */
static char *big_head(size_t bytes)
{
    size_t cap = bytes + 256, n = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    n += (size_t)snprintf(out, cap, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n");
    while (n + 100 < bytes)
        n += (size_t)snprintf(out + n, cap - n, "X-Pad: %080d\r\n", 0);
    snprintf(out + n, cap - n, "\r\nok");
    return out;
}

static void headers_up_to_16k_are_accepted_over_are_refused(void **state)
{
    char *ok = big_head(HTTP_RESPONSE_HEAD_MAX - 200),
         *over = big_head(HTTP_RESPONSE_HEAD_MAX + 300);
    assert_complete(parse(ok), 200, "ok");
    assert_int_equal(parse(over).error, HTTP_RESPONSE_E_HEAD_SIZE);
    free(ok);
    free(over);
}

static void interim_answers_count_against_the_head_limit(void **state)
{
    size_t cap = HTTP_RESPONSE_HEAD_MAX + 256, n = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    while (n < HTTP_RESPONSE_HEAD_MAX)
        n += (size_t)snprintf(text + n, cap - n, "HTTP/1.1 100 Continue\r\n\r\n");
    assert_int_equal(parse(text).error, HTTP_RESPONSE_E_HEAD_SIZE);
    free(text);
}

static void long_lines_are_checked_not_kept(void **state)
{
    char text[4096];
    int n = snprintf(text, sizeof text, "HTTP/1.1 200 OK\r\nSet-Cookie: ");
    memset(text + n, 'c', 2000);
    snprintf(text + n + 2000, sizeof text - (size_t)n - 2000, "\r\nContent-Length: 2\r\n\r\nok");
    assert_complete(parse(text), 200, "ok");
    text[n + 1000] = '\x01'; /* a control character far past what is kept */
    assert_int_equal(parse(text).error, HTTP_RESPONSE_E_CONTROL);
}

/* Most head bytes are taken in runs, not one by one: the run stops where
 * the byte-by-byte rules would act (the head's limit inside one long line,
 * DEL, a CR not before LF), whatever the pieces. */
static void runs_of_head_bytes_stop_where_the_rules_act(void **state)
{
    size_t cap = HTTP_RESPONSE_HEAD_MAX + 256;
    char *text = malloc(cap);
    assert_non_null(text);
    int n = snprintf(text, cap, "HTTP/1.1 200 OK\r\nX-Long: ");
    memset(text + n, 'x', cap - (size_t)n - 1);
    text[cap - 1] = '\0'; /* one header line past the head's limit */
    assert_int_equal(parse(text).error, HTTP_RESPONSE_E_HEAD_SIZE);
    snprintf(text, cap, "HTTP/1.1 200 OK\r\nX-A: a\tb\r\nContent-Length: 2\r\n\r\nok");
    assert_complete(parse(text), 200, "ok");
    snprintf(text, cap,
             "HTTP/1.1 200 OK\r\nX-A: a\x7f"
             "b\r\nContent-Length: 2\r\n\r\nok");
    assert_int_equal(parse(text).error, HTTP_RESPONSE_E_CONTROL);
    snprintf(text, cap, "HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 2\r\n\r\nok");
    assert_int_equal(parse(text).error, HTTP_RESPONSE_E_BARE_CR);
    snprintf(text, cap, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
    assert_complete(parse(text), 200, "ok");
    free(text);
}

/* ---- the head's limit against the one-step CRLF ----
 *
 * A line's CRLF is taken in one step where both bytes are in one read and
 * within the head's budget, else byte by byte. These put the CRLF that
 * ends a head (or a trailer) just before, at, across and just after the
 * 16 KiB limit, and cut the bytes into reads at every offset near the
 * limit and near the CRLF: the verdict must be the byte path's, and a
 * refusal must come in the read that holds the limit's first byte over. */

#define LIMIT_NEAR 4 /* bytes either side of the limit and of the CRLF cut at */

/* Header lines "X: aaa...\r\n" of `fill` bytes in all (0, or at least 5). */
static size_t pad_lines(char *out, size_t fill)
{
    size_t n = 0;
    while (fill > 0) {
        size_t line = fill <= 405 ? fill : 300;
        assert_true(line >= 5);
        memcpy(out + n, "X: ", 3);
        memset(out + n + 3, 'a', line - 5);
        memcpy(out + n + line - 2, "\r\n", 2);
        n += line;
        fill -= line;
    }
    return n;
}

/* Feed text[0, n) in reads cut at cuts[0..n_cuts) (ascending, inside
 * (0, n)). The verdict; *bad_read: the offset of the read the verdict
 * came in. Every read before it takes all its bytes. */
static struct verdict feed_cut(const char *text, size_t n, const size_t *cuts, size_t n_cuts,
                               size_t *bad_read)
{
    struct http_response r;
    struct verdict v = {0};
    size_t at = 0, used;
    http_response_init(&r, v.body, KEEP, false);
    v.rc = HTTP_RESPONSE_MORE;
    for (size_t c = 0; c <= n_cuts && v.rc == HTTP_RESPONSE_MORE; c++) {
        size_t end = c < n_cuts ? cuts[c] : n;
        *bad_read = at;
        v.rc = http_response_feed(&r, text + at, end - at, &used);
        if (v.rc == HTTP_RESPONSE_MORE)
            assert_int_equal(used, end - at);
        v.used += used;
        at = end;
    }
    v.error = r.error;
    v.status = r.status;
    v.body_len = r.body_len;
    v.body[r.body_len] = '\0';
    return v;
}

/* text[0, n) is an answer with body "ok" whose counted head bytes (head or
 * trailer lines) start at `from` and number `counted`. Whatever the reads:
 * complete where counted <= HTTP_RESPONSE_HEAD_MAX, else refused for its
 * size in the read that holds the first byte over (at from + MAX). */
static void assert_one_cut(const char *text, size_t n, size_t from, size_t counted,
                           const size_t *cuts, size_t n_cuts)
{
    size_t bad_read = 0, over = from + HTTP_RESPONSE_HEAD_MAX; /* index of the first byte over */
    struct verdict v = feed_cut(text, n, cuts, n_cuts, &bad_read);
    char where[64];
    snprintf(where, sizeof where, "counted %zu, cuts %zu %zu", counted, n_cuts ? cuts[0] : 0,
             n_cuts > 1 ? cuts[1] : 0);
    if (counted <= HTTP_RESPONSE_HEAD_MAX) {
        if (v.rc != HTTP_RESPONSE_COMPLETE || v.used != n || v.status != 200 ||
            strcmp(v.body, "ok") != 0)
            fail_msg("%s: rc %d (%s), used %zu of %zu", where, v.rc,
                     http_response_error_str(v.error), v.used, n);
        return;
    }
    size_t read_end = n;
    for (size_t c = 0; c < n_cuts; c++)
        if (cuts[c] > bad_read) {
            read_end = cuts[c];
            break;
        }
    if (v.rc != -EPROTO || v.error != HTTP_RESPONSE_E_HEAD_SIZE || bad_read > over ||
        read_end <= over)
        fail_msg("%s: rc %d (%s) in the read [%zu, %zu), the first byte over at %zu", where, v.rc,
                 http_response_error_str(v.error), bad_read, read_end, over);
}

/* assert_one_cut whole, a byte at a time, and cut once and twice at every
 * offset within LIMIT_NEAR of the limit and of the last CRLF. */
static void assert_limit_holds(const char *text, size_t n, size_t from, size_t counted)
{
    size_t near[4 * LIMIT_NEAR + 4], n_near = 0;
    size_t marks[] = {from + HTTP_RESPONSE_HEAD_MAX, from + counted - 2}; /* limit, the CR */
    for (size_t m = 0; m < 2; m++)
        for (size_t k = marks[m] - LIMIT_NEAR; k <= marks[m] + LIMIT_NEAR; k++) {
            bool seen = k == 0 || k >= n;
            for (size_t i = 0; i < n_near && !seen; i++)
                seen = near[i] == k;
            if (!seen)
                near[n_near++] = k;
        }
    assert_one_cut(text, n, from, counted, NULL, 0);
    for (size_t a = 0; a < n_near; a++) {
        assert_one_cut(text, n, from, counted, &near[a], 1);
        for (size_t b = 0; b < n_near; b++)
            if (near[a] < near[b])
                assert_one_cut(text, n, from, counted, (size_t[]){near[a], near[b]}, 2);
    }
    size_t *every = malloc(n * sizeof *every);
    assert_non_null(every);
    for (size_t k = 1; k < n; k++)
        every[k - 1] = k;
    assert_one_cut(text, n, from, counted, every, n - 1);
    free(every);
}

/* The head's last CRLF ends 2 bytes before, 1 before, at, 1 past (the CR
 * the last byte in) and up to 5 past the limit (the first byte over a CR,
 * an LF, then a header's own byte); an interim answer counts too. */
static void a_crlf_at_the_head_limit_is_taken_only_within_it(void **state)
{
    static const char *const starts[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n",
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n",
    };
    size_t cap = HTTP_RESPONSE_HEAD_MAX + 64;
    char *text = malloc(cap);
    assert_non_null(text);
    for (size_t s = 0; s < sizeof starts / sizeof *starts; s++)
        for (size_t head = HTTP_RESPONSE_HEAD_MAX - 2; head <= HTTP_RESPONSE_HEAD_MAX + 5; head++) {
            size_t n = strlen(starts[s]);
            memcpy(text, starts[s], n);
            n += pad_lines(text + n, head - n - 2);
            memcpy(text + n, "\r\nok", 4);
            assert_int_equal(n + 2, head);
            assert_limit_holds(text, n + 4, 0, head);
        }
    free(text);
}

/* Trailers have a budget of their own, held the same way. */
static void a_crlf_at_the_trailer_limit_is_taken_only_within_it(void **state)
{
    static const char start[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                "2\r\nok\r\n0\r\n";
    size_t cap = sizeof start + HTTP_RESPONSE_HEAD_MAX + 64;
    char *text = malloc(cap);
    assert_non_null(text);
    for (size_t counted = HTTP_RESPONSE_HEAD_MAX - 2; counted <= HTTP_RESPONSE_HEAD_MAX + 5;
         counted++) {
        size_t from = sizeof start - 1, n = from;
        memcpy(text, start, from);
        n += pad_lines(text + n, counted - 2);
        memcpy(text + n, "\r\n", 2);
        assert_limit_holds(text, n + 2, from, counted);
    }
    free(text);
}

static void body_beyond_keep_is_read_not_kept(void **state)
{
    char text[1024];
    int n = snprintf(text, sizeof text, "HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n");
    memset(text + n, 'b', 500);
    text[n + 500] = '\0';
    struct verdict v = parse(text);
    assert_int_equal(v.rc, HTTP_RESPONSE_COMPLETE);
    assert_int_equal(v.body_len, KEEP);
    assert_int_equal(v.used, (size_t)n + 500);
    /* Nothing kept at all without a buffer. */
    struct http_response r;
    size_t used;
    http_response_init(&r, NULL, 0, false);
    assert_int_equal(http_response_feed(&r, text, strlen(text), &used), HTTP_RESPONSE_COMPLETE);
    assert_int_equal(r.body_len, 0);
}

/* ---- malformed answers: each class, with its error ---- */

static const struct {
    const char *text;
    enum http_response_error error;
} bad[] = {
    {"SSH-2.0-OpenSSH_9.2\r\n", HTTP_RESPONSE_E_STATUS_LINE},
    {"HTTP/2 200 OK\r\n\r\n", HTTP_RESPONSE_E_STATUS_LINE},
    {"HTTP/1.2 200 OK\r\n\r\n", HTTP_RESPONSE_E_STATUS_LINE},
    {"HTTP/1.1 20 OK\r\n\r\n", HTTP_RESPONSE_E_STATUS_LINE},
    {"HTTP/1.1 600 Big\r\n\r\n", HTTP_RESPONSE_E_STATUS_LINE},
    {"HTTP/1.1 200OK\r\n\r\n", HTTP_RESPONSE_E_STATUS_LINE},
    {"HTTP/1.1  200 OK\r\n\r\n", HTTP_RESPONSE_E_STATUS_LINE},
    {"\r\nHTTP/1.1 200 OK\r\n\r\n", HTTP_RESPONSE_E_STATUS_LINE},
    {"HTTP/1.1 200 O\x01K\r\n\r\n", HTTP_RESPONSE_E_CONTROL},
    {"HTTP/1.1 200 OK\r\nX-A: a\x7f\r\n\r\n", HTTP_RESPONSE_E_CONTROL},
    {"HTTP/1.1 200 OK\r\nX-A: a\rb\r\n\r\n", HTTP_RESPONSE_E_BARE_CR},
    {"HTTP/1.1 200 OK\r\n\r\r\n", HTTP_RESPONSE_E_BARE_CR},
    {"HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n", HTTP_RESPONSE_E_HEADER},
    {"HTTP/1.1 200 OK\r\n: no name\r\n\r\n", HTTP_RESPONSE_E_HEADER},
    {"HTTP/1.1 200 OK\r\nBad(Name): x\r\n\r\n", HTTP_RESPONSE_E_HEADER},
    {"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok", HTTP_RESPONSE_E_HEADER_SPACE},
    {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n 3\r\n\r\nok", HTTP_RESPONSE_E_FOLD},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\tchunked\r\n\r\n", HTTP_RESPONSE_E_FOLD},
    {"HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\nok", HTTP_RESPONSE_E_CONTENT_LENGTH},
    {"HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\nok", HTTP_RESPONSE_E_CONTENT_LENGTH},
    {"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", HTTP_RESPONSE_E_CONTENT_LENGTH},
    {"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok", HTTP_RESPONSE_E_CONTENT_LENGTH},
    {"HTTP/1.1 200 OK\r\nContent-Length: 1000000000000000000\r\n\r\n",
     HTTP_RESPONSE_E_CONTENT_LENGTH},
    {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
     HTTP_RESPONSE_E_LENGTH_CONFLICT},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n\r\n", HTTP_RESPONSE_E_TRANSFER_ENCODING},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: , ,\r\n\r\n", HTTP_RESPONSE_E_TRANSFER_ENCODING},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
     HTTP_RESPONSE_E_TRANSFER_ENCODING},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gz(ip)\r\n\r\n", HTTP_RESPONSE_E_TRANSFER_ENCODING},
    {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: "
     "chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
     HTTP_RESPONSE_E_LENGTH_AND_ENCODING},
    {"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
     HTTP_RESPONSE_E_ENCODING_HTTP10},
    {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", HTTP_RESPONSE_E_SWITCHING},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", HTTP_RESPONSE_E_CHUNK_SIZE},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", HTTP_RESPONSE_E_CHUNK_SIZE},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 junk\r\nhello\r\n",
     HTTP_RESPONSE_E_CHUNK_SIZE},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n",
     HTTP_RESPONSE_E_CHUNK_SIZE},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n0\r\n\r\n",
     HTTP_RESPONSE_E_CHUNK_END},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n",
     HTTP_RESPONSE_E_HEADER},
};

static void each_malformed_class_is_refused_with_its_error(void **state)
{
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct verdict v = parse(bad[i].text);
        if (v.rc != -EPROTO || v.error != bad[i].error)
            fail_msg("case %zu: rc %d error \"%s\", want \"%s\"", i, v.rc,
                     http_response_error_str(v.error), http_response_error_str(bad[i].error));
    }
}

static void a_long_chunk_size_line_is_refused_before_its_end(void **state)
{
    char text[HTTP_RESPONSE_LINE_MAX + 128];
    int n = snprintf(text, sizeof text, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;");
    memset(text + n, 'e', sizeof text - (size_t)n - 1);
    text[sizeof text - 1] = '\0'; /* no LF at all */
    assert_int_equal(parse(text).error, HTTP_RESPONSE_E_CHUNK_SIZE);
}

static void a_non_http_peer_is_refused_at_its_first_bytes(void **state)
{
    struct http_response r;
    size_t used;
    http_response_init(&r, NULL, 0, false);
    assert_int_equal(http_response_feed(&r, "SSH-", 4, &used), -EPROTO);
    assert_int_equal(r.error, HTTP_RESPONSE_E_STATUS_LINE);
}

static void an_error_stays(void **state)
{
    static const char *const pieces[] = {"HTTP/1.1 2x\r", "\nContent-Length: 0\r\n\r\n",
                                         "HTTP/1.1 200 OK\r\n\r\n"};
    static const int want[] = {HTTP_RESPONSE_MORE, -EPROTO, -EPROTO};
    struct http_response r;
    size_t used = 99;
    http_response_init(&r, NULL, 0, false);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(http_response_feed(&r, pieces[i], strlen(pieces[i]), &used), want[i]);
    assert_int_equal(used, 0);
    assert_int_equal(http_response_eof(&r), -EPROTO);
    assert_int_equal(r.error, HTTP_RESPONSE_E_STATUS_LINE);
    assert_false(http_response_reusable(&r));
}

static void close_before_a_byte_is_empty_after_one_is_truncated(void **state)
{
    assert_int_equal(parse_eof("").error, HTTP_RESPONSE_E_EMPTY);
    const char *cut[] = {
        "H",
        "HTTP/1.1 200 OK\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\r\n",
        "HTTP/1.1 100 Continue\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof cut / sizeof *cut; i++) {
        struct verdict v = parse_eof(cut[i]);
        if (v.rc != -EPROTO || v.error != HTTP_RESPONSE_E_TRUNCATED)
            fail_msg("case %zu: rc %d error %s", i, v.rc, http_response_error_str(v.error));
    }
}

static void every_error_has_its_own_words(void **state)
{
    static const enum http_response_error all[] = {
#define X(e, s) HTTP_RESPONSE_E_##e,
        HTTP_RESPONSE_ERROR_MAP(X)
#undef X
    };
    size_t n = sizeof all / sizeof *all;
    for (size_t i = 0; i < n; i++) {
        assert_true(strlen(http_response_error_str(all[i])) > 0);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(http_response_error_str(all[i]),
                                    http_response_error_str(all[j]));
    }
    assert_string_equal(http_response_error_str(HTTP_RESPONSE_E_HEAD_SIZE), "headers over 16 KiB");
    assert_string_equal(http_response_error_str((enum http_response_error)n), "?");
}

/* ---- what a hostile peer might send ---- */

/* Mutations of good answers parse or are refused with words, whole or a
 * byte at a time alike, never taking more bytes than given (ASan checks
 * the reads: each input is a heap copy of its exact size). */
static void mutated_answers_parse_or_are_refused_alike(void **state)
{
    static const char base[] = "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                               "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                               "Connection: keep-alive\r\n\r\n5;x=1\r\nhello\r\n0\r\nT: 1\r\n\r\n"
                               "HTTP/1.0 404 Nope\r\nContent-Length: 4\r\n\r\nnope";
    struct mutator m;
    unsigned complete = 0, refused = 0;
    mutate_seed(&m, 5077);
    for (int i = 0; i < 20000; i++) {
        size_t len;
        char *buf = mutate_copy(&m, base, sizeof base - 1, " :;\r\n\t0123456789abcdefHTP/.,", &len);
        assert_non_null(buf);
        struct verdict whole = parse_in_steps(buf, len, 0, true, false);
        struct verdict bytes = parse_in_steps(buf, len, 1, true, false);
        if (whole.rc != bytes.rc || whole.error != bytes.error || whole.status != bytes.status ||
            (whole.rc > 0 && whole.used != bytes.used) || whole.body_len != bytes.body_len ||
            memcmp(whole.body, bytes.body, whole.body_len) != 0)
            fail_msg("iteration %d: whole rc %d (%s), byte by byte rc %d (%s)", i, whole.rc,
                     http_response_error_str(whole.error), bytes.rc,
                     http_response_error_str(bytes.error));
        if (whole.rc == -EPROTO) {
            assert_int_not_equal(whole.error, HTTP_RESPONSE_E_NONE);
            refused++;
        } else {
            assert_int_equal(whole.rc, HTTP_RESPONSE_COMPLETE);
            assert_true(whole.used <= len);
            assert_true(whole.status >= 200 && whole.status <= 599);
            complete++;
        }
        free(buf);
    }
    /* Both outcomes are exercised, or the mutations are not telling much. */
    assert_true(complete > 1000);
    assert_true(refused > 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(length_delimited_body_completes_and_is_kept),
        cmocka_unit_test(status_line_without_reason_is_accepted),
        cmocka_unit_test(bare_lf_line_ends_are_accepted),
        cmocka_unit_test(header_names_are_case_insensitive_and_values_trimmed),
        cmocka_unit_test(chunked_body_is_kept_without_framing),
        cmocka_unit_test(chunked_after_other_codings_is_chunked),
        cmocka_unit_test(other_final_coding_reads_to_close),
        cmocka_unit_test(body_without_length_ends_at_close),
        cmocka_unit_test(no_body_statuses_complete_at_the_head),
        cmocka_unit_test(interim_answers_are_skipped),
        cmocka_unit_test(folded_line_of_another_header_is_ignored),
        cmocka_unit_test(reuse_follows_version_and_connection),
        cmocka_unit_test(head_only_completes_at_the_head),
        cmocka_unit_test(pipelined_answers_are_read_one_after_another),
        cmocka_unit_test(headers_up_to_16k_are_accepted_over_are_refused),
        cmocka_unit_test(interim_answers_count_against_the_head_limit),
        cmocka_unit_test(long_lines_are_checked_not_kept),
        cmocka_unit_test(runs_of_head_bytes_stop_where_the_rules_act),
        cmocka_unit_test(a_crlf_at_the_head_limit_is_taken_only_within_it),
        cmocka_unit_test(a_crlf_at_the_trailer_limit_is_taken_only_within_it),
        cmocka_unit_test(body_beyond_keep_is_read_not_kept),
        cmocka_unit_test(each_malformed_class_is_refused_with_its_error),
        cmocka_unit_test(a_long_chunk_size_line_is_refused_before_its_end),
        cmocka_unit_test(a_non_http_peer_is_refused_at_its_first_bytes),
        cmocka_unit_test(an_error_stays),
        cmocka_unit_test(close_before_a_byte_is_empty_after_one_is_truncated),
        cmocka_unit_test(every_error_has_its_own_words),
        cmocka_unit_test(mutated_answers_parse_or_are_refused_alike),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
