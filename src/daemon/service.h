/* A service's life inside the daemon: creation from its config (every
 * layer's part, wired together), start, stop, reload, and release once
 * every loop handle it owns is closed. */
#ifndef RECOVERD_DAEMON_SERVICE_H
#define RECOVERD_DAEMON_SERVICE_H

#include <stdint.h>

#include "daemon/service-t.h"

struct jsonw;

/* A new service for cfg (borrowed; must outlive it or be rebound). Its
 * output log is opened under state_dir/logs. NULL on failure (logged). */
struct service *service_new(struct daemon *d, const struct service_cfg *cfg);
/* Off the loop, before service_new: make the files its output opens
 * (output_prepare) under state_dir/logs. Failures are left for
 * service_new to meet and log. */
void service_prepare_files(const char *state_dir, const struct service_cfg *cfg);
/* Spawn the process (if any) and begin checking; waits for dependencies. */
void service_start(struct service *s);
/* Stop the process (if any) for good: shutdown or removal by a reload. */
void service_stop(struct service *s, const char *why);
/* Stop supervising s and leave its process running, for the next recoverd
 * to adopt; the process is down as far as s knows. */
void service_detach(struct service *s);
/* Point s at an identical cfg from a newer config. */
void service_rebind(struct service *s, const struct service_cfg *cfg);
/* Apply cfg (same process: config_process_equal) to s without touching
 * its process: new checks (their first probe first_ms from now), policies
 * and recovery. -EBUSY with *why when s is starting, recovering or has a
 * fault open; -ENOMEM. Either way s is unchanged on failure. */
int service_reconfigure(struct service *s, const struct service_cfg *cfg, uint64_t first_ms,
                        const char **why);
/* Close every handle; a retired s leaves d->services at once
 * (daemon_service_closing) and daemon_service_gone() is called once all
 * are closed. Call when the process is down. */
void service_close(struct service *s);
/* Free the memory; every handle must be closed already. NULL-safe. */
void service_free(struct service *s);
/* Count s in d->n_starting or not, as it is now: live and not started
 * yet, waiting for its dependencies, or its first spawn not reported yet
 * (a spawner thread has it: no pid to show). Called after each change of
 * started, start_waiting and retired, and once it is in d->services. */
void service_count_starting(struct service *s);
/* Its loop handles still open. */
int service_handles_open(const struct service *s);
/* The API's view of s, a JSON object, into w; now_us: clock_mono_us() of
 * the request (its uptime is counted to it). */
void service_view(const struct service *s, struct jsonw *w, uint64_t now_us);
/* Start loading what service_view(s) reads, in steps 0 to
 * SERVICE_VIEW_STEPS - 1 a few services apart: each step follows the
 * pointers the ones before loaded. */
#define SERVICE_VIEW_STEPS 4
void service_view_prefetch(const struct service *s, int step);

#endif
