/* The preflight (see preflight.h): user and group names resolved into the
 * credentials programs run with, and every program, file and directory a
 * service names checked for whoever uses it. Permissions are judged from
 * mode bits for another user (ACLs are not read) and asked of the kernel
 * (faccessat) for recoverd's own. */
#include "daemon/preflight.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config-t.h"
#include "lib/text.h"

#define PREFLIGHT__GROUPS_MAX 65536       /* the kernel's NGROUPS_MAX */
#define PREFLIGHT__NSS_BUF_MAX (1u << 20) /* bytes: a passwd or group entry larger is refused */

/* Who uses a path. */
struct preflight__who {
    bool unknown; /* its user could not be had (reported): check only that paths exist */
    bool self;    /* recoverd itself: ask the kernel */
    uid_t uid;    /* else these ids */
    gid_t gid;
    const gid_t *groups; /* n_groups supplementary groups; borrowed */
    size_t n_groups;
    char name[96]; /* for messages: "user 'nobody'" */
};

struct preflight__problem {
    struct cfg_pos at; /* where */
    size_t service;    /* index in c->services */
    size_t seq;        /* order found: ties keep it */
    char *msg;         /* owned */
};

struct preflight__run {
    struct config *c;
    struct preflight__problem *v; /* n problems */
    size_t n;
    bool oom; /* a problem could not be recorded */
};

