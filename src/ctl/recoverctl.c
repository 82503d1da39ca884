/* recoverctl: the operator's view of a running recoverd, through its HTTP
 * API only (never the daemon's internals). */
#include <assert.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl/table.h"
#include "lib/statedir.h"

#define CTL_DEFAULT_API "127.0.0.1:7411"
#define CTL_TOKEN_DEFAULT_HELP                                                                     \
    "/var/lib/recoverd/token for root, else\n"                                                     \
    "                       $XDG_STATE_HOME/recoverd/token or ~/.local/state/recoverd/token"
#define CTL_GROUP "recoverd"       /* may act through the socket without a token (API_GROUP) */
#define CTL_TIMEOUT_MS 5000L       /* whole request, connect included */
#define CTL_MAX_ANSWER (64u << 20) /* bytes of an answer we are willing to hold */
#define CTL_TOKEN_MAX 1024         /* bytes of a token file we read */
#define CTL_MAX_ARGS 2             /* positional arguments of a command */
#define CTL_API_MAX 256            /* bytes of a HOST:PORT */
#define CTL_PATH_MAX 1024          /* bytes of a request's path and query */

/* Exit codes (documented in --help). */
enum { CTL_OK = 0, CTL_API_ERROR = 1, CTL_USAGE = 2, CTL_UNREACHABLE = 3 };

/* Options a command may accept. */
enum { OPT_ACTIVE = 1, OPT_FAULT = 2, OPT_SERVICE = 4, OPT_LIMIT = 8, OPT_BEFORE = 16 };

struct ctl {
    const char *socket;     /* the API's Unix socket; NULL: TCP */
    const char *api;        /* HOST:PORT of the API; NULL: the socket only */
    bool fallback;          /* the socket is the default one: if nothing answers there, TCP */
    bool token_given;       /* --token-file or $RECOVERD_TOKEN_FILE: the token is wanted */
    bool json;              /* print the API's JSON instead of tables */
    unsigned given;         /* OPT_* given on the command line */
    const char *fault;      /* --fault ID */
    const char *service;    /* --service NAME */
    const char *limit;      /* --limit N */
    const char *before;     /* --before ID: the page of rows older than ID */
    const char *token_file; /* --token-file PATH, else $RECOVERD_TOKEN_FILE, else the default
                             * state_dir's (recoverd's own default); NULL: none known */
    char token[CTL_TOKEN_MAX + 1];  /* its content without the trailing newline */
    const char *args[CTL_MAX_ARGS]; /* the command's positional arguments */
    CURL *curl;                     /* one handle: status then services reuse the connection */
    char socket_buf[4096];          /* the default socket's path */
    char socket_short[108];         /* what curl is given: the path, or its short form */
};

struct ctl_cmd {
    const char *name;
    const char *args; /* positional argument names ("ID STRATEGY"), or NULL */
    unsigned opts;    /* OPT_* accepted */
    bool post;        /* a mutating call: POST with the token */
    int (*path)(struct ctl *c, const char *arg, char *buf, size_t len);
    int (*print)(struct ctl *c, const json_t *v);
    const char *help;
};

/* ---- talking to the API ---------------------------------------------------------------- */

/* recoverd's Unix socket in state_dir (daemon/daemon.c makes it there). */
static void ctl_socket_path(const char *state_dir, char *buf, size_t len)
{
    snprintf(buf, len, "%s/api.sock", state_dir);
}

/* curl takes a socket path of at most 107 bytes, like the kernel: a longer
 * one is reached through its directory, held open for the run, as
 * /proc/self/fd/N/NAME (made once). The path itself when it fits or that
 * fails. */
