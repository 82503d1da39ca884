/* Webhook alerts against a real HTTP receiver in the same loop and a real
 * journal in a temporary directory: one alert per fault plus its
 * resolution, repeats, symptoms, retries that never give up, the bound
 * (whole faults dropped, oldest first), a restart that reloads the queue
 * from the journal, secrets. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <setjmp.h>
#include <sqlite3.h>
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
#include "store/journal.h"

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
    struct journal *j; /* dir/journal.db */
    char dir[64];      /* mkdtemp directory */
    char db_path[96];  /* the journal in it */
    int saved_stderr;  /* while the log is captured; -1: not */
    char log_path[64]; /* the captured log */
};

static void fx_journal_open(struct fx *f)
{
    char err[256];
    f->j = journal_open(f->db_path, err, sizeof err);
    if (!f->j)
        fail_msg("journal_open: %s", err);
}

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
                                   .retries = 5,
                                   .max_pending = 1000};
    f->cfg = (struct alerts_cfg){.webhooks = &f->hook, .n_webhooks = 1};
    f->saved_stderr = -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/test_alert_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->db_path, sizeof f->db_path, "%s/journal.db", f->dir);
    fx_journal_open(f);
    *state = f;
    return 0;
}

static void fx_rm(const char *dir, const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unlink(path);
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
    journal_free(f->j);
    fx_rm(f->dir, "journal.db");
    fx_rm(f->dir, "journal.db-wal");
    fx_rm(f->dir, "journal.db-shm");
    rmdir(f->dir);
    free(f);
    return 0;
}

static void fx_start(struct fx *f, bool listen)
{
    if (listen)
        rx_listen(&f->rx);
    f->a = alerter_new(&f->loop, &f->cfg, f->j);
    assert_non_null(f->a);
}

/* recoverd stops and starts again: the alerter and the journal are closed
 * (what was queued is on disk, nowhere else), then opened anew. */
static void fx_restart(struct fx *f)
{
    alerter_free(f->a);
    f->a = NULL;
    for (int i = 0; i < 4; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT); /* close callbacks */
    journal_free(f->j);
    fx_journal_open(f);
    f->a = alerter_new(&f->loop, &f->cfg, f->j);
    assert_non_null(f->a);
}

