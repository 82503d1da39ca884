/* One JSON POST with a deadline: lib's HTTP/1.1 client for http:// (only
 * the status of the final answer matters, so the post is done at the end
 * of its head and the connection closes), the recoverd-https.so plug-in
 * for https://. */
#include "monitor/post.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib/http-client.h"
#include "lib/log.h"
#include "lib/plugin.h"
#include "lib/srcport.h"
#include "lib/url.h"
#include "lib/uvclock.h"

struct post {
    uv_timer_t timer;         /* an early failure at 0 ms; data = this; the struct is freed in
                                 its close callback */
    struct http_client *http; /* http://: the request; NULL: none */
    struct https_post *tls;   /* https://: the plug-in's transfer; NULL: none */
    post_cb done;             /* the caller's */
    void *arg;                /* for done */
    bool finished;            /* done ran or the post was cancelled: ignore callbacks */
    int early;                /* -errno for the timer to report */
};

static struct {
    const struct https_poster *ops; /* the plug-in's, once found (never unloaded) */
    bool logged;                    /* "need the plug-in" said once */
} post__tls;

static void post__close_cb(uv_handle_t *h)
{
    free(h->data);
}

/* Release everything; the memory goes in the timer's close callback. */
static void post__teardown(struct post *p)
{
    p->finished = true;
    http_client_free(p->http); /* NULL-safe; allowed inside its callback */
    p->http = NULL;
    uv_close((uv_handle_t *)&p->timer, post__close_cb);
}

/* Report once; p stays allocated until its close callback, after done. */
static void post__finish(struct post *p, int status)
{
    if (p->finished)
        return;
    post__teardown(p);
    p->done(status, p->arg);
}

void post_cancel(struct post *p)
{
    if (!p || p->finished)
        return;
    if (p->tls)
        post__tls.ops->cancel(p->tls);
    p->tls = NULL;
    post__teardown(p);
}

static void post__timer_cb(uv_timer_t *t)
{
    struct post *p = t->data;
    post__finish(p, p->early);
}

/* A failure found inside post_start: reported from the loop, never inline. */
static void post__fail_soon(struct post *p, int err)
{
    p->early = err;
    uvclock_arm(&p->timer, post__timer_cb, 0);
}

/* ---- http:// ---- */

/* The client's result in post_cb's words (libuv's errors are -errno here). */
static int post__status(const struct http_result *res)
{
    if (res->err == 0)
        return res->status;
    if (res->err == UV_ETIMEDOUT)
        return -ETIMEDOUT;
    if (res->err == UV_EPROTO)
        return res->status == 0 &&
                       (res->bad == HTTP_RESPONSE_E_EMPTY || res->bad == HTTP_RESPONSE_E_TRUNCATED)
                   ? -ECONNRESET
                   : -EPROTO;
    if (res->stage == HTTP_CLIENT_RESOLVE && res->err != UV_ENOMEM)
        return -EHOSTUNREACH;
    return res->err;
}

static void post__http_cb(void *arg, const struct http_result *res)
{
    post__finish(arg, post__status(res));
}

/* ---- https:// ---- */

/* The plug-in's poster, looked up on the first https post. */
static int post__tls_find(void)
{
    char err[PATH_MAX + 128];
    https_poster_entry entry;
    if (post__tls.ops)
        return 0;
    *(void **)&entry = plugin_load(HTTPS_PLUGIN, HTTPS_POSTER_ENTRY, err, sizeof err);
    if (entry && (post__tls.ops = entry(srcport_apply)))
        return 0;
    if (entry)
        snprintf(err, sizeof err, "%s returned no ops", HTTPS_POSTER_ENTRY);
    if (!post__tls.logged)
        log_event(LOG_ERROR, NULL, "alert-webhook",
                  "error=\"https webhooks need " PLUGIN_FILE_FMT ": %s\"", HTTPS_PLUGIN, err);
    post__tls.logged = true;
    return -ENOPKG;
}

static void post__tls_done(int status, void *arg)
{
    struct post *p = arg;
    p->tls = NULL;
    post__finish(p, status);
}

/* curl keeps the deadline: it has the whole transfer in hand. */
static int post__tls_start(struct post *p, uv_loop_t *loop, const char *url, const char *body,
                           size_t len, uint64_t timeout_ms)
{
    int r = post__tls_find();
    return r < 0
               ? r
               : post__tls.ops->post(loop, url, body, len, timeout_ms, post__tls_done, p, &p->tls);
}

struct post *post_start(uv_loop_t *loop, const char *url, const char *body, size_t len,
                        uint64_t timeout_ms, post_cb done, void *arg)
{
    const struct http_request rq = {
        .method = "POST",
        .headers = "Content-Type: application/json\r\n",
        .body = body ? body : "", /* a POST always says its Content-Length */
        .body_len = len,
        .head_only = true,
    };
    struct url u;
    char why[128];
    int r = url_parse(url, &u, why, sizeof why); /* -EINVAL: reported from the loop */
    struct post *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    if (r == 0 && !u.tls && !(p->http = http_client_new(loop, &u, &rq))) {
        free(p);
        return NULL;
    }
    p->done = done;
    p->arg = arg;
    uv_timer_init(loop, &p->timer); /* cannot fail */
    p->timer.data = p;
    if (r == 0)
        r = u.tls ? post__tls_start(p, loop, url, body, len, timeout_ms)
                  : http_client_start(p->http, timeout_ms, post__http_cb, p);
    if (r < 0)
        post__fail_soon(p, r);
    return p;
}
