/* HTTP checks: a GET through lib's HTTP/1.1 client per probe, the answer
 * judged here; https:// checks are handed to the libcurl plug-in
 * (recoverd-https.so), loaded the first time one runs. */
/* memmem: _GNU_SOURCE comes from the build (CMakeLists.txt) */
#include "detect/http.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>

#include "config/config-t.h"
#include "detect/kinds.h"
#include "lib/http-client.h"
#include "lib/log.h"
#include "lib/plugin.h"
#include "lib/url.h"
#include "lib/uvclock.h"

static struct {
    uv_loop_t *loop;                /* the daemon's loop; borrowed; NULL outside init..shutdown */
    const struct detector_ops *tls; /* the plug-in's ops while tls_up */
    bool tls_up;                    /* tls->init done since our init */
    char tls_err[PATH_MAX + 128];   /* why the plug-in did not load; not retried until shutdown */
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
    hp->reuse_ms = HTTP_REUSE_MS;
}

static int http__validate(const void *params, char *why, size_t len)
{
    const struct http_params *hp = params;
    struct url u;
    if (url_parse(hp->url, &u, why, len) < 0)
        return -EINVAL;
    if (hp->expect_status && (hp->expect_status < 100 || hp->expect_status > 599)) {
        snprintf(why, len, "status must be an HTTP status, 100 to 599");
        return -EINVAL;
    }
    return 0;
}

/* ---- observations ---- */

