/* Where snapshot images live (snapshot.h: snapshot_make_image). */
#define _GNU_SOURCE
#include "snap/snapshot.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "api/vmm_api.h"

#include "api/snapshot_api.h" /* after vmm_api.h, whose types it uses */

/* The image store's directory (fj_snapshot_image_store), or -1. Set once
 * before the first snapshot in practice; read without a lock (an int). */
static int store_fd = -1;

int fj_snapshot_image_store(int dir_fd) {
    int fd = -1;
    if (dir_fd >= 0 && (fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 3)) < 0)
        return -errno;
    int old = __atomic_exchange_n(&store_fd, fd, __ATOMIC_ACQ_REL);
    if (old >= 0)
        close(old);
    return 0;
}

/* A file of the store, or -1 (none, or full: a memfd serves instead).
 * Unlinked at once, it lasts as long as its descriptors and mappings, whose
 * name (in /proc/PID/maps) says what it is, as a memfd's would. */
static int store_file(void) {
    static uint64_t made;
    int dir = __atomic_load_n(&store_fd, __ATOMIC_ACQUIRE);
    if (dir < 0)
        return -1;
    char name[64];
    snprintf(name, sizeof(name), "forkd-snapshot.%llu",
             (unsigned long long)__atomic_fetch_add(&made, 1, __ATOMIC_RELAXED));
    int fd = openat(dir, name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0)
        unlinkat(dir, name, 0);
    return fd;
}

int snapshot_make_image(struct snapshot *snap) {
    if (snap->image_fd >= 0)
        return 0;
    /* A full image is what children read most; in the store it is held in
     * 2 MiB pages the children map (and KVM maps) whole. Diffs are small
     * and scattered: a memfd. */
    snap->image_fd = snap->mode == FJ_SNAP_DIFF ? -1 : store_file();
    if (snap->image_fd < 0)
        snap->image_fd = memfd_create("forkd-snapshot", MFD_CLOEXEC);
    if (snap->image_fd < 0 || ftruncate(snap->image_fd, (off_t)snap->ram_bytes) < 0)
        return -errno;
    return 0;
}

bool snapshot_image_is_own(const struct snapshot *snap) {
    return fcntl(snap->image_fd, F_GET_SEALS) >= 0; /* answered for a memfd only */
}

/* Views mapped in this process, and the most it keeps mapped: each is a
 * mapping of the process, which the host limits (65,530); beyond the cap
 * a layer's pages are read instead. */
#define IMAGE_VIEWS_MAX 8192
static _Atomic unsigned image_views_live;

const uint8_t *snapshot_image_view(const struct snapshot *snap) {
    struct snapshot *m = (struct snapshot *)snap; /* image_view alone is set, once */
    void *v = atomic_load(&m->image_view);
    if (v)
        return v == MAP_FAILED ? NULL : v;
    if (atomic_load(&image_views_live) >= IMAGE_VIEWS_MAX)
        return NULL; /* (mapped later, when views are freed) */
    v = !snapshot_image_is_own(snap)
            ? MAP_FAILED
            : mmap(NULL, snap->ram_bytes, PROT_READ, MAP_SHARED, snap->image_fd, 0);
    void *none = NULL;
    if (!atomic_compare_exchange_strong(&m->image_view, &none, v)) {
        if (v != MAP_FAILED) /* another thread mapped it first */
            munmap(v, snap->ram_bytes);
        v = none;
    } else if (v != MAP_FAILED) {
        atomic_fetch_add(&image_views_live, 1);
    }
    return v == MAP_FAILED ? NULL : v;
}

void snapshot_image_view_drop(struct snapshot *snap) {
    void *v = atomic_exchange(&snap->image_view, NULL);
    if (v && v != MAP_FAILED) {
        munmap(v, snap->ram_bytes);
        atomic_fetch_sub(&image_views_live, 1);
    }
}
