/* A seccomp filter on one system call, for tests that need the kernel to
 * pause or refuse it in this process and the children it starts after. */
#ifndef RECOVERD_TESTS_SECCOMP_H
#define RECOVERD_TESTS_SECCOMP_H

#include <stdint.h>

#define SECCOMP_SKIP 77 /* exit code of a helper that found no seccomp (ctest SKIP_RETURN_CODE) */

/* Answer system call nr of the calling thread, and of the threads and
 * processes it starts from now on, with action (SECCOMP_RET_USER_NOTIF,
 * SECCOMP_RET_ERRNO | E, ...); every other call is allowed. Sets
 * no_new_privs, for good. The notification fd for SECCOMP_RET_USER_NOTIF,
 * 0 otherwise, or -errno where seccomp cannot do it (skip the test). */
int seccomp_on(long nr, uint32_t action);

#endif
