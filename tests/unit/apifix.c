/* The API tests' fixture (apifix.h). */
#include "apifix.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "config/config-t.h"
#include "lib/jsonw.h"
#include "store/journal.h"
#include "store/reader.h"

const char get_status[] = "GET /v1/status HTTP/1.1\r\n" HOST "\r\n";

/* ---- a fake backend over a real journal ------------------------------------------------ */

/* The API answers from a struct api_backend: the views and controls are
 * faked here, the journal is the real one. */
struct fake fake;

static json_t *fake_status(void *ctx)
{
    struct fake *f = ctx;
    if (!f->status_calls++) {
        f->slices_at_status = f->slices;
        f->rows_at_status = f->rows_written;
    }
    if (f->status_fails)
        return NULL;
    return json_pack("{s:s, s:s, s:i}", "name", "fake", "state", "normal", "services", 1);
}

/* "web" then services_more rows ("s0001"...): a page after "web" has
 * those, after any other name a 404. */
static int fake_services(void *ctx, const char *after, size_t limit, struct route_list *l,
                         struct route_page *page)
{
    struct fake *f = ctx;
    if (f->services_fails)
        return -ENOMEM;
    if (after && strcmp(after, "web") != 0)
        return -ENOENT;
    size_t n = 1 + f->services_more, first = after ? 1 : 0;
    if (limit && n - first > limit)
        n = first + limit;
    l->names = malloc(n * 8 + 1);
    assert_non_null(l->names);
    for (size_t i = first; i < n; i++) {
        char *at = l->names + l->len;
        l->len += (size_t)(i ? sprintf(at, "s%04zu", i) : sprintf(at, "web")) + 1;
        page->last = at;
        l->count++;
    }
    page->rows = l->count;
    return 0;
}

static void fake_row(struct fake *f, struct jsonw *w, const char *name)
{
    jsonw_object(w);
    jsonw_key(w, "name");
    jsonw_string(w, name);
    jsonw_key(w, "state");
    jsonw_string(w, "normal");
    if (f->services_pad && strcmp(name, "web") == 0) { /* a big view, as 1,000 services make */
        char *pad = malloc(f->services_pad + 1);
        assert_non_null(pad);
        memset(pad, 'p', f->services_pad);
        pad[f->services_pad] = '\0';
        jsonw_key(w, "pad");
        jsonw_string(w, pad);
        free(pad);
    }
    jsonw_object_end(w);
}

static void fake_services_slice(void *ctx, struct route_list *l, size_t n)
{
    struct fake *f = ctx;
    __atomic_add_fetch(&f->slices, 1, __ATOMIC_RELAXED); /* the client thread watches it */
    f->slice_rows_max = n > f->slice_rows_max ? n : f->slice_rows_max;
    if (f->services_held && !f->status_calls) {
        if (!f->held_ms)
            f->held_ms = now_ms();
        if (now_ms() - f->held_ms < 3000)
            return; /* the loop turns on without the listing */
    }
    for (size_t k = 0; k < n && l->next < l->len; k++) {
        const char *name = l->names + l->next;
        l->next += strlen(name) + 1;
        if (f->services_gone && strcmp(name, f->services_gone) == 0)
            continue;
        fake_row(f, &l->w, name);
        l->rows++;
        f->rows_written++;
    }
}

static json_t *fake_service(void *ctx, const char *name)
{
    if (strcmp(name, "web") != 0)
        return NULL;
    return json_pack("{s:s, s:s, s:n}", "name", "web", "state", "normal", "pid");
}

static int fake_control(void *ctx, const char *name, enum api_control op, char *err, size_t errlen)
{
    struct fake *f = ctx;
    f->controls_called++;
    snprintf(f->last_name, sizeof f->last_name, "%s", name);
    f->last_op = op;
    if (f->forced) {
        snprintf(err, errlen, "forced error");
        return f->forced;
    }
    if (strcmp(name, "web") != 0) {
        snprintf(err, errlen, "no such service: %s", name);
        return -ENOENT;
    }
    return op == API_RESTART ? (snprintf(err, errlen, "busy"), -EBUSY) : 0;
}

static int fake_recover(void *ctx, int64_t fault_id, const char *strategy, char *service,
                        size_t service_len, char *err, size_t errlen)
{
    struct fake *f = ctx;
    f->controls_called++;
    f->last_fault = fault_id;
    snprintf(f->last_strategy, sizeof f->last_strategy, "%s", strategy);
    snprintf(service, service_len, "%s", f->recover_service ? f->recover_service : "web");
    if (f->forced) {
        snprintf(err, errlen, "forced error");
        return f->forced;
    }
    return 0;
}

char tmp_dir[64];
struct journal *journal;
struct api_backend backend;
int64_t fault_ids[3]; /* web/http (open), db/tcp (resolved), web/process (open) */

