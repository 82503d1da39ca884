/* The fixture of the recovery executor's tests (test_executor,
 * test_recovery_table): the real parts around a recovery, wired the way
 * daemon/service.c wires them: a monitor, a journal, the analyzer's
 * faults, a supervisor of real processes, and checks of a fake kind that
 * pass while a file exists. */
#ifndef RECOVERD_TESTS_RECFIX_H
#define RECOVERD_TESTS_RECFIX_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>
#include <uv.h>

#include "analyze/analyzer.h"
#include "config/config-t.h"
#include "detect/check.h"
#include "fakeclock.h"
#include "lib/clock.h"
#include "loopwait.h"
#include "monitor/state.h"
#include "recover/executor.h"
#include "recover/restart.h"
#include "recover/supervisor.h"

#define MAX_SVC 4

struct fixture;

struct svc {
    struct fixture *fx;
    char name[16];
    char ok_path[128];       /* the check passes while it exists */
    char script[512];        /* the command's sh -c argument */
    char repair_script[512]; /* the repair program's */
    char *cmd[4];
    struct service_cfg cfg;
    struct config *conf;         /* owns cfg's strategy params, loaded as recoverd loads them */
    struct restart_cfg *restart; /* cfg's restart params, for tests to tune; in conf */
    struct check_cfg ccfg;
    struct svc_state st;
    struct check_set checks;
    struct faults faults;
    struct supervisor sup;
    struct recovery rec;
    int ready; /* recovery sink calls */
    int recovered;
    bool up;               /* parts initialised */
    struct svc *dependent; /* depends on this one (told when it recovers) */
};

struct fixture {
    char dir[64];
    uv_loop_t loop;
    struct journal *journal;
    struct config config; /* the rules */
    struct monitor m;
    struct analysis an;
    struct executor ex;
    struct clock_src clock; /* the recoveries' and the analysis': the loop's, or fake's */
    struct fakeclock fake;  /* fixture_setup_fake: the clock; the loop then never runs */
    struct svc *svc[MAX_SVC];
    size_t n;
    pid_t forked; /* a process the test forked (an external service) */
};

int fixture_setup(void **state);

/* The same, but the recoveries and the analysis run on a fake clock (the
 * test moves it: fakeclock_advance(&fx->fake, ms)) and the test drives
 * everything else by hand; such a test never runs the loop. */
int fixture_setup_fake(void **state);

/* daemon_stop's order: no more automatic recovery, every service stopped
 * (checks, recovery aborted, process stopped), then every handle closed;
 * the loop must end empty. */
int fixture_teardown(void **state);

/* A service named name: watched only (no command) with one file check,
 * no recovery chain of its own (the rules: restart). Tests set the rest. */
struct svc *svc_new(struct fixture *fx, const char *name);

/* The service's command: sh -c script (in the test's directory). */
void svc_command(struct svc *s, const char *script);

/* Its repair program: sh -c script; the chain becomes [chain...]. */
void svc_repair(struct svc *s, const char *script);

void svc_chain(struct svc *s, int n, ...);

void svc_no_checks(struct svc *s);

/* Initialise every part and wire them (daemon/service.c's service_new). */
void svc_init(struct svc *s);

void touch(const char *path);

void touch_in(struct fixture *fx, const char *name);

/* Initialise, start, and wait for its first verification. */
void svc_start(struct svc *s);

/* s's actions, oldest first (a new reference). */
json_t *actions_of(struct svc *s);

size_t n_actions(struct svc *s);

/* Action k (oldest first) of s has this strategy and status, and its
 * result starts with result_prefix (NULL: anything). */
void assert_action(struct svc *s, size_t k, const char *strategy, const char *status,
                   const char *result_prefix);

/* s's open faults in the journal. */
size_t open_faults_in_journal(struct svc *s);

/* The service's states, oldest first, as "normal>degraded>..." */
void state_path(struct svc *s, char *buf, size_t len);

void assert_state_path(struct svc *s, const char *want);

bool idle_without_action(struct svc *s);

pid_t read_pid(struct fixture *fx, const char *name);

bool pending_queued(struct svc *s);

/* dependent depends on dep (daemon.c's linking, for two services). */
void svc_depends(struct svc *dependent, struct svc *dep);

#endif