static const char *ctl__socket_short(struct ctl *c, const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    int fd;
    if (c->socket_short[0])
        return c->socket_short;
    if (strlen(path) < sizeof c->socket_short || !slash || slash - path >= (long)sizeof dir)
        return path;
    snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    if ((fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
        return path;
    if ((size_t)snprintf(c->socket_short, sizeof c->socket_short, "/proc/self/fd/%d/%s", fd,
                         slash + 1) >= sizeof c->socket_short) {
        c->socket_short[0] = '\0';
        close(fd);
        return path;
    }
    return c->socket_short; /* fd stays open until exit: the name refers to it */
}

/* One transfer of the request set up on c->curl, through the socket or TCP. */
static CURLcode ctl__perform(struct ctl *c, const char *path, char *errbuf)
{
    char url[CTL_API_MAX + CTL_PATH_MAX + 16]; /* both bounded: never cut */
    snprintf(url, sizeof url, "http://%s%s", c->socket ? "localhost" : c->api, path);
    curl_easy_setopt(c->curl, CURLOPT_URL, url);
    curl_easy_setopt(c->curl, CURLOPT_UNIX_SOCKET_PATH,
                     c->socket ? ctl__socket_short(c, c->socket) : NULL);
    errbuf[0] = '\0';
    return curl_easy_perform(c->curl);
}

struct ctl_buf {
    char *p;  /* malloc'd, NUL-terminated */
    size_t n; /* bytes, without the NUL */
};

static size_t ctl__write_cb(char *data, size_t size, size_t n, void *arg)
{
    struct ctl_buf *b = arg;
    size_t len = size * n;
    if (b->n + len > CTL_MAX_ANSWER)
        return 0; /* curl fails the transfer with CURLE_WRITE_ERROR */
    char *p = realloc(b->p, b->n + len + 1);
    if (!p)
        return 0;
    memcpy(p + b->n, data, len);
    b->p = p;
    b->n += len;
    b->p[b->n] = '\0';
    return len;
}

static void ctl__print_json(const json_t *v)
{
    /* ASCII only: valid JSON whose every byte is printable, whatever the
     * strings hold (control characters are \u escapes either way). */
    char *s = json_dumps(v, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    if (s)
        puts(s);
    free(s);
}

/* The answer to "what went wrong" of an error answer. */
static int ctl__api_error(const struct ctl *c, long status, const json_t *v)
{
    const char *msg = json_string_value(json_object_get(v, "error"));
    char safe[512];
    if (c->json)
        ctl__print_json(v);
    fprintf(stderr, "recoverctl: %s (HTTP %ld)\n",
            table_safe(msg ? msg : "the API answered an error", safe, sizeof safe), status);
    if (status == 401)
        fprintf(stderr,
                "  (the token was read from %s; recoverd keeps it in "
                "<state_dir>/token)\n",
                c->token_file);
    return CTL_API_ERROR;
}

/* Headers of a mutating call; NULL on OOM. The caller frees the list. */
static struct curl_slist *ctl__post_headers(const struct ctl *c)
{
    char auth[CTL_TOKEN_MAX + 32];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->token);
    /* Over the socket, recoverd may know the caller without a token. */
    struct curl_slist *h = c->token[0] ? curl_slist_append(NULL, auth) : NULL;
    struct curl_slist *h2 = h || !c->token[0]
                                ? curl_slist_append(h, "Content-Type: application/json")
                                : NULL;
    if (!h2)
        curl_slist_free_all(h);
    memset(auth, 0, sizeof auth); /* libcurl holds its own copy until the list is freed */
    return h2;
}

/* GET path, or POST body (NULL: empty) with the token, into *out (a new
 * reference). CTL_OK, or the exit code after printing why. */
/* A full page of a list names the next one in its Link header: said on
 * stderr as the option that asks for it, so stdout stays the table. */
static void ctl__note_next(struct ctl *c)
{
    struct curl_header *h = NULL;
    if (curl_easy_header(c->curl, "Link", 0, CURLH_HEADER, -1, &h) != CURLHE_OK)
        return;
    const char *at = strstr(h->value, "&before=");
    if (at && strstr(h->value, "rel=\"next\"")) {
        at += strlen("&before=");
        fprintf(stderr, "more: --before %.*s\n", (int)strspn(at, "0123456789"), at);
    }
}

static int ctl_request(struct ctl *c, const char *path, const char *body, bool post, json_t **out)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    struct ctl_buf b = {0};
    struct curl_slist *headers = NULL;
    long status = 0;
    int r = CTL_API_ERROR;
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, errbuf);
    if (post) {
        if (!(headers = ctl__post_headers(c))) {
            fprintf(stderr, "recoverctl: out of memory\n");
            return CTL_API_ERROR;
        }
        curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE, (long)(body ? strlen(body) : 0));
    } else {
        curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
    }
    CURLcode cr = ctl__perform(c, path, errbuf);
    const char *tried = NULL; /* the default socket, when nothing answered there */
    if (cr == CURLE_COULDNT_CONNECT && c->socket && c->fallback) {
        tried = c->socket; /* nothing was sent: asking again over TCP is safe */
        c->socket = NULL;
        cr = ctl__perform(c, path, errbuf);
    }
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(headers);
    /* For a socket, curl's own words name "localhost port 80": not said. */
    if (cr != CURLE_OK) {
        fprintf(stderr,
                "recoverctl: cannot reach the API at %s: %s\n"
                "  (is recoverd running? %s%s%sthe address comes from --socket, --api, "
                "RECOVERD_SOCKET or RECOVERD_API)\n",
                c->socket ? c->socket : c->api,
                errbuf[0] && !c->socket ? errbuf : curl_easy_strerror(cr),
                tried ? "nothing answered at " : "", tried ? tried : "", tried ? " either; " : "");
        free(b.p);
        return CTL_UNREACHABLE;
    }
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
    json_error_t e;
    json_t *v = b.p ? json_loads(b.p, 0, &e) : NULL;
    char safe[128];
    if (!json_is_object(v) && !json_is_array(v))
        fprintf(stderr, "recoverctl: %s answered HTTP %ld without JSON: %s\n",
                c->socket ? c->socket : c->api, status,
                table_safe(b.p ? b.p : "(empty)", safe, sizeof safe));
    else if (status < 200 || status > 299)
        r = ctl__api_error(c, status, v);
    else
        r = CTL_OK;
    if (r == CTL_OK)
        ctl__note_next(c);
    free(b.p);
    if (r == CTL_OK)
        *out = v;
    else
        json_decref(v);
    return r;
}

static int ctl_get(struct ctl *c, const char *path, json_t **out)
{
    return ctl_request(c, path, NULL, false, out);
}

static CURL *ctl__curl_new(void)
{
    CURL *h = curl_easy_init();
    if (!h)
        return NULL;
    curl_easy_setopt(h, CURLOPT_PROXY, ""); /* never send a local API call via $http_proxy */
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, CTL_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "recoverctl");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, ctl__write_cb);
    return h;
}

/* ---- building paths -------------------------------------------------------------------- */

/* Append "?key=value" or "&key=value", value URL-escaped. 0 or -ENOSPC. */
static int ctl__query(CURL *h, char *buf, size_t len, const char *key, const char *value)
{
    char *esc = curl_easy_escape(h, value, 0);
    size_t n = strlen(buf);
    int k = esc ? snprintf(buf + n, len - n, "%c%s=%s", strchr(buf, '?') ? '&' : '?', key, esc)
                : -1;
    curl_free(esc);
    return k < 0 || (size_t)k >= len - n ? -ENOSPC : 0;
}

/* A list's ?limit and ?before, when given. */
static int ctl__page(struct ctl *c, char *buf, size_t len)
{
    if (c->limit && ctl__query(c->curl, buf, len, "limit", c->limit) < 0)
        return -ENOSPC;
    return c->before ? ctl__query(c->curl, buf, len, "before", c->before) : 0;
}

static int ctl__path_fixed(char *buf, size_t len, const char *path)
{
    snprintf(buf, len, "%s", path);
    return 0;
}

