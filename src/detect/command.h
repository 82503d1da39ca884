/* Command checks: any Nagios-compatible check program (Debian's
 * monitoring-plugins: check_disk, check_http, check_pgsql...) run per probe
 * as an argv array, no shell, killed with its whole process group after the
 * check's timeout. Exit 0 OK and 1 WARNING pass; 2 CRITICAL, 3 UNKNOWN (or
 * anything else), a timeout or a program that cannot start fail. The ops
 * table is command_detector (detect/kinds.h). */
#ifndef RECOVERD_DETECT_COMMAND_H
#define RECOVERD_DETECT_COMMAND_H

#define COMMAND_OUTPUT_MAX 4096 /* bytes of plugin output kept per probe */

struct command_params {
    char **argv; /* the plugin and its arguments, NULL-terminated; required */
};

#endif
