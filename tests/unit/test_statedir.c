/* Unit tests of the state directory: default place, checks, the lock, and
 * opening its files without following links. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/statedir.h"

#define NOBODY 65534

struct fixture {
    char dir[64];   /* mkdtemp directory, 0700 */
    char sd[96];    /* dir/state: the state_dir under test */
    char file[128]; /* dir/state/f */
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/test_statedir.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->sd, sizeof fx->sd, "%s/state", fx->dir);
    snprintf(fx->file, sizeof fx->file, "%s/f", fx->sd);
    *state = fx;
    return 0;
}

static void remove_tree(const char *path)
{
    char p[512];
    DIR *d = opendir(path);
    const struct dirent *e;
    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        if (e->d_type == DT_DIR)
            remove_tree(p);
        else
            unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(path);
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    remove_tree(fx->dir);
    free(fx);
    return 0;
}

/* Run fn in a child as user nobody (and group nogroup); its exit status. */
static int as_nobody(void (*fn)(void *arg), void *arg)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (setresgid(NOBODY, NOBODY, NOBODY) < 0 || setresuid(NOBODY, NOBODY, NOBODY) < 0)
            _exit(99);
        fn(arg);
        _exit(0);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

/* ---- the default place ---- */

static void default_is_var_lib_for_root(void **state)
{
    assert_int_equal(geteuid(), 0); /* the suite runs as root */
    char *d = statedir_default();
    assert_string_equal(d, "/var/lib/recoverd");
    free(d);
}

/* Exit 0 when statedir_default() is the string in arg, 1 otherwise. */
static void expect_default(void *arg)
{
    char *d = statedir_default();
    _exit(d && strcmp(d, arg) == 0 ? 0 : 1);
}

static void default_follows_xdg_then_home_for_other_users(void **state)
{
    setenv("XDG_STATE_HOME", "/srv/xdg", 1);
    setenv("HOME", "/home/op", 1);
    assert_int_equal(as_nobody(expect_default, (void *)"/srv/xdg/recoverd"), 0);
    setenv("XDG_STATE_HOME", "relative/xdg", 1); /* the XDG spec: ignored */
    assert_int_equal(as_nobody(expect_default, (void *)"/home/op/.local/state/recoverd"), 0);
    unsetenv("XDG_STATE_HOME");
    assert_int_equal(as_nobody(expect_default, (void *)"/home/op/.local/state/recoverd"), 0);
    unsetenv("HOME");
}

/* ---- the directory and its lock ---- */

