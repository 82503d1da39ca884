#include "lib/lookup.h"

#include <stdlib.h>
#include <string.h>

struct lookup {
    uv_getaddrinfo_t req; /* data = this; freed in its callback */
    lookup_cb cb;         /* NULL once cancelled */
    void *arg;
    char host[];
};

static void lookup__done(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct lookup *l = req->data;
    int st = status < 0 ? status : res ? 0 : UV_EAI_NONAME;
    if (l->cb)
        l->cb(l->arg, st, st < 0 ? NULL : res, l->host);
    uv_freeaddrinfo(res); /* NULL-safe */
    free(l);
}

int lookup_start(uv_loop_t *loop, const char *host, lookup_cb cb, void *arg, struct lookup **out)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    size_t n = strlen(host) + 1;
    struct lookup *l = malloc(sizeof *l + n);
    if (!l)
        return UV_ENOMEM;
    l->req.data = l;
    l->cb = cb;
    l->arg = arg;
    memcpy(l->host, host, n);
    int r = uv_getaddrinfo(loop, &l->req, lookup__done, l->host, NULL, &hints);
    if (r < 0) {
        free(l);
        return r;
    }
    *out = l;
    return 0;
}

void lookup_cancel(struct lookup *l)
{
    if (!l)
        return;
    l->cb = NULL;
    uv_cancel((uv_req_t *)&l->req); /* fails if already running: lookup__done frees */
}
