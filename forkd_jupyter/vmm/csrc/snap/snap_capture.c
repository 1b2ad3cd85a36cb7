/* What one process gives a snapshot in a pause (snapshot.h): its threads'
 * registers and signal state, its address space, identity and files, and
 * its memory by the snapshot's mode; and what this layer attaches to a
 * sandbox (its lineage), released with it. Used for the first process and
 * every other one (snapshot.c, snap_procs.c) and for fork (snap_fork.c). */
#define _GNU_SOURCE
#include "snap/snapshot.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "api/vmm_api.h"

#include "api/snapshot_api.h" /* after vmm_api.h, whose types it uses */

#include "core/proc.h"
#include "snap/snap_copy.h"
#include "snap/snap_hint.h"
#include "snap/snap_stage.h"
#include "snap/snap_unchanged.h"

/* The threads' names, in the order of the capture (the main thread, then
 * the others by vCPU id); nothing when none has one. */
static int capture_names(struct sandbox *sb, struct snapshot *snap) {
    bool named = false;
    for (unsigned i = 0; i < LAYOUT_MAX_VCPUS; i++)
        named |= sb->threads[i] && sb->threads[i]->state != SB_T_EXITED && sb->threads[i]->comm[0];
    if (!named)
        return 0;
    if (!(snap->names = calloc(1 + snap->n_threads, sizeof(*snap->names))))
        return -ENOMEM;
    for (unsigned i = 0, n = 0; i < LAYOUT_MAX_VCPUS; i++)
        if (sb->threads[i] && (i == 0 || sb->threads[i]->state != SB_T_EXITED))
            memcpy(snap->names[n++], sb->threads[i]->comm, sizeof(snap->names[0]));
    return 0;
}

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
    return capture_names(sb, snap);
}

int snapshot_capture_state(struct sandbox *sb, struct snapshot *snap, struct fdt_clone_ctx *ctx) {
    int err = mm_clone(&snap->mm, &sb->mm, NULL);
    if (err < 0)
        return err;
    snap->pid = sb->pid;
    memcpy(snap->exe_path, sb->exe_path, sizeof(snap->exe_path));
    snap->limits = sb->limits;
    snap->prctl = sb->prctl;
    snap->logical_bytes = sb->mm.mapped_bytes;
    return fdt_clone_with(&snap->fdt, &sb->fdt, ctx);
}

/* The pages of written (this epoch) to leave writable: those the sandbox
 * also wrote in the previous diff's epoch, up to KEEP_MAX_PAGES; every
 * KEEP_EPOCHS diffs while more than KEEP_SETTLED_PAGES would be kept, only
 * those of them this diff holds (changed: not found unchanged; the ones it
 * holds as zero are unmapped, left out by settle_kept). Returns the diffs
 * in a row that kept pages (at most KEEP_EPOCHS). */
static uint32_t choose_kept(const struct sandbox *sb, const uint64_t *written,
                            const uint64_t *changed, uint64_t *keep, size_t words) {
    if (!sb->diff_written)
        return 0;
    uint64_t n = 0;
    for (size_t w = 0; w < words && n < KEEP_MAX_PAGES; w++) {
        keep[w] = written[w] & sb->diff_written[w];
        n += (uint64_t)__builtin_popcountll(keep[w]);
    }
    if (sb->diff_kept_epochs + 1 >= KEEP_EPOCHS && n > KEEP_SETTLED_PAGES) {
        for (size_t w = 0; w < words; w++)
            keep[w] &= changed[w];
        return 0;
    }
    return FJ_MIN(sb->diff_kept_epochs + 1, KEEP_EPOCHS);
}

/* The pages to leave writable, from those choose_kept chose (keep, then
 * the result): unmapped pages are re-armed but the spares (or none, spare
 * NULL), since the next cell maps those again (kvm_discard.c) and each
 * write there would take a KVM write fault; handed back to the host, they
 * are unmapped, not spares, at the next diff, and re-armed then. Records
 * them in sb->diff_kept for the next diff's compare; returns how many. */
