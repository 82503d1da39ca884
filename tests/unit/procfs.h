/* What /proc says of a process, for tests that check what was killed. */
#ifndef RECOVERD_TESTS_PROCFS_H
#define RECOVERD_TESTS_PROCFS_H

#include <stdbool.h>
#include <sys/types.h>

/* Alive means running or stopped: a zombie (an orphan PID 1 has not reaped
 * yet) is dead. Gives a SIGKILL up to a second to land. */
bool procfs_alive(pid_t pid);

#endif
