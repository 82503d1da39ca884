/* The recoverd-https.so plug-in: https checks through libcurl's multi
 * interface driven by the libuv loop (STACK.md, "libcurl multi on libuv").
 * detect/http.c loads it on the first https probe and hands it those
 * checks; it calls back check_report and http_response_observe, exported
 * by the recoverd executable. */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config-t.h"
#include "detect/http.h"

/* One per check, kept across probes: the easy handle keeps its settings and
 * the multi's connection cache hands the next probe the same keep-alive
 * connection, which halves the CPU of a probe (STACK.md). */
struct https__probe {
    struct check *c;           /* owner; borrowed */
    CURL *easy;                /* CURLOPT_PRIVATE = this */
    bool active;               /* added to the multi: a probe is in flight */
    bool keep;                 /* the check matches the body: keep its head */
    size_t body_len;           /* bytes used in body */
    char body[HTTP_BODY_KEEP]; /* head of the response body */
    char err[CURL_ERROR_SIZE]; /* curl's words for a transport error */
};

/* One per socket curl asks us to watch, found again through
 * curl_multi_assign so that one fd never gets two polls. */
struct https__sock {
    uv_poll_t poll;                    /* data = this; freed in its close callback */
    curl_socket_t fd;                  /* the socket watched */
    struct https__sock *next, **pprev; /* in https__g.socks, to close leftovers at shutdown */
};

static struct {
    uv_loop_t *loop;           /* the daemon's loop; borrowed */
    CURLM *multi;              /* every probe of every https check */
    uv_timer_t timer;          /* curl's own deadlines (CURLMOPT_TIMERFUNCTION) */
    struct https__sock *socks; /* polls open */
    size_t n_easy;             /* probes alive (checks with an easy handle) */
    bool up;                   /* between init and shutdown */
    bool closing;              /* inside curl_multi_cleanup: the multi is going */
} https__g;

/* curl's words, plus the system's for a failed connect, where 7.88 says only
 * "Couldn't connect to server". OS_ERRNO is never reset by curl, so it is
 * trusted only right after a connect failure. */
static void https__transport_reason(const struct https__probe *p, CURLcode res, char *buf,
                                    size_t len)
{
    const char *words = p->err[0] ? p->err : curl_easy_strerror(res);
    long os_errno = 0;
    if (res == CURLE_COULDNT_CONNECT)
        curl_easy_getinfo(p->easy, CURLINFO_OS_ERRNO, &os_errno);
    if (os_errno > 0 && !strcasestr(words, strerror((int)os_errno)))
        snprintf(buf, len, "%s (%s)", words, strerror((int)os_errno));
    else
        snprintf(buf, len, "%s", words);
}

/* Turn a finished transfer into an observation (DESIGN.md section 3). */
static void https__classify(const struct https__probe *p, CURLcode res, struct observation *obs)
{
    long status = 0;
    if (res == CURLE_OK) {
        curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &status);
        http_response_observe(p->c->cfg->params, (int)status, p->body, p->body_len, obs);
        return;
    }
    memset(obs, 0, sizeof *obs);
    obs->code = -1;
    obs->type = FAULT_NETWORK;
    obs->severity = SEVERITY_HIGH;
    if (res == CURLE_OPERATION_TIMEDOUT) {
        obs->severity = SEVERITY_MEDIUM;
        snprintf(obs->reason, sizeof obs->reason, "timeout after %llu ms",
                 (unsigned long long)p->c->cfg->timeout_ms);
        return;
    }
    https__transport_reason(p, res, obs->reason, sizeof obs->reason);
}

/* Report every finished transfer. Runs after each curl_multi_socket_action,
 * outside curl's callbacks, so check_report may start, cancel or release
 * checks (removing a handle also drops its queued message). */
