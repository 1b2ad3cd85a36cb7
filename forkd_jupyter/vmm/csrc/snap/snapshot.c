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

#include "file/file_stdio.h"
#include "fs/fs_memfs.h"
#include "fs/fs_view.h"
#include "kvm/kvm_cpu.h"
#include "snap/snap_copy.h"
#include "snap/snap_hint.h"
#include "api/vmm_api.h"
#include "api/snapshot_api.h"

/* Diff runs at least this long are mapped into a child, shorter ones copied
 * (fewer mappings: the daemon holds every child in one address space). */
#define MAP_RUN_MIN (4ULL << 20)

/* The per-thread part of signal state: mask and alternate stack. */
static void copy_thread_signals(struct sb_signals *dst, const struct sb_signals *src)
{
    dst->blocked = src->blocked;
    dst->altstack_sp = src->altstack_sp;
    dst->altstack_size = src->altstack_size;
    dst->altstack_flags = src->altstack_flags;
}

/* Every thread's registers, saved when it parked for this pause. Pending
 * signals belong to the source and stay there. */
static int capture_threads(struct sandbox *sb, struct snapshot *snap)
{
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
    snap->next_tid = sb->next_tid;
    snap->threads = calloc(LAYOUT_MAX_VCPUS, sizeof(*snap->threads));
    if (!snap->threads)
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

/* VMM state: address space, signals, files and the writable layer. */
static int capture_vmm_state(struct sandbox *sb, struct snapshot *snap)
{
    int err = mm_clone(&snap->mm, &sb->mm, NULL);
    if (err < 0)
        return err;
    snap->pid = sb->pid;
    memcpy(snap->exe_path, sb->exe_path, sizeof(snap->exe_path));
    if (!(snap->view = fs_view_clone(sb->view)))
        return -ENOMEM;
    if ((err = fdt_clone(&snap->fdt, &sb->fdt, snap->view)) < 0)
        return err;
    memfs_drop_clone_holds(fs_view_layer(snap->view));
    snap->logical_bytes = sb->mm.mapped_bytes;
    return 0;
}

static void *release_main(void *snap)
{
    fj_snapshot_release(snap);
    return NULL;
}

/* Drops a reference off the caller's path: the last one frees an image,
 * which returns its memory to the host and can take a while. */
static void release_in_background(struct snapshot *snap)
{
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
};

/* Runs with every vCPU parked: everything of the snapshot that must be of
 * the pause instant. */
static int capture(struct sandbox *sb, void *p)
{
    struct capture_args *args = p;
    struct snapshot *snap = args->snap;
    if (sb->exited)
        return -ESRCH;
    int err = capture_threads(sb, snap);
    if (err == 0)
        err = capture_vmm_state(sb, snap);
    if (err < 0)
        return err;
    snap->image_fd = memfd_create("forkd-snapshot", MFD_CLOEXEC);
    if (snap->image_fd < 0 || ftruncate(snap->image_fd, (off_t)snap->ram_bytes) < 0)
        return -errno;
    /* Every snapshot starts a new dirty epoch; a diff keeps what the last
     * one recorded and builds on the sandbox's previous snapshot. */
    uint64_t *dirty = calloc(1, kvm_vm_bitmap_bytes(&sb->vm));
    if (!dirty)
        return -ENOMEM;
    if ((err = kvm_vm_collect_dirty(&sb->vm, dirty)) < 0) {
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
        args->replaced = sb->last_snap;
        sb->last_snap = snapshot_get(snap);
    }
    if (snap->mode != FJ_SNAP_LIVE)
        snap->copy_ns = fj_now_ns() - t0;
    return err;
}

/* sb->lineage_release: what this layer attached to a sandbox. */
static void release_lineage(struct sandbox *sb)
{
    snap_copy_sandbox_gone(sb);
    if (sb->last_snap)
        fj_snapshot_release(sb->last_snap);
    hint_put(sb->hint);
}

int fj_sandbox_snapshot(fj_sandbox *sb, int mode, fj_snapshot **out)
{
    *out = NULL;
    if (mode != FJ_SNAP_FULL && mode != FJ_SNAP_DIFF && mode != FJ_SNAP_LIVE)
        return -EINVAL;
    if (sb->exited)
        return -ESRCH;
    struct snapshot *snap = snapshot_alloc(mode, sb->vm.ram_bytes);
    if (!snap)
        return -ENOMEM;
    sb->lineage_release = release_lineage;
    if (mode == FJ_SNAP_LIVE) {
        int err = snap_copy_prepare_live(sb, snap);
        if (err < 0) {
            fj_snapshot_release(snap);
            return err;
        }
    }
    struct capture_args args = {snap, NULL};
    struct sb_pause_job job = {.fn = capture, .arg = &args};
    int err = sb_run_paused(sb, &job);
    snap->pause_ns = job.resumed_ns - job.stopped_ns;
    if (args.replaced)
        release_in_background(args.replaced);
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

/* Places pages [p, q) of a layer's image into the child's RAM. A long run
 * is mapped copy-on-write from the layer instead of copied: spawning from a
 * checkpoint after a cell that wrote GiBs costs a mapping, not a copy. */
static int place_run(const struct snapshot *layer, struct kvm_vm *vm, uint64_t p, uint64_t q)
{
    uint64_t off = p * FJ_PAGE_SIZE, len = (q - p) * FJ_PAGE_SIZE;
    if (len >= MAP_RUN_MIN &&
        mmap(vm->ram + off, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE,
             layer->image_fd, (off_t)off) != MAP_FAILED)
        return 0;
    while (len) { /* a direct write: the child's own dirty epoch starts empty */
        ssize_t r = pread(layer->image_fd, vm->ram + off, len, (off_t)off);
        if (r <= 0)
            return r < 0 ? -errno : -EIO;
        off += (uint64_t)r;
        len -= (uint64_t)r;
    }
    return 0;
}

int snapshot_map_memory(struct snapshot *snap, struct kvm_vm *vm)
{
    /* Newest layer first; each page comes from the newest layer holding it
     * (placed: the pages already there), so a page rewritten by every cell
     * is placed once, not once per layer. Pages no layer holds stay the
     * chain's full image, mapped below. What a child reads never changes
     * under it: a fold writes only into an older image pages a newer layer
     * holds, and the child took those from the newer layer (snap_fold.c). */
    if (!snap->parent)
        return 0; /* the full image is the mapping itself */
    uint64_t pages = snap->ram_bytes / FJ_PAGE_SIZE, words = (pages + 63) / 64;
    uint64_t *placed = calloc(words, sizeof(*placed));
    if (!placed)
        return -ENOMEM;
    int err = 0;
    for (const struct snapshot *layer = snap; layer->parent && err == 0; layer = layer->parent) {
        for (uint64_t p = 0; p < pages && err == 0;) {
            uint64_t want = layer->delta[p / 64] & ~placed[p / 64];
            if (!(want >> (p % 64))) {
                p = FJ_ALIGN_UP(p + 1, 64); /* nothing more in this word */
                continue;
            }
            if (!(want >> (p % 64) & 1)) {
                p++;
                continue;
            }
            uint64_t q = p;
            while (q < pages && (layer->delta[q / 64] & ~placed[q / 64]) >> (q % 64) & 1)
                q++;
            err = place_run(layer, vm, p, q);
            p = q;
        }
        for (uint64_t w = 0; w < words; w++)
            placed[w] |= layer->delta[w];
    }
    free(placed);
    return err;
}

static struct snapshot *chain_root(struct snapshot *snap)
{
    while (snap->parent)
        snap = snap->parent;
    return snap;
}

int fj_sandbox_learn_working_set(fj_sandbox *sb)
{
    return hint_learn(sb->hint, &sb->vm);
}

/* The threads of a child (not started: fj_sandbox_run starts them). */
static int restore_threads(struct sandbox *sb, const struct snapshot *snap)
{
    struct sb_thread *main_thread = sb->threads[0];
    main_thread->tid = snap->pid;
    sb->next_tid = snap->next_tid ? snap->next_tid : snap->pid + 1;
    sb->sig = snap->sig;
    copy_thread_signals(&main_thread->sig, &snap->sig);
    for (uint32_t i = 0; i < snap->n_threads; i++) {
        const struct snap_thread *st = &snap->threads[i];
        struct sb_thread *t = sb_thread_add(sb, st->id);
        if (!t)
            return -EINVAL;
        int err;
        if ((err = kvm_vcpu_create(&sb->vm, st->id, t->cpu)) < 0 || (err = kvm_cpu_setup_vcpu(&sb->vm, t->cpu)) < 0 ||
            (err = kvm_state_restore(t->cpu, &st->cpu)) < 0)
            return err;
        t->tid = st->tid;
        t->sig = st->sig;
        t->clear_child_tid = st->clear_child_tid;
        t->robust_list = st->robust_list;
        t->state = SB_T_NEW;
        sb->live_threads++;
    }
    return 0;
}

int fj_snapshot_spawn(fj_snapshot *snap, int ctl_fd, fj_sandbox **out)
{
    *out = NULL;
    int err = 0;
    for (struct snapshot *s = snap; s && err == 0; s = s->parent)
        err = fj_snapshot_wait(s, -1); /* never map a half-written image */
    if (err < 0)
        return err;
    struct sandbox *sb = sandbox_alloc(ctl_fd, &err);
    if (!sb)
        return err;
    sb->lineage_release = release_lineage;
    sb->pid = snap->pid;
    memcpy(sb->exe_path, snap->exe_path, sizeof(sb->exe_path));
    if ((err = kvm_vm_create_cow(&sb->vm, snap->ram_bytes, chain_root(snap)->image_fd)) < 0 ||
        (err = snapshot_map_memory(snap, &sb->vm)) < 0)
        goto fail;
    sb->hint = hint_get(snap->hint);
    hint_prefault(sb->hint, &sb->vm);
    if ((err = kvm_cpu_prepare(&sb->vm)) < 0 ||
        (err = kvm_state_restore(&sb->vm.vcpu, &snap->cpu)) < 0 ||
        (err = restore_threads(sb, snap)) < 0 ||
        (err = mm_clone(&sb->mm, &snap->mm, &sb->vm)) < 0)
        goto fail;
    if (!(sb->view = fs_view_clone(snap->view))) {
        err = -ENOMEM;
        goto fail;
    }
    if ((err = fdt_clone(&sb->fdt, &snap->fdt, sb->view)) < 0)
        goto fail;
    memfs_drop_clone_holds(fs_view_layer(sb->view));
    file_stdio_attach_ctl(&sb->fdt, sb->ctl_host_fd);
    sb->last_snap = snapshot_get(snap); /* a child's first diff builds on its origin */
    *out = sb;
    return 0;
fail:
    sandbox_free(sb);
    return err;
}
