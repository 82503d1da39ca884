/* The recoverd-postgres.so plug-in: postgres checks through libpq's
 * asynchronous API on the libuv loop (STACK.md, "libpq, hiredis"). One
 * connection per check, kept across probes; a probe runs `query` on it
 * (connecting first when there is none) within the check's timeout, which
 * our own timer enforces. detect/plugin.c loads it when a configuration
 * first names the kind; it calls back only through the detector_host its
 * entry point is given (report, lookups). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netdb.h>
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

#define PG__QUERY_DEFAULT "SELECT 1"
#define PG__PASSWORD_MAX 1024 /* bytes of password_file read */
#define PG__MSG_MAX 1024      /* bytes of a libpq message, scrubbed before it is cut to a reason */
#define PG__ADDRS_MAX 4       /* addresses of a resolved host handed to libpq, tried in order */

struct pg__params {
    char *dsn;           /* "key=value ..." or postgresql:// URL; required */
    char *password_file; /* the password, read at each connect; NULL: the DSN's own */
    char *query;         /* each probe runs it; NULL: PG__QUERY_DEFAULT */
};

static const struct cfg_field pg__fields[] = {
    {"dsn", CFG_STRING, offsetof(struct pg__params, dsn), 1, NULL},
    {"password_file", CFG_PATH, offsetof(struct pg__params, password_file), 0, NULL},
    {"query", CFG_STRING, offsetof(struct pg__params, query), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

enum pg__phase {
    PG__IDLE,       /* no probe in flight; a kept connection is watched for hang-ups */
    PG__RESOLVING,  /* uv_getaddrinfo: PQconnectStart would resolve on the loop */
    PG__CONNECTING, /* PQconnectPoll */
    PG__QUERYING,   /* the query is out; reading its results */
};

static const char *const pg__phase_words[] = {"", " resolving the host", " connecting",
                                              " waiting for the query"};

struct pg__check;

/* The poll on PQsocket(). On the heap: libpq may close its socket and open
 * another during a connect (SSL or GSS fallback), and a handle lives on
 * until its close callback. */
struct pg__watch {
    uv_poll_t poll;       /* data = this; freed in its close callback */
    struct pg__check *pg; /* owner */
    int fd;               /* the socket watched */
};

struct pg__check {
    struct check *c;            /* owner; NULL once released */
    const struct pg__params *p; /* c->cfg->params; borrowed */
    PGconn *conn;               /* kept across probes; NULL: the next probe connects */
    char *password;             /* the one conn was opened with: scrubbed from reasons */
    struct pg__watch *watch;    /* on PQsocket(conn) while conn is open */
    struct lookup *lookup;      /* resolution in flight */
    uv_timer_t timer;           /* the probe's deadline, or 0 to deliver `result`; data = this */
    enum pg__phase phase;       /* where the probe in flight is */
    bool busy;                  /* a probe is in flight */
    bool reused;                /* it runs on a connection an earlier probe opened */
    bool concluded;             /* `result` is final: the timer delivers it */
    bool has_result;            /* the query gave at least one result */
    struct observation result;  /* the outcome so far (first query error wins) */
};

static uv_loop_t *pg__loop; /* the daemon's loop between init and shutdown; borrowed */
static const struct detector_host *pg__host; /* the executable's, from the entry point */

/* ---- words ---- */

/* libpq's classes of connection failure, by its words (they carry no
 * SQLSTATE). First match wins; none: the network. */
static const struct {
    const char *words;
    enum fault_type type;
} pg__conn_classes[] = {
    {"authentication failed", FAULT_CONFIGURATION},
    {"no password supplied", FAULT_CONFIGURATION},
    {"does not exist", FAULT_CONFIGURATION}, /* the database or the role */
    {"no pg_hba.conf entry", FAULT_CONFIGURATION},
    {"not permitted to log in", FAULT_CONFIGURATION},
    {"too many clients", FAULT_RESOURCE},
    {"too many connections", FAULT_RESOURCE},
    {"connection slots are reserved", FAULT_RESOURCE},
    {"out of memory", FAULT_RESOURCE},
    /* The server answered and refused: starting up, shutting down, recovering. */
    {"FATAL:", FAULT_SOFTWARE},
};

/* Query errors by SQLSTATE prefix; none: the software. */
static const struct {
    const char *state;
    enum fault_type type;
} pg__query_classes[] = {
    {"42501", FAULT_CONFIGURATION}, /* insufficient privilege */
    {"28", FAULT_CONFIGURATION},    /* invalid authorization */
    {"3D", FAULT_CONFIGURATION},    /* invalid catalog name */
    {"53", FAULT_RESOURCE},         /* insufficient resources */
    {"08", FAULT_NETWORK},          /* connection exception */
};

static void pg__obs(struct observation *o, bool ok, enum fault_type type)
{
    memset(o, 0, sizeof *o);
    o->ok = ok;
    o->type = type;
    o->severity = SEVERITY_HIGH;
    o->code = -1;
}

/* libpq's message as a reason: the words after "connection to server at
 * ... failed: ", without "FATAL:  ", first line only, the password hidden.
 * Scrubbed whole before it is cut, so no prefix of a password survives. */
static void pg__reason(const struct pg__check *pg, const char *prefix, const char *msg,
                       struct observation *o)
{
    char buf[PG__MSG_MAX];
    const char *m = msg && *msg ? msg : "unknown error", *s;
    if ((s = strstr(m, " failed: ")))
        m = s + 9;
    if (strncmp(m, "FATAL:", 6) == 0 || strncmp(m, "ERROR:", 6) == 0)
        m += 6;
    m += strspn(m, " \t");
    snprintf(buf, sizeof buf, "%s%.*s", prefix, (int)strcspn(m, "\r\n"), m);
    secret_scrub(buf, sizeof buf, pg->password);
    secret_scrub(buf, sizeof buf, NULL);
    text_format(o->reason, sizeof o->reason, "%s", buf);
}

static enum fault_type pg__conn_type(const char *msg)
{
    for (size_t i = 0; msg && i < sizeof pg__conn_classes / sizeof *pg__conn_classes; i++)
        if (strstr(msg, pg__conn_classes[i].words))
            return pg__conn_classes[i].type;
    return FAULT_NETWORK;
}

static enum fault_type pg__query_type(const char *state)
{
    for (size_t i = 0; state && i < sizeof pg__query_classes / sizeof *pg__query_classes; i++)
        if (strncmp(state, pg__query_classes[i].state, strlen(pg__query_classes[i].state)) == 0)
            return pg__query_classes[i].type;
    return FAULT_SOFTWARE;
}

/* ---- validate ---- */

/* Whether word is a key of the DSN (followed by '=', maybe after blanks). */
static bool pg__dsn_key(const char *dsn, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = dsn; n && (p = strstr(p, word)); p++) {
        const char *q = p + n + strspn(p + n, " \t");
        if (*q == '=' && (p == dsn || strchr(" \t?&", p[-1])))
            return true;
    }
    return false;
}

/* libpq quotes pieces of the DSN in its parse errors: `missing "=" after
 * "hunter2"`. Keep a quoted piece only when it is a key or "=". */
static void pg__hide_quoted(char *msg, size_t size, const char *dsn)
{
    char out[PG__MSG_MAX], word[PG__MSG_MAX];
    size_t o = 0;
    const char *m = msg, *end;
    while (*m && o + 8 < sizeof out) {
        if (*m != '"' || !(end = strchr(m + 1, '"'))) {
            out[o++] = *m++;
            continue;
        }
        snprintf(word, sizeof word, "%.*s", (int)(end - m - 1), m + 1);
        bool keep = strcmp(word, "=") == 0 || pg__dsn_key(dsn, word);
        o += (size_t)snprintf(out + o, sizeof out - o, "\"%s\"", keep ? word : "...");
        if (o >= sizeof out)
            o = sizeof out - 1;
        m = end + 1;
    }
    out[o] = '\0';
    snprintf(msg, size, "%s", out);
}

static const char *pg__opt(const PQconninfoOption *opts, const char *key)
{
    for (; opts && opts->keyword; opts++)
        if (strcmp(opts->keyword, key) == 0)
            return opts->val;
    return NULL;
}

static int pg__validate(const void *params, char *why, size_t len)
{
    const struct pg__params *pp = params;
    char *err = NULL, msg[PG__MSG_MAX];
    PQconninfoOption *opts = PQconninfoParse(pp->dsn, &err);
    const char *keys[] = {"host", "hostaddr", "port"};
    int r = -EINVAL;
    if (!opts) {
        snprintf(msg, sizeof msg, "%s", err ? err : "out of memory");
        PQfreemem(err);
        msg[strcspn(msg, "\r\n")] = '\0';
        pg__hide_quoted(msg, sizeof msg, pp->dsn);
        secret_scrub(msg, sizeof msg, NULL);
        snprintf(why, len, "dsn: %s", msg);
        return -EINVAL;
    }
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        const char *v = pg__opt(opts, keys[i]);
        if (v && strchr(v, ',')) {
            snprintf(why, len, "dsn: one %s per check (a list of them is not supported)", keys[i]);
            goto fail;
        }
    }
    if (pp->query && !pp->query[strspn(pp->query, " \t\r\n;")]) {
        snprintf(why, len, "query must not be empty");
        goto fail;
    }
    r = 0;
fail:
    PQconninfoFree(opts);
    return r;
}

