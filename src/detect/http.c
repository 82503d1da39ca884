/* HTTP checks: libcurl's multi interface driven by the libuv loop
 * (STACK.md, "libcurl multi on libuv"). */
/* memmem: _GNU_SOURCE comes from the build (CMakeLists.txt) */
#include "detect/http.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>

#include "core/config-t.h"
#include "core/log.h"
#include "detect/kinds.h"

/* One per check, kept across probes: the easy handle keeps its settings and
 * the multi's connection cache hands the next probe the same keep-alive
 * connection, which halves the CPU of a probe (STACK.md). */
struct http__probe {
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
struct http__sock {
    uv_poll_t poll;                    /* data = this; freed in its close callback */
    curl_socket_t fd;                  /* the socket watched */
    struct http__sock *next, **pprev;  /* in http__g.socks, to close leftovers at shutdown */
};

static struct {
    uv_loop_t *loop;          /* the daemon's loop; borrowed */
    CURLM *multi;             /* every probe of every http check */
    uv_timer_t timer;         /* curl's own deadlines (CURLMOPT_TIMERFUNCTION) */
    struct http__sock *socks; /* polls open */
    size_t n_easy;            /* probes alive (checks with an easy handle) */
    bool up;                  /* between init and shutdown */
    bool closing;             /* inside curl_multi_cleanup: the multi is going */
} http__g;

static const struct cfg_field http__fields[] = {
    {"url", CFG_STRING, offsetof(struct http_params, url), 1, NULL},
    {"status", CFG_UINT, offsetof(struct http_params, expect_status), 0, NULL},
    {"body", CFG_STRING, offsetof(struct http_params, expect_body), 0, NULL},
    {"tls_verify", CFG_BOOL, offsetof(struct http_params, tls_verify), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

static void http__params_init(void *params)
{
    struct http_params *hp = params;
    memset(hp, 0, sizeof *hp);
    hp->tls_verify = true;
}

static int http__validate(const void *params, char *why, size_t len)
{
    const struct http_params *hp = params;
    const char *u = hp->url;
    size_t skip = 0;
    if (u && strncasecmp(u, "http://", 7) == 0)
        skip = 7;
    else if (u && strncasecmp(u, "https://", 8) == 0)
        skip = 8;
    if (!skip || !u[skip] || u[skip] == '/') {
        snprintf(why, len, "url must be http://HOST... or https://HOST...");
        return -EINVAL;
    }
    if (hp->expect_status && (hp->expect_status < 100 || hp->expect_status > 599)) {
        snprintf(why, len, "status must be an HTTP status, 100 to 599");
        return -EINVAL;
    }
    return 0;
}

/* curl's words, plus the system's for a failed connect, where 7.88 says only
 * "Couldn't connect to server". OS_ERRNO is never reset by curl, so it is
 * trusted only right after a connect failure. */
static void http__transport_reason(const struct http__probe *p, CURLcode res, char *buf,
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
static void http__classify(const struct http__probe *p, CURLcode res, struct observation *obs)
{
    const struct http_params *hp = p->c->cfg->params;
    long status = 0;

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
    if (res != CURLE_OK) {
        http__transport_reason(p, res, obs->reason, sizeof obs->reason);
        return;
    }
    curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &status);
    obs->code = (int)status;
    obs->type = FAULT_SOFTWARE;
    if (hp->expect_status ? status != (long)hp->expect_status : status < 200 || status > 299) {
        if (hp->expect_status)
            snprintf(obs->reason, sizeof obs->reason, "HTTP %ld (expected %u)", status,
                     hp->expect_status);
        else
            snprintf(obs->reason, sizeof obs->reason, "HTTP %ld", status);
        return;
    }
    if (hp->expect_body &&
        !memmem(p->body, p->body_len, hp->expect_body, strlen(hp->expect_body))) {
        snprintf(obs->reason, sizeof obs->reason, "body does not contain \"%.120s\"",
                 hp->expect_body);
        return;
    }
    obs->ok = true;
    snprintf(obs->reason, sizeof obs->reason, "HTTP %ld", status);
}

/* Report every finished transfer. Runs after each curl_multi_socket_action,
 * outside curl's callbacks, so check_report may start, cancel or release
 * checks (removing a handle also drops its queued message). */
static void http__drain(void)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(http__g.multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        char *priv = NULL;
        CURLcode res = m->data.result; /* m dies with remove_handle */
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        struct http__probe *p = (struct http__probe *)priv;
        curl_multi_remove_handle(http__g.multi, p->easy);
        p->active = false;
        struct observation obs;
        http__classify(p, res, &obs);
        check_report(p->c, &obs);
    }
}

static void http__poll_cb(uv_poll_t *poll, int status, int events)
{
    struct http__sock *s = poll->data;
    int flags = 0, running;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(http__g.multi, s->fd, flags, &running);
    http__drain();
}

static void http__timer_cb(uv_timer_t *t)
{
    int running;
    curl_multi_socket_action(http__g.multi, CURL_SOCKET_TIMEOUT, 0, &running);
    http__drain();
}

/* CURLMOPT_TIMERFUNCTION: curl wants one deadline; -1 removes it. Only arm
 * the timer here: calling into curl from this callback is not allowed. */
static int http__timer_fn(CURLM *multi, long ms, void *userp)
{
    if (ms < 0)
        uv_timer_stop(&http__g.timer);
    else
        uv_timer_start(&http__g.timer, http__timer_cb, (uint64_t)ms, 0);
    return 0;
}

static void http__sock_close_cb(uv_handle_t *h)
{
    free(h->data);
}

static void http__sock_close(struct http__sock *s)
{
    *s->pprev = s->next;
    if (s->next)
        s->next->pprev = s->pprev;
    uv_close((uv_handle_t *)&s->poll, http__sock_close_cb);
}

static struct http__sock *http__sock_new(curl_socket_t fd)
{
    struct http__sock *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    if (uv_poll_init_socket(http__g.loop, &s->poll, fd) < 0) {
        free(s); /* never initialised: no close needed */
        return NULL;
    }
    s->fd = fd;
    s->poll.data = s;
    s->next = http__g.socks;
    if (s->next)
        s->next->pprev = &s->next;
    s->pprev = &http__g.socks;
    http__g.socks = s;
    curl_multi_assign(http__g.multi, fd, s);
    return s;
}

/* CURLMOPT_SOCKETFUNCTION: watch what curl asks for on fd. curl announces
 * REMOVE before it closes the socket, so the poll leaves epoll while the fd
 * is still valid and a new socket reusing the number gets a fresh poll. */
static int http__socket_fn(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct http__sock *s = socketp;
    int ev = 0;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            if (!http__g.closing)
                curl_multi_assign(http__g.multi, fd, NULL);
            http__sock_close(s);
        }
        return 0;
    }
    if (!s && !(s = http__sock_new(fd)))
        return -1;
    if (what & CURL_POLL_IN)
        ev |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        ev |= UV_WRITABLE;
    return uv_poll_start(&s->poll, ev, http__poll_cb) < 0 ? -1 : 0;
}