static int ctl_path_status(struct ctl *c, const char *arg, char *buf, size_t len)
{
    return ctl__path_fixed(buf, len, "/v1/status");
}

static int ctl_path_services(struct ctl *c, const char *arg, char *buf, size_t len)
{
    return ctl__path_fixed(buf, len, "/v1/services");
}

static int ctl_path_summary(struct ctl *c, const char *arg, char *buf, size_t len)
{
    return ctl__path_fixed(buf, len, "/v1/faults/summary");
}

static int ctl_path_service(struct ctl *c, const char *arg, char *buf, size_t len)
{
    char *esc = curl_easy_escape(c->curl, arg, 0);
    int k = esc ? snprintf(buf, len, "/v1/services/%s", esc) : -1;
    curl_free(esc);
    return k < 0 || (size_t)k >= len ? -ENOSPC : 0;
}

static int ctl_path_fault(struct ctl *c, const char *arg, char *buf, size_t len)
{
    snprintf(buf, len, "/v1/faults/%s", arg);
    return 0;
}

static int ctl_path_faults(struct ctl *c, const char *arg, char *buf, size_t len)
{
    snprintf(buf, len, "/v1/faults");
    if ((c->given & OPT_ACTIVE) && ctl__query(c->curl, buf, len, "active", "1") < 0)
        return -ENOSPC;
    return ctl__page(c, buf, len);
}

static int ctl_path_actions(struct ctl *c, const char *arg, char *buf, size_t len)
{
    snprintf(buf, len, "/v1/actions");
    if (c->fault && ctl__query(c->curl, buf, len, "fault", c->fault) < 0)
        return -ENOSPC;
    return ctl__page(c, buf, len);
}

static int ctl_path_transitions(struct ctl *c, const char *arg, char *buf, size_t len)
{
    snprintf(buf, len, "/v1/transitions");
    if (c->service && ctl__query(c->curl, buf, len, "service", c->service) < 0)
        return -ENOSPC;
    return ctl__page(c, buf, len);
}

static int ctl_path_metrics(struct ctl *c, const char *arg, char *buf, size_t len)
{
    return ctl__path_fixed(buf, len, "/v1/metrics");
}

/* /v1/services/NAME/VERB, NAME URL-escaped. */
static int ctl__path_control(struct ctl *c, const char *name, const char *verb, char *buf,
                             size_t len)
{
    char *esc = curl_easy_escape(c->curl, name, 0);
    int k = esc ? snprintf(buf, len, "/v1/services/%s/%s", esc, verb) : -1;
    curl_free(esc);
    return k < 0 || (size_t)k >= len ? -ENOSPC : 0;
}

static int ctl_path_hold(struct ctl *c, const char *arg, char *buf, size_t len)
{
    return ctl__path_control(c, arg, "hold", buf, len);
}

static int ctl_path_release(struct ctl *c, const char *arg, char *buf, size_t len)
{
    return ctl__path_control(c, arg, "release", buf, len);
}

static int ctl_path_restart(struct ctl *c, const char *arg, char *buf, size_t len)
{
    return ctl__path_control(c, arg, "restart", buf, len);
}

static int ctl_path_recover(struct ctl *c, const char *arg, char *buf, size_t len)
{
    snprintf(buf, len, "/v1/faults/%s/recover", arg); /* arg: digits only (validated) */
    return 0;
}

/* ---- human output ---------------------------------------------------------------------- */

#define CELL 256 /* bytes of one formatted cell */

static void ctl__kv(const char *key, const char *value)
{
    table_print_kv(stdout, key, value);
}

/* The strings of a JSON array joined with ", ". */
static char *ctl__join(const json_t *a, char *buf, size_t len)
{
    size_t i, n = 0;
    const json_t *v;
    buf[0] = '\0';
    json_array_foreach(a, i, v)
    {
        char cell[CELL];
        if (json_is_integer(v))
            snprintf(cell, sizeof cell, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        else
            snprintf(cell, sizeof cell, "%s", json_is_string(v) ? json_string_value(v) : "?");
        int k = snprintf(buf + n, len - n, "%s%s", n ? ", " : "", cell);
        n += k > 0 && (size_t)k < len - n ? (size_t)k : 0;
    }
    return buf;
}

/* "exit 1", "signal KILL" or "-" from a service's last_exit. */
static char *ctl__last_exit(const json_t *svc, char *buf, size_t len)
{
    const json_t *e = json_object_get(svc, "last_exit");
    const json_t *sig = json_object_get(e, "signal");
    char cell[CELL];
    if (!json_is_object(e))
        snprintf(buf, len, "-");
    else if (json_is_string(sig) || (json_is_integer(sig) && json_integer_value(sig)))
        snprintf(buf, len, "signal %s", table_cell(e, "signal", cell, sizeof cell));
    else
        snprintf(buf, len, "exit %s", table_cell(e, "code", cell, sizeof cell));
    return buf;
}

/* "2/3 ok" plus the names of checks past their fall threshold. */
static char *ctl__checks(const json_t *svc, char *buf, size_t len)
{
    const json_t *checks = json_object_get(svc, "checks");
    size_t i, ok = 0, n;
    const json_t *ch;
    char failing[CELL] = "";
    json_array_foreach(checks, i, ch)
    {
        ok += json_is_true(json_object_get(ch, "ok"));
        const char *name = json_string_value(json_object_get(ch, "name"));
        n = strlen(failing);
        if (json_is_true(json_object_get(ch, "failing")) && name)
            snprintf(failing + n, sizeof failing - n, "%s%s", n ? "," : "", name);
    }
    if (!json_array_size(checks))
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, "%zu/%zu ok%s%s%s", ok, json_array_size(checks),
                 failing[0] ? " (failing: " : "", failing, failing[0] ? ")" : "");
    return buf;
}

