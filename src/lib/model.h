/* Enum <-> string for the domain vocabulary (shared by recoverd and recoverctl). */
#ifndef RECOVERD_LIB_MODEL_H
#define RECOVERD_LIB_MODEL_H

#include "lib/model-t.h"

const char *state_name(enum state s);
const char *fault_type_name(enum fault_type t);
const char *severity_name(enum severity s);
const char *impact_name(enum impact i);
const char *action_status_name(enum action_status s);
const char *strategy_name(enum strategy s);

/* Define `const char *fn(enum type v)`: the word of v in MAP (an X-macro
 * list of (e, "word")), "unknown" outside it. One spelling per value for
 * every enum that has a table (state events, supervision, recovery). */
#define MODEL_NAME_OF(fn, type, MAP, COUNT)                                                        \
    const char *fn(enum type v)                                                                    \
    {                                                                                              \
        static const char *const names[] = {MAP(MODEL_NAME__WORD)};                                \
        return (unsigned)v < (COUNT) ? names[v] : "unknown";                                       \
    }
#define MODEL_NAME__WORD(e, s) s,

/* Parse a name; return the enum value, or -1 when the name is unknown. */
int state_parse(const char *name);
int fault_type_parse(const char *name);
int severity_parse(const char *name);
int impact_parse(const char *name);
int action_status_parse(const char *name);
int strategy_parse(const char *name);

#endif
