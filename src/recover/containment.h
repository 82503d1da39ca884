/* What holds a service's processes besides its process group, so that a
 * stop reaches the ones that left it (a double fork under setsid) and none
 * outlives its service or recoverd. Two modes, chosen once at start:
 *
 *   cgroup     each supervised service runs in a cgroup v2 of its own,
 *              <recoverd's cgroup>/recoverd.<tag>/<service>.service: its
 *              children are born there (lib/spawn.c), a stop signals every
 *              member, cgroup.kill ends what is left, and the process is
 *              down only once the cgroup is empty. Limits (memory.max,
 *              pids.max, cpu.max) where the controllers exist.
 *   subreaper  where no cgroup can be made (no writable v2 tree, an
 *              unprivileged recoverd): recoverd is a child subreaper, so
 *              orphans become its children; it reaps them, and finds a
 *              service's strays by ancestry and by the marker in their
 *              environment (RECOVERD_MARK=<tag>:<service>).
 *
 * The tag is a hash of the state_dir's real path: stable across restarts of
 * one recoverd, distinct between recoverds sharing a cgroup. */
#ifndef RECOVERD_RECOVER_CONTAINMENT_H
#define RECOVERD_RECOVER_CONTAINMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

struct cgroup_cfg;
struct cgroup_spec;
struct cgroup_built;

#define CONTAINMENT_MODE_MAP(X)                                                                    \
    X(AUTO, "auto")                                                                                \
    X(CGROUP, "cgroup")                                                                            \
    X(SUBREAPER, "subreaper")
enum containment_mode {
#define X(e, s) CONTAINMENT_##e,
    CONTAINMENT_MODE_MAP(X)
#undef X
        CONTAINMENT__COUNT
};

/* The variable in every supervised service's environment. */
#define CONTAINMENT_MARK "RECOVERD_MARK"

struct containment {
    uv_loop_t *loop;            /* borrowed */
    enum containment_mode mode; /* in force: CGROUP or SUBREAPER */
    char *root;                 /* CGROUP: <recoverd's cgroup>/recoverd.<tag>; owned */
    char *self;                 /* CGROUP: root/daemon if recoverd moved itself there; owned */
    unsigned controllers;       /* CGROUP: CGROUP_* bits the services' cgroups have */
    char tag[17];               /* hex FNV-1a 64 of the state_dir's real path */
    char *why;                  /* why not CGROUP (SUBREAPER in force); owned, may be NULL */
    uv_signal_t sigchld;        /* SUBREAPER: an orphan may be waiting to be reaped */
    bool sigchld_up;            /* sigchld is initialized (a handle to close) */
};

const char *containment_mode_name(enum containment_mode m);
/* The mode of a name ("auto", "cgroup", "subreaper"), or -1. */
int containment_mode_parse(const char *name);

/* Choose the mode (AUTO: cgroup where possible, else subreaper) and set it
 * up; state_dir must exist. 0, or -errno with a sentence in err (a forced
 * CGROUP that is impossible here, a refused prctl), c closed again. */
int containment_init(struct containment *c, uv_loop_t *loop, enum containment_mode want,
                     const char *state_dir, char *err, size_t len);
/* Close the handle; remove recoverd's cgroup subtree where it is empty. */
void containment_close(struct containment *c);
/* The limits of lim that cannot be applied here, as a sentence in buf, or
 * NULL when every one can (or none is asked for). */
const char *containment_limits_unmet(const struct containment *c, const struct cgroup_cfg *lim,
                                     char *buf, size_t len);
/* At shutdown, once every service is down: stop (sig, grace_ms, SIGKILL)
 * whatever recoverd still has below it that no service claimed (SUBREAPER:
 * orphans whose marker is gone). 0 and done(ctx) later from the loop, or 1:
 * nothing to do (no call follows). */
int containment_sweep(struct containment *c, int sig, uint64_t grace_ms, void (*done)(void *ctx),
                      void *ctx);

/* What a previous recoverd of this state_dir left running: fn(service, pid,
 * ctx) for every process in its services' cgroups (CGROUP) and every
 * process on the host carrying its marker (both modes; a pid may come
 * twice). Before any spawn of this one, so all of it is the predecessor's.
 * O(processes on the host). */
