/* The fixture of the API's tests (test_api, test_api_doors): a fake
 * api_backend over a real journal, the API served from a loop on the main
 * thread while a client thread asks it, with libcurl or raw bytes. */
#ifndef RECOVERD_TESTS_APIFIX_H
#define RECOVERD_TESTS_APIFIX_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <uv.h>

#include "api/api.h"
#include "api/routes.h"

#define HOST "Host: 127.0.0.1\r\n" /* a raw request's Host header, one the API accepts */
#define FAKE_TOKEN "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* What the fake backend was asked, and how it answers. */
struct fake {
    bool status_fails;           /* status returns NULL */
    bool services_fails;         /* services returns NULL */
    int controls_called;         /* control/recover calls that got past the token check */
    char last_name[64];          /* control: the service named */
    enum api_control last_op;    /* control: the operation */
    int64_t last_fault;          /* recover: the fault id */
    char last_strategy[32];      /* recover: the strategy name */
    int forced;                  /* nonzero: control/recover return this with "forced error" */
    const char *recover_service; /* the service recover names; NULL: "web" */
    size_t services_pad;         /* nonzero: the first page's row is this many bytes longer */
    size_t services_more;        /* rows after "web": "s0001", "s0002", ... */
    const char *services_gone;   /* a name of those whose service is gone when its slice comes */
    bool services_held;          /* slices write nothing until status was asked (3 s at most) */
    int status_calls;            /* status views made */
    unsigned slices;             /* services_slice calls */
    size_t slices_at_status;     /* slices when status was first asked */
    size_t rows_written;         /* rows services_slice wrote */
    size_t slice_rows_max;       /* the most names one services_slice call was asked for */
    size_t rows_at_status;       /* rows written when status was first asked */
    uint64_t held_ms;            /* when services_held first held a slice (now_ms) */
};

struct http_req {
    const char *method;    /* NULL: GET */
    const char *path;      /* with the query */
    const char *body;      /* sent with the request when not NULL */
    const char *auth;      /* Authorization header when not NULL */
    long status;           /* answer: HTTP status, 0 when the request failed */
    CURLcode curl_err;     /* answer: CURLE_OK unless the transfer failed */
    char allow[64];        /* answer: Allow header */
    char content_type[64]; /* answer: Content-Type header */
    char link[512];        /* answer: Link header */
    char body_in[4096];    /* answer: body */
    size_t body_len;       /* bytes in body_in */
    long connects;         /* answer: new connections made (0: kept alive) */
};

struct run {
    struct http_req *reqs; /* done in order on one connection (keep-alive) */
    size_t n;
    unsigned port;                /* the API's */
    bool hold_socket;             /* leave an idle raw connection open at the end */
    int held_fd;                  /* that connection, closed by the test */
    void (*client)(struct run *); /* run in the client thread instead of reqs */
    void *ctx;                    /* the client's results, checked by the test afterwards */
    uint64_t idle_ms;             /* api_set_timeouts; 0: the default */
    uint64_t request_ms;          /* api_set_timeouts; 0: the default */
    uint64_t stall_ms;            /* api_set_stall; 0: the default */
    size_t slice_rows;            /* api_set_slicing; 0: the default */
    bool slice_one;               /* api_set_slicing: one slice a loop turn */
    unsigned tcp_max;             /* api_options.tcp_max; 0: the default */
    size_t out_max;               /* api_options.out_max; 0: the default */
    struct api_out_stats out;     /* the API's, when the client was done */
    char *const *hostnames;       /* api.hostnames; NULL: the default */
    const char *socket_path;      /* the Unix socket; NULL: none */
    const char *group;            /* api_options.group; NULL: the default */
    struct api *api;
    uv_async_t done; /* the client is finished: stop the API */
    /* The journal's reads: through a reader on the serving loop when the
     * program runs with --reader (apifix_reader) or reader is set. */
    bool reader;
    unsigned reader_max;            /* reader_new's max_jobs; 0: the default */
    void (*on_start)(struct run *); /* on the loop's thread, before the client starts */
};

extern bool apifix_reader; /* every run_serve reads the journal through a reader */

struct answer {
    int status;          /* 0: none */
    char connection[16]; /* Connection header */
    char allow[64];      /* Allow header */
    char body[512];      /* start of the body, NUL-terminated */
    size_t body_len;     /* Content-Length */
};

extern struct fake fake;
extern char tmp_dir[64];           /* the test's own directory (journal.db in it) */
extern struct journal *journal;    /* the real journal behind the fake views */
extern struct api_backend backend; /* the fake views and controls */
extern int64_t fault_ids[3];       /* web/http (open), db/tcp (resolved), web/process (open) */
extern const char get_status[];    /* a raw GET /v1/status with HOST */

/* cmocka setup: three faults, three actions (two of fault 0), three
 * transitions in a fresh journal; teardown removes them. */
int setup(void **state);
int teardown(void **state);

void addr_make(struct sockaddr_storage *ss, const char *ip, unsigned port);
/* An API on ip, port 0 (any), as the daemon would make it (opt NULL: none). */
struct api *api_make(uv_loop_t *loop, const char *ip, const struct api_options *opt, char *err,
                     size_t errlen);
/* Serve from a fresh loop until run's client is done, then free the API
 * and check that it left nothing in the loop. */
void run_serve(struct run *run);
/* run_serve of n curl requests in turn on one connection. */
void serve(struct http_req *reqs, size_t n);
/* The body as JSON (new reference), after checking the status and the
 * JSON content type. */
json_t *answer(const struct http_req *r, long status);
/* The "error" string of an error answer (static copy). */
const char *answer_error(const struct http_req *r, long status);
/* Copy the value of header line [0..len) into dst when it is name ("Allow:"). */
void header_copy(const char *line, size_t len, const char *name, char *dst, size_t dlen);

/* A blocking connection to the API whose reads give up after 5 s; small
 * rcvbuf/sndbuf (0: the default) make a client that reads or sends slowly. */
int raw_connect(unsigned port, int rcvbuf, int sndbuf);
/* Bytes sent before the end or an error. */
size_t raw_send(int fd, const char *p, size_t n);
void raw_send_str(int fd, const char *s);
/* One complete answer at buf (not for HEAD): its bytes, or 0 while incomplete. */
size_t answer_parse(const char *buf, size_t len, struct answer *a);
/* Read answers until want are complete, the server closes, or 5 s pass
 * without a byte; the first max go to out. Returns how many came;
 * *closed: the server closed (or reset) the connection. */
int raw_answers(int fd, struct answer *out, int max, int want, bool *closed);
/* The server closes fd (within 5 s) without sending anything more. */
bool raw_closed(int fd);
/* fd is still open and quiet (no EOF, no bytes) after 50 ms. */
bool raw_open(int fd);
uint64_t now_ms(void); /* CLOCK_MONOTONIC, ms */
/* Send padded pipelined requests without reading any answer, until the
 * server stops taking them for 500 ms (10 s at most). Returns how many
 * went out whole; *stalled: the server did stop. */
long raw_flood_unread(int fd, bool *stalled);

#endif
