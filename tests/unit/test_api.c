/* The HTTP API over a real socket: the server runs in a uv loop on the main
 * thread, a client thread makes blocking libcurl requests against it, or
 * writes raw bytes for what curl will not send (pipelining, garbage, floods).
 * Its doors (deadlines, caps, Host, the Unix socket): test_api_doors.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "apifix.h"
#include "config/config-t.h"
#include "store/journal.h"
#include "store/reader.h"

/* ---- tests ----------------------------------------------------------------------------- */

static void every_route_answers_200_with_json(void **state)
{
    struct http_req r[] = {
        {.path = "/v1/status"},  {.path = "/v1/services"},       {.path = "/v1/services/web"},
        {.path = "/v1/faults"},  {.path = "/v1/faults/summary"}, {.path = "/v1/faults/1"},
        {.path = "/v1/actions"}, {.path = "/v1/transitions"},
    };
    serve(r, sizeof r / sizeof *r);
    for (size_t i = 0; i < sizeof r / sizeof *r; i++)
        json_decref(answer(&r[i], 200));
}

static void connection_is_kept_alive_across_requests(void **state)
{
    struct http_req r[] = {{.path = "/v1/status"},
                           {.path = "/v1/services"},
                           {.path = "/nope"},
                           {.path = "/v1/faults?limit=x"},
                           {.path = "/v1/status"}};
    serve(r, 5);
    assert_int_equal(r[0].connects, 1);
    for (size_t i = 1; i < 5; i++)
        assert_int_equal(r[i].connects, 0);
}

static void status_answers_the_status_view(void **state)
{
    struct http_req r = {.path = "/v1/status"};
    serve(&r, 1);
    json_t *v = answer(&r, 200);
    assert_string_equal(json_string_value(json_object_get(v, "name")), "fake");
    assert_int_equal(json_integer_value(json_object_get(v, "services")), 1);
    json_decref(v);
}

static void service_answers_the_named_service(void **state)
{
    struct http_req r = {.path = "/v1/services/web"};
    serve(&r, 1);
    json_t *v = answer(&r, 200);
    assert_string_equal(json_string_value(json_object_get(v, "name")), "web");
    assert_true(json_is_null(json_object_get(v, "pid")));
    json_decref(v);
}

static void service_unknown_is_404(void **state)
{
    struct http_req r = {.path = "/v1/services/nope"};
    serve(&r, 1);
    assert_string_equal(answer_error(&r, 404), "no such service: nope");
}

static void unknown_path_is_404_naming_it(void **state)
{
    struct http_req r[] = {{.path = "/x"}, {.path = "/v1/services/web/extra"}, {.path = "/v1/"}};
    serve(r, 3);
    assert_string_equal(answer_error(&r[0], 404), "no such resource: /x");
    assert_string_equal(answer_error(&r[1], 404), "no such resource: /v1/services/web/extra");
    assert_string_equal(answer_error(&r[2], 404), "no such resource: /v1/");
}

static void mutating_calls_need_the_token(void **state)
{
    fake.controls_called = 0;
    struct http_req r[] = {
        {.method = "POST", .path = "/v1/services/web/hold", .body = ""},
        {.method = "POST", .path = "/v1/services/web/hold", .body = "", .auth = "Bearer nope"},
        {.method = "POST",
         .path = "/v1/services/web/hold",
         .body = "",
         .auth = "Bearer " FAKE_TOKEN "0"},
        {.method = "POST", .path = "/v1/services/web/hold", .body = "", .auth = FAKE_TOKEN},
        {.method = "POST",
         .path = "/v1/services/web/hold",
         .body = "",
         .auth = "Bearer " FAKE_TOKEN},
        {.method = "POST",
         .path = "/v1/services/web/restart",
         .body = "",
         .auth = "Bearer " FAKE_TOKEN},
        {.method = "POST",
         .path = "/v1/faults/7/recover",
         .body = "{}",
         .auth = "Bearer " FAKE_TOKEN},
        {.method = "POST",
         .path = "/v1/faults/7/recover",
         .body = "{\"strategy\":\"restart\"}",
         .auth = "Bearer " FAKE_TOKEN},
    };
    serve(r, 8);
    for (int i = 0; i < 4; i++)
        assert_non_null(strstr(answer_error(&r[i], 401), "token"));
    json_decref(answer(&r[4], 200));
    answer_error(&r[5], 409);
    answer_error(&r[6], 400);
    json_decref(answer(&r[7], 200));
    assert_int_equal(fake.controls_called, 3); /* hold, restart, recover: never a refused one */
    assert_int_equal(fake.last_op, API_RESTART);
    assert_int_equal(fake.last_fault, 7);
    assert_string_equal(fake.last_strategy, "restart");
}

static void post_on_status_is_405_with_allow(void **state)
{
    static char big[8192]; /* > 1 KiB: curl waits for "100 Continue" that never comes */
    memset(big, 'x', sizeof big - 1);
    struct http_req r[] = {
        {.method = "POST", .path = "/v1/status", .body = big},
        {.method = "DELETE", .path = "/v1/faults/summary"},
        {.path = "/v1/status"}, /* the server still answers after a refused body */
    };
    serve(r, 3);
    assert_non_null(strstr(answer_error(&r[0], 405), "POST"));
    assert_string_equal(r[0].allow, "GET, HEAD");
    answer_error(&r[1], 405);
    assert_string_equal(r[1].allow, "GET, HEAD");
    json_decref(answer(&r[2], 200));
}

static void head_answers_like_get_without_body(void **state)
{
    struct http_req r = {.method = "HEAD", .path = "/v1/status"};
    serve(&r, 1);
    assert_int_equal(r.curl_err, CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "application/json");
    assert_int_equal(r.body_len, 0);
}

static void fault_id_not_a_positive_integer_is_400(void **state)
{
    struct http_req r[] = {{.path = "/v1/faults/abc"},
                           {.path = "/v1/faults/0"},
                           {.path = "/v1/faults/-3"},
                           {.path = "/v1/faults/12x"}};
    serve(r, 4);
    for (size_t i = 0; i < 4; i++)
        assert_non_null(strstr(answer_error(&r[i], 400), "positive integer"));
}

static void fault_answers_the_fault_with_its_actions(void **state)
{
    char path[64];
    snprintf(path, sizeof path, "/v1/faults/%" PRId64, fault_ids[0]);
    struct http_req r = {.path = path};
    serve(&r, 1);
    json_t *v = answer(&r, 200);
    assert_int_equal(json_integer_value(json_object_get(v, "id")), fault_ids[0]);
    assert_string_equal(json_string_value(json_object_get(v, "check")), "http");
    assert_int_equal(json_array_size(json_object_get(v, "actions")), 2);
    json_decref(v);
}