static void http__obs(struct observation *obs, enum fault_type type, enum severity sev, int code,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void http__obs(struct observation *obs, enum fault_type type, enum severity sev, int code,
                      const char *fmt, ...)
{
    va_list ap;
    memset(obs, 0, sizeof *obs);
    obs->type = type;
    obs->severity = sev;
    obs->code = code;
    va_start(ap, fmt);
    /* Started just above; clang-analyzer 14 loses track of it here. */
    // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
    vsnprintf(obs->reason, sizeof obs->reason, fmt, ap);
    va_end(ap);
}

/* https_host.observe: the judgement of a whole answer, for both transports. */
static void http__observe(const struct http_params *hp, int status, const char *body,
                          size_t body_len, struct observation *obs)
{
    if (status >= 100 && status <= 999) { /* "HTTP %d" without printf: every probe says it */
        *obs =
            (struct observation){.type = FAULT_SOFTWARE, .severity = SEVERITY_HIGH, .code = status};
        memcpy(obs->reason, "HTTP ", 5);
        obs->reason[5] = (char)('0' + status / 100);
        obs->reason[6] = (char)('0' + status / 10 % 10);
        obs->reason[7] = (char)('0' + status % 10);
    } else {
        http__obs(obs, FAULT_SOFTWARE, SEVERITY_HIGH, status, "HTTP %d", status);
    }
    if (hp->expect_status ? status != (int)hp->expect_status : status < 200 || status > 299) {
        if (hp->expect_status)
            snprintf(obs->reason, sizeof obs->reason, "HTTP %d (expected %u)", status,
                     hp->expect_status);
        return;
    }
    if (hp->expect_body && !memmem(body, body_len, hp->expect_body, strlen(hp->expect_body))) {
        snprintf(obs->reason, sizeof obs->reason, "body does not contain \"%.120s\"",
                 hp->expect_body);
        return;
    }
    obs->ok = true;
}

/* recoverd's own shortage, not the service's fault. */
static bool http__local_error(int r)
{
    return r == UV_EMFILE || r == UV_ENFILE || r == UV_ENOMEM || r == UV_ENOBUFS;
}

/* A request that did not end in an answer, in curl's words where it has
 * some (they are the ones the https checks use). */
static void http__failure(const struct check *c, const struct http_result *res,
                          struct observation *obs)
{
    const struct http_params *hp = c->cfg->params;
    struct url u;
    char why[128];
    if (res->err == UV_ETIMEDOUT) {
        http__obs(obs, FAULT_NETWORK, SEVERITY_MEDIUM, -1, "timeout after %llu ms",
                  (unsigned long long)c->cfg->timeout_ms);
    } else if (res->err == UV_EPROTO && res->bad == HTTP_RESPONSE_E_EMPTY) {
        http__obs(obs, FAULT_NETWORK, SEVERITY_HIGH, -1, "Empty reply from server");
    } else if (res->err == UV_EPROTO) {
        http__obs(obs, FAULT_SOFTWARE, SEVERITY_HIGH, res->status ? res->status : -1,
                  "bad HTTP response: %s", http_response_error_str(res->bad));
    } else if (res->stage <= HTTP_CLIENT_CONNECT && http__local_error(res->err)) {
        http__obs(obs, FAULT_RESOURCE, SEVERITY_MEDIUM, -1, "cannot start probe: %s",
                  strerror(-res->err));
    } else if (url_parse(hp->url, &u, why, sizeof why) < 0) { /* parsed once already */
        http__obs(obs, FAULT_CONFIGURATION, SEVERITY_HIGH, -1, "%s", why);
    } else if (res->stage == HTTP_CLIENT_RESOLVE) {
        http__obs(obs, FAULT_NETWORK, SEVERITY_HIGH, -1, "Could not resolve host: %s (%s)", u.host,
                  uv_strerror(res->err));
    } else if (res->stage == HTTP_CLIENT_CONNECT) {
        http__obs(obs, FAULT_NETWORK, SEVERITY_HIGH, -1, "Failed to connect to %s port %u (%s)",
                  u.host, u.port, strerror(-res->err));
    } else {
        http__obs(obs, FAULT_NETWORK, SEVERITY_HIGH, -1, "%s failure: %s",
                  res->stage == HTTP_CLIENT_SEND ? "Send" : "Recv", strerror(-res->err));
    }
}

/* ---- http:// : c->priv is the check's struct http_client ---- */

static void http__done_cb(void *arg, const struct http_result *res)
{
    struct check *c = arg;
    struct observation obs;
    if (res->err == 0)
        http__observe(c->cfg->params, res->status, res->body, res->body_len, &obs);
    else
        http__failure(c, res, &obs);
    check_report(c, &obs); /* last: it may start the next probe or release the check */
}

/* The check's client, built once: its request is the same for every probe. */
static int http__client_new(struct check *c)
{
    const struct http_params *hp = c->cfg->params;
    const struct http_request rq = {
        .method = "GET",
        .headers = "Accept: */*\r\n",
        .keep = hp->expect_body ? HTTP_BODY_KEEP : 0,
        .reuse_ms = hp->reuse_ms,
    };
    struct url u;
    char why[128];
    if (url_parse(hp->url, &u, why, sizeof why) < 0)
        return -EINVAL;
    if (!(c->priv = http_client_new(http__g.loop, &u, &rq)))
        return -ENOMEM;
    return 0;
}

/* ---- https:// without the plug-in: c->priv is a struct http__tls_missing ---- */

/* Such a check still runs, and fails with words, from the loop. */
struct http__tls_missing {
    uv_timer_t timer; /* reports at 0 ms; data = this; the struct is freed in its close cb */
    struct check *c;  /* owner */
};

static void http__tls_missing_cb(uv_timer_t *t)
{
    struct http__tls_missing *u = t->data;
    struct observation obs;
    http__obs(&obs, FAULT_CONFIGURATION, SEVERITY_HIGH, -1,
              "https checks need " PLUGIN_FILE_FMT ": %s", HTTPS_PLUGIN, http__g.tls_err);
    check_report(u->c, &obs);
}

static int http__tls_missing_start(struct check *c)
{
    struct http__tls_missing *u = c->priv;
    if (!u) {
        if (!(u = calloc(1, sizeof *u)))
            return -ENOMEM;
        uv_timer_init(http__g.loop, &u->timer); /* cannot fail */
        u->timer.data = u;
        u->c = c;
        c->priv = u;
    }
    if (uv_is_active((uv_handle_t *)&u->timer))
        return -EBUSY;
    uvclock_arm(&u->timer, http__tls_missing_cb, 0);
    return 0;
}

static void http__tls_missing_close_cb(uv_handle_t *h)
{
    free(h->data);
}

/* ---- https:// : the plug-in ---- */

static const struct https_host http__https_host = {
    .detector = &detector_host,
    .observe = http__observe,
};

static bool http__is_tls(const struct check *c)
{
    const struct http_params *hp = c->cfg ? c->cfg->params : NULL;
    return hp && hp->url && strncasecmp(hp->url, "https:", 6) == 0;
}

/* Load the plug-in (lib/plugin.c keeps it) and start it, once per init.
 * Its libcurl, OpenSSL and their 30 libraries cost about 6 MB of RSS:
 * only paid once a check needs TLS. */
static int http__tls_up(void)
{
    https_detector_entry entry;
    int r;
    if (http__g.tls_up)
        return 0;
    if (http__g.tls_err[0])
        return -ENOENT; /* failed since init: say so without searching again */
    *(void **)&entry = plugin_load(HTTPS_PLUGIN, HTTPS_DETECTOR_ENTRY, http__g.tls_err,
                                   sizeof http__g.tls_err);
    if (!entry)
        goto fail;
    if (!(http__g.tls = entry(&http__https_host))) {
        snprintf(http__g.tls_err, sizeof http__g.tls_err, "%s returned no ops",
                 HTTPS_DETECTOR_ENTRY);
        goto fail;
    }
    if ((r = http__g.tls->init(http__g.loop)) < 0) {
        snprintf(http__g.tls_err, sizeof http__g.tls_err, "cannot initialise libcurl: %s",
                 strerror(-r));
        goto fail;
    }
    http__g.tls_up = true;
    return 0;
fail:
    log_event(LOG_ERROR, NULL, "https_plugin", "error=\"%s\"", http__g.tls_err);
    return -ENOENT;
}

/* ---- the ops ---- */

static int http__start(struct check *c)
{
    int r;
    if (!http__g.loop)
        return -EINVAL;
    if (http__is_tls(c))
        return http__tls_up() == 0 ? http__g.tls->start(c) : http__tls_missing_start(c);
    if (!c->priv && (r = http__client_new(c)) < 0)
        return r;
    return http_client_start(c->priv, c->cfg->timeout_ms, http__done_cb, c);
}

/* Whose c->priv is: the plug-in's once it is up (it cannot come up while
 * an https check holds an http__tls_missing: a failure sticks until shutdown,
 * which comes after every check is released). */
static void http__cancel(struct check *c)
{
    if (http__is_tls(c) && http__g.tls_up)
        http__g.tls->cancel(c);
    else if (http__is_tls(c) && c->priv)
        uv_timer_stop(&((struct http__tls_missing *)c->priv)->timer);
    else
        http_client_cancel(c->priv);
}

static void http__release(struct check *c)
{
    if (http__is_tls(c) && http__g.tls_up) {
        http__g.tls->release(c);
        return;
    }
    if (http__is_tls(c) && c->priv)
        uv_close((uv_handle_t *)&((struct http__tls_missing *)c->priv)->timer,
                 http__tls_missing_close_cb);
    else
        http_client_free(c->priv);
    c->priv = NULL;
}

/* Each check holds a socket (its kept-alive connection), so the soft fd
 * limit of 1024 would be a ceiling on the number of checks. */
static void http__raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
        return;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        log_event(LOG_WARN, NULL, "rlimit_nofile", "error=\"%s\"", strerror(errno));
}

/* Needs SIGPIPE ignored (daemon/daemon.c does; lib/http-client.h). */
static int http__init(uv_loop_t *loop)
{
    if (http__g.loop)
        return -EALREADY;
    http__raise_nofile();
    http__g.loop = loop;
    return 0;
}

static void http__shutdown(void)
{
    if (http__g.tls_up)
        http__g.tls->shutdown();
    http__g.tls_up = false;
    http__g.tls = NULL;
    http__g.tls_err[0] = '\0';
    http__g.loop = NULL;
}

/* detector_ops.target */
static int http__target(const void *params, char *host, size_t len, unsigned *port)
{
    struct url u;
    char why[128];
    if (url_parse(((const struct http_params *)params)->url, &u, why, sizeof why) < 0)
        return 0;
    snprintf(host, len, "%s", u.host);
    *port = u.port;
    return 1;
}

/* detector_ops.fds: http:// holds its one connection (a new one opens only
 * after the old one closed); https:// leaves libcurl a connection and its
 * resolver's socket pair. */
static unsigned http__fds(const void *params)
{
    const struct http_params *hp = params;
    return hp->url && strncasecmp(hp->url, "https:", 6) == 0 ? 3 : 1;
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
    .target = http__target,
    .fds = http__fds,
};
