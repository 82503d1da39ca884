/* The HTTP API over a real socket: the server runs in a uv loop on the main
 * thread, a client thread makes blocking libcurl requests against it. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <setjmp.h>
#include <cmocka.h>

#include "api/api.h"
#include "monitor/status.h"
#include "store/journal.h"

/* ---- a fake daemon over a real journal ------------------------------------------------- */

/* The lead's status views are faked (this file defines all four, so the
 * archive's monitor/status.o is never linked); the journal is the real one. */
struct daemon {
    bool status_fails;       /* status_view returns NULL */
    struct journal *journal; /* what daemon_journal answers */
};

json_t *status_view(struct daemon *d)
{
    if (d->status_fails)
        return NULL;
    return json_pack("{s:s, s:s, s:i}", "name", "fake", "state", "normal", "services", 1);
}

json_t *services_view(struct daemon *d)
{
    return json_pack("[{s:s, s:s}]", "name", "web", "state", "normal");
}

json_t *service_view(struct daemon *d, const char *name)
{
    if (strcmp(name, "web") != 0)
        return NULL;
    return json_pack("{s:s, s:s, s:n}", "name", "web", "state", "normal", "pid");
}

struct journal *daemon_journal(struct daemon *d) { return d->journal; }

static char tmp_dir[64];
static struct journal *journal;
static struct daemon fake_daemon;
static int64_t fault_ids[3]; /* web/http (open), db/tcp (resolved), web/process (open) */

static int64_t fault_add(const char *service, const char *check, uint64_t resolved_ms)
{
    struct fault f = {.type = FAULT_SOFTWARE, .severity = SEVERITY_HIGH,
                      .impact = IMPACT_SERVICE, .opened_ms = 1700000000000};
    snprintf(f.service, sizeof f.service, "%s", service);
    snprintf(f.check, sizeof f.check, "%s", check);
    snprintf(f.description, sizeof f.description, "%s %s failed", service, check);
    snprintf(f.context, sizeof f.context, "{}");
    assert_int_equal(journal_fault_open(journal, &f), 0);
    f.resolved_ms = resolved_ms;
    if (resolved_ms)
        assert_int_equal(journal_fault_resolve(journal, &f), 0);
    return f.id;
}

static void action_add(int64_t fault_id, const char *service)
{
    struct action a = {.fault_id = fault_id, .strategy = STRATEGY_RESTART,
                       .status = ACTION_COMPLETED, .created_ms = 1700000000100};
    snprintf(a.service, sizeof a.service, "%s", service);
    snprintf(a.params, sizeof a.params, "{}");
    assert_int_equal(journal_action_insert(journal, &a), 0);
}

/* Three faults, three actions (two of fault 0), three transitions. */
static int setup(void **state)
{
    char err[256], path[128];
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/test_api.XXXXXX");
    assert_non_null(mkdtemp(tmp_dir));
    snprintf(path, sizeof path, "%s/journal.db", tmp_dir);
    journal = journal_open(path, err, sizeof err);
    if (!journal)
        fail_msg("journal_open: %s", err);
    fault_ids[0] = fault_add("web", "http", 0);
    fault_ids[1] = fault_add("db", "tcp", 1700000005000);
    fault_ids[2] = fault_add("web", "process", 0);
    action_add(fault_ids[0], "web");
    action_add(fault_ids[0], "web");
    action_add(fault_ids[1], "db");
    journal_transition(journal, "my db", STATE_NORMAL, STATE_DEGRADED, "check", 1700000000000);
    journal_transition(journal, "web", STATE_NORMAL, STATE_DEGRADED, "check", 1700000000000);
    journal_transition(journal, NULL, STATE_NORMAL, STATE_DEGRADED, "fault", 1700000000000);
    fake_daemon = (struct daemon){.journal = journal};
    return 0;
}

static int teardown(void **state)
{
    static const char *const files[] = {"journal.db", "journal.db-wal", "journal.db-shm"};
    char path[128];
    journal_free(journal);
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(path, sizeof path, "%s/%s", tmp_dir, files[i]);
        unlink(path);
    }
    rmdir(tmp_dir);
    return 0;
}

/* ---- the client thread ----------------------------------------------------------------- */

struct http_req {
    const char *method;   /* NULL: GET */
    const char *path;     /* with the query */
    const char *body;     /* sent with the request when not NULL */
    long status;          /* answer: HTTP status, 0 when the request failed */
    CURLcode curl_err;    /* answer: CURLE_OK unless the transfer failed */
    char allow[64];       /* answer: Allow header */
    char content_type[64];/* answer: Content-Type header */
    char body_in[4096];   /* answer: body */
    size_t body_len;      /* bytes in body_in */
    long connects;        /* answer: new connections made (0: kept alive) */
};

