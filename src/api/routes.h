/* The API's resources: a table of (method, path pattern, handler) that turns
 * one request into an HTTP status and a JSON body. Free of HTTP framing, so
 * server.c only moves bytes. */
#ifndef RECOVERD_API_ROUTES_H
#define RECOVERD_API_ROUTES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/jsonw.h"
#include "store/reader.h"

struct journal;

#define ROUTES_LINK_MAX 512 /* bytes of a Link header's value */

#define API_GROUP "recoverd" /* members may act through the Unix socket without the token */

enum api_control { API_HOLD, API_RELEASE, API_RESTART };

/* A page of a list that a view wrote as text: what its Link needs. */
struct route_page {
    size_t rows;      /* rows written */
    const char *last; /* the last row's cursor field (a name); borrowed for the request */
};

/* GET /v1/services written in slices, a few rows per loop turn (the
 * server's), so that a listing of 1,000 services (441 KB) never holds the
 * loop. The rows' names are copied when the request is answered and each
 * one is looked up again when its slice comes: a service removed (by a
 * reload) before its slice is left out, one added after the request is
 * not in it, every row is its service as it was when written, and no
 * slice reads a service that is gone. The text is one JSON array. */
struct route_list {
    char *names;                /* the rows' names, each NUL-terminated, one after another; owned */
    size_t len;                 /* bytes at names */
    size_t count;               /* names at names */
    size_t next;                /* offset in names of the next row's name */
    size_t rows;                /* rows written (a name whose service is gone writes none) */
    struct jsonw w;             /* the text so far; the server may lend it a buffer */
    char link[ROUTES_LINK_MAX]; /* the page's Link header's value, "" when none */
};

/* What the API answers from, handed over by the composition root: the
 * journal for history, the live views and the operator's controls. */
struct api_backend {
    struct journal *journal;      /* borrowed */
    struct reader *reader;        /* journal reads go there; NULL: on the loop. borrowed */
    const char *token;            /* the mutating calls' bearer token; borrowed */
    json_t *(*status)(void *ctx); /* new reference */
    /* The names of the services a listing shows, in their order, into l
     * (names, len, count): every one, or from the one after `after`
     * (NULL: the first) at most limit (0: no limit), with what the page's
     * link needs in *page (last points into l->names). 0, -ENOENT (after
     * names no service) or -ENOMEM. */
    int (*services)(void *ctx, const char *after, size_t limit, struct route_list *l,
                    struct route_page *page);
    /* The views of the services named in l from l->next on, at most n
     * names, as rows into l->w (a name no service has now writes none);
     * l->next moves past the names taken. Written straight as text: at
     * 1,000 services a jansson tree per request cost ten times more. */
    void (*services_slice)(void *ctx, struct route_list *l, size_t n);
    json_t *(*service)(void *ctx, const char *name); /* NULL: no such service */
    /* 0, or -ENOENT (no such service), -EBUSY, -EINVAL with words in err. */
    int (*control)(void *ctx, const char *name, enum api_control op, char *err, size_t len);
    /* Run strategy (by name) for open fault id; service receives the
     * fault's service. 0 or -ENOENT / -EBUSY / -EINVAL with words in err. */
    int (*recover)(void *ctx, int64_t fault_id, const char *strategy, char *service,
                   size_t service_len, char *err, size_t len);
    void *ctx;
};

#define ROUTES_MAX_QUERY 16      /* query arguments accepted in one request */
#define ROUTES_LIMIT_DEFAULT 100 /* rows when ?limit is absent */
#define ROUTES_LIMIT_MAX 10000   /* largest ?limit accepted */

struct route_query {
    const char *key;   /* decoded */
    const char *value; /* decoded; NULL for a bare "?key" */
};

