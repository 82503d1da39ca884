/* The operator's controls, by name, for the API: hold (maintenance),
 * release, restart, and running a chosen strategy for an open fault. */
#ifndef RECOVERD_DAEMON_CONTROL_H
#define RECOVERD_DAEMON_CONTROL_H

#include <stddef.h>
#include <stdint.h>

struct daemon;

enum control_op { CONTROL_HOLD, CONTROL_RELEASE, CONTROL_RESTART };

/* 0, or -ENOENT (no such service), -EBUSY, -EINVAL with words in err. */
int control_service(struct daemon *d, const char *name, enum control_op op, char *err,
                    size_t errlen);
/* Run strategy (by name) for open fault id; service receives the fault's
 * service name. 0 or -ENOENT / -EBUSY / -EINVAL with words in err. */
int control_recover(struct daemon *d, int64_t fault_id, const char *strategy, char *service,
                    size_t service_len, char *err, size_t errlen);

#endif
