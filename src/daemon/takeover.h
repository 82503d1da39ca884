/* At start, before any spawn: the processes a previous recoverd of this
 * state_dir left running (it crashed, was killed, or was upgraded). A
 * service's recorded process is adopted (watched by pidfd, its output read
 * again from its FIFO, its checks verifying it) when its configuration
 * would start the same process; everything else of the predecessor's is
 * stopped (signal, grace, SIGKILL) before the services start, so no service
 * ever runs twice. --fresh stops everything, as a first start would. */
#ifndef RECOVERD_DAEMON_TAKEOVER_H
#define RECOVERD_DAEMON_TAKEOVER_H

#include <stdbool.h>

struct daemon;
struct leftover_sink;

/* Adopt what can be, and start stopping the rest (sink hears each one and
 * then done, from the loop). The services must exist, not be started. 0
 * or -ENOMEM. */
int takeover_begin(struct daemon *d, bool fresh, const struct leftover_sink *sink);

#endif
