/* Running a service's checks: probe scheduling and the fall/rise threshold
 * that turns observations into a failing/passing condition. */
#ifndef RECOVERD_DETECT_CHECK_H
#define RECOVERD_DETECT_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "detect/check-t.h"

struct service;

/* Allocate s->checks from s->cfg and init their timers. 0 or -ENOMEM. */
int check_init_all(struct service *s);
/* Begin probing, the first probe after first_ms. */
void check_start_all(struct service *s, uint64_t first_ms);
/* Stop probing; a probe in flight is cancelled and never reports. */
void check_stop_all(struct service *s);
/* Release every check and close its timer (counts in s->handles_open). */
void check_free_all(struct service *s);
/* After s->cfg changed: a new set of checks from it, not yet started; the
 * old ones are stopped and freed once their timers close. Unchanged checks
 * keep their last result. 0, or -ENOMEM with the old set left alone. */
int check_replace_all(struct service *s);
/* Forget the streaks (not the failing state): probes after a spawn count anew. */
void check_reset_streaks(struct service *s);
/* Every check has passed rise times in a row since the last reset. */
bool check_all_passing(const struct service *s);

#endif