static int ctl_print_services(struct ctl *c, const json_t *v)
{
    struct table t;
    size_t i;
    const json_t *s;
    char name[CELL], state[CELL], pid[CELL], restarts[CELL], last[CELL], checks[CELL];
    table_init(&t, "NAME", "STATE", "PID", "RESTARTS", "LAST-EXIT", "CHECKS", NULL);
    json_array_foreach(v, i, s)
    {
        table_cell(s, "state", state, CELL);
        if (json_is_true(json_object_get(s, "held"))) /* an operator's pause shows at a glance */
            strncat(state, ",held", CELL - strlen(state) - 1);
        table_add(&t, table_cell(s, "name", name, CELL), state, table_cell(s, "pid", pid, CELL),
                  table_cell(s, "restarts", restarts, CELL), ctl__last_exit(s, last, CELL),
                  ctl__checks(s, checks, CELL));
    }
    table_print(&t, stdout);
    table_close(&t);
    return CTL_OK;
}

static int ctl_print_status(struct ctl *c, const json_t *v)
{
    char a[CELL], b[CELL], line[2 * CELL + 16];
    json_t *services = NULL;
    ctl__kv("name", table_cell(v, "name", a, CELL));
    table_cell(v, "state", a, CELL);
    if (json_is_string(json_object_get(v, "since")))
        snprintf(line, sizeof line, "%s (since %s)", a, table_time(v, "since", b, CELL));
    else
        snprintf(line, sizeof line, "%s", a);
    ctl__kv("state", line);
    ctl__kv("uptime", table_duration(v, "uptime_ms", a, CELL));
    ctl__kv("services", table_cell(v, "services", a, CELL));
    ctl__kv("active faults", table_cell(v, "active_faults", a, CELL));
    ctl__kv("resolved faults", table_cell(v, "resolved_faults", a, CELL));
    ctl__kv("recovery actions", table_cell(v, "recovery_actions", a, CELL));
    ctl__kv("detectors", ctl__join(json_object_get(v, "detectors"), a, CELL));
    ctl__kv("strategies", ctl__join(json_object_get(v, "strategies"), a, CELL));
    /* Said only when it matters: the counts above lag what happened. */
    const json_t *jr = json_object_get(v, "journal");
    if (json_integer_value(json_object_get(jr, "waiting_writes")) > 0) {
        snprintf(line, sizeof line, "behind: %s writes wait for the disk (%s)",
                 table_cell(jr, "waiting_writes", a, CELL), table_cell(jr, "error", b, CELL));
        ctl__kv("journal", line);
    }
    int r = ctl_get(c, "/v1/services", &services);
    if (r != CTL_OK)
        return r;
    printf("\n");
    ctl_print_services(c, services);
    json_decref(services);
    return CTL_OK;
}

static void ctl__checks_table(const json_t *checks)
{
    struct table t;
    size_t i;
    const json_t *ch;
    char name[CELL], kind[CELL], fail[CELL], lat[CELL], at[CELL], why[CELL];
    table_init(&t, "CHECK", "KIND", "OK", "FAILING", "LATENCY", "AT", "REASON", NULL);
    json_array_foreach(checks, i, ch)
    {
        const json_t *ok = json_object_get(ch, "ok");
        const json_t *ms = json_object_get(ch, "latency_ms");
        if (json_is_number(ms))
            snprintf(lat, CELL, "%.1fms", json_number_value(ms));
        else
            snprintf(lat, CELL, "-");
        table_add(&t, table_cell(ch, "name", name, CELL), table_cell(ch, "kind", kind, CELL),
                  json_is_boolean(ok) ? (json_is_true(ok) ? "ok" : "FAIL") : "-",
                  table_cell(ch, "failing", fail, CELL), lat, table_time(ch, "at", at, CELL),
                  table_cell(ch, "reason", why, CELL));
    }
    table_print(&t, stdout);
    table_close(&t);
}

