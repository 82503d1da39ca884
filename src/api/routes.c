/* The API's resource table and its handlers: JSON views of the daemon
 * (monitor/status.h) and of the journal (store/journal.h, read on the
 * reader's thread when there is one: store/reader.h), and the operator's
 * controls (recover/control.h), which need the token. */
#include "api/routes.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/jsonw.h"
#include "lib/token.h"
#include "store/journal.h"

#define ROUTES__ARG_MAX 256 /* bytes of the one {} path segment a pattern captures */

/* A handler fills *body and returns the HTTP status; arg is the segment
 * matched by "{}" in the pattern ("" when the pattern has none). */
typedef unsigned routes__fn(const struct route_request *req, const char *arg, json_t **body);
/* A journal view's handler: fills *q and returns 0, or returns the HTTP
 * status of a refusal with its body. The read itself runs where the
 * backend says (routes__read). */
typedef unsigned routes__qfn(const struct route_request *req, const char *arg, struct route_view *q,
                             json_t **body);

enum routes__views {
    VIEW_FAULTS,
    VIEW_SUMMARY,
    VIEW_FAULT,
    VIEW_ACTIONS,
    VIEW_TRANSITIONS,
    VIEW_METRICS
};

/* A handler whose view writes its own JSON text into out->text (errors
 * still go in out->body); a list says in *page what its link needs. */
typedef unsigned routes__text_fn(const struct route_request *req, struct route_reply *out,
                                 struct route_page *page);

struct route {
    const char *method;    /* GET also answers HEAD (the server drops the body) */
    const char *pattern;   /* "/v1/faults/{}": {} matches one non-empty segment */
    const char *params;    /* query keys accepted, "a,b" */
    routes__fn *fn;        /* NULL: query or text */
    routes__qfn *query;    /* a journal view */
    routes__text_fn *text; /* a view written as text */
    bool mutating;         /* needs "Authorization: Bearer <token>" */
    /* A list: the query key of its cursor and the row field it takes
     * (routes__next), and its rows when ?limit is absent (0: all). */
    const char *cursor, *field;
    size_t limit;
};

static unsigned routes__status(const struct route_request *, const char *, json_t **);
static unsigned routes__services(const struct route_request *, struct route_reply *,
                                 struct route_page *);
static unsigned routes__service(const struct route_request *, const char *, json_t **);
static routes__qfn routes__faults, routes__summary, routes__fault, routes__actions,
    routes__transitions, routes__metrics;
static unsigned routes__recover(const struct route_request *, const char *, json_t **);
static unsigned routes__hold(const struct route_request *, const char *, json_t **);
static unsigned routes__release(const struct route_request *, const char *, json_t **);
static unsigned routes__restart(const struct route_request *, const char *, json_t **);

/* First matching pattern wins, so a literal ("summary") precedes the {} it
 * would otherwise fall into. Mutating calls (POST with a token) go here too. */
static const struct route routes__table[] = {
    {"GET", "/v1/status", "", routes__status, NULL, NULL, false, NULL, NULL, 0},
    {"GET", "/v1/services", "after,limit", NULL, NULL, routes__services, false, "after", "name", 0},
    {"GET", "/v1/services/{}", "", routes__service, NULL, NULL, false, NULL, NULL, 0},
    {"GET", "/v1/faults", "active,before,limit", NULL, routes__faults, NULL, false, "before", "id",
     ROUTES_LIMIT_DEFAULT},
    {"GET", "/v1/faults/summary", "", NULL, routes__summary, NULL, false, NULL, NULL, 0},
    {"GET", "/v1/faults/{}", "", NULL, routes__fault, NULL, false, NULL, NULL, 0},
    {"GET", "/v1/actions", "fault,before,limit", NULL, routes__actions, NULL, false, "before", "id",
     ROUTES_LIMIT_DEFAULT},
    {"GET", "/v1/transitions", "service,before,limit", NULL, routes__transitions, NULL, false,
     "before", "id", ROUTES_LIMIT_DEFAULT},
    {"GET", "/v1/metrics", "", NULL, routes__metrics, NULL, false, NULL, NULL, 0},
    {"POST", "/v1/faults/{}/recover", "", routes__recover, NULL, NULL, true, NULL, NULL, 0},
    {"POST", "/v1/services/{}/hold", "", routes__hold, NULL, NULL, true, NULL, NULL, 0},
    {"POST", "/v1/services/{}/release", "", routes__release, NULL, NULL, true, NULL, NULL, 0},
    {"POST", "/v1/services/{}/restart", "", routes__restart, NULL, NULL, true, NULL, NULL, 0},
};

