/* The recoverd-https.so plug-in: https checks through libcurl's multi
 * interface driven by the libuv loop (STACK.md, "libcurl multi on libuv").
 * detect/http.c loads it on the first https probe and hands it those
 * checks; it calls back only through the struct https_host its entry point
 * is given (report, observe). Webhook alerts POST through it too
 * (HTTPS_POSTER_ENTRY, monitor/post.h). */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "config/config-t.h"
#include "detect/http.h"
#include "lib/text.h"
#include "lib/uvclock.h"
#include "monitor/post.h"

/* What CURLOPT_PRIVATE points to: both transfer kinds begin with it. */
enum https__kind { HTTPS__PROBE, HTTPS__POST };

/* One per check, kept across probes: the easy handle keeps its settings and
 * the multi's connection cache hands the next probe the same keep-alive
 * connection, which halves the CPU of a probe (STACK.md). */
struct https__probe {
    enum https__kind kind;     /* HTTPS__PROBE; first */
    struct check *c;           /* owner; borrowed */
    CURL *easy;                /* CURLOPT_PRIVATE = this */
    bool active;               /* added to the multi: a probe is in flight */
    bool keep;                 /* the check matches the body: keep its head */
    size_t body_len;           /* bytes used in body */
    char body[HTTP_BODY_KEEP]; /* head of the response body */
    char err[CURL_ERROR_SIZE]; /* curl's words for a transport error */
};

/* One webhook POST, freed when it ends or is cancelled. */
struct https_post {
    enum https__kind kind;      /* HTTPS__POST; first */
    CURL *easy;                 /* CURLOPT_PRIVATE = this */
    struct curl_slist *headers; /* Content-Type; no Expect */
    https_post_cb done;         /* the caller's; called once */
    void *arg;                  /* for done */
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
    uv_timer_t *timer;         /* curl's deadlines (CURLMOPT_TIMERFUNCTION); own close frees */
    struct https__sock *socks; /* polls open */
    size_t n_easy;             /* probes alive (checks with an easy handle) */
    size_t n_posts;            /* webhook POSTs in flight */
    bool up;                   /* the multi exists */
    bool checks_up;            /* between the detector's init and shutdown */
    bool draining;             /* inside https__drain: the multi must outlive it */
    bool closing;              /* inside curl_multi_cleanup: the multi is going */
} https__g;

static const struct https_host *https__host;      /* the executable's, from the entry point */
static int (*https__srcport)(int fd, int family); /* lib/srcport.h's, from either entry point */

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
        text_format(buf, len, "%s (%s)", words, strerror((int)os_errno));
    else
        text_format(buf, len, "%s", words);
}

/* Turn a finished transfer into an observation (DESIGN.md section 3). */
static void https__classify(const struct https__probe *p, CURLcode res, struct observation *obs)
{
    long status = 0;
    if (res == CURLE_OK) {
        curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &status);
        https__host->observe(p->c->cfg->params, (int)status, p->body, p->body_len, obs);
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

/* A finished POST: the HTTP status, or -errno for a transport failure. */
static int https__post_status(struct https_post *p, CURLcode res)
{
    long status = 0, os_errno = 0;
    switch (res) {
    case CURLE_OK:
        curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &status);
        return status > 0 ? (int)status : -EPROTO;
    case CURLE_OPERATION_TIMEDOUT: return -ETIMEDOUT;
    case CURLE_COULDNT_CONNECT:
        curl_easy_getinfo(p->easy, CURLINFO_OS_ERRNO, &os_errno);
        return os_errno > 0 ? -(int)os_errno : -ECONNREFUSED;
    case CURLE_COULDNT_RESOLVE_HOST: return -EHOSTUNREACH;
    case CURLE_OUT_OF_MEMORY: return -ENOMEM;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING: return -ECONNRESET;
    default: return -EPROTO; /* TLS handshake, certificate, malformed answer */
    }
}

static void https__post_free(struct https_post *p)
{
    curl_easy_cleanup(p->easy); /* NULL-safe */
    curl_slist_free_all(p->headers);
    free(p);
}