static int64_t fault_add(const char *service, const char *check, uint64_t resolved_ms)
{
    struct fault f = {.type = FAULT_SOFTWARE,
                      .severity = SEVERITY_HIGH,
                      .impact = IMPACT_SERVICE,
                      .opened_ms = 1700000000000};
    snprintf(f.service, sizeof f.service, "%s", service);
    snprintf(f.check, sizeof f.check, "%s", check);
    snprintf(f.description, sizeof f.description, "%s %s failed", service, check);
    f.context = (char *)"{}"; /* a literal: never freed */
    assert_int_equal(journal_fault_open(journal, &f), 0);
    f.resolved_ms = resolved_ms;
    if (resolved_ms)
        assert_int_equal(journal_fault_resolve(journal, &f), 0);
    return f.id;
}

static void action_add(int64_t fault_id, const char *service)
{
    struct action a = {.fault_id = fault_id,
                       .strategy = STRATEGY_RESTART,
                       .status = ACTION_COMPLETED,
                       .created_ms = 1700000000100};
    a.service = service;
    a.params = (char *)"{}";
    assert_int_equal(journal_action_insert(journal, &a), 0);
}

/* Three faults, three actions (two of fault 0), three transitions. */
int setup(void **state)
{
    char err[256], path[128];
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/test_api.XXXXXX");
    assert_non_null(mkdtemp(tmp_dir));
    snprintf(path, sizeof path, "%s/journal.db", tmp_dir);
    journal = journal_open(path, err, sizeof err);
    if (!journal)
        fail_msg("journal_open: %s", err);
    fault_ids[0] = fault_add("web", "http", 0);
    fault_ids[1] = fault_add("db", "tcp", 1700000005000);
    fault_ids[2] = fault_add("web", "process", 0);
    action_add(fault_ids[0], "web");
    action_add(fault_ids[0], "web");
    action_add(fault_ids[1], "db");
    journal_transition(journal, "my db", STATE_NORMAL, STATE_DEGRADED, "check", 1700000000000);
    journal_transition(journal, "web", STATE_NORMAL, STATE_DEGRADED, "check", 1700000000000);
    journal_transition(journal, NULL, STATE_NORMAL, STATE_DEGRADED, "fault", 1700000000000);
    memset(&fake, 0, sizeof fake);
    backend = (struct api_backend){.journal = journal,
                                   .token = FAKE_TOKEN,
                                   .status = fake_status,
                                   .services = fake_services,
                                   .services_slice = fake_services_slice,
                                   .service = fake_service,
                                   .control = fake_control,
                                   .recover = fake_recover,
                                   .ctx = &fake};
    return 0;
}

int teardown(void **state)
{
    static const char *const files[] = {"journal.db", "journal.db-wal", "journal.db-shm"};
    char path[128];
    journal_free(journal);
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(path, sizeof path, "%s/%s", tmp_dir, files[i]);
        unlink(path);
    }
    rmdir(tmp_dir);
    return 0;
}

/* ---- the client thread ----------------------------------------------------------------- */

static size_t body_cb(char *p, size_t size, size_t n, void *arg)
{
    struct http_req *r = arg;
    size_t len = size * n;
    size_t room = sizeof r->body_in - 1 - r->body_len;
    size_t k = len < room ? len : room;
    memcpy(r->body_in + r->body_len, p, k);
    r->body_len += k;
    r->body_in[r->body_len] = '\0';
    return len;
}

void header_copy(const char *line, size_t len, const char *name, char *dst, size_t dlen)
{
    size_t n = strlen(name);
    if (len <= n || strncasecmp(line, name, n) != 0)
        return;
    line += n;
    len -= n;
    while (len && (*line == ' '))
        line++, len--;
    while (len && (line[len - 1] == '\r' || line[len - 1] == '\n'))
        len--;
    snprintf(dst, dlen, "%.*s", (int)len, line);
}

static size_t header_cb(char *p, size_t size, size_t n, void *arg)
{
    struct http_req *r = arg;
    header_copy(p, size * n, "Allow:", r->allow, sizeof r->allow);
    header_copy(p, size * n, "Content-Type:", r->content_type, sizeof r->content_type);
    header_copy(p, size * n, "Link:", r->link, sizeof r->link);
    return size * n;
}

static void http_do(CURL *c, unsigned port, struct http_req *r)
{
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", port, r->path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L); /* resets NOBODY and POSTFIELDS: set it first */
    curl_easy_setopt(c, CURLOPT_NOBODY, r->method && !strcmp(r->method, "HEAD") ? 1L : 0L);
    if (r->body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->body);
    char auth[160];
    struct curl_slist *hdrs = NULL;
    if (r->auth) {
        snprintf(auth, sizeof auth, "Authorization: %s", r->auth);
        hdrs = curl_slist_append(NULL, auth);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST,
                     r->method && strcmp(r->method, "HEAD") ? r->method : NULL);
    r->curl_err = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &r->connects);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdrs);
}