static int ctl_print_service(struct ctl *c, const json_t *v)
{
    char a[CELL], b[CELL];
    static const char *const keys[] = {"name", "state", "process", "pid", "restarts", "held"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (json_object_get(v, keys[i]) || i < 2)
            ctl__kv(keys[i], table_cell(v, keys[i], a, CELL));
    ctl__kv("since", table_time(v, "since", a, CELL));
    ctl__kv("uptime", table_duration(v, "uptime_ms", a, CELL));
    ctl__kv("last exit", ctl__last_exit(v, a, CELL));
    const json_t *e = json_object_get(v, "last_exit");
    if (json_is_object(e) && json_is_string(json_object_get(e, "at")))
        ctl__kv("last exit at", table_time(e, "at", b, CELL));
    if (json_object_get(v, "open_faults"))
        ctl__kv("open faults", ctl__join(json_object_get(v, "open_faults"), a, CELL));
    if (json_array_size(json_object_get(v, "checks"))) {
        printf("\n");
        ctl__checks_table(json_object_get(v, "checks"));
    }
    return CTL_OK;
}

static void ctl__faults_table(const json_t *v)
{
    struct table t;
    size_t i;
    const json_t *f;
    char id[CELL], svc[CELL], chk[CELL], type[CELL], sev[CELL], op[CELL], res[CELL], d[CELL];
    table_init(&t, "ID", "SERVICE", "CHECK", "TYPE", "SEVERITY", "OPENED", "RESOLVED",
               "DESCRIPTION", NULL);
    json_array_foreach(v, i, f)
        table_add(&t, table_cell(f, "id", id, CELL), table_cell(f, "service", svc, CELL),
                  table_cell(f, "check", chk, CELL), table_cell(f, "type", type, CELL),
                  table_cell(f, "severity", sev, CELL), table_time(f, "opened_at", op, CELL),
                  table_time(f, "resolved_at", res, CELL), table_cell(f, "description", d, CELL));
    table_print(&t, stdout);
    table_close(&t);
}

static int ctl_print_faults(struct ctl *c, const json_t *v)
{
    ctl__faults_table(v);
    return CTL_OK;
}

static void ctl__actions_table(const json_t *v)
{
    struct table t;
    size_t i;
    const json_t *a;
    char id[CELL], fault[CELL], svc[CELL], strat[CELL], st[CELL], beg[CELL], end[CELL], res[CELL];
    table_init(&t, "ID", "FAULT", "SERVICE", "STRATEGY", "STATUS", "STARTED", "FINISHED", "RESULT",
               NULL);
    json_array_foreach(v, i, a)
        table_add(&t, table_cell(a, "id", id, CELL), table_cell(a, "fault_id", fault, CELL),
                  table_cell(a, "service", svc, CELL), table_cell(a, "strategy", strat, CELL),
                  table_cell(a, "status", st, CELL), table_time(a, "started_at", beg, CELL),
                  table_time(a, "finished_at", end, CELL), table_cell(a, "result", res, CELL));
    table_print(&t, stdout);
    table_close(&t);
}

static int ctl_print_actions(struct ctl *c, const json_t *v)
{
    ctl__actions_table(v);
    return CTL_OK;
}

static int ctl_print_fault(struct ctl *c, const json_t *v)
{
    static const char *const keys[] = {"id",       "service", "check",      "type",
                                       "severity", "impact",  "description"};
    char a[CELL];
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        ctl__kv(keys[i], table_cell(v, keys[i], a, CELL));
    ctl__kv("opened", table_time(v, "opened_at", a, CELL));
    ctl__kv("resolved", table_time(v, "resolved_at", a, CELL));
    ctl__kv("duration", table_duration(v, "duration_ms", a, CELL));
    char *ctx = json_dumps(json_object_get(v, "context"), JSON_COMPACT | JSON_ENCODE_ANY);
    ctl__kv("context", ctx);
    free(ctx);
    const json_t *actions = json_object_get(v, "actions");
    if (json_array_size(actions) && json_is_object(json_array_get(actions, 0))) {
        printf("\n");
        ctl__actions_table(actions);
    }
    return CTL_OK;
}

/* "software 2, network 0, ..." from one of the summary's by_* objects. */
static char *ctl__counts(const json_t *o, char *buf, size_t len)
{
    const char *k;
    const json_t *v;
    size_t n = 0;
    buf[0] = '\0';
    json_object_foreach((json_t *)o, k, v)
    {
        int w = snprintf(buf + n, len - n, "%s%s %" JSON_INTEGER_FORMAT, n ? ", " : "", k,
                         json_integer_value(v));
        n += w > 0 && (size_t)w < len - n ? (size_t)w : 0;
    }
    return buf;
}

static int ctl_print_summary(struct ctl *c, const json_t *v)
{
    char a[2 * CELL];
    ctl__kv("total", table_cell(v, "total", a, sizeof a));
    ctl__kv("active", table_cell(v, "active", a, sizeof a));
    ctl__kv("resolved", table_cell(v, "resolved", a, sizeof a));
    ctl__kv("by type", ctl__counts(json_object_get(v, "by_type"), a, sizeof a));
    ctl__kv("by severity", ctl__counts(json_object_get(v, "by_severity"), a, sizeof a));
    ctl__kv("by impact", ctl__counts(json_object_get(v, "by_impact"), a, sizeof a));
    return CTL_OK;
}

static int ctl_print_transitions(struct ctl *c, const json_t *v)
{
    struct table t;
    size_t i;
    const json_t *x;
    char at[CELL], svc[CELL], from[CELL], to[CELL], cause[CELL];
    table_init(&t, "AT", "SERVICE", "FROM", "TO", "CAUSE", NULL);
    json_array_foreach(v, i, x)
    {
        bool system = json_is_null(json_object_get(x, "service"));
        table_add(&t, table_time(x, "at", at, CELL),
                  system ? "(system)" : table_cell(x, "service", svc, CELL),
                  table_cell(x, "from", from, CELL), table_cell(x, "to", to, CELL),
                  table_cell(x, "cause", cause, CELL));
    }
    table_print(&t, stdout);
    table_close(&t);
    return CTL_OK;
}

/* ---- operator controls ----------------------------------------------------------------- */

/* What was done, then the service as the API now shows it. */
static int ctl__print_control(struct ctl *c, const json_t *v, const char *done)
{
    char name[CELL], safe[4 * CELL];
    printf("%s: ", table_safe(table_cell(v, "name", name, CELL), safe, sizeof safe));
    printf("%s\n\n", table_safe(done, safe, sizeof safe));
    return ctl_print_service(c, v);
}

static int ctl_print_hold(struct ctl *c, const json_t *v)
{
    return ctl__print_control(c, v, "held (automatic recovery paused until release)");
}

static int ctl_print_release(struct ctl *c, const json_t *v)
{
    return ctl__print_control(c, v, "released (automatic recovery resumed)");
}

static int ctl_print_restart(struct ctl *c, const json_t *v)
{
    return ctl__print_control(c, v, "restart started");
}

static int ctl_print_recover(struct ctl *c, const json_t *v)
{
    char done[2 * CELL];
    snprintf(done, sizeof done, "%s of fault %s started", c->args[1], c->args[0]);
    return ctl__print_control(c, v, done);
}

/* ---- metrics --------------------------------------------------------------------------- */

/* A count of o, 0 when absent (a service with faults but no action has no
 * recovery counts at all). */
static char *ctl__count(const json_t *o, const char *key, char *buf, size_t len)
{
    snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(json_object_get(o, key)));
    return buf;
}

