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
 * a service listening there shares the host's port space with recoverd. */
static bool ports__local(const char *host, const struct ifaddrs *ifs)
{
    struct in_addr v4;
    struct in6_addr v6;
    if (strcmp(host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, host, &v4) == 1) {
        uint32_t h = ntohl(v4.s_addr);
        if (h >> 24 == 127 || h == 0)
            return true;
        for (const struct ifaddrs *i = ifs; i; i = i->ifa_next)
            if (i->ifa_addr && ports__same(i->ifa_addr, &v4, AF_INET))
                return true;
        return false;
    }
    if (inet_pton(AF_INET6, host, &v6) == 1) {
        if (IN6_IS_ADDR_LOOPBACK(&v6) || IN6_IS_ADDR_UNSPECIFIED(&v6))
            return true;
        for (const struct ifaddrs *i = ifs; i; i = i->ifa_next)
            if (i->ifa_addr && ports__same(i->ifa_addr, &v6, AF_INET6))
                return true;
    }
    return false; /* a name other than localhost: not resolved at load */
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
    uint16_t *ports = NULL;
    size_t n = 0, cap = 0;
    int r = 0;
    if (getifaddrs(&ifs) < 0)
        ifs = NULL; /* loopback and the wildcard are still known */
    for (size_t i = 0; i < c->n_services && r == 0; i++) {
        const struct service_cfg *s = &c->services[i];
        for (size_t j = 0; j < s->n_checks && r == 0; j++) {
            const struct check_cfg *k = &s->checks[j];
            const struct detector_ops *ops = k->ops;
            char host[256];
            unsigned port;
            if (!ops || !ops->target || ops->target(k->params, host, sizeof host, &port) != 1 ||
                !ports__local(host, ifs) || !srcport_exposed(sys, port))
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
    struct srcport_sys *sys = malloc(sizeof *sys);
    int r;
    if (!sys)
        return -ENOMEM;
    r = srcport_sys_read(sys) < 0 ? 0 : ports_review(c, sys);
    free(sys);
    return r;
}