static void open_creates_checks_and_locks(void **state)
{
    struct fixture *fx = *state;
    struct statedir sd;
    char err[512] = "", lock[160], pid[32] = "";
    assert_int_equal(statedir_open(&sd, fx->sd, err, sizeof err), 0);
    struct stat st;
    assert_int_equal(stat(fx->sd, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0750);
    assert_string_equal(sd.path, fx->sd); /* /tmp has no link in it here */
    snprintf(lock, sizeof lock, "%s/lock", fx->sd);
    int fd = open(lock, O_RDONLY);
    assert_true(fd >= 0);
    assert_true(read(fd, pid, sizeof pid - 1) > 0);
    close(fd); /* another fd of ours: closing it drops our POSIX lock, so check last */
    assert_int_equal(strtol(pid, NULL, 10), getpid());
    assert_int_equal(statedir_subdir(&sd, "logs", err, sizeof err), 0);
    statedir_close(&sd);
    statedir_close(&sd); /* idempotent */
}

/* Exit 0 when statedir_open(arg) fails with -EBUSY naming the parent. */
static void expect_busy(void *arg)
{
    struct statedir sd;
    char err[512] = "", want[32];
    int r = statedir_open(&sd, arg, err, sizeof err);
    snprintf(want, sizeof want, "pid %ld ", (long)getppid());
    _exit(r == -EBUSY && strstr(err, want) && strstr(err, "in use by another recoverd") ? 0 : 1);
}

static void a_second_process_finds_it_locked_and_named(void **state)
{
    struct fixture *fx = *state;
    struct statedir sd;
    char err[512] = "";
    assert_int_equal(statedir_open(&sd, fx->sd, err, sizeof err), 0);
    pid_t pid = fork(); /* POSIX locks are per process: a fork does not inherit ours */
    assert_true(pid >= 0);
    if (pid == 0)
        expect_busy(fx->sd);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    statedir_close(&sd);
    /* Released: the next one gets it. */
    assert_int_equal(statedir_open(&sd, fx->sd, err, sizeof err), 0);
    statedir_close(&sd);
}

static void refuses_a_dir_others_may_write_or_own(void **state)
{
    struct fixture *fx = *state;
    struct statedir sd;
    char err[512] = "";
    assert_int_equal(mkdir(fx->sd, 0700), 0);
    assert_int_equal(chmod(fx->sd, 0770), 0);
    assert_int_equal(statedir_open(&sd, fx->sd, err, sizeof err), -EPERM);
    assert_non_null(strstr(err, "writable by its group"));
    assert_int_equal(chmod(fx->sd, 0703), 0);
    assert_int_equal(statedir_open(&sd, fx->sd, err, sizeof err), -EPERM);
    assert_non_null(strstr(err, "writable by others"));
    assert_int_equal(chmod(fx->sd, 0700), 0);
    assert_int_equal(chown(fx->sd, NOBODY, -1), 0);
    assert_int_equal(statedir_open(&sd, fx->sd, err, sizeof err), -EPERM);
    assert_non_null(strstr(err, "owned by uid 65534"));
    assert_int_equal(chown(fx->sd, 0, -1), 0);
    char lock[160];
    snprintf(lock, sizeof lock, "%s/lock", fx->sd);
    assert_int_equal(access(lock, F_OK), -1); /* nothing was created in a refused dir */
    assert_int_equal(sd.fd, -1);
    assert_int_equal(sd.lock_fd, -1);
}

static void refuses_a_logs_link_or_a_writable_logs(void **state)
{
    struct fixture *fx = *state;
    struct statedir sd;
    char err[512] = "", logs[160];
    assert_int_equal(statedir_open(&sd, fx->sd, err, sizeof err), 0);
    snprintf(logs, sizeof logs, "%s/logs", fx->sd);
    assert_int_equal(symlink("/tmp", logs), 0);
    assert_true(statedir_subdir(&sd, "logs", err, sizeof err) < 0);
    assert_non_null(strstr(err, "refused"));
    assert_int_equal(unlink(logs), 0);
    assert_int_equal(mkdir(logs, 0777), 0);
    assert_int_equal(chmod(logs, 0777), 0);
    assert_int_equal(statedir_subdir(&sd, "logs", err, sizeof err), -EPERM);
    assert_non_null(strstr(err, "writable by others"));
    statedir_close(&sd);
}

/* ---- files in it ---- */

static void file_open_refuses_links_fifos_hardlinks_and_strangers(void **state)
{
    struct fixture *fx = *state;
    char why[160] = "", other[160];
    assert_int_equal(mkdir(fx->sd, 0700), 0);
    snprintf(other, sizeof other, "%s/other", fx->sd);

    assert_int_equal(symlink("/etc/passwd", fx->file), 0);
    assert_int_equal(statedir_file_open(fx->file, O_WRONLY | O_CREAT | O_APPEND, 0600, why,
                                        sizeof why),
                     -ELOOP);
    assert_non_null(strstr(why, "symbolic link"));
    assert_int_equal(unlink(fx->file), 0);

    assert_int_equal(mkfifo(fx->file, 0600), 0); /* would block a plain open for writing */
    assert_int_equal(statedir_file_open(fx->file, O_RDONLY, 0, why, sizeof why), -EINVAL);
    assert_non_null(strstr(why, "not a regular file"));
    assert_int_equal(unlink(fx->file), 0);

    int fd = statedir_file_open(fx->file, O_WRONLY | O_CREAT, 0600, why, sizeof why);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(link(fx->file, other), 0);
    assert_int_equal(statedir_file_open(fx->file, O_RDONLY, 0, why, sizeof why), -EMLINK);
    assert_int_equal(unlink(other), 0);

    assert_int_equal(chown(fx->file, NOBODY, -1), 0);
    assert_int_equal(statedir_file_open(fx->file, O_RDONLY, 0, why, sizeof why), -EPERM);
    assert_non_null(strstr(why, "owned by uid 65534"));
    assert_int_equal(chown(fx->file, 0, -1), 0);
    fd = statedir_file_open(fx->file, O_RDONLY, 0, why, sizeof why);
    assert_true(fd >= 0);
    close(fd);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(default_is_var_lib_for_root),
        T(default_follows_xdg_then_home_for_other_users),
        T(open_creates_checks_and_locks),
        T(a_second_process_finds_it_locked_and_named),
        T(refuses_a_dir_others_may_write_or_own),
        T(refuses_a_logs_link_or_a_writable_logs),
        T(file_open_refuses_links_fifos_hardlinks_and_strangers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