/* An integer from the journal, through a connection of its own. */
static int64_t fx_sql(struct fx *f, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_open_v2(f->db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

/* One figure of the alerter's status (top level). */
static int64_t fx_status(struct fx *f, const char *key)
{
    json_t *st = alerter_status_json(f->a);
    assert_non_null(st);
    int64_t v = json_integer_value(json_object_get(st, key));
    json_decref(st);
    return v;
}

/* Run the loop until the receiver holds at least n bodies. */
static void fx_wait(struct fx *f, int n)
{
    loopwait_until(&f->loop, f->rx.n >= n);
}

static int64_t fx_status(struct fx *f, const char *key);

/* Run the loop until the alerter has had every answer: the receiver
 * records a body before its answer reaches the alerter. */
static void fx_wait_sent(struct fx *f)
{
    loopwait_until(&f->loop, fx_status(f, "pending") == 0);
}

static void fx_settle(struct fx *f, uint64_t ms);

/* Run the loop until the receiver holds n bodies, then a while longer:
 * n and no more. */
static void fx_wait_exactly(struct fx *f, int n)
{
    fx_wait(f, n);
    fx_settle(f, 300);
    assert_int_equal(f->rx.n, n);
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

/* A fault as recoverd alerts one: journaled first (the id is the
 * journal's), so that a restart finds it. */
static struct fault fx_jfault(struct fx *f, const char *service)
{
    struct fault x = fx_fault(0, service, SEVERITY_HIGH);
    assert_int_equal(journal_fault_open(f->j, &x), 0);
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
    act.service = "web";
    act.params = (char *)"{\"delay_ms\":400}";
    act.result = (char *)"checks still failing";
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

/* retries no longer gives up: past it the webhook is reported failing,
 * and the message is still delivered once the receiver is back. */
static void alert_past_retries_is_reported_and_still_delivered(void **state)
{
    struct fx *f = *state;
    f->hook.retries = 2;
    fx_log_capture(f);
    fx_start(f, false);
    struct fault x = fx_fault(42, "web", SEVERITY_HIGH);
    alert_fault_opened(f->a, &x);
    fx_wait_log(f, "alert-undelivered"); /* 1 + 2 attempts: about 1.5 s of backoff */
    char *log = fx_log(f);
    assert_non_null(strstr(log, "attempts=3"));
    free(log);
    json_t *st = alerter_status_json(f->a), *w = json_array_get(json_object_get(st, "webhooks"), 0);
    assert_true(json_is_true(json_object_get(w, "failing")));
    assert_int_equal(json_integer_value(json_object_get(w, "pending")), 1);
    assert_string_equal(json_string_value(json_object_get(w, "error")), "Connection refused");
    json_decref(st);
    rx_listen(&f->rx);
    x = fx_resolve(x);
    alert_fault_resolved(f->a, &x);
    fx_wait(f, 2);
    assert_event(f, 0, "opened", 42);
    assert_event(f, 1, "resolved", 42);
    fx_wait_log(f, "alert-delivered");
    fx_wait_sent(f);
    assert_int_equal(fx_sql(f, "SELECT count(*) FROM alert_queue"), 0);
}

/* The body's "id" of message i. */
static const char *fx_id(struct fx *f, int i, char *buf, size_t len)
{
    json_t *m = fx_msg(f, i);
    const char *id = json_string_value(json_object_get(m, "id"));
    assert_non_null(id);
    snprintf(buf, len, "%s", id);
    json_decref(m);
    return buf;
}

/* The seq part of message i's id: the order of the queue. */
static long long fx_seq(struct fx *f, int i)
{
    char id[64];
    return strtoll(fx_id(f, i, id, sizeof id), NULL, 10);
}

static void alert_receiver_down_keeps_every_alert_in_order(void **state)
{
    struct fx *f = *state;
    f->hook.retries = 0;
    fx_log_capture(f);
    fx_start(f, false);
    struct fault x = fx_fault(1, "web", SEVERITY_HIGH), y = fx_fault(2, "db", SEVERITY_CRITICAL);
    alert_fault_opened(f->a, &x);
    alert_fault_opened(f->a, &y);
    alert_fault_escalated(f->a, &x, NULL, "repair");
    x = fx_resolve(x);
    alert_fault_resolved(f->a, &x);
    y = fx_resolve(y);
    alert_fault_resolved(f->a, &y);
    fx_wait_log(f, "alert-undelivered");
    assert_int_equal(fx_status(f, "pending"), 5);
    assert_int_equal(fx_sql(f, "SELECT count(*) FROM alert_queue"), 5);
    rx_listen(&f->rx);
    fx_wait_exactly(f, 5);
    assert_event(f, 0, "opened", 1);
    assert_event(f, 1, "opened", 2);
    assert_event(f, 2, "escalated", 1);
    assert_event(f, 3, "resolved", 1);
    assert_event(f, 4, "resolved", 2);
    for (int i = 1; i < 5; i++)
        assert_true(fx_seq(f, i) > fx_seq(f, i - 1));
    assert_int_equal(fx_status(f, "dropped"), 0);
}

/* Stopped with alerts waiting and a fault open: the next run sends what
 * waited, in order, and the fault's resolution, each once. */
static void alert_restart_reloads_the_queue_from_the_journal(void **state)
{
    struct fx *f = *state;
    fx_log_capture(f);
    fx_start(f, false);
    struct fault x = fx_jfault(f, "web"), y = fx_jfault(f, "db");
    alert_fault_opened(f->a, &x);
    alert_fault_escalated(f->a, &x, NULL, "repair");
    alert_fault_opened(f->a, &y);
    alert_fault_symptom(f->a, &(struct fault){.id = 55}, x.id);
    fx_wait_log(f, "alert-retry");
    fx_restart(f);
    assert_int_equal(fx_status(f, "pending"), 3);
    x = fx_resolve(x);
    alert_fault_resolved(f->a, &x); /* known from the journal: resolved goes out */
    rx_listen(&f->rx);
    fx_wait_exactly(f, 4);
    assert_int_equal(f->rx.requests, 4); /* once each */
    assert_event(f, 0, "opened", x.id);
    assert_event(f, 1, "escalated", x.id);
    assert_event(f, 2, "opened", y.id);
    assert_event(f, 3, "resolved", x.id);
    json_t *m = fx_msg(f, 3), *sym = json_object_get(m, "symptoms");
    assert_int_equal(json_array_size(sym), 1); /* the symptom survived the restart too */
    assert_int_equal(json_integer_value(json_array_get(sym, 0)), 55);
    json_decref(m);
    char a[64], b[64];
    for (int i = 1; i < 4; i++)
        assert_string_not_equal(fx_id(f, i, a, sizeof a), fx_id(f, i - 1, b, sizeof b));
    assert_int_equal(fx_sql(f, "SELECT count(*) FROM alert_queue"), 0);
    assert_int_equal(fx_sql(f, "SELECT count(*) FROM alert_open"), 1); /* y, still open */
}

/* A fault resolved while recoverd could not alert (stopped in between):
 * its open alert is resolved at the next start. */
static void alert_restart_resolves_an_alert_whose_fault_was_resolved(void **state)
{
    struct fx *f = *state;
    fx_start(f, true);
    struct fault x = fx_jfault(f, "web");
    alert_fault_opened(f->a, &x);
    fx_wait(f, 1);
    fx_wait_sent(f);
    x.resolved_ms = clock_wall_ms();
    assert_int_equal(journal_fault_resolve(f->j, &x), 0);
    fx_restart(f);
    fx_wait(f, 2);
    assert_event(f, 0, "opened", x.id);
    assert_event(f, 1, "resolved", x.id);
    assert_int_equal(fx_sql(f, "SELECT count(*) FROM alert_open"), 0);
}

static void alert_removed_webhook_queue_is_dropped_at_start(void **state)
{
    struct fx *f = *state;
    fx_log_capture(f);
    fx_start(f, false);
    struct fault x = fx_fault(6, "web", SEVERITY_HIGH);
    alert_fault_opened(f->a, &x);
    fx_wait_log(f, "alert-retry");
    f->cfg.n_webhooks = 0;
    fx_restart(f);
    assert_true(fx_logged(f, "alerts=1 why=\"webhook no longer configured\""));
    assert_int_equal(fx_sql(f, "SELECT count(*) FROM alert_queue"), 0);
    assert_int_equal(fx_sql(f, "SELECT count(*) FROM alert_open"), 0);
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

/* Over max_pending, the oldest fault not started at the receiver goes,
 * all its messages at once; the one on the wire is kept. A fault dropped
 * is forgotten: its resolution does not go out alone later. */
static void alert_bound_drops_whole_faults_oldest_first(void **state)
{
    struct fx *f = *state;
    f->rx.hang = true; /* the first POST stays on the wire */
    f->hook.timeout_ms = 1000;
    f->hook.max_pending = 4;
    fx_log_capture(f);
    fx_start(f, true);
    struct fault x[6];
    for (int i = 1; i <= 4; i++) {
        x[i] = fx_fault(i, "web", SEVERITY_HIGH);
        alert_fault_opened(f->a, &x[i]);
    }
    x[1] = fx_resolve(x[1]);
    alert_fault_resolved(f->a, &x[1]); /* 5 waiting: fault 2 goes, not 1 (on the wire) */
    assert_true(fx_logged(f, "fault=2 alerts=1 why=\"more than 4 waiting\""));
    assert_int_equal(fx_status(f, "pending"), 4);
    assert_int_equal(fx_status(f, "dropped"), 1);
    x[2] = fx_resolve(x[2]);
    alert_fault_resolved(f->a, &x[2]); /* forgotten: nothing queued */
    assert_int_equal(fx_status(f, "pending"), 4);
    x[5] = fx_fault(5, "web", SEVERITY_HIGH);
    alert_fault_opened(f->a, &x[5]); /* fault 3 goes */
    assert_int_equal(fx_status(f, "dropped"), 2);
    assert_int_equal(fx_sql(f, "SELECT count(*) FROM alert_queue WHERE fault_id IN (2, 3)"), 0);
    f->rx.hang = false;
    fx_wait_exactly(f, 4); /* in the order they were queued */
    assert_event(f, 0, "opened", 1);
    assert_event(f, 1, "opened", 4);
    assert_event(f, 2, "resolved", 1);
    assert_event(f, 3, "opened", 5);
}

/* A fault whose "opened" the receiver has keeps its later messages (its
 * "resolved" will come): faults the receiver never heard of go first, even
 * younger ones. */
static void alert_bound_keeps_a_fault_whose_opened_was_delivered(void **state)
{
    struct fx *f = *state;
    f->hook.timeout_ms = 1000;
    f->hook.max_pending = 3;
    fx_log_capture(f);
    fx_start(f, true);
    struct fault x = fx_fault(1, "web", SEVERITY_HIGH);
    alert_fault_opened(f->a, &x);
    fx_wait(f, 1);
    fx_wait_sent(f);
    f->rx.hang = true;
    struct fault y[5];
    for (int i = 2; i <= 4; i++) {
        y[i] = fx_fault(i, "web", SEVERITY_HIGH);
        alert_fault_opened(f->a, &y[i]); /* 2 on the wire, 3 and 4 waiting */
    }
    alert_fault_escalated(f->a, &x, NULL, "repair"); /* 4 waiting: 3 goes */
    x = fx_resolve(x);
    alert_fault_resolved(f->a, &x); /* 4 waiting: 4 goes */
    assert_true(fx_logged(f, "fault=3 alerts=1"));
    assert_true(fx_logged(f, "fault=4 alerts=1"));
    assert_false(fx_logged(f, "fault=1 alerts="));
    f->rx.hang = false;
    fx_wait_exactly(f, 4);
    assert_event(f, 0, "opened", 1);
    assert_event(f, 1, "opened", 2);
    assert_event(f, 2, "escalated", 1);
    assert_event(f, 3, "resolved", 1);
}

/* The same rule after a restart: what the receiver started on is read back
 * from the journal. */
static void alert_bound_after_restart_keeps_a_started_fault(void **state)
{
    struct fx *f = *state;
    f->hook.max_pending = 3;
    fx_log_capture(f);
    fx_start(f, true);
    struct fault x = fx_jfault(f, "web"); /* faults 1 to 4, in order */
    alert_fault_opened(f->a, &x);
    fx_wait(f, 1);
    fx_wait_sent(f);
    rx_close(&f->rx); /* down */
    alert_fault_escalated(f->a, &x, NULL, "repair");
    struct fault y = fx_jfault(f, "web"), z = fx_jfault(f, "web");
    alert_fault_opened(f->a, &y);
    alert_fault_opened(f->a, &z);
    fx_restart(f);
    assert_int_equal(fx_status(f, "pending"), 3);
    struct fault w = fx_jfault(f, "web");
    assert_int_equal(w.id, 4);
    alert_fault_opened(f->a, &w); /* 4 waiting: 2 goes (1 is started) */
    assert_true(fx_logged(f, "fault=2 alerts=1"));
    x = fx_resolve(x);
    alert_fault_resolved(f->a, &x); /* 4 waiting: 3 goes */
    assert_true(fx_logged(f, "fault=3 alerts=1"));
    rx_listen(&f->rx);
    fx_wait_exactly(f, 3);
    assert_event(f, 0, "escalated", 1);
    assert_event(f, 1, "opened", 4);
    assert_event(f, 2, "resolved", 1);
}

/* While a fault's message waits, its repeats are not queued on top. */
static void alert_repeat_waits_for_the_fault_s_last_message(void **state)
{
    struct fx *f = *state;
    f->hook.repeat_ms = 100;
    fx_log_capture(f);
    fx_start(f, false);
    struct fault x = fx_fault(9, "web", SEVERITY_HIGH);
    alert_fault_opened(f->a, &x);
    fx_wait_log(f, "alert-retry");
    fx_settle(f, 500); /* five repeat intervals */
    assert_int_equal(fx_status(f, "pending"), 1);
    rx_listen(&f->rx);
    fx_wait(f, 2);
    assert_event(f, 0, "opened", 9);
    assert_event(f, 1, "repeat", 9);
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
    fx_wait_exactly(f, 2);
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
        T(alert_past_retries_is_reported_and_still_delivered),
        T(alert_receiver_down_keeps_every_alert_in_order),
        T(alert_restart_reloads_the_queue_from_the_journal),
        T(alert_restart_resolves_an_alert_whose_fault_was_resolved),
        T(alert_removed_webhook_queue_is_dropped_at_start),
        T(alert_log_never_contains_url_secret),
        T(alerter_free_with_delivery_in_flight_leaves_loop_empty),
        T(alerter_free_during_backoff_leaves_loop_empty),
        T(alert_bound_drops_whole_faults_oldest_first),
        T(alert_bound_keeps_a_fault_whose_opened_was_delivered),
        T(alert_bound_after_restart_keeps_a_started_fault),
        T(alert_repeat_waits_for_the_fault_s_last_message),
        T(alert_reconfigure_keeps_open_alerts_of_unchanged_webhooks),
        T(alert_service_failed_without_fault_reaches_every_webhook),
        T(alert_https_webhook_goes_through_the_plugin),
        T(alert_webhook_host_name_is_resolved),
        cmocka_unit_test(url_redact_keeps_only_scheme_host_and_port),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
