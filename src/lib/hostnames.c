/* The API's Host allow-list: matching and the syntax of an entry. */
#include "lib/hostnames.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HOSTNAMES__NAME_MAX 253 /* characters of a DNS name */

char *const hostnames_default[] = {"127.0.0.1", "localhost", "[::1]", NULL};

/* Bytes of the name in s[0..n): up to the port's colon, or the "]" of an
 * IPv6 literal included. */
static size_t hostnames__name_len(const char *s, size_t n)
{
    const char *end = s[0] == '[' ? memchr(s, ']', n) : NULL;
    if (end)
        return (size_t)(end - s) + 1;
    end = memchr(s, ':', n);
    return end ? (size_t)(end - s) : n;
}

bool hostnames_allow(char *const *names, unsigned port, const char *host, size_t len)
{
    char own[8];
    int own_len = snprintf(own, sizeof own, ":%u", port);
    size_t name = len ? hostnames__name_len(host, len) : 0;
    const char *tail = host + name; /* "" or ":port" */
    size_t tail_len = len - name;
    if (name == 0)
        return false;
    for (; names && *names; names++) {
        size_t n = strlen(*names), en = hostnames__name_len(*names, n);
        if (en != name || strncasecmp(*names, host, name) != 0)
            continue;
        if (en < n ? (n - en == tail_len && memcmp(*names + en, tail, tail_len) == 0)
                   : (tail_len == 0 ||
                      (tail_len == (size_t)own_len && memcmp(tail, own, tail_len) == 0)))
            return true;
    }
    return false;
}

/* Letters, digits, dots and hyphens, not starting with a dot or hyphen:
 * DNS names and IPv4 addresses alike. */
static bool hostnames__dns_valid(const char *s, size_t n)
{
    if (n == 0 || n > HOSTNAMES__NAME_MAX || s[0] == '.' || s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-'))
            return false;
    }
    return true;
}

static bool hostnames__ipv6_valid(const char *s, size_t n)
{
    char text[INET6_ADDRSTRLEN];
    unsigned char addr[16];
    if (n < 3 || n - 2 >= sizeof text || s[n - 1] != ']')
        return false;
    memcpy(text, s + 1, n - 2);
    text[n - 2] = '\0';
    return inet_pton(AF_INET6, text, addr) == 1;
}

bool hostnames_entry_valid(const char *s)
{
    size_t n = strlen(s), name = n ? hostnames__name_len(s, n) : 0;
    if (!(s[0] == '[' ? hostnames__ipv6_valid(s, name) : hostnames__dns_valid(s, name)))
        return false;
    if (name == n)
        return true;
    const char *port = s + name + 1;
    size_t digits = strspn(port, "0123456789");
    if (s[name] != ':' || digits == 0 || digits > 5 || port[digits] || port[0] == '0')
        return false;
    return strtoul(port, NULL, 10) <= 65535;
}
