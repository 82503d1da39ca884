/* Table-driven mapping of YAML mappings onto C structs, with file:line:col errors. */
#include "config/cfgmap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libfyaml.h>

#include "lib/model.h"

#define CFG__TEXT_MAX 256 /* bytes of a scalar we parse as a number, name or address */
#define CFG__GOT_MAX 48   /* bytes of an offending value quoted back in a message */

typedef int (*cfg__read_fn)(const struct cfg_field *f, struct fy_node *v, void *p,
                            struct cfg_err *err);
typedef void (*cfg__free_fn)(const struct cfg_field *f, void *p);

/* ---- positions ---- */

static void cfg__diag_drop(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
}

/* libfyaml 0.7 has no public "start mark of a node" for collections; its own
 * node report knows it, so report into a private collecting diag and read the
 * position back. It gives up on collections holding an empty value. */
static int cfg__diag_pos(struct fy_node *n, int *line, int *col)
{
    struct fy_diag_cfg dc;
    struct fy_diag *d;
    struct fy_diag_error *e;
    void *it = NULL;
    int r = -1;

    fy_diag_cfg_default(&dc);
    dc.fp = NULL;
    dc.output_fn = cfg__diag_drop;
    dc.colorize = false;
    if (!(d = fy_diag_create(&dc)))
        return -1;
    fy_diag_set_collect_errors(d, true);
    fy_diag_node_report(d, n, FYET_ERROR, "position");
    while ((e = fy_diag_errors_iterate(d, &it))) {
        if (e->line > 0) {
            *line = e->line; /* already 1-based */
            *col = e->column;
            r = 0;
            break;
        }
    }
    fy_diag_destroy(d);
    return r;
}

static int cfg__pos(struct fy_node *n, int *line, int *col, int depth)
{
    struct fy_token *t;
    const struct fy_mark *m;
    struct fy_node_pair *p;
    void *it = NULL;

    if (!n || depth > 16)
        return -1;
    if ((t = fy_node_get_scalar_token(n)) && (m = fy_token_start_mark(t))) {
        *line = m->line + 1; /* fy_mark is 0-based */
        *col = m->column + 1;
        /* the mark of a quoted scalar or an alias is past its quote or '*' */
        if ((fy_node_get_style(n) == FYNS_SINGLE_QUOTED ||
             fy_node_get_style(n) == FYNS_DOUBLE_QUOTED || fy_node_get_style(n) == FYNS_ALIAS) &&
            *col > 1)
            (*col)--;
        return 0;
    }
    if (fy_node_is_scalar(n))
        return -1; /* an empty value has no token */
    if (cfg__diag_pos(n, line, col) == 0)
        return 0;
    if (fy_node_is_mapping(n)) {
        if (!(p = fy_node_mapping_iterate(n, &it)))
            return -1;
        if (cfg__pos(fy_node_pair_key(p), line, col, depth + 1) == 0)
            return 0;
        return cfg__pos(fy_node_pair_value(p), line, col, depth + 1);
    }
    return cfg__pos(fy_node_sequence_iterate(n, &it), line, col, depth + 1);
}

/* An empty value ("key:" with nothing after it) has no position of its own:
 * point at its key, or at the list that holds it. */
static void cfg__node_pos(struct fy_node *n, int *line, int *col)
{
    struct fy_node *parent;
    struct fy_node_pair *p;
    void *it = NULL;

    *line = *col = 0;
    if (!n || cfg__pos(n, line, col, 0) == 0)
        return;
    if (!(parent = fy_node_get_parent(n)))
        return;
    if (fy_node_is_mapping(parent)) {
        while ((p = fy_node_mapping_iterate(parent, &it))) {
            if (fy_node_pair_value(p) == n) {
                cfg__node_pos(fy_node_pair_key(p), line, col);
                return;
            }
        }
    }
    cfg__node_pos(parent, line, col);
}

