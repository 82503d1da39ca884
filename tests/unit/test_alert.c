/* Webhook alerts against a real HTTP receiver in the same loop: one alert
 * per fault plus its resolution, repeats, symptoms, retries, secrets. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include <cmocka.h>

#include "lib/clock.h"
#include "lib/url.h"
#include "loopwait.h"
#include "monitor/alert.h"

#define RX_MAX 2048 /* requests a receiver records */

/* ---- the receiver: records each request body, answers 200 (or 500) ---- */

struct rx;

struct rx_conn {
    uv_tcp_t tcp;     /* data = this; freed in its close callback */
    uv_write_t write; /* data = this */
    struct rx *rx;    /* owner */
    size_t len;       /* bytes in buf */
    bool closing;     /* uv_close called */
    char buf[16384];  /* the request so far */
};

struct rx {
    uv_loop_t *loop;
    uv_tcp_t server;               /* data = this */
    int port;                      /* where it listens (or will) */
    bool listening;                /* server initialised */
    int fail_first;                /* answer 500 to this many requests first */
    bool hang;                     /* never answer */
    int requests;                  /* complete requests received */
    int n;                         /* bodies of 2xx-answered requests */
    char *bodies[RX_MAX];          /* those bodies, in arrival order */
    uint64_t at[RX_MAX];           /* uv_now when each arrived: the alerter's clock */
    struct rx_conn *conns[RX_MAX]; /* every connection accepted */
    int n_conns;
};

static void rx_conn_close_cb(uv_handle_t *h)
{
    struct rx_conn *k = h->data;
    for (int i = 0; i < k->rx->n_conns; i++)
        if (k->rx->conns[i] == k)
            k->rx->conns[i] = NULL;
    free(k);
}

static void rx_conn_close(struct rx_conn *k)
{
    if (k->closing)
        return;
    k->closing = true;
    uv_close((uv_handle_t *)&k->tcp, rx_conn_close_cb);
}

static void rx_write_cb(uv_write_t *w, int status)
{
    rx_conn_close(w->data);
}

static void rx_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    struct rx_conn *k = h->data;
    *b = uv_buf_init(k->buf + k->len, (unsigned)(sizeof k->buf - 1 - k->len));
}

/* A whole request (head + Content-Length bytes): answer it. */
static void rx_request(struct rx_conn *k, const char *body, size_t len)
{
    static char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    static char bad[] = "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    struct rx *rx = k->rx;
    bool fail = rx->requests++ < rx->fail_first;
    if (rx->hang)
        return;
    if (!fail && rx->n < RX_MAX) {
        rx->at[rx->n] = uv_now(rx->loop);
        rx->bodies[rx->n++] = strndup(body, len);
    }
    uv_buf_t b = fail ? uv_buf_init(bad, sizeof bad - 1) : uv_buf_init(ok, sizeof ok - 1);
    uv_write(&k->write, (uv_stream_t *)&k->tcp, &b, 1, rx_write_cb);
}

static void rx_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct rx_conn *k = s->data;
    if (n < 0) {
        rx_conn_close(k);
        return;
    }
    k->len += (size_t)n;
    k->buf[k->len] = '\0';
    char *end = strstr(k->buf, "\r\n\r\n"), *cl = strcasestr(k->buf, "\r\ncontent-length:");
    if (!end || !cl)
        return;
    size_t want = strtoul(cl + 17, NULL, 10), head = (size_t)(end + 4 - k->buf);
    if (k->len >= head + want) {
        uv_read_stop(s);
        rx_request(k, end + 4, want);
    }
}

static void rx_accept_cb(uv_stream_t *server, int status)
{
    struct rx *rx = server->data;
    struct rx_conn *k = calloc(1, sizeof *k);
    assert_non_null(k);
    k->rx = rx;
    k->tcp.data = k->write.data = k;
    uv_tcp_init(rx->loop, &k->tcp);
    assert_int_equal(uv_accept(server, (uv_stream_t *)&k->tcp), 0);
    assert_true(rx->n_conns < RX_MAX);
    rx->conns[rx->n_conns++] = k;
    uv_read_start((uv_stream_t *)&k->tcp, rx_alloc_cb, rx_read_cb);
}

