/* A strict HTTP/1.1 response parser (RFC 9112), fed bytes as they arrive:
 * it buffers one head line at most, keeps the head of the body in the
 * caller's buffer and names what is malformed. lib/http-client.c reads
 * every http:// answer (checks and webhooks) with it. */
#ifndef RECOVERD_LIB_HTTP_RESPONSE_H
#define RECOVERD_LIB_HTTP_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_RESPONSE_HEAD_MAX                                                                     \
    16384                          /* bytes of head: status lines and headers of the final         \
                                      and interim answers together; trailers again */
#define HTTP_RESPONSE_LINE_MAX 512 /* bytes of a head line kept; the rest is checked, not kept */
#define HTTP_RESPONSE_LENGTH_DIGITS 18 /* digits of a Content-Length (< 10^18 bytes) */
#define HTTP_RESPONSE_CHUNK_DIGITS 15  /* hex digits of a chunk size (< 2^60 bytes) */

/* What can be wrong with a response, and its words. */
#define HTTP_RESPONSE_ERROR_MAP(X)                                                                 \
    X(NONE, "no error")                                                                            \
    X(STATUS_LINE, "not an HTTP/1.x status line")                                                  \
    X(CONTROL, "control character in the head")                                                    \
    X(BARE_CR, "CR not followed by LF")                                                            \
    X(HEADER, "malformed header line")                                                             \
    X(HEADER_SPACE, "space between a header name and its colon")                                   \
    X(FOLD, "folded line where a header must start")                                               \
    X(HEAD_SIZE, "headers over 16 KiB")                                                            \
    X(CONTENT_LENGTH, "bad Content-Length")                                                        \
    X(LENGTH_CONFLICT, "conflicting Content-Length")                                               \
    X(TRANSFER_ENCODING, "bad Transfer-Encoding")                                                  \
    X(LENGTH_AND_ENCODING, "both Content-Length and Transfer-Encoding")                            \
    X(ENCODING_HTTP10, "Transfer-Encoding in an HTTP/1.0 response")                                \
    X(SWITCHING, "unrequested 101 Switching Protocols")                                            \
    X(CHUNK_SIZE, "bad chunk size")                                                                \
    X(CHUNK_END, "chunk not followed by CRLF")                                                     \
    X(EMPTY, "empty reply")                                                                        \
    X(TRUNCATED, "connection closed mid-response")

enum http_response_error {
#define X(e, s) HTTP_RESPONSE_E_##e,
    HTTP_RESPONSE_ERROR_MAP(X)
#undef X
};

/* Where the next byte belongs in the grammar. */
enum http_response_phase {
    HTTP_RESPONSE_STATUS,     /* status line */
    HTTP_RESPONSE_HEADER,     /* header lines up to the empty line */
    HTTP_RESPONSE_BODY,       /* Content-Length bytes */
    HTTP_RESPONSE_CHUNK_SIZE, /* chunk-size line */
    HTTP_RESPONSE_CHUNK_DATA, /* chunk bytes */
    HTTP_RESPONSE_CHUNK_END,  /* the CRLF after chunk bytes */
    HTTP_RESPONSE_TRAILER,    /* trailer lines up to the empty line */
    HTTP_RESPONSE_TO_EOF,     /* body delimited by the server closing */
    HTTP_RESPONSE_DONE,       /* complete (or stopped after the head) */
};

/* One response being read. status, error and body_len are for the caller
 * to read; the rest is the parser's. */
struct http_response {
    int status;                        /* 100..599 of the answer being read; 0 before its line */
    enum http_response_error error;    /* what was malformed; NONE while all is well */
    size_t body_len;                   /* bytes of the body kept at keep */
    uint64_t got;                      /* bytes consumed, interim answers included */
    char *keep;                        /* the caller's buffer for the head of the body; borrowed */
    size_t keep_cap;                   /* bytes at keep; 0: nothing kept */
    bool head_only;                    /* done at the end of the final head: the body is not read */
    enum http_response_phase phase;    /* where the next byte belongs */
    bool http10;                       /* HTTP/1.0: the connection closes unless keep-alive */
    bool close;                        /* Connection: close */
    bool keep_alive;                   /* Connection: keep-alive */
    bool chunked;                      /* Transfer-Encoding ends in chunked */
    bool encoded;                      /* Transfer-Encoding seen */
    bool have_len;                     /* Content-Length seen (value in left) */
    bool framing;                      /* the last header was Content-Length or Transfer-Encoding */
    bool cr;                           /* the line so far ends in CR: only LF may follow */
    uint64_t left;                     /* bytes still due: of the body or of the chunk */
    size_t head;                       /* bytes of head (or trailer) lines so far */
    size_t line_len;                   /* bytes in line */
    bool line_long;                    /* the current line did not fit and was cut */
    char line[HTTP_RESPONSE_LINE_MAX]; /* the head line being assembled, NUL-terminated */
};

/* What http_response_feed says. */
#define HTTP_RESPONSE_MORE 0     /* every byte taken; the response goes on */
#define HTTP_RESPONSE_COMPLETE 1 /* complete after *used bytes; the rest is another's */

/* Start reading a response. keep (keep_cap bytes, may be NULL with 0)
 * receives the first bytes of the body, without chunk framing. head_only:
 * complete at the end of the final head (the body is the caller's to skip,
 * so the connection cannot be reused). */
void http_response_init(struct http_response *r, char *keep, size_t keep_cap, bool head_only);

/* Feed n received bytes: HTTP_RESPONSE_MORE, HTTP_RESPONSE_COMPLETE (with
 * *used <= n bytes consumed), or -EPROTO with r->error set; an error stays. */
int http_response_feed(struct http_response *r, const char *d, size_t n, size_t *used);

/* The peer closed: HTTP_RESPONSE_COMPLETE if that ends the response (a body
 * without length), else -EPROTO with r->error EMPTY (not a byte came) or
 * TRUNCATED. */
int http_response_eof(struct http_response *r);

/* A complete response after which the connection may carry the next
 * request: length-delimited, not HTTP/1.0 (unless keep-alive), no close. */
bool http_response_reusable(const struct http_response *r);

/* The words of an error, e.g. "bad chunk size". */
const char *http_response_error_str(enum http_response_error e);

#endif
