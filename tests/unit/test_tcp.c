/* The tcp detector against listeners in the same loop and closed ports. */
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

#include "config/config-t.h"
#include "detect/kinds.h"
#include "detect/tcp.h"
#include "loopwait.h"

/* ---- the fake of detect/check.c ---- */

#define GOT_MAX 64
static struct observation got[GOT_MAX]; /* reports in arrival order */
static struct check *got_check[GOT_MAX];
static bool got_after_mark[GOT_MAX];  /* mark (below) had fired at the report */
static uint64_t got_loop_ms[GOT_MAX]; /* the loop's time at the report */
static uv_loop_t *got_loop;           /* the fixture's */
static int n_got;
static void (*report_hook)(struct check *c); /* run inside check_report */
static struct loopwait_mark *mark;           /* a point in loop time to order reports by */

void check_report(struct check *c, struct observation *obs)
{
    assert_true(n_got < GOT_MAX);
    got_check[n_got] = c;
    got_after_mark[n_got] = mark && mark->fired;
    got_loop_ms[n_got] = uv_now(got_loop);
    got[n_got++] = *obs;
    if (report_hook)
        report_hook(c);
}

/* ---- fixture ---- */

struct fx {
    uv_loop_t loop;
    uv_tcp_t listener; /* accepts and closes at once */
    int port;          /* the listener's 127.0.0.1 port */
    int accepted;      /* connections the listener saw */
    struct check c;
    struct check_cfg cfg;
    struct tcp_params tp;
};

static void accept_cb(uv_stream_t *l, int status)
{
    struct fx *f = l->data;
    uv_tcp_t *k = malloc(sizeof *k);
    uv_tcp_init(l->loop, k);
    assert_int_equal(uv_accept(l, (uv_stream_t *)k), 0);
    f->accepted++;
    uv_close((uv_handle_t *)k, (uv_close_cb)free);
}

