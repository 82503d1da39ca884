/* recoverctl: the operator's view of a running recoverd, through its HTTP
 * API only (never the daemon's internals). */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/table.h"

#define CTL_DEFAULT_API "127.0.0.1:7411"
#define CTL_TIMEOUT_MS 5000L         /* whole request, connect included */
#define CTL_MAX_ANSWER (64u << 20)   /* bytes of an answer we are willing to hold */

/* Exit codes (documented in --help). */
enum { CTL_OK = 0, CTL_API_ERROR = 1, CTL_USAGE = 2, CTL_UNREACHABLE = 3 };

/* Options a command may accept. */
enum { OPT_ACTIVE = 1, OPT_FAULT = 2, OPT_SERVICE = 4, OPT_LIMIT = 8 };

struct ctl {
    const char *api;      /* HOST:PORT of the API */
    bool json;            /* print the API's JSON instead of tables */
    unsigned given;       /* OPT_* given on the command line */
    const char *fault;    /* --fault ID */
    const char *service;  /* --service NAME */
    const char *limit;    /* --limit N */
    CURL *curl;           /* one handle: status then services reuse the connection */
};

struct ctl_cmd {
    const char *name;
    const char *arg;      /* the one positional argument's name, or NULL */
    unsigned opts;        /* OPT_* accepted */
    int (*path)(struct ctl *c, const char *arg, char *buf, size_t len);
    int (*print)(struct ctl *c, const json_t *v);
    const char *help;
};

/* ---- talking to the API ---------------------------------------------------------------- */

struct ctl_buf {
    char *p;   /* malloc'd, NUL-terminated */
    size_t n;  /* bytes, without the NUL */
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
    char *s = json_dumps(v, JSON_INDENT(2));
    if (s)
        puts(s);
    free(s);
}

/* The answer to "what went wrong" of an error answer. */
static int ctl__api_error(const struct ctl *c, long status, const json_t *v)
{
    const char *msg = json_string_value(json_object_get(v, "error"));
    if (c->json)
        ctl__print_json(v);
    fprintf(stderr, "recoverctl: %s (HTTP %ld)\n", msg ? msg : "the API answered an error",
            status);
    return CTL_API_ERROR;
}

/* GET path from the API into *out (a new reference). CTL_OK, or the exit code
 * after printing why. */
static int ctl_get(struct ctl *c, const char *path, json_t **out)
{
    char url[2048], errbuf[CURL_ERROR_SIZE] = "";
    struct ctl_buf b = {0};
    long status = 0;
    int r = CTL_API_ERROR;
    snprintf(url, sizeof url, "http://%s%s", c->api, path);
    curl_easy_setopt(c->curl, CURLOPT_URL, url);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode cr = curl_easy_perform(c->curl);
    if (cr != CURLE_OK) {
        fprintf(stderr, "recoverctl: cannot reach the API at %s: %s\n"
                        "  (is recoverd running? the address comes from --api or RECOVERD_API)\n",
                c->api, errbuf[0] ? errbuf : curl_easy_strerror(cr));
        free(b.p);
        return CTL_UNREACHABLE;
    }
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
    json_error_t e;
    json_t *v = b.p ? json_loads(b.p, 0, &e) : NULL;
    if (!json_is_object(v) && !json_is_array(v))
        fprintf(stderr, "recoverctl: %s answered HTTP %ld without JSON: %.100s\n", c->api,
                status, b.p ? b.p : "(empty)");
    else if (status < 200 || status > 299)
        r = ctl__api_error(c, status, v);
    else
        r = CTL_OK;
    free(b.p);
    if (r == CTL_OK)
        *out = v;
    else
        json_decref(v);
    return r;
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
    return c->limit ? ctl__query(c->curl, buf, len, "limit", c->limit) : 0;
}

static int ctl_path_actions(struct ctl *c, const char *arg, char *buf, size_t len)
{
    snprintf(buf, len, "/v1/actions");
    if (c->fault && ctl__query(c->curl, buf, len, "fault", c->fault) < 0)
        return -ENOSPC;
    return c->limit ? ctl__query(c->curl, buf, len, "limit", c->limit) : 0;
}

static int ctl_path_transitions(struct ctl *c, const char *arg, char *buf, size_t len)
{
    snprintf(buf, len, "/v1/transitions");
    if (c->service && ctl__query(c->curl, buf, len, "service", c->service) < 0)
        return -ENOSPC;
    return c->limit ? ctl__query(c->curl, buf, len, "limit", c->limit) : 0;
}

