/* Capture of a service's stdout/stderr into a size-capped, rotated log file,
 * through a named FIFO that outlives recoverd: a service keeps writing while
 * no recoverd runs (into the pipe, then blocking when it is full), and the
 * next recoverd reads what waits there first. Reading is rate-capped so a
 * child that floods output neither fills the disk nor monopolises the loop:
 * past the cap we stop reading and the child blocks on its pipe until the
 * next window. */
#ifndef RECOVERD_RECOVER_OUTPUT_H
#define RECOVERD_RECOVER_OUTPUT_H

#include "recover/output-t.h"

#define OUTPUT_RATE_BYTES (8u << 20) /* per second read from one service */
/* The FIFO's capacity, what a service can write while no recoverd reads
 * before it blocks: 1 MiB is 10 s of a service writing 100 KB/s (the
 * kernel's 64 KiB default is 0.6 s). Pages are taken only while data
 * waits (a drained FIFO keeps a 10 KiB ring of 256 slots). Best effort:
 * root is not capped; another user is by /proc/sys/fs/pipe-max-size
 * (1 MiB by default) and fs/pipe-user-pages-soft (output.c). */
#define OUTPUT_FIFO_BYTES (1 << 20)

/* Open log_path for appending and the FIFO at fifo_path, made (0600) if
 * missing and remade if what is there is not a FIFO of recoverd's user
 * that only it may open (never followed). Bytes already waiting in it are
 * read first. 0 or -errno (nothing left open). */
int output_open(struct output *o, uv_loop_t *loop, const char *log_path, const char *fifo_path,
                uint64_t max_bytes);
/* Off the loop (any thread; it logs nothing): make the log file and the
 * FIFO that output_open will open, where nothing is there yet. Creating a
 * file costs the filesystem an inode, milliseconds at times on a churned
 * ext4; output_open then finds them. 0 or -errno. */
int output_prepare(const char *log_path, const char *fifo_path);
/* Close recoverd's ends of the FIFO and the file; cb (may be NULL) runs once
 * the handles are closed. The FIFO stays: a process of the service may still
 * hold it, and the next output_open reads on where this one stopped. */
void output_close(struct output *o, void (*cb)(struct output *o));

#endif
