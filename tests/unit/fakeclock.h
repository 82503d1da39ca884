/* A clock_src (lib/clock.h) whose time moves only when the test advances
 * it: timers fire in due order (equal due times in arming order), from
 * inside fakeclock_advance, so a module's deadlines are tested without
 * sleeping and whatever the machine's speed. */
#ifndef RECOVERD_TESTS_FAKECLOCK_H
#define RECOVERD_TESTS_FAKECLOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/clock.h"

struct fakeclock__timer;

struct fakeclock {
    struct clock_src src;             /* hand &src to the code under test */
    uint64_t now_us;                  /* its time, us */
    uint64_t seq;                     /* arming order, for equal due times */
    struct fakeclock__timer *timers;  /* every timer not closed yet */
    struct fakeclock__timer *closing; /* closed, closed() not called yet */
    unsigned fired;                   /* timers fired so far */
};

/* Start at start_us (anything: a module must not care). */
void fakeclock_init(struct fakeclock *fc, uint64_t start_us);
/* Move time on by ms, firing each timer that falls due on the way at its
 * due time, earliest first (a callback may arm more: those due by the end
 * fire too). Pending close callbacks run first. Returns timers fired. */
unsigned fakeclock_advance(struct fakeclock *fc, uint64_t ms);
/* Move time to the earliest armed timer and fire it. False: none armed. */
bool fakeclock_next(struct fakeclock *fc);
/* ms until t fires (rounded up), -1 if it is not armed. */
int64_t fakeclock_due_in_ms(const struct fakeclock *fc, const struct clock_timer *t);
/* Armed timers. */
unsigned fakeclock_armed(const struct fakeclock *fc);
/* Run the close callbacks that are due (as a loop turn would). */
void fakeclock_settle(struct fakeclock *fc);
/* Settle; the number of timers still open (a test's teardown wants 0). */
unsigned fakeclock_open(struct fakeclock *fc);

#endif
