/* Loading plug-ins from the executable's directory and remembering their
 * entry points. */
#include "lib/plugin.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define PLUGIN__KEEP 16       /* entry points remembered; more are looked up each time */
#define PLUGIN__SYMBOL_MAX 64 /* bytes of an entry point's name remembered */

/* One entry point found. */
struct plugin__entry {
    char name[PLUGIN_NAME_MAX + 1];  /* the plug-in's */
    char symbol[PLUGIN__SYMBOL_MAX]; /* the entry point's */
    void *addr;                      /* in the library, which is never closed */
};

static struct {
    struct plugin__entry found[PLUGIN__KEEP]; /* in load order */
    size_t n;                                 /* entries used */
    const char *dir;                          /* override for tests; NULL: next to the executable */
} plugin__g;

bool plugin_name_ok(const char *name)
{
    size_t n = strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_");
    return n > 0 && n <= PLUGIN_NAME_MAX && name[n] == '\0';
}

void plugin_dir_set(const char *dir)
{
    plugin__g.dir = dir;
    plugin__g.n = 0;
}

static int plugin__path(const char *name, char *buf, size_t len)
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
    n = snprintf(buf, len, "%s/" PLUGIN_FILE_FMT, dir, name);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* dlopen and dlsym; never dlclose: the libraries a plug-in pulls in
 * (OpenSSL...) keep exit handlers that must still find their code, and
 * dlopen of a library already open only counts a reference. */
static void *plugin__open(const char *name, const char *symbol, char *err, size_t len)
{
    char path[PATH_MAX];
    void *h, *addr;
    int r;
    if ((r = plugin__path(name, path, sizeof path)) < 0) {
        snprintf(err, len, "plugin " PLUGIN_FILE_FMT ": path: %s", name, strerror(-r));
        return NULL;
    }
    if (access(path, F_OK) < 0) {
        snprintf(err, len, "plugin " PLUGIN_FILE_FMT " not found", name);
        return NULL;
    }
    /* RTLD_NOW, as the executable's own -z now: a plug-in missing a symbol
     * fails here, with words, rather than at its first call. */
    if (!(h = dlopen(path, RTLD_NOW | RTLD_LOCAL))) {
        snprintf(err, len, "plugin " PLUGIN_FILE_FMT ": %s", name, dlerror());
        return NULL;
    }
    if (!(addr = dlsym(h, symbol)))
        snprintf(err, len, "plugin " PLUGIN_FILE_FMT ": no %s", name, symbol);
    return addr;
}

void *plugin_load(const char *name, const char *symbol, char *err, size_t len)
{
    struct plugin__entry *e;
    void *addr;
    if (!plugin_name_ok(name)) {
        snprintf(err, len, "plugin name '%.*s' is not [a-z0-9_]{1,%d}", PLUGIN_NAME_MAX, name,
                 PLUGIN_NAME_MAX);
        return NULL;
    }
    /* O(n) with n <= PLUGIN__KEEP, and only when a kind is first named or
     * an https check or webhook starts its transport. */
    for (size_t i = 0; i < plugin__g.n; i++) {
        e = &plugin__g.found[i];
        if (strcmp(e->name, name) == 0 && strcmp(e->symbol, symbol) == 0)
            return e->addr;
    }
    if (!(addr = plugin__open(name, symbol, err, len)))
        return NULL;
    if (plugin__g.n < PLUGIN__KEEP && strlen(symbol) < PLUGIN__SYMBOL_MAX) {
        e = &plugin__g.found[plugin__g.n++];
        snprintf(e->name, sizeof e->name, "%s", name);
        snprintf(e->symbol, sizeof e->symbol, "%s", symbol);
        e->addr = addr;
    }
    return addr;
}