static int port_of(const uv_tcp_t *t)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    uv_tcp_getsockname(t, (struct sockaddr *)&ss, &len);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    struct sockaddr_in a;
    assert_int_equal(uv_loop_init(&f->loop), 0);
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(&f->loop, &f->listener);
    f->listener.data = f;
    assert_int_equal(uv_tcp_bind(&f->listener, (struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&f->listener, 16, accept_cb), 0);
    f->port = port_of(&f->listener);
    assert_int_equal(tcp_detector.init(&f->loop), 0);
    f->cfg.name = "tcp";
    f->cfg.ops = &tcp_detector;
    f->cfg.params = &f->tp;
    f->cfg.timeout_ms = 1000;
    f->cfg.severity = -1;
    f->c.cfg = &f->cfg;
    f->c.ops = &tcp_detector;
    n_got = 0;
    got_loop = &f->loop;
    report_hook = NULL;
    mark = NULL;
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    tcp_detector.release(&f->c);
    tcp_detector.shutdown();
    uv_close((uv_handle_t *)&f->listener, NULL);
    if (mark)
        loopwait_mark_free(mark);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

static void fx_target(struct fx *f, const char *ip, int port)
{
    struct sockaddr_in *a = (struct sockaddr_in *)&f->tp.address;
    assert_int_equal(uv_ip4_addr(ip, port, a), 0);
}

/* One probe; asserts it did not report from inside start. within_ms (0:
 * none): arm the mark due then, counted from the same instant as the
 * probe's timer, which counts from now (see loopwait_mark_new). */
static const struct observation *fx_probe_within(struct fx *f, uint64_t within_ms)
{
    int before = n_got;
    uv_update_time(&f->loop);
    if (within_ms)
        mark = loopwait_mark_new(&f->loop, within_ms);
    assert_int_equal(tcp_detector.start(&f->c), 0);
    assert_int_equal(n_got, before);
    loopwait_until(&f->loop, n_got > before);
    assert_int_equal(n_got, before + 1);
    assert_ptr_equal(got_check[before], &f->c);
    assert_null(f->c.priv);
    return &got[before];
}

static const struct observation *fx_probe(struct fx *f)
{
    return fx_probe_within(f, 0);
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

/* ---- tests ---- */

static void tcp_listening_port_is_ok(void **state)
{
    struct fx *f = *state;
    fx_target(f, "127.0.0.1", f->port);
    const struct observation *o = fx_probe(f);
    assert_true(o->ok);
    assert_string_equal(o->reason, "connected");
    loopwait_until(&f->loop, f->accepted >= 1);
    assert_int_equal(f->accepted, 1);
}

static void tcp_closed_port_is_refused_network_high(void **state)
{
    struct fx *f = *state;
    fx_target(f, "127.0.0.1", port_closed());
    const struct observation *o = fx_probe(f);
    assert_false(o->ok);
    assert_int_equal(o->type, FAULT_NETWORK);
    assert_int_equal(o->severity, SEVERITY_HIGH);
    assert_int_equal(o->code, -1);
    assert_string_equal(o->reason, "connection refused");
}

static void tcp_probes_repeat_on_one_check(void **state)
{
    struct fx *f = *state;
    fx_target(f, "127.0.0.1", f->port);
    for (int i = 0; i < 20; i++)
        assert_true(fx_probe(f)->ok);
    loopwait_until(&f->loop, f->accepted >= 20);
    assert_int_equal(f->accepted, 20);
}

static void restart_hook(struct check *c)
{
    if (n_got < 5)
        assert_int_equal(tcp_detector.start(c), 0);
}

static void tcp_start_from_inside_report_runs_next_probe(void **state)
{
    struct fx *f = *state;
    report_hook = restart_hook;
    fx_target(f, "127.0.0.1", port_closed());
    assert_int_equal(tcp_detector.start(&f->c), 0);
    loopwait_until(&f->loop, n_got >= 5);
    assert_int_equal(n_got, 5);
    assert_null(f->c.priv); /* the hook stopped starting: nothing in flight */
    for (int i = 0; i < 5; i++)
        assert_string_equal(got[i].reason, "connection refused");
}

static void tcp_start_while_in_flight_is_ebusy(void **state)
{
    struct fx *f = *state;
    fx_target(f, "127.0.0.1", f->port);
    assert_int_equal(tcp_detector.start(&f->c), 0);
    assert_int_equal(tcp_detector.start(&f->c), -EBUSY);
    loopwait_until(&f->loop, n_got >= 1);
    loopwait_idle(&f->loop, 50); /* time for a second report that must not come */
    assert_int_equal(n_got, 1);
}

static void tcp_cancel_while_connecting_reports_nothing(void **state)
{
    struct fx *f = *state;
    fx_target(f, "127.0.0.1", f->port);
    assert_int_equal(tcp_detector.start(&f->c), 0);
    tcp_detector.cancel(&f->c);
    assert_null(f->c.priv);
    tcp_detector.cancel(&f->c); /* twice is harmless */
    fx_target(f, "127.0.0.1", port_closed());
    assert_int_equal(tcp_detector.start(&f->c), 0);
    tcp_detector.release(&f->c);
    loopwait_idle(&f->loop, 200); /* time for a report that must not come */
    assert_int_equal(n_got, 0);
}

/* A listener with backlog 0 that never accepts: once its queue holds one
 * connection, Linux drops further SYNs, so a connect neither succeeds nor
 * fails. The check targets it; l and fill are the test's to close. */
static void silent_peer(struct fx *f, int *l, int *fill)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    *l = socket(AF_INET, SOCK_STREAM, 0);
    *fill = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(*l, (struct sockaddr *)&a, len), 0);
    assert_int_equal(listen(*l, 0), 0);
    assert_int_equal(getsockname(*l, (struct sockaddr *)&a, &len), 0);
    assert_int_equal(connect(*fill, (struct sockaddr *)&a, len), 0);
    fx_target(f, "127.0.0.1", ntohs(a.sin_port));
}

/* Where the network stack behaves otherwise than silent_peer expects, the
 * case is skipped. */