void cfg_err_at(struct cfg_err *err, struct fy_node *node, const char *fmt, ...)
{
    va_list ap;

    if (!err)
        return;
    cfg__node_pos(node, &err->line, &err->col);
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

const char *cfg_err_format(const struct cfg_err *err, char *buf, size_t len)
{
    const char *file = err->file[0] ? err->file : "<config>";

    if (err->line > 0)
        snprintf(buf, len, "%s:%d:%d: error: %s", file, err->line, err->col, err->msg);
    else
        snprintf(buf, len, "%s: error: %s", file, err->msg);
    return buf;
}

/* ---- scalars ---- */

struct fy_node *cfg_deref(struct fy_node *v)
{
    struct fy_node *r;
    const char *name;
    size_t n = 0;

    /* libfyaml 0.7.12 takes an alias with a '/' for a path, and parses it
     * with a diagnostic of its own that prints to stderr, which is the
     * daemon's log (found by fuzz/config.c). No anchor of a
     * configuration needs one: such an alias stays unresolved, and the
     * caller's error names its place. */
    if (v && fy_node_is_alias(v) && (name = fy_node_get_scalar(v, &n)) && !memchr(name, '/', n) &&
        (r = fy_node_resolve_alias(v)))
        return r;
    return v;
}

/* YAML's null: nothing at all, or a plain ~ / null. */
static bool cfg__is_null(struct fy_node *v)
{
    static const char *const nulls[] = {"~", "null", "Null", "NULL"};
    const char *s;
    size_t len = 0;

    v = cfg_deref(v);
    if (!v || fy_node_is_null(v))
        return true;
    if (!fy_node_is_scalar(v) || fy_node_get_style(v) != FYNS_PLAIN)
        return false;
    s = fy_node_get_scalar(v, &len);
    for (size_t i = 0; s && i < sizeof(nulls) / sizeof(nulls[0]); i++)
        if (strlen(nulls[i]) == len && !memcmp(s, nulls[i], len))
            return true;
    return false;
}

/* The text of a non-null scalar, or NULL. *len gets its length. */
static const char *cfg__scalar(struct fy_node *v, size_t *len)
{
    v = cfg_deref(v);
    if (cfg__is_null(v) || !fy_node_is_scalar(v))
        return NULL;
    return fy_node_get_scalar(v, len);
}

/* Copy a short scalar into buf, NUL-terminated; -1 when absent, too long or
 * holding a NUL byte (such text is never a valid number or name). */
static int cfg__text(struct fy_node *v, char *buf, size_t size)
{
    size_t len = 0;
    const char *s = cfg__scalar(v, &len);

    if (!s || len >= size || memchr(s, '\0', len))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return 0;
}

/* What the user wrote instead, for "expected X, got Y". */
static const char *cfg__got(struct fy_node *v, char *buf, size_t size)
{
    size_t len = 0;
    const char *s;

    v = cfg_deref(v);
    if (cfg__is_null(v))
        return "nothing";
    if (fy_node_is_mapping(v))
        return "a mapping";
    if (fy_node_is_sequence(v))
        return "a list";
    s = fy_node_get_scalar(v, &len);
    if (len > CFG__GOT_MAX)
        snprintf(buf, size, "'%.*s...'", CFG__GOT_MAX, s ? s : "");
    else
        snprintf(buf, size, "'%.*s'", (int)len, s ? s : "");
    return buf;
}

static int cfg__expected(struct fy_node *v, struct cfg_err *err, const char *what)
{
    char got[CFG__GOT_MAX + 8];

    cfg_err_at(err, v, "expected %s, got %s", what, cfg__got(v, got, sizeof(got)));
    return -EINVAL;
}

static char *cfg__strdup(struct fy_node *v)
{
    size_t len = 0;
    const char *s = cfg__scalar(v, &len);

    if (!s || memchr(s, '\0', len))
        return NULL;
    return strndup(s, len);
}

int duration_parse(const char *s, uint64_t *ms)
{
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    uint64_t n = 0;
    const char *p = s;

    if (!s || *s < '0' || *s > '9')
        return -EINVAL;
    for (; *p >= '0' && *p <= '9'; p++)
        if (__builtin_mul_overflow(n, 10, &n) || __builtin_add_overflow(n, *p - '0', &n))
            return -EINVAL;
    if (!*p) {
        if (n != 0) /* a bare number has no unit: ambiguous unless 0 */
            return -EINVAL;
        *ms = 0;
        return 0;
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(p, units[i].unit) != 0)
            continue;
        if (__builtin_mul_overflow(n, units[i].ms, &n))
            return -EINVAL;
        *ms = n;
        return 0;
    }
    return -EINVAL;
}

