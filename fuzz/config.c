/* libFuzzer target: the configuration loader (config/config.c and its
 * mapper), from a buffer, with this build's check kinds and strategies
 * (the daemon's registry). Properties: it accepts (and a loaded service
 * equals itself, the comparison a reload relies on) or refuses with a
 * message and a position; it writes nothing to stderr, which is the
 * daemon's log (libfyaml has printed there on its own); never crashes,
 * leaks or hangs. */
#include <sanitizer/common_interface_defs.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "daemon/daemon.h"
#include "fuzz.h"

static int fuzz_stderr = -1; /* the real stderr, while fd 2 is caught */
static FILE *fuzz_caught;    /* what fd 2 receives during one load */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_stderr = dup(STDERR_FILENO);
    fuzz_caught = tmpfile();
    FUZZ_CHECK(fuzz_stderr >= 0 && fuzz_caught);
    /* A sanitizer report in the middle of a load still reaches the real stderr. */
    __sanitizer_set_report_fd((void *)(intptr_t)fuzz_stderr);
    return 0;
}

/* Load data with fd 2 caught; returns the bytes written there. */
static struct config *load_caught(const uint8_t *data, size_t size, struct cfg_err *err,
                                  long *printed)
{
    fflush(stderr);
    FUZZ_CHECK(ftruncate(fileno(fuzz_caught), 0) == 0);
    dup2(fileno(fuzz_caught), STDERR_FILENO);
    struct config *c = config_load_string("fuzz.yaml", (const char *)data, size, &daemon_registry,
                                          err);
    fflush(stderr);
    dup2(fuzz_stderr, STDERR_FILENO);
    *printed = lseek(fileno(fuzz_caught), 0, SEEK_END);
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cfg_err err;
    long printed = 0;
    struct config *c = load_caught(data, size, &err, &printed);
    if (printed > 0) {
        char text[512] = "";
        ssize_t n = pread(fileno(fuzz_caught), text, sizeof text - 1, 0);
        fprintf(stderr, "the loader wrote %ld bytes to stderr:\n%s\n", printed, n > 0 ? text : "");
    }
    FUZZ_CHECK(printed == 0);
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