static void fault_unknown_id_is_404(void **state)
{
    struct http_req r = {.path = "/v1/faults/99"};
    serve(&r, 1);
    assert_string_equal(answer_error(&r, 404), "no such fault: 99");
}

static void faults_summary_is_not_read_as_a_fault_id(void **state)
{
    struct http_req r = {.path = "/v1/faults/summary"};
    serve(&r, 1);
    json_t *v = answer(&r, 200);
    assert_int_equal(json_integer_value(json_object_get(v, "total")), 3);
    assert_int_equal(json_integer_value(json_object_get(v, "active")), 2);
    json_decref(v);
}

/* The number of elements of an array answer. */
static size_t answer_count(const struct http_req *r)
{
    json_t *v = answer(r, 200);
    assert_true(json_is_array(v));
    size_t n = json_array_size(v);
    json_decref(v);
    return n;
}

static void faults_filter_by_active_and_limit(void **state)
{
    struct http_req r[] = {{.path = "/v1/faults"},
                           {.path = "/v1/faults?active=1"},
                           {.path = "/v1/faults?active=0"},
                           {.path = "/v1/faults?active"},
                           {.path = "/v1/faults?active=true&limit=1"}};
    serve(r, 5);
    assert_int_equal(answer_count(&r[0]), 3);
    assert_int_equal(answer_count(&r[1]), 2);
    assert_int_equal(answer_count(&r[2]), 3);
    assert_int_equal(answer_count(&r[3]), 2);
    json_t *v = answer(&r[4], 200);
    assert_int_equal(json_array_size(v), 1);
    /* newest first: the open web/process fault */
    assert_int_equal(json_integer_value(json_object_get(json_array_get(v, 0), "id")), fault_ids[2]);
    json_decref(v);
}

static void limit_not_a_number_is_400(void **state)
{
    struct http_req r[] = {{.path = "/v1/faults?limit=abc"},
                           {.path = "/v1/actions?limit=0"},
                           {.path = "/v1/transitions?limit=99999999999999999999"},
                           {.path = "/v1/faults?limit="},
                           {.path = "/v1/faults?active=maybe"},
                           {.path = "/v1/actions?fault=x"},
                           {.path = "/v1/transitions?service="}};
    size_t n = sizeof r / sizeof *r;
    serve(r, n);
    assert_non_null(strstr(answer_error(&r[0], 400), "'abc'"));
    for (size_t i = 1; i < n; i++)
        answer_error(&r[i], 400);
}

static void unknown_query_parameter_is_400(void **state)
{
    struct http_req r[] = {{.path = "/v1/faults?activ=1"}, {.path = "/v1/status?x"}};
    serve(r, 2);
    assert_string_equal(answer_error(&r[0], 400),
                        "unknown query parameter 'activ'; accepted: active,before,limit");
    answer_error(&r[1], 400);
}

static void actions_filter_by_fault_and_limit(void **state)
{
    char one[64], two[64];
    snprintf(one, sizeof one, "/v1/actions?fault=%" PRId64, fault_ids[0]);
    snprintf(two, sizeof two, "/v1/actions?fault=%" PRId64 "&limit=1", fault_ids[0]);
    struct http_req r[] = {{.path = "/v1/actions"}, {.path = one}, {.path = two}};
    serve(r, 3);
    assert_int_equal(answer_count(&r[0]), 3);
    assert_int_equal(answer_count(&r[1]), 2);
    assert_int_equal(answer_count(&r[2]), 1);
}

/* A full page links the next one, its filter kept (encoded) and the
 * cursor on the last row's id; the page it links holds the rest, with no
 * link; a shorter page has none; the cursor must be an id. */
static void lists_link_their_next_page(void **state)
{
    char next[512];
    struct http_req r[] = {{.path = "/v1/transitions?limit=1&service=my%20db"},
                           {.path = "/v1/actions?limit=2"},
                           {.path = "/v1/actions?limit=4"},
                           {.path = "/v1/actions?before=0"},
                           {.path = "/v1/services?limit=1"}};
    serve(r, 5);
    assert_non_null(strstr(r[0].link, "</v1/transitions?service=my%20db&limit=1&before="));
    json_t *page = answer(&r[1], 200);
    snprintf(next, sizeof next,
             "</v1/actions?limit=2&before=%" JSON_INTEGER_FORMAT ">; rel=\"next\"",
             json_integer_value(json_object_get(json_array_get(page, 1), "id")));
    assert_string_equal(r[1].link, next);
    json_decref(page);
    assert_string_equal(r[2].link, "");
    answer_error(&r[3], 400);
    assert_string_equal(r[4].link, "</v1/services?limit=1&after=web>; rel=\"next\"");

    char path[512];
    snprintf(path, sizeof path, "%.*s", (int)(strchr(next, '>') - next - 1), next + 1);
    struct http_req rest[] = {{.path = path}, {.path = "/v1/transitions?service=x&limit=1"}};
    serve(rest, 2);
    assert_int_equal(answer_count(&rest[0]), 1);
    assert_string_equal(rest[0].link, "");
}

static void transitions_filter_by_the_decoded_service(void **state)
{
    struct http_req r[] = {{.path = "/v1/transitions"},
                           {.path = "/v1/transitions?service=my%20db"}};
    serve(r, 2);
    assert_int_equal(answer_count(&r[0]), 3);
    json_t *v = answer(&r[1], 200);
    assert_int_equal(json_array_size(v), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(v, 0), "service")),
                        "my db");
    json_decref(v);
}

static void view_returning_null_is_500(void **state)
{
    fake.status_fails = true;
    struct http_req r = {.path = "/v1/status"};
    serve(&r, 1);
    answer_error(&r, 500);
}

static void missing_journal_is_500(void **state)
{
    backend.journal = NULL;
    struct http_req r = {.path = "/v1/faults"};
    serve(&r, 1);
    assert_string_equal(answer_error(&r, 500), "journal unavailable");
}

static void api_free_closes_an_open_connection(void **state)
{
    struct http_req r = {.path = "/v1/status"};
    struct run run = {.reqs = &r, .n = 1, .hold_socket = true, .held_fd = -1};
    run_serve(&run); /* asserts the loop is empty */
    char c;
    assert_int_equal(read(run.held_fd, &c, 1), 0); /* the server hung up */
    close(run.held_fd);
}

static bool connects(const char *ip, unsigned port)
{
    struct sockaddr_storage ss;
    addr_make(&ss, ip, port);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    bool ok = connect(fd, (struct sockaddr *)&ss, sizeof(struct sockaddr_in)) == 0;
    close(fd);
    return ok;
}