struct route_request {
    const struct api_backend *b;                /* state to answer from */
    const char *method;                         /* "GET", "POST", ... */
    const char *path;                           /* decoded path, without the query */
    struct route_query query[ROUTES_MAX_QUERY]; /* in request order */
    size_t n_query;                             /* entries used in query */
    bool query_overflow;                        /* more than ROUTES_MAX_QUERY were sent */
    const char *authorization;                  /* Authorization header; NULL if absent */
    bool may_act;  /* the peer may make mutating calls without the token (a Unix-socket peer
                    * that is root, recoverd's own user or in the group API_GROUP) */
    bool local;    /* came through the Unix socket (zero: TCP) */
    long peer_uid; /* local: the peer's uid, -1 when unknown */
    const char *content_type; /* Content-Type header; NULL if absent */
    const char *body;         /* request body, NOT NUL-terminated */
    size_t body_len;          /* bytes in body (0: none sent) */
};

/* What a journal view reads: the request, parsed and checked on the loop. */
struct route_view {
    int view; /* which one: routes.c's */
    bool active;
    int64_t id, before;
    size_t limit;
    const char *service; /* NULL: all; else points into service_buf */
    char service_buf[256];
};

/* A journal read the reader runs (store/reader.h): parsed on the loop, the
 * query and its JSON text made on the reader's thread, so that the loop
 * only writes bytes. */
struct route_read {
    struct reader_job job; /* the reader's */
    struct route_view q;
    char link_prefix[ROUTES_LINK_MAX]; /* a list's next link up to the cursor; "": no list */
    int64_t page;                      /* the page's rows: a full page has a next one */
    const char *field;                 /* the row field the cursor takes */
    /* The answer, set before answered runs: */
    unsigned status;
    char *text; /* JSON text and a newline; owned until taken */
    size_t len;
    char link[ROUTES_LINK_MAX]; /* the Link header's value, "" when none */
    /* The server's: called on the loop once the answer is there (ran
     * false: the reader closed before running it). */
    void (*answered)(struct route_read *rd, bool ran);
    void *ctx; /* the server's connection; NULL once it went away */
};

struct route_reply {
    unsigned status; /* HTTP status code */
    json_t *body;    /* object or array, owned by the caller; NULL when text is set, or out of
                      * memory */
    char *text;      /* the body as JSON text and a newline, when a view wrote it as text;
                      * owned by the caller (free); NULL otherwise */
    size_t text_len; /* bytes at text */
    char allow[64];  /* the Allow header of a 405, "" otherwise */
    char link[ROUTES_LINK_MAX]; /* a list's Link header: <next page>; rel="next", "" otherwise */
    /* Not NULL: a journal read for the reader (b->reader set), owned by
     * the caller, which starts it with routes_read_start; status, body
     * and link are then unset. */
    struct route_read *read;
    /* Not NULL: a listing the caller writes with routes_list_step, owned
     * by the caller (routes_list_free); status is 200, body and text are
     * unset, link is also in list->link. */
    struct route_list *list;
};

/* Answer req into out. Never fails: every error becomes a status with
 * {"error": "..."}; the caller frees out->body with json_decref and
 * out->text with free. */
void routes_dispatch(const struct route_request *req, struct route_reply *out);
/* Queue rd on b's reader; answered(rd, ran) runs on the loop once done.
 * 0, or -EAGAIN (too many reads wait) / -ECANCELED (stopping): rd is not
 * queued, the caller answers 503 and frees it. */
int routes_read_start(const struct api_backend *b, struct route_read *rd,
                      void (*answered)(struct route_read *rd, bool ran), void *ctx);
void routes_read_free(struct route_read *rd); /* NULL-safe */
/* Write up to n more rows of l into l->w; true once l->w holds the whole
 * array (check l->w.failed: out of memory). */
bool routes_list_step(const struct api_backend *b, struct route_list *l, size_t n);
void routes_list_free(struct route_list *l); /* NULL-safe; frees l->w's buffer too */
/* The JSON text of body and a newline (curl at a terminal then leaves the
 * prompt on its own line), malloc'd, its length in *len; *status becomes
 * 500 when it cannot be made. NULL only when out of memory. */
char *routes_json_text(json_t *body, unsigned *status, size_t *len);

#endif
