/* The canned HTTP/1.1 server of the HTTP tests. */
#include "httpsrv.h"

#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static void srv__conn_close_cb(uv_handle_t *h)
{
    struct srv_conn *k = h->data;
    if (--k->open == 0)
        free(k);
}

void srv_conn_close(struct srv_conn *k)
{
    *k->pprev = k->next;
    if (k->next)
        k->next->pprev = k->pprev;
    uv_close((uv_handle_t *)&k->tcp, srv__conn_close_cb);
    uv_close((uv_handle_t *)&k->drip, srv__conn_close_cb);
}

static void srv__write_cb(uv_write_t *w, int status)
{
    free(w);
}

void srv_send(struct srv_conn *k, const char *raw, size_t len)
{
    uv_write_t *w = malloc(sizeof *w + len);
    assert_non_null(w);
    memcpy(w + 1, raw, len);
    uv_buf_t b = uv_buf_init((char *)(w + 1), (unsigned)len);
    assert_int_equal(uv_write(w, (uv_stream_t *)&k->tcp, &b, 1, srv__write_cb), 0);
}

static void srv__drip_cb(uv_timer_t *t)
{
    struct srv_conn *k = t->data;
    size_t n = k->drip_len - k->drip_off < 3 ? k->drip_len - k->drip_off : 3;
    srv_send(k, k->drip_buf + k->drip_off, n);
    if ((k->drip_off += n) == k->drip_len)
        uv_timer_stop(t);
}

void srv_drip(struct srv_conn *k, const char *raw)
{
    k->drip_len = strlen(raw);
    assert_true(k->drip_len <= sizeof k->drip_buf);
    k->drip_off = 0;
    memcpy(k->drip_buf, raw, k->drip_len);
    uv_timer_start(&k->drip, srv__drip_cb, 1, 1);
}

static void srv__alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    struct srv_conn *k = h->data;
    *b = uv_buf_init(k->buf + k->len, (unsigned)(sizeof k->buf - k->len - 1));
}

static void srv__read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct srv_conn *k = s->data;
    char *end, *cl, path[256];
    if (n < 0) {
        srv_conn_close(k);
        return;
    }
    k->len += (size_t)n;
    k->buf[k->len] = '\0';
    if (k->buf[0] < 'A' || k->buf[0] > 'Z') {
        /* Not HTTP (a TLS hello): say so in plain text and hang up. */
        uv_buf_t no = uv_buf_init("HTTP/1.1 400 Bad\r\n\r\n", 21);
        uv_try_write(s, &no, 1);
        srv_conn_close(k);
        return;
    }
    while ((end = strstr(k->buf, "\r\n\r\n"))) {
        size_t head = (size_t)(end + 4 - k->buf), body = 0;
        if ((cl = strcasestr(k->buf, "\r\ncontent-length:")) && cl < end)
            body = strtoul(cl + 17, NULL, 10);
        if (k->len < head + body)
            return;
        snprintf(k->srv->last, sizeof k->srv->last, "%.*s", (int)(head + body), k->buf);
        memmove(k->buf, k->buf + head + body, k->len - head - body + 1);
        k->len -= head + body;
        if (sscanf(k->srv->last, "%*s %255s HTTP/1.1", path) != 1)
            continue;
        k->srv->requests++;
        if (!k->srv->answer(k, path))
            return; /* k is closing */
    }
}

static void srv__conn_cb(uv_stream_t *l, int status)
{
    struct srv *srv = l->data;
    struct srv_conn *k = calloc(1, sizeof *k);
    assert_int_equal(status, 0);
    assert_non_null(k);
    uv_tcp_init(l->loop, &k->tcp);
    uv_timer_init(l->loop, &k->drip);
    k->tcp.data = k->drip.data = k;
    k->open = 2;
    k->srv = srv;
    assert_int_equal(uv_accept(l, (uv_stream_t *)&k->tcp), 0);
    k->next = srv->conns;
    if (k->next)
        k->next->pprev = &k->next;
    k->pprev = &srv->conns;
    srv->conns = k;
    srv->accepted++;
    uv_tcp_nodelay(&k->tcp, 1);
    uv_read_start((uv_stream_t *)&k->tcp, srv__alloc_cb, srv__read_cb);
}

int srv_start_at(uv_loop_t *loop, struct srv *srv, const struct sockaddr *addr,
                 srv_answer_fn answer)
{
    struct sockaddr_storage ss;
    int len = sizeof ss, r;
    memset(srv, 0, sizeof *srv);
    srv->answer = answer;
    assert_int_equal(uv_tcp_init(loop, &srv->listener), 0);
    srv->listener.data = srv;
    if ((r = uv_tcp_bind(&srv->listener, addr, 0)) < 0 ||
        (r = uv_listen((uv_stream_t *)&srv->listener, 128, srv__conn_cb)) < 0)
        return r;
    uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &len);
    srv->port = ntohs(((struct sockaddr_in *)&ss)->sin_port); /* same offset in sin6 */
    return 0;
}

void srv_start(uv_loop_t *loop, struct srv *srv, srv_answer_fn answer)
{
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    assert_int_equal(srv_start_at(loop, srv, (struct sockaddr *)&a, answer), 0);
}

void srv_stop(struct srv *srv)
{
    while (srv->conns)
        srv_conn_close(srv->conns);
    srv_unlisten(srv);
}

void srv_unlisten(struct srv *srv)
{
    if (!uv_is_closing((uv_handle_t *)&srv->listener))
        uv_close((uv_handle_t *)&srv->listener, NULL);
}

int port_closed(void)
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
