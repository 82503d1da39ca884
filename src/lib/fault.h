/* What a fault and an action own: their JSON text, built with jansson so
 * nothing machine-readable is ever cut by a fixed buffer. */
#ifndef RECOVERD_LIB_FAULT_H
#define RECOVERD_LIB_FAULT_H

#include <jansson.h>

#include "lib/fault-t.h"

/* At most this many bytes of an action's result are kept (words for
 * people: a long one, a program's output, is cut). */
#define ACTION_RESULT_MAX 255

/* Free what f / a owns (context, params, result) and clear those pointers; the
 * struct itself stays the caller's. NULL-safe. */
void fault_release(struct fault *f);
void action_release(struct action *a);
/* Replace f->context / a->params with the compact text of json (its
 * reference is taken). Out of memory leaves NULL, which reads as {}. */
void fault_set_context(struct fault *f, json_t *json);
void action_set_params(struct action *a, json_t *json);
/* Replace a->result with a copy of at most ACTION_RESULT_MAX bytes of
 * text. Out of memory leaves NULL, which reads as "". */
void action_set_result(struct action *a, const char *text);
/* A copy of src into dst with its own context (dst's old one released). */
void fault_copy(struct fault *dst, const struct fault *src);

#endif