/* One row per key (a fault type or a service): both carry the same counts. */
static void ctl__metrics_table(const char *what, const json_t *rows)
{
    struct table t;
    const char *key;
    const json_t *o;
    char f[CELL], r[CELL], n[CELL], ok[CELL], bad[CELL], ab[CELL], mean[CELL], max[CELL];
    table_init(&t, what, "FAULTS", "RESOLVED", "RECOVERIES", "SUCCESSFUL", "FAILED", "ABORTED",
               "MEAN-RECOVERY", "MAX-RECOVERY", NULL);
    json_object_foreach((json_t *)rows, key, o)
        table_add(&t, key, ctl__count(o, "faults", f, CELL), ctl__count(o, "resolved", r, CELL),
                  ctl__count(o, "recoveries", n, CELL), ctl__count(o, "successful", ok, CELL),
                  ctl__count(o, "failed", bad, CELL), ctl__count(o, "aborted", ab, CELL),
                  table_duration(o, "mean_recovery_ms", mean, CELL),
                  table_duration(o, "max_recovery_ms", max, CELL));
    table_print(&t, stdout);
    table_close(&t);
}

/* Recovery time is a fault's detection to its verified recovery; the
 * supervisor's give-up faults are not recoveries and are not counted. */
static int ctl_print_metrics(struct ctl *c, const json_t *v)
{
    const json_t *all = json_object_get(v, "overall");
    char a[CELL], b[CELL], d[CELL], e[CELL], line[4 * CELL + 64];
    snprintf(line, sizeof line, "%s (successful %s, failed %s, aborted %s)",
             ctl__count(all, "recoveries", a, CELL), ctl__count(all, "successful", b, CELL),
             ctl__count(all, "failed", d, CELL), ctl__count(all, "aborted", e, CELL));
    ctl__kv("recoveries", line);
    snprintf(line, sizeof line, "%s (resolved %s)", ctl__count(all, "faults", a, CELL),
             ctl__count(all, "resolved", b, CELL));
    ctl__kv("faults", line);
    ctl__kv("mean recovery", table_duration(all, "mean_recovery_ms", a, CELL));
    ctl__kv("max recovery", table_duration(all, "max_recovery_ms", a, CELL));
    if (json_object_size(json_object_get(v, "by_type"))) {
        printf("\n");
        ctl__metrics_table("TYPE", json_object_get(v, "by_type"));
    }
    if (json_object_size(json_object_get(v, "by_service"))) {
        printf("\n");
        ctl__metrics_table("SERVICE", json_object_get(v, "by_service"));
    }
    return CTL_OK;
}

/* ---- the command line ------------------------------------------------------------------ */

static const struct ctl_cmd ctl_cmds[] = {
    {"status", NULL, 0, false, ctl_path_status, ctl_print_status,
     "the system's state, counters and services"},
    {"services", NULL, 0, false, ctl_path_services, ctl_print_services,
     "every service, one a line"},
    {"service", "NAME", 0, false, ctl_path_service, ctl_print_service,
     "one service and its checks"},
    {"faults", NULL, OPT_ACTIVE | OPT_LIMIT | OPT_BEFORE, false, ctl_path_faults, ctl_print_faults,
     "faults, newest first (--active: open ones only)"},
    {"fault", "ID", 0, false, ctl_path_fault, ctl_print_fault,
     "one fault and its recovery actions"},
    {"actions", NULL, OPT_FAULT | OPT_LIMIT | OPT_BEFORE, false, ctl_path_actions,
     ctl_print_actions, "recovery actions, newest first (--fault ID: of one fault)"},
    {"summary", NULL, 0, false, ctl_path_summary, ctl_print_summary,
     "fault counts by type, severity and impact"},
    {"transitions", NULL, OPT_SERVICE | OPT_LIMIT | OPT_BEFORE, false, ctl_path_transitions,
     ctl_print_transitions, "state changes, newest first (--service NAME: of one service)"},
    {"metrics", NULL, 0, false, ctl_path_metrics, ctl_print_metrics,
     "recoveries and recovery times: overall, per fault type, per service"},
    {"recover", "ID STRATEGY", 0, true, ctl_path_recover, ctl_print_recover,
     "run STRATEGY (restart, repair...) for open fault ID now"},
    {"hold", "NAME", 0, true, ctl_path_hold, ctl_print_hold,
     "pause automatic recovery of NAME (maintenance)"},
    {"release", "NAME", 0, true, ctl_path_release, ctl_print_release,
     "resume automatic recovery of NAME; clears a give-up"},
    {"restart", "NAME", 0, true, ctl_path_restart, ctl_print_restart,
     "restart NAME now; clears a give-up"},
};

/* Words of a command's argument list ("ID STRATEGY" -> 2). */
static int ctl__n_args(const struct ctl_cmd *cmd)
{
    int n = 0;
    for (const char *p = cmd->args; p && *p; n++) {
        p += strcspn(p, " ");
        p += strspn(p, " ");
    }
    return n;
}

static void ctl_usage(const struct ctl *c, FILE *out)
{
    fprintf(out, "usage: recoverctl [--socket PATH | --api HOST:PORT] [--json] [--token-file PATH]"
                 " COMMAND [ARG...] [OPTIONS]\n\nCommands:\n");
    for (size_t i = 0; i < sizeof ctl_cmds / sizeof *ctl_cmds; i++) {
        char head[32];
        snprintf(head, sizeof head, "%s %s", ctl_cmds[i].name,
                 ctl_cmds[i].args ? ctl_cmds[i].args : "");
        fprintf(out, "  %-20s %s\n", head, ctl_cmds[i].help);
    }
    fprintf(out,
            "\nOptions:\n"
            "  --socket PATH        ask recoverd through its Unix socket (default\n"
            "                       $RECOVERD_SOCKET, else %s, i.e. <state_dir>/api.sock;\n"
            "                       when nothing answers there, TCP at %s)\n"
            "  --api HOST:PORT      ask over TCP instead (default $RECOVERD_API)\n"
            "  --json               print the API's JSON answer instead of tables\n"
            "  --token-file PATH    recover, hold, release, restart: the API token (default\n"
            "                       $RECOVERD_TOKEN_FILE, else the token of recoverd's default\n"
            "                       state_dir: %s);\n"
            "                       through the socket, root and the group '%s' need none\n"
            "  --active             faults: only the open ones\n"
            "  --fault ID           actions: only those of fault ID\n"
            "  --service NAME       transitions: only those of service NAME\n"
            "  --limit N            faults, actions, transitions: at most N rows (default 100)\n"
            "  --before ID          faults, actions, transitions: the page of rows older than\n"
            "                       ID (newest first; a full page names the next on stderr)\n"
            "  -h, --help           this text\n"
            "\nExit status: 0 ok, 1 the API answered an error (e.g. 401 wrong token, 403 not\n"
            "allowed to act, 404, 409 a recovery is in progress), 2 usage error or unreadable\n"
            "token file, 3 the API cannot be reached.\n",
            c->socket_buf, CTL_DEFAULT_API, CTL_TOKEN_DEFAULT_HELP, CTL_GROUP);
}

