/* Measured on this kernel (6.18) with a prober connecting to 200 loopback
 * listeners while a "service" kept exiting and rebinding 0.0.0.0:P for 200
 * ports P of the ephemeral range (bench/ports/ports.py): with
 * kernel-chosen source ports 94 of the 200 ports were found taken at some
 * rebind (EADDRINUSE, SO_REUSEADDR or not; live connections and TIME_WAIT
 * alike); with the prober's sockets given the longest run free of those
 * ports none was taken by the prober (a few by other programs of this
 * shared host). IP_BIND_ADDRESS_NO_PORT alone does
 * not help (connect still picks from the whole range), nor does a second
 * source address such as 127.0.0.2 (a service binding 0.0.0.0:P conflicts
 * with 127.0.0.2:P). Binding explicit ports over the whole range was worse:
 * every port recoverd touched stays bound in TIME_WAIT, so everyone else's
 * connect() is pushed into the few ports left, the services' ones. */
#include "lib/srcport.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef IP_LOCAL_PORT_RANGE
#define IP_LOCAL_PORT_RANGE 51 /* linux/in.h, Linux >= 6.3 */
#endif

static struct {
    bool on;           /* a run applies */
    unsigned lo, hi;   /* the run */
    unsigned next;     /* the explicit-bind fallback's cursor */
    bool no_range_opt; /* the kernel lacks IP_LOCAL_PORT_RANGE */
} srcport__g;

static int srcport__number(const char **p, unsigned *out)
{
    char *end;
    unsigned long v;
    while (**p == ' ' || **p == '\t')
        (*p)++;
    if (**p < '0' || **p > '9')
        return -EINVAL;
    errno = 0;
    v = strtoul(*p, &end, 10);
    if (errno || v > 65535)
        return -EINVAL;
    *out = (unsigned)v;
    *p = end;
    return 0;
}

int srcport_sys_parse(const char *range, const char *reserved, struct srcport_sys *out)
{
    const char *p = range;
    unsigned a, b;
    memset(out, 0, sizeof *out);
    if (srcport__number(&p, &out->lo) < 0 || srcport__number(&p, &out->hi) < 0 || out->lo > out->hi)
        return -EINVAL;
    for (p = reserved; *p && *p != '\n';) {
        if (srcport__number(&p, &a) < 0)
            return -EINVAL;
        b = a;
        if (*p == '-' && (p++, srcport__number(&p, &b) < 0 || b < a))
            return -EINVAL;
        for (unsigned port = a; port <= b; port++)
            out->reserved[port / 8] |= (uint8_t)(1u << (port % 8));
        if (*p == ',')
            p++;
        else if (*p && *p != '\n')
            return -EINVAL;
    }
    return 0;
}

static int srcport__slurp(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;
    if (fd < 0)
        return -errno;
    n = read(fd, buf, len - 1);
    int e = errno;
    close(fd);
    if (n < 0)
        return -e;
    buf[n] = '\0';
    return 0;
}

int srcport_sys_read(struct srcport_sys *out)
{
    char range[64], reserved[16384];
    int r;
    range[0] = reserved[0] = '\0';
    if ((r = srcport__slurp("/proc/sys/net/ipv4/ip_local_port_range", range, sizeof range)) < 0)
        return r;
    /* Absent in some containers: nothing reserved. */
    if (srcport__slurp("/proc/sys/net/ipv4/ip_local_reserved_ports", reserved, sizeof reserved) < 0)
        reserved[0] = '\0';
    return srcport_sys_parse(range, reserved, out);
}

bool srcport_exposed(const struct srcport_sys *s, unsigned port)
{
    return port >= s->lo && port <= s->hi && port < 65536 &&
           !(s->reserved[port / 8] & (1u << (port % 8)));
}

static int srcport__cmp(const void *a, const void *b)
{
    return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

bool srcport_run_for(const struct srcport_sys *s, const uint16_t *ports, size_t n, unsigned *lo,
                     unsigned *hi)
{
    uint16_t *v = n ? malloc(n * sizeof *v) : NULL;
    size_t m = 0;
    unsigned from = s->lo, best_lo = 1, best_hi = 0;
    for (size_t i = 0; v && i < n; i++)
        if (srcport_exposed(s, ports[i]))
            v[m++] = ports[i];
    if (m == 0) {
        free(v);
        return false;
    }
    qsort(v, m, sizeof *v, srcport__cmp);
    for (size_t i = 0; i <= m; i++) {
        unsigned to = i < m ? (unsigned)v[i] : s->hi + 1; /* the run is from..to-1 */
        if (to > from && to - from > best_hi + 1 - best_lo)
            best_lo = from, best_hi = to - 1;
        if (i < m && v[i] + 1u > from)
            from = v[i] + 1u;
    }
    free(v);
    *lo = best_lo;
    *hi = best_hi;
    return best_hi >= best_lo;
}

void srcport_use(bool on, unsigned lo, unsigned hi)
{
    srcport__g.on = on && lo <= hi;
    srcport__g.lo = lo;
    srcport__g.hi = hi;
    if (srcport__g.next < lo || srcport__g.next > hi)
        srcport__g.next = lo;
}

/* Kernels before 6.3: an explicit port of the run, SO_REUSEADDR so that our
 * own TIME_WAITs do not block the next bind, retried on EADDRINUSE. */
static int srcport__bind(int fd, int family)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int one = 1;
    unsigned span = srcport__g.hi - srcport__g.lo + 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
        return -errno;
    memset(&ss, 0, sizeof ss);
    if (family == AF_INET6) {
        ((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
        len = sizeof(struct sockaddr_in6);
    } else {
        ((struct sockaddr_in *)&ss)->sin_family = AF_INET;
        len = sizeof(struct sockaddr_in);
    }
    for (unsigned i = 0; i < span && i < 64; i++) {
        unsigned port = srcport__g.next;
        srcport__g.next = port >= srcport__g.hi ? srcport__g.lo : port + 1;
        if (family == AF_INET6)
            ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
        else
            ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
        if (bind(fd, (struct sockaddr *)&ss, len) == 0)
            return 0;
        if (errno != EADDRINUSE)
            return -errno;
    }
    return -EADDRNOTAVAIL;
}

int srcport_apply(int fd, int family)
{
    uint32_t range;
    if (!srcport__g.on)
        return 0;
    if (!srcport__g.no_range_opt) {
        range = (uint32_t)srcport__g.hi << 16 | srcport__g.lo;
        if (setsockopt(fd, IPPROTO_IP, IP_LOCAL_PORT_RANGE, &range, sizeof range) == 0)
            return 0;
        if (errno != ENOPROTOOPT)
            return -errno;
        srcport__g.no_range_opt = true;
    }
    return srcport__bind(fd, family);
}

int srcport_uv(uv_tcp_t *t, int family)
{
    uv_os_fd_t fd;
    int r;
    if (!srcport__g.on)
        return 0;
    if ((r = uv_fileno((uv_handle_t *)t, &fd)) < 0)
        return r;
    return srcport_apply(fd, family);
}