static void https__drain(void)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(https__g.multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        char *priv = NULL;
        CURLcode res = m->data.result; /* m dies with remove_handle */
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        struct https__probe *p = (struct https__probe *)priv;
        curl_multi_remove_handle(https__g.multi, p->easy);
        p->active = false;
        struct observation obs;
        https__classify(p, res, &obs);
        check_report(p->c, &obs);
    }
}

static void https__poll_cb(uv_poll_t *poll, int status, int events)
{
    struct https__sock *s = poll->data;
    int flags = 0, running;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(https__g.multi, s->fd, flags, &running);
    https__drain();
}

static void https__timer_cb(uv_timer_t *t)
{
    int running;
    curl_multi_socket_action(https__g.multi, CURL_SOCKET_TIMEOUT, 0, &running);
    https__drain();
}

/* CURLMOPT_TIMERFUNCTION: curl wants one deadline; -1 removes it. Only arm
 * the timer here: calling into curl from this callback is not allowed. */
static int https__timer_fn(CURLM *multi, long ms, void *userp)
{
    if (ms < 0)
        uv_timer_stop(&https__g.timer);
    else
        uv_timer_start(&https__g.timer, https__timer_cb, (uint64_t)ms, 0);
    return 0;
}

static void https__sock_close_cb(uv_handle_t *h)
{
    free(h->data);
}

static void https__sock_close(struct https__sock *s)
{
    *s->pprev = s->next;
    if (s->next)
        s->next->pprev = s->pprev;
    uv_close((uv_handle_t *)&s->poll, https__sock_close_cb);
}

static struct https__sock *https__sock_new(curl_socket_t fd)
{
    struct https__sock *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    if (uv_poll_init_socket(https__g.loop, &s->poll, fd) < 0) {
        free(s); /* never initialised: no close needed */
        return NULL;
    }
    s->fd = fd;
    s->poll.data = s;
    s->next = https__g.socks;
    if (s->next)
        s->next->pprev = &s->next;
    s->pprev = &https__g.socks;
    https__g.socks = s;
    curl_multi_assign(https__g.multi, fd, s);
    return s;
}

/* CURLMOPT_SOCKETFUNCTION: watch what curl asks for on fd. curl announces
 * REMOVE before it closes the socket, so the poll leaves epoll while the fd
 * is still valid and a new socket reusing the number gets a fresh poll. */
static int https__socket_fn(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct https__sock *s = socketp;
    int ev = 0;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            if (!https__g.closing)
                curl_multi_assign(https__g.multi, fd, NULL);
            https__sock_close(s);
        }
        return 0;
    }
    if (!s && !(s = https__sock_new(fd)))
        return -1;
    if (what & CURL_POLL_IN)
        ev |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        ev |= UV_WRITABLE;
    return uv_poll_start(&s->poll, ev, https__poll_cb) < 0 ? -1 : 0;
}

/* Keep the head of the body for the match; swallow the rest. */
static size_t https__write_cb(char *data, size_t size, size_t n, void *userp)
{
    struct https__probe *p = userp;
    size_t len = size * n, room = sizeof p->body - p->body_len;
    if (p->keep && room) {
        size_t k = len < room ? len : room;
        memcpy(p->body + p->body_len, data, k);
        p->body_len += k;
    }
    return len;
}

static int https__easy_setup(struct https__probe *p)
{
    const struct http_params *hp = p->c->cfg->params;
    CURL *e = p->easy;
    long verify = hp->tls_verify;
    /* Any failing option leaves its CURLcode set; OR-ing them keeps "any". */
    int r = curl_easy_setopt(e, CURLOPT_URL, hp->url);
    r |= curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)p);
    r |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, https__write_cb);
    r |= curl_easy_setopt(e, CURLOPT_WRITEDATA, p);
    r |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, p->err);
    r |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    r |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)p->c->cfg->timeout_ms);
    r |= curl_easy_setopt(e, CURLOPT_PROXY, ""); /* ignore http_proxy & co from the env */
    r |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    r |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
    r |= curl_easy_setopt(e, CURLOPT_USERAGENT, "recoverd");
    /* Debian's compiled-in CA directory disables curl's CA cache: every
     * handshake would re-parse the bundle (~26 ms of loop CPU, STACK.md). */
    r |= curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
    r |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, verify);
    r |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
    return r ? -EINVAL : 0;
}