/* A port that nothing listens on (yet). */
static int port_free(uv_loop_t *loop)
{
    uv_tcp_t t;
    struct sockaddr_in a;
    struct sockaddr_storage got;
    int len = sizeof got;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(loop, &t);
    assert_int_equal(uv_tcp_bind(&t, (struct sockaddr *)&a, 0), 0);
    uv_tcp_getsockname(&t, (struct sockaddr *)&got, &len);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return ntohs(((struct sockaddr_in *)&got)->sin_port);
}

static void rx_listen(struct rx *rx)
{
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", rx->port, &a);
    uv_tcp_init(rx->loop, &rx->server);
    rx->server.data = rx;
    assert_int_equal(uv_tcp_bind(&rx->server, (struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&rx->server, 128, rx_accept_cb), 0);
    rx->listening = true;
}

static void rx_close(struct rx *rx)
{
    for (int i = 0; i < rx->n_conns; i++)
        if (rx->conns[i])
            rx_conn_close(rx->conns[i]);
    rx->n_conns = 0;
    if (rx->listening)
        uv_close((uv_handle_t *)&rx->server, NULL);
    rx->listening = false;
    for (int i = 0; i < rx->n; i++)
        free(rx->bodies[i]);
    rx->n = 0;
}

/* ---- the fixture ---- */

struct fx {
    uv_loop_t loop;
    struct rx rx;
    struct webhook_cfg hook; /* the one webhook */
    struct alerts_cfg cfg;   /* {&hook, 1} */
    char url[256];           /* hook.url */
    struct alerter *a;
    int saved_stderr;  /* while the log is captured; -1: not */
    char log_path[64]; /* the captured log */
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->rx.loop = &f->loop;
    f->rx.port = port_free(&f->loop);
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d/hook", f->rx.port);
    f->hook = (struct webhook_cfg){.url = f->url,
                                   .min_severity = SEVERITY_HIGH,
                                   .repeat_ms = 0,
                                   .timeout_ms = 1000,
                                   .retries = 5};
    f->cfg = (struct alerts_cfg){.webhooks = &f->hook, .n_webhooks = 1};
    f->saved_stderr = -1;
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    if (f->saved_stderr >= 0) {
        dup2(f->saved_stderr, 2);
        close(f->saved_stderr);
        unlink(f->log_path);
    }
    alerter_free(f->a);
    rx_close(&f->rx);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

static void fx_start(struct fx *f, bool listen)
{
    if (listen)
        rx_listen(&f->rx);
    f->a = alerter_new(&f->loop, &f->cfg);
    assert_non_null(f->a);
}

/* Run the loop until the receiver holds at least n bodies. */
static void fx_wait(struct fx *f, int n)
{
    loopwait_until(&f->loop, f->rx.n >= n);
}

/* Run the loop for ms: time for a message that must not come to show up
 * (one already queued goes out at once, behind those before it). */
static void fx_settle(struct fx *f, uint64_t ms)
{
    loopwait_idle(&f->loop, ms);
}

/* The loop's clock now: what the alerter counts repeats and backoff by. */
static uint64_t fx_now(struct fx *f)
{
    uv_update_time(&f->loop);
    return uv_now(&f->loop);
}

static void fx_log_capture(struct fx *f)
{
    snprintf(f->log_path, sizeof f->log_path, "/tmp/test_alert_logXXXXXX");
    int fd = mkstemp(f->log_path);
    assert_true(fd >= 0);
    f->saved_stderr = dup(2);
    dup2(fd, 2);
    close(fd);
}

/* The log so far (caller frees); capture goes on. */
static char *fx_log(struct fx *f)
{
    char *buf = calloc(1, 1 << 20);
    int fd = open(f->log_path, O_RDONLY);
    assert_true(fd >= 0);
    ssize_t n = read(fd, buf, (1 << 20) - 1);
    assert_true(n >= 0);
    close(fd);
    return buf;
}

static bool fx_logged(struct fx *f, const char *words)
{
    char *log = fx_log(f);
    bool found = strstr(log, words) != NULL;
    free(log);
    return found;
}

/* Run the loop until the captured log holds words. */
static void fx_wait_log(struct fx *f, const char *words)
{
    loopwait_until(&f->loop, fx_logged(f, words));
}

static struct fault fx_fault(int64_t id, const char *service, enum severity sev)
{
    struct fault x = {.id = id,
                      .type = FAULT_SOFTWARE,
                      .severity = sev,
                      .impact = IMPACT_SERVICE,
                      .opened_ms = clock_wall_ms()};
    snprintf(x.service, sizeof x.service, "%s", service);
    snprintf(x.check, sizeof x.check, "http");
    snprintf(x.description, sizeof x.description, "HTTP 500");
    x.context = (char *)"{\"status\":500}"; /* a literal: never freed */
    return x;
}

static struct fault fx_resolve(struct fault x)
{
    x.resolved_ms = clock_wall_ms();
    return x;
}

/* Body i, parsed (caller decrefs). */
static json_t *fx_msg(struct fx *f, int i)
{
    assert_true(i < f->rx.n);
    json_error_t e;
    json_t *m = json_loads(f->rx.bodies[i], 0, &e);
    assert_non_null(m);
    return m;
}

static bool fx_is_event(struct fx *f, int i, const char *event)
{
    json_t *m = fx_msg(f, i);
    bool is = strcmp(json_string_value(json_object_get(m, "event")), event) == 0;
    json_decref(m);
    return is;
}

static void assert_event(struct fx *f, int i, const char *event, int64_t fault_id)
{
    json_t *m = fx_msg(f, i);
    assert_string_equal(json_string_value(json_object_get(m, "event")), event);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "fault"), "id")),
                     fault_id);
    json_decref(m);
}

