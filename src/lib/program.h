/* Running a helper program (a check plugin, a repair script, an external
 * service's start/stop program) in the loop: argv, no shell, a timeout that
 * kills its whole process group, and its output captured up to a bound. */
#ifndef RECOVERD_LIB_PROGRAM_H
#define RECOVERD_LIB_PROGRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct program; /* opaque, on the heap; freed by the module itself */

struct program_result {
    int exit_code;        /* valid when !signal && !timed_out && !spawn_error */
    int signal;           /* signal that ended it, 0 if none (SIGKILL after a timeout) */
    bool timed_out;       /* killed (SIGKILL to the group) after timeout_ms */
    int spawn_error;      /* -errno when it could not be started, else 0 */
    const char *output;   /* stdout+stderr, NUL-terminated, at most max_output bytes; valid
                           * only during the callback */
    size_t output_len;    /* bytes in output, without the NUL */
    bool truncated;       /* more output was produced and discarded */
    uint64_t duration_ms; /* program_run -> completion, monotonic ms */
};

typedef void (*program_done_cb)(const struct program_result *r, void *arg);

/* Start argv (argv[0] without '/' is looked up in PATH; env_add: entries put
 * over recoverd's environment as spawn_opts.env_add, NULL: none; cwd NULL:
 * recoverd's) in its own session and process group.
 * cb runs exactly once, from a loop callback (never from inside program_run),
 * also for a spawn failure; after it returns the program is freed. The
 * program is done when its leader has exited and its output reached EOF, or
 * 100 ms after the leader's exit if something it left behind still holds the
 * output open; either way whatever is left in its process group is then
 * SIGKILLed. timeout_ms 0: no timeout. Returns NULL only when out of memory
 * (cb then never runs). */
struct program *program_run(uv_loop_t *loop, char *const argv[], char *const env_add[],
                            const char *cwd, uint64_t timeout_ms, size_t max_output,
                            program_done_cb cb, void *arg);

/* The same, run with cred (NULL: recoverd's own credentials; see struct
 * spawn_cred): a service's programs run as its user. */
struct spawn_cred;
struct program *program_run_as(uv_loop_t *loop, char *const argv[], char *const env_add[],
                               const char *cwd, const struct spawn_cred *cred, uint64_t timeout_ms,
                               size_t max_output, program_done_cb cb, void *arg);

/* Kill the process group now; cb is not called; the memory is freed once the
 * leader is reaped and the handles have closed. NULL-safe; a no-op when
 * called from inside cb. Must not be called after cb returned (p is gone). */
void program_cancel(struct program *p);
/* Leave the process group alone when the program exits 0: for programs
 * whose job is to start something that outlives them (an external
 * service's start/restart program). Call right after program_run. */
void program_keep_group(struct program *p);

#endif