static void https__multi_idle(void);

/* Report every finished transfer. Runs after each curl_multi_socket_action,
 * outside curl's callbacks, so the report may start, cancel or release
 * checks (removing a handle also drops its queued message), and a POST's
 * callback may start or cancel POSTs. */
static void https__drain(void)
{
    CURLMsg *m;
    int left;
    https__g.draining = true;
    while ((m = curl_multi_info_read(https__g.multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        char *priv = NULL;
        CURLcode res = m->data.result; /* m dies with remove_handle */
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        curl_multi_remove_handle(https__g.multi, m->easy_handle);
        if (*(enum https__kind *)priv == HTTPS__POST) {
            struct https_post *q = (struct https_post *)priv;
            int status = https__post_status(q, res);
            https__g.n_posts--;
            q->done(status, q->arg);
            https__post_free(q);
            continue;
        }
        struct https__probe *p = (struct https__probe *)priv;
        p->active = false;
        struct observation obs;
        https__classify(p, res, &obs);
        https__host->detector->report(p->c, &obs);
    }
    https__g.draining = false;
    https__multi_idle();
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
        uv_timer_stop(https__g.timer);
    else
        uvclock_arm(https__g.timer, https__timer_cb, (uint64_t)ms);
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

static size_t https__discard_cb(char *data, size_t size, size_t n, void *userp)
{
    return size * n;
}

/* curl's socket, made and not yet connected: keep its source port off the
 * services' ports, as every connection recoverd makes (lib/srcport.h). */
static int https__sockopt_cb(void *arg, curl_socket_t fd, curlsocktype purpose)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    (void)arg;
    memset(&ss, 0, sizeof ss);
    if (purpose != CURLSOCKTYPE_IPCXN)
        return CURL_SOCKOPT_OK;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0 ||
        (https__srcport && https__srcport(fd, ss.ss_family) < 0))
        return CURL_SOCKOPT_ERROR;
    return CURL_SOCKOPT_OK;
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
    r |= curl_easy_setopt(e, CURLOPT_SOCKOPTFUNCTION, https__sockopt_cb);
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
    p->kind = HTTPS__PROBE;
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
    if (!https__g.checks_up)
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

/* The multi serves checks and POSTs alike: it starts with the first of
 * either and stops when neither is left. */
static int https__multi_up(uv_loop_t *loop)
{
    if (https__g.up)
        return https__g.loop == loop ? 0 : -EINVAL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -EIO;
    /* On the heap: after a stop, the old timer may still be closing when
     * the next POST starts the multi again. */
    if (!(https__g.timer = malloc(sizeof *https__g.timer)))
        goto fail;
    if (!(https__g.multi = curl_multi_init()))
        goto fail;
    https__g.loop = loop;
    curl_multi_setopt(https__g.multi, CURLMOPT_SOCKETFUNCTION, https__socket_fn);
    curl_multi_setopt(https__g.multi, CURLMOPT_TIMERFUNCTION, https__timer_fn);
    curl_multi_setopt(https__g.multi, CURLMOPT_MAXCONNECTS, 32L);
    uv_timer_init(loop, https__g.timer);
    https__g.up = true;
    return 0;
fail:
    free(https__g.timer);
    https__g.timer = NULL;
    curl_global_cleanup();
    return -ENOMEM;
}

static void https__timer_close_cb(uv_handle_t *h)
{
    free(h);
}

static void https__multi_down(void)
{
    /* Closing the cached connections may announce REMOVE for their sockets;
     * whatever poll is left after that is closed here. */
    https__g.closing = true;
    curl_multi_cleanup(https__g.multi);
    while (https__g.socks)
        https__sock_close(https__g.socks);
    uv_close((uv_handle_t *)https__g.timer, https__timer_close_cb);
    https__g.timer = NULL;
    curl_global_cleanup();
    https__g.multi = NULL;
    https__g.closing = false;
    https__g.up = false;
}

/* Stop the multi once no check and no POST needs it, so that a loop with
 * nothing else to do can end. */
static void https__multi_idle(void)
{
    if (https__g.up && !https__g.draining && !https__g.checks_up && https__g.n_posts == 0)
        https__multi_down();
}

static int https__init(uv_loop_t *loop)
{
    int r;
    if (https__g.checks_up)
        return -EALREADY;
    if ((r = https__multi_up(loop)) < 0)
        return r;
    https__g.checks_up = true;
    return 0;
}

static void https__shutdown(void)
{
    if (!https__g.checks_up)
        return;
    https__g.checks_up = false;
    https__multi_idle();
}

/* ---- webhook POSTs ---- */

static int https__post_setup(struct https_post *p, const char *url, const char *body, size_t len,
                             uint64_t timeout_ms)
{
    CURL *e = p->easy;
    p->headers = curl_slist_append(NULL, "Content-Type: application/json");
    /* "Expect:" removes curl's 100-continue wait on bodies over 1 MiB. */
    struct curl_slist *h = p->headers ? curl_slist_append(p->headers, "Expect:") : NULL;
    if (!h)
        return -ENOMEM;
    p->headers = h;
    /* Any failing option leaves its CURLcode set; OR-ing them keeps "any". */
    int r = curl_easy_setopt(e, CURLOPT_URL, url);
    r |= curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)p);
    r |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    r |= curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body);
    r |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, p->headers);
    r |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, https__discard_cb);
    r |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    r |= curl_easy_setopt(e, CURLOPT_SOCKOPTFUNCTION, https__sockopt_cb);
    r |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    r |= curl_easy_setopt(e, CURLOPT_PROXY, ""); /* ignore http_proxy & co from the env */
    r |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    r |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
    r |= curl_easy_setopt(e, CURLOPT_USERAGENT, "recoverd");
    r |= curl_easy_setopt(e, CURLOPT_CAPATH, NULL); /* the CA cache, as for checks */
    return r ? -EINVAL : 0;
}