/* ---- the connection ---- */

static void pg__poll_cb(uv_poll_t *h, int status, int events);
static void pg__timer_cb(uv_timer_t *t);
static void pg__query_send(struct pg__check *pg);

static void pg__watch_close_cb(uv_handle_t *h)
{
    free(h->data);
}

static void pg__watch_close(struct pg__check *pg)
{
    if (!pg->watch)
        return;
    uv_close((uv_handle_t *)&pg->watch->poll, pg__watch_close_cb);
    pg->watch = NULL;
}

/* Watch PQsocket() for events. Re-read after every PQconnectPoll: the
 * socket may be another one now, even under the same number, in which case
 * the old epoll registration is gone and libuv's "modify" would abort: so
 * while connecting, stop (epoll DEL) before starting again. */
static int pg__watch_set(struct pg__check *pg, int events)
{
    struct pg__watch *w = pg->watch;
    int fd = PQsocket(pg->conn), r;
    if (fd < 0)
        return -EBADF;
    if (w && w->fd != fd) {
        pg__watch_close(pg);
        w = NULL;
    }
    if (!w) {
        if (!(w = calloc(1, sizeof *w)))
            return -ENOMEM;
        if ((r = uv_poll_init_socket(pg__loop, &w->poll, fd)) < 0) {
            free(w);
            return r;
        }
        w->poll.data = w;
        w->pg = pg;
        w->fd = fd;
        pg->watch = w;
    } else if (pg->phase == PG__CONNECTING) {
        uv_poll_stop(&w->poll);
    }
    return uv_poll_start(&w->poll, events, pg__poll_cb);
}