static uint64_t settle_kept(struct sandbox *sb, const uint64_t *written, const uint64_t *unmapped,
                            const uint64_t *spare, uint64_t *keep) {
    size_t bytes = kvm_vm_bitmap_bytes(&sb->vm);
    uint64_t n = 0;
    for (size_t w = 0; w < bytes / 8; w++) {
        keep[w] = (keep[w] & ~unmapped[w]) | (spare ? written[w] & spare[w] : 0);
        n += (uint64_t)__builtin_popcountll(keep[w]);
    }
    free(sb->diff_kept);
    sb->diff_kept = n ? malloc(bytes) : NULL; /* NULL: all compared within the budget */
    if (sb->diff_kept)
        memcpy(sb->diff_kept, keep, bytes);
    return n;
}

/* Whether a diff of dirty (less zero) should be staged (snap_stage.h) and
 * sb's stage takes it: at least STAGE_MIN_PAGES to copy, and not when this
 * diff re-arms the kept pages it finds unchanged (it must know which). */
static bool stage_claimed(struct sandbox *sb, const uint64_t *written, const uint64_t *dirty,
                          const uint64_t *zero, size_t words) {
    uint64_t pages = 0, again = 0;
    for (size_t w = 0; w < words; w++) {
        pages += (uint64_t)__builtin_popcountll(dirty[w] & (zero ? ~zero[w] : ~0ULL));
        if (sb->diff_written) /* as choose_kept counts the pages it would keep */
            again += (uint64_t)__builtin_popcountll(written[w] & sb->diff_written[w]);
    }
    bool rearms = sb->diff_kept_epochs + 1 >= KEEP_EPOCHS &&
                  FJ_MIN(again, (uint64_t)KEEP_MAX_PAGES) > KEEP_SETTLED_PAGES;
    return pages >= STAGE_MIN_PAGES && !rearms && snap_stage_claim(sb, pages);
}

/* A staged diff learns only after its pause whether it changed anything
 * (its finishing): counted as changed then, it is counted again here, at
 * the next diff, where an idle run goes on from it. A diff after a staged
 * one that changed nothing compares in its pause: a sandbox gone idle
 * finds that out at its second idle diff, as without staging, and
 * re-arms its pages (snap_unchanged.h). */
static bool after_staged(struct sandbox *sb, const struct snapshot *parent) {
    if (!parent || !parent->was_staged || !parent->changed_nothing)
        return false;
    sb->diff_idle_run = parent->idle_run_before + 1;
    return true;
}

/* Fills dirty with the pages written in the epoch the pause ends and starts
 * the next, and kept with the number of pages left writable. A diff on a
 * parent leaves out what was written back unchanged (or, *staged on entry,
 * may be staged instead, and *staged says whether it is), sets in *zero
 * (or leaves NULL) the pages it holds as zero without a copy, and leaves
 * hot pages writable (snap_unchanged.h); whatever stands in the way of
 * that, the plain collection. */
static int collect_epoch(struct sandbox *sb, const struct snapshot *parent, uint64_t *dirty,
                         uint64_t *kept, uint64_t **zero, bool *staged, uint32_t *idle_before) {
    bool may_stage = *staged && !after_staged(sb, parent);
    *staged = false;
    *kept = 0;
    *zero = NULL;
    size_t bytes = kvm_vm_bitmap_bytes(&sb->vm);
    uint64_t *written = parent ? malloc(bytes) : NULL;
    uint64_t *keep = written ? calloc(1, bytes) : NULL;
    uint64_t *unmapped = keep ? calloc(1, bytes) : NULL;
    if (!unmapped || kvm_vm_collect_begin(&sb->vm, dirty) < 0) {
        free(written);
        free(keep);
        free(unmapped);
        free(sb->diff_written); /* the next diff starts counting again */
        free(sb->diff_kept);
        sb->diff_written = sb->diff_kept = NULL;
        return kvm_vm_collect_dirty(&sb->vm, dirty);
    }
    memcpy(written, dirty, bytes);
    if (snap_sort_unmapped(sb, parent, dirty, unmapped, zero) >= 0) { /* on ENOMEM, all compared */
        *staged = may_stage && stage_claimed(sb, written, dirty, *zero, bytes / 8);
        if (!*staged)
            snap_drop_unchanged(sb, parent, dirty, *zero, sb->diff_kept);
    }
    /* Nothing changed again (an idle sandbox): all is re-armed, so the idle
     * diffs after this one compare nothing. */
    bool changed = false;
    for (size_t w = 0; w < bytes / 8 && !changed; w++)
        changed = dirty[w] != 0;
    *idle_before = sb->diff_idle_run; /* (a staged diff's, for after_staged) */
    sb->diff_idle_run = changed ? 0 : sb->diff_idle_run + 1;
    bool idle = sb->diff_idle_run >= IDLE_REARM_DIFFS;
    sb->diff_kept_epochs = idle ? 0 : choose_kept(sb, written, dirty, keep, bytes / 8);
    *kept = settle_kept(sb, written, unmapped, idle ? NULL : sb->vm.spare, keep);
    for (size_t w = 0; w < bytes / 8; w++)
        keep[w] = written[w] & ~keep[w]; /* now: the pages to re-arm */
    int err = kvm_vm_collect_end(&sb->vm, keep);
    free(keep);
    free(unmapped);
    free(sb->diff_written);
    sb->diff_written = NULL;
    if (err < 0) {
        free(written);
        free(*zero);
        *zero = NULL;
        if (*staged)
            snap_stage_unclaim(sb);
        *staged = false;
        return err;
    }
    sb->diff_written = written;
    return 0;
}

