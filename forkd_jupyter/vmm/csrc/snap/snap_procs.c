/* The other processes of a sandbox in its branches (snap_procs.h).
 *
 * Invariants: a carried process's snapshot shares the layer of its first
 * process's snapshot view and one fd clone with it, so descriptions the
 * processes shared (a pipe between them, a socket pair, an inherited file
 * with its offset) are shared again in the child; process ids, groups and
 * sessions are kept, so pidfds and waits name the same processes. */
#define _GNU_SOURCE
#include "snap/snap_procs.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "api/vmm_api.h"

#include "api/snapshot_api.h" /* after vmm_api.h: it uses fj_sandbox */
#include "core/proc.h"
#include "file/file_stdio.h"
#include "fs/fs_view.h"

/* A process of the table that still runs: neither ended nor a zombie. */
static bool runs(const struct sb_proc_slot *s) {
    return s->used && !s->reaped && !s->zombie && s->sb && !s->sb->exited;
}

int snap_procs_check(struct sandbox *first) {
    struct sb_procs *p = first->procs;
    unsigned alive = 0, others = 0;
    bool shares = false;
    for (unsigned i = 0; i < SB_MAX_PROCS; i++) {
        struct sandbox *sb = p->slot[i].sb;
        if (!runs(&p->slot[i]))
            continue;
        if (sb->vfork_parent || sb->vfork_children)
            return -EBUSY;
        alive++;
        others += sb != first;
        shares |= sb->vm.n_foreign > 0;
    }
    return shares && alive > 1 ? -EXDEV : (int)others;
}

void snap_procs_prepare(struct sandbox *first, struct snap_spare_images *spare) {
    struct sb_procs *p = first->procs;
    unsigned want = 0;
    pthread_mutex_lock(first->big_lock);
    for (unsigned i = 0; i < SB_MAX_PROCS; i++)
        want += runs(&p->slot[i]) && p->slot[i].sb != first;
    uint64_t ram_bytes = first->vm.ram_bytes; /* every process's VM has the first's size */
    pthread_mutex_unlock(first->big_lock);
    spare->n = 0;
    while (spare->n < want) {
        int fd = memfd_create("forkd-snapshot", MFD_CLOEXEC);
        if (fd < 0)
            break;
        if (ftruncate(fd, (off_t)ram_bytes) < 0) {
            close(fd);
            break;
        }
        spare->fd[spare->n++] = fd;
    }
}

void snap_procs_spare_close(struct snap_spare_images *spare) {
    while (spare->n)
        close(spare->fd[--spare->n]);
}

/* A process that ended whose host side is not done yet (sb_proc_ended has
 * not run: its files are still closing). */
static bool ending(const struct sb_proc_slot *s) {
    return s && s->used && !s->reaped && !s->zombie && s->sb && s->sb->exited;
}

/* The part of the table a child gets: processes alive or zombies. A
 * process ending (not captured: it no longer runs) is recorded as
 * sb_proc_ended will leave it: a zombie or nothing, its children orphans. */
static void capture_slots(struct sb_procs *p, struct snapshot *snap) {
    for (unsigned i = 0; i < SB_MAX_PROCS; i++) {
        const struct sb_proc_slot *s = &p->slot[i];
        if (!s->used || s->reaped)
            continue;
        bool orphan = ending(sb_proc_slot_of(p, s->ppid));
        if ((ending(s) && !sb_proc_leaves_zombie(s->sb)) || (orphan && s->zombie))
            continue;
        snap->slots[snap->n_slots++] = (struct snap_slot){
            .pid = s->pid,
            .ppid = orphan ? 1 : s->ppid,
            .pgid = s->pgid,
            .sid = s->sid,
            .zombie = s->zombie || ending(s),
            .wait_status = ending(s) ? sb_proc_wait_status(s->sb) : s->wait_status};
    }
}

static int capture_one(struct sandbox *sb, struct snapshot *snap, struct snapshot *ps,
                       struct fdt_clone_ctx *ctx, struct snapshot **replaced,
                       struct snap_spare_images *spare) {
    if (spare->n && ps->ram_bytes == sb->procs->first->vm.ram_bytes)
        ps->image_fd = spare->fd[--spare->n];
    int err = snapshot_capture_threads(sb, ps);
    if (err == 0 && !(ps->view = fs_view_share_as(snap->view, sb->view)))
        err = -ENOMEM;
    if (err == 0)
        err = snapshot_capture_state(sb, ps, ctx);
    if (err == 0)
        err = snapshot_capture_memory(sb, ps, replaced);
    if (err == 0)
        snapshot_finish(ps, FJ_SNAP_READY, NULL);
    return err;
}