/* {"error": msg}. Bytes outside printable ASCII become '?': the message
 * may quote a decoded path, which need not be valid UTF-8 for jansson. */
__attribute__((format(printf, 3, 4))) static unsigned routes__error(json_t **body, unsigned status,
                                                                    const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            *p = '?';
    *body = json_pack("{s:s}", "error", msg);
    return status;
}

/* The view's answer, or a 500 when it returned NULL for no stated reason. */
static unsigned routes__view(json_t *v, const char *what, json_t **body)
{
    if (!v)
        return routes__error(body, 500, "%s failed", what);
    *body = v;
    return 200;
}

/* Decimal integer in [min, max], digits only (no sign, no spaces). */
static int routes__parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (!s || !isdigit((unsigned char)s[0]))
        return -EINVAL;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

/* The value of query key, or NULL; *present tells a bare "?key" from absence. */
static const char *routes__query(const struct route_request *req, const char *key, bool *present)
{
    for (size_t i = 0; i < req->n_query; i++) {
        if (strcmp(req->query[i].key, key) == 0) {
            *present = true;
            return req->query[i].value;
        }
    }
    *present = false;
    return NULL;
}

/* ?limit: ROUTES_LIMIT_DEFAULT when absent. 0 or a 400 already in *body. */
static int routes__limit(const struct route_request *req, size_t *limit, json_t **body,
                         unsigned *status)
{
    bool present;
    const char *s = routes__query(req, "limit", &present);
    int64_t v = ROUTES_LIMIT_DEFAULT;
    if (present && routes__parse_int(s, 1, ROUTES_LIMIT_MAX, &v) < 0) {
        *status = routes__error(body, 400, "limit must be an integer from 1 to %d, not '%s'",
                                ROUTES_LIMIT_MAX, s ? s : "");
        return -EINVAL;
    }
    *limit = (size_t)v;
    return 0;
}

/* ?before: a cursor, the id the page ends below; 0 when absent. 0 or a 400
 * already in *body. */
static int routes__before(const struct route_request *req, int64_t *before, json_t **body,
                          unsigned *status)
{
    bool present;
    const char *s = routes__query(req, "before", &present);
    *before = 0;
    if (present && routes__parse_int(s, 1, INT64_MAX, before) < 0) {
        *status = routes__error(body, 400, "before must be a positive integer (an id), not '%s'",
                                s ? s : "");
        return -EINVAL;
    }
    return 0;
}

/* Append v to out percent-encoded (RFC 3986 unreserved bytes as they are). */
static void routes__encode(char *out, size_t len, const char *v)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(out);
    for (; *v && n + 4 < len; v++) {
        unsigned char c = (unsigned char)*v;
        if (isalnum(c) || strchr("-._~", c)) {
            out[n++] = (char)c;
        } else {
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    out[n] = '\0';
}

/* A full page (limit rows) may have a next one: its link, in the Link
 * header (RFC 8288), repeats the page's query with the cursor moved on to
 * the last row's field. A shorter page is the last. Made in two halves:
 * the prefix from the request (on the loop), the rest from the rows
 * (routes__link_finish, where the rows are). */
static void routes__link_prefix(const struct route *r, const struct route_request *req,
                                char *prefix, size_t len, int64_t *limit)
{
    bool present;
    const char *l = routes__query(req, "limit", &present);
    *limit = (int64_t)r->limit;
    if (present)
        routes__parse_int(l, 1, ROUTES_LIMIT_MAX, limit); /* checked by the handler */
    char q[ROUTES_LINK_MAX - 64] = "";
    for (size_t i = 0; i < req->n_query; i++) {
        const char *k = req->query[i].key;
        if (strcmp(k, r->cursor) == 0 || strcmp(k, "limit") == 0)
            continue;
        routes__encode(q, sizeof q, k);
        strncat(q, "=", sizeof q - strlen(q) - 1);
        routes__encode(q, sizeof q, req->query[i].value ? req->query[i].value : "");
        strncat(q, "&", sizeof q - strlen(q) - 1);
    }
    snprintf(prefix, len, "<%s?%slimit=%" PRId64 "&%s=", req->path, q, *limit, r->cursor);
}

/* The cursor field of a list's last row, as text in buf (NULL: none). */
static const char *routes__last_of(json_t *rows, const char *field, char *buf, size_t len)
{
    json_t *f = json_object_get(json_array_get(rows, json_array_size(rows) - 1), field);
    if (json_is_integer(f)) {
        snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(f));
        return buf;
    }
    return json_string_value(f);
}