/* The poll goes first: PQfinish closes the socket it watches. */
static void pg__conn_close(struct pg__check *pg)
{
    pg__watch_close(pg);
    if (pg->conn)
        PQfinish(pg->conn);
    pg->conn = NULL;
    if (pg->password) {
        explicit_bzero(pg->password, strlen(pg->password));
        free(pg->password);
    }
    pg->password = NULL;
}

/* The outcome is known: the timer delivers it on the next loop turn, so
 * that check_report never runs inside start or inside libpq's doings. */
static void pg__conclude(struct pg__check *pg, const struct observation *o, bool drop)
{
    if (drop)
        pg__conn_close(pg);
    pg->result = *o;
    pg->concluded = true;
    pg->phase = PG__IDLE;
    uvclock_arm(&pg->timer, pg__timer_cb, 0);
}

/* The connection failed (or was lost): classify libpq's words, drop it. */
static void pg__conn_failed(struct pg__check *pg, const char *prefix)
{
    const char *msg = PQerrorMessage(pg->conn);
    struct observation o;
    pg__obs(&o, false, pg__conn_type(msg));
    pg__reason(pg, prefix, msg, &o);
    pg__conclude(pg, &o, true);
}

static void pg__local_failed(struct pg__check *pg, enum fault_type type, const char *what, int r)
{
    struct observation o;
    pg__obs(&o, false, type);
    snprintf(o.reason, sizeof o.reason, "%s: %s", what, strerror(-r));
    pg__conclude(pg, &o, true);
}

/* The password a connect uses, for libpq and for scrubbing: password_file's
 * first line (read now, so a rotated password is picked up), else the DSN's. */
