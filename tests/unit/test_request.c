/* The API's HTTP request parser on byte strings: framing, limits, the
 * fields the routes read, and what it refuses. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <cmocka.h>

#include "api/request.h"
#include "mutate.h"

/* Parse text (copied: the parser writes into its buffer). */
static int parse(struct request *rq, char *buf, size_t cap, const char *text)
{
    size_t n = strlen(text);
    assert_true(n < cap);
    memcpy(buf, text, n + 1);
    return request_parse(rq, buf, n);
}

static void get_fills_method_path_and_query(void **state)
{
    static const char text[] = "GET /v1/faults?active=1&limit=5 HTTP/1.1\r\nHost: x\r\n\r\n";
    char buf[256];
    struct request rq;
    assert_int_equal(parse(&rq, buf, sizeof buf, text), sizeof text - 1);
    assert_string_equal(rq.route.method, "GET");
    assert_string_equal(rq.route.path, "/v1/faults");
    assert_int_equal(rq.route.n_query, 2);
    assert_string_equal(rq.route.query[0].key, "active");
    assert_string_equal(rq.route.query[0].value, "1");
    assert_string_equal(rq.route.query[1].key, "limit");
    assert_string_equal(rq.route.query[1].value, "5");
    assert_false(rq.route.query_overflow);
    assert_true(rq.keep_alive);
    assert_null(rq.route.authorization);
    assert_null(rq.route.content_type);
    assert_null(rq.route.body);
    assert_int_equal(rq.route.body_len, 0);
}

static void post_exposes_body_authorization_and_content_type(void **state)
{
    /* A second, pipelined request follows: the first ends after its body. */
    static const char text[] = "POST /v1/services/web/restart HTTP/1.1\r\n"
                               "authorization:  Bearer s3cret \r\n"
                               "Content-Type: application/json\r\n"
                               "Content-Length: 7\r\n\r\n"
                               "{\"a\":1}GET / HTTP/1.1\r\n\r\n";
    char buf[512];
    struct request rq;
    int n = parse(&rq, buf, sizeof buf, text);
    assert_int_equal(n, strstr(text, "GET /") - text);
    assert_string_equal(rq.route.method, "POST");
    assert_string_equal(rq.route.authorization, "Bearer s3cret");
    assert_string_equal(rq.route.content_type, "application/json");
    assert_int_equal(rq.route.body_len, 7);
    assert_memory_equal(rq.route.body, "{\"a\":1}", 7);
    assert_int_equal(rq.head_len, strstr(text, "{") - text);
    assert_int_equal(request_parse(&rq, buf + n, strlen(text) - (size_t)n),
                     strlen(text) - (size_t)n);
    assert_string_equal(rq.route.path, "/");
}

static void incomplete_request_waits_and_leaves_the_buffer_alone(void **state)
{
    static const char text[] = "PUT /x HTTP/1.1\r\nExpect: 100-continue\r\n"
                               "Content-Length: 10\r\n\r\n0123456789";
    char buf[256], copy[256];
    struct request rq;
    size_t head = strlen(text) - 10;
    memcpy(buf, text, sizeof text);
    memcpy(copy, text, sizeof text);
    assert_int_equal(request_parse(&rq, buf, head - 2), 0); /* head not all in */
    assert_int_equal(rq.size, 0);
    assert_int_equal(request_parse(&rq, buf, head + 3), 0); /* body not all in */
    assert_int_equal(rq.head_len, head);
    assert_int_equal(rq.size, head + 10);
    assert_true(rq.expect_continue);
    assert_memory_equal(buf, copy, sizeof text);
    assert_int_equal(request_parse(&rq, buf, strlen(text)), strlen(text));
    assert_memory_equal(rq.route.body, "0123456789", 10);
}

static void path_and_query_are_percent_decoded(void **state)
{
    char buf[256];
    struct request rq;
    assert_true(parse(&rq, buf, sizeof buf,
                      "GET /v1/services/my%20db+x%zz?service=my+db%21&bare&e=&=v "
                      "HTTP/1.1\r\n\r\n") > 0);
    assert_string_equal(rq.route.path, "/v1/services/my db+x%zz"); /* '+' is a space in queries */
    assert_int_equal(rq.route.n_query, 4);
    assert_string_equal(rq.route.query[0].value, "my db!");
    assert_string_equal(rq.route.query[1].key, "bare");
    assert_null(rq.route.query[1].value);
    assert_string_equal(rq.route.query[2].value, "");
    assert_string_equal(rq.route.query[3].key, "");
    assert_string_equal(rq.route.query[3].value, "v");
}

static void absolute_target_is_reduced_to_its_path(void **state)
{
    char buf[256];
    struct request rq;
    assert_true(parse(&rq, buf, sizeof buf,
                      "GET http://127.0.0.1:7411/v1/status?x=1#frag HTTP/1.1\r\n\r\n") > 0);
    assert_string_equal(rq.route.path, "/v1/status");
    assert_int_equal(rq.route.n_query, 1);
    assert_string_equal(rq.route.query[0].value, "1");
    assert_true(parse(&rq, buf, sizeof buf, "GET http://h HTTP/1.1\r\n\r\n") > 0);
    assert_string_equal(rq.route.path, "/");
}