/* ---- human output ---------------------------------------------------------------------- */

#define CELL 256 /* bytes of one formatted cell */

static void ctl__kv(const char *key, const char *value)
{
    char k[64];
    snprintf(k, sizeof k, "%s:", key);
    printf("%-18s %s\n", k, value && *value ? value : "-");
}

/* The strings of a JSON array joined with ", ". */
static char *ctl__join(const json_t *a, char *buf, size_t len)
{
    size_t i, n = 0;
    const json_t *v;
    buf[0] = '\0';
    json_array_foreach(a, i, v) {
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
    json_array_foreach(checks, i, ch) {
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
        table_add(&t, table_cell(s, "name", name, CELL), table_cell(s, "state", state, CELL),
                  table_cell(s, "pid", pid, CELL), table_cell(s, "restarts", restarts, CELL),
                  ctl__last_exit(s, last, CELL), ctl__checks(s, checks, CELL));
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
    json_array_foreach(checks, i, ch) {
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
                  table_time(f, "resolved_at", res, CELL),
                  table_cell(f, "description", d, CELL));
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
    table_init(&t, "ID", "FAULT", "SERVICE", "STRATEGY", "STATUS", "STARTED", "FINISHED",
               "RESULT", NULL);
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
    static const char *const keys[] = {"id", "service", "check", "type", "severity", "impact",
                                       "description"};
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
    json_object_foreach((json_t *)o, k, v) {
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
    json_array_foreach(v, i, x) {
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

/* ---- the command line ------------------------------------------------------------------ */

static const struct ctl_cmd ctl_cmds[] = {
    {"status", NULL, 0, ctl_path_status, ctl_print_status,
     "the system's state, counters and services"},
    {"services", NULL, 0, ctl_path_services, ctl_print_services, "every service, one a line"},
    {"service", "NAME", 0, ctl_path_service, ctl_print_service, "one service and its checks"},
    {"faults", NULL, OPT_ACTIVE | OPT_LIMIT, ctl_path_faults, ctl_print_faults,
     "faults, newest first (--active: open ones only)"},
    {"fault", "ID", 0, ctl_path_fault, ctl_print_fault, "one fault and its recovery actions"},
    {"actions", NULL, OPT_FAULT | OPT_LIMIT, ctl_path_actions, ctl_print_actions,
     "recovery actions, newest first (--fault ID: of one fault)"},
    {"summary", NULL, 0, ctl_path_summary, ctl_print_summary,
     "fault counts by type, severity and impact"},
    {"transitions", NULL, OPT_SERVICE | OPT_LIMIT, ctl_path_transitions, ctl_print_transitions,
     "state changes, newest first (--service NAME: of one service)"},
};

static void ctl_usage(FILE *out)
{
    fprintf(out, "usage: recoverctl [--api HOST:PORT] [--json] COMMAND [ARG] [OPTIONS]\n\n"
                 "Commands:\n");
    for (size_t i = 0; i < sizeof ctl_cmds / sizeof *ctl_cmds; i++) {
        char head[32];
        snprintf(head, sizeof head, "%s %s", ctl_cmds[i].name,
                 ctl_cmds[i].arg ? ctl_cmds[i].arg : "");
        fprintf(out, "  %-18s %s\n", head, ctl_cmds[i].help);
    }
    fprintf(out,
            "\nOptions:\n"
            "  --api HOST:PORT    the API to ask (default $RECOVERD_API, else %s)\n"
            "  --json             print the API's JSON answer instead of tables\n"
            "  --active           faults: only the open ones\n"
            "  --fault ID         actions: only those of fault ID\n"
            "  --service NAME     transitions: only those of service NAME\n"
            "  --limit N          faults, actions, transitions: at most N rows (default 100)\n"
            "  -h, --help         this text\n"
            "\nExit status: 0 ok, 1 the API answered an error, 2 usage error,\n"
            "3 the API cannot be reached.\n",
            CTL_DEFAULT_API);
}

__attribute__((format(printf, 1, 2)))
static int ctl__usage_error(const char *fmt, ...)
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
    return opt == OPT_ACTIVE ? "--active" : opt == OPT_FAULT ? "--fault"
         : opt == OPT_SERVICE ? "--service" : "--limit";
}

/* Parses argv into c; *cmd and *arg are set on success. CTL_OK, or the exit
 * code (with -1 meaning "--help was printed, exit 0"). */
static int ctl_parse(int argc, char **argv, struct ctl *c, const struct ctl_cmd **cmd,
                     const char **arg)
{
    static const struct option longs[] = {
        {"api", required_argument, NULL, 'a'},    {"json", no_argument, NULL, 'j'},
        {"active", no_argument, NULL, 'A'},       {"fault", required_argument, NULL, 'f'},
        {"service", required_argument, NULL, 's'}, {"limit", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    int o;
    opterr = 1;
    while ((o = getopt_long(argc, argv, "hj", longs, NULL)) != -1) {
        switch (o) {
        case 'a': c->api = optarg; break;
        case 'j': c->json = true; break;
        case 'A': c->given |= OPT_ACTIVE; break;
        case 'f': c->given |= OPT_FAULT; c->fault = optarg; break;
        case 's': c->given |= OPT_SERVICE; c->service = optarg; break;
        case 'l': c->given |= OPT_LIMIT; c->limit = optarg; break;
        case 'h': ctl_usage(stdout); return -1;
        default: fprintf(stderr, "Try 'recoverctl --help'.\n"); return CTL_USAGE;
        }
    }
    if (optind >= argc)
        return ctl__usage_error("a command is needed");
    *cmd = NULL;
    for (size_t i = 0; i < sizeof ctl_cmds / sizeof *ctl_cmds; i++)
        if (strcmp(argv[optind], ctl_cmds[i].name) == 0)
            *cmd = &ctl_cmds[i];
    if (!*cmd)
        return ctl__usage_error("unknown command '%s'", argv[optind]);
    int want = (*cmd)->arg ? 1 : 0;
    if (argc - optind - 1 != want)
        return ctl__usage_error("%s %s", (*cmd)->name,
                                want ? "needs one argument" : "takes no argument");
    *arg = want ? argv[optind + 1] : NULL;
    return CTL_OK;
}

/* The values parse could not judge alone: per-command options and numbers. */
static int ctl_validate(const struct ctl *c, const struct ctl_cmd *cmd, const char *arg)
{
    for (unsigned opt = 1; opt <= OPT_LIMIT; opt <<= 1)
        if ((c->given & opt) && !(cmd->opts & opt))
            return ctl__usage_error("%s does not apply to %s", ctl__opt_name(opt), cmd->name);
    if (!ctl__address_valid(c->api))
        return ctl__usage_error("the API address must be HOST:PORT, not '%s'", c->api);
    if (c->fault && !ctl__positive(c->fault))
        return ctl__usage_error("--fault wants a positive integer, not '%s'", c->fault);
    if (c->limit && !ctl__positive(c->limit))
        return ctl__usage_error("--limit wants a positive integer, not '%s'", c->limit);
    if (c->service && !*c->service)
        return ctl__usage_error("--service wants a name");
    if (strcmp(cmd->name, "fault") == 0 && !ctl__positive(arg))
        return ctl__usage_error("a fault ID is a positive integer, not '%s'", arg);
    if (strcmp(cmd->name, "service") == 0 && !*arg)
        return ctl__usage_error("service wants a name");
    return CTL_OK;
}

static int ctl_run(struct ctl *c, const struct ctl_cmd *cmd, const char *arg)
{
    char path[1024];
    json_t *v = NULL;
    if (cmd->path(c, arg, path, sizeof path) < 0)
        return ctl__usage_error("the arguments are too long");
    int r = ctl_get(c, path, &v);
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
    struct ctl c = {.api = getenv("RECOVERD_API")};
    const struct ctl_cmd *cmd = NULL;
    const char *arg = NULL;
    if (!c.api || !*c.api)
        c.api = CTL_DEFAULT_API;
    int r = ctl_parse(argc, argv, &c, &cmd, &arg);
    if (r < 0)
        return CTL_OK;
    if (r == CTL_OK)
        r = ctl_validate(&c, cmd, arg);
    if (r != CTL_OK)
        return r;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(c.curl = ctl__curl_new())) {
        fprintf(stderr, "recoverctl: cannot initialise libcurl\n");
        return CTL_UNREACHABLE;
    }
    r = ctl_run(&c, cmd, arg);
    curl_easy_cleanup(c.curl);
    curl_global_cleanup();
    fflush(stdout);
    return r;
}