/* The link after a page of n rows whose last cursor field is last. */
static void routes__link_finish(const char *prefix, int64_t limit, unsigned status, size_t n,
                                const char *last, char *link, size_t len)
{
    link[0] = '\0';
    if (status != 200 || !n || !limit || n < (size_t)limit || !last)
        return;
    char v[ROUTES__ARG_MAX] = "";
    routes__encode(v, sizeof v, last); /* an id's digits stay as they are */
    int w = snprintf(link, len, "%s%s>; rel=\"next\"", prefix, v);
    if (w < 0 || (size_t)w >= len)
        link[0] = '\0'; /* a cut link would lead elsewhere: none */
}

/* The page is *page for a text answer, out->body's array otherwise. */
static void routes__next(const struct route *r, const struct route_request *req,
                         struct route_reply *out, const struct route_page *page)
{
    char prefix[ROUTES_LINK_MAX], id[32];
    int64_t limit;
    size_t n = out->body ? json_array_size(out->body) : page->rows;
    const char *last = out->body ? routes__last_of(out->body, r->field, id, sizeof id) : page->last;
    routes__link_prefix(r, req, prefix, sizeof prefix, &limit);
    routes__link_finish(prefix, limit, out->status, n, last, out->link, sizeof out->link);
}

static unsigned routes__status(const struct route_request *req, const char *arg, json_t **body)
{
    return routes__view(req->b->status(req->b->ctx), "status view", body);
}

/* Every service, in the view's order; a page with ?limit, from the one
 * after ?after (a name). The backend starts at ?after and stops at the
 * limit: a page costs its rows, not the whole list. Only the rows' names
 * are taken here; the server writes their views in slices
 * (routes_list_step). */
static unsigned routes__services(const struct route_request *req, struct route_reply *out,
                                 struct route_page *page)
{
    bool has_limit, has_after;
    const char *l = routes__query(req, "limit", &has_limit);
    const char *after = routes__query(req, "after", &has_after);
    int64_t limit = 0;
    if (has_limit && routes__parse_int(l, 1, ROUTES_LIMIT_MAX, &limit) < 0)
        return routes__error(&out->body, 400, "limit must be an integer from 1 to %d, not '%s'",
                             ROUTES_LIMIT_MAX, l ? l : "");
    if (has_after && (!after || !*after))
        return routes__error(&out->body, 400, "after must name a service");
    struct route_list *list = calloc(1, sizeof *list);
    int r = list ? req->b->services(req->b->ctx, after, (size_t)limit, list, page) : -ENOMEM;
    if (r < 0) {
        routes_list_free(list);
        *page = (struct route_page){0};
        if (r == -ENOENT)
            return routes__error(&out->body, 400, "after: no such service: %s", after);
        return routes__error(&out->body, 500, "services view failed");
    }
    out->list = list;
    return 200;
}

bool routes_list_step(const struct api_backend *b, struct route_list *l, size_t n)
{
    if (l->next == 0 && l->w.len == 0)
        jsonw_array(&l->w);
    if (l->next < l->len)
        b->services_slice(b->ctx, l, n);
    if (l->next < l->len)
        return false;
    jsonw_array_end(&l->w);
    return true;
}

void routes_list_free(struct route_list *l)
{
    if (!l)
        return;
    free(l->names);
    jsonw_close(&l->w);
    free(l);
}

static unsigned routes__service(const struct route_request *req, const char *arg, json_t **body)
{
    json_t *v = req->b->service(req->b->ctx, arg);
    if (!v)
        return routes__error(body, 404, "no such service: %s", arg);
    *body = v;
    return 200;
}

static unsigned routes__faults(const struct route_request *req, const char *arg,
                               struct route_view *q, json_t **body)
{
    unsigned status = 0;
    bool present;
    const char *s = routes__query(req, "active", &present);
    q->view = VIEW_FAULTS;
    q->active = present && (!s || !*s || !strcmp(s, "1") || !strcmp(s, "true"));
    if (present && !q->active && strcmp(s, "0") != 0 && strcmp(s, "false") != 0)
        return routes__error(body, 400, "active must be 1, 0, true or false, not '%s'", s);
    if (routes__limit(req, &q->limit, body, &status) < 0 ||
        routes__before(req, &q->before, body, &status) < 0)
        return status;
    return 0;
}