/* ---- readers, one per enum cfg_type ---- */

static int cfg__read_string(const struct cfg_field *f, struct fy_node *v, void *p,
                            struct cfg_err *err)
{
    char *s = cfg__strdup(v);

    if (!s)
        return cfg__expected(v, err, "a string");
    free(*(char **)p);
    *(char **)p = s;
    return 0;
}

static int cfg__read_duration(const struct cfg_field *f, struct fy_node *v, void *p,
                              struct cfg_err *err)
{
    char buf[CFG__TEXT_MAX];

    if (cfg__text(v, buf, sizeof(buf)) < 0 || duration_parse(buf, (uint64_t *)p) < 0)
        return cfg__expected(v, err, "a duration like 200ms, 2s or 1m");
    return 0;
}

static int cfg__read_uint(const struct cfg_field *f, struct fy_node *v, void *p,
                          struct cfg_err *err)
{
    char buf[CFG__TEXT_MAX];
    unsigned n = 0;

    if (cfg__text(v, buf, sizeof(buf)) < 0 || !buf[0])
        return cfg__expected(v, err, "a non-negative integer");
    if (buf[0] == '-' && buf[1] >= '0' && buf[1] <= '9') {
        cfg_err_at(err, v, "expected a non-negative integer, got negative %s", buf);
        return -EINVAL;
    }
    for (const char *c = buf; *c; c++) {
        if (*c < '0' || *c > '9')
            return cfg__expected(v, err, "a non-negative integer");
        if (__builtin_mul_overflow(n, 10u, &n) || __builtin_add_overflow(n, *c - '0', &n)) {
            cfg_err_at(err, v, "number %s is too large (at most %u)", buf, UINT_MAX);
            return -EINVAL;
        }
    }
    *(unsigned *)p = n;
    return 0;
}

static int cfg__read_bool(const struct cfg_field *f, struct fy_node *v, void *p,
                          struct cfg_err *err)
{
    char buf[8] = "";

    cfg__text(v, buf, sizeof(buf));
    if (strcmp(buf, "true") != 0 && strcmp(buf, "false") != 0)
        return cfg__expected(v, err, "true or false"); /* not yes/on/1: YAML 1.1 surprises */
    *(bool *)p = buf[0] == 't';
    return 0;
}

static void cfg__strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

static int cfg__read_argv(const struct cfg_field *f, struct fy_node *v, void *p,
                          struct cfg_err *err)
{
    struct fy_node *seq = cfg_deref(v), *item;
    void *it = NULL;
    char **argv = NULL;
    size_t n = 0;
    int r = -EINVAL;

    if (!fy_node_is_sequence(seq))
        return cfg__expected(v, err, "a list of strings");
    if (fy_node_sequence_item_count(seq) == 0) {
        cfg_err_at(err, v, "expected a non-empty list of strings");
        return -EINVAL;
    }
    if (!(argv = calloc((size_t)fy_node_sequence_item_count(seq) + 1, sizeof(*argv))))
        return -ENOMEM;
    while ((item = fy_node_sequence_iterate(seq, &it))) {
        if (!(argv[n] = cfg__strdup(item))) {
            r = cfg__expected(item, err, "a list of strings");
            goto fail;
        }
        n++;
    }
    cfg__strv_free(*(char ***)p);
    *(char ***)p = argv;
    return 0;
fail:
    cfg__strv_free(argv);
    return r;
}

