/* Running a service's checks: probe scheduling and the fall/rise threshold
 * that turns observations into a failing/passing condition. */
#ifndef RECOVERD_DETECT_CHECK_H
#define RECOVERD_DETECT_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "detect/check-t.h"

struct check_cfg;

/* Make the checks of cfgs (n, borrowed) in set, whose loop, service and
 * sink are set; their timers count in set->handles_open. 0 or -ENOMEM. */
int check_set_init(struct check_set *set, const struct check_cfg *cfgs, size_t n);
/* Begin probing, the first probe after first_ms; set->probing on. */
void check_set_start(struct check_set *set, uint64_t first_ms);
/* Stop probing (set->probing off); a probe in flight is cancelled and never
 * reports. Last results are kept but marked stale. */
void check_set_stop(struct check_set *set);
/* Release every check and close its timer (sink.closed per handle). */
void check_set_close(struct check_set *set);
/* A new set of checks from cfgs, not yet started; the old ones are stopped
 * and freed once their timers close. Unchanged checks keep their last
 * result. 0, or -ENOMEM with the old set left alone. */
int check_set_replace(struct check_set *set, const struct check_cfg *cfgs, size_t n);
/* Point the checks at equal cfgs of a newer configuration. */
void check_set_rebind(struct check_set *set, const struct check_cfg *cfgs);
/* Forget the streaks (not the failing state): probes from now count anew. */
void check_set_reset_streaks(struct check_set *set);
/* Forget the streaks and the failing state: the checks are judged afresh
 * (a re-check after a release or a dependency's recovery). */
void check_set_rejudge(struct check_set *set);
/* Every check has passed rise times in a row since the last reset. */
bool check_set_all_passing(const struct check_set *set);
/* The longest time one of the checks may need before it can pass (its
 * detector's settle_ms), in ms. */
uint64_t check_set_settle_ms(const struct check_set *set);
/* Index of c in its set. */
size_t check_index(const struct check *c);

/* Deliver a probe result (sets latency from c->started_us). Called by the
 * detectors (plug-ins through their host). */
void check_report(struct check *c, struct observation *obs);
/* The latest result of c (has_result) as an observation, into o. */
void check_last(const struct check *c, struct observation *o);

#endif
