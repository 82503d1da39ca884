/* lib/procstat: the start time that, with the pid, names one process. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/procstat.h"

/* Field 22 of /proc/pid/stat parsed another way: split on spaces after
 * the last ')'. */
static uint64_t field22(pid_t pid)
{
    char path[32], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *save = NULL, *p = strrchr(buf, ')');
    assert_non_null(p);
    int field = 2; /* ')' closes comm, field 2 */
    for (char *tok = strtok_r(p + 1, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
        if (++field == 22)
            return strtoull(tok, NULL, 10);
    fail();
    return 0;
}

/* A child asleep under a name with ") " and spaces; it tells us its name
 * is set by a byte on the pipe. It ends itself should the test not. */
static pid_t child_named(const char *name)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(10);
        prctl(PR_SET_NAME, name, 0, 0, 0);
        if (write(p[1], "", 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    char c;
    close(p[1]);
    assert_int_equal(read(p[0], &c, 1), 1);
    close(p[0]);
    return pid;
}

static void procstat_start_ticks_of_self_is_stable(void **state)
{
    uint64_t t = procstat_start_ticks(getpid());
    assert_true(t > 0);
    assert_int_equal(t, field22(getpid()));
    assert_int_equal(procstat_start_ticks(getpid()), t);
}

static void procstat_start_ticks_survives_parens_in_name(void **state)
{
    pid_t pid = child_named("x) 1 2 (y) z");
    uint64_t t = procstat_start_ticks(pid);
    assert_int_equal(t, field22(pid));
    assert_true(t >= procstat_start_ticks(getpid())); /* started after us */
    kill(pid, SIGKILL);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
}

/* A zombie is no longer the process it was; a reaped pid is nothing. */
static void procstat_start_ticks_of_zombie_or_missing_is_zero(void **state)
{
    pid_t pid = child_named("z");
    siginfo_t si;
    kill(pid, SIGKILL);
    assert_int_equal(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
    assert_int_equal(procstat_start_ticks(pid), 0);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    assert_int_equal(procstat_start_ticks(pid), 0);
    assert_int_equal(procstat_start_ticks(0x3fffffff), 0); /* above any pid_max */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(procstat_start_ticks_of_self_is_stable),
        cmocka_unit_test(procstat_start_ticks_survives_parens_in_name),
        cmocka_unit_test(procstat_start_ticks_of_zombie_or_missing_is_zero),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
