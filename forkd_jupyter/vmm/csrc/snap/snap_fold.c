/* Folding a diff snapshot's parent into it (fj_snapshot_fold_parent), so a
 * chain of per-cell checkpoints can drop its oldest link and free it. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/bitmap.h"
#include "snap/snap_ranges.h"
#include "snap/snapshot.h"
#include "api/vmm_api.h"
#include "api/snapshot_api.h"

static int fold_parent(struct snapshot *snap);

int fj_snapshot_fold_parent(fj_snapshot *snap)
{
    pthread_rwlock_wrlock(&snapshot_chains_lock); /* no staged diff compares through it meanwhile */
    int err = fold_parent(snap);
    pthread_rwlock_unlock(&snapshot_chains_lock);
    return err;
}

static int fold_parent(struct snapshot *snap)
{
    struct snapshot *p = snap->parent;
    if (!p || !snap->delta)
        return -EINVAL;
    if (atomic_load(&snap->status) != FJ_SNAP_READY || atomic_load(&p->status) != FJ_SNAP_READY)
        return -EBUSY;
    /* The parent's image takes this diff's pages. Nothing reads them there
     * any more: the caller guarantees no child of the parent runs and no
     * other snapshot builds on it, and every child of a later link wrote
     * these pages into its own private mapping when it was spawned. */
    uint64_t pages = snap->ram_bytes / FJ_PAGE_SIZE;
    for (uint64_t j, i = fj_bits_next_run(snap->delta, pages, 0, &j); i < pages;
         i = fj_bits_next_run(snap->delta, pages, j, &j)) {
        int err = snap_copy_file_range(p->image_fd, snap->image_fd, i * FJ_PAGE_SIZE,
                                       (j - i) * FJ_PAGE_SIZE);
        if (err < 0)
            return err; /* see snapshot_api.h: the parent must be dropped */
    }
    /* This snapshot now holds the merged image: the parent's pages (all of
     * RAM for a full parent, its own delta for a diff) plus its own. */
    int old_fd = snap->image_fd;
    snap->image_fd = p->image_fd;
    p->image_fd = old_fd;
    void *old_view = atomic_exchange(&snap->image_view, atomic_load(&p->image_view));
    atomic_store(&p->image_view, old_view);
    if (p->delta) {
        /* The parent's zero pages stay zero where this diff does not hold
         * them (without the parent's list, this one's alone: fewer pages
         * said zero is never wrong). */
        for (size_t w = 0; w < (pages + 63) / 64; w++) {
            if (snap->zero && p->zero)
                snap->zero[w] |= p->zero[w] & ~snap->delta[w];
            snap->delta[w] |= p->delta[w];
        }
    } else {
        free(snap->delta); /* standalone: its image is all of RAM */
        free(snap->zero);
        snap->delta = snap->zero = NULL;
    }
    snap->parent = p->parent ? snapshot_get(p->parent) : NULL;
    struct stat st;
    if (fstat(snap->image_fd, &st) == 0)
        snap->physical_bytes = (uint64_t)st.st_blocks * 512;
    fj_snapshot_release(p);
    return 0;
}
