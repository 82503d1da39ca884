/* recoverd: the daemon's command line. Exit codes: 0 stopped cleanly,
 * 1 runtime failure (journal, API, loop), 2 bad usage or configuration. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "config/config.h"
#include "daemon/daemon.h"
#include "daemon/ports.h"
#include "daemon/preflight.h"
#include "lib/log.h"

#define RECOVERD_VERSION "0.1.0"

/* The bundled demo: one demo service with an http and a tcp check. The
 * demo binary is found next to recoverd itself; the state_dir is the
 * default one, where recoverctl looks for the token. */
static char *main__demo_yaml(void)
{
    char exe[PATH_MAX], *yaml = NULL;
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return NULL;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0';
    if (asprintf(&yaml,
                 "api: { listen: 127.0.0.1:7411 }\n"
                 "services:\n"
                 "  web:\n"
                 "    command: [\"%s/recoverd-demo\", \"--port\", \"8080\"]\n"
                 "    checks:\n"
                 "      - http: { url: \"http://127.0.0.1:8080/health\", interval: 200ms, "
                 "timeout: 100ms, fall: 2, rise: 1 }\n"
                 "      - tcp: { address: \"127.0.0.1:8080\", interval: 1s, timeout: 500ms }\n"
                 "    restart: { max: 5, window: 60s, stable: 1s, backoff: { initial: 100ms, "
                 "max: 10s } }\n"
                 "    stop: { signal: TERM, grace: 5s }\n",
                 exe) < 0)
        return NULL;
    return yaml;
}

static void main__usage(FILE *f)
{
    fprintf(f, "usage: recoverd [-c FILE] [--check-config] [--log-level debug|info|warn|error]\n"
               "                [--containment auto|cgroup|subreaper] [--fresh]\n"
               "  -c, --config FILE   configuration (default: the bundled demo)\n"
               "      --check-config  validate the configuration and exit (0 valid, 2 invalid)\n"
               "      --log-level L   log events at L and above to stderr (default info)\n"
               "      --containment M how services' processes are held: a cgroup each, or\n"
               "                      recoverd as their subreaper (default auto: a cgroup where\n"
               "                      possible; also $RECOVERD_CONTAINMENT)\n"
               "      --fresh         stop the services a previous recoverd left running\n"
               "                      instead of adopting them\n"
               "  -V, --version       print the version\n");
}

static struct config *main__load(const char *path)
{
    struct cfg_err err;
    char msg[1024];
    struct config *cfg;
    if (path) {
        cfg = config_load(path, &daemon_registry, &err);
    } else {
        char *yaml = main__demo_yaml();
        cfg = yaml ? config_load_string("<demo>", yaml, strlen(yaml), &daemon_registry, &err)
                   : NULL;
        free(yaml);
    }
    if (!cfg) {
        fprintf(stderr, "%s\n", cfg_err_format(&err, msg, sizeof msg));
        return NULL;
    }
    /* Out of memory loses warnings, never the load. */
    (void)ports_review_host(cfg);
    for (size_t i = 0; i < cfg->n_warnings; i++)
        fprintf(stderr, "%s\n", cfg->warnings[i]);
    return cfg;
}

/* --check-config past the loader: who each service runs as, and what it
 * names, every problem on its own line. */
static int main__check(struct config *cfg, const char *path)
{
    struct preflight_report rep;
    int r = preflight_run(cfg, &rep);
    for (size_t i = 0; i < rep.n; i++)
        fprintf(stderr, "%s\n", rep.lines[i]);
    if (r < 0)
        fprintf(stderr, "recoverd: preflight: %s\n", strerror(-r));
    else if (rep.n == 0)
        printf("%s: configuration valid (%zu services)\n", path ? path : "<demo>", cfg->n_services);
    bool ok = r == 0 && rep.n == 0;
    preflight_report_free(&rep);
    config_free(cfg);
    return ok ? 0 : 2;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"check-config", no_argument, NULL, 't'},
                                         {"log-level", required_argument, NULL, 'l'},
                                         {"containment", required_argument, NULL, 'm'},
                                         {"fresh", no_argument, NULL, 'f'},
                                         {"version", no_argument, NULL, 'V'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *path = NULL, *mode = getenv("RECOVERD_CONTAINMENT");
    int check_only = 0, o, lvl, containment;
    bool fresh = false;
    while ((o = getopt_long(argc, argv, "c:thV", opts, NULL)) != -1) {
        switch (o) {
        case 'c': path = optarg; break;
        case 't': check_only = 1; break;
        case 'l':
            if ((lvl = log_level_parse(optarg)) < 0) {
                fprintf(stderr,
                        "recoverd: unknown log level '%s' (expected debug, info, warn "
                        "or error)\n",
                        optarg);
                return 2;
            }
            log_set_level(lvl);
            break;
        case 'm': mode = optarg; break;
        case 'f': fresh = true; break;
        case 'V': printf("recoverd %s\n", RECOVERD_VERSION); return 0;
        case 'h': main__usage(stdout); return 0;
        default: main__usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "recoverd: unexpected argument '%s'\n", argv[optind]);
        main__usage(stderr);
        return 2;
    }
    if ((containment = containment_mode_parse(mode && *mode ? mode : "auto")) < 0) {
        fprintf(stderr, "recoverd: unknown containment '%s' (expected auto, cgroup or subreaper)\n",
                mode);
        return 2;
    }
    struct config *cfg = main__load(path);
    if (!cfg)
        return 2;
    if (check_only)
        return main__check(cfg, path);
    srandom((unsigned)time(NULL) ^ (unsigned)getpid()); /* backoff jitter only */
    /* One malloc arena, before any thread: the journal reader and libuv's
     * pool allocate little, and what they free the loop reuses instead of
     * each thread keeping an arena of its own resident. */
    mallopt(M_ARENA_MAX, 1);
    uv_loop_t loop = {0}; /* data NULL: lib/wheel's (uv_loop_init keeps it) */
    uv_loop_init(&loop);
    struct daemon d;
    struct daemon_opts run = {(enum containment_mode)containment, fresh};
    int r = daemon_start(&d, &loop, cfg, path, &run);
    if (r < 0) {
        daemon_stop(&d);
        uv_run(&loop, UV_RUN_DEFAULT);
        daemon_free(&d);
        uv_loop_close(&loop);
        return 1;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    bool failed = d.failed; /* the start failed in the loop's first turns */
    daemon_free(&d);
    if (uv_loop_close(&loop) != 0)
        log_event(LOG_WARN, NULL, "loop-not-empty", NULL);
    return failed ? 1 : 0;
}