int snap_procs_capture(struct sandbox *first, struct snapshot *snap, struct fdt_clone_ctx *ctx,
                       struct snapshot **replaced, struct snap_spare_images *spare) {
    struct sb_procs *p = first->procs;
    if (!sb_proc_others(first))
        return 0;
    snap->slots = calloc(SB_MAX_PROCS, sizeof(*snap->slots));
    snap->procs = calloc(SB_MAX_PROCS, sizeof(*snap->procs));
    if (!snap->slots || !snap->procs)
        return -ENOMEM;
    capture_slots(p, snap);
    for (unsigned i = 0; i < SB_MAX_PROCS; i++) {
        const struct sb_proc_slot *s = &p->slot[i];
        struct sandbox *sb = s->sb;
        if (!runs(s) || sb == first)
            continue;
        int mode = sb->last_snap ? FJ_SNAP_DIFF : FJ_SNAP_FULL;
        struct snapshot *ps = snapshot_alloc(mode, sb->vm.ram_bytes);
        if (!ps)
            return -ENOMEM;
        snap->procs[snap->n_procs] = ps;
        int err = capture_one(sb, snap, ps, ctx, &replaced[snap->n_procs], spare);
        snap->n_procs++;
        if (err < 0)
            return err;
        snap->logical_bytes += ps->logical_bytes;
        snap->dirty_bytes += ps->dirty_bytes;
    }
    return 0;
}

/* procs->drop_unstarted: the restored processes whose threads never
 * started are freed with the first. */
static void drop_unstarted(struct sandbox *first) {
    struct sb_procs *p = first->procs;
    for (unsigned i = 0; i < SB_MAX_PROCS; i++) {
        struct sandbox *c = p->slot[i].sb;
        if (c && c != first && sb_proc_unstarted(c)) {
            memset(&p->slot[i], 0, sizeof(p->slot[i]));
            c->procs = NULL;
            sandbox_free(c);
        }
    }
}

static int spawn_one(struct sandbox *first, struct snapshot *ps, struct fdt_clone_ctx *ctx) {
    struct sb_procs *p = first->procs;
    struct sb_proc_slot *s = sb_proc_slot_of(p, ps->pid);
    if (!s || s->sb)
        return -EINVAL;
    int err;
    struct sandbox *c = sandbox_alloc(first->ctl_host_fd, &err);
    if (!c)
        return err;
    /* In the table from here: sandbox_free of the first frees it with the
     * others that never started. */
    s->sb = c;
    c->procs = p;
    c->big_lock = &p->lock;
    c->parent = first;
    c->pid = ps->pid;
    c->threads[0]->tid = ps->pid;
    memcpy(c->exe_path, ps->exe_path, sizeof(c->exe_path));
    c->lineage_release = snapshot_release_lineage;
    if ((err = snapshot_restore_process(c, ps)) < 0)
        return err;
    if (!(c->view = fs_view_share_as(first->view, ps->view)))
        return -ENOMEM;
    if ((err = fdt_clone_with(&c->fdt, &ps->fdt, ctx)) < 0)
        return err;
    file_stdio_attach_ctl(&c->fdt, c->ctl_host_fd);
    c->last_snap = snapshot_get(ps); /* its first diff builds on it */
    return 0;
}

int snap_procs_spawn(struct sandbox *first, struct snapshot *snap, struct fdt_clone_ctx *ctx) {
    struct sb_procs *p = first->procs;
    if (!snap->n_slots)
        return 0;
    memset(p->slot, 0, sizeof(p->slot));
    p->drop_unstarted = drop_unstarted;
    for (uint32_t i = 0; i < snap->n_slots; i++) {
        const struct snap_slot *s = &snap->slots[i];
        p->slot[i] = (struct sb_proc_slot){.sb = s->pid == first->pid ? first : NULL,
                                           .pid = s->pid,
                                           .ppid = s->ppid,
                                           .pgid = s->pgid,
                                           .sid = s->sid,
                                           .used = true,
                                           .zombie = s->zombie,
                                           .wait_status = s->wait_status};
    }
    for (uint32_t i = 0; i < snap->n_procs; i++) {
        int err = spawn_one(first, snap->procs[i], ctx);
        if (err < 0)
            return err;
    }
    return 0;
}
