/* libFuzzer target: the url parser (lib/url.c) shared by http checks and
 * webhooks, with the Host header and the redacted form made from it.
 * Properties: an accepted url's path is the tail of the string, its host
 * holds none of the delimiters, and its redacted form fits
 * URL_REDACTED_MAX and shows neither path nor query. */
#include <string.h>

#include "fuzz.h"
#include "lib/url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1); /* exactly the string: a read past it is a report */
    memcpy(s, data, size);
    s[size] = '\0';
    struct url u;
    char why[128], host[300], red[URL_REDACTED_MAX];
    url_redact(s, red, sizeof red); /* any string, parsed or not */
    url_redact(s, red, 8);          /* too short: cut, never overrun */
    if (url_parse(s, &u, why, sizeof why) == 0) {
        size_t len = strlen(s);
        FUZZ_CHECK(u.path >= s && u.path + u.path_len == s + len);
        FUZZ_CHECK(u.path_len == 0 || u.path[0] == '/' || u.path[0] == '?');
        FUZZ_CHECK(strlen(u.host) < sizeof u.host && !strpbrk(u.host, "/?#@ "));
        FUZZ_CHECK(u.port >= 1 && u.port <= 65535);
        url_host_header(&u, host, sizeof host);
        FUZZ_CHECK(strlen(host) < sizeof host - 1); /* never cut */
        url_redact(s, red, sizeof red);
        FUZZ_CHECK(strcmp(red, "(url too long)") != 0 && strcmp(red, "(not a url)") != 0);
        const char *rest = strstr(red, "://");
        FUZZ_CHECK(rest && !strpbrk(rest + 3, "/?#@"));
    } else {
        FUZZ_CHECK(why[0] != '\0');
    }
    free(s);
    return 0;
}
