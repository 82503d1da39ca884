/* What /proc/<pid>/stat says of any process, ours or not. */
#ifndef RECOVERD_LIB_PROCSTAT_H
#define RECOVERD_LIB_PROCSTAT_H

#include <stdint.h>
#include <sys/types.h>

/* Start time of pid in clock ticks since boot (/proc/pid/stat field 22);
 * 0 when the process does not exist or is a zombie. With the pid it names
 * one process across pid reuse. */
uint64_t procstat_start_ticks(pid_t pid);
/* The same, zombies included (a child not reaped yet is still that one). */
uint64_t procstat_start_ticks_any(pid_t pid);
/* How long ago, in ms, a process with start_ticks started (0 if later). */
uint64_t procstat_age_ms(uint64_t start_ticks);

#endif
