/* http:// and https:// URLs: parsing and the redacted form for logs. */
#include "lib/url.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static int url__bad(char *why, size_t len, const char *msg)
{
    snprintf(why, len, "%s", msg);
    return -EINVAL;
}

/* The authority's host: [IPv6], an IPv4 literal, localhost or a DNS name. */
static int url__host(struct url *u, const char *s, size_t n, char *why, size_t len)
{
    if (n == 0)
        return url__bad(why, len, "url must be http://HOST... or https://HOST...");
    if (n >= sizeof u->host)
        return url__bad(why, len, "url host is longer than 255 bytes");
    memcpy(u->host, s, n);
    u->host[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_", s[i]))
            return url__bad(why, len, "url host must be a name, an IPv4 address or [IPv6]");
    struct sockaddr_in *a4 = (struct sockaddr_in *)&u->addr;
    if (strcasecmp(u->host, "localhost") == 0) {
        a4->sin_family = AF_INET;
        a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        u->numeric = true;
    } else if (inet_pton(AF_INET, u->host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        u->numeric = true;
    }
    return 0;
}

static int url__port(struct url *u, const char *s, size_t n, char *why, size_t len)
{
    unsigned v = 0;
    if (n == 0 || n > 5)
        goto bad;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            goto bad;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v < 1 || v > 65535)
        goto bad;
    u->port = v;
    u->port_given = true;
    return 0;
bad:
    return url__bad(why, len, "url port must be 1 to 65535");
}

/* scheme://host[:port][/path][?query], nothing more: userinfo and fragments
 * are refused rather than silently dropped. */
int url_parse(const char *url, struct url *u, char *why, size_t len)
{
    const char *auth, *end, *hend, *p;
    memset(u, 0, sizeof *u);
    if (url && strncasecmp(url, "http://", 7) == 0)
        auth = url + 7;
    else if (url && strncasecmp(url, "https://", 8) == 0)
        auth = url + 8, u->tls = true;
    else
        return url__bad(why, len, "url must be http://HOST... or https://HOST...");
    for (p = url; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return url__bad(why, len, "url must not contain spaces or control characters");
    if (strchr(url, '#'))
        return url__bad(why, len, "url must not have a #fragment");
    end = auth + strcspn(auth, "/?");
    if (memchr(auth, '@', (size_t)(end - auth)))
        return url__bad(why, len, "url must not contain user:password@");
    u->port = u->tls ? 443 : 80;
    if (*auth == '[') {
        hend = memchr(auth, ']', (size_t)(end - auth));
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&u->addr;
        size_t n = hend ? (size_t)(hend - auth - 1) : 0;
        if (!hend || n >= sizeof u->host)
            return url__bad(why, len, "url IPv6 host must be [address]");
        memcpy(u->host, auth + 1, n);
        u->host[n] = '\0';
        if (inet_pton(AF_INET6, u->host, &a6->sin6_addr) != 1)
            return url__bad(why, len, "url IPv6 host must be [address]");
        a6->sin6_family = AF_INET6;
        u->ipv6 = u->numeric = true;
        hend++;
        if (hend < end && *hend != ':')
            return url__bad(why, len, "url IPv6 host must be [address]");
    } else {
        hend = memchr(auth, ':', (size_t)(end - auth));
        if (!hend)
            hend = end;
        if (url__host(u, auth, (size_t)(hend - auth), why, len) < 0)
            return -EINVAL;
    }
    if (hend < end && url__port(u, hend + 1, (size_t)(end - hend - 1), why, len) < 0)
        return -EINVAL;
    /* Same offset for both families: sin_port and sin6_port share it. */
    ((struct sockaddr_in *)&u->addr)->sin_port = htons((uint16_t)u->port);
    u->path = end;
    u->path_len = strlen(end);
    return 0;
}

void url_host_header(const struct url *u, char *buf, size_t len)
{
    snprintf(buf, len, u->ipv6 ? "[%s]" : "%s", u->host);
    if (u->port_given && u->port != (u->tls ? 443u : 80u))
        snprintf(buf + strlen(buf), len - strlen(buf), ":%u", u->port);
}

void url_redact(const char *url, char *buf, size_t len)
{
    const char *sep = url ? strstr(url, "://") : NULL, *auth, *end, *at;
    if (!sep || sep == url || sep - url > 8) {
        snprintf(buf, len, "(not a url)");
        return;
    }
    auth = sep + 3;
    end = auth + strcspn(auth, "/?#");
    /* userinfo ends at the authority's last '@' */
    for (at = auth; (at = memchr(at, '@', (size_t)(end - at))); auth = ++at)
        ;
    int n = snprintf(buf, len, "%.*s://%.*s", (int)(sep - url), url, (int)(end - auth), auth);
    if (n < 0 || (size_t)n >= len)
        snprintf(buf, len, "(url too long)");
}