/* Keep the head of the body for the match; swallow the rest. */
static size_t http__write_cb(char *data, size_t size, size_t n, void *userp)
{
    struct http__probe *p = userp;
    size_t len = size * n, room = sizeof p->body - p->body_len;
    if (p->keep && room) {
        size_t k = len < room ? len : room;
        memcpy(p->body + p->body_len, data, k);
        p->body_len += k;
    }
    return len;
}

static int http__easy_setup(struct http__probe *p)
{
    const struct http_params *hp = p->c->cfg->params;
    CURL *e = p->easy;
    long verify = hp->tls_verify;
    /* Any failing option leaves its CURLcode set; OR-ing them keeps "any". */
    int r = curl_easy_setopt(e, CURLOPT_URL, hp->url);
    r |= curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)p);
    r |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http__write_cb);
    r |= curl_easy_setopt(e, CURLOPT_WRITEDATA, p);
    r |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, p->err);
    r |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    r |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)p->c->cfg->timeout_ms);
    r |= curl_easy_setopt(e, CURLOPT_PROXY, ""); /* ignore http_proxy & co from the env */
    r |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    r |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    r |= curl_easy_setopt(e, CURLOPT_USERAGENT, "recoverd");
    /* Debian's compiled-in CA directory disables curl's CA cache: every
     * handshake would re-parse the bundle (~26 ms of loop CPU, STACK.md). */
    r |= curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
    r |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, verify);
    r |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
    return r ? -EINVAL : 0;
}

