/* The http detector against a small HTTP/1.1 server running in the same loop. */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/clock.h"
#include "core/config-t.h"
#include "detect/http.h"
#include "detect/kinds.h"

/* ---- the fake of detect/check.c ---- */

#define GOT_MAX 256
static struct observation got[GOT_MAX]; /* reports in arrival order */
static struct check *got_check[GOT_MAX];
static int n_got;
/* Optional hook run inside check_report, as the real scheduler would. */
static void (*report_hook)(struct check *c);

void check_report(struct check *c, struct observation *obs)
{
    assert_true(n_got < GOT_MAX);
    c->in_flight = false;
    got_check[n_got] = c;
    got[n_got++] = *obs;
    if (report_hook)
        report_hook(c);
}

/* ---- a canned HTTP server: the path picks the answer ---- */

struct conn {
    uv_tcp_t tcp;              /* data = this */
    struct srv *srv;           /* owner */
    size_t len;                /* bytes in buf */
    char buf[2048];            /* request bytes not yet answered */
    struct conn *next, **pprev;
};

struct srv {
    uv_tcp_t listener;   /* data = this */
    int port;            /* 127.0.0.1 port, host order */
    int accepted;        /* connections accepted */
    int requests;        /* requests answered or swallowed */
    struct conn *conns;  /* open connections */
};

static void conn_close_cb(uv_handle_t *h)
{
    free(h->data);
}

static void conn_close(struct conn *k)
{
    *k->pprev = k->next;
    if (k->next)
        k->next->pprev = k->pprev;
    uv_close((uv_handle_t *)&k->tcp, conn_close_cb);
}

static void write_cb(uv_write_t *w, int status)
{
    free(w);
}

static void conn_send(struct conn *k, int status, const char *body, size_t body_len,
                      const char *extra)
{
    size_t cap = 256 + body_len;
    uv_write_t *w = malloc(sizeof *w + cap);
    char *out = (char *)(w + 1);
    int n = snprintf(out, cap,
                     "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n%sConnection: keep-alive\r\n\r\n",
                     status, body_len, extra);
    memcpy(out + n, body, body_len);
    uv_buf_t b = uv_buf_init(out, (unsigned)(n + body_len));
    assert_int_equal(uv_write(w, (uv_stream_t *)&k->tcp, &b, 1, write_cb), 0);
}

static void conn_answer(struct conn *k, const char *path)
{
    static char big[10000];
    k->srv->requests++;
    if (strcmp(path, "/ok") == 0)
        conn_send(k, 200, "hello", 5, "");
    else if (strcmp(path, "/fail") == 0)
        conn_send(k, 500, "oops", 4, "");
    else if (strcmp(path, "/fox") == 0)
        conn_send(k, 200, "the quick brown fox", 19, "");
    else if (strcmp(path, "/204") == 0)
        conn_send(k, 204, "", 0, "");
    else if (strcmp(path, "/moved") == 0)
        conn_send(k, 302, "", 0, "Location: /ok\r\n");
    else if (strcmp(path, "/big") == 0) {
        /* The marker sits past the 4 KiB the detector keeps. */
        memset(big, 'x', sizeof big);
        memcpy(big + sizeof big - 6, "needle", 6);
        conn_send(k, 200, big, sizeof big, "");
    } else if (strcmp(path, "/hang") != 0)
        conn_send(k, 404, "", 0, "");
}

static void conn_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    struct conn *k = h->data;
    *b = uv_buf_init(k->buf + k->len, (unsigned)(sizeof k->buf - k->len - 1));
}

static void conn_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct conn *k = s->data;
    char *end, path[256];
    if (n < 0) {
        conn_close(k);
        return;
    }
    k->len += (size_t)n;
    k->buf[k->len] = '\0';
    if (k->len >= 4 && memcmp(k->buf, "GET ", 4) != 0) {
        /* Not HTTP (a TLS hello): say so in plain text and hang up. */
        uv_buf_t no = uv_buf_init("HTTP/1.1 400 Bad\r\n\r\n", 21);
        uv_try_write(s, &no, 1);
        conn_close(k);
        return;
    }
    while ((end = strstr(k->buf, "\r\n\r\n"))) {
        if (sscanf(k->buf, "GET %255s HTTP/1.1", path) == 1)
            conn_answer(k, path);
        size_t used = (size_t)(end + 4 - k->buf);
        memmove(k->buf, end + 4, k->len - used + 1);
        k->len -= used;
    }
}