void containment_find(struct containment *c, void (*fn)(const char *service, pid_t pid, void *ctx),
                      void *ctx);

/* One service's share: its cgroup, or its marker. */
struct enclosure {
    struct containment *box;   /* borrowed; NULL: the process group alone */
    const char *service;       /* borrowed */
    char *cgroup;              /* CGROUP: box->root/<service>.service; owned */
    char mark[96];             /* "RECOVERD_MARK=<tag>:<service>"; "" without a box */
    uv_fs_event_t *events;     /* CGROUP: cgroup.events while waited on (made at the first
                                * wait: most services never need one); owned */
    unsigned sweeps;           /* SUBREAPER: stops of strays in flight */
    bool killed;               /* CGROUP: cgroup.kill may have run since it was made */
    bool detached;             /* left running for the next recoverd: its cgroup stays */
    bool adopted;              /* its process is a predecessor's (enclosure_adopt) until the
                                * next spawn: SUBREAPER scans the host, not recoverd's tree */
    bool waiting;              /* empty() is owed */
    bool closing;              /* enclosure_close ran */
    bool events_open;          /* events is made and not closed yet */
    bool made;                 /* CGROUP: prepared or adopted: its cgroup is there to remove */
    bool removing;             /* CGROUP: its cgroup's rmdir runs on libuv's pool */
    int rmdir_errno;           /* what that rmdir found (0: removed) */
    uv_work_t *rmdir;          /* that rmdir; owned while removing */
    void (*empty)(void *ctx);  /* what was waited for: nothing is left */
    void (*closed)(void *ctx); /* after enclosure_close, once nothing of it is left */
    void *ctx;                 /* for both */
};

/* Set up e for service (box may be NULL: then every call is a no-op and
 * the process group is all there is); opens nothing yet. empty, closed and
 * ctx are set by the caller, before or after. 0 or -ENOMEM (nothing kept). */
int enclosure_init(struct enclosure *e, struct containment *box, const char *service);
/* Before a spawn: the cgroup the child is to start in, or NULL for none;
 * *spec says how to make it (afresh where it went through cgroup.kill,
 * lim's limits where the controllers exist). The making itself is
 * cgroup_build's, off the loop (a spawner thread), then
 * enclosure_prepared. */
const char *enclosure_prepare(struct enclosure *e, const struct cgroup_cfg *lim,
                              struct cgroup_spec *spec);
/* What cgroup_build of enclosure_prepare's spec found, back on the loop:
 * recorded (made, joined late), each refused limit logged (the spawn goes
 * on without it). 0, or b->err: the cgroup cannot be made, no spawn. */
int enclosure_prepared(struct enclosure *e, const struct cgroup_spec *spec,
                       const struct cgroup_built *b);
/* The service's process was adopted from a previous recoverd: its cgroup
 * (as it is) holds it, and its strays are init's children, not ours. */
void enclosure_adopt(struct enclosure *e);
/* Its processes stay when recoverd exits (enclosure_close keeps the cgroup). */
void enclosure_detach(struct enclosure *e);
/* A stop: sig to every process of the service outside leader's process
 * group (the caller signals that one), given grace_ms before SIGKILL where
 * the sweep does it (SUBREAPER; in CGROUP the caller's grace ends with
 * enclosure_kill). */
void enclosure_signal(struct enclosure *e, pid_t leader, int sig, uint64_t grace_ms);
/* SIGKILL to every process of the service (leader's group: the caller).
 * true: its cgroup had nothing alive, and so stays empty (no wait needed). */
bool enclosure_kill(struct enclosure *e, pid_t leader);
/* Wait until nothing of the service is left: 0 when nothing is already (no
 * call follows), 1 when empty() will be called from the loop. What remains
 * (SUBREAPER) without a stop under way gets SIGKILL. */
int enclosure_wait(struct enclosure *e);
/* Stop waiting (a caller giving up on what will not die). */
void enclosure_unwait(struct enclosure *e);
/* The cgroup goes where empty. 1 when closed() follows from the loop (a
 * handle or a sweep is still open), 0 when nothing of e is left already. */
int enclosure_close(struct enclosure *e);

#endif