/* What the server checks against api.hostnames: the Host header, or the
 * authority of an absolute target, which RFC 9112 3.2.2 puts first. */
static void host_is_the_header_or_the_absolute_targets_authority(void **state)
{
    char buf[256];
    struct request rq;
    assert_true(parse(&rq, buf, sizeof buf, "GET /x HTTP/1.1\r\nHost:  Box:7411 \r\n\r\n") > 0);
    assert_int_equal(rq.host_len, 8);
    assert_memory_equal(rq.host, "Box:7411", 8);
    assert_true(parse(&rq, buf, sizeof buf,
                      "GET http://evil.example:80/v1/status?x HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      "\r\n") > 0);
    assert_int_equal(rq.host_len, 15);
    assert_memory_equal(rq.host, "evil.example:80", 15);
    assert_true(parse(&rq, buf, sizeof buf, "GET http://h?q HTTP/1.1\r\n\r\n") > 0);
    assert_int_equal(rq.host_len, 1);
    assert_memory_equal(rq.host, "h", 1);
    assert_true(parse(&rq, buf, sizeof buf, "GET /x HTTP/1.1\r\n\r\n") > 0);
    assert_null(rq.host);
}

static void too_many_query_arguments_set_overflow(void **state)
{
    char text[512] = "GET /v1/faults?";
    char buf[512];
    struct request rq;
    for (int i = 0; i <= ROUTES_MAX_QUERY; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text), "k%d=%d&", i, i);
    strcat(text, " HTTP/1.1\r\n\r\n");
    assert_true(parse(&rq, buf, sizeof buf, text) > 0);
    assert_int_equal(rq.route.n_query, ROUTES_MAX_QUERY);
    assert_true(rq.route.query_overflow);
}

static void keep_alive_follows_version_and_connection(void **state)
{
    static const struct {
        const char *text;
        bool keep;
    } cases[] = {
        {"GET / HTTP/1.1\r\n\r\n", true},
        {"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nConnection: Upgrade, Close\r\n\r\n", false},
        {"GET / HTTP/1.0\r\n\r\n", false},
        {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true},
    };
    char buf[256];
    struct request rq;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        assert_true(parse(&rq, buf, sizeof buf, cases[i].text) > 0);
        assert_int_equal(rq.keep_alive, cases[i].keep);
    }
}

static void blank_lines_before_a_request_and_bare_lf_are_accepted(void **state)
{
    static const char text[] = "\r\n\r\nGET /v1/status HTTP/1.1\nHost: x\n\n";
    char buf[256];
    struct request rq;
    assert_int_equal(parse(&rq, buf, sizeof buf, text), sizeof text - 1);
    assert_string_equal(rq.route.path, "/v1/status");
}

