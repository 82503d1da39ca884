/* Why here and not in config/: the loader stays a pure function of the
 * file (its tests do not depend on the host's sysctls), and the target of
 * a check is known only to its kind (a URL, an address), which lives in
 * detect/, above config/. The daemon reads /proc once per load, before the
 * loop runs or in the thread pool with the rest of a reload's preflight. */
#include "daemon/ports.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config-t.h"
#include "detect/detector.h"

static bool ports__same(const struct sockaddr *a, const void *ip, int family)
{
    if (a->sa_family != family)
        return false;
    if (family == AF_INET)
        return memcmp(&((const struct sockaddr_in *)a)->sin_addr, ip, sizeof(struct in_addr)) == 0;
    return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr, ip, sizeof(struct in6_addr)) == 0;
}

/* Loopback, the wildcard, or an address of one of this host's interfaces:
 * a service listening there shares the host's port space with recoverd.
 * The interfaces are asked for only when a target needs them (*ifs, once:
 * most configurations name loopback only, and a reload stays cheap). */
static bool ports__local(const char *host, struct ifaddrs **ifs, bool *asked)
{
    struct in_addr v4;
    struct in6_addr v6;
    if (strcmp(host, "localhost") == 0)
        return true;
    bool is4 = inet_pton(AF_INET, host, &v4) == 1;
    bool is6 = !is4 && inet_pton(AF_INET6, host, &v6) == 1;
    if (is4 && (ntohl(v4.s_addr) >> 24 == 127 || v4.s_addr == 0))
        return true;
    if (is6 && (IN6_IS_ADDR_LOOPBACK(&v6) || IN6_IS_ADDR_UNSPECIFIED(&v6)))
        return true;
    if (!is4 && !is6)
        return false; /* a name other than localhost: not resolved at load */
    if (!*asked && (*asked = true, getifaddrs(ifs) < 0))
        *ifs = NULL;
    if (is4) {
        for (const struct ifaddrs *i = *ifs; i; i = i->ifa_next)
            if (i->ifa_addr && ports__same(i->ifa_addr, &v4, AF_INET))
                return true;
        return false;
    }
    for (const struct ifaddrs *i = *ifs; i; i = i->ifa_next)
        if (i->ifa_addr && ports__same(i->ifa_addr, &v6, AF_INET6))
            return true;
    return false;
}

static int ports__warn(struct config *c, const struct service_cfg *s, const struct check_cfg *k,
                       unsigned port, const struct srcport_sys *sys)
{
    char *line = NULL, **v = realloc(c->warnings, (c->n_warnings + 2) * sizeof *v);
    if (!v)
        return -ENOMEM;
    c->warnings = v;
    if (asprintf(&line,
                 "%s:%d:%d: warning: service '%s' check '%s' targets local port %u, inside the "
                 "kernel's ephemeral range %u-%u: any program's outgoing connection may hold it "
                 "while the service restarts (recoverd keeps its own off it), and the service's "
                 "bind then fails with EADDRINUSE; pick a port below %u, or reserve it with "
                 "sysctl net.ipv4.ip_local_reserved_ports=%u",
                 c->path, k->line, k->col, s->name, k->name, port, sys->lo, sys->hi, sys->lo,
                 port) < 0)
        return -ENOMEM;
    c->warnings[c->n_warnings++] = line;
    c->warnings[c->n_warnings] = NULL;
    return 0;
}

int ports_review(struct config *c, const struct srcport_sys *sys)
{
    struct ifaddrs *ifs = NULL;
    bool asked = false;
    uint16_t *ports = NULL;
    size_t n = 0, cap = 0;
    int r = 0;
    for (size_t i = 0; i < c->n_services && r == 0; i++) {
        const struct service_cfg *s = &c->services[i];
        for (size_t j = 0; j < s->n_checks && r == 0; j++) {
            const struct check_cfg *k = &s->checks[j];
            const struct detector_ops *ops = k->ops;
            char host[256];
            unsigned port;
            if (!ops || !ops->target || ops->target(k->params, host, sizeof host, &port) != 1 ||
                !ports__local(host, &ifs, &asked) || !srcport_exposed(sys, port))
                continue;
            if (n == cap) {
                uint16_t *v = realloc(ports, (cap = cap ? 2 * cap : 16) * sizeof *v);
                if (!v) {
                    r = -ENOMEM;
                    break;
                }
                ports = v;
            }
            ports[n++] = (uint16_t)port;
            r = ports__warn(c, s, k, port, sys);
        }
    }
    if (ifs)
        freeifaddrs(ifs);
    c->src_ports.on = r == 0 && srcport_run_for(sys, ports, n, &c->src_ports.lo, &c->src_ports.hi);
    free(ports);
    return r;
}

int ports_review_host(struct config *c)
{
    struct srcport_sys sys; /* 8 KiB: on the stack, a reload allocates nothing here */
    return srcport_sys_read(&sys) < 0 ? 0 : ports_review(c, &sys);
}
