/* lib/lookup: names resolved on libuv's pool, and owners that lose
 * interest first (the callback never comes; LeakSanitizer checks that the
 * request is freed anyway). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lib/lookup.h"

struct got {
    int calls;
    int status;
    int family;
    char host[64];
    char addr[INET6_ADDRSTRLEN];
    struct lookup *l; /* the owner's pointer, forgotten in the callback */
};

static void got_cb(void *arg, int status, const struct addrinfo *res, const char *host)
{
    struct got *g = arg;
    g->calls++;
    g->status = status;
    g->l = NULL;
    snprintf(g->host, sizeof g->host, "%s", host);
    if (status < 0) {
        assert_null(res);
        return;
    }
    assert_non_null(res);
    g->family = res->ai_family;
    assert_int_equal(res->ai_socktype, SOCK_STREAM);
    const void *a = res->ai_family == AF_INET
                        ? (const void *)&((const struct sockaddr_in *)res->ai_addr)->sin_addr
                        : (const void *)&((const struct sockaddr_in6 *)res->ai_addr)->sin6_addr;
    inet_ntop(res->ai_family, a, g->addr, sizeof g->addr);
}

static void localhost_resolves_to_loopback(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct got g = {0};
    char name[] = "localhost";
    assert_int_equal(lookup_start(&loop, name, got_cb, &g, &g.l), 0);
    assert_non_null(g.l);
    name[0] = 'X'; /* the lookup keeps its own copy */
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.status, 0);
    assert_string_equal(g.host, "localhost");
    assert_true(strcmp(g.addr, "127.0.0.1") == 0 || strcmp(g.addr, "::1") == 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void an_unknown_name_is_an_error_without_addresses(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct got g = {0};
    /* .invalid never resolves (RFC 6761), with or without a resolver. */
    assert_int_equal(lookup_start(&loop, "no-such-host.invalid", got_cb, &g, &g.l), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(g.calls, 1);
    assert_true(g.status < 0);
    assert_string_equal(g.host, "no-such-host.invalid");
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void a_cancelled_lookup_never_calls_back(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct got g[8] = {{0}};
    for (int i = 0; i < 8; i++) {
        assert_int_equal(lookup_start(&loop, "localhost", got_cb, &g[i], &g[i].l), 0);
        lookup_cancel(g[i].l); /* queued or already running: either way, silence */
    }
    lookup_cancel(NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < 8; i++)
        assert_int_equal(g[i].calls, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(localhost_resolves_to_loopback),
        cmocka_unit_test(an_unknown_name_is_an_error_without_addresses),
        cmocka_unit_test(a_cancelled_lookup_never_calls_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