static struct http__probe *http__probe_new(struct check *c)
{
    struct http__probe *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->c = c;
    p->keep = ((const struct http_params *)c->cfg->params)->expect_body != NULL;
    if (!(p->easy = curl_easy_init()) || http__easy_setup(p) < 0)
        goto fail;
    /* Room in the connection cache for one idle connection per check, or
     * probes of quiet checks would find theirs evicted and reconnect. */
    http__g.n_easy++;
    curl_multi_setopt(http__g.multi, CURLMOPT_MAXCONNECTS,
                      (long)(http__g.n_easy < 16 ? 32 : 2 * http__g.n_easy));
    return p;
fail:
    curl_easy_cleanup(p->easy); /* NULL-safe */
    free(p);
    return NULL;
}

static int http__start(struct check *c)
{
    struct http__probe *p = c->priv;
    if (!http__g.up)
        return -EINVAL;
    if (!p && !(p = http__probe_new(c)))
        return -ENOMEM;
    c->priv = p;
    if (p->active)
        return -EBUSY;
    p->body_len = 0;
    p->err[0] = '\0';
    /* Only arms curl's timer (timeout 0): the transfer and its report happen
     * in later loop callbacks, never inside start. */
    if (curl_multi_add_handle(http__g.multi, p->easy) != CURLM_OK)
        return -EIO;
    p->active = true;
    return 0;
}

static void http__cancel(struct check *c)
{
    struct http__probe *p = c->priv;
    if (!p || !p->active)
        return;
    curl_multi_remove_handle(http__g.multi, p->easy);
    p->active = false;
}

static void http__release(struct check *c)
{
    struct http__probe *p = c->priv;
    if (!p)
        return;
    http__cancel(c);
    curl_easy_cleanup(p->easy);
    free(p);
    http__g.n_easy--;
    c->priv = NULL;
}

/* Many checks hold a socket each (plus one idle keep-alive connection), so
 * the soft fd limit of 1024 would be a ceiling on the number of checks. */
static void http__raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
        return;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        log_event(LOG_WARN, NULL, "rlimit_nofile", "error=\"%s\"", strerror(errno));
}

static int http__init(uv_loop_t *loop)
{
    if (http__g.up)
        return -EALREADY;
    http__raise_nofile();
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -EIO;
    if (!(http__g.multi = curl_multi_init()))
        goto fail;
    http__g.loop = loop;
    curl_multi_setopt(http__g.multi, CURLMOPT_SOCKETFUNCTION, http__socket_fn);
    curl_multi_setopt(http__g.multi, CURLMOPT_TIMERFUNCTION, http__timer_fn);
    curl_multi_setopt(http__g.multi, CURLMOPT_MAXCONNECTS, 32L);
    uv_timer_init(loop, &http__g.timer);
    http__g.up = true;
    return 0;
fail:
    curl_global_cleanup();
    return -ENOMEM;
}

static void http__shutdown(void)
{
    if (!http__g.up)
        return;
    if (http__g.n_easy)
        log_event(LOG_WARN, NULL, "http_shutdown", "checks_alive=%zu", http__g.n_easy);
    /* Closing the cached connections may announce REMOVE for their sockets;
     * whatever poll is left after that is closed here. */
    http__g.closing = true;
    curl_multi_cleanup(http__g.multi);
    while (http__g.socks)
        http__sock_close(http__g.socks);
    uv_close((uv_handle_t *)&http__g.timer, NULL); /* static: nothing to free */
    curl_global_cleanup();
    http__g.multi = NULL;
    http__g.closing = false;
    http__g.up = false;
}

const struct detector_ops http_detector = {
    .name = "http",
    .fields = http__fields,
    .params_size = sizeof(struct http_params),
    .params_init = http__params_init,
    .validate = http__validate,
    .init = http__init,
    .shutdown = http__shutdown,
    .start = http__start,
    .cancel = http__cancel,
    .release = http__release,
};
