/* bench/writecost's driver: a storm's journal writes, as the daemon makes
 * them (batching on, one flush per turn of 10 events), for the instruction
 * count of a write. Usage: writecost DIR EVENTS. */
#include <stdio.h>
#include <stdlib.h>

#include "lib/fault-t.h"
#include "lib/model-t.h"
#include "store/journal.h"

#define T0 1764070768123ULL
#define PER_TURN 10

/* One fault's life: opened, a restart started and verified, resolved. */
static void event(struct journal *j, int i)
{
    uint64_t t = T0 + (uint64_t)i;
    struct fault f = {.type = FAULT_SOFTWARE,
                      .severity = SEVERITY_HIGH,
                      .impact = IMPACT_SERVICE,
                      .opened_ms = t};
    snprintf(f.service, sizeof f.service, "s%04d", i % 1000);
    snprintf(f.check, sizeof f.check, "process");
    snprintf(f.description, sizeof f.description, "process exited (signal 9)");
    f.context = (char *)"{\"signal\":9,\"detection_ms\":1764070768100}";
    journal_fault_open(j, &f);
    journal_transition(j, f.service, STATE_NORMAL, STATE_FAILED, "process exited", t);
    struct action a = {.fault_id = f.id,
                       .strategy = STRATEGY_RESTART,
                       .status = ACTION_PENDING,
                       .created_ms = t};
    a.service = f.service;
    a.params = (char *)"{\"delay_ms\":0}";
    journal_action_insert(j, &a);
    a.status = ACTION_EXECUTING;
    a.started_ms = t;
    journal_action_update(j, &a);
    struct journal_child c = {.service = f.service,
                              .pid = 1000 + i,
                              .start_ticks = 12345,
                              .fingerprint = "0123456789abcdef"};
    journal_child_set(j, &c);
    journal_transition(j, f.service, STATE_FAILED, STATE_RECOVERING, "restart", t);
    a.status = ACTION_COMPLETED;
    a.finished_ms = t + 5;
    a.result = (char *)"verified 20 ms after spawn";
    journal_action_update(j, &a);
    f.resolved_ms = t + 6;
    journal_fault_resolve(j, &f);
    journal_transition(j, f.service, STATE_RECOVERING, STATE_NORMAL, "verified", t);
}

int main(int argc, char **argv)
{
    char err[256], path[4096];
    if (argc != 3)
        return 2;
    snprintf(path, sizeof path, "%s/journal.db", argv[1]);
    struct journal *j = journal_open(path, err, sizeof err);
    if (!j) {
        fprintf(stderr, "writecost: %s\n", err);
        return 1;
    }
    journal_set_batching(j, true);
    int n = atoi(argv[2]);
    for (int i = 0; i < n; i++) {
        event(j, i);
        if (i % PER_TURN == PER_TURN - 1)
            journal_flush(j);
    }
    while (journal_flush(j) != 0)
        ; /* writes held back for the checkpointer's restart: a few ms */
    journal_free(j);
    return 0;
}
