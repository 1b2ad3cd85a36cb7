/* Taking snapshots and spawning children from them (snapshot.h); the
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

/* Every thread's registers, saved when it parked for this pause. Pending
 * signals belong to the source and stay there. */
int snapshot_capture_threads(struct sandbox *sb, struct snapshot *snap) {
    struct sb_thread *main_thread = sb->threads[0];
    if (main_thread->state == SB_T_EXITED)
        return -ENOTSUP; /* the process lives on in other threads: not captured */
    if (main_thread->saved_err < 0)
        return main_thread->saved_err;
    snap->cpu = main_thread->saved;
    snap->sig = sb->sig;
    snap->sig.pending = 0;
    copy_thread_signals(&snap->sig, &main_thread->sig);
    memset(snap->sig.fault_addr, 0, sizeof(snap->sig.fault_addr));
    snap->next_tid = sb->procs->next_id;
    unsigned others = 0;
    for (unsigned i = 1; i < LAYOUT_MAX_VCPUS; i++)
        others += sb->threads[i] && sb->threads[i]->state != SB_T_EXITED;
    /* Exactly what is needed: a table for every possible vCPU costs ~50 us
     * of zeroing inside the pause. */
    if (others && !(snap->threads = calloc(others, sizeof(*snap->threads))))
        return -ENOMEM;
    for (unsigned i = 1; i < LAYOUT_MAX_VCPUS; i++) {
        struct sb_thread *t = sb->threads[i];
        if (!t || t->state == SB_T_EXITED)
            continue;
        if (t->saved_err < 0)
            return t->saved_err;
        struct snap_thread *st = &snap->threads[snap->n_threads++];
        st->tid = t->tid;
        st->id = t->id;
        st->cpu = t->saved;
        st->sig = t->sig;
        st->sig.pending = 0;
        memset(st->sig.fault_addr, 0, sizeof(st->sig.fault_addr));
        st->clear_child_tid = t->clear_child_tid;
        st->robust_list = t->robust_list;
    }
    return 0;
}

int snapshot_capture_state(struct sandbox *sb, struct snapshot *snap, struct fdt_clone_ctx *ctx) {
    int err = mm_clone(&snap->mm, &sb->mm, NULL);
    if (err < 0)
        return err;
    snap->pid = sb->pid;
    memcpy(snap->exe_path, sb->exe_path, sizeof(snap->exe_path));
    snap->logical_bytes = sb->mm.mapped_bytes;
    return fdt_clone_with(&snap->fdt, &sb->fdt, ctx);
}

static void *release_main(void *snap) {
    fj_snapshot_release(snap);
    return NULL;
}

/* Drops a reference off the caller's path: the last one frees an image,
 * which returns its memory to the host and can take a while. */
void snapshot_release_in_background(struct snapshot *snap) {
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, release_main, snap) != 0)
        fj_snapshot_release(snap);
    pthread_attr_destroy(&attr);
}

struct capture_args {
    struct snapshot *snap;
    struct snapshot *replaced; /* the sandbox's previous last_snap: released after the pause */
    struct snapshot *replaced_procs[SB_MAX_PROCS]; /* the same of the other processes */
    struct snap_spare_images spare;                /* image files for the other processes */
};

int snapshot_make_image(struct snapshot *snap) {
    if (snap->image_fd >= 0)
        return 0;
    snap->image_fd = memfd_create("forkd-snapshot", MFD_CLOEXEC);
    if (snap->image_fd < 0 || ftruncate(snap->image_fd, (off_t)snap->ram_bytes) < 0)
        return -errno;
    return 0;
}

int snapshot_capture_memory(struct sandbox *sb, struct snapshot *snap, struct snapshot **replaced) {
    int made = snapshot_make_image(snap);
    if (made < 0)
        return made;
    /* Every snapshot starts a new dirty epoch; a diff keeps what the last
     * one recorded and builds on the sandbox's previous snapshot. */
    uint64_t *dirty = calloc(1, kvm_vm_bitmap_bytes(&sb->vm));
    if (!dirty)
        return -ENOMEM;
    int err = kvm_vm_collect_dirty(&sb->vm, dirty);
    if (err < 0) {
        free(dirty);
        return err;
    }
    uint64_t dirty_pages = 0;
    for (size_t i = 0; i < kvm_vm_bitmap_bytes(&sb->vm) / 8; i++)
        dirty_pages += (uint64_t)__builtin_popcountll(dirty[i]);
    snap->dirty_bytes = dirty_pages * FJ_PAGE_SIZE;
    uint64_t t0 = fj_now_ns();
    if (snap->mode == FJ_SNAP_DIFF && sb->last_snap) {
        snap->parent = snapshot_get(sb->last_snap);
        snap->delta = dirty;
        dirty = NULL;
        err = snap_copy_pages(sb, snap, snap->delta);
    } else if (snap->mode == FJ_SNAP_LIVE) {
        err = snap_copy_start_live(sb, snap);
    } else {
        err = snap_copy_now(sb, snap);
    }
    free(dirty);
    if (err == 0) {
        if (!sb->hint)
            sb->hint = hint_new(); /* NULL on ENOMEM: children just go without */
        snap->hint = hint_get(sb->hint);
        /* Freeing an image can take long (its memory goes back to the host):
         * never inside the pause. */
        *replaced = sb->last_snap;
        sb->last_snap = snapshot_get(snap);
        sb->lineage_release = snapshot_release_lineage;
    }
    if (snap->mode != FJ_SNAP_LIVE)
        snap->copy_ns = fj_now_ns() - t0;
    return err;
}

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

/* sb->lineage_release: what this layer attached to a sandbox. */
void snapshot_release_lineage(struct sandbox *sb) {
    snap_copy_sandbox_gone(sb);
    if (sb->last_snap)
        fj_snapshot_release(sb->last_snap);
    hint_put(sb->hint);
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
    struct snapshot *snap = snapshot_alloc(mode, sb->vm.ram_bytes);
    if (!snap)
        return -ENOMEM;
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
    if (mode != FJ_SNAP_LIVE)
        snapshot_finish(snap, FJ_SNAP_READY, NULL);
    *out = snap;
    return 0;
}

int fj_sandbox_learn_working_set(fj_sandbox *sb) { return hint_learn(sb->hint, &sb->vm); }