static bool cfg__env_name_ok(const char *s)
{
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
        return false;
    for (s++; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return false;
    return true;
}

/* One "KEY=value" from a pair; *out is NULL on error (err filled). */
static int cfg__env_entry(const struct cfg_field *f, struct fy_node_pair *pair, char **env,
                          size_t n, char **out, struct cfg_err *err)
{
    struct fy_node *k = fy_node_pair_key(pair), *val = fy_node_pair_value(pair);
    char name[CFG__TEXT_MAX];
    size_t klen, vlen = 0;
    const char *s;

    *out = NULL;
    if (f->type == CFG_PAIRS) {
        if (cfg__text(k, name, sizeof(name)) < 0 || !name[0] || strchr(name, '=')) {
            cfg__expected(k, err, "a non-empty key without '='");
            return -EINVAL;
        }
    } else if (cfg__text(k, name, sizeof(name)) < 0 || !cfg__env_name_ok(name)) {
        cfg__expected(k, err, "an environment variable name like MY_VAR");
        return -EINVAL;
    }
    klen = strlen(name);
    for (size_t i = 0; i < n; i++) {
        if (!strncmp(env[i], name, klen) && env[i][klen] == '=') {
            cfg_err_at(err, k, "duplicate key '%s'", name);
            return -EINVAL;
        }
    }
    if (!(s = cfg__scalar(val, &vlen)) || memchr(s, '\0', vlen)) {
        cfg__expected(val, err, "a string value (write \"\" for an empty one)");
        return -EINVAL;
    }
    if (!(*out = malloc(klen + 1 + vlen + 1)))
        return -ENOMEM;
    memcpy(*out, name, klen);
    (*out)[klen] = '=';
    memcpy(*out + klen + 1, s, vlen);
    (*out)[klen + 1 + vlen] = '\0';
    return 0;
}

static int cfg__read_env(const struct cfg_field *f, struct fy_node *v, void *p, struct cfg_err *err)
{
    struct fy_node *map = cfg_deref(v);
    struct fy_node_pair *pair;
    void *it = NULL;
    char **env = NULL;
    size_t n = 0;
    int r;

    if (!fy_node_is_mapping(map))
        return cfg__expected(v, err, "a mapping of NAME: value");
    if (!(env = calloc((size_t)fy_node_mapping_item_count(map) + 1, sizeof(*env))))
        return -ENOMEM;
    while ((pair = fy_node_mapping_iterate(map, &it))) {
        if ((r = cfg__env_entry(f, pair, env, n, &env[n], err)) < 0)
            goto fail;
        n++;
    }
    cfg__strv_free(*(char ***)p);
    *(char ***)p = env;
    return 0;
fail:
    cfg__strv_free(env);
    return r;
}

/* "ip:port", "[ip6]:port" or "localhost:port"; never resolves names (that
 * would block the loop). Port 0 is allowed: "any free port" for listeners. */
static int cfg__address_parse(char *s, struct sockaddr_storage *ss)
{
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    char *host = s, *port = strrchr(s, ':'), *end = NULL;
    unsigned long n;

    if (!port || port == s || !port[1] || port[1] < '0' || port[1] > '9')
        return -EINVAL;
    *port++ = '\0';
    errno = 0;
    n = strtoul(port, &end, 10);
    if (errno || *end || n > 65535)
        return -EINVAL;
    memset(ss, 0, sizeof(*ss));
    if (host[0] == '[') {
        size_t hl = strlen(host);
        if (hl < 3 || host[hl - 1] != ']')
            return -EINVAL;
        host[hl - 1] = '\0';
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)n);
        return inet_pton(AF_INET6, host + 1, &in6->sin6_addr) == 1 ? 0 : -EINVAL;
    }
    if (!strcmp(host, "localhost"))
        host = "127.0.0.1";
    in4->sin_family = AF_INET;
    in4->sin_port = htons((uint16_t)n);
    return inet_pton(AF_INET, host, &in4->sin_addr) == 1 ? 0 : -EINVAL;
}

static int cfg__read_address(const struct cfg_field *f, struct fy_node *v, void *p,
                             struct cfg_err *err)
{
    char buf[CFG__TEXT_MAX];
    struct sockaddr_storage ss;

    if (cfg__text(v, buf, sizeof(buf)) < 0 || cfg__address_parse(buf, &ss) < 0)
        return cfg__expected(v, err, "an address like 127.0.0.1:8080");
    memcpy(p, &ss, sizeof(ss));
    return 0;
}

