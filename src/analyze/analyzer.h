/* The analyzer: classifies what a detector saw into a fault (type,
 * severity, impact), keeps its identity stable while open, journals it and
 * hands it to the executor. */
#ifndef RECOVERD_ANALYZE_ANALYZER_H
#define RECOVERD_ANALYZE_ANALYZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/fault-t.h"
#include "detect/check-t.h"

struct service;

/* Fault slots of a service (see struct fault_slot). */
#define SLOT_PROCESS 0
#define SLOT_CHECK(i) ((i) + 1)
#define SLOT_SUPERVISOR(s) ((s)->n_checks + 1)

/* Check i of s crossed its fall threshold with observation o. */
void analyzer_check_failing(struct service *s, size_t i, const struct observation *o);
/* The process of s exited unexpectedly (status/signal as libuv reports). */
void analyzer_process_exited(struct service *s, int64_t status, int term_signal, uint64_t uptime_ms);
/* The command of s could not be started (err: -errno / UV error). */
void analyzer_spawn_failed(struct service *s, int err);
/* An external service's pidfile names no live process (err: -errno). */
void analyzer_external_missing(struct service *s, int err);
/* The restart limit was reached: a critical fault that stays open. */
void analyzer_gave_up(struct service *s, const char *description);
/* The strategy chain for fault f of s: the service's own `recovery` list,
 * else the rules for f's type. Fills plan, returns its length. */
unsigned analyzer_plan(const struct service *s, const struct fault *f, int *plan);
/* Close the supervisor's fault of s (an operator acted). */
void analyzer_resolve_supervisor(struct service *s, const char *why);
/* Resolve every open fault of s except the supervisor's; returns how many. */
int analyzer_resolve_all(struct service *s, const char *why);
/* Load faults a previous recoverd left open for s into its slots. */
void analyzer_adopt_open_faults(struct service *s);
/* Does a dependency of s have an open fault (a fault of s would be its symptom)? */
bool analyzer_dependency_failing(const struct service *s);
/* Does s have an open fault (any slot)? */
bool analyzer_has_open(const struct service *s);

#endif