static struct https__probe *https__probe_new(struct check *c)
{
    struct https__probe *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->c = c;
    p->keep = ((const struct http_params *)c->cfg->params)->expect_body != NULL;
    if (!(p->easy = curl_easy_init()) || https__easy_setup(p) < 0)
        goto fail;
    /* Room in the connection cache for one idle connection per check, or
     * probes of quiet checks would find theirs evicted and reconnect. */
    https__g.n_easy++;
    curl_multi_setopt(https__g.multi, CURLMOPT_MAXCONNECTS,
                      (long)(https__g.n_easy < 16 ? 32 : 2 * https__g.n_easy));
    return p;
fail:
    curl_easy_cleanup(p->easy); /* NULL-safe */
    free(p);
    return NULL;
}

static int https__start(struct check *c)
{
    struct https__probe *p = c->priv;
    if (!https__g.up)
        return -EINVAL;
    if (!p && !(p = https__probe_new(c)))
        return -ENOMEM;
    c->priv = p;
    if (p->active)
        return -EBUSY;
    p->body_len = 0;
    p->err[0] = '\0';
    /* Only arms curl's timer (timeout 0): the transfer and its report happen
     * in later loop callbacks, never inside start. */
    if (curl_multi_add_handle(https__g.multi, p->easy) != CURLM_OK)
        return -EIO;
    p->active = true;
    return 0;
}

static void https__cancel(struct check *c)
{
    struct https__probe *p = c->priv;
    if (!p || !p->active)
        return;
    curl_multi_remove_handle(https__g.multi, p->easy);
    p->active = false;
}

static void https__release(struct check *c)
{
    struct https__probe *p = c->priv;
    if (!p)
        return;
    https__cancel(c);
    curl_easy_cleanup(p->easy);
    free(p);
    https__g.n_easy--;
    c->priv = NULL;
}

static int https__init(uv_loop_t *loop)
{
    if (https__g.up)
        return -EALREADY;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -EIO;
    if (!(https__g.multi = curl_multi_init()))
        goto fail;
    https__g.loop = loop;
    curl_multi_setopt(https__g.multi, CURLMOPT_SOCKETFUNCTION, https__socket_fn);
    curl_multi_setopt(https__g.multi, CURLMOPT_TIMERFUNCTION, https__timer_fn);
    curl_multi_setopt(https__g.multi, CURLMOPT_MAXCONNECTS, 32L);
    uv_timer_init(loop, &https__g.timer);
    https__g.up = true;
    return 0;
fail:
    curl_global_cleanup();
    return -ENOMEM;
}

static void https__shutdown(void)
{
    if (!https__g.up)
        return;
    /* Closing the cached connections may announce REMOVE for their sockets;
     * whatever poll is left after that is closed here. */
    https__g.closing = true;
    curl_multi_cleanup(https__g.multi);
    while (https__g.socks)
        https__sock_close(https__g.socks);
    uv_close((uv_handle_t *)&https__g.timer, NULL); /* static: nothing to free */
    curl_global_cleanup();
    https__g.multi = NULL;
    https__g.closing = false;
    https__g.up = false;
}

static const struct detector_ops https__ops = {
    .name = "https",
    .init = https__init,
    .shutdown = https__shutdown,
    .start = https__start,
    .cancel = https__cancel,
    .release = https__release,
};

/* The plug-in's one entry point (HTTP_PLUGIN_SYMBOL). */
__attribute__((visibility("default"))) const struct detector_ops *recoverd_https_detector(void)
{
    return &https__ops;
}
