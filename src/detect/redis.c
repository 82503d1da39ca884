/* The recoverd-redis.so plug-in: redis checks through hiredis 0.14's async
 * API, with our own libuv adapter (STACK.md, "libpq, hiredis": the bundled
 * one never reports a refused connect). One connection per check, kept
 * across probes; a probe sends PING (after AUTH and SELECT on a fresh
 * connection) within the check's timeout, which our timer enforces by
 * freeing the context. detect/plugin.c loads it when a configuration first
 * names the kind; it calls back only through the detector_host its entry
 * point is given (report). */
#include <errno.h>
#include <fcntl.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config-t.h"
#include "detect/detector.h"
#include "lib/secret.h"
#include "lib/text.h"
#include "lib/uvclock.h"

#define RD__PASSWORD_MAX 1024 /* bytes of password_file read */

struct rd__params {
    struct sockaddr_storage address; /* "ip:port"; required */
    char *password;                  /* AUTH with it; NULL: none */
    char *password_file;             /* AUTH with its first line, read at each connect */
    unsigned db;                     /* SELECT it when not 0 */
};

static const struct cfg_field rd__fields[] = {
    {"address", CFG_ADDRESS, offsetof(struct rd__params, address), 1, NULL},
    {"password", CFG_STRING, offsetof(struct rd__params, password), 0, NULL},
    {"password_file", CFG_PATH, offsetof(struct rd__params, password_file), 0, NULL},
    {"db", CFG_UINT, offsetof(struct rd__params, db), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

struct rd__check;

/* The adapter's state (ac->ev.data): a poll on the context's socket. Freed
 * in the poll's close callback, after hiredis has let go of it. */
struct rd__watch {
    uv_poll_t poll;        /* data = this */
    redisAsyncContext *ac; /* NULL once hiredis cleaned up */
    struct rd__check *rd;  /* owner */
    int events;            /* UV_READABLE | UV_WRITABLE that hiredis asked for */
};

struct rd__check {
    struct check *c;            /* owner; NULL once released */
    const struct rd__params *p; /* c->cfg->params; borrowed */
    redisAsyncContext *ac;      /* kept across probes; NULL: the next probe connects */
    char *password;             /* the one ac authenticated with: scrubbed from reasons */
    uv_timer_t timer;           /* the probe's deadline, or 0 to deliver `result`; data = this */
    uint64_t deadline;          /* uv_now() ms when the probe times out */
    bool busy;                  /* a probe is in flight */
    bool reused;                /* it runs on a connection an earlier probe opened */
    bool failed;                /* `result` holds this probe's first error */
    bool concluded;             /* `result` is final: the timer delivers it */
    bool drop;                  /* hang up before delivering (AUTH failed...) */
    bool retry;                 /* the kept connection was dead: connect anew */
    struct observation result;  /* the outcome so far */
};

static uv_loop_t *rd__loop; /* the daemon's loop between init and shutdown; borrowed */
static const struct detector_host *rd__host; /* the executable's, from the entry point */

/* Error replies by prefix. First match wins; none: software/high, or
 * configuration/high for the answer to AUTH or SELECT. */
static const struct {
    const char *prefix;
    enum fault_type type;
    enum severity severity;
} rd__classes[] = {
    {"NOAUTH", FAULT_CONFIGURATION, SEVERITY_HIGH},
    {"WRONGPASS", FAULT_CONFIGURATION, SEVERITY_HIGH},
    {"ERR max number of clients", FAULT_RESOURCE, SEVERITY_HIGH},
    {"OOM", FAULT_RESOURCE, SEVERITY_HIGH},
    {"LOADING", FAULT_SOFTWARE, SEVERITY_MEDIUM},
    {"BUSY ", FAULT_SOFTWARE, SEVERITY_MEDIUM},
    {"MASTERDOWN", FAULT_SOFTWARE, SEVERITY_MEDIUM},
};

static void rd__timer_cb(uv_timer_t *t);

/* ---- outcomes ---- */

/* Record the probe's first error; later ones are consequences. */
static void rd__fail(struct rd__check *rd, enum fault_type type, enum severity sev,
                     const char *words)
{
    char buf[512];
    if (rd->failed)
        return;
    rd->failed = true;
    memset(&rd->result, 0, sizeof rd->result);
    rd->result.type = type;
    rd->result.severity = sev;
    rd->result.code = -1;
    snprintf(buf, sizeof buf, "%s", words && *words ? words : "unknown error");
    secret_scrub(buf, sizeof buf, rd->password);
    text_format(rd->result.reason, sizeof rd->result.reason, "%s", buf);
}

static void rd__fail_reply(struct rd__check *rd, const char *err, enum fault_type dflt)
{
    for (size_t i = 0; i < sizeof rd__classes / sizeof *rd__classes; i++)
        if (strncmp(err, rd__classes[i].prefix, strlen(rd__classes[i].prefix)) == 0)
            return rd__fail(rd, rd__classes[i].type, rd__classes[i].severity, err);
    rd__fail(rd, dflt, SEVERITY_HIGH, err);
}

/* The outcome is known: the timer delivers it on the next loop turn, outside
 * hiredis (which must not see its context freed under a callback) and
 * outside start. */
static void rd__conclude(struct rd__check *rd)
{
    rd->concluded = true;
    uvclock_arm(&rd->timer, rd__timer_cb, 0);
}

/* ---- the adapter ---- */

static void rd__poll_cb(uv_poll_t *h, int status, int events)
{
    struct rd__watch *w = h->data;
    if (status < 0) {
        /* libuv reports POLLERR (a refused connect, a reset) as UV_EBADF and
         * stops the poll; hiredis names the error once it looks: a write
         * while connecting (SO_ERROR), else a read. */
        events = w->ac && !(w->ac->c.flags & REDIS_CONNECTED) ? UV_WRITABLE : UV_READABLE;
    }
    if (w->ac && (events & UV_READABLE))
        redisAsyncHandleRead(w->ac);
    if (w->ac && (events & UV_WRITABLE))
        redisAsyncHandleWrite(w->ac);
    if (status < 0 && w->ac && w->events)
        uv_poll_start(&w->poll, w->events, rd__poll_cb);
}

static void rd__ev_update(struct rd__watch *w, int add, int del)
{
    w->events = (w->events | add) & ~del;
    if (uv_is_closing((uv_handle_t *)&w->poll))
        return;
    if (w->events)
        uv_poll_start(&w->poll, w->events, rd__poll_cb);
    else
        uv_poll_stop(&w->poll);
}

static void rd__ev_add_read(void *data)
{
    rd__ev_update(data, UV_READABLE, 0);
}

static void rd__ev_del_read(void *data)
{
    rd__ev_update(data, 0, UV_READABLE);
}

static void rd__ev_add_write(void *data)
{
    rd__ev_update(data, UV_WRITABLE, 0);
}

static void rd__ev_del_write(void *data)
{
    rd__ev_update(data, 0, UV_WRITABLE);
}

static void rd__watch_close_cb(uv_handle_t *h)
{
    free(h->data);
}

/* hiredis is about to free the context (and close its socket): the poll
 * leaves epoll first. May be called more than once. */
static void rd__ev_cleanup(void *data)
{
    struct rd__watch *w = data;
    if (w->rd && w->rd->ac == w->ac)
        w->rd->ac = NULL;
    w->ac = NULL;
    if (!uv_is_closing((uv_handle_t *)&w->poll))
        uv_close((uv_handle_t *)&w->poll, rd__watch_close_cb);
}

static int rd__attach(struct rd__check *rd, redisAsyncContext *ac)
{
    struct rd__watch *w = calloc(1, sizeof *w);
    int r;
    if (!w)
        return -ENOMEM;
    if ((r = uv_poll_init_socket(rd__loop, &w->poll, ac->c.fd)) < 0) {
        free(w);
        return r;
    }
    w->poll.data = w;
    w->ac = ac;
    w->rd = rd;
    ac->ev.data = w;
    ac->ev.addRead = rd__ev_add_read;
    ac->ev.delRead = rd__ev_del_read;
    ac->ev.addWrite = rd__ev_add_write;
    ac->ev.delWrite = rd__ev_del_write;
    ac->ev.cleanup = rd__ev_cleanup;
    return 0;
}

/* ---- the connection ---- */

static void rd__password_forget(struct rd__check *rd)
{
    if (!rd->password)
        return;
    explicit_bzero(rd->password, strlen(rd->password));
    free(rd->password);
    rd->password = NULL;
}

/* Free the context: hiredis runs the callbacks still pending with no reply
 * (they find the probe over and do nothing) and our cleanup. Never from
 * inside a hiredis callback. */
static void rd__hangup(struct rd__check *rd)
{
    if (rd->ac)
        redisAsyncFree(rd->ac); /* rd__ev_cleanup sets rd->ac = NULL */
    rd->ac = NULL;
    rd__password_forget(rd);
}

/* password, or password_file's first line read now (so a rotated password
 * is picked up at the next connect). */
static int rd__password_load(struct rd__check *rd)
{
    char buf[RD__PASSWORD_MAX + 1];
    ssize_t n;
    int fd, r;
    if (!rd->p->password_file) {
        if (rd->p->password && !(rd->password = strdup(rd->p->password)))
            return -ENOMEM;
        return 0;
    }
    if ((fd = open(rd->p->password_file, O_RDONLY | O_CLOEXEC)) < 0)
        return -errno;
    n = read(fd, buf, sizeof buf - 1);
    r = n < 0 ? -errno : 0;
    close(fd);
    if (r < 0)
        return r;
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    if (!(rd->password = strdup(buf)))
        r = -ENOMEM;
    explicit_bzero(buf, sizeof buf);
    return r;
}

/* Whether this reply callback belongs to the probe in flight. A callback
 * fired by our own rd__hangup finds the probe over (busy false) or already
 * concluded. */
static struct rd__check *rd__probe_of(const redisAsyncContext *ac, void *priv)
{
    struct rd__check *rd = priv;
    return rd->busy && !rd->concluded ? rd : NULL;
}

/* No reply: the context is being freed, with the reason in errstr. */
static void rd__fail_lost(struct rd__check *rd, const redisAsyncContext *ac)
{
    rd__fail(rd, FAULT_NETWORK, SEVERITY_HIGH,
             ac->errstr && *ac->errstr ? ac->errstr : "connection closed");
}

/* AUTH and SELECT: an error is the configuration's, and the connection is
 * not one to keep. */
static void rd__setup_cb(redisAsyncContext *ac, void *reply, void *priv)
{
    struct rd__check *rd = rd__probe_of(ac, priv);
    const redisReply *r = reply;
    if (!rd)
        return;
    if (!r) {
        rd__fail_lost(rd, ac);
    } else if (r->type == REDIS_REPLY_ERROR) {
        rd__fail_reply(rd, r->str, FAULT_CONFIGURATION);
        rd->drop = true;
    }
}

/* PING is the last command of every probe, so its callback (a reply, or
 * none when the context goes) ends the probe exactly once. */
static void rd__ping_cb(redisAsyncContext *ac, void *reply, void *priv)
{
    struct rd__check *rd = rd__probe_of(ac, priv);
    const redisReply *r = reply;
    if (!rd)
        return;
    if (!r && rd->reused && !rd->failed) {
        rd->retry = true; /* the kept connection had died unseen */
        return rd__conclude(rd);
    }
    if (!r) {
        rd__fail_lost(rd, ac);
    } else if (r->type == REDIS_REPLY_ERROR) {
        rd__fail_reply(rd, r->str, FAULT_SOFTWARE);
    } else if (r->type != REDIS_REPLY_STATUS || strcmp(r->str, "PONG") != 0) {
        rd__fail(rd, FAULT_SOFTWARE, SEVERITY_HIGH, "unexpected answer to PING");
        rd->drop = true;
    } else if (!rd->failed) {
        memset(&rd->result, 0, sizeof rd->result);
        rd->result.ok = true;
        rd->result.code = -1;
        snprintf(rd->result.reason, sizeof rd->result.reason, "PONG");
    }
    rd__conclude(rd);
}

/* A failed connect: hiredis frees the context right after this returns,
 * and then calls the pending commands back with no reply. */
static void rd__connect_cb(const redisAsyncContext *ac, int status)
{
    struct rd__check *rd = ac->data;
    if (status != REDIS_OK && rd && rd->busy && !rd->concluded)
        rd__fail_lost(rd, ac);
}

static int rd__send(struct rd__check *rd, redisCallbackFn *fn, const char *fmt, ...)
{
    va_list ap;
    int r;
    va_start(ap, fmt);
    r = redisvAsyncCommand(rd->ac, fn, rd, fmt, ap);
    va_end(ap);
    return r == REDIS_OK ? 0 : -ENOMEM;
}

/* Connect and queue AUTH, SELECT and PING: hiredis sends them once the
 * connect completes, and calls each back in order. */
static void rd__connect(struct rd__check *rd)
{
    const struct sockaddr_storage *sa = &rd->p->address;
    char ip[INET6_ADDRSTRLEN];
    int port, r;
    redisAsyncContext *ac;
    rd__hangup(rd);
    if (sa->ss_family == AF_INET6) {
        uv_ip6_name((const struct sockaddr_in6 *)sa, ip, sizeof ip);
        port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    } else {
        uv_ip4_name((const struct sockaddr_in *)sa, ip, sizeof ip);
        port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
    }
    if ((r = rd__password_load(rd)) < 0) {
        char why[300];
        snprintf(why, sizeof why, "%s: %s", rd->p->password_file, strerror(-r));
        rd__fail(rd, FAULT_CONFIGURATION, SEVERITY_HIGH, why);
        return rd__conclude(rd);
    }
    /* An address, never a name: hiredis resolves nothing on the loop. */
    if (!(ac = redisAsyncConnect(ip, port)) || ac->err) {
        rd__fail(rd, ac ? FAULT_NETWORK : FAULT_RESOURCE, SEVERITY_HIGH,
                 ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac); /* no adapter, no callbacks yet */
        return rd__conclude(rd);
    }
    if ((r = rd__attach(rd, ac)) < 0) {
        redisAsyncFree(ac);
        rd__fail(rd, FAULT_RESOURCE, SEVERITY_HIGH, strerror(-r));
        return rd__conclude(rd);
    }
    rd->ac = ac;
    ac->data = rd;
    redisAsyncSetConnectCallback(ac, rd__connect_cb); /* after attach: it asks for "writable" */
    r = rd->password ? rd__send(rd, rd__setup_cb, "AUTH %s", rd->password) : 0;
    if (r == 0 && rd->p->db)
        r = rd__send(rd, rd__setup_cb, "SELECT %u", rd->p->db);
    if (r == 0)
        r = rd__send(rd, rd__ping_cb, "PING");
    if (r < 0) {
        rd__fail(rd, FAULT_RESOURCE, SEVERITY_HIGH, "cannot queue the commands");
        rd->drop = true;
        rd__conclude(rd);
    }
}

/* ---- the ops ---- */

static int rd__validate(const void *params, char *why, size_t len)
{
    const struct rd__params *rp = params;
    sa_family_t f = rp->address.ss_family;
    if (f != AF_INET && f != AF_INET6) {
        snprintf(why, len, "address must be ip:port or [ip6]:port");
        return -EINVAL;
    }
    if (rp->password && rp->password_file) {
        snprintf(why, len, "password and password_file: give one of them");
        return -EINVAL;
    }
    return 0;
}

/* The deadline, or the delivery of a concluded probe. */
static void rd__timer_cb(uv_timer_t *t)
{
    struct rd__check *rd = t->data;
    struct check *c = rd->c;
    struct observation o;
    if (!rd->busy || !c)
        return;
    if (rd->retry) {
        rd->retry = rd->reused = rd->concluded = false;
        uvclock_arm_at(&rd->timer, rd__timer_cb, rd->deadline);
        return rd__connect(rd);
    }
    rd->busy = false; /* first: callbacks fired by a hangup below find the probe over */
    if (!rd->concluded) {
        memset(&o, 0, sizeof o);
        o.type = FAULT_NETWORK;
        o.severity = SEVERITY_HIGH;
        o.code = -1;
        snprintf(o.reason, sizeof o.reason, "timeout after %llu ms%s",
                 (unsigned long long)c->cfg->timeout_ms,
                 rd->ac && !(rd->ac->c.flags & REDIS_CONNECTED) ? " connecting" : "");
        rd__hangup(rd);
    } else {
        o = rd->result;
        if (rd->drop || !o.ok)
            rd__hangup(rd); /* a failed probe's connection is not trusted again */
    }
    rd->concluded = false;
    rd__host->report(c, &o); /* last: it may start the next probe or release this check */
}

static void rd__timer_close_cb(uv_handle_t *h)
{
    free(h->data);
}

static int rd__start(struct check *c)
{
    struct rd__check *rd = c->priv;
    if (!rd__loop)
        return -EINVAL;
    if (!rd) {
        if (!(rd = calloc(1, sizeof *rd)))
            return -ENOMEM;
        rd->c = c;
        rd->p = c->cfg->params;
        uv_timer_init(rd__loop, &rd->timer);
        rd->timer.data = rd;
        c->priv = rd;
    }
    if (rd->busy)
        return -EBUSY;
    rd->busy = true;
    rd->failed = rd->concluded = rd->drop = rd->retry = false;
    rd->deadline = uvclock_now(rd__loop) + c->cfg->timeout_ms;
    uvclock_arm_at(&rd->timer, rd__timer_cb, rd->deadline);
    rd->reused = rd->ac != NULL;
    if (!rd->reused)
        rd__connect(rd);
    else if (rd__send(rd, rd__ping_cb, "PING") < 0)
        rd->retry = true, rd__conclude(rd);
    return 0;
}

static void rd__cancel(struct check *c)
{
    struct rd__check *rd = c->priv;
    if (!rd || !rd->busy)
        return;
    uv_timer_stop(&rd->timer);
    rd->busy = false;
    /* Replies still owed would be taken for the next probe's. */
    if (!rd->concluded || rd->drop)
        rd__hangup(rd);
    rd->concluded = false;
}

static void rd__release(struct check *c)
{
    struct rd__check *rd = c->priv;
    if (!rd)
        return;
    rd__cancel(c);
    rd__hangup(rd);
    rd->c = NULL;
    c->priv = NULL;
    uv_close((uv_handle_t *)&rd->timer, rd__timer_close_cb);
}

static int rd__init(uv_loop_t *loop)
{
    rd__loop = loop;
    return 0;
}

static void rd__shutdown(void)
{
    rd__loop = NULL;
}

/* detector_ops.target */
static int rd__target(const void *params, char *host, size_t len, unsigned *port)
{
    const struct sockaddr_storage *sa = &((const struct rd__params *)params)->address;
    return detector_target_of(sa, host, len, port);
}

static const struct detector_ops rd__ops = {
    .name = "redis",
    .fields = rd__fields,
    .params_size = sizeof(struct rd__params),
    .params_init = NULL, /* all zero: no password, db 0 */
    .validate = rd__validate,
    .init = rd__init,
    .shutdown = rd__shutdown,
    .start = rd__start,
    .cancel = rd__cancel,
    .release = rd__release,
    .target = rd__target,
};

/* The plug-in's one entry point (DETECTOR_PLUGIN_ENTRY_FMT). */
__attribute__((visibility("default"))) const struct detector_ops *
recoverd_detector_redis(const struct detector_host *host)
{
    rd__host = host;
    return &rd__ops;
}