static void api_listens_only_on_the_requested_address(void **state)
{
    uv_loop_t loop;
    char err[256];
    assert_int_equal(uv_loop_init(&loop), 0);
    struct api *a = api_make(&loop, "127.0.0.1", NULL, err, sizeof err);
    assert_non_null(a);
    unsigned port = api_port(a);
    /* The kernel completes connects into the backlog without the loop running. */
    assert_true(connects("127.0.0.1", port));
    assert_false(connects("127.0.0.2", port));
    api_free(a);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_false(connects("127.0.0.1", port));
}

static void api_new_names_the_address_in_use(void **state)
{
    uv_loop_t loop;
    struct sockaddr_storage ss;
    struct api_cfg cfg = {0};
    struct api_options opt = {0};
    char err[256] = "";
    char want[128];
    struct sockaddr_in bound;
    socklen_t len = sizeof bound;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    addr_make(&ss, "127.0.0.1", 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&ss, sizeof(struct sockaddr_in)), 0);
    assert_int_equal(listen(fd, 1), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&bound, &len), 0);
    unsigned port = ntohs(bound.sin_port);
    addr_make(&cfg.listen, "127.0.0.1", port);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_null(api_new(&loop, &backend, &cfg, &opt, err, sizeof err));
    snprintf(want, sizeof want, "cannot listen on 127.0.0.1:%u: Address already in use", port);
    assert_string_equal(err, want);
    close(fd);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- tests of the server itself -------------------------------------------------------- */

struct turns {
    struct answer a[3]; /* one per request */
    int got;            /* answers received */
    bool closed;        /* the server closed the connection */
};

static void turns_client(struct run *run)
{
    struct turns *t = run->ctx;
    int fd = raw_connect(run->port, 0, 0);
    for (int i = 0; i < 3; i++) {
        raw_send_str(fd, get_status);
        t->got += raw_answers(fd, &t->a[i], 1, 1, &t->closed);
    }
    close(fd);
}

static void one_connection_serves_requests_in_turn(void **state)
{
    struct turns t = {0};
    struct run run = {.client = turns_client, .ctx = &t};
    run_serve(&run);
    assert_int_equal(t.got, 3);
    assert_false(t.closed);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(t.a[i].status, 200);
        assert_string_equal(t.a[i].connection, "keep-alive");
        assert_non_null(strstr(t.a[i].body, "\"name\":\"fake\""));
    }
}

struct http10 {
    struct answer a[3]; /* the plain HTTP/1.0 answer, then two keep-alive ones */
    int got;            /* answers received */
    bool closed;        /* the plain one's connection was closed after it */
    bool kept;          /* the keep-alive one's connection stayed open */
};

static void http10_client(struct run *run)
{
    struct http10 *t = run->ctx;
    bool closed;
    int fd = raw_connect(run->port, 0, 0);
    raw_send_str(fd, "GET /v1/status HTTP/1.0\r\n" HOST "\r\n");
    t->got += raw_answers(fd, &t->a[0], 1, 1, &closed);
    t->closed = raw_closed(fd);
    close(fd);
    fd = raw_connect(run->port, 0, 0);
    for (int i = 1; i < 3; i++) {
        raw_send_str(fd, "GET /v1/status HTTP/1.0\r\n" HOST "Connection: keep-alive\r\n\r\n");
        t->got += raw_answers(fd, &t->a[i], 1, 1, &closed);
    }
    t->kept = raw_open(fd);
    close(fd);
}

static void http10_closes_unless_keep_alive_is_asked(void **state)
{
    struct http10 t = {0};
    struct run run = {.client = http10_client, .ctx = &t};
    run_serve(&run);
    assert_int_equal(t.got, 3);
    assert_int_equal(t.a[0].status, 200);
    assert_string_equal(t.a[0].connection, "close");
    assert_true(t.closed);
    assert_string_equal(t.a[1].connection, "keep-alive");
    assert_int_equal(t.a[2].status, 200);
    assert_true(t.kept);
}

struct exchange {
    const char *send;   /* bytes sent at once */
    size_t send_len;    /* 0: strlen(send) */
    size_t sent;        /* bytes of send that went out */
    struct answer a[8]; /* answers in order */
    int got;            /* answers received */
    bool closed;        /* the server closed the connection after them */
};

/* Send everything in one write, then read answers until the server closes. */
static void exchange_client(struct run *run)
{
    struct exchange *x = run->ctx;
    int fd = raw_connect(run->port, 0, 0);
    x->sent = raw_send(fd, x->send, x->send_len ? x->send_len : strlen(x->send));
    x->got = raw_answers(fd, x->a, 8, 9, &x->closed);
    close(fd);
}

static void exchange(struct exchange *x)
{
    struct run run = {.client = exchange_client, .ctx = x};
    run_serve(&run);
}

static void pipelined_requests_are_answered_in_order(void **state)
{
    struct exchange x = {.send = "GET /v1/status HTTP/1.1\r\n" HOST "\r\n"
                                 "GET /v1/services/nope HTTP/1.1\r\n" HOST "\r\n"
                                 "DELETE /v1/status HTTP/1.1\r\n" HOST "\r\n"
                                 "POST /v1/status HTTP/1.1\r\n" HOST "Content-Length: 2\r\n\r\n{}"
                                 "GET /v1/services HTTP/1.1\r\n" HOST "Connection: close\r\n\r\n"
                                 "GET /v1/status HTTP/1.1\r\n" HOST
                                 "\r\n"}; /* after close: ignored */
    exchange(&x);
    assert_int_equal(x.got, 5);
    assert_true(x.closed);
    assert_int_equal(x.a[0].status, 200);
    assert_int_equal(x.a[1].status, 404);
    assert_string_equal(x.a[1].body, "{\"error\":\"no such service: nope\"}\n");
    assert_int_equal(x.a[2].status, 405);
    assert_string_equal(x.a[2].allow, "GET, HEAD");
    assert_int_equal(x.a[3].status, 405);
    assert_int_equal(x.a[4].status, 200);
    assert_string_equal(x.a[4].connection, "close");
    assert_string_equal(x.a[3].connection, "keep-alive");
}

/* The one answer of a refused request: status, JSON error, then closed. */
static void assert_refused(const struct exchange *x, int status, const char *why)
{
    assert_int_equal(x->got, 1);
    assert_int_equal(x->a[0].status, status);
    assert_string_equal(x->a[0].connection, "close");
    assert_non_null(strstr(x->a[0].body, why));
    assert_true(x->closed);
}