/* ---- tests ---- */

static void alert_opened_then_resolved_sends_two_messages_in_order(void **state)
{
    struct fx *f = *state;
    fx_start(f, true);
    struct fault x = fx_fault(7, "web", SEVERITY_HIGH);
    alert_fault_opened(f->a, &x);
    x = fx_resolve(x);
    alert_fault_resolved(f->a, &x);
    fx_wait(f, 2);
    fx_settle(f, 200);
    assert_int_equal(f->rx.n, 2);
    assert_event(f, 0, "opened", 7);
    assert_event(f, 1, "resolved", 7);
    json_t *m = fx_msg(f, 0), *fault = json_object_get(m, "fault");
    assert_string_equal(json_string_value(json_object_get(fault, "service")), "web");
    assert_string_equal(json_string_value(json_object_get(fault, "check")), "http");
    assert_string_equal(json_string_value(json_object_get(fault, "type")), "software");
    assert_string_equal(json_string_value(json_object_get(fault, "severity")), "high");
    assert_string_equal(json_string_value(json_object_get(fault, "impact")), "service");
    assert_string_equal(json_string_value(json_object_get(fault, "description")), "HTTP 500");
    assert_true(json_is_null(json_object_get(fault, "resolved_at")));
    assert_true(json_is_null(json_object_get(m, "action")));
    assert_true(json_is_array(json_object_get(m, "symptoms")));
    assert_non_null(json_string_value(json_object_get(json_object_get(m, "recoverd"), "host")));
    assert_int_equal(strlen(json_string_value(json_object_get(m, "sent_at"))), 24);
    json_decref(m);
    m = fx_msg(f, 1);
    assert_true(json_is_string(json_object_get(json_object_get(m, "fault"), "resolved_at")));
    json_decref(m);
}

static void alert_same_fault_opened_twice_sends_one_message(void **state)
{
    struct fx *f = *state;
    fx_start(f, true);
    struct fault x = fx_fault(8, "web", SEVERITY_CRITICAL);
    alert_fault_opened(f->a, &x);
    alert_fault_opened(f->a, &x);
    fx_wait(f, 1);
    alert_fault_opened(f->a, &x); /* again after delivery: still the same alert */
    fx_settle(f, 300);
    assert_int_equal(f->rx.n, 1);
    assert_int_equal(f->rx.requests, 1);
    assert_event(f, 0, "opened", 8);
}

