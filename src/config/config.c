/* Loading and validating the YAML configuration into struct config. */
#include "config/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libfyaml.h>

#include "lib/escape.h"
#include "lib/model.h"
#include "lib/url.h"

#define CONFIG__FILE_MAX (4u << 20) /* bytes; a config file larger than this is a mistake */
#define CONFIG__NAME_MAX 63         /* characters of a service name */

static const struct cfg_field config__api_fields[] = {
    {"listen", CFG_ADDRESS, offsetof(struct config, api), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

/* "services" has no sub table: config__services reads it (names are keys). */
static const struct cfg_field config__fields[] = {
    {"state_dir", CFG_STRING, offsetof(struct config, state_dir), 0, NULL},
    {"api", CFG_MAP, 0, 0, config__api_fields},
    {"quiet", CFG_DURATION, offsetof(struct config, quiet_ms), 0, NULL},
    {"max_concurrent_recoveries", CFG_UINT, offsetof(struct config, max_concurrent), 0, NULL},
    {"action_timeout", CFG_DURATION, offsetof(struct config, action_timeout_ms), 0, NULL},
    {"rules", CFG_MAP, 0, 0, NULL},
    {"alerts", CFG_MAP, 0, 0, NULL},
    {"services", CFG_MAP, 0, 1, NULL},
    {NULL, 0, 0, 0, NULL},
};

static const struct cfg_field config__webhook_fields[] = {
    {"url", CFG_STRING, offsetof(struct webhook_cfg, url), 1, NULL},
    {"min_severity", CFG_SEVERITY, offsetof(struct webhook_cfg, min_severity), 0, NULL},
    {"repeat_interval", CFG_DURATION, offsetof(struct webhook_cfg, repeat_ms), 0, NULL},
    {"timeout", CFG_DURATION, offsetof(struct webhook_cfg, timeout_ms), 0, NULL},
    {"retries", CFG_UINT, offsetof(struct webhook_cfg, retries), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

static const struct cfg_field config__alerts_fields[] = {
    {"webhooks", CFG_MAP, 0, 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

static const struct cfg_field config__repair_fields[] = {
    {"command", CFG_ARGV, offsetof(struct repair_cfg, command), 1, NULL},
    {"timeout", CFG_DURATION, offsetof(struct repair_cfg, timeout_ms), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

/* restart.backoff lives flat in struct restart_cfg: same base, offset 0. */
static const struct cfg_field config__backoff_fields[] = {
    {"initial", CFG_DURATION, offsetof(struct restart_cfg, backoff_initial_ms), 0, NULL},
    {"max", CFG_DURATION, offsetof(struct restart_cfg, backoff_max_ms), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

static const struct cfg_field config__restart_fields[] = {
    {"max", CFG_UINT, offsetof(struct restart_cfg, max), 0, NULL},
    {"window", CFG_DURATION, offsetof(struct restart_cfg, window_ms), 0, NULL},
    {"stable", CFG_DURATION, offsetof(struct restart_cfg, stable_ms), 0, NULL},
    {"backoff", CFG_MAP, 0, 0, config__backoff_fields},
    {NULL, 0, 0, 0, NULL},
};

static const struct cfg_field config__stop_fields[] = {
    {"signal", CFG_SIGNAL, offsetof(struct stop_cfg, signal), 0, NULL},
    {"grace", CFG_DURATION, offsetof(struct stop_cfg, grace_ms), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

/* "restart" and "stop" are a policy mapping for a supervised service and a
 * program (argv) for an external one: read by config__polymorphic. */
static const struct cfg_field config__restart_argv_table[] = {
    {"restart", CFG_ARGV, offsetof(struct service_cfg, restart_cmd), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};
static const struct cfg_field config__stop_argv_table[] = {
    {"stop", CFG_ARGV, offsetof(struct service_cfg, stop_cmd), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};
static const struct cfg_field config__restart_map_table[] = {
    {"restart", CFG_MAP, offsetof(struct service_cfg, restart), 0, config__restart_fields},
    {NULL, 0, 0, 0, NULL},
};
static const struct cfg_field config__stop_map_table[] = {
    {"stop", CFG_MAP, offsetof(struct service_cfg, stop), 0, config__stop_fields},
    {NULL, 0, 0, 0, NULL},
};

/* checks and log_max are read by config__service itself: a check's keys
 * depend on its kind, and a byte size needs 64 bits and unit suffixes. */
static const struct cfg_field config__service_fields[] = {
    {"command", CFG_ARGV, offsetof(struct service_cfg, command), 0, NULL},
    {"pidfile", CFG_STRING, offsetof(struct service_cfg, pidfile), 0, NULL},
    {"start", CFG_ARGV, offsetof(struct service_cfg, start_cmd), 0, NULL},
    {"cwd", CFG_STRING, offsetof(struct service_cfg, cwd), 0, NULL},
    {"env", CFG_ENV, offsetof(struct service_cfg, env), 0, NULL},
    {"depends_on", CFG_ARGV, offsetof(struct service_cfg, depends_on), 0, NULL},
    {"verify", CFG_DURATION, offsetof(struct service_cfg, verify_ms), 0, NULL},
    {"start_period", CFG_DURATION, offsetof(struct service_cfg, start_period_ms), 0, NULL},
    {"flap_window", CFG_DURATION, offsetof(struct service_cfg, flap_window_ms), 0, NULL},
    {"repair", CFG_MAP, offsetof(struct service_cfg, repair), 0, config__repair_fields},
    {"recovery", CFG_MAP, 0, 0, NULL},
    {"log_max", CFG_MAP, 0, 0, NULL},
    {"checks", CFG_MAP, 0, 0, NULL},
    {"restart", CFG_MAP, 0, 0, NULL},
    {"stop", CFG_MAP, 0, 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

/* Keys every check accepts besides its kind's own (which come after these,
 * so a kind cannot shadow them). */
static const struct cfg_field config__check_fields[] = {
    {"name", CFG_STRING, offsetof(struct check_cfg, name), 0, NULL},
    {"interval", CFG_DURATION, offsetof(struct check_cfg, interval_ms), 0, NULL},
    {"timeout", CFG_DURATION, offsetof(struct check_cfg, timeout_ms), 0, NULL},
    {"fall", CFG_UINT, offsetof(struct check_cfg, fall), 0, NULL},
    {"rise", CFG_UINT, offsetof(struct check_cfg, rise), 0, NULL},
    {"severity", CFG_SEVERITY, offsetof(struct check_cfg, severity), 0, NULL},
    {"type", CFG_FAULT_TYPE, offsetof(struct check_cfg, type), 0, NULL},
    {"impact", CFG_IMPACT, offsetof(struct check_cfg, impact), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

/* ---- small helpers ---- */

static struct fy_node *config__deref(struct fy_node *n)
{
    return cfg_deref(n);
}

/* The value under key in a mapping, or NULL. Keys are unique: cfg_map ran first. */
static struct fy_node *config__lookup(struct fy_node *map, const char *key)
{
    struct fy_node_pair *p;
    void *it = NULL;
    const char *s;
    size_t len = 0;

    map = config__deref(map);
    while (fy_node_is_mapping(map) && (p = fy_node_mapping_iterate(map, &it))) {
        s = fy_node_get_scalar(fy_node_pair_key(p), &len);
        if (s && len == strlen(key) && !memcmp(s, key, len))
            return config__deref(fy_node_pair_value(p));
    }
    return NULL;
}

/* The settings of a check item "- kind: {settings}". */
static struct fy_node *config__check_settings(struct fy_node *item)
{
    void *it = NULL;
    struct fy_node_pair *p = fy_node_mapping_iterate(item, &it);

    return p ? config__deref(fy_node_pair_value(p)) : NULL;
}

static int config__line(struct fy_node *n)
{
    struct cfg_err e;

    cfg_err_at(&e, n, "-");
    return e.line;
}

/* Scalar text as a new string; NULL when not a non-empty scalar, when it
 * holds a NUL byte, or out of memory. */
static char *config__text(struct fy_node *n)
{
    size_t len = 0;
    const char *s = fy_node_is_scalar(n) ? fy_node_get_scalar(n, &len) : NULL;

    return s && len && !memchr(s, '\0', len) ? strndup(s, len) : NULL;
}

static void config__check_free(struct check_cfg *c)
{
    free(c->name);
    if (c->fields && c->params)
        cfg_fields_free(c->fields, c->params);
    free(c->params);
}

static void config__service_free(struct service_cfg *s)
{
    cfg_fields_free(config__service_fields, s);
    cfg_fields_free(config__restart_argv_table, s);
    cfg_fields_free(config__stop_argv_table, s);
    for (size_t i = 0; i < s->n_checks; i++)
        config__check_free(&s->checks[i]);
    free(s->checks);
    free(s->name);
}

void config_free(struct config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->alerts.n_webhooks; i++)
        cfg_fields_free(config__webhook_fields, &c->alerts.webhooks[i]);
    free(c->alerts.webhooks);
    for (size_t i = 0; i < c->n_services; i++)
        config__service_free(&c->services[i]);
    free(c->services);
    cfg_fields_free(config__fields, c);
    for (size_t i = 0; i < c->n_warnings; i++)
        free(c->warnings[i]);
    free(c->warnings);
    free(c->path);
    free(c);
}

const struct service_cfg *config_service(const struct config *c, const char *name)
{
    for (size_t i = 0; c && name && i < c->n_services; i++)
        if (!strcmp(c->services[i].name, name))
            return &c->services[i];
    return NULL;
}

/* ---- checks ---- */

/* The common keys followed by the kind's own, the latter shifted to where the
 * params sit in one scratch block, so one cfg_map call sees every key. */
static struct cfg_field *config__check_table(const struct cfg_kind *ops, size_t params_off)
{
    size_t nc = 0, nk = 0;
    struct cfg_field *t;

    while (config__check_fields[nc].key)
        nc++;
    while (ops->fields && ops->fields[nk].key)
        nk++;
    if (!(t = calloc(nc + nk + 1, sizeof(*t))))
        return NULL;
    memcpy(t, config__check_fields, nc * sizeof(*t));
    for (size_t i = 0; i < nk; i++) {
        t[nc + i] = ops->fields[i];
        t[nc + i].offset += params_off;
    }
    return t;
}

/* interval/timeout > 0, fall/rise >= 1, reported at the offending value. */
static int config__check_limits(const struct check_cfg *c, struct fy_node *body,
                                struct cfg_err *err)
{
    const char *bad = NULL;

    if (c->interval_ms == 0)
        bad = "interval";
    else if (c->timeout_ms == 0)
        bad = "timeout";
    else if (c->fall == 0)
        bad = "fall";
    else if (c->rise == 0)
        bad = "rise";
    if (!bad)
        return 0;
    cfg_err_at(err, config__lookup(body, bad), "%s must be greater than 0", bad);
    return -EINVAL;
}

/* Map one check's body onto a scratch block [check_cfg | params], then move
 * it into out. On error nothing is left allocated. */
static int config__check_body(const struct cfg_kind *ops, struct fy_node *item,
                              struct fy_node *body, struct check_cfg *out, struct cfg_err *err)
{
    const size_t off = (sizeof(struct check_cfg) + alignof(max_align_t) - 1) &
                       ~(alignof(max_align_t) - 1);
    struct cfg_field *table = NULL;
    struct check_cfg *c = NULL;
    char why[256] = "";
    int r = -ENOMEM;

    if (!(c = calloc(1, off + ops->params_size + 1)))
        return -ENOMEM;
    *c = (struct check_cfg){.interval_ms = 1000,
                            .timeout_ms = 1000,
                            .fall = 3,
                            .rise = 2,
                            .severity = -1,
                            .type = -1,
                            .impact = -1,
                            .ops = ops->ops,
                            .kind = ops->name,
                            .fields = ops->fields,
                            .line = config__line(item)};
    if (ops->params_init)
        ops->params_init((char *)c + off);
    if (!(table = config__check_table(ops, off)))
        goto fail;
    if ((r = cfg_map(body, table, c, err)) < 0 || (r = config__check_limits(c, body, err)) < 0)
        goto fail;
    if (ops->validate && ops->validate((char *)c + off, why, sizeof(why)) < 0) {
        cfg_err_at(err, item, "invalid %s check: %s", ops->name, why[0] ? why : "rejected");
        r = -EINVAL;
        goto fail;
    }
    r = -ENOMEM;
    if (!(c->params = calloc(1, ops->params_size + 1)))
        goto fail;
    memcpy(c->params, (char *)c + off, ops->params_size);
    *out = *c;
    free(table);
    free(c);
    return 0;
fail:
    cfg_fields_free(config__check_fields, c);
    cfg_fields_free(ops->fields, (char *)c + off);
    free(table);
    free(c);
    return r;
}

/* One list item: a one-key mapping "kind: {settings}". */
static int config__check(const struct config *cf, struct fy_node *item, struct check_cfg *out,
                         struct cfg_err *err)
{
    struct cfg_kind ops;
    const char *why = NULL;
    struct fy_node_pair *p;
    void *it = NULL;
    char *kind = NULL;
    int r = -EINVAL;

    if (!fy_node_is_mapping(item) || fy_node_mapping_item_count(item) != 1) {
        cfg_err_at(err, item, "expected a check like '- http: {url: ...}' (one kind per item)");
        return -EINVAL;
    }
    p = fy_node_mapping_iterate(item, &it);
    if (!(kind = config__text(fy_node_pair_key(p)))) {
        cfg_err_at(err, item, "expected a check kind like http or tcp");
        return -EINVAL;
    }
    if (cf->reg->check_kind(kind, &ops, &why) < 0) {
        /* why: e.g. the kind's plug-in is missing */
        cfg_err_at(err, fy_node_pair_key(p), "unknown check kind '%s'%s%s%s", kind, why ? " (" : "",
                   why ? why : "", why ? ")" : "");
        goto fail;
    }
    r = config__check_body(&ops, item, config__deref(fy_node_pair_value(p)), out, err);
fail:
    free(kind);
    return r;
}

static bool config__name_taken(const struct service_cfg *s, const struct check_cfg *self,
                               const char *name)
{
    for (size_t i = 0; i < s->n_checks; i++)
        if (&s->checks[i] != self && s->checks[i].name && !strcmp(s->checks[i].name, name))
            return true;
    return false;
}

/* Unnamed checks take their kind, then kind2, kind3... skipping taken names.
 * Runs after every check is read so user-given names always win. */
static int config__check_names(struct service_cfg *s)
{
    char buf[128];
    struct check_cfg *c;

    for (size_t i = 0; i < s->n_checks; i++) {
        c = &s->checks[i];
        if (c->name)
            continue;
        snprintf(buf, sizeof(buf), "%s", c->kind);
        for (unsigned n = 2; config__name_taken(s, c, buf); n++)
            snprintf(buf, sizeof(buf), "%s%u", c->kind, n);
        if (!(c->name = strdup(buf)))
            return -ENOMEM;
    }
    return 0;
}

static bool config__name_ok(const char *s);

static int config__checks(const struct config *cf, struct service_cfg *s, struct fy_node *list,
                          struct cfg_err *err)
{
    struct fy_node *item;
    struct check_cfg *c;
    void *it = NULL;
    int r;

    if (!fy_node_is_sequence(list)) {
        cfg_err_at(err, list, "expected a list of checks like '- http: {url: ...}'");
        return -EINVAL;
    }
    if (!(s->checks = calloc((size_t)fy_node_sequence_item_count(list) + 1, sizeof(*s->checks))))
        return -ENOMEM;
    while ((item = fy_node_sequence_iterate(list, &it))) {
        c = &s->checks[s->n_checks];
        if ((r = config__check(cf, item, c, err)) < 0)
            return r;
        s->n_checks++;
        if (c->name && !config__name_ok(c->name)) {
            cfg_err_at(err, config__lookup(config__check_settings(item), "name"),
                       "invalid check name '%s' (expected 1-%d characters of A-Z a-z 0-9 _ . -)",
                       c->name, CONFIG__NAME_MAX);
            return -EINVAL;
        }
        if (c->name && config__name_taken(s, c, c->name)) {
            cfg_err_at(err, config__lookup(config__check_settings(item), "name"),
                       "duplicate check name '%s' in service '%s'", c->name, s->name);
            return -EINVAL;
        }
    }
    return config__check_names(s);
}

/* ---- services ---- */

/* Bytes with an optional binary suffix: 65536, 512K, 512KiB, 10M, 10MiB, 1G, 1GiB. */
static int config__size_parse(const char *s, uint64_t *out)
{
    static const struct {
        const char *suffix;
        unsigned shift;
    } units[] = {{"", 0}, {"K", 10}, {"KiB", 10}, {"M", 20}, {"MiB", 20}, {"G", 30}, {"GiB", 30}};
    uint64_t n = 0;
    const char *p = s;

    if (*p < '0' || *p > '9')
        return -EINVAL;
    for (; *p >= '0' && *p <= '9'; p++)
        if (__builtin_mul_overflow(n, 10, &n) || __builtin_add_overflow(n, *p - '0', &n))
            return -EINVAL;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(p, units[i].suffix) != 0)
            continue;
        if (n == 0 || n > (UINT64_MAX >> units[i].shift))
            return -EINVAL;
        *out = n << units[i].shift;
        return 0;
    }
    return -EINVAL;
}

static int config__log_max(struct service_cfg *s, struct fy_node *v, struct cfg_err *err)
{
    char buf[64];
    size_t len = 0;
    const char *t = NULL;

    if (fy_node_is_scalar(v) && !fy_node_is_null(v))
        t = fy_node_get_scalar(v, &len);
    if (t && len < sizeof(buf)) {
        memcpy(buf, t, len);
        buf[len] = '\0';
        if (config__size_parse(buf, &s->log_max_bytes) == 0)
            return 0;
    }
    cfg_err_at(err, v, "expected a size like 10MiB, 512KiB or 65536 (bytes, greater than 0)");
    return -EINVAL;
}

static int config__restart_check(const struct service_cfg *s, struct fy_node *svc,
                                 struct cfg_err *err)
{
    struct fy_node *restart = config__lookup(svc, "restart");

    if (s->restart.window_ms == 0) {
        cfg_err_at(err, config__lookup(restart, "window"), "window must be greater than 0");
        return -EINVAL;
    }
    if (s->restart.backoff_initial_ms > s->restart.backoff_max_ms) {
        cfg_err_at(err, config__lookup(restart, "backoff"),
                   "backoff initial (%llu ms) must not exceed max (%llu ms)",
                   (unsigned long long)s->restart.backoff_initial_ms,
                   (unsigned long long)s->restart.backoff_max_ms);
        return -EINVAL;
    }
    return 0;
}

/* A key that is a policy mapping for supervised services and a program
 * (argv) for external ones. */
static int config__polymorphic(struct service_cfg *s, struct fy_node *body, const char *key,
                               const struct cfg_field *map_table,
                               const struct cfg_field *argv_table, struct cfg_err *err)
{
    struct fy_node *v = config__lookup(body, key);
    if (!v)
        return 0;
    v = config__deref(v);
    if (fy_node_is_sequence(v))
        return cfg_read(v, &argv_table[0], s, err);
    return cfg_read(v, &map_table[0], s, err);
}

static const char *config__strategies_known(const struct config *c);

/* A warning at a node's position, kept in c->warnings for the caller to
 * print or log. Out of memory loses the warning, never the load. */
static void config__warn(struct config *c, struct fy_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void config__warn(struct config *c, struct fy_node *n, const char *fmt, ...)
{
    struct cfg_err at = {0};
    char msg[512], *line = NULL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(at.file, sizeof at.file, "%s", c->path);
    cfg_err_at(&at, n, "%s", msg);
    char **v = realloc(c->warnings, (c->n_warnings + 2) * sizeof *v);
    if (!v)
        return;
    c->warnings = v;
    if (asprintf(&line, "%s:%d:%d: warning: %s", at.file, at.line, at.col, msg) < 0)
        return;
    c->warnings[c->n_warnings++] = line;
    c->warnings[c->n_warnings] = NULL;
}

/* A strategy chain: a list of strategy names, each at most once. A strategy
 * recoverd does not implement yet is dropped with a warning, and a chain
 * left empty is an error: the configuration says what will really run. */
static int config__chain(struct config *c, struct fy_node *list, int *chain, unsigned *n,
                         struct cfg_err *err)
{
    struct fy_node *item;
    void *it = NULL;
    int seen[STRATEGY__COUNT] = {0};
    list = config__deref(list);
    if (!fy_node_is_sequence(list)) {
        cfg_err_at(err, list, "expected a list of strategies like [restart, repair]");
        return -EINVAL;
    }
    *n = 0;
    if (fy_node_sequence_item_count(list) == 0)
        return 0; /* [] is "the rules decide", as if absent */
    while ((item = fy_node_sequence_iterate(list, &it))) {
        char *name = config__text(item);
        int st = name ? strategy_parse(name) : -1;
        if (st < 0) {
            cfg_err_at(err, item,
                       "unknown strategy '%s' (expected restart, failover, rollback, "
                       "repair or replace)",
                       name ? name : "");
            free(name);
            return -EINVAL;
        }
        free(name);
        if (seen[st]++) {
            cfg_err_at(err, item, "strategy '%s' listed twice", strategy_name(st));
            return -EINVAL;
        }
        if (!c->reg->strategy_exists(st)) {
            config__warn(c, item, "strategy '%s' is not implemented yet: dropped from this chain",
                         strategy_name(st));
            continue;
        }
        chain[(*n)++] = st;
    }
    if (*n == 0) {
        cfg_err_at(err, list, "no usable strategy in this chain (implemented: %s)",
                   config__strategies_known(c));
        return -EINVAL;
    }
    return 0;
}

/* Supervised (command), external (pidfile) or watched only: never two. */
static int config__kind_check(const struct service_cfg *s, struct fy_node *body,
                              struct cfg_err *err)
{
    if (!s->command && !s->pidfile && s->n_checks == 0) {
        cfg_err_at(err, body,
                   "missing required key 'command' (or 'pidfile' for an external "
                   "service, or 'checks' for one that is only watched)");
        return -EINVAL;
    }
    if (s->command && s->pidfile) {
        cfg_err_at(err, config__lookup(body, "pidfile"),
                   "a service has either 'command' (recoverd runs it) or 'pidfile' (it runs "
                   "elsewhere), not both");
        return -EINVAL;
    }
    if (s->command && (s->start_cmd || s->restart_cmd || s->stop_cmd)) {
        const char *key = s->start_cmd ? "start" : s->restart_cmd ? "restart" : "stop";
        cfg_err_at(err, config__lookup(body, key),
                   "'%s' as a program is for external services (with 'pidfile'); a supervised "
                   "service takes 'restart'/'stop' policy mappings",
                   key);
        return -EINVAL;
    }
    return 0;
}

static bool config__name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > CONFIG__NAME_MAX)
        return false;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '.' || *s == '-'))
            return false;
    return true;
}

static int config__service(struct config *c, struct fy_node *key, struct fy_node *body,
                           struct cfg_err *err)
{
    struct service_cfg *s;
    struct fy_node *v;
    char *name = config__text(key);
    int r;

    if (!name || !config__name_ok(name)) {
        cfg_err_at(err, key,
                   "invalid service name '%s' (expected 1-%d characters of "
                   "A-Z a-z 0-9 _ . -)",
                   name ? name : "", CONFIG__NAME_MAX);
        free(name);
        return -EINVAL;
    }
    if (config_service(c, name)) {
        cfg_err_at(err, key, "duplicate service '%s'", name);
        free(name);
        return -EINVAL;
    }
    s = &c->services[c->n_services++];
    *s = (struct service_cfg){
        .name = name,
        .restart = {.max = 5,
                    .window_ms = 60000,
                    .stable_ms = 1000,
                    .backoff_initial_ms = 100,
                    .backoff_max_ms = 10000},
        .stop = {.signal = SIGTERM, .grace_ms = 5000},
        .log_max_bytes = 10u << 20,
        .verify_ms = 30000,
        .start_period_ms = 1000,
        .flap_window_ms = 60000,
        .repair = {.timeout_ms = 60000},
        .line = config__line(key),
    };
    body = config__deref(body);
    if ((r = cfg_map(body, config__service_fields, s, err)) < 0)
        return r;
    if ((v = config__lookup(body, "log_max")) && (r = config__log_max(s, v, err)) < 0)
        return r;
    if ((v = config__lookup(body, "checks")) && (r = config__checks(c, s, v, err)) < 0)
        return r;
    if ((r = config__polymorphic(s, body, "restart", config__restart_map_table,
                                 config__restart_argv_table, err)) < 0 ||
        (r = config__polymorphic(s, body, "stop", config__stop_map_table, config__stop_argv_table,
                                 err)) < 0)
        return r;
    if ((v = config__lookup(body, "recovery")) &&
        (r = config__chain(c, v, s->chain, &s->n_chain, err)) < 0)
        return r;
    if ((r = config__kind_check(s, body, err)) < 0)
        return r;
    return config__restart_check(s, body, err);
}

static int config__services(struct config *c, struct fy_node *map, struct cfg_err *err)
{
    struct fy_node_pair *p;
    void *it = NULL;
    int r;

    if (!fy_node_is_mapping(map)) {
        cfg_err_at(err, map, "expected a mapping of service names to services");
        return -EINVAL;
    }
    if (fy_node_mapping_item_count(map) == 0) {
        cfg_err_at(err, map, "no services defined (expected at least one under 'services')");
        return -EINVAL;
    }
    if (!(c->services = calloc((size_t)fy_node_mapping_item_count(map), sizeof(*c->services))))
        return -ENOMEM;
    while ((p = fy_node_mapping_iterate(map, &it)))
        if ((r = config__service(c, fy_node_pair_key(p), fy_node_pair_value(p), err)) < 0)
            return r;
    return 0;
}

/* ---- documents ---- */

static void config__diag_drop(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
}

/* A document without content has no node to point at: blame its start. */
static int config__empty(struct cfg_err *err)
{
    err->line = err->col = 1;
    snprintf(err->msg, sizeof(err->msg), "empty configuration (expected a mapping with services)");
    return -EINVAL;
}

/* One parsed YAML text; config__yaml_close releases it (NULL-safe members). */
struct config__yaml {
    struct fy_diag *diag;     /* collects libfyaml's errors instead of printing them */
    struct fy_parser *parser; /* owns doc */
    struct fy_document *doc;  /* the first and only document */
};

static void config__yaml_close(struct config__yaml *y)
{
    if (y->doc)
        fy_parse_document_destroy(y->parser, y->doc);
    if (y->parser)
        fy_parser_destroy(y->parser);
    if (y->diag)
        fy_diag_destroy(y->diag);
}

/* The first error libfyaml collected, with its own position and words. */
static int config__yaml_error(struct fy_diag *diag, struct cfg_err *err)
{
    struct fy_diag_error *e;
    void *it = NULL;

    while ((e = fy_diag_errors_iterate(diag, &it))) {
        if (e->type != FYET_ERROR)
            continue;
        err->line = e->line > 0 ? e->line : 1;
        err->col = e->column > 0 ? e->column : 1;
        snprintf(err->msg, sizeof(err->msg), "%s", e->msg ? e->msg : "invalid YAML");
        return -EINVAL;
    }
    return config__empty(err);
}

/* A second document ("---") would be silently ignored: refuse it. */
static int config__yaml_single(struct config__yaml *y, struct cfg_err *err)
{
    struct fy_document *next = fy_parse_load_document(y->parser);
    struct fy_document_state *st;
    const struct fy_mark *m;

    if (fy_diag_got_error(y->diag)) {
        if (next)
            fy_parse_document_destroy(y->parser, next);
        return config__yaml_error(y->diag, err);
    }
    if (!next)
        return 0;
    cfg_err_at(err, fy_document_root(next), "only one YAML document is allowed");
    st = fy_document_get_document_state(next);
    if (st && (m = fy_document_state_start_mark(st))) {
        err->line = m->line + 1; /* fy_mark is 0-based */
        err->col = m->column + 1;
    }
    fy_parse_document_destroy(y->parser, next);
    return -EINVAL;
}

/* Two kinds of byte never reach libfyaml 0.7.12, because it fails on them
 * (found by fuzz/config.c): one that is not UTF-8 right after a
 * directive's '%' makes it loop forever ("%\xf2"), and a tab after an
 * explicit key's value makes its clean-up crash ("? a:\t:", upstream
 * libfyaml issue 57). YAML is Unicode text, and a configuration needs no
 * tab (inside double quotes, write \t): both are refused first, at their
 * line and column. */
static int config__text_ok(const char *yaml, size_t len, struct cfg_err *err)
{
    size_t ok = escape_utf8_span(yaml, len), line_start = 0;
    const char *tab = memchr(yaml, '\t', ok);
    if (tab)
        ok = (size_t)(tab - yaml);
    else if (ok == len)
        return 0;
    err->line = 1;
    for (size_t i = 0; i < ok; i++)
        if (yaml[i] == '\n')
            err->line++, line_start = i + 1;
    err->col = 1;
    for (size_t i = line_start; i < ok; i++) /* characters, not bytes */
        err->col += ((unsigned char)yaml[i] & 0xC0) != 0x80;
    if (tab)
        snprintf(err->msg, sizeof(err->msg),
                 "tab character (indent and separate with spaces; inside double quotes "
                 "write \\t)");
    else
        snprintf(err->msg, sizeof(err->msg), "byte 0x%02x is not UTF-8 (expected UTF-8 text)",
                 (unsigned char)yaml[ok]);
    return -EINVAL;
}

/* Parse YAML text into y->doc; y must be zeroed, and closed even on error. */
static int config__yaml_parse(struct config__yaml *y, const char *yaml, size_t len,
                              struct cfg_err *err)
{
    struct fy_diag_cfg dc;
    struct fy_parse_cfg pc = {.flags = FYPCF_QUIET | FYPCF_ALLOW_DUPLICATE_KEYS};

    if (config__text_ok(yaml, len, err) < 0)
        return -EINVAL;
    fy_diag_cfg_default(&dc);
    dc.fp = NULL;
    dc.output_fn = config__diag_drop;
    dc.colorize = false;
    if (!(y->diag = fy_diag_create(&dc)))
        return -ENOMEM;
    fy_diag_set_collect_errors(y->diag, true);
    pc.diag = y->diag;
    if (!(y->parser = fy_parser_create(&pc)) || fy_parser_set_string(y->parser, yaml, len) < 0)
        return -ENOMEM;
    y->doc = fy_parse_load_document(y->parser);
    if (!y->doc || fy_diag_got_error(y->diag))
        return config__yaml_error(y->diag, err);
    return config__yaml_single(y, err);
}

/* DESIGN.md: software -> restart, failover; network -> failover, restart;
 * configuration -> rollback, restart; resource -> repair, restart,
 * failover; hardware -> failover, replace. */
static void config__rules_default(struct config *c)
{
    static const struct {
        enum fault_type type;
        int chain[3];
        unsigned n;
    } defaults[] = {
        {FAULT_SOFTWARE, {STRATEGY_RESTART, STRATEGY_FAILOVER}, 2},
        {FAULT_NETWORK, {STRATEGY_FAILOVER, STRATEGY_RESTART}, 2},
        {FAULT_CONFIGURATION, {STRATEGY_ROLLBACK, STRATEGY_RESTART}, 2},
        {FAULT_RESOURCE, {STRATEGY_REPAIR, STRATEGY_RESTART, STRATEGY_FAILOVER}, 3},
        {FAULT_HARDWARE, {STRATEGY_FAILOVER, STRATEGY_REPLACE, STRATEGY_RESTART}, 3},
    };
    /* What is not implemented yet is left out, silently: the user did not
     * ask for it. Hardware falls back on restart until failover and
     * replace exist. */
    for (size_t i = 0; i < sizeof defaults / sizeof *defaults; i++) {
        unsigned n = 0;
        for (unsigned k = 0; k < defaults[i].n; k++)
            if (c->reg->strategy_exists(defaults[i].chain[k]))
                c->rules[defaults[i].type][n++] = defaults[i].chain[k];
        c->n_rules[defaults[i].type] = n;
    }
}

/* "restart, repair": the strategies this build implements, for messages. */
static const char *config__strategies_known(const struct config *c)
{
    static char buf[128];
    size_t len = 0;
    buf[0] = '\0';
    for (int st = 0; st < STRATEGY__COUNT; st++)
        if (c->reg->strategy_exists(st))
            len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s", len ? ", " : "",
                                    strategy_name(st));
    return buf;
}

/* rules: { software: [restart, repair], ... } replaces the chain of each
 * type it names. */
static int config__rules(struct config *c, struct fy_node *map, struct cfg_err *err)
{
    struct fy_node_pair *p;
    void *it = NULL;
    map = config__deref(map);
    if (!fy_node_is_mapping(map)) {
        cfg_err_at(err, map, "expected a mapping of fault types to strategy lists");
        return -EINVAL;
    }
    while ((p = fy_node_mapping_iterate(map, &it))) {
        char *name = config__text(fy_node_pair_key(p));
        int t = name ? fault_type_parse(name) : -1;
        if (t < 0) {
            cfg_err_at(err, fy_node_pair_key(p),
                       "unknown fault type '%s' (expected hardware, "
                       "software, network, configuration or resource)",
                       name ? name : "");
            free(name);
            return -EINVAL;
        }
        free(name);
        /* A rule left with nothing implemented keeps the default chain, so
         * a rules: block written for later strategies stays valid. */
        int keep[STRATEGY__COUNT];
        unsigned n_keep = c->n_rules[t];
        memcpy(keep, c->rules[t], sizeof keep);
        struct cfg_err none = *err;
        int r = config__chain(c, fy_node_pair_value(p), c->rules[t], &c->n_rules[t], &none);
        if (r < 0 && c->n_rules[t] == 0 && strstr(none.msg, "no usable strategy")) {
            memcpy(c->rules[t], keep, sizeof keep);
            c->n_rules[t] = n_keep;
            config__warn(c, fy_node_pair_value(p),
                         "no strategy of this rule is implemented "
                         "yet: the default chain for %s faults applies",
                         fault_type_name(t));
            continue;
        }
        if (r < 0) {
            *err = none;
            return r;
        }
    }
    return 0;
}

static int config__alerts(struct config *c, struct fy_node *v, struct cfg_err *err)
{
    struct fy_node *list, *item;
    void *it = NULL;
    int r;
    if ((r = cfg_map(v, config__alerts_fields, c, err)) < 0)
        return r;
    if (!(list = config__lookup(config__deref(v), "webhooks")))
        return 0;
    list = config__deref(list);
    if (!fy_node_is_sequence(list)) {
        cfg_err_at(err, list, "expected a list of webhooks like '- {url: http://...}'");
        return -EINVAL;
    }
    c->alerts.webhooks = calloc((size_t)fy_node_sequence_item_count(list) + 1,
                                sizeof *c->alerts.webhooks);
    if (!c->alerts.webhooks)
        return -ENOMEM;
    while ((item = fy_node_sequence_iterate(list, &it))) {
        struct webhook_cfg *w = &c->alerts.webhooks[c->alerts.n_webhooks++];
        *w = (struct webhook_cfg){.min_severity = SEVERITY_HIGH,
                                  .repeat_ms = 3600000,
                                  .timeout_ms = 5000,
                                  .retries = 5};
        if ((r = cfg_map(item, config__webhook_fields, w, err)) < 0)
            return r;
        /* The alerter's own parser: a url it cannot use is an error here,
         * not an alert lost later. */
        struct url u;
        char why[128];
        if (url_parse(w->url, &u, why, sizeof why) < 0) {
            cfg_err_at(err, config__lookup(config__deref(item), "url"), "invalid webhook url: %s",
                       why);
            return -EINVAL;
        }
    }
    return 0;
}

/* Every depends_on names a service, and the graph has no cycle (a cycle
 * has no start order). Depth-first search with colours. */
static int config__deps_visit(const struct config *c, size_t i, unsigned char *colour,
                              struct fy_node *services, struct cfg_err *err)
{
    const struct service_cfg *s = &c->services[i];
    colour[i] = 1;
    for (char **d = s->depends_on; d && *d; d++) {
        const struct service_cfg *dep = config_service(c, *d);
        struct fy_node *at = config__lookup(config__deref(config__lookup(services, s->name)),
                                            "depends_on");
        if (!dep) {
            cfg_err_at(err, at, "service '%s' depends on '%s', which is not defined", s->name, *d);
            return -EINVAL;
        }
        size_t k = (size_t)(dep - c->services);
        if (k == i || colour[k] == 1) {
            cfg_err_at(err, at,
                       "dependency cycle: '%s' depends on '%s', which depends back on "
                       "'%s'",
                       s->name, *d, s->name);
            return -EINVAL;
        }
        if (colour[k] == 0 && config__deps_visit(c, k, colour, services, err) < 0)
            return -EINVAL;
    }
    colour[i] = 2;
    return 0;
}

static int config__deps(const struct config *c, struct fy_node *services, struct cfg_err *err)
{
    unsigned char *colour = calloc(c->n_services + 1, 1);
    int r = colour ? 0 : -ENOMEM;
    for (size_t i = 0; r == 0 && i < c->n_services; i++)
        if (colour[i] == 0)
            r = config__deps_visit(c, i, colour, services, err);
    free(colour);
    return r;
}

static int config__build(struct config *c, struct fy_document *doc, struct cfg_err *err)
{
    struct fy_node *root = fy_document_root(doc), *v;
    int r;

    if (!root || fy_node_is_null(root))
        return config__empty(err);
    if ((r = cfg_map(root, config__fields, c, err)) < 0)
        return r;
    if (!c->state_dir && !(c->state_dir = strdup("./var")))
        return -ENOMEM;
    if (c->max_concurrent == 0) {
        cfg_err_at(err, config__lookup(root, "max_concurrent_recoveries"),
                   "max_concurrent_recoveries must be at least 1");
        return -EINVAL;
    }
    if ((v = config__lookup(root, "rules")) && (r = config__rules(c, v, err)) < 0)
        return r;
    if ((v = config__lookup(root, "alerts")) && (r = config__alerts(c, v, err)) < 0)
        return r;
    v = config__lookup(root, "services");
    if ((r = config__services(c, v, err)) < 0)
        return r;
    return config__deps(c, config__deref(v), err);
}

static void config__api_default(struct sockaddr_storage *ss)
{
    struct sockaddr_in *in = (struct sockaddr_in *)ss;

    memset(ss, 0, sizeof(*ss));
    in->sin_family = AF_INET;
    in->sin_port = htons(7411);
    in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

struct config *config_load_string(const char *name, const char *yaml, size_t len,
                                  const struct cfg_registry *reg, struct cfg_err *err)
{
    struct cfg_err scratch;
    struct config__yaml y = {0};
    struct config *c = NULL;
    int r;

    if (!err)
        err = &scratch;
    memset(err, 0, sizeof(*err));
    snprintf(err->file, sizeof(err->file), "%s", name ? name : "<config>");
    if ((r = config__yaml_parse(&y, yaml ? yaml : "", yaml ? len : 0, err)) < 0)
        goto fail;
    r = -ENOMEM;
    if (!(c = calloc(1, sizeof(*c))) || !(c->path = strdup(err->file)))
        goto fail;
    c->quiet_ms = 10000;
    c->max_concurrent = 3;
    c->action_timeout_ms = 60000;
    c->reg = reg;
    config__rules_default(c);
    config__api_default(&c->api);
    if ((r = config__build(c, y.doc, err)) < 0)
        goto fail;
    config__yaml_close(&y);
    return c;
fail:
    if (r == -ENOMEM && !err->msg[0])
        snprintf(err->msg, sizeof(err->msg), "out of memory");
    config_free(c);
    config__yaml_close(&y);
    return NULL;
}

/* Read the whole file ourselves: open errors get our own words, and
 * libfyaml never touches the path. */
static char *config__slurp(const char *path, size_t *len, struct cfg_err *err)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL, *grown;
    size_t cap = 0, n = 0;

    if (!f) {
        snprintf(err->msg, sizeof(err->msg), "cannot open: %s", strerror(errno));
        return NULL;
    }
    do {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            if (cap > CONFIG__FILE_MAX) {
                snprintf(err->msg, sizeof(err->msg), "file larger than %u bytes", CONFIG__FILE_MAX);
                goto fail;
            }
            if (!(grown = realloc(buf, cap))) {
                snprintf(err->msg, sizeof(err->msg), "out of memory");
                goto fail;
            }
            buf = grown;
        }
        n += fread(buf + n, 1, cap - n, f);
    } while (n == cap && !ferror(f));
    if (ferror(f)) {
        snprintf(err->msg, sizeof(err->msg), "cannot read: %s", strerror(errno));
        goto fail;
    }
    fclose(f);
    *len = n;
    return buf;
fail:
    free(buf);
    fclose(f);
    return NULL;
}

struct config *config_load(const char *path, const struct cfg_registry *reg, struct cfg_err *err)
{
    struct cfg_err scratch;
    struct config *c;
    size_t len = 0;
    char *yaml;

    if (!err)
        err = &scratch;
    memset(err, 0, sizeof(*err));
    snprintf(err->file, sizeof(err->file), "%s", path);
    if (!(yaml = config__slurp(path, &len, err)))
        return NULL;
    c = config_load_string(path, yaml, len, reg, err);
    free(yaml);
    return c;
}

/* ---- comparison, for reloads ---- */

static bool config__eq_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool config__eq_strv(char *const *a, char *const *b)
{
    if (!a || !b)
        return a == b;
    for (; *a && *b; a++, b++)
        if (strcmp(*a, *b) != 0)
            return false;
    return !*a && !*b;
}

/* Equal as the field table reads them. */
static bool config__eq_fields(const struct cfg_field *f, const char *a, const char *b)
{
    for (; f && f->key; f++) {
        const void *pa = a + f->offset, *pb = b + f->offset;
        bool eq;
        switch (f->type) {
        case CFG_STRING: eq = config__eq_str(*(char *const *)pa, *(char *const *)pb); break;
        case CFG_ARGV:
        case CFG_ENV:
        case CFG_PAIRS: eq = config__eq_strv(*(char **const *)pa, *(char **const *)pb); break;
        case CFG_DURATION: eq = *(const uint64_t *)pa == *(const uint64_t *)pb; break;
        case CFG_UINT: eq = *(const unsigned *)pa == *(const unsigned *)pb; break;
        case CFG_BOOL: eq = *(const bool *)pa == *(const bool *)pb; break;
        case CFG_SIGNAL:
        case CFG_SEVERITY:
        case CFG_FAULT_TYPE:
        case CFG_IMPACT: eq = *(const int *)pa == *(const int *)pb; break;
        case CFG_ADDRESS: eq = memcmp(pa, pb, sizeof(struct sockaddr_storage)) == 0; break;
        case CFG_MAP: eq = config__eq_fields(f->sub, (const char *)pa, (const char *)pb); break;
        default: eq = false;
        }
        if (!eq)
            return false;
    }
    return true;
}

bool config_check_equal(const struct check_cfg *a, const struct check_cfg *b)
{
    return a->ops == b->ops && config__eq_str(a->name, b->name) &&
           a->interval_ms == b->interval_ms && a->timeout_ms == b->timeout_ms &&
           a->fall == b->fall && a->rise == b->rise && a->severity == b->severity &&
           a->type == b->type && a->impact == b->impact &&
           config__eq_fields(a->fields, a->params, b->params);
}

bool config_service_equal(const struct service_cfg *a, const struct service_cfg *b)
{
    if (!config__eq_fields(config__service_fields, (const char *)a, (const char *)b) ||
        !config__eq_fields(config__restart_map_table, (const char *)a, (const char *)b) ||
        !config__eq_fields(config__stop_map_table, (const char *)a, (const char *)b) ||
        !config__eq_fields(config__restart_argv_table, (const char *)a, (const char *)b) ||
        !config__eq_fields(config__stop_argv_table, (const char *)a, (const char *)b) ||
        a->log_max_bytes != b->log_max_bytes || a->n_chain != b->n_chain ||
        memcmp(a->chain, b->chain, a->n_chain * sizeof *a->chain) != 0 ||
        a->n_checks != b->n_checks)
        return false;
    for (size_t i = 0; i < a->n_checks; i++)
        if (!config_check_equal(&a->checks[i], &b->checks[i]))
            return false;
    return true;
}

bool config_process_equal(const struct service_cfg *a, const struct service_cfg *b)
{
    return config__eq_strv(a->command, b->command) && config__eq_str(a->pidfile, b->pidfile) &&
           config__eq_str(a->cwd, b->cwd) && config__eq_strv(a->env, b->env) &&
           a->log_max_bytes == b->log_max_bytes;
}
