/* The review of ports at load: a port a service listens on (the local
 * target of one of its checks) that the kernel may hand to outgoing
 * connections is a warning, and recoverd's own connections are kept off
 * every such port (lib/srcport.h). */
#ifndef RECOVERD_DAEMON_PORTS_H
#define RECOVERD_DAEMON_PORTS_H

#include "lib/srcport.h"

struct config;

/* Against the kernel's choice sys: append a warning to c->warnings for
 * each check whose target is local and exposed, and set c->src_ports.
 * 0 or -ENOMEM. */
int ports_review(struct config *c, const struct srcport_sys *sys);

/* ports_review against this host's /proc/sys/net/ipv4. It blocks (a file
 * read, getifaddrs): before the loop runs or in the thread pool. Where
 * /proc cannot be read there is nothing to review: 0. */
int ports_review_host(struct config *c);

#endif