/* Whether sb's chain's diffs and a diff of `more` bytes over it would hold
 * a quarter of what sb maps (snapshot.h: full_if_chain_heavy). */
static bool chain_heavy(const struct sandbox *sb, uint64_t more) {
    for (const struct snapshot *s = sb->last_snap; s && s->parent; s = s->parent)
        more += s->dirty_bytes;
    return more >= sb->mm.mapped_bytes / 4;
}

/* A diff made a full snapshot, with a full image's home (the image store)
 * where one can be had, else the diff's memfd. */
static void become_full(struct snapshot *snap) {
    int diff_image = snap->image_fd;
    snap->mode = FJ_SNAP_FULL;
    snap->image_fd = -1;
    if (snapshot_make_image(snap) == 0) {
        close(diff_image);
        return;
    }
    if (snap->image_fd >= 0)
        close(snap->image_fd);
    snap->image_fd = diff_image;
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
    /* A staged last diff: its finishing (which takes no lock of the
     * sandbox's) ends soon. Failed, it is built on by nothing: this one
     * copies everything, as a first. */
    struct snapshot *last = sb->last_snap;
    bool last_failed = last && last->was_staged && fj_snapshot_wait(last, -1) < 0;
    bool diff = snap->mode == FJ_SNAP_DIFF && last && !last_failed;
    uint64_t kept, *zero;
    bool staged = diff && snap->may_stage && !snap->full_if_chain_heavy;
    uint32_t idle_before = 0;
    int err =
        collect_epoch(sb, diff ? sb->last_snap : NULL, dirty, &kept, &zero, &staged, &idle_before);
    if (err < 0) {
        free(dirty);
        return err;
    }
    uint64_t dirty_pages = 0;
    for (size_t i = 0; i < kvm_vm_bitmap_bytes(&sb->vm) / 8; i++)
        dirty_pages += (uint64_t)__builtin_popcountll(dirty[i]);
    snap->dirty_bytes = dirty_pages * FJ_PAGE_SIZE;
    snap->kept_bytes = kept * FJ_PAGE_SIZE;
    if (diff && snap->full_if_chain_heavy && chain_heavy(sb, snap->dirty_bytes)) {
        become_full(snap); /* the epoch is collected: a superset for the next diff */
        diff = false;
    }
    if (!diff) { /* a full image copies every page */
        free(zero);
        zero = NULL;
    }
    uint64_t t0 = fj_now_ns();
    if (diff) {
        snap->parent = snapshot_get(sb->last_snap);
        snap->delta = dirty;
        snap->zero = zero;
        dirty = NULL;
        snap->idle_run_before = idle_before;
        if (staged)
            snap_stage_copy(sb, snap); /* compared and written after the pause */
        else
            err = snap_copy_pages(sb, snap, snap->delta, snap->zero);
    } else if (snap->mode == FJ_SNAP_LIVE) {
        err = snap_copy_start_live(sb, snap, dirty);
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

/* sb->lineage_release: what this layer attached to a sandbox. */
void snapshot_release_lineage(struct sandbox *sb) {
    snap_copy_sandbox_gone(sb);
    free(sb->diff_written);
    free(sb->diff_kept);
    sb->diff_written = sb->diff_kept = NULL;
    if (sb->last_snap)
        fj_snapshot_release(sb->last_snap);
    hint_put(sb->hint);
    snap_stage_put(sb->stage);
    sb->stage = NULL;
}