static void tcp_silent_peer_times_out_network_high(void **state)
{
    struct fx *f = *state;
    int l, fill;
    silent_peer(f, &l, &fill);
    f->cfg.timeout_ms = 150;
    /* Measured on the loop's clock, the one the probe's timer runs on; and
     * within the timeout: reported before a mark due at twice it. */
    uv_update_time(&f->loop);
    uint64_t t0 = uv_now(&f->loop);
    struct observation o = *fx_probe_within(f, 2 * f->cfg.timeout_ms);
    uint64_t took_ms = uv_now(&f->loop) - t0;
    close(fill);
    close(l);
    if (o.ok)
        skip();
    assert_int_equal(o.type, FAULT_NETWORK);
    assert_int_equal(o.severity, SEVERITY_HIGH);
    assert_string_equal(o.reason, "timeout after 150 ms");
    assert_true(took_ms >= 150);     /* not before the timeout */
    assert_false(got_after_mark[0]); /* nor long after it */
}

/* A probe started by a callback that ran long (the loop's cached time is
 * 50 ms stale): its timeout counts from the start, so it reports no sooner
 * than 50 + timeout ms after the stale time, on the loop's own clock (less
 * its 1 ms grain). Counted from the stale time it would report 50 ms early.
 * A busy host can only make it later. */
static void tcp_timeout_counts_from_the_start_after_a_long_callback(void **state)
{
    struct fx *f = *state;
    int l, fill;
    silent_peer(f, &l, &fill);
    f->cfg.timeout_ms = 100;
    uv_update_time(&f->loop);
    uint64_t stale = uv_now(&f->loop);
    loopwait_nap(50); /* the long callback's work, with no loop turn */
    assert_int_equal(tcp_detector.start(&f->c), 0);
    loopwait_until(&f->loop, n_got == 1);
    close(fill);
    close(l);
    if (got[0].ok)
        skip();
    assert_string_equal(got[0].reason, "timeout after 100 ms");
    assert_true(got_loop_ms[0] - stale >= 50 + 100 - 1);
}

static void tcp_immediate_connect_error_is_reported_from_the_loop(void **state)
{
    struct fx *f = *state;
    /* TCP to a multicast group: connect(2) fails at once with ENETUNREACH. */
    fx_target(f, "224.0.0.1", 9);
    const struct observation *o = fx_probe(f);
    assert_false(o->ok);
    assert_int_equal(o->type, FAULT_NETWORK);
    assert_int_equal(o->severity, SEVERITY_HIGH);
    assert_string_equal(o->reason, "network is unreachable");
}

static void tcp_validate_wants_an_ip_address(void **state)
{
    struct tcp_params tp;
    char why[128] = "";
    memset(&tp, 0, sizeof tp);
    assert_int_equal(tcp_detector.validate(&tp, why, sizeof why), -EINVAL);
    assert_true(strlen(why) > 0);
    uv_ip4_addr("127.0.0.1", 80, (struct sockaddr_in *)&tp.address);
    assert_int_equal(tcp_detector.validate(&tp, why, sizeof why), 0);
    assert_string_equal(tcp_detector.fields[0].key, "address");
    assert_int_equal(tcp_detector.fields[0].type, CFG_ADDRESS);
    assert_true(tcp_detector.fields[0].required);
    assert_null(tcp_detector.fields[1].key);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(tcp_listening_port_is_ok),
        T(tcp_closed_port_is_refused_network_high),
        T(tcp_probes_repeat_on_one_check),
        T(tcp_start_from_inside_report_runs_next_probe),
        T(tcp_start_while_in_flight_is_ebusy),
        T(tcp_cancel_while_connecting_reports_nothing),
        T(tcp_silent_peer_times_out_network_high),
        T(tcp_timeout_counts_from_the_start_after_a_long_callback),
        T(tcp_immediate_connect_error_is_reported_from_the_loop),
        cmocka_unit_test(tcp_validate_wants_an_ip_address),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
