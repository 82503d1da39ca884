/* TCP checks: a non-blocking connect in the loop, bounded by a timer. */
#include "detect/tcp.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config-t.h"
#include "detect/kinds.h"
#include "lib/srcport.h"
#include "lib/uvclock.h"

/* One per probe, on the heap: its handles close asynchronously, and the next
 * probe may start before they have finished closing. */
struct tcp__attempt {
    struct check *c;  /* owner while in flight; NULL once finished or cancelled */
    uv_tcp_t tcp;     /* data = this */
    uv_timer_t timer; /* the probe's timeout; data = this */
    uv_connect_t req; /* data = this */
    int open;         /* handles not yet closed; freed at 0 */
    int err;          /* connect refused at once (e.g. UV_ENETUNREACH); reported by the timer */
};

static uv_loop_t *tcp__loop; /* the daemon's loop; borrowed */

static const struct cfg_field tcp__fields[] = {
    {"address", CFG_ADDRESS, offsetof(struct tcp_params, address), 1, NULL},
    {NULL, 0, 0, 0, NULL},
};

static int tcp__validate(const void *params, char *why, size_t len)
{
    const struct tcp_params *tp = params;
    sa_family_t f = tp->address.ss_family;
    if (f != AF_INET && f != AF_INET6) {
        snprintf(why, len, "address must be ip:port or [ip6]:port");
        return -EINVAL;
    }
    return 0;
}

static void tcp__close_cb(uv_handle_t *h)
{
    struct tcp__attempt *a = h->data;
    if (--a->open == 0)
        free(a);
}

/* Detach the attempt from its check and close its handles. A connect still
 * pending then completes with UV_ECANCELED, which reports nothing. */
static void tcp__finish(struct tcp__attempt *a)
{
    if (a->c)
        a->c->priv = NULL;
    a->c = NULL;
    uv_close((uv_handle_t *)&a->timer, tcp__close_cb);
    uv_close((uv_handle_t *)&a->tcp, tcp__close_cb);
}

static void tcp__report(struct tcp__attempt *a, struct observation *obs)
{
    struct check *c = a->c;
    tcp__finish(a); /* first: check_report may start the next probe */
    check_report(c, obs);
}

/* status: 0 connected, a UV error, or 1 for the timeout. */
static void tcp__observe(const struct tcp__attempt *a, int status, struct observation *obs)
{
    memset(obs, 0, sizeof *obs);
    obs->type = FAULT_NETWORK;
    obs->severity = SEVERITY_HIGH;
    obs->code = -1;
    if (status == 0) {
        obs->ok = true;
        snprintf(obs->reason, sizeof obs->reason, "connected");
    } else if (status == 1) {
        snprintf(obs->reason, sizeof obs->reason, "timeout after %llu ms",
                 (unsigned long long)a->c->cfg->timeout_ms);
    } else if (status == UV_ECONNREFUSED) {
        snprintf(obs->reason, sizeof obs->reason, "connection refused");
    } else {
        snprintf(obs->reason, sizeof obs->reason, "%s", uv_strerror(status));
    }
}

static void tcp__connect_cb(uv_connect_t *req, int status)
{
    struct tcp__attempt *a = req->data;
    struct observation obs;
    if (status == UV_ECANCELED || !a->c)
        return;
    tcp__observe(a, status, &obs);
    tcp__report(a, &obs);
}

static void tcp__timer_cb(uv_timer_t *t)
{
    struct tcp__attempt *a = t->data;
    struct observation obs;
    tcp__observe(a, a->err ? a->err : 1, &obs);
    tcp__report(a, &obs);
}

/* recoverd's own shortage, not the service's fault: start fails instead. */
static bool tcp__local_error(int r)
{
    return r == UV_EMFILE || r == UV_ENFILE || r == UV_ENOMEM || r == UV_ENOBUFS;
}

static int tcp__init(uv_loop_t *loop)
{
    tcp__loop = loop;
    return 0;
}

static void tcp__shutdown(void)
{
    tcp__loop = NULL;
}

static int tcp__start(struct check *c)
{
    const struct tcp_params *tp = c->cfg->params;
    struct tcp__attempt *a;
    int r;
    if (!tcp__loop)
        return -EINVAL;
    if (c->priv)
        return -EBUSY;
    if (!(a = calloc(1, sizeof *a)))
        return -ENOMEM;
    a->tcp.data = a->timer.data = a->req.data = a;
    if ((r = uv_tcp_init_ex(tcp__loop, &a->tcp, tp->address.ss_family)) < 0) {
        free(a);
        return r;
    }
    uv_timer_init(tcp__loop, &a->timer); /* cannot fail */
    a->open = 2;
    if ((r = srcport_uv(&a->tcp, tp->address.ss_family)) < 0)
        goto fail;
    /* libuv defers ECONNREFUSED to the callback; other immediate errors
     * (ENETUNREACH...) are the service's network and are reported by the
     * timer at once, because start itself must never report. */
    r = uv_tcp_connect(&a->req, &a->tcp, (const struct sockaddr *)&tp->address, tcp__connect_cb);
    if (r < 0 && tcp__local_error(r))
        goto fail;
    a->err = r;
    uvclock_arm(&a->timer, tcp__timer_cb, r < 0 ? 0 : c->cfg->timeout_ms);
    a->c = c;
    c->priv = a;
    return 0;
fail:
    tcp__finish(a);
    return r;
}

static void tcp__cancel(struct check *c)
{
    if (c->priv)
        tcp__finish(c->priv);
}

/* detector_ops.target */
static int tcp__target(const void *params, char *host, size_t len, unsigned *port)
{
    const struct sockaddr_storage *sa = &((const struct tcp_params *)params)->address;
    return detector_target_of(sa, host, len, port);
}

/* detector_ops.fds: the attempt's socket. */
static unsigned tcp__fds(const void *params)
{
    (void)params;
    return 1;
}

const struct detector_ops tcp_detector = {
    .name = "tcp",
    .fields = tcp__fields,
    .params_size = sizeof(struct tcp_params),
    .params_init = NULL,
    .validate = tcp__validate,
    .init = tcp__init,
    .shutdown = tcp__shutdown,
    .start = tcp__start,
    .cancel = tcp__cancel,
    .release = tcp__cancel, /* only an attempt in flight is held */
    .target = tcp__target,
    .fds = tcp__fds,
};
