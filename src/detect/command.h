/* Command checks: any Nagios-compatible check program (Debian's
 * monitoring-plugins: check_disk, check_http, check_pgsql...) run per probe
 * as an argv array, no shell, killed with its whole process group after the
 * check's timeout. Exit 0 OK and 1 WARNING pass; 2 CRITICAL, 3 UNKNOWN (or
 * anything else), a timeout or a program that cannot start fail. The ops
 * table is command_detector (detect/kinds.h). */
#ifndef RECOVERD_DETECT_COMMAND_H
#define RECOVERD_DETECT_COMMAND_H

#include <stdint.h>

#include "core/model-t.h"
#include "core/program.h"
#include "detect/check-t.h"

#define COMMAND_OUTPUT_MAX 4096 /* bytes of plugin output kept per probe */

struct command_params {
    char **argv; /* the plugin and its arguments, NULL-terminated; required */
};

/* Judge one finished run by the Nagios plugin API. type is the fault type of
 * a CRITICAL, UNKNOWN or timed-out result (the check's `type`, software by
 * default); timeout_ms is for the words of a timeout; argv0 for those of a
 * program that could not start (a configuration fault). */
void command_observe(const struct program_result *r, enum fault_type type, uint64_t timeout_ms,
                     const char *argv0, struct observation *obs);

#endif
