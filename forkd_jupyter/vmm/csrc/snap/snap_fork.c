/* The memory of a forked process (core/proc.h: procs->fork_memory): the
 * parent's RAM as its calling thread sees it at the fork, taken as a
 * snapshot (a diff over the parent's previous snapshot when it has one,
 * else a full copy of what it has mapped) that the child maps
 * copy-on-write, as a branch does. The parent's other threads are stopped
 * meanwhile; the snapshot becomes the base of both sides' next diffs. */
#define _GNU_SOURCE
#include "snap/snap_fork.h"

#include "api/vmm_api.h"

#include "api/snapshot_api.h" /* after vmm_api.h: it uses fj_sandbox */
#include "core/proc.h"
#include "core/shm.h"
#include "snap/snapshot.h"

static int fork_memory(struct sandbox *parent, struct sandbox *child) {
    int stopped = sb_stop_others(parent);
    if (stopped < 0)
        return stopped;
    int mode = parent->last_snap ? FJ_SNAP_DIFF : FJ_SNAP_FULL;
    kvm_vm_trim(&parent->vm); /* freed memory kept for reuse: not copied as zeros */
    struct snapshot *snap = snapshot_alloc(mode, parent->vm.ram_bytes), *replaced = NULL;
    if (snap)
        snap->full_if_chain_heavy = true; /* see snapshot.h */
    int err =
        snap ? sb_shm_promote(parent) : -ENOMEM; /* shared memory stays shared with the child */
    if (err == 0)
        err = snapshot_capture_memory(parent, snap, &replaced);
    if (stopped)
        sb_resume_others(parent);
    if (err == 0) {
        snapshot_finish(snap, FJ_SNAP_READY, NULL);
        /* A diff needs the chain below it written (a live copy may still run). */
        for (struct snapshot *s = snap->parent; s && err == 0; s = s->parent)
            err = fj_snapshot_wait(s, -1);
    }
    if (err == 0 && (err = kvm_vm_create_cow(&child->vm, snap->ram_bytes,
                                             snapshot_chain_root(snap)->image_fd)) == 0)
        err = snapshot_map_memory(snap, &child->vm, 0);
    if (replaced)
        snapshot_release_in_background(replaced);
    if (err < 0) {
        if (snap)
            fj_snapshot_release(snap);
        return err;
    }
    child->last_snap = snap; /* the child's first diff builds on it */
    child->lineage_release = snapshot_release_lineage;
    return 0;
}

void snap_fork_attach(struct sandbox *sb) { sb->procs->fork_memory = fork_memory; }