static void *client_main(void *arg)
{
    struct run *run = arg;
    if (run->client) {
        run->client(run);
        uv_async_send(&run->done);
        return NULL;
    }
    CURL *c = curl_easy_init();
    for (size_t i = 0; c && i < run->n; i++)
        http_do(c, run->port, &run->reqs[i]);
    curl_easy_cleanup(c);
    if (run->hold_socket) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(run->port)};
        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
        run->held_fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(run->held_fd, (struct sockaddr *)&sa, sizeof sa) == 0)
            (void)!write(run->held_fd, "GET /v1/sta", 11); /* half a request */
        usleep(100 * 1000);                                /* let the server accept it */
    }
    uv_async_send(&run->done);
    return NULL;
}

/* ---- the harness ----------------------------------------------------------------------- */

void addr_make(struct sockaddr_storage *ss, const char *ip, unsigned port)
{
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    memset(ss, 0, sizeof *ss);
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    assert_int_equal(inet_pton(AF_INET, ip, &in->sin_addr), 1);
}

/* An API on ip, port 0 (any), as the daemon would make it. */
struct api *api_make(uv_loop_t *loop, const char *ip, const struct api_options *opt, char *err,
                     size_t errlen)
{
    static const struct api_options none;
    struct api_cfg cfg = {0};
    addr_make(&cfg.listen, ip, 0);
    return api_new(loop, &backend, &cfg, opt ? opt : &none, err, errlen);
}

bool apifix_reader;

static void done_cb(uv_async_t *h)
{
    struct run *run = h->data;
    api_out_stats(run->api, &run->out);
    api_free(run->api);
    reader_free(backend.reader); /* NULL-safe */
    backend.reader = NULL;
    uv_close((uv_handle_t *)h, NULL);
}

/* Serve run->reqs from a fresh loop until the client is done, then free the
 * API and check that it left nothing in the loop. */
void run_serve(struct run *run)
{
    uv_loop_t loop;
    struct api_cfg cfg = {.hostnames = (char **)run->hostnames};
    struct api_options opt = {.socket_path = run->socket_path,
                              .tcp_max = run->tcp_max,
                              .out_max = run->out_max,
                              .group = run->group};
    char err[256] = "";
    pthread_t t;

    assert_int_equal(uv_loop_init(&loop), 0);
    addr_make(&cfg.listen, "127.0.0.1", 0);
    if (run->reader || apifix_reader) {
        char path[128];
        snprintf(path, sizeof path, "%s/journal.db", tmp_dir);
        backend.reader = reader_new(&loop, path, run->reader_max, err, sizeof err);
        if (!backend.reader)
            fail_msg("reader_new: %s", err);
    }
    run->api = api_new(&loop, &backend, &cfg, &opt, err, sizeof err);
    if (!run->api)
        fail_msg("api_new: %s", err);
    run->port = api_port(run->api);
    if (run->idle_ms || run->request_ms)
        api_set_timeouts(run->api, run->idle_ms ? run->idle_ms : 10000,
                         run->request_ms ? run->request_ms : 5000);
    if (run->stall_ms)
        api_set_stall(run->api, run->stall_ms);
    if (run->slice_rows || run->slice_one)
        api_set_slicing(run->api, run->slice_rows, run->slice_one ? 0 : 1500);
    assert_int_equal(uv_async_init(&loop, &run->done, done_cb), 0);
    run->done.data = run;
    if (run->on_start)
        run->on_start(run);
    assert_int_equal(pthread_create(&t, NULL, client_main, run), 0);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    pthread_join(t, NULL);
    assert_int_equal(uv_loop_close(&loop), 0);
}

void serve(struct http_req *reqs, size_t n)
{
    struct run run = {.reqs = reqs, .n = n};
    run_serve(&run);
}

/* The body as JSON, after checking the status and the JSON content type. */
json_t *answer(const struct http_req *r, long status)
{
    json_error_t e;
    assert_int_equal(r->curl_err, CURLE_OK);
    assert_int_equal(r->status, status);
    assert_string_equal(r->content_type, "application/json");
    json_t *v = json_loads(r->body_in, 0, &e);
    if (!v)
        fail_msg("not JSON (%s): %s", e.text, r->body_in);
    assert_true(json_is_object(v) || json_is_array(v));
    return v;
}