static void alert_below_min_severity_sends_nothing(void **state)
{
    struct fx *f = *state;
    fx_start(f, true);
    struct fault x = fx_fault(9, "web", SEVERITY_MEDIUM);
    alert_fault_opened(f->a, &x);
    alert_fault_escalated(f->a, &x, NULL, "failover");
    x = fx_resolve(x);
    alert_fault_resolved(f->a, &x);
    fx_settle(f, 400);
    assert_int_equal(f->rx.requests, 0);
}

static void alert_repeat_comes_after_repeat_interval_not_before(void **state)
{
    struct fx *f = *state;
    f->hook.repeat_ms = 200;
    fx_start(f, true);
    struct fault x = fx_fault(10, "web", SEVERITY_HIGH);
    uint64_t t0 = fx_now(f);
    alert_fault_opened(f->a, &x);
    fx_wait(f, 2);
    assert_event(f, 0, "opened", 10);
    assert_event(f, 1, "repeat", 10);
    assert_true(f->rx.at[1] - t0 >= 200); /* not before 200 ms, by the alerter's clock */
    x = fx_resolve(x);
    alert_fault_resolved(f->a, &x);
    /* A loop late by a whole interval may have queued one more repeat. */
    loopwait_until(&f->loop, f->rx.n > 2 && fx_is_event(f, f->rx.n - 1, "resolved"));
    int n = f->rx.n;
    for (int i = 1; i < n - 1; i++)
        assert_event(f, i, "repeat", 10);
    assert_event(f, n - 1, "resolved", 10);
    fx_settle(f, 450); /* over two repeat intervals: resolved, no more repeats */
    assert_int_equal(f->rx.n, n);
}

static void alert_symptom_is_folded_into_root_resolution(void **state)
{
    struct fx *f = *state;
    fx_start(f, true);
    struct fault db = fx_fault(20, "db", SEVERITY_CRITICAL);
    struct fault web = fx_fault(21, "web", SEVERITY_HIGH);
    alert_fault_opened(f->a, &db);
    alert_fault_symptom(f->a, &web, db.id);
    alert_fault_opened(f->a, &web); /* a symptom never opens its own alert */
    web = fx_resolve(web);
    alert_fault_resolved(f->a, &web);
    db = fx_resolve(db);
    alert_fault_resolved(f->a, &db);
    fx_wait(f, 2);
    fx_settle(f, 200);
    assert_int_equal(f->rx.n, 2);
    assert_event(f, 0, "opened", 20);
    assert_event(f, 1, "resolved", 20);
    json_t *m = fx_msg(f, 1), *sym = json_object_get(m, "symptoms");
    assert_int_equal(json_array_size(sym), 1);
    assert_int_equal(json_integer_value(json_array_get(sym, 0)), 21);
    json_decref(m);
    for (int i = 0; i < f->rx.n; i++)
        assert_null(strstr(f->rx.bodies[i], "\"id\":21"));
}

static void alert_escalated_and_failed_update_the_same_alert(void **state)
{
    struct fx *f = *state;
    fx_start(f, true);
    struct fault x = fx_fault(30, "web", SEVERITY_HIGH);
    struct action act = {.id = 5,
                         .fault_id = 30,
                         .strategy = STRATEGY_RESTART,
                         .status = ACTION_FAILED,
                         .created_ms = clock_wall_ms()};
    snprintf(act.service, sizeof act.service, "web");
    act.params = (char *)"{\"delay_ms\":400}";
    snprintf(act.result, sizeof act.result, "checks still failing");
    alert_fault_opened(f->a, &x);
    alert_fault_escalated(f->a, &x, &act, "failover");
    alert_service_failed(f->a, "web", &x, "strategy chain exhausted");
    alert_fault_opened(f->a, &x);
    fx_wait(f, 3);
    fx_settle(f, 200);
    assert_int_equal(f->rx.n, 3);
    assert_event(f, 0, "opened", 30);
    assert_event(f, 1, "escalated", 30);
    assert_event(f, 2, "failed", 30);
    json_t *m = fx_msg(f, 1), *a = json_object_get(m, "action");
    assert_string_equal(json_string_value(json_object_get(m, "next_strategy")), "failover");
    assert_string_equal(json_string_value(json_object_get(a, "strategy")), "restart");
    assert_string_equal(json_string_value(json_object_get(a, "status")), "failed");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(a, "params"), "delay_ms")),
                     400);
    json_decref(m);
    m = fx_msg(f, 2);
    assert_string_equal(json_string_value(json_object_get(m, "reason")),
                        "strategy chain exhausted");
    json_decref(m);
}

