/* Writing the live copy's image (snap_live.h): pages copied from guest
 * RAM, the stash of pages the guest is about to change, and the image's
 * 2 MiB regions made ready ahead of the copy (docs/snapshots.md, "What the
 * running cell feels: stall", fresh image memory); the copier's lock, which
 * faults read take first. snap_live.c calls here, never the other way. */
#define _GNU_SOURCE
#include "snap/snap_live.h"

#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/bitmap.h"

/* Records the snapshot's first failure. lock held. */
void live_fail(struct snap_copier *c, const char *fmt, ...)
{
    if (c->error[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->error, sizeof(c->error), fmt, ap);
    va_end(ap);
}

/* Copies the not-yet-copied pages of [start, end) to the image. lock held.
 * site: the FAIL_* site calling (failure injection). */
int live_copy_pending(struct snap_copier *c, uint64_t start, uint64_t end, int site)
{
    uint64_t n = end / FJ_PAGE_SIZE;
    for (uint64_t p = fj_bits_find(c->copied, n, start / FJ_PAGE_SIZE, false); p < n;) {
        uint64_t q = fj_bits_find(c->copied, n, p, true);
        fj_bits_set(c->copied, p, q);
        int err = c->inject & site ? -EIO
                                   : snap_write_image(c->snap->image_fd, c->sb->vm.ram + p * FJ_PAGE_SIZE,
                                                      p * FJ_PAGE_SIZE, (q - p) * FJ_PAGE_SIZE);
        if (err < 0)
            return err;
        p = fj_bits_find(c->copied, n, q, false);
    }
    return 0;
}

/* The copier takes lock again and again with short breaks; a mutex does
 * not hand itself to a waiter, so a fault read meanwhile could wait for
 * many of the copier's steps. The copier yields to it before each step. */
void live_lock_after_faults(struct snap_copier *c)
{
    while (atomic_load(&c->faults_waiting))
        sched_yield();
    pthread_mutex_lock(&c->lock);
}

/* Keeps the pause-time content of page gpa before the guest changes it.
 * lock held. Writing it to a region of the image not prepared yet would
 * clear 2 MiB there while the writer waits (live_prepare_image); the stash
 * takes a copy in memory instead. */
int live_preserve_page(struct snap_copier *c, uint64_t gpa)
{
    uint64_t p = gpa / FJ_PAGE_SIZE;
    if (fj_bit_test(c->copied, p))
        return 0;
    uint64_t region = gpa / FJ_HUGE_SIZE;
    bool ready = fj_bit_test(c->image_ready, region);
    if (ready || c->n_stash == STASH_PAGES || (c->inject & FAIL_FAULT))
        return live_copy_pending(c, gpa, gpa + FJ_PAGE_SIZE, FAIL_FAULT);
    memcpy(c->stash + c->n_stash * FJ_PAGE_SIZE, c->sb->vm.ram + gpa, FJ_PAGE_SIZE);
    c->stash_gpa[c->n_stash++] = gpa;
    fj_bit_set(c->copied, p);
    return 0;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* Makes the image's memory for [start, end) ready to be written quickly,
 * whole 2 MiB regions, without lock (only the copier thread marks regions
 * ready): the first write to an image page clears it, and a 2 MiB page took
 * ~6 ms to clear on a loaded host. Populating through a shared mapping of
 * the image clears what has no data yet and keeps what has (pages written
 * by the discard hook). Where that fails the region is only marked: writes
 * there clear it as before. */
void live_prepare_image(struct snap_copier *c, uint64_t start, uint64_t end)
{
    uint64_t ram = c->sb->vm.ram_bytes;
    if (!c->image_map) {
        c->image_map = mmap(NULL, ram, PROT_READ | PROT_WRITE, MAP_SHARED, c->snap->image_fd, 0);
        if (c->image_map == MAP_FAILED)
            c->image_map = NULL;
    }
    for (uint64_t r = start / FJ_HUGE_SIZE; r * FJ_HUGE_SIZE < end; r++) {
        if (fj_bit_test(c->image_ready, r))
            continue;
        uint64_t at = r * FJ_HUGE_SIZE;
        if (c->image_map)
            (void)madvise(c->image_map + at, FJ_MIN(FJ_HUGE_SIZE, ram - at), MADV_POPULATE_WRITE);
        live_lock_after_faults(c);
        fj_bit_set(c->image_ready, r);
        pthread_mutex_unlock(&c->lock);
    }
}

/* Writes the stash to the image, the regions its pages fall in prepared
 * first with lock dropped (faults add to the stash meanwhile, never while
 * the stash is written). */
void live_flush_stash(struct snap_copier *c)
{
    live_lock_after_faults(c);
    for (size_t i = 0; i < c->n_stash; i++) {
        uint64_t gpa = c->stash_gpa[i], r = gpa / FJ_HUGE_SIZE;
        if (fj_bit_test(c->image_ready, r))
            continue;
        pthread_mutex_unlock(&c->lock);
        live_prepare_image(c, gpa, gpa + FJ_PAGE_SIZE);
        live_lock_after_faults(c);
    }
    for (size_t i = 0; i < c->n_stash; i++) {
        int err = snap_write_image(c->snap->image_fd, c->stash + i * FJ_PAGE_SIZE, c->stash_gpa[i],
                                   FJ_PAGE_SIZE);
        if (err < 0)
            live_fail(c, "writing the image failed: %s", strerror(-err));
    }
    c->n_stash = 0;
    pthread_mutex_unlock(&c->lock);
}
