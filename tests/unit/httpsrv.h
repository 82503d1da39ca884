/* A canned HTTP/1.1 server in the test's own loop, for the HTTP client and
 * check tests: each whole request (head, then Content-Length bytes) is
 * handed to the test's answer function with its path. */
#ifndef RECOVERD_TESTS_HTTPSRV_H
#define RECOVERD_TESTS_HTTPSRV_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <uv.h>

struct srv;

struct srv_conn {
    uv_tcp_t tcp;                   /* data = this */
    uv_timer_t drip;                /* sends drip_buf a few bytes a tick; data = this */
    int open;                       /* handles not closed yet; freed at 0 */
    struct srv *srv;                /* owner */
    bool drop_next;                 /* for the answer function: hang up on the next request */
    size_t len;                     /* bytes in buf */
    char buf[8192];                 /* request bytes not yet answered */
    size_t drip_len, drip_off;      /* bytes in drip_buf, bytes sent */
    char drip_buf[512];             /* an answer sent in small pieces */
    struct srv_conn *next, **pprev; /* in srv->conns */
};

/* Answer the request for path on k (or not); false when it closed k. */
typedef bool (*srv_answer_fn)(struct srv_conn *k, const char *path);

struct srv {
    uv_tcp_t listener;      /* data = this */
    int port;               /* listening port, host order */
    int accepted;           /* connections accepted */
    int requests;           /* whole requests received */
    char last[4096];        /* the last request, head and body */
    struct srv_conn *conns; /* open connections */
    srv_answer_fn answer;   /* the test's */
};

/* Listen on addr (port 0: any); 0 or the bind error. A peer whose first
 * byte cannot start a method (a TLS hello) is told 400 and hung up on. */
int srv_start_at(uv_loop_t *loop, struct srv *srv, const struct sockaddr *addr,
                 srv_answer_fn answer);
/* Listen on 127.0.0.1, any port. */
void srv_start(uv_loop_t *loop, struct srv *srv, srv_answer_fn answer);
/* Close every connection and the listener (the loop then runs them down). */
void srv_stop(struct srv *srv);
/* Close the listener only: the open connections go on answering, as a
 * service's whose accept loop died. srv_stop after it is fine. */
void srv_unlisten(struct srv *srv);
void srv_conn_close(struct srv_conn *k);
/* Write raw bytes (copied). */
void srv_send(struct srv_conn *k, const char *raw, size_t len);
/* Send the string raw three bytes a millisecond, so the peer's reads split
 * everywhere. */
void srv_drip(struct srv_conn *k, const char *raw);
/* A port nobody listens on: bound, read, released. */
int port_closed(void);

#endif
