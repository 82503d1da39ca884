/* libFuzzer target: the configuration loader (config/config.c and its
 * mapper), from a buffer, with this build's check kinds and strategies
 * (the daemon's registry). Properties: it accepts (and a loaded service
 * equals itself, the comparison a reload relies on) or refuses with a
 * message and a position; never crashes, leaks or hangs. */
#include <string.h>

#include "config/config.h"
#include "daemon/daemon.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cfg_err err;
    struct config *c = config_load_string("fuzz.yaml", (const char *)data, size, &daemon_registry,
                                          &err);
    if (!c) {
        FUZZ_CHECK(err.msg[0] != '\0');
        return 0;
    }
    for (size_t i = 0; i < c->n_services; i++) {
        const struct service_cfg *s = &c->services[i];
        FUZZ_CHECK(config_service_equal(s, s) && config_process_equal(s, s));
        FUZZ_CHECK(config_service(c, s->name) == s);
    }
    config_free(c);
    return 0;
}
