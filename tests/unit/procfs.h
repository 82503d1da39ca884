/* What /proc says of a process, for tests that check what was killed. */
#ifndef RECOVERD_TESTS_PROCFS_H
#define RECOVERD_TESTS_PROCFS_H

#include <stdbool.h>
#include <sys/types.h>

/* Alive now: running or stopped. A zombie (an orphan PID 1 has not reaped
 * yet) is dead. */
bool procfs_alive(pid_t pid);

/* Wait, up to LOOPWAIT_MS, for pid to die (a SIGKILL sent by the code under
 * test takes a moment to land); true once it is dead. On false, pid (a
 * process the test itself started) is SIGKILLed so that no failing test
 * leaves it behind. */
bool procfs_dies(pid_t pid);

#endif