static void head_over_16_kib_is_431_then_closed(void **state)
{
    static char big[20 * 1024 + 64];
    int n = snprintf(big, sizeof big, "GET /v1/status HTTP/1.1\r\nX-Big: ");
    memset(big + n, 'a', 20 * 1024);
    strcpy(big + n + 20 * 1024, "\r\n\r\n");
    struct exchange x = {.send = big};
    exchange(&x);
    assert_refused(&x, 431, "{\"error\":\"request head larger than 16384 bytes\"}");
}

/* The client may go on sending the refused body (more than the kernel
 * buffers hold here): the server reads it to the end rather than reset the
 * connection under it, so the client can read the 413. */
static void body_over_64_kib_is_413_then_closed(void **state)
{
    static char big[4 << 20];
    int n = snprintf(big, sizeof big, "POST /v1/status HTTP/1.1\r\nContent-Length: %zu\r\n\r\n",
                     sizeof big - 128);
    memset(big + n, 'b', sizeof big - 128);
    struct exchange x = {.send = big, .send_len = (size_t)n + sizeof big - 128};
    exchange(&x);
    assert_int_equal(x.sent, x.send_len);
    assert_refused(&x, 413, "larger than 65536 bytes");
}

static void garbage_is_400_then_closed(void **state)
{
    struct exchange x = {.send = "hello there\r\n\r\n"};
    exchange(&x);
    assert_refused(&x, 400, "malformed request line");
    /* A TLS hello never ends a line: refused at once, not after a timeout. */
    struct exchange tls = {.send = "\x16\x03\x01\x00\xa5\x01\x00", .send_len = 7};
    exchange(&tls);
    assert_refused(&tls, 400, "malformed request line");
}

