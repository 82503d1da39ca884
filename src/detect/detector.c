/* The registry of check kinds: the core finds a kind by its YAML name and
 * never switches on it. Kinds not built in come from plug-ins (plugin.c). */
#include "detect/detector.h"

#include <errno.h>
#include <string.h>

#include "detect/kinds.h"
#include "detect/plugin.h"
#include "lib/lookup.h"
#include "lib/srcport.h"

const struct detector_host detector_host = {
    .report = check_report,
    .lookup_start = lookup_start,
    .lookup_cancel = lookup_cancel,
    .srcport_apply = srcport_apply,
};

static const struct detector_ops *const detector__kinds[] = {
    &http_detector,
    &tcp_detector,
    &command_detector,
    &resource_detector,
};

#define DETECTOR__N (sizeof detector__kinds / sizeof *detector__kinds)

const struct detector_ops *detector_find(const char *name)
{
    for (size_t i = 0; i < DETECTOR__N; i++)
        if (strcmp(detector__kinds[i]->name, name) == 0)
            return detector__kinds[i];
    return detector_plugin_find(name, &detector_host);
}

const char *const *detector_names(void)
{
    /* Rebuilt on each call from the tables, so they never disagree. */
    static const char *names[DETECTOR__N + DETECTOR_PLUGIN_MAX + 1];
    size_t i;
    for (i = 0; i < DETECTOR__N; i++)
        names[i] = detector__kinds[i]->name;
    i += detector_plugin_names(names + i, DETECTOR_PLUGIN_MAX);
    names[i] = NULL;
    return names;
}

int detector_init_all(uv_loop_t *loop)
{
    size_t i;
    int r = 0;
    for (i = 0; i < DETECTOR__N; i++)
        if (detector__kinds[i]->init && (r = detector__kinds[i]->init(loop)) < 0)
            goto fail;
    if ((r = detector_plugin_init_all(loop)) < 0)
        goto fail;
    return 0;
fail:
    /* Undo the kinds already initialised so a retry starts clean. */
    while (i-- > 0)
        if (detector__kinds[i]->shutdown)
            detector__kinds[i]->shutdown();
    return r;
}

void detector_shutdown_all(void)
{
    detector_plugin_shutdown_all();
    for (size_t i = DETECTOR__N; i-- > 0;)
        if (detector__kinds[i]->shutdown)
            detector__kinds[i]->shutdown();
}

static void detector__cfg_kind(const struct detector_ops *ops, struct cfg_kind *out)
{
    *out = (struct cfg_kind){.ops = ops,
                             .name = ops->name,
                             .fields = ops->fields,
                             .params_size = ops->params_size,
                             .params_init = ops->params_init,
                             .validate = ops->validate};
}

int detector_cfg_kind(const char *name, struct cfg_kind *out, const char **why)
{
    const struct detector_ops *ops = detector_find(name);
    if (!ops) {
        *why = detector_find_error();
        return -ENOENT;
    }
    detector__cfg_kind(ops, out);
    *why = NULL;
    return 0;
}

int detector_cfg_kind_loaded(const char *name, struct cfg_kind *out)
{
    const struct detector_ops *ops = NULL;
    for (size_t i = 0; i < DETECTOR__N && !ops; i++)
        if (strcmp(detector__kinds[i]->name, name) == 0)
            ops = detector__kinds[i];
    if (!ops && !(ops = detector_plugin_loaded(name)))
        return -ENOENT;
    detector__cfg_kind(ops, out);
    return 0;
}
