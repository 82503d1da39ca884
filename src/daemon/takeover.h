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

/* Scan the host for what a predecessor left (in libuv's pool: it reads
 * every process's /proc), then, on the loop, adopt what can be and start
 * stopping the rest (sink hears each one and then done, from the loop,
 * never before this returns). The services must exist, not be started,
 * and nothing may spawn until done. 0 or -ENOMEM; a failure after the
 * scan logs, marks d failed and stops it, then calls done. */
int takeover_begin(struct daemon *d, bool fresh, const struct leftover_sink *sink);

#endif
