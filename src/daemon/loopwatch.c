/* The loop's stall gauge: a repeating tick that measures its own lateness. */
#include "daemon/loopwatch.h"

#include "lib/clock.h"
#include "lib/uvclock.h"

#define LOOPWATCH__NS_PER_MS 1000000ull

void loopwatch_init(struct loopwatch *w, uv_loop_t *loop)
{
    *w = (struct loopwatch){.since_ms = clock_wall_ms()};
    uv_timer_init(loop, &w->timer); /* cannot fail */
    w->timer.data = w;
}

static void loopwatch__tick_cb(uv_timer_t *t);

/* Counted on uv_hrtime(), not on the loop's cached time: that one was taken
 * at the start of the turn, after whatever stalled it. */
static void loopwatch__arm(struct loopwatch *w)
{
    uvclock_arm(&w->timer, loopwatch__tick_cb, LOOPWATCH_PERIOD_MS);
    w->due_ns = uv_hrtime() + LOOPWATCH_PERIOD_MS * LOOPWATCH__NS_PER_MS;
}

void loopwatch_start(struct loopwatch *w)
{
    loopwatch__arm(w);
}

uint64_t loopwatch_tick(struct loopwatch *w, uint64_t now_ns)
{
    uint64_t late = now_ns > w->due_ns ? now_ns - w->due_ns : 0;
    if (late > w->max_late_ns)
        w->max_late_ns = late;
    if (late > LOOPWATCH_STALL_NS)
        w->stalls++;
    return late;
}

static void loopwatch__tick_cb(uv_timer_t *t)
{
    struct loopwatch *w = t->data;
    loopwatch_tick(w, uv_hrtime());
    loopwatch__arm(w);
}

void loopwatch_close(struct loopwatch *w)
{
    uv_close((uv_handle_t *)&w->timer, NULL);
}
