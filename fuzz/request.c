/* libFuzzer target: the API's request parser (api/request.c), fed as the
 * server feeds it: a buffer of exactly the bytes received, pipelined
 * requests one after the other, and the same bytes arriving in two parts.
 * Properties: a request incomplete so far leaves the buffer untouched and
 * does not change its framing when the rest arrives (else two readings of
 * one stream could disagree on where a request ends); every string it
 * hands the routes is NUL-terminated inside the buffer. */
#include <string.h>

#include "api/request.h"
#include "fuzz.h"

static void in_buffer(const char *s, const char *buf, size_t len)
{
    if (!s)
        return;
    FUZZ_CHECK(s >= buf && s < buf + len);
    FUZZ_CHECK(memchr(s, '\0', (size_t)(buf + len - s)) != NULL);
}

/* The route's view of a complete request: every string inside buf. */
static void check_complete(const struct request *rq, const char *buf, size_t len)
{
    const struct route_request *rt = &rq->route;
    FUZZ_CHECK(rq->head_len > 0 && rq->head_len <= rq->size && rq->size <= len);
    FUZZ_CHECK(rt->method && rt->path);
    in_buffer(rt->method, buf, len);
    if (strcmp(rt->path, "/") != 0) /* "/" of a bare absolute form is a literal */
        in_buffer(rt->path, buf, len);
    in_buffer(rt->authorization, buf, len);
    in_buffer(rt->content_type, buf, len);
    FUZZ_CHECK(rt->n_query <= ROUTES_MAX_QUERY);
    for (size_t i = 0; i < rt->n_query; i++) {
        in_buffer(rt->query[i].key, buf, len);
        in_buffer(rt->query[i].value, buf, len);
    }
    FUZZ_CHECK(rt->body_len == rq->size - rq->head_len);
    FUZZ_CHECK(!rt->body_len || rt->body == buf + rq->head_len);
}

/* Parse the requests in buf[0..len) one after the other, as the server does. */
static void parse_all(char *buf, size_t len)
{
    size_t used = 0;
    while (used < len) {
        struct request rq;
        int r = request_parse(&rq, buf + used, len - used);
        if (r <= 0) {
            FUZZ_CHECK(r == 0 || rq.error);
            break;
        }
        FUZZ_CHECK((size_t)r == rq.size);
        check_complete(&rq, buf + used, len - used);
        used += (size_t)r;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Exactly sized copies: a read past what was received is an ASan report. */
    char *whole = malloc(size ? size : 1);
    memcpy(whole, data, size);
    parse_all(whole, size);
    free(whole);

    /* The first request's bytes in two parts: the first part alone. */
    size_t k = size ? (size_t)(fuzz_hash(data, size) % size) : 0;
    char *part = malloc(k ? k : 1);
    memcpy(part, data, k);
    struct request rq_part;
    int r_part = request_parse(&rq_part, part, k);
    if (r_part == 0)
        FUZZ_CHECK(memcmp(part, data, k) == 0); /* parsed again when more comes */
    free(part);

    char *again = malloc(size ? size : 1);
    memcpy(again, data, size);
    struct request rq_full;
    int r_full = size ? request_parse(&rq_full, again, size) : 0;
    if (r_part > 0)
        FUZZ_CHECK(r_full == r_part); /* more bytes never move the end of a request */
    if (r_part < 0)
        FUZZ_CHECK(r_full < 0); /* nor make a refused start acceptable */
    if (r_part == 0 && rq_part.size && r_full >= 0)
        FUZZ_CHECK(r_full == 0 || (size_t)r_full == rq_part.size); /* head in: size known */
    free(again);
    return 0;
}
