/* TCP checks: a non-blocking connect per probe; connected means ok. The ops
 * table is tcp_detector (detect/kinds.h). */
#ifndef RECOVERD_DETECT_TCP_H
#define RECOVERD_DETECT_TCP_H

#include <sys/socket.h>

struct tcp_params {
    struct sockaddr_storage address; /* "ip:port"; required */
};

#endif