static int pg__password_load(struct pg__check *pg, const PQconninfoOption *opts)
{
    char buf[PG__PASSWORD_MAX + 1];
    const char *dsn_pw = pg__opt(opts, "password");
    ssize_t n;
    int fd, r = 0;
    if (!pg->p->password_file) {
        if (dsn_pw && !(pg->password = strdup(dsn_pw)))
            return -ENOMEM;
        return 0;
    }
    if ((fd = open(pg->p->password_file, O_RDONLY | O_CLOEXEC)) < 0)
        return -errno;
    n = read(fd, buf, sizeof buf - 1);
    r = n < 0 ? -errno : 0;
    close(fd);
    if (r < 0)
        return r;
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    if (!(pg->password = strdup(buf)))
        r = -ENOMEM;
    explicit_bzero(buf, sizeof buf);
    return r;
}

/* PQconnectStartParams from the parsed DSN, with the password loaded above,
 * the addresses we resolved (hostaddr "a,b", host "name,name": libpq wants
 * as many of one as of the other), no connect_timeout (our timer rules),
 * and no GSS encryption unless asked (Kerberos may block on the loop). */
static PGconn *pg__conn_start(const struct pg__check *pg, const PQconninfoOption *opts,
                              const char *hostaddr, const char *hosts)
{
    size_t n = 0, max = 5;
    for (const PQconninfoOption *o = opts; o->keyword; o++)
        max++;
    const char **kw = calloc(max, sizeof *kw), **val = calloc(max, sizeof *val);
    PGconn *conn = NULL;
    if (!kw || !val)
        goto fail;
    for (const PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val || !strcmp(o->keyword, "connect_timeout") || !strcmp(o->keyword, "password") ||
            (hostaddr && (!strcmp(o->keyword, "hostaddr") || !strcmp(o->keyword, "host"))))
            continue;
        kw[n] = o->keyword, val[n++] = o->val;
    }
    if (pg->password)
        kw[n] = "password", val[n++] = pg->password;
    if (hostaddr) {
        kw[n] = "hostaddr", val[n++] = hostaddr;
        kw[n] = "host", val[n++] = hosts;
    }
    if (!pg__opt(opts, "gssencmode"))
        kw[n] = "gssencmode", val[n++] = "disable";
    kw[n] = "fallback_application_name", val[n++] = "recoverd";
    conn = PQconnectStartParams(kw, val, 0);
fail:
    free(kw);
    free(val);
    return conn;
}

/* libpq prints server notices (RAISE NOTICE...) on stderr by default. */
static void pg__notice_drop(void *arg, const char *message)
{
}

/* Begin a connect; the DSN parsed when validated, so only memory fails.
 * hostaddr and hosts: from our resolution, or NULL. */
static void pg__connect_begin(struct pg__check *pg, const char *hostaddr, const char *hosts)
{
    PQconninfoOption *opts = PQconninfoParse(pg->p->dsn, NULL);
    int r;
    pg__conn_close(pg);
    if (!opts)
        return pg__local_failed(pg, FAULT_RESOURCE, "cannot parse dsn", -ENOMEM);
    r = pg__password_load(pg, opts);
    if (r == 0 && !(pg->conn = pg__conn_start(pg, opts, hostaddr, hosts)))
        r = -ENOMEM;
    PQconninfoFree(opts);
    if (r < 0)
        return pg__local_failed(pg, r == -ENOMEM ? FAULT_RESOURCE : FAULT_CONFIGURATION,
                                r == -ENOMEM ? "cannot connect" : pg->p->password_file, r);
    if (PQstatus(pg->conn) == CONNECTION_BAD)
        return pg__conn_failed(pg, "");
    PQsetnonblocking(pg->conn, 1);
    PQsetNoticeProcessor(pg->conn, pg__notice_drop, NULL);
    pg->phase = PG__CONNECTING;
    /* As if PQconnectPoll had said "writing" (libpq's documentation). */
    if ((r = pg__watch_set(pg, UV_WRITABLE)) < 0)
        pg__local_failed(pg, FAULT_RESOURCE, "cannot watch the socket", r);
}

/* The first PG__ADDRS_MAX addresses of res as "a,b,c"; and host as many
 * times, "h,h,h". */
