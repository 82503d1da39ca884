/* Table-driven mapping of YAML mappings onto C structs (libfyaml has no
 * struct binding). A table lists the keys a mapping accepts; cfg_map fills
 * the struct and reports the first error as file:line:column. */
#ifndef RECOVERD_CONFIG_CFGMAP_H
#define RECOVERD_CONFIG_CFGMAP_H

#include <stddef.h>
#include <stdint.h>

struct fy_node;

struct cfg_err {
    char file[256]; /* config file path */
    int line;       /* 1-based; 0 when unknown */
    int col;        /* 1-based; 0 when unknown */
    char msg[512];  /* what was wrong and what was expected */
};

enum cfg_type {
    CFG_STRING,   /* char *, strdup'ed */
    CFG_DURATION, /* uint64_t ms; "250ms", "2s", "1m" (a bare 0 is allowed) */
    CFG_UINT,     /* unsigned, non-negative integer */
    CFG_BOOL,     /* bool; only true/false */
    CFG_ARGV,     /* char **, NULL-terminated, non-empty sequence of strings */
    CFG_ENV,      /* char **, NULL-terminated "KEY=value" from a mapping */
    CFG_PAIRS,    /* char **, NULL-terminated "key=value" from a mapping whose keys are any
                   * non-empty text without '=' (e.g. mount points) */
    CFG_ADDRESS,  /* struct sockaddr_storage from "ip:port" / "[ip6]:port" / "localhost:port" */
    CFG_SIGNAL,   /* int signal number from "TERM", "SIGTERM", "INT", "HUP", "KILL", "QUIT", "USR1",
                     "USR2" */
    CFG_SEVERITY, /* int (enum severity) from its name */
    CFG_FAULT_TYPE, /* int (enum fault_type) from its name */
    CFG_IMPACT,     /* int (enum impact) from its name */
    CFG_MAP,        /* nested mapping described by .sub at .offset; with .sub NULL the key is
                     * only reserved and the caller reads the value itself */
    CFG_PATH,       /* char *, like CFG_STRING; config_load makes a relative one absolute
                     * against the configuration file's directory. In a check's or a
                     * strategy's params it names a file recoverd reads (a password file):
                     * the preflight (daemon/preflight.c) checks that it can */
    CFG_COMMAND,    /* char **, like CFG_ARGV, for a program recoverd runs: a relative program
                     * path (argv[0] with a '/') is made absolute like a CFG_PATH (see
                     * config.h), and the preflight checks that whoever runs it can */
};

struct cfg_field {
    const char *key;             /* YAML key */
    enum cfg_type type;          /* how to read the value */
    size_t offset;               /* offsetof() into the target struct */
    int required;                /* 1: missing key is an error */
    const struct cfg_field *sub; /* CFG_MAP: the nested table, NULL-key terminated */
};

/* Fill `out` from the mapping `map` according to `fields` (terminated by a
 * NULL key). Unknown keys, wrong types, bad values and missing required keys
 * fill `err` and return -EINVAL. Fields absent from the YAML keep whatever
 * `out` held (callers preset defaults). On error, what was allocated so far
 * is still owned by `out`: release it with cfg_fields_free. */
int cfg_map(struct fy_node *map, const struct cfg_field *fields, void *out, struct cfg_err *err);

/* Read one value v as field f describes it into (char *)out + f->offset:
 * for keys whose shape the caller decides (a sequence or a mapping). */
int cfg_read(struct fy_node *v, const struct cfg_field *f, void *out, struct cfg_err *err);

/* The node an alias stands for (v itself when it is no alias, or one that
 * does not resolve): every reader of a value goes through it. */
struct fy_node *cfg_deref(struct fy_node *v);

/* Free the heap members (strings, argv, env, nested maps) that `fields`
 * describes in `obj`; leaves obj's other bytes alone. NULL-safe members. */
void cfg_fields_free(const struct cfg_field *fields, void *obj);

/* Set err from a node's position (node may be NULL: position unknown). */
void cfg_err_at(struct cfg_err *err, struct fy_node *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "file:line:col: error: msg" into buf. */
const char *cfg_err_format(const struct cfg_err *err, char *buf, size_t len);

/* Parse a duration ("100ms", "2s", "1m", "1h", "30d", "0"); 0 on success, -EINVAL. */
int duration_parse(const char *s, uint64_t *ms);

#endif
