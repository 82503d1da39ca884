/* The local ports recoverd's own outgoing connections may take.
 *
 * connect() without a bound port takes its source port from the kernel's
 * ephemeral range (net.ipv4.ip_local_port_range, minus
 * ip_local_reserved_ports). A service whose port lies in that range and is
 * between two runs (it exited, it is being restarted) can find the port
 * held by someone's outgoing connection, or by its TIME_WAIT for a minute:
 * its bind() then fails with EADDRINUSE, with SO_REUSEADDR or without,
 * whatever address it binds. recoverd cannot keep other programs off such a
 * port (that is what ip_local_reserved_ports is for: the warning at load
 * says so), but it keeps its own connections off every port its checks
 * name: srcport_apply gives each socket the longest run of the ephemeral
 * range that holds none of them (IP_LOCAL_PORT_RANGE, Linux >= 6.3, so the
 * kernel still shares ports between destinations and reuses TIME_WAIT as
 * it would), or on older kernels binds an explicit port of that run. */
#ifndef RECOVERD_LIB_SRCPORT_H
#define RECOVERD_LIB_SRCPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* The kernel's ephemeral port choice. */
struct srcport_sys {
    unsigned lo, hi;             /* ip_local_port_range, inclusive */
    uint8_t reserved[65536 / 8]; /* ip_local_reserved_ports, one bit per port */
};

/* Parse the two files' text ("32768\t60999\n"; "8080,9000-9010\n" or "").
 * 0, or -EINVAL. */
int srcport_sys_parse(const char *range, const char *reserved, struct srcport_sys *out);

/* Read them from /proc/sys/net/ipv4. 0 or -errno. Blocks (a file read):
 * call it off the loop or before it runs. */
int srcport_sys_read(struct srcport_sys *out);

/* Whether connect() may take port as a source port: inside the range and
 * not reserved. */
bool srcport_exposed(const struct srcport_sys *s, unsigned port);

/* The longest run *lo..*hi of the range holding none of ports[0..n)
 * that srcport_exposed says connect() may take; false when there is no
 * such port (or no memory: then the kernel's choice, as before). */
bool srcport_run_for(const struct srcport_sys *s, const uint16_t *ports, size_t n, unsigned *lo,
                     unsigned *hi);

/* From now on srcport_apply gives sockets the run lo..hi (on false: no
 * restriction). Loop thread only, like srcport_apply. */
void srcport_use(bool on, unsigned lo, unsigned hi);

/* Before connect() on a fresh TCP socket fd of family (AF_INET/AF_INET6):
 * keep its source port off the avoided ports. 0 or -errno (then the caller
 * fails the connection rather than risk the port). */
int srcport_apply(int fd, int family);

/* srcport_apply on a libuv TCP handle made with uv_tcp_init_ex(family). */
int srcport_uv(uv_tcp_t *t, int family);

#endif
