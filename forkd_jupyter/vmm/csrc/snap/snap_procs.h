/* The other processes of a sandbox in its branches (snap_procs.c): a
 * snapshot of the first process carries every other process alive at the
 * pause as a snapshot of its own, and the process table (zombies
 * included); a child gets the whole tree back, with the open file
 * descriptions the processes shared still shared. */
#ifndef SNAP_PROCS_H
#define SNAP_PROCS_H

#include "core/fdt.h"
#include "core/proc.h"
#include "snap/snapshot.h"

/* Image files made before a pause for the processes it will find. */
struct snap_spare_images {
    int fd[SB_MAX_PROCS];
    unsigned n;
};
/* Before the pause (big_lock not held): one for each other process alive. */
void snap_procs_prepare(struct sandbox *first, struct snap_spare_images *spare);
/* After it: closes those not used. */
void snap_procs_spare_close(struct snap_spare_images *spare);
/* In the pause: how many other processes of first's sandbox are alive (>= 0:
 * they can be carried); -EBUSY while a vfork child runs on its parent's
 * memory (it execs or ends soon: ask again), -EXDEV when processes alive
 * share memory. */
int snap_procs_check(struct sandbox *first);
/* In the pause, after first's state went into snap through ctx: the other
 * live processes into snap->procs (memory: a diff over each one's previous
 * snapshot, or a full copy) and the table into snap->slots; each
 * process's replaced snapshot goes to replaced[i] (release after the
 * pause). */
int snap_procs_capture(struct sandbox *first, struct snapshot *snap, struct fdt_clone_ctx *ctx,
                       struct snapshot **replaced, struct snap_spare_images *spare);
/* A child's first process restored from snap through ctx: its table and
 * the other processes, not started (fj_sandbox_run starts them). */
int snap_procs_spawn(struct sandbox *first, struct snapshot *snap, struct fdt_clone_ctx *ctx);

#endif