static void pg__addrs(const struct addrinfo *res, const char *host, char *addrs, size_t alen,
                      char *hosts, size_t hlen)
{
    char ip[INET6_ADDRSTRLEN];
    size_t a = 0, h = 0;
    addrs[0] = hosts[0] = '\0';
    for (int i = 0; res && i < PG__ADDRS_MAX; res = res->ai_next) {
        if (getnameinfo(res->ai_addr, res->ai_addrlen, ip, sizeof ip, NULL, 0, NI_NUMERICHOST))
            continue;
        a += (size_t)snprintf(addrs + a, alen - a, "%s%s", i ? "," : "", ip);
        h += (size_t)snprintf(hosts + h, hlen - h, "%s%s", i++ ? "," : "", host);
        if (a >= alen || h >= hlen) {
            addrs[0] = '\0';
            return;
        }
    }
}

static void pg__lookup_cb(void *arg, int status, const struct addrinfo *res, const char *host)
{
    struct pg__check *pg = arg;
    char addrs[PG__ADDRS_MAX * (INET6_ADDRSTRLEN + 1)] = "";
    char hosts[PG__ADDRS_MAX * (NI_MAXHOST + 1)] = "";
    pg->lookup = NULL;
    if (status == 0)
        pg__addrs(res, host, addrs, sizeof addrs, hosts, sizeof hosts);
    if (status < 0 || !addrs[0]) {
        struct observation o;
        pg__obs(&o, false, FAULT_NETWORK);
        snprintf(o.reason, sizeof o.reason, "cannot resolve the host: %s",
                 uv_strerror(status < 0 ? status : UV_EAI_FAIL));
        return pg__conclude(pg, &o, true);
    }
    pg__connect_begin(pg, addrs, hosts);
}

static void pg__lookup_drop(struct pg__check *pg)
{
    pg__host->lookup_cancel(pg->lookup);
    pg->lookup = NULL;
}

static bool pg__numeric(const char *host)
{
    unsigned char a[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

/* PQconnectStart resolves host names on the loop: resolve a name in
 * libuv's pool first and hand libpq the address (the name stays, for TLS
 * and .pgpass). Sockets paths, addresses and hostaddr need nothing. */
static void pg__connect(struct pg__check *pg)
{
    PQconninfoOption *opts = PQconninfoParse(pg->p->dsn, NULL);
    const char *host = pg__opt(opts, "host");
    pg__conn_close(pg);
    if (!host || !*host || host[0] == '/' || pg__opt(opts, "hostaddr") || pg__numeric(host)) {
        PQconninfoFree(opts);
        return pg__connect_begin(pg, NULL, NULL);
    }
    int r = pg__host->lookup_start(pg__loop, host, pg__lookup_cb, pg, &pg->lookup);
    PQconninfoFree(opts);
    if (r < 0)
        return pg__local_failed(pg, FAULT_RESOURCE, "cannot resolve the host", r);
    pg->phase = PG__RESOLVING;
}

/* PQconnectPoll one step further. */
static void pg__connect_step(struct pg__check *pg)
{
    PostgresPollingStatusType st = PQconnectPoll(pg->conn);
    int r;
    if (st == PGRES_POLLING_FAILED)
        return pg__conn_failed(pg, "");
    if (st == PGRES_POLLING_OK) {
        pg->phase = PG__QUERYING;
        return pg__query_send(pg);
    }
    if ((r = pg__watch_set(pg, st == PGRES_POLLING_READING ? UV_READABLE : UV_WRITABLE)) < 0)
        pg__local_failed(pg, FAULT_RESOURCE, "cannot watch the socket", r);
}

/* ---- the query ---- */

/* The connection broke under the probe. A kept one may have died since the
 * last probe without our seeing it (the server restarted): one fresh
 * connect, within the same deadline, before calling it a failure. */
static void pg__lost(struct pg__check *pg)
{
    if (pg->reused) {
        pg->reused = false;
        return pg__connect(pg);
    }
    pg__conn_failed(pg, "");
}

/* Send what libpq holds; watch for its answer (and for room to send more). */
static void pg__query_watch(struct pg__check *pg)
{
    int f = PQflush(pg->conn), r;
    if (f < 0)
        return pg__lost(pg);
    if ((r = pg__watch_set(pg, f ? UV_READABLE | UV_WRITABLE : UV_READABLE)) < 0)
        pg__local_failed(pg, FAULT_RESOURCE, "cannot watch the socket", r);
}

static void pg__query_send(struct pg__check *pg)
{
    pg->has_result = false;
    pg->phase = PG__QUERYING;
    if (!PQsendQuery(pg->conn, pg->p->query ? pg->p->query : PG__QUERY_DEFAULT))
        return pg__lost(pg);
    pg__query_watch(pg);
}

/* Fold one result into pg->result: the first error is the one told. */
static void pg__result_take(struct pg__check *pg, const PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    const char *state, *msg;
    char buf[PG__MSG_MAX];
    if (pg->has_result && !pg->result.ok)
        return;
    pg->has_result = true;
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        pg__obs(&pg->result, true, FAULT_SOFTWARE);
        snprintf(pg->result.reason, sizeof pg->result.reason, "query ok (%d rows)", PQntuples(res));
        return;
    }
    state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (!(msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)))
        msg = PQresStatus(st); /* not an error: a COPY or an empty query */
    snprintf(buf, sizeof buf, "%s%s%s%s", msg, state ? " (SQLSTATE " : "", state ? state : "",
             state ? ")" : "");
    pg__obs(&pg->result, false, pg__query_type(state));
    pg__reason(pg, "query failed: ", buf, &pg->result);
}