static const struct {
    const char *name;
    int sig;
} cfg__signals[] = {
    {"TERM", SIGTERM}, {"INT", SIGINT},   {"HUP", SIGHUP},   {"KILL", SIGKILL},
    {"QUIT", SIGQUIT}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2},
};

static int cfg__read_signal(const struct cfg_field *f, struct fy_node *v, void *p,
                            struct cfg_err *err)
{
    char buf[CFG__TEXT_MAX];
    const char *name = buf;

    if (cfg__text(v, buf, sizeof(buf)) < 0)
        return cfg__expected(v, err, "a signal name like TERM");
    if (!strncmp(name, "SIG", 3))
        name += 3;
    for (size_t i = 0; i < sizeof(cfg__signals) / sizeof(cfg__signals[0]); i++) {
        if (!strcmp(name, cfg__signals[i].name)) {
            *(int *)p = cfg__signals[i].sig;
            return 0;
        }
    }
    cfg_err_at(err, v, "unknown signal '%s' (expected TERM, INT, HUP, KILL, QUIT, USR1 or USR2)",
               buf);
    return -EINVAL;
}

/* An enum from its name; on error list every name. */
static int cfg__read_enum(struct fy_node *v, void *p, struct cfg_err *err, const char *what,
                          int (*parse)(const char *), const char *(*name)(int), int count)
{
    char buf[CFG__TEXT_MAX], names[160] = "";
    int e;

    if (cfg__text(v, buf, sizeof(buf)) == 0 && (e = parse(buf)) >= 0) {
        *(int *)p = e;
        return 0;
    }
    for (int i = 0; i < count; i++) {
        strncat(names, i ? (i + 1 == count ? " or " : ", ") : "",
                sizeof(names) - strlen(names) - 1);
        strncat(names, name(i), sizeof(names) - strlen(names) - 1);
    }
    cfg_err_at(err, v, "unknown %s %s (expected %s)", what, cfg__got(v, buf, sizeof(buf)), names);
    return -EINVAL;
}

static const char *cfg__severity_name(int i)
{
    return severity_name((enum severity)i);
}
static const char *cfg__fault_type_name(int i)
{
    return fault_type_name((enum fault_type)i);
}
static const char *cfg__impact_name(int i)
{
    return impact_name((enum impact)i);
}

static int cfg__read_severity(const struct cfg_field *f, struct fy_node *v, void *p,
                              struct cfg_err *err)
{
    return cfg__read_enum(v, p, err, "severity", severity_parse, cfg__severity_name,
                          SEVERITY__COUNT);
}

static int cfg__read_fault_type(const struct cfg_field *f, struct fy_node *v, void *p,
                                struct cfg_err *err)
{
    return cfg__read_enum(v, p, err, "fault type", fault_type_parse, cfg__fault_type_name,
                          FAULT_TYPE__COUNT);
}

static int cfg__read_impact(const struct cfg_field *f, struct fy_node *v, void *p,
                            struct cfg_err *err)
{
    return cfg__read_enum(v, p, err, "impact", impact_parse, cfg__impact_name, IMPACT__COUNT);
}

/* A CFG_MAP without a sub table only reserves its key: the caller reads that
 * value itself (config.c does so for services, checks and log_max). */
static int cfg__read_map(const struct cfg_field *f, struct fy_node *v, void *p, struct cfg_err *err)
{
    return f->sub ? cfg_map(v, f->sub, p, err) : 0;
}

static void cfg__free_string(const struct cfg_field *f, void *p)
{
    free(*(char **)p);
    *(char **)p = NULL;
}

static void cfg__free_strv(const struct cfg_field *f, void *p)
{
    cfg__strv_free(*(char ***)p);
    *(char ***)p = NULL;
}

static void cfg__free_map(const struct cfg_field *f, void *p)
{
    if (f->sub)
        cfg_fields_free(f->sub, p);
}