static void chunked_body_is_411_then_closed(void **state)
{
    struct exchange x = {.send = "POST /v1/status HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                                 "2\r\n{}\r\n0\r\n\r\n"};
    exchange(&x);
    assert_refused(&x, 411, "Content-Length");
}

struct expect {
    struct answer a[3]; /* 100 Continue, then the answer, then the next request's */
    int got;            /* answers received */
};

static void expect_client(struct run *run)
{
    struct expect *t = run->ctx;
    bool closed;
    int fd = raw_connect(run->port, 0, 0);
    raw_send_str(fd, "POST /v1/status HTTP/1.1\r\n" HOST "Expect: 100-continue\r\n"
                     "Content-Type: application/json\r\nContent-Length: 9\r\n\r\n");
    t->got += raw_answers(fd, &t->a[0], 1, 1, &closed);
    raw_send_str(fd, "{\"x\": 12}");
    t->got += raw_answers(fd, &t->a[1], 1, 1, &closed);
    raw_send_str(fd, get_status);
    t->got += raw_answers(fd, &t->a[2], 1, 1, &closed);
    close(fd);
}

/* The body is read whole, so the connection goes on to the next request. */
static void post_body_is_read_after_100_continue(void **state)
{
    struct expect t = {0};
    struct run run = {.client = expect_client, .ctx = &t};
    run_serve(&run);
    assert_int_equal(t.got, 3);
    assert_int_equal(t.a[0].status, 100);
    assert_int_equal(t.a[1].status, 405);
    assert_string_equal(t.a[1].allow, "GET, HEAD");
    assert_string_equal(t.a[1].connection, "keep-alive");
    assert_int_equal(t.a[2].status, 200);
}

struct idle {
    uint64_t silent_ms; /* until the silent connection was closed */
    bool silent_closed; /* it was closed (not data, not a timeout) */
    bool half_closed;   /* the one with half a request too */
    int busy_got;       /* answers on the connection that kept asking */
    bool busy_closed;   /* that one was closed once it stopped asking */
};

static void idle_client(struct run *run)
{
    struct idle *t = run->ctx;
    struct answer a;
    bool closed;
    uint64_t t0 = now_ms();
    int silent = raw_connect(run->port, 0, 0);
    int half = raw_connect(run->port, 0, 0);
    raw_send_str(half, "GET /v1/sta");
    t->silent_closed = raw_closed(silent);
    t->silent_ms = now_ms() - t0;
    t->half_closed = raw_closed(half);
    /* 6 requests 100 ms apart outlast the 200 ms timeout: activity counts. */
    int busy = raw_connect(run->port, 0, 0);
    for (int i = 0; i < 6; i++) {
        raw_send_str(busy, get_status);
        t->busy_got += raw_answers(busy, &a, 1, 1, &closed) && a.status == 200;
        usleep(100 * 1000);
    }
    t->busy_closed = raw_closed(busy);
    close(silent);
    close(half);
    close(busy);
}

static void idle_connection_is_closed_after_the_timeout(void **state)
{
    struct idle t = {0};
    struct run run = {.client = idle_client, .ctx = &t, .idle_ms = 200, .request_ms = 200};
    run_serve(&run);
    assert_true(t.silent_closed);
    assert_in_range(t.silent_ms, 150, 2000);
    assert_true(t.half_closed);
    assert_int_equal(t.busy_got, 6);
    assert_true(t.busy_closed);
}

#define FLOOD_CONNS 300 /* connections opened at once, over the API's 256 */

struct flood {
    int connected; /* connects that succeeded */
    int open;      /* connections the server kept */
    int closed;    /* connections the server closed at once */
    int status;    /* of a request on a kept connection */
};

static void flood_client(struct run *run)
{
    struct flood *t = run->ctx;
    static int fds[FLOOD_CONNS];
    struct answer a = {0};
    bool closed;
    char c;
    for (int i = 0; i < FLOOD_CONNS; i++)
        t->connected += (fds[i] = raw_connect(run->port, 0, 0)) >= 0;
    usleep(300 * 1000);
    for (int i = 0; i < FLOOD_CONNS; i++) {
        ssize_t k = fds[i] < 0 ? -1 : recv(fds[i], &c, 1, MSG_PEEK | MSG_DONTWAIT);
        t->open += k < 0 && errno == EAGAIN;
        t->closed += k == 0 || (k < 0 && errno == ECONNRESET);
    }
    for (int i = 0; i < FLOOD_CONNS && !t->status; i++) {
        if (recv(fds[i], &c, 1, MSG_PEEK | MSG_DONTWAIT) < 0 && errno == EAGAIN) {
            raw_send_str(fds[i], get_status);
            if (raw_answers(fds[i], &a, 1, 1, &closed) == 1)
                t->status = a.status;
        }
    }
    for (int i = 0; i < FLOOD_CONNS; i++)
        close(fds[i]);
}

static void connections_beyond_256_are_closed_at_once(void **state)
{
    struct flood t = {0};
    struct run run = {.client = flood_client, .ctx = &t};
    run_serve(&run);
    assert_int_equal(t.connected, FLOOD_CONNS);
    assert_int_equal(t.open, 256);
    assert_int_equal(t.closed, FLOOD_CONNS - 256);
    assert_int_equal(t.status, 200);
}

struct unread {
    long sent;    /* requests sent whole before the server stopped taking more */
    bool stalled; /* it did stop */
    int answered; /* answers read afterwards */
};

static void unread_client(struct run *run)
{
    struct unread *t = run->ctx;
    bool closed;
    int fd = raw_connect(run->port, 4096, 65536);
    t->sent = raw_flood_unread(fd, &t->stalled);
    t->answered = raw_answers(fd, NULL, 0, (int)t->sent, &closed);
    close(fd);
}

/* A client that sends without reading: the server stops reading it once
 * its answers pile up, instead of buffering them without bound, and still
 * answers every request once the client reads. */
static void client_that_never_reads_is_not_read_either(void **state)
{
    struct unread t = {0};
    struct run run = {.client = unread_client, .ctx = &t};
    run_serve(&run);
    assert_true(t.stalled);
    assert_true(t.sent > 10);
    assert_int_equal(t.answered, t.sent);
}

struct held {
    int fds[4]; /* idle, half a head, half a body, answers unread */
};

static void held_client(struct run *run)
{
    struct held *t = run->ctx;
    bool stalled;
    t->fds[0] = raw_connect(run->port, 0, 0);
    t->fds[1] = raw_connect(run->port, 0, 0);
    raw_send_str(t->fds[1], "GET /v1/sta");
    t->fds[2] = raw_connect(run->port, 0, 0);
    raw_send_str(t->fds[2], "POST /v1/status HTTP/1.1\r\nContent-Length: 1000\r\n\r\n{\"ha");
    t->fds[3] = raw_connect(run->port, 4096, 65536);
    raw_flood_unread(t->fds[3], &stalled);
    usleep(100 * 1000); /* let the server read what was sent */
}

static void api_free_with_open_and_half_sent_connections_empties_the_loop(void **state)
{
    struct held t = {0};
    struct run run = {.client = held_client, .ctx = &t};
    bool closed;
    run_serve(&run); /* asserts the loop is empty */
    for (int i = 0; i < 3; i++)
        assert_true(raw_closed(t.fds[i]));
    raw_answers(t.fds[3], NULL, 0, INT32_MAX, &closed); /* what was sent, then the end */
    assert_true(closed);
    for (int i = 0; i < 4; i++)
        close(t.fds[i]);
}

static void api_listens_on_ipv6_loopback(void **state)
{
    uv_loop_t loop;
    struct api_cfg cfg = {0};
    struct api_options opt = {0};
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&cfg.listen;
    char err[256];
    in6->sin6_family = AF_INET6;
    in6->sin6_port = 0;
    in6->sin6_addr = in6addr_loopback;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct api *a = api_new(&loop, &backend, &cfg, &opt, err, sizeof err);
    if (!a)
        fail_msg("api_new: %s", err);
    in6->sin6_port = htons(api_port(a));
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    assert_int_equal(connect(fd, (struct sockaddr *)in6, sizeof *in6), 0);
    close(fd);
    api_free(a);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void api_accepts_port_0(void **state)
{
    uv_loop_t loop;
    char err[256];
    assert_int_equal(uv_loop_init(&loop), 0);
    struct api *a = api_make(&loop, "127.0.0.1", NULL, err, sizeof err);
    if (!a)
        fail_msg("api_new: %s", err);
    unsigned port = api_port(a);
    assert_true(connects("127.0.0.1", port));
    api_free(a);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- routes_dispatch on its own: the backend's answers become statuses --------------- */

struct dispatched {
    unsigned status;
    char allow[64];
    char error[512]; /* the "error" string, "" when none */
    json_t *body;    /* the whole body; freed by the test */
};

/* One request straight into routes_dispatch (path without query; query
 * pairs key, value, ..., NULL). */
static struct dispatched dispatch(const char *method, const char *path, const char *auth,
                                  const char *body, ...)
{
    struct route_request rq = {.b = &backend,
                               .method = method,
                               .path = path,
                               .authorization = auth,
                               .body = body,
                               .body_len = body ? strlen(body) : 0};
    va_list ap;
    va_start(ap, body);
    const char *k;
    while ((k = va_arg(ap, const char *)) && rq.n_query < ROUTES_MAX_QUERY) {
        rq.query[rq.n_query].key = k;
        rq.query[rq.n_query++].value = va_arg(ap, const char *);
    }
    va_end(ap);
    struct route_reply rep;
    routes_dispatch(&rq, &rep);
    if (rep.list) { /* a listing: written in one go here, in slices by the server */
        while (!routes_list_step(&backend, rep.list, 1))
            ;
        rep.text = jsonw_finish(&rep.list->w, &rep.text_len);
        routes_list_free(rep.list);
    }
    if (rep.text) { /* a view that wrote its own text */
        assert_null(rep.body);
        assert_int_equal(rep.text[rep.text_len - 1], '\n');
        rep.body = json_loadb(rep.text, rep.text_len, 0, NULL);
        free(rep.text);
    }
    struct dispatched d = {.status = rep.status, .body = rep.body};
    snprintf(d.allow, sizeof d.allow, "%s", rep.allow);
    assert_non_null(rep.body);
    const char *e = json_string_value(json_object_get(rep.body, "error"));
    snprintf(d.error, sizeof d.error, "%s", e ? e : "");
    return d;
}

#define BEARER "Bearer " FAKE_TOKEN

static void dispatch_every_get_route_answers_200(void **state)
{
    static const char *const paths[] = {"/v1/status",  "/v1/services",       "/v1/services/web",
                                        "/v1/faults",  "/v1/faults/summary", "/v1/faults/1",
                                        "/v1/actions", "/v1/transitions",    "/v1/metrics"};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        struct dispatched d = dispatch("GET", paths[i], NULL, NULL, NULL);
        if (d.status != 200)
            fail_msg("GET %s: %u %s", paths[i], d.status, d.error);
        assert_string_equal(d.error, "");
        json_decref(d.body);
        d = dispatch("HEAD", paths[i], NULL, NULL,
                     NULL); /* HEAD is GET (the server drops the body) */
        assert_int_equal(d.status, 200);
        json_decref(d.body);
    }
    assert_int_equal(fake.controls_called, 0);
}

/* Each mutating route refuses a request without the right token before it
 * reaches the backend. */
static void dispatch_every_mutating_route_needs_the_token(void **state)
{
    static const char *const paths[] = {"/v1/faults/7/recover", "/v1/services/web/hold",
                                        "/v1/services/web/release", "/v1/services/web/restart"};
    static const char *const auths[] = {NULL,
                                        "",
                                        "Bearer",
                                        "Bearer ",
                                        "Bearer x",
                                        "bearer " FAKE_TOKEN,
                                        FAKE_TOKEN,
                                        "Bearer " FAKE_TOKEN "0",
                                        "Basic " FAKE_TOKEN};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++)
        for (size_t k = 0; k < sizeof auths / sizeof *auths; k++) {
            struct dispatched d = dispatch("POST", paths[i], auths[k], "{\"strategy\":\"restart\"}",
                                           NULL);
            if (d.status != 401)
                fail_msg("POST %s with \"%s\": %u", paths[i], auths[k] ? auths[k] : "(none)",
                         d.status);
            assert_non_null(strstr(d.error, "token"));
            json_decref(d.body);
        }
    assert_int_equal(fake.controls_called, 0);
}

/* hold / release / restart reach the backend with the name and the
 * operation; success answers the service's view. */
static void dispatch_controls_reach_the_backend(void **state)
{
    static const struct {
        const char *path;
        enum api_control op;
        unsigned status;
    } cases[] = {
        {"/v1/services/web/hold", API_HOLD, 200},
        {"/v1/services/web/release", API_RELEASE, 200},
        {"/v1/services/web/restart", API_RESTART, 409}, /* the fake is busy */
        {"/v1/services/nope/hold", API_HOLD, 404},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct dispatched d = dispatch("POST", cases[i].path, BEARER, NULL, NULL);
        assert_int_equal(d.status, cases[i].status);
        assert_int_equal(fake.last_op, cases[i].op);
        assert_int_equal(fake.controls_called, (int)i + 1);
        if (d.status == 200)
            assert_string_equal(json_string_value(json_object_get(d.body, "name")), "web");
        json_decref(d.body);
    }
    assert_string_equal(fake.last_name, "nope");
    struct dispatched d = dispatch("POST", "/v1/services/nope/release", BEARER, NULL, NULL);
    assert_string_equal(d.error, "no such service: nope");
    json_decref(d.body);
}

/* The backend's -errno becomes the status, its words the error. */
static void dispatch_maps_backend_errors_to_statuses(void **state)
{
    static const struct {
        int err;
        unsigned status;
        const char *error;
    } cases[] = {
        {-EBUSY, 409, "forced error"},
        {-EINVAL, 400, "forced error"},
        {-ENOENT, 404, "forced error"},
        {-EIO, 500, "Input/output error"},
        {-ENOMEM, 500, "Cannot allocate memory"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        fake.forced = cases[i].err;
        struct dispatched d = dispatch("POST", "/v1/services/web/hold", BEARER, NULL, NULL);
        assert_int_equal(d.status, cases[i].status);
        assert_string_equal(d.error, cases[i].error);
        json_decref(d.body);
        d = dispatch("POST", "/v1/faults/3/recover", BEARER, "{\"strategy\":\"repair\"}", NULL);
        assert_int_equal(d.status, cases[i].status);
        assert_string_equal(d.error, cases[i].error);
        json_decref(d.body);
    }
}

/* recover: the fault id and the strategy reach the backend; the answer is
 * the view of the service the backend named. */
static void dispatch_recover_reaches_the_backend(void **state)
{
    struct dispatched d = dispatch("POST", "/v1/faults/42/recover", BEARER,
                                   "{\"strategy\": \"repair\", \"extra\": 1}", NULL);
    assert_int_equal(d.status, 200);
    assert_int_equal(fake.last_fault, 42);
    assert_string_equal(fake.last_strategy, "repair");
    assert_string_equal(json_string_value(json_object_get(d.body, "name")), "web");
    json_decref(d.body);
    /* A service the views do not know: the view fails, a 500. */
    fake.recover_service = "ghost";
    d = dispatch("POST", "/v1/faults/42/recover", BEARER, "{\"strategy\":\"restart\"}", NULL);
    assert_int_equal(d.status, 500);
    assert_string_equal(d.error, "service failed");
    json_decref(d.body);
    assert_int_equal(fake.controls_called, 2);
}

/* A body that is not {"strategy": "<name>"} is a 400 before the backend. */
static void dispatch_recover_needs_a_strategy(void **state)
{
    static const char *const bodies[] = {
        NULL, "", "{}", "not json", "[\"restart\"]", "{\"strategy\": 3}", "{\"strategy\": null}"};
    for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
        struct dispatched d = dispatch("POST", "/v1/faults/7/recover", BEARER, bodies[i], NULL);
        assert_int_equal(d.status, 400);
        assert_non_null(strstr(d.error, "strategy"));
        json_decref(d.body);
    }
    struct dispatched d = dispatch("POST", "/v1/faults/x/recover", BEARER,
                                   "{\"strategy\":\"restart\"}", NULL);
    assert_int_equal(d.status, 400);
    assert_non_null(strstr(d.error, "positive integer"));
    json_decref(d.body);
    assert_int_equal(fake.controls_called, 0);
}

static void dispatch_wrong_method_is_405_with_allow(void **state)
{
    struct dispatched d = dispatch("GET", "/v1/services/web/hold", NULL, NULL, NULL);
    assert_int_equal(d.status, 405);
    assert_string_equal(d.allow, "POST");
    json_decref(d.body);
    d = dispatch("PUT", "/v1/faults/7", NULL, NULL, NULL);
    assert_int_equal(d.status, 405);
    assert_string_equal(d.allow, "GET, HEAD");
    assert_string_equal(d.error, "method PUT not allowed on /v1/faults/7; allowed: GET, HEAD");
    json_decref(d.body);
    /* A wrong method is refused before the token is looked at. */
    d = dispatch("DELETE", "/v1/services/web/restart", NULL, NULL, NULL);
    assert_int_equal(d.status, 405);
    json_decref(d.body);
    assert_int_equal(fake.controls_called, 0);
}

static void dispatch_query_errors_are_400(void **state)
{
    struct dispatched d = dispatch("GET", "/v1/faults", NULL, NULL, "active", "yes", NULL);
    assert_int_equal(d.status, 400);
    assert_string_equal(d.error, "active must be 1, 0, true or false, not 'yes'");
    json_decref(d.body);
    d = dispatch("GET", "/v1/faults", NULL, NULL, "limit", "10001", NULL);
    assert_int_equal(d.status, 400);
    json_decref(d.body);
    d = dispatch("GET", "/v1/faults", NULL, NULL, "limit", "10000", NULL);
    assert_int_equal(d.status, 200);
    json_decref(d.body);
    d = dispatch("GET", "/v1/metrics", NULL, NULL, "x", NULL, NULL);
    assert_int_equal(d.status, 400);
    assert_string_equal(d.error, "unknown query parameter 'x'");
    json_decref(d.body);
    d = dispatch("GET", "/v1/actions", NULL, NULL, "fault", "-1", NULL);
    assert_int_equal(d.status, 400);
    json_decref(d.body);
    /* More arguments than a request may carry. */
    struct route_request rq = {.b = &backend,
                               .method = "GET",
                               .path = "/v1/status",
                               .query_overflow = true};
    struct route_reply rep;
    routes_dispatch(&rq, &rep);
    assert_int_equal(rep.status, 400);
    assert_non_null(strstr(json_string_value(json_object_get(rep.body, "error")),
                           "too many query parameters"));
    json_decref(rep.body);
}

static void dispatch_failing_views_are_500(void **state)
{
    fake.services_fails = true;
    struct dispatched d = dispatch("GET", "/v1/services", NULL, NULL, NULL);
    assert_int_equal(d.status, 500);
    assert_string_equal(d.error, "services view failed");
    json_decref(d.body);
    fake.status_fails = true;
    d = dispatch("GET", "/v1/status", NULL, NULL, NULL);
    assert_int_equal(d.status, 500);
    assert_string_equal(d.error, "status view failed");
    json_decref(d.body);
    /* Without a journal, every history route is a 500, the live views are not. */
    backend.journal = NULL;
    static const char *const paths[] = {"/v1/faults",  "/v1/faults/summary", "/v1/faults/1",
                                        "/v1/actions", "/v1/transitions",    "/v1/metrics"};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        d = dispatch("GET", paths[i], NULL, NULL, NULL);
        assert_int_equal(d.status, 500);
        assert_string_equal(d.error, "journal unavailable");
        json_decref(d.body);
    }
    d = dispatch("GET", "/v1/services/web", NULL, NULL, NULL);
    assert_int_equal(d.status, 200);
    json_decref(d.body);
}