static void preflight__add(struct preflight__run *run, size_t svc, struct cfg_pos at,
                           const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void preflight__add(struct preflight__run *run, size_t svc, struct cfg_pos at,
                           const char *fmt, ...)
{
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    int r = vasprintf(&msg, fmt, ap);
    va_end(ap);
    struct preflight__problem *v = r < 0 ? NULL : realloc(run->v, (run->n + 1) * sizeof *v);
    if (!v) {
        free(r < 0 ? NULL : msg);
        run->oom = true;
        return;
    }
    run->v = v;
    v[run->n] = (struct preflight__problem){at, svc, run->n, msg};
    run->n++;
}

/* ---- names ---- */

/* A uid or gid written as a number. */
static bool preflight__numeric(const char *s, unsigned long *id)
{
    char *end = NULL;
    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    *id = strtoul(s, &end, 10);
    return !*end && errno == 0 && *id < UINT32_MAX;
}

/* The passwd entry of name (a name or a uid) in pw, its strings in *buf
 * (grown; the caller frees). 0, -ENOENT (no such user), or -errno. */
static int preflight__getpw(const char *name, struct passwd *pw, char **buf)
{
    unsigned long id = 0;
    bool num = preflight__numeric(name, &id);
    for (size_t len = 1024; len <= PREFLIGHT__NSS_BUF_MAX; len *= 2) {
        char *b = realloc(*buf, len);
        struct passwd *res = NULL;
        if (!b)
            return -ENOMEM;
        *buf = b;
        int r = num ? getpwuid_r((uid_t)id, pw, b, len, &res) : getpwnam_r(name, pw, b, len, &res);
        if (r == ERANGE)
            continue;
        if (r == 0 || r == ENOENT || r == ESRCH)
            return res ? 0 : -ENOENT; /* the "not found" of some NSS modules */
        return -r;
    }
    return -ERANGE;
}

/* The same for a group (a name or a gid). */
static int preflight__getgr(const char *name, gid_t *gid)
{
    unsigned long id = 0;
    bool num = preflight__numeric(name, &id);
    char *buf = NULL;
    int r = -ERANGE;
    for (size_t len = 1024; len <= PREFLIGHT__NSS_BUF_MAX; len *= 2) {
        char *b = realloc(buf, len);
        struct group gr, *res = NULL;
        if (!b) {
            r = -ENOMEM;
            break;
        }
        buf = b;
        r = num ? getgrgid_r((gid_t)id, &gr, b, len, &res) : getgrnam_r(name, &gr, b, len, &res);
        if (r == ERANGE)
            continue;
        if (r == 0 || r == ENOENT || r == ESRCH) {
            r = res ? 0 : -ENOENT;
            if (res)
                *gid = gr.gr_gid;
        } else {
            r = -r;
        }
        break;
    }
    free(buf);
    return r;
}

/* user's groups as initgroups(3) would set them, with gid among them.
 * 0 with *out (owned) and *n, or -errno. */
static int preflight__grouplist(const char *user, gid_t gid, gid_t **out, size_t *n)
{
    int cap = 32;
    for (;;) {
        gid_t *v = malloc((size_t)cap * sizeof *v);
        int got = cap;
        if (!v)
            return -ENOMEM;
        if (getgrouplist(user, gid, v, &got) >= 0) {
            *out = v;
            *n = (size_t)got;
            return 0;
        }
        free(v);
        if (got <= cap || got > PREFLIGHT__GROUPS_MAX)
            return -E2BIG;
        cap = got;
    }
}

/* ---- identities ---- */

/* Which names an ident stands for, and where each is written. */
struct preflight__names {
    const char *user, *group;
    struct cfg_pos user_at, group_at;
};

/* Resolve names into id->cred's ids (and id->groups). A problem is
 * reported at the name's position and leaves cred.error set: nothing
 * runs with a half-resolved identity. */
static void preflight__resolve(struct preflight__run *run, size_t svc,
                               const struct preflight__names *nm, struct ident_cfg *id)
{
    struct spawn_cred *c = &id->cred;
    struct passwd pw;
    char *buf = NULL;
    uid_t self = geteuid();
    free(id->groups);
    id->groups = NULL;
    /* The ids are new; umask, limits and no_new_privs stay. */
    c->error = -ENOENT;
    c->set_ids = false;
    c->groups = NULL;
    c->n_groups = 0;
    c->uid = self;
    c->gid = getegid();
    int r;
    if (nm->user && (r = preflight__getpw(nm->user, &pw, &buf)) < 0) {
        preflight__add(run, svc, nm->user_at,
                       r == -ENOENT ? "user '%s' does not exist" : "cannot look up user '%s': %s",
                       nm->user, strerror(-r));
        goto done;
    }
    if (nm->user) {
        c->uid = pw.pw_uid;
        c->gid = pw.pw_gid;
    }
    if (nm->group && (r = preflight__getgr(nm->group, &c->gid)) < 0) {
        preflight__add(run, svc, nm->group_at,
                       r == -ENOENT ? "group '%s' does not exist" : "cannot look up group '%s': %s",
                       nm->group, strerror(-r));
        goto done;
    }
    if (self != 0) {
        /* Without root no id can change: only recoverd's own are usable,
         * and it keeps its own supplementary groups. */
        c->error = -EPERM;
        if (c->uid != self) {
            preflight__add(run, svc, nm->user_at,
                           "recoverd runs as uid %u, not root: it cannot run programs as user "
                           "'%s'",
                           (unsigned)self, nm->user);
            goto done;
        }
        if (c->gid != getegid()) {
            preflight__add(run, svc, nm->group ? nm->group_at : nm->user_at,
                           "recoverd runs as gid %u, not root: it cannot run programs with group "
                           "'%s'",
                           (unsigned)getegid(), nm->group ? nm->group : nm->user);
            goto done;
        }
        c->error = 0;
        goto done;
    }
    /* With a user: its groups, as a login would have them. With only a
     * group: recoverd's user in that group, with no supplementary groups
     * (root's would otherwise come along). */
    if (nm->user && (r = preflight__grouplist(pw.pw_name, c->gid, &id->groups, &c->n_groups)) < 0) {
        preflight__add(run, svc, nm->user_at, "cannot list the groups of user '%s': %s", nm->user,
                       strerror(-r));
        goto done;
    }
    c->groups = id->groups;
    c->set_ids = true;
    c->error = 0;
done:
    free(buf);
}

/* A program's ident: its own user or group, else the service's cred as
 * it is (the same ids, groups borrowed). */
static void preflight__override(struct preflight__run *run, size_t svc, const struct ident_cfg *s,
                                struct ident_cfg *o)
{
    if (!o->user && !o->group) {
        o->cred = s->cred;
        return;
    }
    /* Its user replaces the service's user and group; its group alone
     * replaces only the group. */
    struct preflight__names nm = {
        .user = o->user ? o->user : s->user,
        .user_at = o->user ? o->user_at : s->user_at,
        .group = o->user ? o->group : (o->group ? o->group : s->group),
        .group_at = o->user || o->group ? o->group_at : s->group_at,
    };
    preflight__resolve(run, svc, &nm, o);
}

static void preflight__who_of(const struct ident_cfg *id, struct preflight__who *w)
{
    memset(w, 0, sizeof *w);
    if (!id || !id->cred.set_ids) {
        w->self = true;
        snprintf(w->name, sizeof w->name, "recoverd's user (uid %u)", (unsigned)geteuid());
        return;
    }
    w->uid = id->cred.uid;
    w->gid = id->cred.gid;
    w->groups = id->cred.groups;
    w->n_groups = id->cred.n_groups;
    if (id->user)
        snprintf(w->name, sizeof w->name, "user '%.60s'", id->user);
    else
        snprintf(w->name, sizeof w->name, "uid %u with group '%.50s'", (unsigned)w->uid,
                 id->group ? id->group : "?");
}

/* ---- paths ---- */

/* May w read (R_OK) or execute/enter (X_OK) path, whose stat is st? */
static bool preflight__may(const char *path, const struct stat *st, const struct preflight__who *w,
                           int want)
{
    if (w->self)
        return faccessat(AT_FDCWD, path, want, AT_EACCESS) == 0;
    if (w->uid == 0) /* CAP_DAC_OVERRIDE: anything but executing a file no one may */
        return want != X_OK || S_ISDIR(st->st_mode) || (st->st_mode & 0111);
    unsigned bits = want == X_OK ? 1 : 4;
    if (st->st_uid == w->uid)
        return (st->st_mode >> 6) & bits;
    bool member = st->st_gid == w->gid;
    for (size_t i = 0; !member && i < w->n_groups; i++)
        member = w->groups[i] == st->st_gid;
    return member ? (st->st_mode >> 3) & bits : st->st_mode & bits;
}

/* Every directory on the way to path can be entered by w; else the first
 * that cannot, in bad. */
static bool preflight__walk(const char *path, const struct preflight__who *w, char *bad, size_t len)
{
    char buf[PATH_MAX];
    if (w->self || snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return true; /* the kernel's answer covers the way; too long: exec will say */
    for (char *p = strchr(buf + 1, '/'); p; p = strchr(p + 1, '/')) {
        struct stat st;
        *p = '\0';
        if (stat(buf, &st) == 0 && S_ISDIR(st.st_mode) && !preflight__may(buf, &st, w, X_OK)) {
            snprintf(bad, len, "%s", buf);
            return false;
        }
        *p = '/';
    }
    return true;
}

/* Is path usable as kind by w? NULL, or the reason in why. */
static const char *preflight__usable(const char *path, enum cfg_need_kind kind,
                                     const struct preflight__who *w, char *why, size_t len)
{
    struct stat st;
    char dir[PATH_MAX];
    if (stat(path, &st) < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            text_format(why, len, "'%s' does not exist", path);
        else
            text_format(why, len, "'%s': %s", path, strerror(errno));
        return why;
    }
    bool is_dir = kind == CFG_NEED_DIR;
    if (is_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) {
        text_format(why, len, "'%s' is not a %s", path, is_dir ? "directory" : "regular file");
        return why;
    }
    if (w->unknown)
        return NULL;
    if (!preflight__walk(path, w, dir, sizeof dir)) {
        text_format(why, len, "'%s': %s cannot enter directory '%s'", path, w->name, dir);
        return why;
    }
    if (!preflight__may(path, &st, w, kind == CFG_NEED_FILE ? R_OK : X_OK)) {
        text_format(why, len, "'%s' is not %s by %s", path,
                    kind == CFG_NEED_FILE  ? "readable"
                    : kind == CFG_NEED_DIR ? "searchable"
                                           : "executable",
                    w->name);
        return why;
    }
    return NULL;
}

/* A program as spawn finds it: a path (config_load made a relative one
 * absolute), or a bare name searched in recoverd's PATH, where the first
 * entry w may execute wins. NULL, or the reason in why. */
static const char *preflight__program(const struct cfg_need *n, const struct preflight__who *w,
                                      char *why, size_t len)
{
    char full[PATH_MAX];
    if (strchr(n->path, '/'))
        return preflight__usable(n->path, CFG_NEED_PROGRAM, w, why, len);
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/bin:/usr/bin"; /* as lib/spawn.c */
    bool found = false;
    for (const char *p = path;; p++) {
        const char *z = strchr(p, ':');
        int dlen = (int)(z ? (size_t)(z - p) : strlen(p));
        char first[512];
        snprintf(full, sizeof full, "%.*s%s%s", dlen, p, dlen ? "/" : "", n->path);
        if (access(full, F_OK) == 0) {
            if (!preflight__usable(full, CFG_NEED_PROGRAM, w, first, sizeof first))
                return NULL;
            if (!found)
                text_format(why, len, "%s", first);
            found = true;
        }
        if (!z)
            break;
        p = z;
    }
    if (!found)
        text_format(why, len, "'%s' not found in PATH (%s)", n->path, path);
    return why;
}

static void preflight__need(struct preflight__run *run, size_t svc, const struct cfg_need *n)
{
    struct preflight__who w;
    char why[1024];
    preflight__who_of(n->as, &w);
    /* Its user is a problem of its own, reported already: whether the
     * path exists is still worth knowing now. */
    w.unknown = n->as && n->as->cred.error;
    const char *bad = n->kind == CFG_NEED_PROGRAM
                          ? preflight__program(n, &w, why, sizeof why)
                          : preflight__usable(n->path, n->kind, &w, why, sizeof why);
    if (bad)
        preflight__add(run, svc, n->at, "%s: %s", n->what, bad);
}

/* Limits a service asks for that its process could not be given: above
 * the hard limit without root, or an fd limit above fs.nr_open. */
/* fs.nr_open, the ceiling of any fd limit; 0 when unknown. Read with a
 * system call into the stack: no stdio buffer per reload. */
static unsigned long long preflight__nr_open(void)
{
    char buf[32];
    int fd = open("/proc/sys/fs/nr_open", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return strtoull(buf, NULL, 10);
}

static void preflight__limits(struct preflight__run *run, size_t svc, const struct service_cfg *s)
{
    unsigned long long nr_open = 0;
    for (unsigned i = 0; i < s->ident.cred.n_limits; i++)
        if (s->ident.cred.limits[i].resource == RLIMIT_NOFILE)
            nr_open = preflight__nr_open();
    for (unsigned i = 0; i < s->ident.cred.n_limits; i++) {
        const struct spawn_limit *l = &s->ident.cred.limits[i];
        struct rlimit now;
        if (l->resource == RLIMIT_NOFILE && nr_open && l->value > nr_open)
            preflight__add(run, svc, s->limit_at[i],
                           "limits: nofile above the kernel's fs.nr_open (%llu)", nr_open);
        else if (geteuid() != 0 && getrlimit(l->resource, &now) == 0 && l->value > now.rlim_max)
            preflight__add(run, svc, s->limit_at[i],
                           "limits: above recoverd's hard limit (%llu); only root may raise it",
                           (unsigned long long)now.rlim_max);
    }
}

/* ---- the run ---- */

static void preflight__service(struct preflight__run *run, size_t i)
{
    struct service_cfg *s = &run->c->services[i];
    struct preflight__names nm = {s->ident.user, s->ident.group, s->ident.user_at,
                                  s->ident.group_at};
    if (s->ident.user || s->ident.group)
        preflight__resolve(run, i, &nm, &s->ident);
    preflight__limits(run, i, s);
    for (int st = 0; st < STRATEGY__COUNT; st++)
        if (s->strategy_ident[st])
            preflight__override(run, i, &s->ident, s->strategy_ident[st]);
    for (size_t k = 0; k < s->n_checks; k++)
        preflight__override(run, i, &s->ident, &s->checks[k].ident);
    for (size_t k = 0; k < s->n_needs; k++)
        preflight__need(run, i, &s->needs[k]);
}

static int preflight__cmp(const void *a, const void *b)
{
    const struct preflight__problem *x = a, *y = b;
    if (x->at.line != y->at.line)
        return x->at.line < y->at.line ? -1 : 1;
    if (x->at.col != y->at.col)
        return x->at.col < y->at.col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Sorted into file order, one line each (the same problem found through
 * two programs once), each service's first kept as its problem. */
static int preflight__finish(struct preflight__run *run, struct preflight_report *report)
{
    struct config *c = run->c;
    int r = run->oom ? -ENOMEM : 0;
    if (run->n)
        qsort(run->v, run->n, sizeof *run->v, preflight__cmp);
    for (size_t i = 0; i < run->n; i++) {
        struct preflight__problem *p = &run->v[i];
        if (i > 0 && p->at.line == p[-1].at.line && p->at.col == p[-1].at.col &&
            !strcmp(p->msg, p[-1].msg))
            continue;
        char *line = NULL;
        if (asprintf(&line, "%s:%d:%d: error: %s", c->path, p->at.line, p->at.col, p->msg) < 0) {
            r = -ENOMEM;
            continue;
        }
        struct service_cfg *s = &c->services[p->service];
        char **v = report ? realloc(report->lines, (report->n + 1) * sizeof *v) : NULL;
        if (v)
            report->lines = v;
        if (v && !(v[report->n++] = strdup(line))) {
            report->n--;
            r = -ENOMEM;
        } else if (report && !v) {
            r = -ENOMEM;
        }
        if (!s->problem)
            s->problem = line;
        else
            free(line);
    }
    for (size_t i = 0; i < run->n; i++)
        free(run->v[i].msg);
    free(run->v);
    return r;
}

int preflight_run(struct config *c, struct preflight_report *report)
{
    struct preflight__run run = {.c = c};
    if (report)
        *report = (struct preflight_report){0};
    for (size_t i = 0; i < c->n_services; i++) {
        free(c->services[i].problem);
        c->services[i].problem = NULL;
        preflight__service(&run, i);
    }
    int r = preflight__finish(&run, report);
    c->preflighted = true;
    return r;
}

void preflight_report_free(struct preflight_report *r)
{
    for (size_t i = 0; r && i < r->n; i++)
        free(r->lines[i]);
    if (r)
        free(r->lines);
}
