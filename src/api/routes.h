/* The API's resources: a table of (method, path pattern, handler) that turns
 * one request into an HTTP status and a JSON body. Free of HTTP framing, so
 * server.c only moves bytes. */
#ifndef RECOVERD_API_ROUTES_H
#define RECOVERD_API_ROUTES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct daemon;

#define ROUTES_MAX_QUERY 16      /* query arguments accepted in one request */
#define ROUTES_LIMIT_DEFAULT 100 /* rows when ?limit is absent */
#define ROUTES_LIMIT_MAX 10000   /* largest ?limit accepted */

struct route_query {
    const char *key;   /* decoded */
    const char *value; /* decoded; NULL for a bare "?key" */
};

struct route_request {
    struct daemon *d;                            /* state to answer from */
    const char *method;                          /* "GET", "POST", ... */
    const char *path;                            /* decoded path, without the query */
    struct route_query query[ROUTES_MAX_QUERY];  /* in request order */
    size_t n_query;                              /* entries used in query */
    bool query_overflow;                         /* more than ROUTES_MAX_QUERY were sent */
    const char *authorization;                   /* Authorization header; NULL if absent */
    const char *content_type;                    /* Content-Type header; NULL if absent */
    const char *body;                            /* request body, NOT NUL-terminated */
    size_t body_len;                             /* bytes in body (0: none sent) */
};

struct route_reply {
    unsigned status; /* HTTP status code */
    json_t *body;    /* object or array, owned by the caller; NULL only when out of memory */
    char allow[64];  /* the Allow header of a 405, "" otherwise */
};

/* Answer req into out. Never fails: every error becomes a status with
 * {"error": "..."}; the caller frees out->body with json_decref. */
void routes_dispatch(const struct route_request *req, struct route_reply *out);

#endif