struct run {
    struct http_req *reqs; /* done in order on one connection (keep-alive) */
    size_t n;
    unsigned port;         /* the API's */
    bool hold_socket;      /* leave an idle raw connection open at the end */
    int held_fd;           /* that connection, closed by the test */
    struct api *api;
    uv_async_t done;       /* the client is finished: stop the API */
};

static size_t body_cb(char *p, size_t size, size_t n, void *arg)
{
    struct http_req *r = arg;
    size_t len = size * n;
    size_t room = sizeof r->body_in - 1 - r->body_len;
    size_t k = len < room ? len : room;
    memcpy(r->body_in + r->body_len, p, k);
    r->body_len += k;
    r->body_in[r->body_len] = '\0';
    return len;
}

static void header_copy(const char *line, size_t len, const char *name, char *dst, size_t dlen)
{
    size_t n = strlen(name);
    if (len <= n || strncasecmp(line, name, n) != 0)
        return;
    line += n;
    len -= n;
    while (len && (*line == ' '))
        line++, len--;
    while (len && (line[len - 1] == '\r' || line[len - 1] == '\n'))
        len--;
    snprintf(dst, dlen, "%.*s", (int)len, line);
}

static size_t header_cb(char *p, size_t size, size_t n, void *arg)
{
    struct http_req *r = arg;
    header_copy(p, size * n, "Allow:", r->allow, sizeof r->allow);
    header_copy(p, size * n, "Content-Type:", r->content_type, sizeof r->content_type);
    return size * n;
}

static void http_do(CURL *c, unsigned port, struct http_req *r)
{
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", port, r->path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L); /* resets NOBODY and POSTFIELDS: set it first */
    curl_easy_setopt(c, CURLOPT_NOBODY, r->method && !strcmp(r->method, "HEAD") ? 1L : 0L);
    if (r->body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->body);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST,
                     r->method && strcmp(r->method, "HEAD") ? r->method : NULL);
    r->curl_err = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &r->connects);
}

static void *client_main(void *arg)
{
    struct run *run = arg;
    CURL *c = curl_easy_init();
    for (size_t i = 0; c && i < run->n; i++)
        http_do(c, run->port, &run->reqs[i]);
    curl_easy_cleanup(c);
    if (run->hold_socket) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(run->port)};
        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
        run->held_fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(run->held_fd, (struct sockaddr *)&sa, sizeof sa) == 0)
            (void)!write(run->held_fd, "GET /v1/sta", 11); /* half a request */
        usleep(100 * 1000); /* let the server accept it */
    }
    uv_async_send(&run->done);
    return NULL;
}

/* ---- the harness ----------------------------------------------------------------------- */

/* A port nobody listens on right now (bind to 0, read it, release it). */
static unsigned free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof sa;
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static void addr_make(struct sockaddr_storage *ss, const char *ip, unsigned port)
{
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    memset(ss, 0, sizeof *ss);
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    assert_int_equal(inet_pton(AF_INET, ip, &in->sin_addr), 1);
}

static void done_cb(uv_async_t *h)
{
    struct run *run = h->data;
    api_free(run->api);
    uv_close((uv_handle_t *)h, NULL);
}

/* Serve run->reqs from a fresh loop until the client is done, then free the
 * API and check that it left nothing in the loop. */