static void malformed_requests_are_refused_with_their_status(void **state)
{
    static const struct {
        const char *text;
        int status;
    } cases[] = {
        {"hello there\r\n\r\n", 400},
        {"GET /x\r\n\r\n", 400},
        {"GET x HTTP/1.1\r\n\r\n", 400},
        {"GET  /x HTTP/1.1\r\n\r\n", 400},
        {"GET /x HTTP/1.1 \r\n\r\n", 400},
        {"GET /x\tHTTP/1.1\r\n\r\n", 400},
        {"GET /x HTTP/2.0\r\n\r\n", 505},
        {"GET /x HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", 400},
        {"GET /x HTTP/1.1\r\nBad Name: x\r\n\r\n", 400},
        {"GET /x HTTP/1.1\r\nNoColon\r\n\r\n", 400},
        {"GET /x HTTP/1.1\r\nA: b\rc\r\n\r\n", 400},
        {"GET /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400},
        {"GET /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
        {"GET /x HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n", 400},
        {"GET /x HTTP/1.1\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n", 400},
        {"GET /x HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400},
        {"GET /x%00y HTTP/1.1\r\n\r\n", 400},
        {"GET /x?a=%00 HTTP/1.1\r\n\r\n", 400},
        {"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 411},
        {"POST /x HTTP/1.1\r\nContent-Length: 65537\r\n\r\n", 413}, /* refused before the body */
        {"POST /x HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", 413},
        {"BREW /pot HTTP/1.1\r\n\r\n", 501},
        {"\x16\x03\x01\x02\x00\x01", 400}, /* a TLS hello: refused before any line ends */
        {"GET /x HTTP/1.1\r\nHost: x", 0}, /* only incomplete */
    };
    char buf[256];
    struct request rq;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int r = parse(&rq, buf, sizeof buf, cases[i].text);
        if (r != -cases[i].status)
            fail_msg("case %zu: %d, want %d", i, r, -cases[i].status);
        if (r < 0)
            assert_non_null(rq.error);
    }
}

static void body_of_exactly_the_maximum_is_accepted(void **state)
{
    static char buf[REQUEST_BODY_MAX + 256];
    struct request rq;
    int n = snprintf(buf, sizeof buf, "POST /x HTTP/1.1\r\nContent-Length: %d\r\n\r\n",
                     REQUEST_BODY_MAX);
    memset(buf + n, 'b', REQUEST_BODY_MAX);
    assert_int_equal(request_parse(&rq, buf, (size_t)n + REQUEST_BODY_MAX), n + REQUEST_BODY_MAX);
    assert_int_equal(rq.route.body_len, REQUEST_BODY_MAX);
}

static void head_over_16_kib_is_431(void **state)
{
    static char buf[REQUEST_HEAD_MAX + 4096];
    struct request rq;
    int n = snprintf(buf, sizeof buf, "GET /x HTTP/1.1\r\nX-Big: ");
    memset(buf + n, 'a', sizeof buf - (size_t)n);
    /* Not ended yet, but already too long. */
    assert_int_equal(request_parse(&rq, buf, REQUEST_HEAD_MAX - 1), 0);
    assert_int_equal(request_parse(&rq, buf, REQUEST_HEAD_MAX), -431);
    /* Ended, but beyond the limit. */
    memcpy(buf + REQUEST_HEAD_MAX + 100, "\r\n\r\n", 4);
    assert_int_equal(request_parse(&rq, buf, REQUEST_HEAD_MAX + 104), -431);
    /* Just within it. */
    memcpy(buf + REQUEST_HEAD_MAX - 4, "\r\n\r\n", 4);
    assert_int_equal(request_parse(&rq, buf, REQUEST_HEAD_MAX), REQUEST_HEAD_MAX);
}

/* Damaged pipelines, parsed the way the server does: a complete request
 * is consumed and the next one parsed from where it ended; an incomplete
 * one waits; a refused one ends the connection. Whatever the bytes, the
 * answer is one of those, with sizes inside the buffer and strings inside
 * it too. The buffer is exactly the input's size: ASan sees any overread. */
static void mutated_requests_parse_or_are_refused(void **state)
{
    static const char base[] =
        "GET /v1/faults?active=1&limit=5 HTTP/1.1\r\nHost: x\r\n\r\n"
        "POST /v1/services/web%2Fa/restart HTTP/1.1\r\nAuthorization: Bearer t0k\r\n"
        "Content-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}"
        "HEAD /v1/status HTTP/1.0\r\nConnection: keep-alive\r\nExpect: 100-continue\r\n\r\n";
    struct mutator m;
    mutate_seed(&m, 7411);
    unsigned complete = 0, refused = 0, waiting = 0;
    for (int i = 0; i < 20000; i++) {
        size_t len;
        char *buf = mutate_copy(&m, base, sizeof base - 1, " :/?&=%\r\n\t0123456789-", &len);
        assert_non_null(buf);
        size_t at = 0;
        for (;;) {
            struct request rq;
            int r = request_parse(&rq, buf + at, len - at);
            if (r == 0) {
                waiting++;
                break;
            }
            if (r < 0) {
                if (!rq.error ||
                    (r != -400 && r != -411 && r != -413 && r != -431 && r != -501 && r != -505))
                    fail_msg("iteration %d: refused with %d, error %s", i, -r,
                             rq.error ? rq.error : "(none)");
                refused++;
                break;
            }
            if ((size_t)r > len - at || rq.head_len > (size_t)r)
                fail_msg("iteration %d: size %d beyond the %zu bytes left", i, r, len - at);
            const char *lo = buf + at, *hi = buf + at + r;
            if (rq.route.method < lo || rq.route.method >= hi || rq.route.path < lo ||
                rq.route.path >= hi || (rq.route.body && rq.route.body + rq.route.body_len > hi))
                fail_msg("iteration %d: a field points outside its request", i);
            complete++;
            at += (size_t)r;
        }
        free(buf);
    }
    print_message("%u complete, %u refused, %u waiting\n", complete, refused, waiting);
    assert_true(complete > 2000 && refused > 2000 && waiting > 2000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(get_fills_method_path_and_query),
        cmocka_unit_test(post_exposes_body_authorization_and_content_type),
        cmocka_unit_test(incomplete_request_waits_and_leaves_the_buffer_alone),
        cmocka_unit_test(path_and_query_are_percent_decoded),
        cmocka_unit_test(absolute_target_is_reduced_to_its_path),
        cmocka_unit_test(host_is_the_header_or_the_absolute_targets_authority),
        cmocka_unit_test(too_many_query_arguments_set_overflow),
        cmocka_unit_test(keep_alive_follows_version_and_connection),
        cmocka_unit_test(blank_lines_before_a_request_and_bare_lf_are_accepted),
        cmocka_unit_test(malformed_requests_are_refused_with_their_status),
        cmocka_unit_test(body_of_exactly_the_maximum_is_accepted),
        cmocka_unit_test(head_over_16_kib_is_431),
        cmocka_unit_test(mutated_requests_parse_or_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
