/* Loading check kinds from plug-ins. Kept apart from detector.c (which only
 * asks plugin_find) so that a test faking detector_find still links with
 * config.c, which reports detector_find_error. */
#include "detect/plugin.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define PLUGIN__NAME_MAX 32 /* bytes of a kind name; longer is no kind of ours */

static struct {
    const struct detector_ops *ops[PLUGIN_MAX]; /* loaded kinds, in load order */
    bool up[PLUGIN_MAX];      /* ops[i]->init succeeded and shutdown has not run */
    size_t n;                 /* entries used */
    uv_loop_t *loop;          /* between plugin_init_all and shutdown; borrowed */
    const char *dir;          /* override for tests; NULL: next to the executable */
    char err[PATH_MAX + 128]; /* why the latest plugin_find failed; "" when it did not */
} plugin__g;

const char *detector_find_error(void)
{
    return plugin__g.err[0] ? plugin__g.err : NULL;
}

void plugin_dir_set(const char *dir)
{
    plugin__g.dir = dir;
}

/* The name goes into a file name and a symbol: letters, digits, '_' only,
 * so that a config cannot make us load "../../tmp/x.so". */
static bool plugin__name_ok(const char *kind)
{
    size_t n = strspn(kind, "abcdefghijklmnopqrstuvwxyz0123456789_");
    return n > 0 && n <= PLUGIN__NAME_MAX && kind[n] == '\0';
}

static int plugin__path(const char *kind, char *buf, size_t len)
{
    char exe[PATH_MAX];
    const char *dir = plugin__g.dir;
    ssize_t n;
    if (!dir) {
        if ((n = readlink("/proc/self/exe", exe, sizeof exe - 1)) < 0)
            return -errno;
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = '\0';
        dir = exe;
    }
    n = snprintf(buf, len, "%s/" DETECTOR_PLUGIN_FILE_FMT, dir, kind);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* dlopen and ask the entry point; never dlclose: the libraries a plug-in
 * pulls in (OpenSSL...) keep exit handlers that must still find their code. */
static const struct detector_ops *plugin__load(const char *kind)
{
    char path[PATH_MAX], sym[sizeof DETECTOR_PLUGIN_ENTRY_FMT + PLUGIN__NAME_MAX];
    const char *file;
    detector_plugin_entry entry;
    const struct detector_ops *ops;
    void *h;
    int r;
    if ((r = plugin__path(kind, path, sizeof path)) < 0) {
        snprintf(plugin__g.err, sizeof plugin__g.err, "plugin path: %s", strerror(-r));
        return NULL;
    }
    file = strrchr(path, '/') + 1;
    if (access(path, F_OK) < 0) {
        snprintf(plugin__g.err, sizeof plugin__g.err, "plugin %s not found", file);
        return NULL;
    }
    if (!(h = dlopen(path, RTLD_NOW | RTLD_LOCAL))) {
        snprintf(plugin__g.err, sizeof plugin__g.err, "plugin %s: %s", file, dlerror());
        return NULL;
    }
    snprintf(sym, sizeof sym, DETECTOR_PLUGIN_ENTRY_FMT, kind);
    *(void **)&entry = dlsym(h, sym);
    ops = entry ? entry() : NULL;
    if (!ops || !ops->name || strcmp(ops->name, kind) != 0 || !ops->start) {
        snprintf(plugin__g.err, sizeof plugin__g.err, "plugin %s: no %s giving kind '%s'", file,
                 sym, kind);
        return NULL;
    }
    return ops;
}

const struct detector_ops *plugin_find(const char *kind)
{
    const struct detector_ops *ops;
    int r;
    plugin__g.err[0] = '\0';
    for (size_t i = 0; i < plugin__g.n; i++)
        if (strcmp(plugin__g.ops[i]->name, kind) == 0)
            return plugin__g.ops[i];
    if (!plugin__name_ok(kind))
        return NULL; /* a typo, not a plug-in: nothing more to say */
    if (plugin__g.n == PLUGIN_MAX) {
        snprintf(plugin__g.err, sizeof plugin__g.err, "more than %d plug-in kinds", PLUGIN_MAX);
        return NULL;
    }
    if (!(ops = plugin__load(kind)))
        return NULL;
    /* Loaded by a reload while the daemon runs: start it now. */
    if (plugin__g.loop && ops->init && (r = ops->init(plugin__g.loop)) < 0) {
        snprintf(plugin__g.err, sizeof plugin__g.err, "plugin " DETECTOR_PLUGIN_FILE_FMT
                 ": cannot start: %s", kind, strerror(-r));
        return NULL;
    }
    plugin__g.up[plugin__g.n] = plugin__g.loop != NULL;
    plugin__g.ops[plugin__g.n++] = ops;
    return ops;
}

int plugin_init_all(uv_loop_t *loop)
{
    int r;
    for (size_t i = 0; i < plugin__g.n; i++) {
        if (plugin__g.up[i])
            continue;
        if (plugin__g.ops[i]->init && (r = plugin__g.ops[i]->init(loop)) < 0) {
            plugin_shutdown_all();
            return r;
        }
        plugin__g.up[i] = true;
    }
    plugin__g.loop = loop;
    return 0;
}

void plugin_shutdown_all(void)
{
    for (size_t i = plugin__g.n; i-- > 0;) {
        if (plugin__g.up[i] && plugin__g.ops[i]->shutdown)
            plugin__g.ops[i]->shutdown();
        plugin__g.up[i] = false;
    }
    plugin__g.loop = NULL;
}

size_t plugin_names(const char **out, size_t max)
{
    size_t n = plugin__g.n < max ? plugin__g.n : max;
    for (size_t i = 0; i < n; i++)
        out[i] = plugin__g.ops[i]->name;
    return n;
}