static void run_serve(struct run *run)
{
    uv_loop_t loop;
    struct sockaddr_storage ss;
    char err[256] = "";
    pthread_t t;

    assert_int_equal(uv_loop_init(&loop), 0);
    run->port = free_port();
    addr_make(&ss, "127.0.0.1", run->port);
    run->api = api_new(&loop, &fake_daemon, &ss, err, sizeof err);
    if (!run->api)
        fail_msg("api_new: %s", err);
    assert_int_equal(uv_async_init(&loop, &run->done, done_cb), 0);
    run->done.data = run;
    assert_int_equal(pthread_create(&t, NULL, client_main, run), 0);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    pthread_join(t, NULL);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void serve(struct http_req *reqs, size_t n)
{
    struct run run = {.reqs = reqs, .n = n};
    run_serve(&run);
}

/* The body as JSON, after checking the status and the JSON content type. */
static json_t *answer(const struct http_req *r, long status)
{
    json_error_t e;
    assert_int_equal(r->curl_err, CURLE_OK);
    assert_int_equal(r->status, status);
    assert_string_equal(r->content_type, "application/json");
    json_t *v = json_loads(r->body_in, 0, &e);
    if (!v)
        fail_msg("not JSON (%s): %s", e.text, r->body_in);
    assert_true(json_is_object(v) || json_is_array(v));
    return v;
}

/* The "error" string of an error answer (static copy). */
static const char *answer_error(const struct http_req *r, long status)
{
    static char msg[512];
    json_t *v = answer(r, status);
    const char *s = json_string_value(json_object_get(v, "error"));
    assert_non_null(s);
    snprintf(msg, sizeof msg, "%s", s);
    json_decref(v);
    return msg;
}

/* ---- tests ----------------------------------------------------------------------------- */

static void every_route_answers_200_with_json(void **state)
{
    struct http_req r[] = {
        {.path = "/v1/status"},        {.path = "/v1/services"},
        {.path = "/v1/services/web"},  {.path = "/v1/faults"},
        {.path = "/v1/faults/summary"}, {.path = "/v1/faults/1"},
        {.path = "/v1/actions"},       {.path = "/v1/transitions"},
    };
    serve(r, sizeof r / sizeof *r);
    for (size_t i = 0; i < sizeof r / sizeof *r; i++)
        json_decref(answer(&r[i], 200));
}

static void connection_is_kept_alive_across_requests(void **state)
{
    struct http_req r[] = {{.path = "/v1/status"}, {.path = "/v1/services"}, {.path = "/nope"},
                           {.path = "/v1/faults?limit=x"}, {.path = "/v1/status"}};
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
    struct http_req r[] = {{.path = "/v1/faults/abc"}, {.path = "/v1/faults/0"},
                           {.path = "/v1/faults/-3"}, {.path = "/v1/faults/12x"}};
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
    struct http_req r[] = {{.path = "/v1/faults"}, {.path = "/v1/faults?active=1"},
                           {.path = "/v1/faults?active=0"}, {.path = "/v1/faults?active"},
                           {.path = "/v1/faults?active=true&limit=1"}};
    serve(r, 5);
    assert_int_equal(answer_count(&r[0]), 3);
    assert_int_equal(answer_count(&r[1]), 2);
    assert_int_equal(answer_count(&r[2]), 3);
    assert_int_equal(answer_count(&r[3]), 2);
    json_t *v = answer(&r[4], 200);
    assert_int_equal(json_array_size(v), 1);
    /* newest first: the open web/process fault */
    assert_int_equal(json_integer_value(json_object_get(json_array_get(v, 0), "id")),
                     fault_ids[2]);
    json_decref(v);
}

static void limit_not_a_number_is_400(void **state)
{
    struct http_req r[] = {{.path = "/v1/faults?limit=abc"}, {.path = "/v1/actions?limit=0"},
                           {.path = "/v1/transitions?limit=99999999999999999999"},
                           {.path = "/v1/faults?limit="}, {.path = "/v1/faults?active=maybe"},
                           {.path = "/v1/actions?fault=x"}, {.path = "/v1/transitions?service="}};
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
                        "unknown query parameter 'activ'; accepted: active,limit");
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
    fake_daemon.status_fails = true;
    struct http_req r = {.path = "/v1/status"};
    serve(&r, 1);
    answer_error(&r, 500);
}

static void missing_journal_is_500(void **state)
{
    fake_daemon.journal = NULL;
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
    struct sockaddr_storage ss;
    char err[256];
    unsigned port = free_port();
    assert_int_equal(uv_loop_init(&loop), 0);
    addr_make(&ss, "127.0.0.1", port);
    struct api *a = api_new(&loop, &fake_daemon, &ss, err, sizeof err);
    assert_non_null(a);
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
    char err[256] = "";
    char want[128];
    unsigned port = free_port();
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    addr_make(&ss, "127.0.0.1", port);
    assert_int_equal(bind(fd, (struct sockaddr *)&ss, sizeof(struct sockaddr_in)), 0);
    assert_int_equal(listen(fd, 1), 0);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_null(api_new(&loop, &fake_daemon, &ss, err, sizeof err));
    snprintf(want, sizeof want, "cannot listen on 127.0.0.1:%u: Address already in use", port);
    assert_string_equal(err, want);
    close(fd);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
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
        T(view_returning_null_is_500),
        T(missing_journal_is_500),
        T(api_free_closes_an_open_connection),
        T(api_listens_only_on_the_requested_address),
        T(api_new_names_the_address_in_use),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return r;
}