/* Paths that match nothing, including a segment longer than a pattern may
 * capture; bytes outside printable ASCII never reach the JSON error raw. */
static void dispatch_unknown_paths_are_404(void **state)
{
    char longpath[400] = "/v1/services/";
    memset(longpath + strlen(longpath), 'a', 300);
    struct dispatched d = dispatch("GET", longpath, NULL, NULL, NULL);
    assert_int_equal(d.status, 404);
    json_decref(d.body);
    d = dispatch("GET", "/v1/services/", NULL, NULL, NULL); /* an empty segment */
    assert_int_equal(d.status, 404);
    json_decref(d.body);
    d = dispatch("GET", "/v1/x\x01\xff", NULL, NULL, NULL);
    assert_int_equal(d.status, 404);
    assert_string_equal(d.error, "no such resource: /v1/x??");
    json_decref(d.body);
}

/* ---- journal reads on the reader's thread ---------------------------------------------- */

/* A reader job that holds the reader's thread until the client releases it. */
struct blocker {
    struct reader_job job;
    uv_sem_t release; /* posted by the client */
    uv_sem_t running; /* posted by the job once it holds the thread */
    bool done, ran;
};

static void blocker_work(struct reader_job *job, struct journal *ro)
{
    struct blocker *b = (struct blocker *)job;
    uv_sem_post(&b->running);
    uv_sem_wait(&b->release);
}

