/* Taking a snapshot in one pause of every process (snapshot.h): what each
 * process gives is snap_capture.c, the other processes snap_procs.c; the
 * snapshot object itself is snapshot_ref.c. */
#define _GNU_SOURCE
#include "snap/snapshot.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/vmm_api.h"

#include "api/snapshot_api.h" /* after vmm_api.h, whose types it uses */

#include "core/proc.h"
#include "file/file_stdio.h"
#include "fs/fs_memfs.h"
#include "fs/fs_view.h"
#include "kvm/kvm_cpu.h"
#include "snap/snap_copy.h"
#include "snap/snap_hint.h"
#include "snap/snap_procs.h"
#include "snap/snap_stage.h"

struct capture_args {
    struct snapshot *snap;
    struct snapshot *replaced; /* the sandbox's previous last_snap: released after the pause */
    struct snapshot *replaced_procs[SB_MAX_PROCS]; /* the same of the other processes */
    struct snap_spare_images spare;                /* image files for the other processes */
};

/* Runs with every vCPU of every process parked: everything of the
 * snapshot that must be of the pause instant. The writable layer is cloned
 * once; every process's files are cloned within one context against it. */
static int capture(struct sandbox *sb, void *p) {
    struct capture_args *args = p;
    struct snapshot *snap = args->snap;
    if (sb->exited)
        return -ESRCH;
    int err = snap_procs_check(sb);
    if (err >= 0)
        err = snapshot_capture_threads(sb, snap);
    if (err == 0 && !(snap->view = fs_view_clone(sb->view)))
        err = -ENOMEM;
    if (err < 0)
        return err;
    struct fdt_clone_ctx ctx = {.view = snap->view};
    err = snapshot_capture_state(sb, snap, &ctx);
    if (err == 0)
        err = snap_procs_capture(sb, snap, &ctx, args->replaced_procs, &args->spare);
    fdt_clone_ctx_done(&ctx);
    memfs_drop_clone_holds(fs_view_layer(snap->view));
    if (err < 0)
        return err;
    uint64_t others_dirty = snap->dirty_bytes; /* the other processes' (snap_procs_capture) */
    err = snapshot_capture_memory(sb, snap, &args->replaced);
    snap->dirty_bytes += others_dirty;
    return err;
}

/* A pause job: memory shared with processes that ended becomes the
 * process's own again, so a branch copies (and write-protects) it as any
 * other; while other processes run it stays shared (snap_procs_check). */
static int privatize_shared(struct sandbox *sb, void *arg) {
    (void)arg;
    int others = snap_procs_check(sb);
    if (others != 0)
        return others < 0 ? others : 0;
    return kvm_vm_privatize_foreign(&sb->vm);
}

int fj_sandbox_snapshot(fj_sandbox *sb, int mode, fj_snapshot **out) {
    *out = NULL;
    bool may_stage = mode == (FJ_SNAP_DIFF | FJ_SNAP_MAY_STAGE);
    if (may_stage)
        mode = FJ_SNAP_DIFF;
    if (mode != FJ_SNAP_FULL && mode != FJ_SNAP_DIFF && mode != FJ_SNAP_LIVE)
        return -EINVAL;
    if (sb->exited)
        return -ESRCH;
    if (sb->vm.n_foreign) { /* (read unlocked: a hint; the job checks) */
        struct sb_pause_job own = {.fn = privatize_shared};
        int err = sb_run_paused(sb, &own);
        if (err < 0)
            return err;
    }
    /* A staged last diff finishes first (outside the pause, mostly). */
    pthread_mutex_lock(sb->big_lock);
    struct snapshot *last =
        sb->last_snap && sb->last_snap->was_staged ? snapshot_get(sb->last_snap) : NULL;
    pthread_mutex_unlock(sb->big_lock);
    if (last) {
        fj_snapshot_wait(last, -1);
        fj_snapshot_release(last);
    }
    struct snapshot *snap = snapshot_alloc(mode, sb->vm.ram_bytes);
    if (!snap)
        return -ENOMEM;
    snap->may_stage = may_stage;
    sb->lineage_release = snapshot_release_lineage;
    if (mode == FJ_SNAP_LIVE) {
        int err = snap_copy_prepare_live(sb, snap);
        if (err < 0) {
            fj_snapshot_release(snap);
            return err;
        }
    }
    struct capture_args args = {snap, NULL, {NULL}, {.n = 0}};
    /* Image files are made before the pause: ~40 us each inside it. */
    int made = snapshot_make_image(snap);
    if (made < 0) {
        snap_copy_abort(sb, snap);
        fj_snapshot_release(snap);
        return made;
    }
    snap_procs_prepare(sb, &args.spare);
    struct sb_pause_job job = {.fn = capture, .arg = &args};
    int err = sb_run_paused_all(sb, &job);
    snap->pause_ns = job.resumed_ns - job.stopped_ns;
    snap_procs_spare_close(&args.spare);
    if (args.replaced)
        snapshot_release_in_background(args.replaced);
    for (unsigned i = 0; i < SB_MAX_PROCS; i++)
        if (args.replaced_procs[i])
            snapshot_release_in_background(args.replaced_procs[i]);
    if (err < 0) {
        snap_copy_abort(sb, snap);
        fj_snapshot_release(snap);
        return err;
    }
    if (snap->staged)
        snap_stage_finish_later(snap); /* READY once compared and written */
    else if (mode != FJ_SNAP_LIVE)
        snapshot_finish(snap, FJ_SNAP_READY, NULL);
    snap_stage_grow_later(sb);
    *out = snap;
    return 0;
}

int fj_sandbox_learn_working_set(fj_sandbox *sb) { return hint_learn(sb->hint, &sb->vm); }