/* The "error" string of an error answer (static copy). */
const char *answer_error(const struct http_req *r, long status)
{
    static char msg[512];
    json_t *v = answer(r, status);
    const char *s = json_string_value(json_object_get(v, "error"));
    assert_non_null(s);
    snprintf(msg, sizeof msg, "%s", s);
    json_decref(v);
    return msg;
}

/* ---- raw clients: what curl will not send ---------------------------------------------- */

/* A blocking connection to the API whose reads give up after 5 s; small
 * rcvbuf/sndbuf (0: the default) make a client that reads or sends slowly. */
int raw_connect(unsigned port, int rcvbuf, int sndbuf)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    struct timeval tv = {.tv_sec = 5};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (rcvbuf)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (sndbuf)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Bytes sent before the end or an error. */
size_t raw_send(int fd, const char *p, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t k = send(fd, p + done, n - done, MSG_NOSIGNAL);
        if (k <= 0)
            break;
        done += (size_t)k;
    }
    return done;
}

void raw_send_str(int fd, const char *s)
{
    raw_send(fd, s, strlen(s));
}

/* One complete answer at buf (not for HEAD): its bytes, or 0 while incomplete. */
size_t answer_parse(const char *buf, size_t len, struct answer *a)
{
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    char cl[32] = "0";
    if (!end)
        return 0;
    memset(a, 0, sizeof *a);
    sscanf(buf, "HTTP/1.1 %d", &a->status);
    const char *line = (const char *)memchr(buf, '\n', (size_t)(end + 2 - buf)) + 1;
    while (line < end + 2) {
        const char *eol = memchr(line, '\r', (size_t)(end + 2 - line));
        header_copy(line, (size_t)(eol - line), "Content-Length:", cl, sizeof cl);
        header_copy(line, (size_t)(eol - line), "Connection:", a->connection, sizeof a->connection);
        header_copy(line, (size_t)(eol - line), "Allow:", a->allow, sizeof a->allow);
        line = eol + 2;
    }
    size_t head = (size_t)(end + 4 - buf);
    a->body_len = strtoul(cl, NULL, 10);
    if (len - head < a->body_len)
        return 0;
    size_t k = a->body_len < sizeof a->body - 1 ? a->body_len : sizeof a->body - 1;
    memcpy(a->body, end + 4, k);
    return head + a->body_len;
}

/* Read answers until want are complete, the server closes, or 5 s pass
 * without a byte; the first max go to out. Returns how many came;
 * *closed: the server closed (or reset) the connection. */
int raw_answers(int fd, struct answer *out, int max, int want, bool *closed)
{
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    int n = 0;
    *closed = false;
    while (n < want) {
        struct answer a;
        size_t used = answer_parse(buf, len, &a);
        if (used) {
            if (n < max)
                out[n] = a;
            n++;
            memmove(buf, buf + used, len - used);
            len -= used;
            continue;
        }
        if (len == cap)
            buf = realloc(buf, cap *= 2);
        ssize_t k = recv(fd, buf + len, cap - len, 0);
        if (k <= 0) {
            *closed = k == 0 || errno == ECONNRESET;
            break;
        }
        len += (size_t)k;
    }
    free(buf);
    return n;
}

/* The server closes fd (within 5 s) without sending anything more. */
bool raw_closed(int fd)
{
    char c;
    ssize_t k = recv(fd, &c, 1, 0);
    return k == 0 || (k < 0 && errno == ECONNRESET);
}

/* fd is still open and quiet (no EOF, no bytes) after 50 ms. */
bool raw_open(int fd)
{
    char c;
    usleep(50 * 1000);
    return recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) < 0 && errno == EAGAIN;
}

uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Send padded pipelined requests without reading any answer, until the
 * server stops taking them for 500 ms (FLOOD_MS at most). Returns how many
 * went out whole; *stalled: the server did stop. */
/* The server stops reading only once the kernel's buffers between the two
 * (autotuned up to megabytes) are full of answers: a few seconds of work
 * alone, much more on a starved host, where 10 s was seen to run out. */
#define FLOOD_MS 60000

long raw_flood_unread(int fd, bool *stalled)
{
    static char req[4200];
    int n = snprintf(req, sizeof req, "GET /v1/status HTTP/1.1\r\n" HOST "X-Pad: ");
    memset(req + n, 'p', 4000);
    memcpy(req + n + 4000, "\r\n\r\n", 5);
    size_t len = strlen(req), off = 0;
    long sent = 0;
    uint64_t start = now_ms(), last = start;
    *stalled = false;
    while (now_ms() - start < FLOOD_MS) {
        ssize_t k = send(fd, req + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k > 0) {
            off += (size_t)k;
            sent += off == len;
            off = off == len ? 0 : off;
            last = now_ms();
        } else if (now_ms() - last > 500) {
            *stalled = true;
            break;
        } else {
            usleep(1000);
        }
    }
    return sent;
}