static void pg__query_done(struct pg__check *pg)
{
    int r;
    if (PQstatus(pg->conn) != CONNECTION_OK) {
        if (pg->reused || !pg->has_result)
            return pg__lost(pg);
        return pg__conclude(pg, &pg->result, true);
    }
    if (!pg->has_result) {
        struct observation o;
        pg__obs(&o, false, FAULT_SOFTWARE);
        snprintf(o.reason, sizeof o.reason, "query gave no result");
        return pg__conclude(pg, &o, false);
    }
    /* Kept for the next probe unless the query left a transaction open;
     * watched meanwhile, so a hang-up is seen before the next probe. */
    if (PQtransactionStatus(pg->conn) != PQTRANS_IDLE)
        return pg__conclude(pg, &pg->result, true);
    pg->phase = PG__IDLE;
    r = pg__watch_set(pg, UV_READABLE);
    pg__conclude(pg, &pg->result, r < 0);
}

static void pg__query_step(struct pg__check *pg, int events)
{
    PGresult *res;
    if ((events & UV_WRITABLE) && PQflush(pg->conn) < 0)
        return pg__lost(pg);
    if (!PQconsumeInput(pg->conn))
        return pg__lost(pg);
    while (!PQisBusy(pg->conn)) {
        if (!(res = PQgetResult(pg->conn)))
            return pg__query_done(pg);
        ExecStatusType st = PQresultStatus(res);
        pg__result_take(pg, res);
        PQclear(res);
        /* A COPY would wait for data forever: fail it and hang up. */
        if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
            pg->result.ok = false;
            return pg__conclude(pg, &pg->result, true);
        }
    }
    pg__query_watch(pg);
}

/* Between probes the server spoke (a notice) or hung up (it restarted):
 * forget a dead connection now rather than failing the next probe on it. */
static void pg__idle_step(struct pg__check *pg)
{
    PGnotify *n;
    if (!PQconsumeInput(pg->conn) || PQstatus(pg->conn) != CONNECTION_OK) {
        pg__conn_close(pg);
        return;
    }
    while ((n = PQnotifies(pg->conn)))
        PQfreemem(n);
}

/* A poll error (libuv reports POLLERR as UV_EBADF and stops the handle) is
 * left to libpq to find and name, like any other event. */
static void pg__poll_cb(uv_poll_t *h, int status, int events)
{
    struct pg__watch *w = h->data;
    struct pg__check *pg = w->pg;
    if (status < 0)
        events = UV_READABLE | UV_WRITABLE;
    switch (pg->phase) {
    case PG__CONNECTING: return pg__connect_step(pg);
    case PG__QUERYING: return pg__query_step(pg, events);
    default: return pg__idle_step(pg);
    }
}

/* ---- the ops ---- */

/* The deadline, or the delivery of a concluded probe. */
static void pg__timer_cb(uv_timer_t *t)
{
    struct pg__check *pg = t->data;
    struct check *c = pg->c;
    struct observation o;
    if (!pg->busy || !c)
        return;
    if (pg->concluded) {
        o = pg->result;
    } else {
        pg__obs(&o, false, FAULT_NETWORK);
        snprintf(o.reason, sizeof o.reason, "timeout after %llu ms%s",
                 (unsigned long long)c->cfg->timeout_ms, pg__phase_words[pg->phase]);
        /* A query may still run on the server: PQcancel would block the
         * loop, so hang up instead; the server notices on its next write. */
        pg__lookup_drop(pg);
        pg__conn_close(pg);
    }
    pg->busy = pg->concluded = false;
    pg->phase = PG__IDLE;
    pg__host->report(c, &o); /* last: it may start the next probe or release this check */
}