static unsigned routes__summary(const struct route_request *req, const char *arg,
                                struct route_view *q, json_t **body)
{
    q->view = VIEW_SUMMARY;
    return 0;
}

static unsigned routes__fault(const struct route_request *req, const char *arg,
                              struct route_view *q, json_t **body)
{
    q->view = VIEW_FAULT;
    if (routes__parse_int(arg, 1, INT64_MAX, &q->id) < 0)
        return routes__error(body, 400, "fault id must be a positive integer, not '%s'", arg);
    return 0;
}

static unsigned routes__actions(const struct route_request *req, const char *arg,
                                struct route_view *q, json_t **body)
{
    unsigned status = 0;
    bool present;
    const char *s = routes__query(req, "fault", &present);
    q->view = VIEW_ACTIONS;
    if (present && routes__parse_int(s, 1, INT64_MAX, &q->id) < 0)
        return routes__error(body, 400, "fault must be a positive integer, not '%s'", s ? s : "");
    if (routes__limit(req, &q->limit, body, &status) < 0 ||
        routes__before(req, &q->before, body, &status) < 0)
        return status;
    return 0;
}

static unsigned routes__transitions(const struct route_request *req, const char *arg,
                                    struct route_view *q, json_t **body)
{
    unsigned status = 0;
    bool present;
    const char *service = routes__query(req, "service", &present);
    q->view = VIEW_TRANSITIONS;
    if (present && (!service || !*service))
        return routes__error(body, 400, "service must name a service");
    if (present && strlen(service) >= sizeof q->service_buf)
        return routes__error(body, 400, "service: no such service (name too long)");
    if (present) {
        snprintf(q->service_buf, sizeof q->service_buf, "%s", service);
        q->service = q->service_buf;
    }
    if (routes__limit(req, &q->limit, body, &status) < 0 ||
        routes__before(req, &q->before, body, &status) < 0)
        return status;
    return 0;
}

static unsigned routes__metrics(const struct route_request *req, const char *arg,
                                struct route_view *q, json_t **body)
{
    q->view = VIEW_METRICS;
    return 0;
}

/* Run view q on journal j (the writer's on the loop, or the reader's
 * read-only one on its thread: nothing here touches the loop's state). */
static unsigned routes__view_run(const struct route_view *q, struct journal *j, json_t **body)
{
    switch (q->view) {
    case VIEW_FAULTS:
        return routes__view(journal_faults_json(j, q->active, q->before, q->limit), "faults query",
                            body);
    case VIEW_SUMMARY:
        return routes__view(journal_faults_summary_json(j), "fault summary query", body);
    case VIEW_FAULT:
        if (!(*body = journal_fault_json(j, q->id)))
            return routes__error(body, 404, "no such fault: %" PRId64, q->id);
        return 200;
    case VIEW_ACTIONS:
        return routes__view(journal_actions_json(j, q->id, q->before, q->limit), "actions query",
                            body);
    case VIEW_TRANSITIONS:
        return routes__view(journal_transitions_json(j, q->service, q->before, q->limit),
                            "transitions query", body);
    case VIEW_METRICS: return routes__view(journal_metrics_json(j), "metrics", body);
    }
    return routes__error(body, 500, "unknown view");
}

/* On the reader's thread: the view, its Link and its text. */
static void routes__read_work(struct reader_job *job, struct journal *ro)
{
    struct route_read *rd = (struct route_read *)job;
    json_t *body = NULL;
    char id[32];
    rd->status = routes__view_run(&rd->q, ro, &body);
    if (rd->link_prefix[0])
        routes__link_finish(rd->link_prefix, rd->page, rd->status, json_array_size(body),
                            routes__last_of(body, rd->field, id, sizeof id), rd->link,
                            sizeof rd->link);
    rd->text = routes_json_text(body, &rd->status, &rd->len);
    json_decref(body);
}

static void routes__read_done(struct reader_job *job, bool ran)
{
    struct route_read *rd = (struct route_read *)job;
    rd->answered(rd, ran);
}

int routes_read_start(const struct api_backend *b, struct route_read *rd,
                      void (*answered)(struct route_read *rd, bool ran), void *ctx)
{
    rd->job.work = routes__read_work;
    rd->job.done = routes__read_done;
    rd->answered = answered;
    rd->ctx = ctx;
    return reader_submit(b->reader, &rd->job);
}

