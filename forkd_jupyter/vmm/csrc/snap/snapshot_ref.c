/* The snapshot object (snapshot.h): references, status, waiting for the
 * image. Taking snapshots and spawning from them is snapshot.c; the copy
 * that finishes a live snapshot (snap_copy.c) calls only this file. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs/fs_view.h"
#include "snap/snap_hint.h"
#include "snap/snapshot.h"
#include "api/vmm_api.h"
#include "api/snapshot_api.h"

pthread_rwlock_t snapshot_chains_lock = PTHREAD_RWLOCK_INITIALIZER;

struct snapshot *snapshot_get(struct snapshot *snap)
{
    atomic_fetch_add(&snap->refs, 1);
    return snap;
}

/* The other processes of snap (snap_procs.h): their files and views first
 * (they refer to the layer of snap's view, which goes with snap), then their
 * snapshots, whose memory may live on as a diff base. */
static void release_procs(struct snapshot *snap)
{
    for (uint32_t i = 0; i < snap->n_procs; i++) {
        struct snapshot *ps = snap->procs[i];
        if (!ps)
            continue;
        fdt_destroy(&ps->fdt);
        if (ps->view)
            fs_view_free(ps->view);
        ps->view = NULL;
        fj_snapshot_release(ps);
    }
    free(snap->procs);
    free(snap->slots);
}

void fj_snapshot_release(fj_snapshot *snap)
{
    if (!snap || atomic_fetch_sub(&snap->refs, 1) > 1)
        return;
    /* The last reference: no copier can be running (it holds a reference).
     * The other processes' files and views refer to this view's layer. */
    release_procs(snap);
    fdt_destroy(&snap->fdt);
    hint_put(snap->hint);
    free(snap->delta);
    free(snap->zero);
    free(snap->threads);
    free(snap->names);
    if (snap->parent)
        fj_snapshot_release(snap->parent);
    if (snap->view)
        fs_view_free(snap->view);
    mm_destroy(&snap->mm);
    snapshot_image_view_drop(snap);
    if (snap->image_fd >= 0)
        close(snap->image_fd);
    pthread_mutex_destroy(&snap->lock);
    pthread_cond_destroy(&snap->cond);
    free(snap);
}

static void *release_main(void *snap)
{
    fj_snapshot_release(snap);
    return NULL;
}

bool snapshot_run_detached(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    bool made = pthread_create(&t, &attr, fn, arg) == 0;
    pthread_attr_destroy(&attr);
    return made;
}

/* Drops a reference off the caller's path: the last one frees an image,
 * which returns its memory to the host and can take a while. */
void snapshot_release_in_background(struct snapshot *snap)
{
    if (!snapshot_run_detached(release_main, snap))
        fj_snapshot_release(snap);
}

void snapshot_finish(struct snapshot *snap, int status, const char *error)
{
    pthread_mutex_lock(&snap->lock);
    if (error)
        snprintf(snap->error, sizeof(snap->error), "%s", error);
    struct stat st;
    if (snap->image_fd >= 0 && fstat(snap->image_fd, &st) == 0)
        snap->physical_bytes = (uint64_t)st.st_blocks * 512;
    atomic_store(&snap->status, status);
    pthread_cond_broadcast(&snap->cond);
    pthread_mutex_unlock(&snap->lock);
}

struct snapshot *snapshot_alloc(int mode, uint64_t ram_bytes)
{
    struct snapshot *snap = calloc(1, sizeof(*snap));
    if (!snap)
        return NULL;
    atomic_init(&snap->refs, 1);
    atomic_init(&snap->status, FJ_SNAP_WRITING);
    snap->mode = mode;
    snap->ram_bytes = ram_bytes;
    snap->image_fd = -1;
    pthread_mutex_init(&snap->lock, NULL);
    pthread_cond_init(&snap->cond, NULL);
    return snap;
}

int fj_snapshot_get_info(fj_snapshot *snap, struct fj_snapshot_info *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&snap->lock);
    out->mode = snap->mode;
    out->status = atomic_load(&snap->status);
    out->pause_ms = (double)snap->pause_ns / 1e6;
    out->copy_ms = (double)snap->copy_ns / 1e6;
    out->stall_ms = (double)FJ_MAX(snap->pause_ns, snap->held_max_ns) / 1e6;
    out->stall_total_ms = (double)(snap->pause_ns + snap->held_total_ns) / 1e6;
    out->logical_bytes = snap->logical_bytes;
    out->physical_bytes = snap->physical_bytes;
    out->dirty_bytes = snap->dirty_bytes;
    out->kept_bytes = snap->kept_bytes;
    out->staged = snap->was_staged;
    memcpy(out->error, snap->error, sizeof(out->error));
    pthread_mutex_unlock(&snap->lock);
    return 0;
}

int fj_snapshot_wait(fj_snapshot *snap, int64_t timeout_ns)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    if (timeout_ns >= 0) {
        deadline.tv_sec += timeout_ns / 1000000000;
        deadline.tv_nsec += timeout_ns % 1000000000;
        if (deadline.tv_nsec >= 1000000000) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000;
        }
    }
    snapshot_get(snap); /* the writer's release may come while this waits */
    pthread_mutex_lock(&snap->lock);
    int r = 0;
    while (atomic_load(&snap->status) == FJ_SNAP_WRITING && r == 0)
        r = timeout_ns < 0 ? pthread_cond_wait(&snap->cond, &snap->lock)
                           : pthread_cond_timedwait(&snap->cond, &snap->lock, &deadline);
    int status = atomic_load(&snap->status);
    pthread_mutex_unlock(&snap->lock);
    fj_snapshot_release(snap);
    if (status == FJ_SNAP_READY)
        return 0;
    return status == FJ_SNAP_FAILED ? -EIO : -ETIMEDOUT;
}

struct snapshot *snapshot_chain_root(struct snapshot *snap)
{
    while (snap->parent)
        snap = snap->parent;
    return snap;
}
