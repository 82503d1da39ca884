/* lib/http-client against a small HTTP/1.1 server in the same loop: the
 * path of the url picks the server's answer. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "httpsrv.h"
#include "lib/clock.h"
#include "lib/http-client.h"
#include "lib/uvclock.h"
#include "loopwait.h"

/* ---- the canned server's answers (httpsrv.h): the path picks one ---- */

#define SEND(k, lit) srv_send(k, lit, sizeof lit - 1)
#define FOX "HTTP/1.1 200 OK\r\nContent-Length: 19\r\n\r\nthe quick brown fox"

static bool answer(struct srv_conn *k, const char *path)
{
    if (k->drop_next || strcmp(path, "/drop") == 0) {
        srv_conn_close(k); /* as a keep-alive timeout racing the request does */
        return false;
    }
    if (strcmp(path, "/ok") == 0) {
        SEND(k, FOX);
    } else if (strcmp(path, "/close") == 0) {
        SEND(k, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok");
    } else if (strcmp(path, "/close-next") == 0) {
        SEND(k, FOX);
        k->drop_next = true;
    } else if (strcmp(path, "/extra") == 0) {
        SEND(k, FOX "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    } else if (strcmp(path, "/head-only") == 0) {
        SEND(k, "HTTP/1.1 201 Created\r\nContent-Length: 1000\r\n\r\n{\"partial");
    } else if (strcmp(path, "/garbage") == 0) {
        SEND(k, "SSH-2.0-OpenSSH_9.2\r\n");
    } else if (strcmp(path, "/eof") == 0) {
        SEND(k, "HTTP/1.1 200 OK\r\n\r\nthe body ends at close");
        srv_conn_close(k);
        return false;
    } else if (strcmp(path, "/hang") != 0) {
        SEND(k, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    }
    return true;
}

/* ---- the fixture: a loop, the server, clients, their results ---- */

#define NCLIENT 20
#define GOT_MAX 64

struct got {
    int err, status;
    enum http_client_stage stage;
    enum http_response_error bad;
    char body[64];   /* NUL-terminated copy */
    size_t body_len; /* bytes */
    int client;      /* which of fx.cl */
};

struct fx {
    uv_loop_t loop;
    struct srv srv;
    struct http_client *cl[NCLIENT];
    struct got got[GOT_MAX];
    int n_got;
    /* Run inside the callback, as an owner would. */
    void (*hook)(struct fx *f, int client, const struct http_result *res);
    int hook_left;      /* how many more times the hook may act */
    uv_timer_t hold[2]; /* hold the loop, when holding */
    bool holding;
    int hold_runs;
};

static struct fx *fx_now; /* the test's fixture, for the callbacks */

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    srv_start(&f->loop, &f->srv, answer);
    fx_now = f;
    *state = f;
    return 0;
}

/* Every handle closed, the loop empty. */
static int fx_teardown(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < NCLIENT; i++)
        http_client_free(f->cl[i]);
    for (int i = 0; f->holding && i < 2; i++)
        uv_close((uv_handle_t *)&f->hold[i], NULL);
    srv_stop(&f->srv);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

static void fx_cb(void *arg, const struct http_result *res)
{
    struct fx *f = fx_now;
    int i = (int)(intptr_t)arg;
    assert_true(f->n_got < GOT_MAX);
    struct got *g = &f->got[f->n_got++];
    g->err = res->err;
    g->status = res->status;
    g->stage = res->stage;
    g->bad = res->bad;
    g->client = i;
    g->body_len = res->body_len;
    assert_true(res->body_len < sizeof g->body);
    memcpy(g->body, res->body ? res->body : "", res->body_len);
    g->body[res->body_len] = '\0';
    if (f->hook && f->hook_left-- > 0)
        f->hook(f, i, res);
}

/* Client i of http://127.0.0.1:<port><path> (port 0: the server's). */
static struct http_client *fx_client(struct fx *f, int i, int port, const char *path,
                                     const struct http_request *rq)
{
    static const struct http_request get = {.method = "GET", .keep = 10};
    char url[256], why[128];
    struct url u;
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port ? port : f->srv.port, path);
    assert_int_equal(url_parse(url, &u, why, sizeof why), 0);
    f->cl[i] = http_client_new(&f->loop, &u, rq ? rq : &get);
    assert_non_null(f->cl[i]);
    return f->cl[i];
}

static int fx_start(struct fx *f, int i, uint64_t timeout_ms)
{
    return http_client_start(f->cl[i], timeout_ms, fx_cb, (void *)(intptr_t)i);
}

/* Run the loop until n results in all (and not more). */
static void fx_wait(struct fx *f, int n)
{
    loopwait_until(&f->loop, f->n_got >= n);
    assert_int_equal(f->n_got, n);
}

/* One request of client i: the callback comes from the loop, never from
 * inside start, and only once. */
static const struct got *fx_request(struct fx *f, int i, uint64_t timeout_ms)
{
    int before = f->n_got;
    assert_int_equal(fx_start(f, i, timeout_ms), 0);
    assert_int_equal(f->n_got, before);
    fx_wait(f, before + 1);
    assert_int_equal(f->got[before].client, i);
    return &f->got[before];
}

/* ---- answers ---- */

static void get_returns_status_and_the_kept_head_of_the_body(void **state)
{
    struct fx *f = *state;
    fx_client(f, 0, 0, "/ok", NULL);
    const struct got *g = fx_request(f, 0, 1000);
    assert_int_equal(g->err, 0);
    assert_int_equal(g->status, 200);
    assert_string_equal(g->body, "the quick "); /* keep = 10 */
    assert_int_equal(g->bad, HTTP_RESPONSE_E_NONE);
    assert_non_null(strstr(f->srv.last, "GET /ok HTTP/1.1\r\nHost: 127.0.0.1:"));
}

static void requests_reuse_the_kept_connection(void **state)
{
    struct fx *f = *state;
    fx_client(f, 0, 0, "/ok", NULL);
    for (int i = 0; i < 3; i++)
        assert_int_equal(fx_request(f, 0, 1000)->status, 200);
    assert_int_equal(f->srv.requests, 3);
    assert_int_equal(f->srv.accepted, 1);
}

static void a_connection_past_reuse_ms_is_replaced(void **state)
{
    struct fx *f = *state;
    const struct http_request rq = {.method = "GET", .reuse_ms = 100};
    fx_client(f, 0, 0, "/ok", &rq);
    assert_int_equal(fx_request(f, 0, 1000)->status, 200);
    uv_sleep(120); /* the connection ages past reuse_ms */
    assert_int_equal(fx_request(f, 0, 1000)->status, 200);
    assert_int_equal(f->srv.requests, 2);
    assert_int_equal(f->srv.accepted, 2);
}

static void connection_close_answer_is_not_reused(void **state)
{
    struct fx *f = *state;
    fx_client(f, 0, 0, "/close", NULL);
    for (int i = 0; i < 2; i++)
        assert_int_equal(fx_request(f, 0, 1000)->status, 200);
    assert_int_equal(f->srv.accepted, 2);
}

static void bytes_past_the_answer_end_the_connection(void **state)
{
    struct fx *f = *state;
    fx_client(f, 0, 0, "/extra", NULL);
    for (int i = 0; i < 2; i++)
        assert_int_equal(fx_request(f, 0, 1000)->status, 200);
    assert_int_equal(f->srv.accepted, 2);
}

static void body_ending_at_close_is_a_whole_answer(void **state)
{
    struct fx *f = *state;
    const struct http_request rq = {.method = "GET", .keep = 40};
    fx_client(f, 0, 0, "/eof", &rq);
    const struct got *g = fx_request(f, 0, 1000);
    assert_int_equal(g->err, 0);
    assert_string_equal(g->body, "the body ends at close");
}

static void post_sends_its_body_and_is_done_at_the_head(void **state)
{
    struct fx *f = *state;
    const struct http_request rq = {.method = "POST",
                                    .headers = "Content-Type: application/json\r\n",
                                    .body = "{\"a\":1}",
                                    .body_len = 7,
                                    .head_only = true};
    char want[512];
    fx_client(f, 0, 0, "/head-only", &rq);
    /* The server never sends the 1000 bytes it announces. */
    const struct got *g = fx_request(f, 0, 5000);
    assert_int_equal(g->err, 0);
    assert_int_equal(g->status, 201);
    snprintf(want, sizeof want,
             "POST /head-only HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: recoverd\r\n"
             "Content-Type: application/json\r\nContent-Length: 7\r\nConnection: close\r\n\r\n"
             "{\"a\":1}",
             f->srv.port);
    assert_string_equal(f->srv.last, want);
    assert_int_equal(fx_request(f, 0, 5000)->status, 201);
    assert_int_equal(f->srv.accepted, 2);
}

/* ---- failures ---- */

static void silent_server_times_out(void **state)
{
    struct fx *f = *state;
    fx_client(f, 0, 0, "/hang", NULL);
    uint64_t t0 = clock_mono_us();
    const struct got *g = fx_request(f, 0, 100);
    uint64_t took_ms = (clock_mono_us() - t0) / 1000;
    assert_int_equal(g->err, UV_ETIMEDOUT);
    assert_int_equal(g->stage, HTTP_CLIENT_RECV);
    /* libuv's loop clock ticks in 4 ms (CLOCK_MONOTONIC_COARSE). */
    assert_true(took_ms + 4 >= 100);
}

static void refused_connect_is_a_connect_error(void **state)
{
    struct fx *f = *state;
    fx_client(f, 0, port_closed(), "/ok", NULL);
    const struct got *g = fx_request(f, 0, 5000);
    assert_int_equal(g->err, UV_ECONNREFUSED);
    assert_int_equal(g->stage, HTTP_CLIENT_CONNECT);
    assert_int_equal(g->status, 0);
}

static void unknown_name_is_a_resolve_error(void **state)
{
    struct fx *f = *state;
    const struct http_request rq = {.method = "GET"};
    struct url u;
    char why[128];
    /* .invalid never resolves (RFC 6761). */
    assert_int_equal(url_parse("http://no-such-host.invalid/ok", &u, why, sizeof why), 0);
    assert_non_null(f->cl[0] = http_client_new(&f->loop, &u, &rq));
    const struct got *g = fx_request(f, 0, 5000);
    assert_int_equal(g->stage, HTTP_CLIENT_RESOLVE);
    assert_true(g->err < 0 && g->err != UV_ETIMEDOUT);
}

static void name_is_looked_up_once_for_kept_requests(void **state)
{
    struct fx *f = *state;
    const struct http_request rq = {.method = "GET"};
    char url[128], why[128];
    struct url u;
    snprintf(url, sizeof url, "http://localhost:%d/ok", f->srv.port);
    assert_int_equal(url_parse(url, &u, why, sizeof why), 0);
    assert_non_null(f->cl[0] = http_client_new(&f->loop, &u, &rq));
    const struct got *g = fx_request(f, 0, 5000);
    if (g->stage == HTTP_CLIENT_CONNECT && g->err == UV_ECONNREFUSED)
        skip(); /* localhost is ::1 first here, and the server is on 127.0.0.1 */
    assert_int_equal(g->status, 200);
    assert_int_equal(fx_request(f, 0, 5000)->status, 200);
    assert_int_equal(f->srv.accepted, 1);
    assert_non_null(strstr(f->srv.last, "\r\nHost: localhost:"));
}

static void malformed_answer_is_eproto_with_its_error(void **state)
{
    struct fx *f = *state;
    fx_client(f, 0, 0, "/garbage", NULL);
    const struct got *g = fx_request(f, 0, 5000);
    assert_int_equal(g->err, UV_EPROTO);
    assert_int_equal(g->bad, HTTP_RESPONSE_E_STATUS_LINE);
    assert_int_equal(g->stage, HTTP_CLIENT_RECV);
}

static void close_without_answer_is_an_empty_reply(void **state)
{
    struct fx *f = *state;
    fx_client(f, 0, 0, "/drop", NULL);
    const struct got *g = fx_request(f, 0, 5000);
    assert_int_equal(g->err, UV_EPROTO);
    assert_int_equal(g->bad, HTTP_RESPONSE_E_EMPTY);
    assert_int_equal(f->srv.accepted, 1); /* a fresh connection is not retried */
}

static void stale_kept_connection_is_retried_once(void **state)
{
    struct fx *f = *state;
    fx_client(f, 0, 0, "/close-next", NULL);
    /* Each request after the first meets a server that hangs up on it:
     * the request moves to a fresh connection, where it is answered. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(fx_request(f, 0, 5000)->status, 200);
    assert_int_equal(f->srv.accepted, 3);
    assert_int_equal(f->srv.requests, 5);
}

/* ---- ownership ---- */

static void start_while_in_flight_is_ebusy(void **state)
{
    struct fx *f = *state;
    fx_client(f, 0, 0, "/ok", NULL);
    assert_int_equal(fx_start(f, 0, 1000), 0);
    assert_int_equal(fx_start(f, 0, 1000), -EBUSY);
    fx_wait(f, 1);
    assert_int_equal(f->got[0].status, 200);
}

static void cancel_calls_nothing_and_drops_the_connection(void **state)
{
    struct fx *f = *state;
    fx_client(f, 0, 0, "/hang", NULL);
    assert_int_equal(fx_start(f, 0, 100), 0);
    loopwait_until(&f->loop, f->srv.requests >= 1);
    assert_int_equal(f->srv.requests, 1);
    http_client_cancel(f->cl[0]);
    http_client_cancel(f->cl[0]); /* idle: nothing to do */
    loopwait_idle(&f->loop, 250); /* past the cancelled deadline */
    assert_int_equal(f->n_got, 0);
    assert_int_equal(fx_request(f, 0, 50)->err, UV_ETIMEDOUT);
    assert_int_equal(f->srv.accepted, 2);
}

static void free_hook(struct fx *f, int i, const struct http_result *res)
{
    http_client_free(f->cl[i]);
    f->cl[i] = NULL;
}

static void free_inside_the_callback_is_safe(void **state)
{
    struct fx *f = *state;
    f->hook = free_hook;
    f->hook_left = NCLIENT;
    for (int i = 0; i < NCLIENT; i++) {
        fx_client(f, i, 0, i % 2 ? "/ok" : "/garbage", NULL);
        assert_int_equal(fx_start(f, i, 5000), 0);
    }
    fx_wait(f, NCLIENT);
    for (int i = 0; i < NCLIENT; i++)
        assert_null(f->cl[i]);
}

static void restart_hook(struct fx *f, int i, const struct http_result *res)
{
    assert_int_equal(fx_start(f, i, 1000), 0);
}

static void start_inside_the_callback_runs_the_next_request(void **state)
{
    struct fx *f = *state;
    f->hook = restart_hook;
    f->hook_left = 9;
    fx_client(f, 0, 0, "/ok", NULL);
    assert_int_equal(fx_start(f, 0, 1000), 0);
    fx_wait(f, 10);
    for (int i = 0; i < 10; i++)
        assert_int_equal(f->got[i].status, 200);
    assert_int_equal(f->srv.accepted, 1);
}

static void free_while_connecting_or_resolving_calls_nothing(void **state)
{
    struct fx *f = *state;
    const struct http_request rq = {.method = "GET"};
    char url[128], why[128];
    struct url u;
    fx_client(f, 0, 0, "/ok", NULL);
    assert_int_equal(fx_start(f, 0, 1000), 0);
    http_client_free(f->cl[0]); /* connecting */
    f->cl[0] = NULL;
    snprintf(url, sizeof url, "http://localhost:%d/ok", f->srv.port);
    assert_int_equal(url_parse(url, &u, why, sizeof why), 0);
    assert_non_null(f->cl[1] = http_client_new(&f->loop, &u, &rq));
    assert_int_equal(fx_start(f, 1, 1000), 0);
    http_client_free(f->cl[1]); /* resolving */
    f->cl[1] = NULL;
    http_client_free(NULL);
    loopwait_idle(&f->loop, 100);
    assert_int_equal(f->n_got, 0);
    /* teardown: the loop ends empty */
}

static void many_clients_each_report_once(void **state)
{
    struct fx *f = *state;
    int seen[NCLIENT] = {0};
    for (int round = 0; round < 2; round++) {
        f->n_got = 0;
        for (int i = 0; i < NCLIENT; i++) {
            if (!round)
                fx_client(f, i, 0, i % 2 ? "/ok" : "/close", NULL);
            assert_int_equal(fx_start(f, i, 5000), 0);
        }
        fx_wait(f, NCLIENT);
        for (int k = 0; k < NCLIENT; k++) {
            assert_int_equal(f->got[k].status, 200);
            seen[f->got[k].client]++;
        }
    }
    for (int i = 0; i < NCLIENT; i++)
        assert_int_equal(seen[i], 2);
    /* The second round rode the kept connections of the /ok half. */
    assert_int_equal(f->srv.accepted, NCLIENT + NCLIENT / 2);
}

/* A bare server socket outside the loop (it answers while the loop does
 * not run): client 0 asks it with a 1000 ms deadline, and the answer is
 * written once the loop has sent the request. Returns the accepted
 * socket; *ls the listening one. */
static int bare_server_answered(struct fx *f, int *ls)
{
    *ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    assert_true(*ls >= 0);
    assert_int_equal(bind(*ls, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(*ls, 4), 0);
    assert_int_equal(getsockname(*ls, (struct sockaddr *)&a, &alen), 0);
    fx_client(f, 0, ntohs(a.sin_port), "/", NULL);
    assert_int_equal(fx_start(f, 0, 1000), 0);
    int k = accept4(*ls, NULL, NULL, SOCK_CLOEXEC); /* the kernel's handshake: no loop needed */
    assert_true(k >= 0);
    char buf[1024];
    /* The loop writes the request. */
    loopwait_until(&f->loop, recv(k, buf, sizeof buf, MSG_DONTWAIT | MSG_PEEK) > 0);
    assert_true(recv(k, buf, sizeof buf, 0) > 0);
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    assert_int_equal(write(k, ok, sizeof ok - 1), (ssize_t)(sizeof ok - 1));
    return k;
}

/* An answer that arrived while the loop was held past the deadline is
 * read, not failed: the deadline is judged after the loop read once. The
 * server here is a bare socket outside the loop, so that it answers while
 * the loop does not run. */
static void answer_waiting_after_a_held_loop_is_no_timeout(void **state)
{
    struct fx *f = *state;
    int ls, k = bare_server_answered(f, &ls);
    usleep(1100 * 1000); /* the loop held past the 1000 ms deadline */
    fx_wait(f, 1);
    assert_int_equal(f->got[0].err, 0);
    assert_int_equal(f->got[0].status, 200);
    close(k);
    close(ls);
}

/* Two timers that hold the loop HOLD_NAP_MS each and re-arm themselves at
 * 1 ms (a loop busy with probes on a starved host), until the answer is
 * in or HOLD_RUNS have run: far past the request's deadline. */
#define HOLD_NAP_MS 40
#define HOLD_RUNS 40

static void hold_cb(uv_timer_t *t)
{
    struct fx *f = t->data;
    loopwait_nap(HOLD_NAP_MS); /* the work of a callback, not a wait for anything */
    if (++f->hold_runs < HOLD_RUNS && f->n_got == 0)
        uvclock_arm(t, hold_cb, 1);
}

/* The same with the loop held by timers that keep arming timers: the
 * deadline is judged only after the loop has polled, not in a timers
 * phase that timers armed during it would make last past it (libuv 1.44
 * runs every timer due by its cached time in one phase: the clock must
 * not move while timers run). At 3,000 services such a phase failed every
 * probe at once, their answers waiting unread. */
static void answer_waiting_while_timers_hold_the_loop_is_no_timeout(void **state)
{
    struct fx *f = *state;
    int ls, k = bare_server_answered(f, &ls);
    f->holding = true;
    for (int i = 0; i < 2; i++) {
        uv_timer_init(&f->loop, &f->hold[i]);
        f->hold[i].data = f;
        uv_timer_start(&f->hold[i], hold_cb, 0, 0);
    }
    fx_wait(f, 1);
    close(k);
    close(ls);
    assert_int_equal(f->got[0].err, 0);
    assert_int_equal(f->got[0].status, 200);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(get_returns_status_and_the_kept_head_of_the_body),
        T(requests_reuse_the_kept_connection),
        T(a_connection_past_reuse_ms_is_replaced),
        T(connection_close_answer_is_not_reused),
        T(bytes_past_the_answer_end_the_connection),
        T(body_ending_at_close_is_a_whole_answer),
        T(post_sends_its_body_and_is_done_at_the_head),
        T(silent_server_times_out),
        T(answer_waiting_after_a_held_loop_is_no_timeout),
        T(answer_waiting_while_timers_hold_the_loop_is_no_timeout),
        T(refused_connect_is_a_connect_error),
        T(unknown_name_is_a_resolve_error),
        T(name_is_looked_up_once_for_kept_requests),
        T(malformed_answer_is_eproto_with_its_error),
        T(close_without_answer_is_an_empty_reply),
        T(stale_kept_connection_is_retried_once),
        T(start_while_in_flight_is_ebusy),
        T(cancel_calls_nothing_and_drops_the_connection),
        T(free_inside_the_callback_is_safe),
        T(start_inside_the_callback_runs_the_next_request),
        T(free_while_connecting_or_resolving_calls_nothing),
        T(many_clients_each_report_once),
    };
    signal(SIGPIPE, SIG_IGN); /* as the daemon does: a write to a closed peer is an error */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
