/* A service's captured stdout/stderr. Types only. */
#ifndef RECOVERD_RECOVER_OUTPUT_T_H
#define RECOVERD_RECOVER_OUTPUT_T_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct output {
    uv_pipe_t pipe;        /* recoverd's end of the FIFO (O_RDWR, non-blocking); data = this */
    uv_timer_t *resume;    /* rate cap: resume reading after a pause; NULL until the first */
    int write_fd;          /* children's end (O_RDWR, blocking) for every spawn; -1 when closed */
    int log_fd;            /* the open log file; -1 when none */
    char *path;            /* state_dir/logs/<name>.log */
    uint64_t size;         /* bytes in the current log file */
    uint64_t max_bytes;    /* rotate past this */
    uint64_t window_us;    /* start of the current rate window, monotonic */
    uint64_t window_bytes; /* bytes read in that window */
    bool reading;          /* uv_read_start is in effect */
    int closing;           /* handles still to close */
    void (*closed_cb)(struct output *o); /* called once both handles are closed */
};

#endif