static void pg__timer_close_cb(uv_handle_t *h)
{
    free(h->data);
}

static int pg__start(struct check *c)
{
    struct pg__check *pg = c->priv;
    if (!pg__loop)
        return -EINVAL;
    if (!pg) {
        if (!(pg = calloc(1, sizeof *pg)))
            return -ENOMEM;
        pg->c = c;
        pg->p = c->cfg->params;
        uv_timer_init(pg__loop, &pg->timer);
        pg->timer.data = pg;
        c->priv = pg;
    }
    if (pg->busy)
        return -EBUSY;
    pg->busy = true;
    pg->concluded = false;
    uvclock_arm(&pg->timer, pg__timer_cb, c->cfg->timeout_ms);
    pg->reused = pg->conn && PQstatus(pg->conn) == CONNECTION_OK &&
                 PQtransactionStatus(pg->conn) == PQTRANS_IDLE;
    if (pg->reused)
        pg__query_send(pg);
    else
        pg__connect(pg);
    return 0;
}

static void pg__cancel(struct check *c)
{
    struct pg__check *pg = c->priv;
    if (!pg || !pg->busy)
        return;
    uv_timer_stop(&pg->timer);
    pg__lookup_drop(pg);
    /* Half a connect or a query whose answer is still coming: unusable. */
    if (pg->phase != PG__IDLE)
        pg__conn_close(pg);
    pg->busy = pg->concluded = false;
    pg->phase = PG__IDLE;
}

static void pg__release(struct check *c)
{
    struct pg__check *pg = c->priv;
    if (!pg)
        return;
    pg__cancel(c);
    pg__conn_close(pg);
    pg->c = NULL;
    c->priv = NULL;
    uv_close((uv_handle_t *)&pg->timer, pg__timer_close_cb);
}

static int pg__init(uv_loop_t *loop)
{
    pg__loop = loop;
    return 0;
}

static void pg__shutdown(void)
{
    pg__loop = NULL;
}

/* detector_ops.target: the DSN's one TCP server (hostaddr, else host),
 * port 5432 unless it says; none for a socket directory or a host list. */
static int pg__target(const void *params, char *host, size_t len, unsigned *port)
{
    const struct pg__params *pp = params;
    PQconninfoOption *o = PQconninfoParse(pp->dsn, NULL);
    const char *h = NULL, *a = NULL, *p = NULL;
    int found = 0;
    if (!o)
        return 0;
    for (PQconninfoOption *i = o; i->keyword; i++) {
        if (!i->val || !*i->val)
            continue;
        if (strcmp(i->keyword, "host") == 0)
            h = i->val;
        else if (strcmp(i->keyword, "hostaddr") == 0)
            a = i->val;
        else if (strcmp(i->keyword, "port") == 0)
            p = i->val;
    }
    if (a)
        h = a; /* hostaddr is where libpq connects */
    if (h && *h != '/' && !strchr(h, ',') && (!p || !strchr(p, ','))) {
        unsigned long v = p ? strtoul(p, NULL, 10) : 5432;
        if (v > 0 && v < 65536) {
            snprintf(host, len, "%s", h);
            *port = (unsigned)v;
            found = 1;
        }
    }
    PQconninfoFree(o);
    return found;
}

static const struct detector_ops pg__ops = {
    .name = "postgres",
    .fields = pg__fields,
    .params_size = sizeof(struct pg__params),
    .params_init = NULL, /* all NULL: query defaults at probe time */
    .validate = pg__validate,
    .init = pg__init,
    .shutdown = pg__shutdown,
    .start = pg__start,
    .cancel = pg__cancel,
    .release = pg__release,
    .target = pg__target,
};

/* The plug-in's one entry point (DETECTOR_PLUGIN_ENTRY_FMT). */
__attribute__((visibility("default"))) const struct detector_ops *
recoverd_detector_postgres(const struct detector_host *host)
{
    pg__host = host;
    return &pg__ops;
}