static void alert_messages_of_many_faults_arrive_in_order(void **state)
{
    struct fx *f = *state;
    fx_start(f, true);
    for (int64_t id = 1; id <= 10; id++) {
        struct fault x = fx_fault(id, "web", SEVERITY_HIGH);
        alert_fault_opened(f->a, &x);
    }
    fx_wait(f, 10);
    assert_int_equal(f->rx.n, 10);
    for (int i = 0; i < 10; i++)
        assert_event(f, i, "opened", i + 1);
}

static void alert_receiver_down_then_up_is_retried_and_delivered(void **state)
{
    struct fx *f = *state;
    fx_log_capture(f);
    fx_start(f, false);
    struct fault x = fx_fault(40, "web", SEVERITY_HIGH);
    alert_fault_opened(f->a, &x);
    fx_wait_log(f, "alert-retry"); /* first attempt refused; next one in 400..600 ms */
    rx_listen(&f->rx);
    fx_wait(f, 1);
    assert_int_equal(f->rx.n, 1);
    assert_int_equal(f->rx.requests, 1);
    assert_event(f, 0, "opened", 40);
    char *log = fx_log(f);
    assert_non_null(strstr(log, "alert-retry"));
    assert_null(strstr(log, "alert-undelivered"));
    free(log);
}

static void alert_http_500_is_retried_with_the_same_message(void **state)
{
    struct fx *f = *state;
    f->rx.fail_first = 2;
    fx_start(f, true);
    struct fault x = fx_fault(41, "web", SEVERITY_HIGH);
    uint64_t t0 = fx_now(f);
    alert_fault_opened(f->a, &x);
    fx_wait(f, 1);
    assert_int_equal(f->rx.requests, 3);
    assert_int_equal(f->rx.n, 1);
    assert_event(f, 0, "opened", 41);
    /* Backoff: 500 ms then 1 s, each +-20%, by the alerter's clock. */
    assert_true(f->rx.at[0] - t0 >= 400 + 800);
}

static void alert_never_delivered_is_logged_and_dropped(void **state)
{
    struct fx *f = *state;
    f->hook.retries = 2;
    fx_log_capture(f);
    fx_start(f, false);
    struct fault x = fx_fault(42, "web", SEVERITY_HIGH);
    alert_fault_opened(f->a, &x);
    fx_wait_log(f, "alert-undelivered"); /* 1 + 2 attempts: about 1.5 s of backoff */
    char *log = fx_log(f);
    assert_non_null(strstr(log, "alert-undelivered"));
    assert_non_null(strstr(log, "attempts=3"));
    free(log);
    /* The queue moved on: the next message is delivered once up. */
    rx_listen(&f->rx);
    x = fx_resolve(x);
    alert_fault_resolved(f->a, &x);
    fx_wait(f, 1);
    assert_int_equal(f->rx.n, 1);
    assert_event(f, 0, "resolved", 42);
}

static void alert_log_never_contains_url_secret(void **state)
{
    struct fx *f = *state;
    struct webhook_cfg hooks[2];
    char bad[128];
    f->hook.retries = 1;
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d/hook?token=SECRET", f->rx.port);
    snprintf(bad, sizeof bad, "http://user:SECRET@127.0.0.1:%d/x", f->rx.port);
    hooks[0] = f->hook;
    hooks[1] = f->hook;
    hooks[1].url = bad;
    f->cfg.webhooks = hooks;
    f->cfg.n_webhooks = 2;
    fx_log_capture(f);
    fx_start(f, false);
    struct fault x = fx_fault(43, "web", SEVERITY_HIGH);
    alert_fault_opened(f->a, &x);
    fx_wait_log(f, "alert-undelivered");
    char *log = fx_log(f);
    assert_non_null(strstr(log, "alert-undelivered"));
    assert_non_null(strstr(log, "alert-webhook")); /* the url with userinfo is refused */
    assert_null(strstr(log, "SECRET"));
    assert_null(strstr(log, "token"));
    free(log);
    alerter_free(f->a);
    f->a = NULL;
}