static const struct {
    cfg__read_fn read;
    cfg__free_fn free; /* NULL: nothing on the heap */
} cfg__types[] = {
    [CFG_STRING] = {cfg__read_string, cfg__free_string},
    [CFG_DURATION] = {cfg__read_duration, NULL},
    [CFG_UINT] = {cfg__read_uint, NULL},
    [CFG_BOOL] = {cfg__read_bool, NULL},
    [CFG_ARGV] = {cfg__read_argv, cfg__free_strv},
    [CFG_ENV] = {cfg__read_env, cfg__free_strv},
    [CFG_PAIRS] = {cfg__read_env, cfg__free_strv},
    [CFG_ADDRESS] = {cfg__read_address, NULL},
    [CFG_SIGNAL] = {cfg__read_signal, NULL},
    [CFG_SEVERITY] = {cfg__read_severity, NULL},
    [CFG_FAULT_TYPE] = {cfg__read_fault_type, NULL},
    [CFG_IMPACT] = {cfg__read_impact, NULL},
    [CFG_MAP] = {cfg__read_map, cfg__free_map},
    [CFG_PATH] = {cfg__read_string, cfg__free_string},
    [CFG_COMMAND] = {cfg__read_argv, cfg__free_strv},
};

/* ---- mappings ---- */

static void cfg__unknown_key(struct fy_node *k, const char *key, const struct cfg_field *fields,
                             struct cfg_err *err)
{
    char list[256] = "";
    size_t used = 0;

    for (size_t i = 0; fields[i].key && used < sizeof(list); i++)
        used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
                                 fields[i].key);
    if (fields[0].key)
        cfg_err_at(err, k, "unknown key '%s' (expected one of: %s)", key, list);
    else
        cfg_err_at(err, k, "unknown key '%s' (this mapping takes no keys)", key);
}

/* Index of key in fields, or -1. */
static int cfg__field_find(const struct cfg_field *fields, const char *key)
{
    for (int i = 0; fields[i].key; i++)
        if (!strcmp(fields[i].key, key))
            return i;
    return -1;
}

static int cfg__map_pairs(struct fy_node *map, const struct cfg_field *fields, void *out,
                          bool *seen, struct cfg_err *err)
{
    struct fy_node_pair *pair;
    struct fy_node *k;
    char key[CFG__TEXT_MAX];
    void *it = NULL;
    int i, r;

    while ((pair = fy_node_mapping_iterate(map, &it))) {
        k = fy_node_pair_key(pair);
        if (cfg__text(k, key, sizeof(key)) < 0) {
            cfg_err_at(err, k ? k : map, "expected a plain key here");
            return -EINVAL;
        }
        if ((i = cfg__field_find(fields, key)) < 0) {
            cfg__unknown_key(k, key, fields, err);
            return -EINVAL;
        }
        if (seen[i]) {
            cfg_err_at(err, k, "duplicate key '%s'", key);
            return -EINVAL;
        }
        seen[i] = true;
        r = cfg__types[fields[i].type].read(&fields[i], fy_node_pair_value(pair),
                                            (char *)out + fields[i].offset, err);
        if (r < 0)
            return r;
    }
    return 0;
}

int cfg_map(struct fy_node *node, const struct cfg_field *fields, void *out, struct cfg_err *err)
{
    struct fy_node *map = cfg_deref(node);
    bool *seen = NULL;
    size_t n = 0;
    int r = -EINVAL;

    if (!fy_node_is_mapping(map))
        return cfg__expected(node, err, "a mapping");
    while (fields[n].key)
        n++;
    if (!(seen = calloc(n + 1, sizeof(*seen))))
        return -ENOMEM;
    if ((r = cfg__map_pairs(map, fields, out, seen, err)) < 0)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        if (fields[i].required && !seen[i]) {
            cfg_err_at(err, map, "missing required key '%s'", fields[i].key);
            r = -EINVAL;
            goto fail;
        }
    }
    r = 0;
fail:
    free(seen);
    return r;
}

int cfg_read(struct fy_node *v, const struct cfg_field *f, void *out, struct cfg_err *err)
{
    return cfg__types[f->type].read(f, v, (char *)out + f->offset, err);
}

void cfg_fields_free(const struct cfg_field *fields, void *obj)
{
    if (!fields || !obj)
        return;
    for (size_t i = 0; fields[i].key; i++)
        if (cfg__types[fields[i].type].free)
            cfg__types[fields[i].type].free(&fields[i], (char *)obj + fields[i].offset);
}
