/* The preflight of a loaded configuration: who each service and program
 * runs as (user and group names resolved through NSS), and whether what it
 * names exists and is usable by that user (programs, the files recoverd
 * reads, directories). It blocks (NSS may ask a network service; stat may
 * wait on a slow mount): run it before the loop runs or in libuv's thread
 * pool, never on the loop. */
#ifndef RECOVERD_DAEMON_PREFLIGHT_H
#define RECOVERD_DAEMON_PREFLIGHT_H

#include <stddef.h>

struct config;

/* Every problem found, "file:line:col: error: ...", in file order. */
struct preflight_report {
    char **lines; /* n of them; owned */
    size_t n;
};

/* Fill every ident's cred (the ids; or error -ENOENT/-EPERM when they
 * cannot be had) and each service's problem (its first), and set
 * c->preflighted. Touches nothing but c and report (NULL: not wanted),
 * so it may run on any thread while no one else uses c. 0, or -ENOMEM
 * (then c is not fit to run). */
int preflight_run(struct config *c, struct preflight_report *report);
void preflight_report_free(struct preflight_report *r);

#endif
