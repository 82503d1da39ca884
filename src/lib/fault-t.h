/* Faults and recovery actions as recorded. Types only. */
#ifndef RECOVERD_LIB_FAULT_T_H
#define RECOVERD_LIB_FAULT_T_H

#include <stdint.h>

#include "lib/model-t.h"

struct fault {
    int64_t id;       /* journal row id; 0 until journaled */
    char service[64]; /* source service (names are at most 63 characters: config) */
    char check[64];   /* source check ("process", "http", ...), same rule */
    enum fault_type type;
    enum severity severity;
    enum impact impact;
    char description[256]; /* human words */
    char *context;         /* JSON object text: measurements (exit code, signal, status,
                            * latency); owned, NULL: {} (fault_release frees it) */
    uint64_t opened_ms;    /* CLOCK_REALTIME ms; when the threshold was crossed */
    uint64_t resolved_ms;  /* CLOCK_REALTIME ms; 0 while open */
};

struct action {
    int64_t id;          /* journal row id; 0 until journaled */
    int64_t fault_id;    /* the fault it recovers */
    const char *service; /* target service; borrowed (its recovery's name outlives it) */
    enum strategy strategy;
    enum action_status status;
    char *params;         /* JSON object text: the strategy's parameters (e.g.
                           * {"delay_ms":400}); owned, NULL: {} (action_release) */
    char *result;         /* human words: what was observed; owned, NULL: "" (action_release).
                           * Not a fixed array: 256 bytes in every service's recovery,
                           * most of which never run an action */
    uint64_t created_ms;  /* CLOCK_REALTIME ms */
    uint64_t started_ms;  /* 0 until executing */
    uint64_t finished_ms; /* 0 until completed/failed/aborted */
};

#endif