static void blocker_done(struct reader_job *job, bool ran)
{
    struct blocker *b = (struct blocker *)job;
    b->done = true;
    b->ran = ran;
}

struct slow_read {
    struct blocker b;
    struct answer status, faults, actions, busy;
    int got_status, got_faults, got_actions, got_busy;
    bool faults_quiet; /* no byte of the faults answer while the reader was held */
    bool status_first; /* the status answer came while the reader was held */
};

static void slow_read_start(struct run *run)
{
    struct slow_read *x = run->ctx;
    assert_int_equal(reader_submit(backend.reader, &x->b.job), 0);
}

static int send_get(unsigned port, const char *path)
{
    char req[256];
    int fd = raw_connect(port, 0, 0);
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\n" HOST "\r\n", path);
    raw_send_str(fd, req);
    return fd;
}

static void slow_read_client(struct run *run)
{
    struct slow_read *x = run->ctx;
    bool closed;
    uv_sem_wait(&x->b.running); /* the reader's thread is held from here on */
    int faults = send_get(run->port, "/v1/faults");
    int actions = send_get(run->port, "/v1/actions");
    /* Closed while its read waits: the answer, when it comes, goes nowhere. */
    close(send_get(run->port, "/v1/transitions"));
    int status = send_get(run->port, "/v1/status");
    x->got_status = raw_answers(status, &x->status, 1, 1, &closed);
    x->status_first = !x->b.done;
    /* Four reads wait (the blocker, faults, actions, transitions): the
     * fifth is refused at once. */
    int busy = send_get(run->port, "/v1/metrics");
    x->got_busy = raw_answers(busy, &x->busy, 1, 1, &closed);
    x->faults_quiet = raw_open(faults);
    uv_sem_post(&x->b.release);
    x->got_faults = raw_answers(faults, &x->faults, 1, 1, &closed);
    x->got_actions = raw_answers(actions, &x->actions, 1, 1, &closed);
    close(faults);
    close(actions);
    close(status);
    close(busy);
}

/* While the reader's thread is busy, the loop answers what needs no
 * journal at once; journal reads wait their turn, a bounded number of
 * them, and a connection closed meanwhile costs nothing (ASan). */
static void status_answers_while_a_journal_read_is_slow(void **state)
{
    struct slow_read x = {.b.job = {.work = blocker_work, .done = blocker_done}};
    uv_sem_init(&x.b.release, 0);
    uv_sem_init(&x.b.running, 0);
    struct run run = {.client = slow_read_client,
                      .ctx = &x,
                      .reader = true,
                      .reader_max = 4,
                      .on_start = slow_read_start};
    run_serve(&run);
    assert_int_equal(x.got_status, 1);
    assert_int_equal(x.status.status, 200);
    assert_true(x.status_first);
    assert_int_equal(x.got_busy, 1);
    assert_int_equal(x.busy.status, 503);
    assert_non_null(strstr(x.busy.body, "too many journal reads wait (4)"));
    assert_true(x.faults_quiet);
    assert_int_equal(x.got_faults, 1);
    assert_int_equal(x.faults.status, 200);
    assert_non_null(strstr(x.faults.body, "\"service\":\"web\""));
    assert_int_equal(x.got_actions, 1);
    assert_int_equal(x.actions.status, 200);
    assert_true(x.b.done && x.b.ran);
    uv_sem_destroy(&x.b.release);
    uv_sem_destroy(&x.b.running);
}

