/* A VFS for tests that watches fsync: SQLite's "unix" VFS with every
 * xSync counted by the thread that made it, and able to hold the syncs of
 * threads other than the test's own until the test lets them go (a disk
 * whose fsync takes a long time, made certain), and able to refuse the
 * test's own writes (a full disk). */
#ifndef RECOVERD_TESTS_SYNCVFS_H
#define RECOVERD_TESTS_SYNCVFS_H

#include <stdbool.h>

/* Register the VFS as SQLite's default; the calling thread is "the test's
 * own" (the loop's, for the journal's writer). */
void syncvfs_install(void);
/* Back to "unix" as the default; lets every held sync go. */
void syncvfs_remove(void);
/* Syncs made so far by the test's thread, and by other threads. */
unsigned syncvfs_own(void);
unsigned syncvfs_others(void);
/* Hold (true) or let go (false) the next syncs of other threads. */
void syncvfs_hold(bool on);
/* Syncs of other threads that wait right now. */
unsigned syncvfs_held(void);
/* While on, every write of the test's own thread fails as on a full disk
 * (SQLITE_FULL); the other threads' go through. */
void syncvfs_full(bool on);

#endif
