/* Loading and validating the YAML configuration into struct config. */
#include "config/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libfyaml.h>

#include "lib/escape.h"
#include "lib/hostnames.h"
#include "lib/model.h"
#include "lib/statedir.h"
#include "lib/url.h"

#define CONFIG__FILE_MAX (4u << 20) /* bytes; a config file larger than this is a mistake */
#define CONFIG__NAME_MAX 63         /* characters of a service name */

static const struct cfg_field config__api_fields[] = {
    {"listen", CFG_ADDRESS, offsetof(struct api_cfg, listen), 0, NULL},
    {"hostnames", CFG_ARGV, offsetof(struct api_cfg, hostnames), 0, NULL},
    {"allow_remote", CFG_BOOL, offsetof(struct api_cfg, allow_remote), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

/* max_size is read by config__journal (a byte size). */
static const struct cfg_field config__journal_fields[] = {
    {"max_age", CFG_DURATION, offsetof(struct journal_cfg, max_age_ms), 0, NULL},
    {"max_size", CFG_MAP, 0, 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

/* "services" has no sub table: config__services reads it (names are keys). */
static const struct cfg_field config__fields[] = {
    {"state_dir", CFG_PATH, offsetof(struct config, state_dir), 0, NULL},
    {"api", CFG_MAP, offsetof(struct config, api), 0, config__api_fields},
    {"quiet", CFG_DURATION, offsetof(struct config, quiet_ms), 0, NULL},
    {"max_concurrent_recoveries", CFG_UINT, offsetof(struct config, max_concurrent), 0, NULL},
    {"max_starting", CFG_UINT, offsetof(struct config, max_starting), 0, NULL},
    {"action_timeout", CFG_DURATION, offsetof(struct config, action_timeout_ms), 0, NULL},
    {"rules", CFG_MAP, 0, 0, NULL},
    {"alerts", CFG_MAP, 0, 0, NULL},
    {"services", CFG_MAP, 0, 1, NULL},
    {"journal", CFG_MAP, offsetof(struct config, journal), 0, config__journal_fields},
    {NULL, 0, 0, 0, NULL},
};

static const struct cfg_field config__webhook_fields[] = {
    {"url", CFG_STRING, offsetof(struct webhook_cfg, url), 1, NULL},
    {"min_severity", CFG_SEVERITY, offsetof(struct webhook_cfg, min_severity), 0, NULL},
    {"repeat_interval", CFG_DURATION, offsetof(struct webhook_cfg, repeat_ms), 0, NULL},
    {"timeout", CFG_DURATION, offsetof(struct webhook_cfg, timeout_ms), 0, NULL},
    {"retries", CFG_UINT, offsetof(struct webhook_cfg, retries), 0, NULL},
    {"max_pending", CFG_UINT, offsetof(struct webhook_cfg, max_pending), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

static const struct cfg_field config__alerts_fields[] = {
    {"webhooks", CFG_MAP, 0, 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

static const struct cfg_field config__stop_fields[] = {
    {"signal", CFG_SIGNAL, offsetof(struct stop_cfg, signal), 0, NULL},
    {"grace", CFG_DURATION, offsetof(struct stop_cfg, grace_ms), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

/* "restart" and "stop" are a program (argv) for an external service and a
 * mapping otherwise: the restart strategy's params, the supervisor's stop
 * policy. A list is read here (config__programs); a mapping by its owner. */
static const struct cfg_field config__program_fields[] = {
    {"restart", CFG_COMMAND, offsetof(struct service_cfg, restart_cmd), 0, NULL},
    {"stop", CFG_COMMAND, offsetof(struct service_cfg, stop_cmd), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};
static const struct cfg_field config__stop_table[] = {
    {"stop", CFG_MAP, offsetof(struct service_cfg, stop), 0, config__stop_fields},
    {NULL, 0, 0, 0, NULL},
};

/* checks and log_max are read by config__service itself: a check's keys
 * depend on its kind, and a byte size needs 64 bits and unit suffixes.
 * The strategies' keys ("repair"...) follow these (config__service_table). */
static const struct cfg_field config__service_fields[] = {
    {"command", CFG_COMMAND, offsetof(struct service_cfg, command), 0, NULL},
    {"pidfile", CFG_PATH, offsetof(struct service_cfg, pidfile), 0, NULL},
    {"start", CFG_COMMAND, offsetof(struct service_cfg, start_cmd), 0, NULL},
    {"cwd", CFG_PATH, offsetof(struct service_cfg, cwd), 0, NULL},
    {"env", CFG_ENV, offsetof(struct service_cfg, env), 0, NULL},
    {"depends_on", CFG_ARGV, offsetof(struct service_cfg, depends_on), 0, NULL},
    {"verify", CFG_DURATION, offsetof(struct service_cfg, verify_ms), 0, NULL},
    {"start_period", CFG_DURATION, offsetof(struct service_cfg, start_period_ms), 0, NULL},
    {"flap_window", CFG_DURATION, offsetof(struct service_cfg, flap_window_ms), 0, NULL},
    {"recovery", CFG_MAP, 0, 0, NULL},
    {"log_max", CFG_MAP, 0, 0, NULL},
    {"checks", CFG_MAP, 0, 0, NULL},
    {"restart", CFG_MAP, 0, 0, NULL},
    {"stop", CFG_MAP, 0, 0, NULL},
    {"user", CFG_STRING, offsetof(struct service_cfg, ident.user), 0, NULL},
    {"group", CFG_STRING, offsetof(struct service_cfg, ident.group), 0, NULL},
    {"umask", CFG_MAP, 0, 0, NULL},
    {"limits", CFG_MAP, 0, 0, NULL},
    {"no_new_privs", CFG_BOOL, offsetof(struct service_cfg, ident.cred.no_new_privs), 0, NULL},
    {"cgroup", CFG_MAP, 0, 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

/* memory_max (a size) and cpu_max ("QUOTA PERIOD") are read by
 * config__cgroup itself. */
static const struct cfg_field config__cgroup_fields[] = {
    {"memory_max", CFG_MAP, 0, 0, NULL},
    {"pids_max", CFG_UINT, offsetof(struct cgroup_cfg, pids_max), 0, NULL},
    {"cpu_max", CFG_MAP, 0, 0, NULL},
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
    {"user", CFG_STRING, offsetof(struct check_cfg, ident.user), 0, NULL},
    {"group", CFG_STRING, offsetof(struct check_cfg, ident.group), 0, NULL},
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

static struct cfg_pos config__pos(struct fy_node *n);

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
    cfg_fields_free(config__check_fields, c);
    free(c->ident.groups);
    if (c->fields && c->params)
        cfg_fields_free(c->fields, c->params);
    free(c->params);
}

static void config__service_free(struct service_cfg *s)
{
    cfg_fields_free(config__service_fields, s);
    cfg_fields_free(config__program_fields, s);
    for (int st = 0; st < STRATEGY__COUNT; st++) {
        if (s->strategy_ident[st])
            free(s->strategy_ident[st]->groups);
        cfg_fields_free(s->strategy_fields[st], s->strategy[st]);
        free(s->strategy[st]);
    }
    for (size_t i = 0; i < s->n_checks; i++)
        config__check_free(&s->checks[i]);
    free(s->checks);
    free(s->name);
    free(s->ident.groups);
    for (size_t i = 0; i < s->n_needs; i++) {
        free(s->needs[i].path);
        free(s->needs[i].what);
    }
    free(s->needs);
    free(s->problem);
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

const void *config_strategy(const struct service_cfg *s, int strategy)
{
    return s && (unsigned)strategy < STRATEGY__COUNT ? s->strategy[strategy] : NULL;
}

/* The registry knows strategy st; out may be NULL. */
static bool config__strategy_kind(const struct config *c, int st, struct cfg_strategy *out)
{
    struct cfg_strategy scratch;
    return c->reg->strategy_kind(st, out ? out : &scratch) == 0;
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
                            .line = config__pos(item).line,
                            .col = config__pos(item).col};
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
    /* As many as listed (a check is 300 bytes a service); at least one: calloc(0) may be NULL. */
    size_t n = (size_t)fy_node_sequence_item_count(list);
    if (!(s->checks = calloc(n ? n : 1, sizeof(*s->checks))))
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

/* A byte size at v into *out (> 0). */
static int config__bytes(struct fy_node *v, uint64_t *out, struct cfg_err *err)
{
    char buf[64];
    size_t len = 0;
    const char *t = NULL;

    if (fy_node_is_scalar(v) && !fy_node_is_null(v))
        t = fy_node_get_scalar(v, &len);
    if (t && len < sizeof(buf)) {
        memcpy(buf, t, len);
        buf[len] = '\0';
        if (config__size_parse(buf, out) == 0)
            return 0;
    }
    cfg_err_at(err, v, "expected a size like 10MiB, 512KiB or 65536 (bytes, greater than 0)");
    return -EINVAL;
}

/* cpu.max as the kernel takes it: "QUOTA PERIOD" in microseconds, QUOTA
 * "max" for none, PERIOD 100000 when left out; the kernel's bounds. */
static int config__cpu_max(struct cgroup_cfg *cg, struct fy_node *v, struct cfg_err *err)
{
    char buf[64], quota[32] = "", extra[2] = "";
    unsigned long long q = 0, period = 100000;
    size_t len = 0;
    const char *t = fy_node_is_scalar(v) ? fy_node_get_scalar(v, &len) : NULL;
    if (t && len < sizeof buf) {
        memcpy(buf, t, len);
        buf[len] = '\0';
        int n = sscanf(buf, "%31s %llu %1s", quota, &period, extra);
        bool is_max = !strcmp(quota, "max");
        if ((n == 1 || n == 2) && (is_max || sscanf(quota, "%llu%1s", &q, extra) == 1) &&
            (is_max || (q >= 1000 && q <= 1000000ull * 1000)) && period >= 1000 &&
            period <= 1000000) {
            cg->cpu_quota_us = is_max ? UINT64_MAX : q;
            cg->cpu_period_us = period;
            return 0;
        }
    }
    cfg_err_at(err, v,
               "expected cpu_max as \"QUOTA PERIOD\" in microseconds, like \"50000 100000\" (half "
               "a "
               "CPU): QUOTA 1000 or more, or max; PERIOD 1000 to 1000000");
    return -EINVAL;
}

/* cgroup: { memory_max: 256MiB, pids_max: 100, cpu_max: "50000 100000" } */
static int config__cgroup(struct service_cfg *s, struct fy_node *v, struct cfg_err *err)
{
    struct fy_node *m;
    int r;
    if (!s->command) {
        cfg_err_at(err, v, "'cgroup' limits are for a supervised service (one with 'command')");
        return -EINVAL;
    }
    if ((r = cfg_map(v, config__cgroup_fields, &s->cgroup, err)) < 0)
        return r;
    if ((m = config__lookup(v, "pids_max")) && s->cgroup.pids_max == 0) {
        cfg_err_at(err, m, "pids_max must be greater than 0");
        return -EINVAL;
    }
    if ((m = config__lookup(v, "memory_max"))) {
        char *t = config__text(m);
        r = t ? config__size_parse(t, &s->cgroup.memory_max) : -EINVAL;
        free(t);
        if (r < 0) {
            cfg_err_at(err, m, "expected memory_max as a size like 256MiB, 1GiB or 65536 (bytes)");
            return r;
        }
    }
    if ((m = config__lookup(v, "cpu_max")))
        return config__cpu_max(&s->cgroup, m, err);
    return 0;
}

static int config__log_max(struct service_cfg *s, struct fy_node *v, struct cfg_err *err)
{
    return config__bytes(v, &s->log_max_bytes, err);
}

/* restart: [argv] / stop: [argv]: an external service's programs. */
static int config__programs(struct service_cfg *s, struct fy_node *body, struct cfg_err *err)
{
    struct fy_node *v;
    int r;
    for (const struct cfg_field *f = config__program_fields; f->key; f++)
        if ((v = config__lookup(body, f->key)) && fy_node_is_sequence(v) &&
            (r = cfg_read(v, f, s, err)) < 0)
            return r;
    return 0;
}

static bool config__is_program(struct fy_node *v, const char *key)
{
    for (const struct cfg_field *f = config__program_fields; f->key; f++)
        if (!strcmp(f->key, key))
            return fy_node_is_sequence(v);
    return false;
}

/* stop: {signal, grace}, the supervisor's; a list is a program. */
static int config__stop(struct service_cfg *s, struct fy_node *body, struct cfg_err *err)
{
    struct fy_node *v = config__lookup(body, "stop");
    return v && !config__is_program(v, "stop") ? cfg_read(v, config__stop_table, s, err) : 0;
}

/* Every implemented strategy gets its params, with its defaults, and its
 * mapping read over them when the service has its key. */
static int config__strategies(const struct config *c, struct service_cfg *s, struct fy_node *body,
                              struct cfg_err *err)
{
    struct cfg_strategy k;
    struct fy_node *v;
    int r;
    for (int st = 0; st < STRATEGY__COUNT; st++) {
        if (!config__strategy_kind(c, st, &k) || k.params_size == 0)
            continue;
        if (!(s->strategy[st] = calloc(1, k.params_size)))
            return -ENOMEM;
        s->strategy_fields[st] = k.fields;
        if (k.params_init)
            k.params_init(s->strategy[st]);
        s->strategy_ident[st] = k.ident ? k.ident(s->strategy[st]) : NULL;
        if (k.key && k.fields && (v = config__lookup(body, k.key)) &&
            !config__is_program(v, k.key) && (r = cfg_map(v, k.fields, s->strategy[st], err)) < 0)
            return r;
    }
    return 0;
}

/* A strategy's params as a whole, once the service is read; an error
 * points at the key the strategy names, else at its mapping. */
static int config__strategies_check(const struct config *c, const struct service_cfg *s,
                                    struct fy_node *key, struct fy_node *body, struct cfg_err *err)
{
    struct cfg_strategy k;
    for (int st = 0; st < STRATEGY__COUNT; st++) {
        char why[256] = "";
        const char *at = NULL;
        if (!s->strategy[st] || !config__strategy_kind(c, st, &k) || !k.validate ||
            k.validate(s->strategy[st], s, why, sizeof why, &at) == 0)
            continue;
        struct fy_node *map = k.key ? config__lookup(body, k.key) : NULL;
        struct fy_node *n = at && map ? config__lookup(map, at) : NULL;
        if (!why[0])
            snprintf(why, sizeof why, "invalid %s settings", strategy_name(st));
        cfg_err_at(err, n ? n : map ? map : key, "%s", why);
        return -EINVAL;
    }
    return 0;
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
        if (!config__strategy_kind(c, st, NULL)) {
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

/* The keys of a service: config__service_fields, then each strategy's own
 * (reserved: config__strategies reads them), so one cfg_map sees them all
 * and an unknown key is still an error. Free with free(). */
static struct cfg_field *config__service_table(const struct config *c)
{
    size_t n = 0;
    struct cfg_strategy k;
    struct cfg_field *t;
    while (config__service_fields[n].key)
        n++;
    if (!(t = calloc(n + STRATEGY__COUNT + 1, sizeof *t)))
        return NULL;
    memcpy(t, config__service_fields, n * sizeof *t);
    for (int st = 0; st < STRATEGY__COUNT; st++) {
        bool taken = false;
        if (!config__strategy_kind(c, st, &k) || !k.key)
            continue;
        for (size_t i = 0; i < n && !taken; i++)
            taken = !strcmp(t[i].key, k.key); /* restart: also an external program */
        if (!taken)
            t[n++] = (struct cfg_field){k.key, CFG_MAP, 0, 0, NULL};
    }
    return t;
}

/* ---- paths ---- */

/* A relative *p becomes base/p ("./" prefixes dropped, "." is base). */
static int config__absolute(char **p, const char *base)
{
    const char *rel = *p;
    char *abs = NULL;

    if (!rel || rel[0] == '/')
        return 0;
    while (rel[0] == '.' && rel[1] == '/')
        rel += strspn(rel + 1, "/") + 1;
    if (!*rel || !strcmp(rel, "."))
        abs = strdup(base);
    else if (asprintf(&abs, "%s/%s", base, rel) < 0)
        abs = NULL;
    if (!abs)
        return -ENOMEM;
    free(*p);
    *p = abs;
    return 0;
}

/* Every CFG_PATH of obj against dir, every CFG_COMMAND's program against
 * prog (a bare name is left for PATH to find). */
static int config__paths_of(const struct cfg_field *f, char *obj, const char *dir, const char *prog)
{
    int r = 0;

    for (; r == 0 && f && f->key; f++) {
        void *p = obj + f->offset;
        char **argv = f->type == CFG_COMMAND ? *(char ***)p : NULL;
        if (f->type == CFG_PATH)
            r = config__absolute(p, dir);
        else if (argv && argv[0] && strchr(argv[0], '/'))
            r = config__absolute(&argv[0], prog);
        else if (f->type == CFG_MAP && f->sub)
            r = config__paths_of(f->sub, p, dir, prog);
    }
    return r;
}

/* A relative path in a configuration file means one beside it (dir), never
 * one in the working directory of whoever started recoverd. A program (a
 * relative argv[0] with a '/') is where the service's cwd would find it.
 * Before the needs are taken (config__privileges): the preflight judges
 * the paths that will be used. */
static int config__service_paths(struct service_cfg *s, const char *dir)
{
    int r = config__absolute(&s->cwd, dir);
    const char *prog = s->cwd ? s->cwd : dir;
    if (r < 0 || (r = config__paths_of(config__service_fields, (char *)s, dir, prog)) < 0 ||
        (r = config__paths_of(config__program_fields, (char *)s, dir, prog)) < 0)
        return r;
    for (int st = 0; r == 0 && st < STRATEGY__COUNT; st++)
        if (s->strategy[st])
            r = config__paths_of(s->strategy_fields[st], s->strategy[st], dir, prog);
    for (size_t k = 0; r == 0 && k < s->n_checks; k++)
        r = config__paths_of(s->checks[k].fields, s->checks[k].params, dir, prog);
    return r;
}

/* ---- least privilege: user, group, umask, limits; what a service names ---- */

static struct cfg_pos config__pos(struct fy_node *n)
{
    struct cfg_err e;
    cfg_err_at(&e, n, "-");
    return (struct cfg_pos){e.line, e.col};
}

/* limits: keys, the resource each sets, and whether it counts bytes (then
 * a binary suffix is allowed: 512MiB). */
static const struct {
    const char *key;
    int resource;
    bool bytes;
} config__limits[SPAWN_LIMITS_MAX] = {
    {"nofile", RLIMIT_NOFILE, false}, {"core", RLIMIT_CORE, true},
    {"nproc", RLIMIT_NPROC, false},   {"memlock", RLIMIT_MEMLOCK, true},
    {"as", RLIMIT_AS, true},          {"stack", RLIMIT_STACK, true},
    {"cpu", RLIMIT_CPU, false},       {"fsize", RLIMIT_FSIZE, true},
};

/* A limit: "infinity" or "unlimited", or a number (bytes may take K, KiB,
 * M, MiB, G, GiB, T, TiB). 0 or -EINVAL. */
static int config__limit_parse(const char *t, bool bytes, uint64_t *out)
{
    static const struct {
        const char *suffix;
        unsigned shift;
    } units[] = {{"", 0},   {"K", 10},   {"KiB", 10}, {"M", 20},  {"MiB", 20},
                 {"G", 30}, {"GiB", 30}, {"T", 40},   {"TiB", 40}};
    uint64_t n = 0;
    const char *p = t;
    if (!strcmp(t, "infinity") || !strcmp(t, "unlimited")) {
        *out = RLIM_INFINITY;
        return 0;
    }
    if (*p < '0' || *p > '9')
        return -EINVAL;
    for (; *p >= '0' && *p <= '9'; p++)
        if (__builtin_mul_overflow(n, 10, &n) || __builtin_add_overflow(n, *p - '0', &n))
            return -EINVAL;
    for (size_t i = 0; i < sizeof units / sizeof *units; i++) {
        if (strcmp(p, units[i].suffix) != 0 || (i > 0 && !bytes))
            continue;
        if (n > (UINT64_MAX >> units[i].shift) || (n << units[i].shift) >= RLIM_INFINITY)
            return -EINVAL;
        *out = n << units[i].shift;
        return 0;
    }
    return -EINVAL;
}

static bool config__limit_set(const struct spawn_cred *c, int resource)
{
    for (unsigned i = 0; i < c->n_limits; i++)
        if (c->limits[i].resource == resource)
            return true;
    return false;
}

static int config__limits_read(struct service_cfg *s, struct fy_node *map, struct cfg_err *err)
{
    struct fy_node_pair *p;
    void *it = NULL;
    map = config__deref(map);
    if (!fy_node_is_mapping(map)) {
        cfg_err_at(err, map, "expected a mapping of limits like { nofile: 4096, core: 0 }");
        return -EINVAL;
    }
    while ((p = fy_node_mapping_iterate(map, &it))) {
        char *key = config__text(fy_node_pair_key(p));
        struct fy_node *v = config__deref(fy_node_pair_value(p));
        char *val = config__text(v);
        size_t k = 0;
        while (k < SPAWN_LIMITS_MAX && !(key && !strcmp(key, config__limits[k].key)))
            k++;
        struct spawn_cred *c = &s->ident.cred;
        int r = 0;
        if (k == SPAWN_LIMITS_MAX) {
            cfg_err_at(err, fy_node_pair_key(p),
                       "unknown limit '%s' (expected nofile, core, nproc, memlock, as, stack, "
                       "cpu or fsize)",
                       key ? key : "");
            r = -EINVAL;
        } else if (config__limit_set(c, config__limits[k].resource)) {
            cfg_err_at(err, fy_node_pair_key(p), "duplicate limit '%s'", key);
            r = -EINVAL;
        } else if (!val || config__limit_parse(val, config__limits[k].bytes,
                                               &c->limits[c->n_limits].value) < 0) {
            cfg_err_at(err, v, "expected a number%s, or infinity (unlimited)",
                       config__limits[k].bytes ? " of bytes like 0, 4096 or 512MiB"
                       : config__limits[k].resource == RLIMIT_CPU ? " of seconds"
                                                                  : "");
            r = -EINVAL;
        } else {
            s->limit_at[c->n_limits] = config__pos(v);
            c->limits[c->n_limits++].resource = config__limits[k].resource;
        }
        free(key);
        free(val);
        if (r < 0)
            return r;
    }
    return 0;
}

/* umask: octal digits as the umask command takes them ("027", "0027",
 * "0o27"), at most 0777. */
static int config__umask_read(struct service_cfg *s, struct fy_node *v, struct cfg_err *err)
{
    char *t = config__text(config__deref(v));
    const char *p = t && !strncmp(t, "0o", 2) ? t + 2 : t;
    unsigned m = 0;
    size_t n = 0;
    for (; p && *p >= '0' && *p <= '7' && n < 4; p++, n++)
        m = m * 8 + (unsigned)(*p - '0');
    bool ok = p && n > 0 && !*p && m <= 0777;
    free(t);
    if (!ok) {
        cfg_err_at(err, v, "expected an octal umask like \"027\" (at most 0777)");
        return -EINVAL;
    }
    s->ident.cred.set_umask = true;
    s->ident.cred.umask = (mode_t)m;
    return 0;
}

/* An ident's positions, and a cred that waits for the preflight when it
 * names anyone. */
static void config__ident_mark(struct ident_cfg *id, struct fy_node *body)
{
    id->user_at = config__pos(config__lookup(body, "user"));
    id->group_at = config__pos(config__lookup(body, "group"));
    if (id->user || id->group)
        id->cred.error = -EAGAIN;
}

/* A program's ident: its own user/group over the service's umask, limits
 * and no_new_privs, or the service's cred as it is. */
static void config__ident_inherit(struct ident_cfg *id, const struct ident_cfg *svc)
{
    struct spawn_cred c = svc->cred;
    if (id->user || id->group) {
        c.set_ids = false;
        c.groups = NULL;
        c.n_groups = 0;
        c.error = -EAGAIN;
    }
    id->cred = c;
}

/* Record a need; out of memory is an error (a check that is not made
 * must not pass for one that passed). */
static int config__need(struct service_cfg *s, enum cfg_need_kind kind, const char *path,
                        const struct ident_cfg *as, struct fy_node *at, const char *what)
{
    struct cfg_need *v = realloc(s->needs, (s->n_needs + 1) * sizeof *v);
    if (!v)
        return -ENOMEM;
    s->needs = v;
    struct cfg_need *n = &v[s->n_needs];
    *n = (struct cfg_need){.kind = kind, .as = as, .at = config__pos(at)};
    n->path = strdup(path);
    n->what = strdup(what);
    if (!n->path || !n->what) {
        free(n->path);
        free(n->what);
        return -ENOMEM;
    }
    s->n_needs++;
    return 0;
}

/* The node of a program's argv[0] under key (a sequence), else key's. */
static struct fy_node *config__argv0_node(struct fy_node *body, const char *key)
{
    struct fy_node *v = config__deref(config__lookup(body, key));
    struct fy_node *first = fy_node_is_sequence(v) ? fy_node_sequence_get_by_index(v, 0) : NULL;
    return first ? first : v;
}

/* The needs of a kind's or a strategy's params, from their field types:
 * each CFG_COMMAND a program run as `as`, each CFG_PATH a file recoverd
 * reads. body: the params' mapping; prefix names them in messages. */
static int config__params_needs(struct service_cfg *s, const struct cfg_field *fields,
                                const void *params, const struct ident_cfg *as,
                                struct fy_node *body, const char *prefix)
{
    int r = 0;
    for (const struct cfg_field *f = fields; r == 0 && f && f->key; f++) {
        const void *v = (const char *)params + f->offset;
        char what[160];
        snprintf(what, sizeof what, "%s%.63s", prefix, f->key);
        if (f->type == CFG_COMMAND && *(char **const *)v)
            r = config__need(s, CFG_NEED_PROGRAM, (*(char **const *)v)[0], as,
                             config__argv0_node(body, f->key), what);
        else if (f->type == CFG_PATH && *(char *const *)v)
            r = config__need(s, CFG_NEED_FILE, *(char *const *)v, NULL,
                             config__lookup(body, f->key), what);
    }
    return r;
}

/* Everything the service names that the preflight checks, in file order
 * within each part (the checks' come first: config__privileges). */
static int config__needs(const struct config *c, struct service_cfg *s, struct fy_node *body)
{
    static const struct {
        const char *key;
        size_t offset;
    } programs[] = {
        {"command", offsetof(struct service_cfg, command)},
        {"start", offsetof(struct service_cfg, start_cmd)},
        {"stop", offsetof(struct service_cfg, stop_cmd)},
        {"restart", offsetof(struct service_cfg, restart_cmd)},
    };
    int r = 0;
    if (s->cwd)
        r = config__need(s, CFG_NEED_DIR, s->cwd, &s->ident, config__lookup(body, "cwd"), "cwd");
    for (size_t i = 0; r == 0 && i < sizeof programs / sizeof *programs; i++) {
        char **argv = *(char ***)((char *)s + programs[i].offset);
        if (argv)
            r = config__need(s, CFG_NEED_PROGRAM, argv[0], &s->ident,
                             config__argv0_node(body, programs[i].key), programs[i].key);
    }
    for (int st = 0; r == 0 && st < STRATEGY__COUNT; st++) {
        struct cfg_strategy k;
        char prefix[80];
        if (!s->strategy[st] || !config__strategy_kind(c, st, &k) || !k.key)
            continue;
        snprintf(prefix, sizeof prefix, "%.63s.", k.key);
        const struct ident_cfg *as = s->strategy_ident[st] ? s->strategy_ident[st] : &s->ident;
        r = config__params_needs(s, s->strategy_fields[st], s->strategy[st], as,
                                 config__deref(config__lookup(body, k.key)), prefix);
    }
    if (r == 0 && s->pidfile) {
        /* recoverd reads the pidfile: its directory must be there for it. */
        char *dir = strdup(s->pidfile), *slash = dir ? strrchr(dir, '/') : NULL;
        if (!dir)
            return -ENOMEM;
        if (slash)
            slash[slash == dir] = '\0'; /* "/x.pid" keeps "/" */
        r = config__need(s, CFG_NEED_DIR, slash ? dir : ".", NULL, config__lookup(body, "pidfile"),
                         "pidfile directory");
        free(dir);
    }
    return r;
}

/* user:, group:, umask:, limits:, no_new_privs: (no_new_privs, user and
 * group came with the service's table), the creds of its strategies'
 * programs and of its checks, and its needs. */
static int config__privileges(const struct config *cf, struct service_cfg *s, struct fy_node *body,
                              struct fy_node *checks, struct cfg_err *err)
{
    struct fy_node *v;
    int r;
    if ((v = config__lookup(body, "umask")) && (r = config__umask_read(s, v, err)) < 0)
        return r;
    if ((v = config__lookup(body, "limits")) && (r = config__limits_read(s, v, err)) < 0)
        return r;
    config__ident_mark(&s->ident, body);
    for (int st = 0; st < STRATEGY__COUNT; st++) {
        struct cfg_strategy k;
        if (!s->strategy_ident[st] || !config__strategy_kind(cf, st, &k))
            continue;
        config__ident_mark(s->strategy_ident[st],
                           k.key ? config__deref(config__lookup(body, k.key)) : NULL);
        config__ident_inherit(s->strategy_ident[st], &s->ident);
    }
    void *it = NULL;
    for (size_t i = 0; i < s->n_checks; i++) {
        struct check_cfg *c = &s->checks[i];
        struct fy_node *item = fy_node_sequence_iterate(checks, &it);
        struct fy_node *settings = config__check_settings(item);
        bool runs = false;
        for (const struct cfg_field *f = c->fields; f && f->key; f++)
            runs |= f->type == CFG_COMMAND;
        if (!runs && (c->ident.user || c->ident.group)) {
            cfg_err_at(err, config__lookup(settings, c->ident.user ? "user" : "group"),
                       "a %s check runs no program: user and group are for checks that do "
                       "(command)",
                       c->kind);
            return -EINVAL;
        }
        config__ident_mark(&c->ident, settings);
        config__ident_inherit(&c->ident, &s->ident);
        char prefix[80];
        snprintf(prefix, sizeof prefix, "check '%.63s' ", c->name);
        /* Its programs run as its ident; from recoverd's cwd, as
         * detect/command.c runs them, once config_load made them absolute. */
        if ((r = config__params_needs(s, c->fields, c->params, &c->ident, settings, prefix)) < 0)
            return r;
    }
    return config__needs(cf, s, body);
}

static int config__service(struct config *c, const struct cfg_field *table, const char *dir,
                           struct fy_node *key, struct fy_node *body, struct cfg_err *err)
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
        .stop = {.signal = SIGTERM, .grace_ms = 5000},
        .log_max_bytes = 10u << 20,
        .verify_ms = 30000,
        .start_period_ms = 1000,
        .flap_window_ms = 60000,
        .line = config__line(key),
    };
    body = config__deref(body);
    if ((r = cfg_map(body, table, s, err)) < 0)
        return r;
    if ((v = config__lookup(body, "log_max")) && (r = config__log_max(s, v, err)) < 0)
        return r;
    if ((v = config__lookup(body, "checks")) && (r = config__checks(c, s, v, err)) < 0)
        return r;
    if ((v = config__lookup(body, "cgroup")) && (r = config__cgroup(s, v, err)) < 0)
        return r;
    if ((r = config__programs(s, body, err)) < 0 || (r = config__strategies(c, s, body, err)) < 0 ||
        (r = config__stop(s, body, err)) < 0)
        return r;
    if ((v = config__lookup(body, "recovery")) &&
        (r = config__chain(c, v, s->chain, &s->n_chain, err)) < 0)
        return r;
    if ((r = config__kind_check(s, body, err)) < 0)
        return r;
    if ((r = config__strategies_check(c, s, key, body, err)) < 0)
        return r;
    if (dir && (r = config__service_paths(s, dir)) < 0)
        return r;
    return config__privileges(c, s, body, config__deref(config__lookup(body, "checks")), err);
}

static int config__services(struct config *c, struct fy_node *map, const char *dir,
                            struct cfg_err *err)
{
    struct fy_node_pair *p;
    struct cfg_field *table = NULL;
    void *it = NULL;
    int r = 0;

    if (!fy_node_is_mapping(map)) {
        cfg_err_at(err, map, "expected a mapping of service names to services");
        return -EINVAL;
    }
    if (fy_node_mapping_item_count(map) == 0) {
        cfg_err_at(err, map, "no services defined (expected at least one under 'services')");
        return -EINVAL;
    }
    if (!(c->services = calloc((size_t)fy_node_mapping_item_count(map), sizeof(*c->services))) ||
        !(table = config__service_table(c)))
        return -ENOMEM;
    while ((p = fy_node_mapping_iterate(map, &it)))
        if ((r = config__service(c, table, dir, fy_node_pair_key(p), fy_node_pair_value(p), err)) <
            0)
            break;
    free(table);
    return r;
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
            if (config__strategy_kind(c, defaults[i].chain[k], NULL))
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
        if (config__strategy_kind(c, st, NULL))
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

/* What the alerter needs of a webhook, checked here: an error at load, not
 * an alert lost later. */
static int config__webhook_check(struct fy_node *item, const struct webhook_cfg *w,
                                 struct cfg_err *err)
{
    struct url u;
    char why[128];
    if (url_parse(w->url, &u, why, sizeof why) < 0) { /* the alerter's own parser */
        cfg_err_at(err, config__lookup(config__deref(item), "url"), "invalid webhook url: %s", why);
        return -EINVAL;
    }
    if (w->max_pending == 0) {
        cfg_err_at(err, config__lookup(config__deref(item), "max_pending"),
                   "max_pending must be at least 1");
        return -EINVAL;
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
                                  .retries = 5,
                                  .max_pending = 1000};
        if ((r = cfg_map(item, config__webhook_fields, w, err)) < 0 ||
            (r = config__webhook_check(item, w, err)) < 0)
            return r;
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

/* journal: { max_age, max_size }, both greater than 0. */
static int config__journal(struct config *c, struct fy_node *root, struct cfg_err *err)
{
    struct fy_node *j = config__lookup(root, "journal"), *v;

    if (j && (v = config__lookup(j, "max_size")) &&
        config__bytes(v, &c->journal.max_bytes, err) < 0)
        return -EINVAL;
    if (c->journal.max_age_ms == 0) {
        cfg_err_at(err, config__lookup(j, "max_age"), "max_age must be greater than 0");
        return -EINVAL;
    }
    return 0;
}

/* 127.0.0.0/8, ::1 or ::ffff:127.x.y.z. */
static bool config__loopback(const struct sockaddr_storage *ss)
{
    const struct in6_addr *a6 = &((const struct sockaddr_in6 *)ss)->sin6_addr;
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    return IN6_IS_ADDR_LOOPBACK(a6) || (IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127);
}

/* api.hostnames entries are names or addresses, and api.listen stays on
 * loopback unless allow_remote says otherwise: the token and every answer
 * travel in clear (no TLS), so a remote listener is a decision, not a typo. */
static int config__api(struct config *c, struct fy_node *api, struct cfg_err *err)
{
    struct fy_node *listen = config__lookup(api, "listen");
    char addr[INET6_ADDRSTRLEN] = "?";
    const struct sockaddr_storage *ss = &c->api.listen;
    for (size_t i = 0; c->api.hostnames && c->api.hostnames[i]; i++) {
        if (!hostnames_entry_valid(c->api.hostnames[i])) {
            cfg_err_at(err, fy_node_sequence_get_by_index(config__lookup(api, "hostnames"), (int)i),
                       "'%s' is not a host name: expected a name, an IPv4 address or an IPv6 "
                       "address in brackets, optionally with :port",
                       c->api.hostnames[i]);
            return -EINVAL;
        }
    }
    if (config__loopback(ss))
        return 0;
    inet_ntop(ss->ss_family,
              ss->ss_family == AF_INET6
                  ? (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr
                  : (const void *)&((const struct sockaddr_in *)ss)->sin_addr,
              addr, sizeof addr);
    if (!c->api.allow_remote) {
        cfg_err_at(err, listen,
                   "api.listen %s is not a loopback address: the API token would cross the "
                   "network in clear; set api.allow_remote: true to listen there anyway",
                   addr);
        return -EINVAL;
    }
    config__warn(c, listen,
                 "the API listens on %s (allow_remote): its token and answers cross the network "
                 "in clear%s",
                 addr,
                 c->api.hostnames ? ""
                                  : "; remote clients get 421 until their name for this host is "
                                    "in api.hostnames");
    return 0;
}

/* dir: the configuration file's directory, against which relative paths
 * are made absolute; NULL: they stay as written. */
static int config__build(struct config *c, struct fy_document *doc, const char *dir,
                         struct cfg_err *err)
{
    struct fy_node *root = fy_document_root(doc), *v;
    int r;

    if (!root || fy_node_is_null(root))
        return config__empty(err);
    if ((r = cfg_map(root, config__fields, c, err)) < 0 || (r = config__journal(c, root, err)) < 0)
        return r;
    if (dir && (r = config__paths_of(config__fields, (char *)c, dir, dir)) < 0)
        return r;
    if (!c->state_dir && !(c->state_dir = statedir_default())) {
        cfg_err_at(err, root, "no state_dir, and no home directory for the default one");
        return -EINVAL;
    }
    if (c->max_concurrent == 0) {
        cfg_err_at(err, config__lookup(root, "max_concurrent_recoveries"),
                   "max_concurrent_recoveries must be at least 1");
        return -EINVAL;
    }
    if (c->max_starting == 0) {
        cfg_err_at(err, config__lookup(root, "max_starting"), "max_starting must be at least 1");
        return -EINVAL;
    }
    if ((r = config__api(c, config__lookup(root, "api"), err)) < 0)
        return r;
    if ((v = config__lookup(root, "rules")) && (r = config__rules(c, v, err)) < 0)
        return r;
    if ((v = config__lookup(root, "alerts")) && (r = config__alerts(c, v, err)) < 0)
        return r;
    v = config__lookup(root, "services");
    if ((r = config__services(c, v, dir, err)) < 0)
        return r;
    return config__deps(c, config__deref(v), err);
}

static void config__api_default(struct api_cfg *api)
{
    struct sockaddr_in *in = (struct sockaddr_in *)&api->listen;

    memset(&api->listen, 0, sizeof(api->listen));
    in->sin_family = AF_INET;
    in->sin_port = htons(7411);
    in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

static struct config *config__load(const char *name, const char *dir, const char *yaml, size_t len,
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
    c->max_starting = 64;
    c->action_timeout_ms = 60000;
    c->journal = (struct journal_cfg){.max_age_ms = 30 * 86400000ULL, .max_bytes = 256u << 20};
    c->reg = reg;
    config__rules_default(c);
    config__api_default(&c->api);
    if ((r = config__build(c, y.doc, dir, err)) < 0)
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

struct config *config_load_string(const char *name, const char *yaml, size_t len,
                                  const struct cfg_registry *reg, struct cfg_err *err)
{
    return config__load(name, NULL, yaml, len, reg, err);
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

/* The absolute directory of path, as named (a symbolic link to the file is
 * not followed: its directory is where the operator put it). */
static char *config__dir_of(const char *path)
{
    char *copy = strdup(path), *abs = NULL, *cwd = NULL;
    const char *dir = copy ? dirname(copy) : NULL;

    if (dir && dir[0] == '/')
        abs = strdup(dir);
    else if (dir && (cwd = getcwd(NULL, 0)))
        abs = strcmp(dir, ".") == 0 ? strdup(cwd)
                                    : (asprintf(&abs, "%s/%s", cwd, dir) < 0 ? NULL : abs);
    free(cwd);
    free(copy);
    return abs;
}

struct config *config_load(const char *path, const struct cfg_registry *reg, struct cfg_err *err)
{
    struct cfg_err scratch;
    struct config *c;
    size_t len = 0;
    char *yaml, *dir = NULL;

    if (!err)
        err = &scratch;
    memset(err, 0, sizeof(*err));
    snprintf(err->file, sizeof(err->file), "%s", path);
    if (!(yaml = config__slurp(path, &len, err)))
        return NULL;
    if (!(dir = config__dir_of(path))) {
        snprintf(err->msg, sizeof(err->msg), "resolving relative paths: %s", strerror(errno));
        free(yaml);
        return NULL;
    }
    c = config__load(path, dir, yaml, len, reg, err);
    free(yaml);
    free(dir);
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
        case CFG_STRING:
        case CFG_PATH: eq = config__eq_str(*(char *const *)pa, *(char *const *)pb); break;
        case CFG_ARGV:
        case CFG_COMMAND:
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

/* Same user and group as written and as resolved, same umask, limits and
 * no_new_privs: a process started with either runs with the same rights. */
static bool config__ident_equal(const struct ident_cfg *a, const struct ident_cfg *b)
{
    const struct spawn_cred *x = &a->cred, *y = &b->cred;
    if (!config__eq_str(a->user, b->user) || !config__eq_str(a->group, b->group) ||
        x->error != y->error || x->set_ids != y->set_ids || x->set_umask != y->set_umask ||
        x->no_new_privs != y->no_new_privs || x->n_limits != y->n_limits ||
        x->n_groups != y->n_groups)
        return false;
    if (x->set_ids &&
        (x->uid != y->uid || x->gid != y->gid ||
         (x->n_groups && memcmp(x->groups, y->groups, x->n_groups * sizeof(gid_t)) != 0)))
        return false;
    if (x->set_umask && x->umask != y->umask)
        return false;
    for (unsigned i = 0; i < x->n_limits; i++)
        if (x->limits[i].resource != y->limits[i].resource ||
            x->limits[i].value != y->limits[i].value)
            return false;
    return true;
}

/* FNV-1a 64 over what config_process_equal compares, each item ended by a
 * byte no text holds, so that ["a b"] and ["a", "b"] differ. */
struct config__fp {
    uint64_t h;
};

static void config__fp_bytes(struct config__fp *f, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        f->h = (f->h ^ b[i]) * 0x100000001b3ull;
}

static void config__fp_str(struct config__fp *f, const char *s)
{
    static const unsigned char end[2] = {0xff, 0xfe}, none[2] = {0xfe, 0xfe};
    if (s)
        config__fp_bytes(f, s, strlen(s));
    config__fp_bytes(f, s ? end : none, 2);
}

static void config__fp_strv(struct config__fp *f, char *const *v)
{
    for (; v && *v; v++)
        config__fp_str(f, *v);
    config__fp_str(f, NULL);
}

static void config__fp_u64(struct config__fp *f, uint64_t x)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%" PRIu64, x);
    config__fp_str(f, buf);
}

void config_process_fingerprint(const struct service_cfg *s, char out[CONFIG_FINGERPRINT_LEN])
{
    struct config__fp f = {0xcbf29ce484222325ull};
    const struct ident_cfg *id = &s->ident;
    const struct spawn_cred *c = &id->cred;
    config__fp_strv(&f, s->command);
    config__fp_str(&f, s->pidfile);
    config__fp_str(&f, s->cwd);
    config__fp_strv(&f, s->env);
    config__fp_u64(&f, s->log_max_bytes);
    config__fp_str(&f, id->user);
    config__fp_str(&f, id->group);
    uint64_t flags = (uint64_t)c->set_ids | (uint64_t)c->set_umask << 1 |
                     (uint64_t)c->no_new_privs << 2;
    config__fp_u64(&f, flags);
    config__fp_u64(&f, (uint64_t)(int64_t)c->error);
    if (c->set_ids) {
        config__fp_u64(&f, c->uid);
        config__fp_u64(&f, c->gid);
        for (size_t i = 0; i < c->n_groups; i++)
            config__fp_u64(&f, c->groups[i]);
    }
    config__fp_str(&f, NULL);
    if (c->set_umask)
        config__fp_u64(&f, c->umask);
    for (unsigned i = 0; i < c->n_limits; i++) {
        config__fp_u64(&f, (uint64_t)c->limits[i].resource);
        config__fp_u64(&f, c->limits[i].value);
    }
    config__fp_str(&f, NULL);
    config__fp_u64(&f, s->cgroup.memory_max);
    config__fp_u64(&f, s->cgroup.pids_max);
    config__fp_u64(&f, s->cgroup.cpu_quota_us);
    config__fp_u64(&f, s->cgroup.cpu_period_us);
    config__fp_str(&f, s->problem);
    snprintf(out, CONFIG_FINGERPRINT_LEN, "%016" PRIx64, f.h);
}

bool config_check_equal(const struct check_cfg *a, const struct check_cfg *b)
{
    return a->ops == b->ops && config__eq_str(a->name, b->name) &&
           a->interval_ms == b->interval_ms && a->timeout_ms == b->timeout_ms &&
           a->fall == b->fall && a->rise == b->rise && a->severity == b->severity &&
           a->type == b->type && a->impact == b->impact &&
           config__ident_equal(&a->ident, &b->ident) &&
           config__eq_fields(a->fields, a->params, b->params);
}

/* Every strategy's params equal, as its own table reads them. */
static bool config__eq_strategies(const struct service_cfg *a, const struct service_cfg *b)
{
    for (int st = 0; st < STRATEGY__COUNT; st++) {
        const char *pa = a->strategy[st], *pb = b->strategy[st];
        if (!pa && !pb)
            continue;
        if (!pa || !pb || a->strategy_fields[st] != b->strategy_fields[st] ||
            !config__eq_fields(a->strategy_fields[st], pa, pb))
            return false;
        /* user and group are fields; what they resolved to is not */
        if (a->strategy_ident[st] &&
            (!b->strategy_ident[st] ||
             !config__ident_equal(a->strategy_ident[st], b->strategy_ident[st])))
            return false;
    }
    return true;
}

static bool config__cgroup_equal(const struct cgroup_cfg *a, const struct cgroup_cfg *b)
{
    return a->memory_max == b->memory_max && a->pids_max == b->pids_max &&
           a->cpu_quota_us == b->cpu_quota_us && a->cpu_period_us == b->cpu_period_us;
}

bool config_service_equal(const struct service_cfg *a, const struct service_cfg *b)
{
    if (!config__eq_strategies(a, b) ||
        !config__eq_fields(config__service_fields, (const char *)a, (const char *)b) ||
        !config__eq_fields(config__stop_table, (const char *)a, (const char *)b) ||
        !config__eq_fields(config__program_fields, (const char *)a, (const char *)b) ||
        a->log_max_bytes != b->log_max_bytes || a->n_chain != b->n_chain ||
        !config__ident_equal(&a->ident, &b->ident) || !config__eq_str(a->problem, b->problem) ||
        !config__cgroup_equal(&a->cgroup, &b->cgroup) ||
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
           a->log_max_bytes == b->log_max_bytes && config__ident_equal(&a->ident, &b->ident) &&
           config__cgroup_equal(&a->cgroup, &b->cgroup) && config__eq_str(a->problem, b->problem);
}
