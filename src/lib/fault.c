/* Ownership of the JSON text of faults and actions. */
#include "lib/fault.h"

#include <stdlib.h>
#include <string.h>

static char *fault__text(json_t *json)
{
    char *txt = json ? json_dumps(json, JSON_COMPACT) : NULL;
    json_decref(json);
    return txt;
}

void fault_release(struct fault *f)
{
    if (!f)
        return;
    free(f->context);
    f->context = NULL;
}

void action_release(struct action *a)
{
    if (!a)
        return;
    free(a->params);
    a->params = NULL;
    free(a->result);
    a->result = NULL;
}

void fault_set_context(struct fault *f, json_t *json)
{
    free(f->context);
    f->context = fault__text(json);
}

void action_set_params(struct action *a, json_t *json)
{
    free(a->params);
    a->params = fault__text(json);
}

void action_set_result(struct action *a, const char *text)
{
    free(a->result);
    a->result = strndup(text, ACTION_RESULT_MAX);
}

void fault_copy(struct fault *dst, const struct fault *src)
{
    if (dst == src)
        return;
    free(dst->context);
    *dst = *src;
    dst->context = src->context ? strdup(src->context) : NULL;
}