void routes_read_free(struct route_read *rd)
{
    if (!rd)
        return;
    free(rd->text);
    free(rd);
}

char *routes_json_text(json_t *body, unsigned *status, size_t *len)
{
    static const char oom[] = "{\"error\":\"out of memory\"}\n";
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    size_t n = text ? strlen(text) : 0;
    char *buf = text ? realloc(text, n + 2) : NULL;
    if (!buf) {
        free(text);
        *status = 500;
        n = sizeof oom - 2;
        buf = malloc(sizeof oom);
        if (!buf)
            return NULL;
        memcpy(buf, oom, n);
    }
    buf[n++] = '\n';
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* A journal view: on the loop without a reader, else handed over in
 * out->read. */
static void routes__read(const struct route *r, const struct route_request *req, const char *arg,
                         struct route_reply *out)
{
    struct route_view q = {0};
    if ((out->status = r->query(req, arg, &q, &out->body)) != 0)
        return;
    if (!req->b->journal) {
        out->status = routes__error(&out->body, 500, "journal unavailable");
        return;
    }
    if (!req->b->reader) {
        out->status = routes__view_run(&q, req->b->journal, &out->body);
        if (r->cursor)
            routes__next(r, req, out, &(struct route_page){0});
        return;
    }
    struct route_read *rd = calloc(1, sizeof *rd);
    if (!rd) {
        out->status = routes__error(&out->body, 500, "out of memory");
        return;
    }
    rd->q = q;
    if (q.service)
        rd->q.service = rd->q.service_buf;
    if (r->cursor) {
        routes__link_prefix(r, req, rd->link_prefix, sizeof rd->link_prefix, &rd->page);
        rd->field = r->field;
    }
    out->read = rd;
}

/* Does path match pattern? The {} segment is copied into arg. */
static bool routes__match(const char *pattern, const char *path, char *arg, size_t arglen)
{
    arg[0] = '\0';
    while (*pattern && *path) {
        if (pattern[0] == '{' && pattern[1] == '}') {
            size_t n = strcspn(path, "/");
            if (n == 0 || n >= arglen)
                return false;
            memcpy(arg, path, n);
            arg[n] = '\0';
            pattern += 2;
            path += n;
        } else if (*pattern++ != *path++) {
            return false;
        }
    }
    return !*pattern && !*path;
}

/* 0 -> 200 with the service's view; an executor error -> its status. */
static unsigned routes__control_reply(const struct route_request *req, const char *name, int r,
                                      const char *err, json_t **body)
{
    if (r == -EBUSY)
        return routes__error(body, 409, "%s", err);
    if (r == -EINVAL)
        return routes__error(body, 400, "%s", err);
    if (r == -ENOENT)
        return routes__error(body, 404, "%s", err);
    if (r < 0)
        return routes__error(body, 500, "%s", strerror(-r));
    return routes__view(req->b->service(req->b->ctx, name), "service", body);
}

static unsigned routes__control(const struct route_request *req, const char *name,
                                enum api_control op, json_t **body)
{
    char err[256] = "";
    int r = req->b->control(req->b->ctx, name, op, err, sizeof err);
    return routes__control_reply(req, name, r, err, body);
}

static unsigned routes__hold(const struct route_request *req, const char *arg, json_t **body)
{
    return routes__control(req, arg, API_HOLD, body);
}

static unsigned routes__release(const struct route_request *req, const char *arg, json_t **body)
{
    return routes__control(req, arg, API_RELEASE, body);
}

static unsigned routes__restart(const struct route_request *req, const char *arg, json_t **body)
{
    return routes__control(req, arg, API_RESTART, body);
}

/* {"strategy": "restart"}: run that strategy for the fault's service. */
static unsigned routes__recover(const struct route_request *req, const char *arg, json_t **body)
{
    int64_t id;
    if (routes__parse_int(arg, 1, INT64_MAX, &id) < 0)
        return routes__error(body, 400, "fault id must be a positive integer, not '%s'", arg);
    json_error_t jerr;
    json_t *in = req->body_len ? json_loadb(req->body, req->body_len, 0, &jerr) : NULL;
    const char *name = in ? json_string_value(json_object_get(in, "strategy")) : NULL;
    if (!name) {
        json_decref(in);
        return routes__error(body, 400, "expected a JSON body like {\"strategy\": \"restart\"}");
    }
    char err[256] = "", service[64] = "";
    int r = req->b->recover(req->b->ctx, id, name, service, sizeof service, err, sizeof err);
    json_decref(in);
    return routes__control_reply(req, service, r, err, body);
}

/* Every query key must be one the route reads: a typo (?activ=1) is a 400,
 * not a silently unfiltered answer. */
static int routes__check_params(const struct route *r, const struct route_request *req,
                                json_t **body, unsigned *status)
{
    if (req->query_overflow) {
        *status = routes__error(body, 400, "too many query parameters (at most %d)",
                                ROUTES_MAX_QUERY);
        return -EINVAL;
    }
    for (size_t i = 0; i < req->n_query; i++) {
        const char *k = req->query[i].key;
        size_t n = strlen(k);
        const char *p = r->params;
        bool ok = false;
        while (*p && !ok) {
            size_t m = strcspn(p, ",");
            ok = m == n && n > 0 && strncmp(p, k, n) == 0;
            p += m + (p[m] == ',');
        }
        if (!ok) {
            *status = routes__error(body, 400, "unknown query parameter '%s'%s%s", k,
                                    *r->params ? "; accepted: " : "", r->params);
            return -EINVAL;
        }
    }
    return 0;
}

/* A mutating call without the right to act: over TCP the token is the
 * only way; over the Unix socket the peer's credentials are another. */
static void routes__unauthorized(const struct route_request *req, struct route_reply *out)
{
    if (req->local && !req->authorization)
        out->status = routes__error(&out->body, 403,
                                    "uid %ld may only read through this socket: acting needs "
                                    "root, recoverd's own user, the group '" API_GROUP
                                    "' or the token (Authorization: Bearer <state_dir/token>)",
                                    req->peer_uid);
    else
        out->status = routes__error(&out->body, 401,
                                    "missing or wrong token (expected "
                                    "Authorization: Bearer <the token in state_dir/token>)");
}

static void routes__allow_add(char *allow, size_t len, const char *method)
{
    size_t n = strlen(allow);
    snprintf(allow + n, len - n, "%s%s", n ? ", " : "", method);
    if (strcmp(method, "GET") == 0)
        routes__allow_add(allow, len, "HEAD");
}

void routes_dispatch(const struct route_request *req, struct route_reply *out)
{
    const char *method = strcmp(req->method, "HEAD") == 0 ? "GET" : req->method;
    const char *pattern = NULL; /* the first pattern the path matched */
    char arg[ROUTES__ARG_MAX];

    out->body = NULL;
    out->text = NULL;
    out->text_len = 0;
    out->allow[0] = '\0';
    out->link[0] = '\0';
    out->read = NULL;
    out->list = NULL;
    for (size_t i = 0; i < sizeof routes__table / sizeof *routes__table; i++) {
        const struct route *r = &routes__table[i];
        if (pattern ? strcmp(r->pattern, pattern) != 0
                    : !routes__match(r->pattern, req->path, arg, sizeof arg))
            continue;
        pattern = r->pattern;
        if (strcmp(r->method, method) != 0) {
            routes__allow_add(out->allow, sizeof out->allow, r->method);
            continue;
        }
        out->allow[0] = '\0';
        /* Events of this loop turn are still in the journal's batch: commit
         * them before reporting anything, so no answer shows what a kill -9
         * could still lose. This also makes the reader's read (begun after
         * this commit) see every event the loop handled before this
         * request: read-your-writes. Writes the disk refused stay out of
         * the answers until they are written; /v1/status says how many
         * wait. */
        struct journal *j = req->b->journal;
        if (j)
            journal_flush(j);
        if (r->mutating && !req->may_act && !token_authorizes(req->b->token, req->authorization)) {
            routes__unauthorized(req, out);
            return;
        }
        if (routes__check_params(r, req, &out->body, &out->status) != 0)
            return;
        if (r->query) {
            routes__read(r, req, arg, out);
            return;
        }
        struct route_page page = {0};
        out->status = r->fn ? r->fn(req, arg, &out->body) : r->text(req, out, &page);
        if (r->cursor)
            routes__next(r, req, out, &page);
        if (out->list)
            memcpy(out->list->link, out->link, sizeof out->link);
        return;
    }
    if (pattern)
        out->status = routes__error(&out->body, 405, "method %s not allowed on %s; allowed: %s",
                                    req->method, req->path, out->allow);
    else
        out->status = routes__error(&out->body, 404, "no such resource: %s", req->path);
}
