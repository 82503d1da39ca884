/* Fixtures of the postgres and redis detector tests: real servers from the
 * Debian packages, started in temporary directories on free 127.0.0.1 ports
 * and stopped by PID; checks built from YAML through the kind's own field
 * table; probes run on a real loop, reported to a fake check_report. */
#ifndef RECOVERD_TESTS_DBFIX_H
#define RECOVERD_TESTS_DBFIX_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "detect/check-t.h"

/* ---- processes ---- */

/* A 127.0.0.1 TCP port nobody listens on right now. */
int dbfix_free_port(void);
/* Start argv with stdout and stderr appended to log; as the postgres system
 * user when asked and we are root (the server refuses to run as root).
 * Returns the pid (the program itself: no shell, no runuser in between). */
pid_t dbfix_spawn(const char *const argv[], const char *log, bool as_postgres);
/* Run argv to its end (at most ms); its exit status, or -1. */
int dbfix_run(const char *const argv[], const char *log, bool as_postgres, int ms);
/* Wait until words appear in the file (0) or ms pass (-1). */
int dbfix_wait_log(const char *path, const char *words, int ms);
/* Wait until 127.0.0.1:port accepts a connection (0) or ms pass (-1). */
int dbfix_wait_port(int port, int ms);
/* Send sig and reap pid within ms, SIGKILL after that. */
void dbfix_stop(pid_t pid, int sig, int ms);
/* SIGSTOP (freeze) or SIGCONT pid and its direct children: postgres
 * backends are the postmaster's children, each in a session of its own. */
void dbfix_freeze(pid_t pid, bool freeze);
/* mkdtemp under /tmp, owned by the postgres user when as_postgres. */
int dbfix_tmpdir(char *dir, size_t len, bool as_postgres);
/* Write text to path (mode 0600, owned by postgres when as_postgres). */
void dbfix_write(const char *path, const char *text, bool as_postgres);
/* rm -r dir. */
void dbfix_rmdir(const char *dir);
/* Whether an executable exists at path. */
bool dbfix_have(const char *path);
/* Send raw protocol bytes to 127.0.0.1:port (redis inline commands) and
 * read the answer into out until it holds until followed by a line end
 * (until NULL: never), the server closes, or ms pass. Returns bytes read,
 * or -1 when it cannot connect. */
int dbfix_talk(int port, const char *send, const char *until, char *out, size_t len, int ms);

/* ---- checks and probes ---- */

/* A check of kind with params from a YAML flow mapping ("{dsn: ...}"), run
 * by the plug-in loaded through detector_find. validate must pass. */
struct check *dbfix_check_new(const char *kind, const char *yaml, uint64_t timeout_ms);
/* Set c's timeout (its configuration is the fixture's): a probe that must
 * pass gets a generous one on a busy host, one that must time out a short
 * one. */
void dbfix_check_timeout(struct check *c, uint64_t ms);
/* Release the check (its handles close on the next loop turns) and free. */
void dbfix_check_free(struct check *c);
/* Map the YAML and validate it; 0, or -EINVAL with why filled. */
int dbfix_validate(const char *kind, const char *yaml, char *why, size_t len);
/* Start one probe and run the loop until it reports into obs; the test fails
 * if it does not within LOOPWAIT_MS. The loop's clock is brought up to date
 * first, so the probe's own deadline counts from the start. *elapsed_ms (if
 * not NULL): loop ms from the start to the report, on the clock the probe's
 * timer runs on. Returns whether the report came before a mark due
 * within_ms after the start, armed at the same loop time (see loopwait.h);
 * within_ms 0: true. Meaningful for a report a timer delivers (a timeout):
 * a loop a busy host runs late then still runs the two timers in order. */
bool dbfix_probe(uv_loop_t *loop, struct check *c, uint64_t within_ms, struct observation *obs,
                 uint64_t *elapsed_ms);
/* Reports received so far (to prove a cancelled probe never reports). */
int dbfix_reports(void);
/* Close what is left and assert the loop is empty. */
void dbfix_loop_close(uv_loop_t *loop);
/* A test's loop, with every detector started (cmocka setup). */
uv_loop_t *dbfix_loop_new(void);
/* Its end: the server thawed (a failed test may have left it frozen),
 * the detectors stopped, the loop closed and freed. */
void dbfix_loop_free(uv_loop_t *loop, pid_t server);

#endif
