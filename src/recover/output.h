/* Capture of a service's stdout/stderr into a size-capped, rotated log file.
 * Reading is rate-capped so a child that floods output neither fills the
 * disk nor monopolises the loop: past the cap we stop reading and the child
 * blocks on its pipe until the next window. */
#ifndef RECOVERD_RECOVER_OUTPUT_H
#define RECOVERD_RECOVER_OUTPUT_H

#include "recover/output-t.h"

#define OUTPUT_RATE_BYTES (8u << 20) /* per second read from one service */

/* Create the pipe and open path for appending. 0 or -errno. */
int output_open(struct output *o, uv_loop_t *loop, const char *path, uint64_t max_bytes);
/* Close the pipe and file; cb (may be NULL) runs once the handles are closed. */
void output_close(struct output *o, void (*cb)(struct output *o));

#endif