static void alerter_free_with_delivery_in_flight_leaves_loop_empty(void **state)
{
    struct fx *f = *state;
    f->rx.hang = true;
    f->hook.timeout_ms = 60000;
    f->hook.repeat_ms = 60000;
    fx_start(f, true);
    struct fault x = fx_fault(44, "web", SEVERITY_HIGH), y = fx_fault(45, "web", SEVERITY_HIGH);
    alert_fault_opened(f->a, &x);
    alert_fault_opened(f->a, &y);
    loopwait_until(&f->loop, f->rx.requests >= 1);
    fx_settle(f, 100);
    assert_int_equal(f->rx.requests, 1); /* in flight, the second one queued */
    /* teardown frees the alerter and asserts the loop closes empty */
}

static void alerter_free_during_backoff_leaves_loop_empty(void **state)
{
    struct fx *f = *state;
    fx_log_capture(f);
    fx_start(f, false);
    struct fault x = fx_fault(46, "web", SEVERITY_HIGH);
    alert_fault_opened(f->a, &x);
    fx_wait_log(f, "alert-retry"); /* refused: the retry timer runs */
    /* teardown frees the alerter and asserts the loop closes empty */
}

static void alert_queue_is_bounded_dropping_the_oldest(void **state)
{
    struct fx *f = *state;
    f->rx.hang = true;
    f->hook.timeout_ms = 60000;
    fx_log_capture(f);
    fx_start(f, true);
    for (int64_t id = 1; id <= ALERT_QUEUE_MAX + 5; id++) {
        struct fault x = fx_fault(id, "web", SEVERITY_HIGH);
        alert_fault_opened(f->a, &x);
    }
    char *log = fx_log(f);
    int drops = 0;
    for (char *p = log; (p = strstr(p, "alert-dropped")); p++)
        drops++;
    assert_int_equal(drops, 5);
    assert_non_null(strstr(log, "fault=2 ")); /* the oldest waiting, not the one in flight */
    assert_null(strstr(log, "fault=1 "));
    free(log);
}

static void alert_reconfigure_keeps_open_alerts_of_unchanged_webhooks(void **state)
{
    struct fx *f = *state;
    fx_start(f, true);
    struct fault x = fx_fault(50, "web", SEVERITY_HIGH);
    alert_fault_opened(f->a, &x);
    fx_wait(f, 1);
    struct webhook_cfg copy = f->hook;
    struct alerts_cfg cfg2 = {.webhooks = &copy, .n_webhooks = 1};
    alerter_reconfigure(f->a, &cfg2);
    alert_fault_opened(f->a, &x); /* still the same alert */
    x = fx_resolve(x);
    alert_fault_resolved(f->a, &x);
    fx_wait(f, 2);
    fx_settle(f, 200);
    assert_int_equal(f->rx.n, 2);
    assert_event(f, 1, "resolved", 50);
    /* A reload without webhooks drops them. */
    struct alerts_cfg none = {0};
    alerter_reconfigure(f->a, &none);
    struct fault y = fx_fault(51, "web", SEVERITY_HIGH);
    alert_fault_opened(f->a, &y);
    fx_settle(f, 300);
    assert_int_equal(f->rx.n, 2);
    alerter_free(f->a);
    f->a = NULL;
}

static void alert_service_failed_without_fault_reaches_every_webhook(void **state)
{
    struct fx *f = *state;
    fx_start(f, true);
    alert_service_failed(f->a, "web", NULL, "gave up");
    fx_wait(f, 1);
    json_t *m = fx_msg(f, 0);
    assert_string_equal(json_string_value(json_object_get(m, "event")), "failed");
    assert_string_equal(json_string_value(json_object_get(m, "service")), "web");
    assert_true(json_is_null(json_object_get(m, "fault")));
    json_decref(m);
}

/* https goes through recoverd-https.so (next to this executable): a
 * webhook on a closed port fails in the plug-in and is reported as such. */
