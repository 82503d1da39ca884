/* A check at run time and what one probe observed. Types only. */
#ifndef RECOVERD_DETECT_CHECK_T_H
#define RECOVERD_DETECT_CHECK_T_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "lib/model-t.h"

struct service;
struct check_cfg;
struct detector_ops;

struct observation {
    bool ok;                 /* the probe passed */
    enum fault_type type;    /* classification when !ok */
    enum severity severity;  /* classification when !ok */
    bool host_wide;          /* the condition is the host's (CPU, memory, disk): impact system */
    int code;                /* HTTP status, exit code... ; -1 when none */
    uint64_t latency_us;     /* probe start -> result */
    char reason[200];        /* human words: "HTTP 500", "timeout after 100 ms", "connection refused" */
};

struct check {
    struct service *svc;            /* owner; borrowed */
    const struct check_cfg *cfg;    /* borrowed from the running config */
    const struct detector_ops *ops; /* == cfg->ops */
    uv_timer_t timer;               /* next probe; data = this check */
    void *priv;                     /* the detector's state (ops->release frees it) */
    bool in_flight;                 /* a probe was started and has not reported */
    uint64_t started_us;            /* monotonic start of the probe in flight */
    unsigned fails;                 /* consecutive failed probes */
    unsigned oks;                   /* consecutive passed probes */
    bool failing;                   /* threshold state: fall reached, rise not yet */
    bool has_result;                /* at least one probe finished */
    struct observation last;        /* the latest result */
    uint64_t last_ms;               /* wall ms of the latest result */
    uint64_t probes;                /* count of finished probes */
    struct check_batch *batch;      /* set once replaced by a reload: see check_replace_all */
};

#endif
