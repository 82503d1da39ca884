/* Webhook alerts: one alert per fault, from opened through escalations to
 * its resolution, POSTed as JSON to each configured webhook, in order,
 * retried until the receiver takes them (monitor/alert-queue.c). Alert
 * fatigue is a bug: a check failing again is not a new alert, a symptom
 * rides on its root cause's alert, and an open alert is repeated only
 * every repeat_interval. The queues and the open alerts live in the
 * journal: a restart of recoverd loses neither. */
#ifndef RECOVERD_MONITOR_ALERT_H
#define RECOVERD_MONITOR_ALERT_H

#include <jansson.h>
#include <stdint.h>
#include <uv.h>

#include "config/config-t.h"
#include "lib/fault-t.h"

struct alerter;
struct journal;

/* Alerts are keyed by struct fault's id: pass faults once journaled (id
 * != 0). Every call is cheap: messages are queued, never sent inline. */

/* cfg and j are borrowed: cfg must outlive the alerter or be replaced
 * with alerter_reconfigure. What j holds from an earlier run is taken up:
 * waiting messages are sent, open alerts get their resolution; the queues
 * of webhooks no longer configured are dropped (logged). NULL on OOM or
 * when j cannot be read. A webhook whose url does not parse is logged once
 * and gets nothing. */
struct alerter *alerter_new(uv_loop_t *loop, const struct alerts_cfg *cfg, struct journal *j);

/* After a reload: webhooks whose url is unchanged keep their open alerts,
 * queue and delivery in flight (and take the new settings); the others are
 * dropped (their queue with them, logged) or start empty. */
void alerter_reconfigure(struct alerter *a, const struct alerts_cfg *cfg);

/* Stop retries and deliveries in flight and close every handle; the memory
 * is freed in close callbacks, so run the loop after. What waits stays in
 * the journal. NULL-safe. */
void alerter_free(struct alerter *a);

/* For /v1/status: {"pending": N, "dropped": N, "webhooks": [{"webhook",
 * "url" (scheme://host:port), "pending", "delivered", "dropped" (by the
 * bound, since start), "failing", "attempts", "error"}]}. */
json_t *alerter_status_json(const struct alerter *a);

/* A fault opened: "opened", once per fault id and webhook, if f->severity
 * >= the webhook's min_severity. A known symptom's id is ignored. */
void alert_fault_opened(struct alerter *a, const struct fault *f);

/* A fault whose recovery moved to the next strategy (failed = the action
 * that did not work, may be NULL; next_strategy may be NULL): "escalated",
 * an update of the fault's alert (which it opens if none is open yet). */
void alert_fault_escalated(struct alerter *a, const struct fault *f, const struct action *failed,
                           const char *next_strategy);

/* "resolved" with the symptoms folded in, then the alert is forgotten.
 * Nothing for a fault that had no alert (below min_severity, a symptom). */
void alert_fault_resolved(struct alerter *a, const struct fault *f);

/* The service gave up / its strategy chain is exhausted: "failed", an
 * update of f's alert. f = the fault it failed on; NULL sends a message
 * about the service alone (to every webhook). why: human words. */
void alert_service_failed(struct alerter *a, const char *service, const struct fault *f,
                          const char *why);

/* A symptom fault (root_fault_id = the fault of the dependency that caused
 * it): its id joins the root's alert ("symptoms" in the root's next
 * messages) and it never gets an alert of its own, nor a resolution. */
void alert_fault_symptom(struct alerter *a, const struct fault *symptom, int64_t root_fault_id);

#endif