static void alert_https_webhook_goes_through_the_plugin(void **state)
{
    struct fx *f = *state;
    f->hook.retries = 0;
    snprintf(f->url, sizeof f->url, "https://127.0.0.1:%d/hook?token=SECRET", f->rx.port);
    fx_log_capture(f);
    fx_start(f, false);
    struct fault x = fx_fault(60, "web", SEVERITY_HIGH);
    alert_fault_opened(f->a, &x);
    fx_wait_log(f, "alert-undelivered");
    char *log = fx_log(f);
    assert_non_null(strstr(log, "alert-undelivered"));
    assert_non_null(strstr(log, "Connection refused"));
    assert_null(strstr(log, "need recoverd-https.so"));
    assert_null(strstr(log, "SECRET"));
    free(log);
}

/* A host name goes through uv_getaddrinfo: this host's own name, when it
 * resolves to the loopback address the receiver listens on. */
static void alert_webhook_host_name_is_resolved(void **state)
{
    struct fx *f = *state;
    char host[HOST_NAME_MAX + 1]; /* a URL of it fits f->url */
    uv_getaddrinfo_t req;
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    if (gethostname(host, sizeof host) < 0 ||
        uv_getaddrinfo(&f->loop, &req, NULL, host, NULL, &hints) < 0)
        skip();
    bool loopback = ((struct sockaddr_in *)req.addrinfo->ai_addr)->sin_addr.s_addr ==
                    htonl(INADDR_LOOPBACK);
    uv_freeaddrinfo(req.addrinfo);
    if (!loopback)
        skip();
    snprintf(f->url, sizeof f->url, "http://%s:%d/hook", host, f->rx.port);
    fx_start(f, true);
    struct fault x = fx_fault(70, "web", SEVERITY_HIGH);
    alert_fault_opened(f->a, &x);
    fx_wait(f, 1);
    assert_int_equal(f->rx.n, 1);
    assert_event(f, 0, "opened", 70);
}

static void url_redact_keeps_only_scheme_host_and_port(void **state)
{
    char buf[128];
    url_redact("https://u:p@hooks.example.org:8443/services/T/B/XYZ?token=S", buf, sizeof buf);
    assert_string_equal(buf, "https://hooks.example.org:8443");
    url_redact("http://[::1]/x", buf, sizeof buf);
    assert_string_equal(buf, "http://[::1]");
    url_redact("not a url", buf, sizeof buf);
    assert_string_equal(buf, "(not a url)");
    /* The longest host url_parse takes fits URL_REDACTED_MAX whole. */
    char url[300], where[URL_REDACTED_MAX], why[128];
    struct url u;
    memset(url, 'a', sizeof url);
    memcpy(url, "https://", 8);
    snprintf(url + 8 + 255, sizeof url - 8 - 255, ":65535/p");
    assert_int_equal(url_parse(url, &u, why, sizeof why), 0);
    url_redact(url, where, sizeof where);
    assert_int_equal(strlen(where), 8 + 255 + 6);
    /* Too long for buf: said so, never a cut host. */
    url_redact("https://a-very-long-host-name.example.org/x", buf, 24);
    assert_string_equal(buf, "(url too long)");
}

#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(alert_opened_then_resolved_sends_two_messages_in_order),
        T(alert_same_fault_opened_twice_sends_one_message),
        T(alert_below_min_severity_sends_nothing),
        T(alert_repeat_comes_after_repeat_interval_not_before),
        T(alert_symptom_is_folded_into_root_resolution),
        T(alert_escalated_and_failed_update_the_same_alert),
        T(alert_messages_of_many_faults_arrive_in_order),
        T(alert_receiver_down_then_up_is_retried_and_delivered),
        T(alert_http_500_is_retried_with_the_same_message),
        T(alert_never_delivered_is_logged_and_dropped),
        T(alert_log_never_contains_url_secret),
        T(alerter_free_with_delivery_in_flight_leaves_loop_empty),
        T(alerter_free_during_backoff_leaves_loop_empty),
        T(alert_queue_is_bounded_dropping_the_oldest),
        T(alert_reconfigure_keeps_open_alerts_of_unchanged_webhooks),
        T(alert_service_failed_without_fault_reaches_every_webhook),
        T(alert_https_webhook_goes_through_the_plugin),
        T(alert_webhook_host_name_is_resolved),
        cmocka_unit_test(url_redact_keeps_only_scheme_host_and_port),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