__attribute__((format(printf, 1, 2))) static int ctl__usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "recoverctl: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'recoverctl --help'.\n");
    va_end(ap);
    return CTL_USAGE;
}

/* A decimal integer >= 1 with nothing else around it. */
static bool ctl__positive(const char *s)
{
    if (!s || *s < '1' || *s > '9' || strlen(s) > 18)
        return false;
    return strspn(s, "0123456789") == strlen(s);
}

/* HOST:PORT or [V6]:PORT with a port from 1 to 65535. */
static bool ctl__address_valid(const char *a)
{
    const char *colon = strrchr(a, ':');
    if (!colon || colon == a || !ctl__positive(colon + 1) || atol(colon + 1) > 65535)
        return false;
    return a[0] != '[' || colon[-1] == ']';
}

static const char *ctl__opt_name(unsigned opt)
{
    return opt == OPT_ACTIVE    ? "--active"
           : opt == OPT_FAULT   ? "--fault"
           : opt == OPT_SERVICE ? "--service"
           : opt == OPT_LIMIT   ? "--limit"
                                : "--before";
}

/* Parses argv into c; *cmd and c->args are set on success. CTL_OK, or the
 * exit code (with -1 meaning "--help was printed, exit 0"). */
static int ctl_parse(int argc, char **argv, struct ctl *c, const struct ctl_cmd **cmd)
{
    static const struct option longs[] = {
        {"api", required_argument, NULL, 'a'},
        {"socket", required_argument, NULL, 'S'},
        {"json", no_argument, NULL, 'j'},
        {"active", no_argument, NULL, 'A'},
        {"fault", required_argument, NULL, 'f'},
        {"service", required_argument, NULL, 's'},
        {"limit", required_argument, NULL, 'l'},
        {"token-file", required_argument, NULL, 't'},
        {"before", required_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int o;
    unsigned given = 0; /* 1: --api, 2: --socket */
    opterr = 1;
    while ((o = getopt_long(argc, argv, "hj", longs, NULL)) != -1) {
        switch (o) {
        case 'a':
            c->api = optarg;
            c->socket = NULL;
            c->fallback = false;
            given |= 1;
            break;
        case 'S':
            c->socket = optarg;
            c->api = NULL;
            c->fallback = false;
            given |= 2;
            break;
        case 'j': c->json = true; break;
        case 'A': c->given |= OPT_ACTIVE; break;
        case 'f':
            c->given |= OPT_FAULT;
            c->fault = optarg;
            break;
        case 's':
            c->given |= OPT_SERVICE;
            c->service = optarg;
            break;
        case 'l':
            c->given |= OPT_LIMIT;
            c->limit = optarg;
            break;
        case 'b':
            c->given |= OPT_BEFORE;
            c->before = optarg;
            break;
        case 't':
            c->token_file = optarg;
            c->token_given = true;
            break;
        case 'h': ctl_usage(c, stdout); return -1;
        default: fprintf(stderr, "Try 'recoverctl --help'.\n"); return CTL_USAGE;
        }
    }
    if (given == 3)
        return ctl__usage_error("--api and --socket exclude each other");
    if (optind >= argc)
        return ctl__usage_error("a command is needed");
    *cmd = NULL;
    for (size_t i = 0; i < sizeof ctl_cmds / sizeof *ctl_cmds; i++)
        if (strcmp(argv[optind], ctl_cmds[i].name) == 0)
            *cmd = &ctl_cmds[i];
    if (!*cmd)
        return ctl__usage_error("unknown command '%s'", argv[optind]);
    int want = ctl__n_args(*cmd);
    if (argc - optind - 1 != want) {
        if (!want)
            return ctl__usage_error("%s takes no argument", (*cmd)->name);
        return ctl__usage_error("%s needs %s", (*cmd)->name, (*cmd)->args);
    }
    for (int i = 0; i < want; i++)
        c->args[i] = argv[optind + 1 + i];
    return CTL_OK;
}

/* The values parse could not judge alone: per-command options and numbers.
 * A positional ID is a positive integer; any other one a non-empty word. */
static int ctl_validate(const struct ctl *c, const struct ctl_cmd *cmd)
{
    for (unsigned opt = 1; opt <= OPT_BEFORE; opt <<= 1)
        if ((c->given & opt) && !(cmd->opts & opt))
            return ctl__usage_error("%s does not apply to %s", ctl__opt_name(opt), cmd->name);
    if (c->api && (strlen(c->api) >= CTL_API_MAX || !ctl__address_valid(c->api)))
        return ctl__usage_error("the API address must be HOST:PORT, not '%s'", c->api);
    if (c->socket && !*c->socket)
        return ctl__usage_error("--socket wants a path");
    if (c->fault && !ctl__positive(c->fault))
        return ctl__usage_error("--fault wants a positive integer, not '%s'", c->fault);
    if (c->limit && !ctl__positive(c->limit))
        return ctl__usage_error("--limit wants a positive integer, not '%s'", c->limit);
    if (c->before && !ctl__positive(c->before))
        return ctl__usage_error("--before wants a positive integer (an id), not '%s'", c->before);
    if (c->service && !*c->service)
        return ctl__usage_error("--service wants a name");
    const char *name = cmd->args;
    for (int i = 0; i < ctl__n_args(cmd); i++) {
        int len = (int)strcspn(name, " ");
        bool id = len == 2 && strncmp(name, "ID", 2) == 0;
        if (id && !ctl__positive(c->args[i]))
            return ctl__usage_error("a fault ID is a positive integer, not '%s'", c->args[i]);
        if (!*c->args[i])
            return ctl__usage_error("%s wants a %.*s", cmd->name, len, name);
        name += len + strspn(name + len, " ");
    }
    return CTL_OK;
}

/* recoverd's default state_dir's token: the same place, found the same
 * way (lib/statedir.c), never the caller's working directory. */
static const char *ctl__default_token(char *buf, size_t len)
{
    char *dir = statedir_default();
    int n = dir ? snprintf(buf, len, "%s/token", dir) : -1;
    free(dir);
    return n > 0 && (size_t)n < len ? buf : NULL; /* a cut path would name another file */
}

/* The token of a mutating call, from the file. CTL_OK, or CTL_USAGE after
 * saying why when it is required: without it there is nothing to send.
 * When not required, an unreadable file leaves the token empty. */
static int ctl_token_read(struct ctl *c, bool required)
{
    const char *path = c->token_file;
    if (!path) {
        fprintf(stderr, "recoverctl: no token file known: give --token-file PATH or set "
                        "RECOVERD_TOKEN_FILE (recoverd writes it to <state_dir>/token)\n");
        return CTL_USAGE;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    ssize_t n = fd >= 0 ? read(fd, c->token, CTL_TOKEN_MAX) : -1;
    int err = errno;
    if (fd >= 0)
        close(fd);
    if (n < 0 && !required) {
        c->token[0] = '\0';
        return CTL_OK;
    }
    if (n < 0) {
        fprintf(stderr,
                "recoverctl: cannot read the token file %s: %s\n"
                "  (give --token-file PATH or set RECOVERD_TOKEN_FILE; recoverd writes "
                "the token to <state_dir>/token)\n",
                path, strerror(err));
        return CTL_USAGE;
    }
    c->token[n] = '\0';
    while (n > 0 && isspace((unsigned char)c->token[n - 1]))
        c->token[--n] = '\0';
    bool printable = n > 0;
    for (ssize_t i = 0; i < n; i++)
        printable &= isgraph((unsigned char)c->token[i]) != 0;
    if (!printable) {
        fprintf(stderr, "recoverctl: the token file %s does not hold a token (%s)\n", path,
                n ? "unprintable bytes" : "empty");
        return CTL_USAGE;
    }
    return CTL_OK;
}

/* Where to ask before the command line speaks: $RECOVERD_SOCKET, else
 * $RECOVERD_API, else the default socket, then TCP if nothing answers
 * there (recoverd listens on both). */
static void ctl_transport_default(struct ctl *c)
{
    if (c->socket && *c->socket) {
        c->api = NULL;
    } else if (c->api && *c->api) {
        c->socket = NULL;
    } else {
        c->socket = c->socket_buf;
        c->api = CTL_DEFAULT_API;
        c->fallback = true;
    }
}

static int ctl_run(struct ctl *c, const struct ctl_cmd *cmd)
{
    char path[CTL_PATH_MAX], body[512];
    json_t *v = NULL;
    if (cmd->path(c, c->args[0], path, sizeof path) < 0)
        return ctl__usage_error("the arguments are too long");
    const char *payload = NULL;
    if (strcmp(cmd->name, "recover") == 0) {
        json_t *in = json_pack("{s:s}", "strategy", c->args[1]);
        char *txt = in ? json_dumps(in, JSON_COMPACT) : NULL;
        json_decref(in);
        if (!txt || strlen(txt) >= sizeof body) {
            free(txt);
            return ctl__usage_error("the strategy name is not valid");
        }
        snprintf(body, sizeof body, "%s", txt);
        free(txt);
        payload = body;
    }
    int r = ctl_request(c, path, payload, cmd->post, &v);
    if (r != CTL_OK)
        return r;
    if (c->json)
        ctl__print_json(v);
    else
        r = cmd->print(c, v);
    json_decref(v);
    return r;
}

int main(int argc, char **argv)
{
    struct ctl c = {.socket = getenv("RECOVERD_SOCKET"),
                    .api = getenv("RECOVERD_API"),
                    .token_file = getenv("RECOVERD_TOKEN_FILE")};
    const struct ctl_cmd *cmd = NULL;
    char default_token[4096];
    char *state_dir = statedir_default();
    ctl_socket_path(state_dir ? state_dir : "/nonexistent", c.socket_buf, sizeof c.socket_buf);
    free(state_dir);
    ctl_transport_default(&c);
    c.token_given = c.token_file && *c.token_file;
    if (!c.token_given)
        c.token_file = ctl__default_token(default_token, sizeof default_token);
    int r = ctl_parse(argc, argv, &c, &cmd);
    if (r < 0)
        return CTL_OK;
    if (r != CTL_OK)
        return r;
    assert(cmd); /* ctl_parse sets it whenever it returns CTL_OK */
    r = ctl_validate(&c, cmd);
    /* Through the socket recoverd may know the caller: a token is sent
     * when there is one, and asked for only when named. */
    if (r == CTL_OK && cmd->post)
        r = ctl_token_read(&c, !c.socket || c.token_given);
    if (r != CTL_OK)
        return r;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(c.curl = ctl__curl_new())) {
        fprintf(stderr, "recoverctl: cannot initialise libcurl\n");
        return CTL_UNREACHABLE;
    }
    r = ctl_run(&c, cmd);
    curl_easy_cleanup(c.curl);
    curl_global_cleanup();
    memset(c.token, 0, sizeof c.token);
    fflush(stdout);
    return r;
}