/* struct https_poster's post (monitor/post.h). The body is copied. */
static int https__post(uv_loop_t *loop, const char *url, const char *body, size_t len,
                       uint64_t timeout_ms, https_post_cb done, void *arg, struct https_post **out)
{
    struct https_post *p = calloc(1, sizeof *p);
    int r = -ENOMEM;
    if (!p)
        return -ENOMEM;
    p->kind = HTTPS__POST;
    p->done = done;
    p->arg = arg;
    if ((r = https__multi_up(loop)) < 0)
        goto fail;
    r = -ENOMEM;
    if (!(p->easy = curl_easy_init()) || (r = https__post_setup(p, url, body, len, timeout_ms)) < 0)
        goto fail;
    /* Only arms curl's timer: done always comes from a later callback. */
    r = -EIO;
    if (curl_multi_add_handle(https__g.multi, p->easy) != CURLM_OK)
        goto fail;
    https__g.n_posts++;
    *out = p;
    return 0;
fail:
    https__post_free(p);
    https__multi_idle();
    return r;
}

/* struct https_poster's cancel: never called after done. */
static void https__post_cancel(struct https_post *p)
{
    curl_multi_remove_handle(https__g.multi, p->easy);
    https__post_free(p);
    https__g.n_posts--;
    https__multi_idle();
}

static const struct detector_ops https__ops = {
    .name = "https",
    .init = https__init,
    .shutdown = https__shutdown,
    .start = https__start,
    .cancel = https__cancel,
    .release = https__release,
};

static const struct https_poster https__poster = {
    .post = https__post,
    .cancel = https__post_cancel,
};

/* The entry point for checks (HTTPS_DETECTOR_ENTRY, detect/http.h). */
__attribute__((visibility("default"))) const struct detector_ops *
recoverd_https_detector(const struct https_host *host)
{
    https__host = host;
    https__srcport = host->detector->srcport_apply;
    return &https__ops;
}

/* The entry point for webhook POSTs (HTTPS_POSTER_ENTRY, monitor/post.h):
 * they need nothing else of the host. */
__attribute__((visibility("default"))) const struct https_poster *
recoverd_https_poster(int (*srcport_apply)(int fd, int family))
{
    https__srcport = srcport_apply;
    return &https__poster;
}
