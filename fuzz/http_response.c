/* libFuzzer target: the HTTP/1.1 response parser (lib/http-response.c)
 * that reads every http:// answer. The same bytes are fed twice: at once,
 * and in pieces of sizes drawn from the input (as a socket delivers them).
 * Properties: both readings agree on everything (status, verdict, error,
 * bytes used, body kept), what is kept fits the caller's buffer, and an
 * error stays. */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "lib/http-response.h"

struct reading {
    int rc;                            /* last feed or eof verdict */
    size_t used;                       /* bytes consumed in total */
    struct http_response r;            /* the parser at the end */
    char keep[HTTP_RESPONSE_LINE_MAX]; /* the caller's body buffer */
};

/* Feed data in pieces (piece 0: all at once), then the peer's close if the
 * response is not complete by the end. */
static void read_response(struct reading *rd, const uint8_t *data, size_t size, size_t keep_cap,
                          bool head_only, uint64_t piece_seed)
{
    uint64_t s = piece_seed;
    memset(rd, 0, sizeof *rd);
    http_response_init(&rd->r, keep_cap ? rd->keep : NULL, keep_cap, head_only);
    size_t off = 0;
    rd->rc = HTTP_RESPONSE_MORE;
    while (off < size && rd->rc == HTTP_RESPONSE_MORE) {
        size_t n = size - off, used = 0;
        if (piece_seed)
            n = 1 + (size_t)(fuzz_next(&s) % (n < 64 ? n : 64));
        rd->rc = http_response_feed(&rd->r, (const char *)data + off, n, &used);
        FUZZ_CHECK(used <= n);
        FUZZ_CHECK(rd->rc != HTTP_RESPONSE_MORE || used == n);
        FUZZ_CHECK(rd->r.body_len <= keep_cap);
        off += used;
    }
    rd->used = off;
    if (rd->rc == HTTP_RESPONSE_MORE)
        rd->rc = http_response_eof(&rd->r);
    FUZZ_CHECK(rd->rc == HTTP_RESPONSE_COMPLETE || rd->rc == -EPROTO);
    FUZZ_CHECK((rd->rc == -EPROTO) == (rd->r.error != HTTP_RESPONSE_E_NONE));
    if (rd->rc == -EPROTO) { /* an error stays */
        size_t used = 0;
        FUZZ_CHECK(http_response_feed(&rd->r, "HTTP/1.1 200 OK\r\n", 17, &used) == -EPROTO);
        FUZZ_CHECK(http_response_eof(&rd->r) == -EPROTO);
    }
    FUZZ_CHECK(http_response_error_str(rd->r.error) != NULL);
    (void)http_response_reusable(&rd->r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct reading once, pieces; /* big: off the stack */
    uint64_t h = fuzz_hash(data, size) | 1;
    size_t keep_cap = (size_t)(h >> 8) % 3 == 0 ? 0 : (size_t)(h >> 16) % sizeof once.keep;
    bool head_only = (h >> 32) % 8 == 0;
    read_response(&once, data, size, keep_cap, head_only, 0);
    read_response(&pieces, data, size, keep_cap, head_only, h);
    FUZZ_CHECK(once.rc == pieces.rc);
    FUZZ_CHECK(once.r.error == pieces.r.error);
    FUZZ_CHECK(once.r.status == pieces.r.status);
    FUZZ_CHECK(once.rc == -EPROTO || once.used == pieces.used);
    FUZZ_CHECK(once.r.body_len == pieces.r.body_len);
    FUZZ_CHECK(memcmp(once.keep, pieces.keep, once.r.body_len) == 0);
    FUZZ_CHECK(http_response_reusable(&once.r) == http_response_reusable(&pieces.r));
    return 0;
}