static void srv_conn_cb(uv_stream_t *l, int status)
{
    struct srv *srv = l->data;
    struct conn *k = calloc(1, sizeof *k);
    assert_int_equal(status, 0);
    uv_tcp_init(l->loop, &k->tcp);
    k->tcp.data = k;
    k->srv = srv;
    assert_int_equal(uv_accept(l, (uv_stream_t *)&k->tcp), 0);
    k->next = srv->conns;
    if (k->next)
        k->next->pprev = &k->next;
    k->pprev = &srv->conns;
    srv->conns = k;
    srv->accepted++;
    uv_read_start((uv_stream_t *)&k->tcp, conn_alloc_cb, conn_read_cb);
}

static void srv_start(uv_loop_t *loop, struct srv *srv)
{
    struct sockaddr_in a;
    struct sockaddr_storage ss;
    int len = sizeof ss;
    memset(srv, 0, sizeof *srv);
    uv_ip4_addr("127.0.0.1", 0, &a);
    assert_int_equal(uv_tcp_init(loop, &srv->listener), 0);
    srv->listener.data = srv;
    assert_int_equal(uv_tcp_bind(&srv->listener, (struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&srv->listener, 128, srv_conn_cb), 0);
    uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &len);
    srv->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void srv_stop(struct srv *srv)
{
    while (srv->conns)
        conn_close(srv->conns);
    uv_close((uv_handle_t *)&srv->listener, NULL);
}

/* A port nobody listens on: bound, read, released. */
static int port_closed(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, len), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* ---- fixture: a loop, the server, http initialised, checks built by hand ---- */

#define NCHECK 50

struct probe_check {
    struct check c;
    struct check_cfg cfg;
    struct http_params hp;
    char url[128];
};

struct fx {
    uv_loop_t loop;
    uv_timer_t guard;              /* wakes uv_run so waits can give up */
    struct srv srv;
    struct probe_check pc[NCHECK];
};

static void guard_cb(uv_timer_t *t)
{
}

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    uv_timer_init(&f->loop, &f->guard);
    uv_timer_start(&f->guard, guard_cb, 50, 50);
    srv_start(&f->loop, &f->srv);
    assert_int_equal(http_detector.init(&f->loop), 0);
    n_got = 0;
    report_hook = NULL;
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < NCHECK; i++)
        http_detector.release(&f->pc[i].c);
    http_detector.shutdown();
    srv_stop(&f->srv);
    uv_close((uv_handle_t *)&f->guard, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

static struct check *fx_check(struct fx *f, int i, int port, const char *path)
{
    struct probe_check *pc = &f->pc[i];
    http_detector.params_init(&pc->hp);
    snprintf(pc->url, sizeof pc->url, "http://127.0.0.1:%d%s", port ? port : f->srv.port, path);
    pc->hp.url = pc->url;
    pc->cfg.name = "http";
    pc->cfg.ops = &http_detector;
    pc->cfg.params = &pc->hp;
    pc->cfg.timeout_ms = 1000;
    pc->cfg.severity = -1;
    pc->c.cfg = &pc->cfg;
    pc->c.ops = &http_detector;
    return &pc->c;
}

/* Run the loop until `n` reports in all, or give up after 5 s. */
static void fx_wait(struct fx *f, int n)
{
    uint64_t deadline = clock_mono_us() + 5000000;
    while (n_got < n && clock_mono_us() < deadline)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(n_got, n);
}

/* One probe; asserts it did not report from inside start. */
static const struct observation *fx_probe(struct fx *f, struct check *c)
{
    int before = n_got;
    assert_int_equal(http_detector.start(c), 0);
    assert_int_equal(n_got, before);
    fx_wait(f, before + 1);
    assert_ptr_equal(got_check[before], c);
    return &got[before];
}

/* ---- tests ---- */

static void http_2xx_is_ok(void **state)
{
    struct fx *f = *state;
    const struct observation *o = fx_probe(f, fx_check(f, 0, 0, "/ok"));
    assert_true(o->ok);
    assert_int_equal(o->code, 200);
    assert_string_equal(o->reason, "HTTP 200");
}

static void http_500_is_software_high(void **state)
{
    struct fx *f = *state;
    const struct observation *o = fx_probe(f, fx_check(f, 0, 0, "/fail"));
    assert_false(o->ok);
    assert_int_equal(o->code, 500);
    assert_int_equal(o->type, FAULT_SOFTWARE);
    assert_int_equal(o->severity, SEVERITY_HIGH);
    assert_string_equal(o->reason, "HTTP 500");
}

static void http_body_containing_substring_is_ok(void **state)
{
    struct fx *f = *state;
    struct check *c = fx_check(f, 0, 0, "/fox");
    f->pc[0].hp.expect_body = "brown";
    assert_true(fx_probe(f, c)->ok);
}

static void http_body_missing_substring_is_software_high(void **state)
{
    struct fx *f = *state;
    struct check *c = fx_check(f, 0, 0, "/fox");
    f->pc[0].hp.expect_body = "lazy dog";
    const struct observation *o = fx_probe(f, c);
    assert_false(o->ok);
    assert_int_equal(o->code, 200);
    assert_int_equal(o->type, FAULT_SOFTWARE);
    assert_int_equal(o->severity, SEVERITY_HIGH);
    assert_string_equal(o->reason, "body does not contain \"lazy dog\"");
}

static void http_body_match_sees_only_first_4k(void **state)
{
    struct fx *f = *state;
    struct check *c = fx_check(f, 0, 0, "/big");
    f->pc[0].hp.expect_body = "needle";
    const struct observation *o = fx_probe(f, c);
    assert_false(o->ok);
    assert_string_equal(o->reason, "body does not contain \"needle\"");
    f->pc[0].hp.expect_body = "xxxx";
    assert_true(fx_probe(f, c)->ok);
}

static void http_expected_status_replaces_2xx(void **state)
{
    struct fx *f = *state;
    struct check *c = fx_check(f, 0, 0, "/204");
    f->pc[0].hp.expect_status = 204;
    assert_true(fx_probe(f, c)->ok);
    c = fx_check(f, 1, 0, "/ok");
    f->pc[1].hp.expect_status = 204;
    const struct observation *o = fx_probe(f, c);
    assert_false(o->ok);
    assert_int_equal(o->code, 200);
    assert_string_equal(o->reason, "HTTP 200 (expected 204)");
}

static void http_redirect_is_not_followed(void **state)
{
    struct fx *f = *state;
    const struct observation *o = fx_probe(f, fx_check(f, 0, 0, "/moved"));
    assert_false(o->ok);
    assert_int_equal(o->code, 302);
    assert_int_equal(f->srv.requests, 1);
}

static void http_silent_server_times_out_network_medium(void **state)
{
    struct fx *f = *state;
    struct check *c = fx_check(f, 0, 0, "/hang");
    f->pc[0].cfg.timeout_ms = 200;
    uint64_t t0 = clock_mono_us();
    const struct observation *o = fx_probe(f, c);
    uint64_t took_ms = (clock_mono_us() - t0) / 1000;
    assert_false(o->ok);
    assert_int_equal(o->type, FAULT_NETWORK);
    assert_int_equal(o->severity, SEVERITY_MEDIUM);
    assert_int_equal(o->code, -1);
    assert_string_equal(o->reason, "timeout after 200 ms");
    assert_true(took_ms >= 190 && took_ms < 1000);
}

static void http_closed_port_is_network_high_with_curl_words(void **state)
{
    struct fx *f = *state;
    const struct observation *o = fx_probe(f, fx_check(f, 0, port_closed(), "/ok"));
    assert_false(o->ok);
    assert_int_equal(o->type, FAULT_NETWORK);
    assert_int_equal(o->severity, SEVERITY_HIGH);
    assert_int_equal(o->code, -1);
    assert_non_null(strstr(o->reason, "Failed to connect"));
    assert_non_null(strstr(o->reason, "(Connection refused)"));
}

static void http_tls_to_plain_server_is_network_high(void **state)
{
    struct fx *f = *state;
    struct check *c = fx_check(f, 0, 0, "/ok");
    snprintf(f->pc[0].url, sizeof f->pc[0].url, "https://127.0.0.1:%d/ok", f->srv.port);
    const struct observation *o = fx_probe(f, c);
    assert_false(o->ok);
    assert_int_equal(o->type, FAULT_NETWORK);
    assert_int_equal(o->severity, SEVERITY_HIGH);
    assert_true(strlen(o->reason) > 0);
}

static void http_probes_of_one_check_reuse_the_connection(void **state)
{
    struct fx *f = *state;
    struct check *c = fx_check(f, 0, 0, "/ok");
    for (int i = 0; i < 5; i++)
        assert_true(fx_probe(f, c)->ok);
    assert_int_equal(f->srv.requests, 5);
    assert_int_equal(f->srv.accepted, 1);
}

static void http_server_closing_idle_connection_is_not_a_failure(void **state)
{
    struct fx *f = *state;
    struct check *c = fx_check(f, 0, 0, "/ok");
    assert_true(fx_probe(f, c)->ok);
    /* As a server's keep-alive timeout does between two probes. */
    while (f->srv.conns)
        conn_close(f->srv.conns);
    uint64_t until = clock_mono_us() + 50000;
    while (clock_mono_us() < until)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_true(fx_probe(f, c)->ok);
    assert_int_equal(f->srv.accepted, 2);
}

static void http_start_while_in_flight_is_ebusy(void **state)
{
    struct fx *f = *state;
    struct check *c = fx_check(f, 0, 0, "/ok");
    assert_int_equal(http_detector.start(c), 0);
    assert_int_equal(http_detector.start(c), -EBUSY);
    fx_wait(f, 1);
    assert_true(got[0].ok);
}

static void http_cancel_reports_nothing_and_check_probes_again(void **state)
{
    struct fx *f = *state;
    struct check *c = fx_check(f, 0, 0, "/hang");
    f->pc[0].cfg.timeout_ms = 100;
    assert_int_equal(http_detector.start(c), 0);
    /* Let the request reach the server, then stop waiting for it. */
    while (f->srv.requests < 1)
        uv_run(&f->loop, UV_RUN_ONCE);
    http_detector.cancel(c);
    uint64_t until = clock_mono_us() + 300000;
    while (clock_mono_us() < until)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(n_got, 0);
    const struct observation *o = fx_probe(f, c);
    assert_string_equal(o->reason, "timeout after 100 ms");
}

static void http_release_while_in_flight_reports_nothing(void **state)
{
    struct fx *f = *state;
    struct check *c = fx_check(f, 0, 0, "/ok");
    assert_int_equal(http_detector.start(c), 0);
    http_detector.release(c);
    assert_null(c->priv);
    uint64_t until = clock_mono_us() + 200000;
    while (clock_mono_us() < until)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(n_got, 0);
}

static void restart_hook(struct check *c)
{
    if (n_got < 10)
        assert_int_equal(http_detector.start(c), 0);
}

static void http_start_from_inside_report_runs_next_probe(void **state)
{
    struct fx *f = *state;
    report_hook = restart_hook;
    assert_int_equal(http_detector.start(fx_check(f, 0, 0, "/ok")), 0);
    fx_wait(f, 10);
    for (int i = 0; i < 10; i++)
        assert_true(got[i].ok);
    assert_int_equal(f->srv.accepted, 1);
}

static void release_hook(struct check *c)
{
    http_detector.release(c);
}

static void http_release_from_inside_report_is_safe(void **state)
{
    struct fx *f = *state;
    report_hook = release_hook;
    for (int i = 0; i < NCHECK; i++)
        assert_int_equal(http_detector.start(fx_check(f, i, 0, i % 2 ? "/ok" : "/fail")), 0);
    fx_wait(f, NCHECK);
    for (int i = 0; i < NCHECK; i++)
        assert_null(f->pc[i].c.priv);
}

static void http_concurrent_checks_each_report_once(void **state)
{
    struct fx *f = *state;
    int seen[NCHECK] = {0};
    for (int round = 0; round < 3; round++) {
        n_got = 0;
        for (int i = 0; i < NCHECK; i++) {
            struct check *c = round ? &f->pc[i].c : fx_check(f, i, 0, i % 2 ? "/ok" : "/fail");
            assert_int_equal(http_detector.start(c), 0);
        }
        fx_wait(f, NCHECK);
        for (int k = 0; k < NCHECK; k++) {
            int i = (int)(((struct probe_check *)got_check[k]) - f->pc);
            seen[i]++;
            assert_int_equal(got[k].ok, i % 2 == 1);
        }
    }
    for (int i = 0; i < NCHECK; i++)
        assert_int_equal(seen[i], 3);
    /* Later rounds ride the first round's connections. */
    assert_int_equal(f->srv.accepted, NCHECK);
}

static void http_validate_wants_http_or_https_url(void **state)
{
    struct http_params hp;
    char why[128];
    http_detector.params_init(&hp);
    assert_true(hp.tls_verify);
    const char *bad[] = {"ftp://example.org/", "http://", "https:///x", "example.org", NULL};
    for (int i = 0; bad[i]; i++) {
        hp.url = (char *)bad[i];
        why[0] = '\0';
        assert_int_equal(http_detector.validate(&hp, why, sizeof why), -EINVAL);
        assert_true(strlen(why) > 0);
    }
    hp.url = NULL;
    assert_int_equal(http_detector.validate(&hp, why, sizeof why), -EINVAL);
    hp.url = "HTTPS://example.org/health";
    assert_int_equal(http_detector.validate(&hp, why, sizeof why), 0);
    hp.expect_status = 99;
    assert_int_equal(http_detector.validate(&hp, why, sizeof why), -EINVAL);
    hp.expect_status = 503;
    assert_int_equal(http_detector.validate(&hp, why, sizeof why), 0);
}

static void http_fields_declare_the_yaml_keys(void **state)
{
    const char *want[] = {"url", "status", "body", "tls_verify"};
    const struct cfg_field *fl = http_detector.fields;
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(fl[i].key, want[i]);
    assert_null(fl[4].key);
    assert_true(fl[0].required);
    assert_int_equal(http_detector.params_size, sizeof(struct http_params));
}

static void detector_find_knows_http_and_tcp(void **state)
{
    assert_ptr_equal(detector_find("http"), &http_detector);
    assert_ptr_equal(detector_find("tcp"), &tcp_detector);
    assert_null(detector_find("gopher"));
}

#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(http_2xx_is_ok),
        T(http_500_is_software_high),
        T(http_body_containing_substring_is_ok),
        T(http_body_missing_substring_is_software_high),
        T(http_body_match_sees_only_first_4k),
        T(http_expected_status_replaces_2xx),
        T(http_redirect_is_not_followed),
        T(http_silent_server_times_out_network_medium),
        T(http_closed_port_is_network_high_with_curl_words),
        T(http_tls_to_plain_server_is_network_high),
        T(http_probes_of_one_check_reuse_the_connection),
        T(http_server_closing_idle_connection_is_not_a_failure),
        T(http_start_while_in_flight_is_ebusy),
        T(http_cancel_reports_nothing_and_check_probes_again),
        T(http_release_while_in_flight_reports_nothing),
        T(http_start_from_inside_report_runs_next_probe),
        T(http_release_from_inside_report_is_safe),
        T(http_concurrent_checks_each_report_once),
        cmocka_unit_test(http_validate_wants_http_or_https_url),
        cmocka_unit_test(http_fields_declare_the_yaml_keys),
        cmocka_unit_test(detector_find_knows_http_and_tcp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
