/* The http detector against a small HTTP/1.1 server running in the same loop. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config-t.h"
#include "detect/http.h"
#include "detect/kinds.h"
#include "httpsrv.h"
#include "lib/clock.h"
#include "lib/model.h"
#include "lib/plugin.h"
#include "loopwait.h"

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

/* ---- the canned server's answers (httpsrv.h): the path picks one ---- */

#define SEND(k, lit) srv_send(k, lit, sizeof lit - 1)

static void conn_send(struct srv_conn *k, int status, const char *body, size_t body_len,
                      const char *extra)
{
    size_t cap = 256 + body_len;
    char *out = malloc(cap);
    assert_non_null(out);
    int n = snprintf(out, cap,
                     "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n%sConnection: keep-alive\r\n\r\n",
                     status, body_len, extra);
    memcpy(out + n, body, body_len);
    srv_send(k, out, (size_t)n + body_len);
    free(out);
}

/* Headers of about `kib` KiB. */
static void conn_send_big_head(struct srv_conn *k, size_t kib)
{
    size_t cap = kib * 1024 + 256, n = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    n += (size_t)snprintf(out, cap, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n");
    while (n + 100 < kib * 1024)
        n += (size_t)snprintf(out + n, cap - n, "X-Pad: %080d\r\n", 0);
    n += (size_t)snprintf(out + n, cap - n, "\r\nok");
    srv_send(k, out, n);
    free(out);
}

/* Every connection leaves requests unanswered, as a stopped (SIGSTOP) service's. */
static bool muted;

static bool conn_answer(struct srv_conn *k, const char *path)
{
    static char big[10000];
    if (muted)
        return true;
    if (k->drop_next) {
        srv_conn_close(k); /* a keep-alive timeout racing the request */
        return false;
    }
    if (strcmp(path, "/ok") == 0 || strncmp(path, "/ok?", 4) == 0)
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
    } else if (strcmp(path, "/close-next") == 0) {
        conn_send(k, 200, "hello", 5, "");
        k->drop_next = true;
    } else if (strcmp(path, "/chunked") == 0) {
        SEND(k, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n");
    } else if (strcmp(path, "/drip") == 0) {
        srv_drip(k, "HTTP/1.1 200 OK\r\nContent-Length: 19\r\nX-A: b\r\n\r\n"
                    "the quick brown fox");
    } else if (strcmp(path, "/drip-chunked") == 0) {
        srv_drip(k, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                    "a\r\nthe quick \r\n9\r\nbrown fox\r\n0\r\n\r\n");
    } else if (strcmp(path, "/http10") == 0) {
        SEND(k, "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello"); /* left open */
    } else if (strcmp(path, "/eof") == 0) {
        SEND(k, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nthe body ends at close");
        srv_conn_close(k);
        return false;
    } else if (strcmp(path, "/interim") == 0) {
        SEND(k, "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    } else if (strcmp(path, "/head15k") == 0) {
        conn_send_big_head(k, 15);
    } else if (strcmp(path, "/head20k") == 0) {
        conn_send_big_head(k, 20);
    } else if (strcmp(path, "/garbage") == 0) {
        SEND(k, "SSH-2.0-OpenSSH_9.2\r\n");
    } else if (strcmp(path, "/bad-length") == 0) {
        SEND(k, "HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\nok");
    } else if (strcmp(path, "/truncated") == 0) {
        SEND(k, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort");
        srv_conn_close(k);
        return false;
    } else if (strcmp(path, "/hang") != 0)
        conn_send(k, 404, "", 0, "");
    return true;
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
    struct srv srv;
    struct probe_check pc[NCHECK];
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    srv_start(&f->loop, &f->srv, conn_answer);
    assert_int_equal(http_detector.init(&f->loop), 0);
    n_got = 0;
    report_hook = NULL;
    muted = false;
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

/* A check of an arbitrary url (printf-style). */
static struct check *fx_check_url(struct fx *f, int i, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static struct check *fx_check_url(struct fx *f, int i, const char *fmt, ...)
{
    va_list ap;
    struct check *c = fx_check(f, i, 0, "/");
    va_start(ap, fmt);
    vsnprintf(f->pc[i].url, sizeof f->pc[i].url, fmt, ap);
    va_end(ap);
    return c;
}

/* Run the loop until `n` reports in all (and not more). */
static void fx_wait(struct fx *f, int n)
{
    loopwait_until(&f->loop, n_got >= n);
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

static void http_closed_port_is_network_high_connection_refused(void **state)
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
    /* The first TLS handshake loads the CA bundle: on a busy machine under
     * ASan that alone can take most of a second, and this test is about
     * the handshake's failure, not the deadline. */
    f->pc[0].cfg.timeout_ms = 5000;
    const struct observation *o = fx_probe(f, c);
    assert_false(o->ok);
    assert_int_equal(o->type, FAULT_NETWORK);
    assert_int_equal(o->severity, SEVERITY_HIGH);
    assert_true(strlen(o->reason) > 0);
}

static void http_chunked_body_is_matched_across_chunks(void **state)
{
    struct fx *f = *state;
    struct check *c = fx_check(f, 0, 0, "/chunked");
    f->pc[0].hp.expect_body = "hello world";
    for (int i = 0; i < 3; i++) {
        const struct observation *o = fx_probe(f, c);
        assert_true(o->ok);
        assert_string_equal(o->reason, "HTTP 200");
    }
    assert_int_equal(f->srv.accepted, 1); /* the end of the chunks ends the response */
}

static void http_response_split_in_small_writes_is_read_whole(void **state)
{
    struct fx *f = *state;
    struct check *c = fx_check(f, 0, 0, "/drip");
    f->pc[0].hp.expect_body = "brown fox";
    assert_true(fx_probe(f, c)->ok);
    assert_true(fx_probe(f, c)->ok);
    assert_int_equal(f->srv.accepted, 1);
    c = fx_check(f, 1, 0, "/drip-chunked");
    f->pc[1].hp.expect_body = "the quick brown fox";
    assert_true(fx_probe(f, c)->ok);
    f->pc[1].hp.expect_body = "fox0"; /* chunk framing never leaks into the body */
    assert_false(fx_probe(f, c)->ok);
}

static void http_10_response_closes_the_connection(void **state)
{
    struct fx *f = *state;
    struct check *c = fx_check(f, 0, 0, "/http10");
    f->pc[0].hp.expect_body = "hello";
    assert_true(fx_probe(f, c)->ok);
    assert_true(fx_probe(f, c)->ok);
    assert_int_equal(f->srv.accepted, 2);
}

static void http_body_ending_at_close_is_ok(void **state)
{
    struct fx *f = *state;
    struct check *c = fx_check(f, 0, 0, "/eof");
    f->pc[0].hp.expect_body = "ends at close";
    assert_true(fx_probe(f, c)->ok);
    assert_true(fx_probe(f, c)->ok);
    assert_int_equal(f->srv.accepted, 2);
}

static void http_interim_1xx_is_skipped(void **state)
{
    struct fx *f = *state;
    const struct observation *o = fx_probe(f, fx_check(f, 0, 0, "/interim"));
    assert_true(o->ok);
    assert_int_equal(o->code, 200);
}

static void http_stale_connection_is_retried_once_not_failed(void **state)
{
    struct fx *f = *state;
    struct check *c = fx_check(f, 0, 0, "/close-next");
    /* Each probe's request meets a server that hangs up on it: the probe
     * moves to a fresh connection, where it is answered. */
    for (int i = 0; i < 3; i++)
        assert_true(fx_probe(f, c)->ok);
    assert_int_equal(f->srv.accepted, 3);
    assert_int_equal(f->srv.requests, 5);
}

static void http_headers_up_to_16k_are_accepted(void **state)
{
    struct fx *f = *state;
    assert_true(fx_probe(f, fx_check(f, 0, 0, "/head15k"))->ok);
}

static void http_headers_over_16k_are_a_bad_response(void **state)
{
    struct fx *f = *state;
    const struct observation *o = fx_probe(f, fx_check(f, 0, 0, "/head20k"));
    assert_false(o->ok);
    assert_int_equal(o->type, FAULT_SOFTWARE);
    assert_int_equal(o->severity, SEVERITY_HIGH);
    assert_string_equal(o->reason, "bad HTTP response: headers over 16 KiB");
}

static void http_garbage_is_a_bad_response_at_once(void **state)
{
    struct fx *f = *state;
    struct check *c = fx_check(f, 0, 0, "/garbage");
    f->pc[0].cfg.timeout_ms = 5000;
    uint64_t t0 = clock_mono_us();
    const struct observation *o = fx_probe(f, c);
    assert_true(clock_mono_us() - t0 < 1000000);
    assert_false(o->ok);
    assert_int_equal(o->code, -1);
    assert_string_equal(o->reason, "bad HTTP response: not an HTTP/1.x status line");
}

static void http_bad_content_length_is_a_bad_response(void **state)
{
    struct fx *f = *state;
    const struct observation *o = fx_probe(f, fx_check(f, 0, 0, "/bad-length"));
    assert_false(o->ok);
    assert_int_equal(o->code, 200);
    assert_string_equal(o->reason, "bad HTTP response: bad Content-Length");
}

static void http_close_before_the_body_ends_is_a_bad_response(void **state)
{
    struct fx *f = *state;
    const struct observation *o = fx_probe(f, fx_check(f, 0, 0, "/truncated"));
    assert_false(o->ok);
    assert_string_equal(o->reason, "bad HTTP response: connection closed mid-response");
}

static void http_request_carries_path_query_and_host(void **state)
{
    struct fx *f = *state;
    char want[128];
    struct check *c = fx_check(f, 0, 0, "/ok?a=1&b=2");
    assert_true(fx_probe(f, c)->ok);
    snprintf(want, sizeof want,
             "GET /ok?a=1&b=2 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: recoverd\r\n"
             "Accept: */*\r\n\r\n",
             f->srv.port);
    assert_string_equal(f->srv.last, want);
    c = fx_check_url(f, 1, "http://127.0.0.1:%d?x", f->srv.port);
    fx_probe(f, c);
    assert_non_null(strstr(f->srv.last, "GET /?x HTTP/1.1\r\n"));
}

static void http_localhost_is_loopback(void **state)
{
    struct fx *f = *state;
    const struct observation *o = fx_probe(f, fx_check_url(f, 0, "http://LocalHost:%d/ok",
                                                           f->srv.port));
    assert_true(o->ok);
    assert_non_null(strstr(f->srv.last, "Host: LocalHost:"));
}

/* A name /etc/hosts maps to 127.0.0.1 other than localhost (Debian puts the
 * host's name there), so resolving it never leaves the machine. */
static int hosts_loopback_name(char *name, size_t len)
{
    char line[512], *save, *t;
    FILE *fp = fopen("/etc/hosts", "r");
    int found = 0;
    if (!fp)
        return 0;
    while (!found && fgets(line, sizeof line, fp)) {
        if (!(t = strtok_r(line, " \t\n", &save)) || strcmp(t, "127.0.0.1") != 0)
            continue;
        while (!found && (t = strtok_r(NULL, " \t\n", &save)))
            if (*t != '#' && strcmp(t, "localhost") != 0 && strlen(t) < len)
                found = snprintf(name, len, "%s", t) > 0;
    }
    fclose(fp);
    return found;
}

static void http_name_is_resolved_off_the_loop(void **state)
{
    struct fx *f = *state;
    char name[256];
    if (!hosts_loopback_name(name, sizeof name))
        skip();
    struct check *c = fx_check_url(f, 0, "http://%s:%d/ok", name, f->srv.port);
    for (int i = 0; i < 3; i++)
        assert_true(fx_probe(f, c)->ok);
    assert_int_equal(f->srv.accepted, 1);
    /* Released while resolving: no report, and the loop still ends empty. */
    c = fx_check_url(f, 1, "http://%s:%d/ok", name, f->srv.port);
    assert_int_equal(http_detector.start(c), 0);
    http_detector.release(c);
    loopwait_idle(&f->loop, 100);
    assert_int_equal(n_got, 3);
}

static void http_ipv6_literal_is_probed(void **state)
{
    struct fx *f = *state;
    struct srv s6;
    struct sockaddr_in6 a;
    char host[64];
    uv_ip6_addr("::1", 0, &a);
    if (srv_start_at(&f->loop, &s6, (struct sockaddr *)&a, conn_answer) < 0) {
        srv_stop(&s6);
        loopwait_idle(&f->loop, 20); /* s6 is on this stack: let its handles close */
        skip();
    }
    const struct observation *o = fx_probe(f, fx_check_url(f, 0, "http://[::1]:%d/ok", s6.port));
    assert_true(o->ok);
    snprintf(host, sizeof host, "Host: [::1]:%d\r\n", s6.port);
    assert_non_null(strstr(s6.last, host));
    http_detector.release(&f->pc[0].c);
    srv_stop(&s6);
    loopwait_idle(&f->loop, 20);
}

static void http_validate_refuses_userinfo_fragment_and_bad_ports(void **state)
{
    struct http_params hp;
    char why[128];
    http_detector.params_init(&hp);
    const struct {
        const char *url, *why;
    } bad[] = {
        {"http://user:pw@example.org/", "url must not contain user:password@"},
        {"http://example.org/x#top", "url must not have a #fragment"},
        {"http://example.org:0/", "url port must be 1 to 65535"},
        {"http://example.org:65536/", "url port must be 1 to 65535"},
        {"http://example.org:http/", "url port must be 1 to 65535"},
        {"http://example.org:/", "url port must be 1 to 65535"},
        {"http://[::1/", "url IPv6 host must be [address]"},
        {"http://[zz::1]/", "url IPv6 host must be [address]"},
        {"http://[::1]x/", "url IPv6 host must be [address]"},
        {"http://exa mple.org/", "url must not contain spaces or control characters"},
        {"http://ex%41mple.org/", "url host must be a name, an IPv4 address or [IPv6]"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        hp.url = (char *)bad[i].url;
        why[0] = '\0';
        assert_int_equal(http_detector.validate(&hp, why, sizeof why), -EINVAL);
        assert_string_equal(why, bad[i].why);
    }
    const char *good[] = {"http://[::1]:8080/x?y=1",    "http://localhost/",
                          "https://example.org",        "http://10.0.0.1:65535",
                          "http://a-b.example_c.org?q", NULL};
    for (int i = 0; good[i]; i++) {
        hp.url = (char *)good[i];
        assert_int_equal(http_detector.validate(&hp, why, sizeof why), 0);
    }
}

static void https_without_plugin_fails_with_words(void **state)
{
    struct fx *f = *state;
    plugin_dir_set("/nonexistent");
    struct check *c = fx_check_url(f, 0, "https://127.0.0.1:%d/ok", f->srv.port);
    for (int i = 0; i < 2; i++) {
        const struct observation *o = fx_probe(f, c);
        assert_false(o->ok);
        assert_int_equal(o->type, FAULT_CONFIGURATION);
        assert_int_equal(o->severity, SEVERITY_HIGH);
        assert_int_equal(strncmp(o->reason, "https checks need recoverd-https.so: ", 37), 0);
        assert_string_equal(o->reason + 37, "plugin recoverd-https.so not found");
    }
    assert_int_equal(f->srv.accepted, 0);
    http_detector.release(c);
    plugin_dir_set(NULL);
}

/* Something accepts connections on 127.0.0.1:port. */
static bool accepts(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* A real TLS server: openssl s_server with a throwaway self-signed cert;
 * -1 if openssl is missing or never listens. */
static pid_t tls_server_start(int *port)
{
    char dir[] = "/tmp/test_http_tlsXXXXXX", cmd[512], portarg[32], cert[64], key[64];
    if (system("command -v openssl >/dev/null 2>&1") != 0 || !mkdtemp(dir))
        return -1;
    snprintf(cert, sizeof cert, "%s/c.pem", dir);
    snprintf(key, sizeof key, "%s/k.pem", dir);
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout %s -out %s -subj /CN=localhost -days 1 >/dev/null 2>&1",
             key, cert);
    if (system(cmd) != 0)
        return -1;
    /* The port was free a moment ago; on a busy host another process may take
     * it first: then s_server exits, and another port is tried. */
    pid_t pid = -1;
    for (int attempt = 0; attempt < 5 && pid < 0; attempt++) {
        *port = port_closed();
        snprintf(portarg, sizeof portarg, "127.0.0.1:%d", *port);
        pid = fork();
        if (pid == 0) {
            int null = open("/dev/null", O_RDWR);
            dup2(null, 0), dup2(null, 1), dup2(null, 2);
            execlp("openssl", "openssl", "s_server", "-accept", portarg, "-cert", cert, "-key", key,
                   "-www", "-quiet", (char *)NULL);
            _exit(127);
        }
        /* Ready when it accepts, and it is ours that does. */
        poll_until(accepts(*port) || waitpid(pid, NULL, WNOHANG) == pid);
        if (waitpid(pid, NULL, WNOHANG) == pid || kill(pid, 0) < 0)
            pid = -1;
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    system(cmd) == 0 ? (void)0 : (void)0;
    return pid;
}

static void https_probe_through_the_plugin(void **state)
{
    struct fx *f = *state;
    int port;
    pid_t pid = tls_server_start(&port);
    if (pid < 0)
        skip();
    struct check *c = fx_check_url(f, 0, "https://127.0.0.1:%d/", port);
    f->pc[0].hp.tls_verify = false;
    f->pc[0].hp.expect_body = "s_server";
    f->pc[0].cfg.timeout_ms = 3000;
    const struct observation *o = fx_probe(f, c);
    assert_true(o->ok);
    assert_int_equal(o->code, 200);
    /* The same server's self-signed certificate fails verification. */
    c = fx_check_url(f, 1, "https://127.0.0.1:%d/", port);
    f->pc[1].cfg.timeout_ms = 3000;
    o = fx_probe(f, c);
    if (o->ok || o->type != FAULT_NETWORK)
        fail_msg("verification did not fail as a network fault: ok=%d type=%s \"%s\"", o->ok,
                 fault_type_name(o->type), o->reason);
    assert_int_equal(o->type, FAULT_NETWORK);
    assert_int_equal(o->severity, SEVERITY_HIGH);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
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
        srv_conn_close(f->srv.conns);
    loopwait_idle(&f->loop, 50); /* the hang-up reaches the client, or the probe finds it */
    assert_true(fx_probe(f, c)->ok);
    assert_int_equal(f->srv.accepted, 2);
}

/* Keep-alive must not hide a service that is gone: its kept connection is
 * reset with it, the retry on a fresh one is refused. */
static void http_server_gone_fails_the_next_probe(void **state)
{
    struct fx *f = *state;
    struct check *c = fx_check(f, 0, 0, "/ok");
    assert_true(fx_probe(f, c)->ok);
    srv_stop(&f->srv);
    const struct observation *o = fx_probe(f, c);
    assert_false(o->ok);
    assert_int_equal(o->type, FAULT_NETWORK);
    assert_non_null(strstr(o->reason, "Failed to connect"));
}

/* ... nor a stopped one (SIGSTOP): the kept connection stays open and the
 * answer never comes. */
static void http_server_stopped_times_out_on_the_kept_connection(void **state)
{
    struct fx *f = *state;
    struct check *c = fx_check(f, 0, 0, "/ok");
    f->pc[0].cfg.timeout_ms = 200;
    assert_true(fx_probe(f, c)->ok);
    muted = true;
    const struct observation *o = fx_probe(f, c);
    assert_false(o->ok);
    assert_string_equal(o->reason, "timeout after 200 ms");
    assert_int_equal(f->srv.accepted, 1); /* it was the kept connection */
}

/* ... nor one that stopped accepting but still answers on the connections
 * it has: a connection is kept HTTP_REUSE_MS at most (50 ms here), and the
 * probe that connects anew is refused. */
static void http_server_not_accepting_is_seen_past_the_reuse_age(void **state)
{
    struct fx *f = *state;
    struct check *c = fx_check(f, 0, 0, "/ok");
    f->pc[0].hp.reuse_ms = 50;
    const struct observation *o = fx_probe(f, c);
    assert_true(o->ok);
    srv_unlisten(&f->srv);
    uint64_t t0 = clock_mono_us();
    int passed = 0;
    for (;;) {
        n_got = 0; /* only the latest report matters: reuse the log */
        if (!(o = fx_probe(f, c))->ok || clock_mono_us() - t0 > 10000000)
            break;
        passed++;
    }
    assert_false(o->ok);
    assert_true(passed > 0); /* the kept connection answered meanwhile */
    assert_non_null(strstr(o->reason, "Failed to connect"));
    assert_int_equal(f->srv.accepted, 1);
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
    loopwait_until(&f->loop, f->srv.requests >= 1);
    http_detector.cancel(c);
    loopwait_idle(&f->loop, 300); /* time for what must not happen */
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
    loopwait_idle(&f->loop, 200); /* time for what must not happen */
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
        T(http_server_gone_fails_the_next_probe),
        T(http_server_stopped_times_out_on_the_kept_connection),
        T(http_server_not_accepting_is_seen_past_the_reuse_age),
        T(http_closed_port_is_network_high_connection_refused),
        T(http_tls_to_plain_server_is_network_high),
        T(http_chunked_body_is_matched_across_chunks),
        T(http_response_split_in_small_writes_is_read_whole),
        T(http_10_response_closes_the_connection),
        T(http_body_ending_at_close_is_ok),
        T(http_interim_1xx_is_skipped),
        T(http_stale_connection_is_retried_once_not_failed),
        T(http_headers_up_to_16k_are_accepted),
        T(http_headers_over_16k_are_a_bad_response),
        T(http_garbage_is_a_bad_response_at_once),
        T(http_bad_content_length_is_a_bad_response),
        T(http_close_before_the_body_ends_is_a_bad_response),
        T(http_request_carries_path_query_and_host),
        T(http_localhost_is_loopback),
        T(http_name_is_resolved_off_the_loop),
        T(http_ipv6_literal_is_probed),
        T(https_without_plugin_fails_with_words),
        T(https_probe_through_the_plugin),
        T(http_probes_of_one_check_reuse_the_connection),
        T(http_server_closing_idle_connection_is_not_a_failure),
        T(http_start_while_in_flight_is_ebusy),
        T(http_cancel_reports_nothing_and_check_probes_again),
        T(http_release_while_in_flight_reports_nothing),
        T(http_start_from_inside_report_runs_next_probe),
        T(http_release_from_inside_report_is_safe),
        T(http_concurrent_checks_each_report_once),
        cmocka_unit_test(http_validate_wants_http_or_https_url),
        cmocka_unit_test(http_validate_refuses_userinfo_fragment_and_bad_ports),
        cmocka_unit_test(http_fields_declare_the_yaml_keys),
        cmocka_unit_test(detector_find_knows_http_and_tcp),
    };
    signal(SIGPIPE, SIG_IGN); /* as the daemon does: a write to a closed peer is an error */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