/* Read-your-writes: a fault written in this loop turn's batch (not yet
 * committed by the loop's flush) is in the answer of a GET that comes
 * after it, read on the reader's own connection. */
static int64_t ryw_fault;

static void ryw_start(struct run *run)
{
    struct fault f = {.type = FAULT_NETWORK,
                      .severity = SEVERITY_LOW,
                      .impact = IMPACT_LOCAL,
                      .opened_ms = 1700000009000};
    snprintf(f.service, sizeof f.service, "fresh");
    snprintf(f.check, sizeof f.check, "tcp");
    snprintf(f.description, sizeof f.description, "written just now");
    f.context = (char *)"{\"detection_ms\":30}";
    journal_set_batching(journal, true);
    assert_int_equal(journal_fault_open(journal, &f), 0);
    ryw_fault = f.id;
}

static void a_read_sees_the_writes_made_before_it(void **state)
{
    char path[64];
    struct http_req r[3] = {{.path = path},
                            {.path = "/v1/faults?limit=1"},
                            {.path = "/v1/metrics"}};
    struct run run = {.reqs = r, .n = 3, .reader = true, .on_start = ryw_start};
    ryw_fault = fault_ids[2] + 1; /* the id it will get */
    snprintf(path, sizeof path, "/v1/faults/%lld", (long long)ryw_fault);
    run_serve(&run);
    journal_set_batching(journal, false);
    json_t *f = answer(&r[0], 200);
    assert_string_equal(json_string_value(json_object_get(f, "description")), "written just now");
    json_decref(f);
    json_t *l = answer(&r[1], 200);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(l, 0), "id")), ryw_fault);
    json_decref(l);
    json_t *m = answer(&r[2], 200);
    json_t *det = json_object_get(json_object_get(m, "overall"), "detection_seconds");
    assert_int_equal(json_integer_value(json_object_get(det, "count")), 1);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(det, "buckets"), "0.025")),
                     0);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(det, "buckets"), "0.05")),
                     1);
    json_decref(m);
}

/* The API and the reader close while reads wait behind a busy reader
 * (recoverd stopping): whether each ran or not, it is freed once, with
 * its connection gone or going; nothing leaks (ASan), the thread is
 * joined and the loop ends empty (run_serve checks). */
static int stop_fds[2];

static void stop_client(struct run *run)
{
    struct slow_read *x = run->ctx;
    bool closed;
    uv_sem_wait(&x->b.running);
    stop_fds[0] = send_get(run->port, "/v1/faults");
    stop_fds[1] = send_get(run->port, "/v1/metrics");
    int status = send_get(run->port, "/v1/status"); /* answered: both reads were dispatched */
    x->got_status = raw_answers(status, &x->status, 1, 1, &closed);
    close(status);
    uv_sem_post(&x->b.release); /* the join at reader_free must end */
}

static void reader_closed_with_reads_in_flight_frees_them(void **state)
{
    struct slow_read x = {.b.job = {.work = blocker_work, .done = blocker_done}};
    uv_sem_init(&x.b.release, 0);
    uv_sem_init(&x.b.running, 0);
    struct run run = {.client = stop_client,
                      .ctx = &x,
                      .reader = true,
                      .on_start = slow_read_start};
    run_serve(&run);
    assert_int_equal(x.got_status, 1);
    assert_true(x.b.done && x.b.ran);
    close(stop_fds[0]);
    close(stop_fds[1]);
    uv_sem_destroy(&x.b.release);
    uv_sem_destroy(&x.b.running);
}

int main(int argc, char **argv)
{
    /* --reader: every test again with the journal read on a reader. */
    apifix_reader = argc > 1 && strcmp(argv[1], "--reader") == 0;
    curl_global_init(CURL_GLOBAL_DEFAULT);
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(every_route_answers_200_with_json),
        T(connection_is_kept_alive_across_requests),
        T(status_answers_the_status_view),
        T(service_answers_the_named_service),
        T(service_unknown_is_404),
        T(unknown_path_is_404_naming_it),
        T(post_on_status_is_405_with_allow),
        T(mutating_calls_need_the_token),
        T(head_answers_like_get_without_body),
        T(fault_id_not_a_positive_integer_is_400),
        T(fault_unknown_id_is_404),
        T(faults_summary_is_not_read_as_a_fault_id),
        T(fault_answers_the_fault_with_its_actions),
        T(faults_filter_by_active_and_limit),
        T(limit_not_a_number_is_400),
        T(unknown_query_parameter_is_400),
        T(actions_filter_by_fault_and_limit),
        T(transitions_filter_by_the_decoded_service),
        T(lists_link_their_next_page),
        T(view_returning_null_is_500),
        T(missing_journal_is_500),
        T(api_free_closes_an_open_connection),
        T(api_listens_only_on_the_requested_address),
        T(api_new_names_the_address_in_use),
        T(one_connection_serves_requests_in_turn),
        T(http10_closes_unless_keep_alive_is_asked),
        T(pipelined_requests_are_answered_in_order),
        T(head_over_16_kib_is_431_then_closed),
        T(body_over_64_kib_is_413_then_closed),
        T(garbage_is_400_then_closed),
        T(chunked_body_is_411_then_closed),
        T(post_body_is_read_after_100_continue),
        T(idle_connection_is_closed_after_the_timeout),
        T(connections_beyond_256_are_closed_at_once),
        T(client_that_never_reads_is_not_read_either),
        T(api_free_with_open_and_half_sent_connections_empties_the_loop),
        T(api_listens_on_ipv6_loopback),
        T(api_accepts_port_0),
        T(dispatch_every_get_route_answers_200),
        T(dispatch_every_mutating_route_needs_the_token),
        T(dispatch_controls_reach_the_backend),
        T(dispatch_maps_backend_errors_to_statuses),
        T(dispatch_recover_reaches_the_backend),
        T(dispatch_recover_needs_a_strategy),
        T(dispatch_wrong_method_is_405_with_allow),
        T(dispatch_query_errors_are_400),
        T(dispatch_failing_views_are_500),
        T(dispatch_unknown_paths_are_404),
        T(status_answers_while_a_journal_read_is_slow),
        T(a_read_sees_the_writes_made_before_it),
        T(reader_closed_with_reads_in_flight_frees_them),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return r;
}
