/* The live copy's state, shared by snap_live.c (faults, the copier, the
 * hooks) and snap_live_image.c (writing the image, the stash). Private to
 * those two files. */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "snap/snap_copy.h"
#include "snap/snap_ranges.h"

/* Pages a guest write may leave in the stash (live_preserve_page): 2 MiB. */
#define STASH_PAGES 512

enum copier_phase { PHASE_PRE, PHASE_COPY, PHASE_STOP };

/* Failure injection, for tests only: FORKD_TEST_LIVE_COPY_FAIL, read when a
 * live snapshot starts, lists sites that then fail: "log" (growing the list
 * of pages written while arming, as on ENOMEM), "fault" (the copy made for a
 * guest write), "chunk" (the background copy), "discard" (the copy made
 * before the guest frees memory); the copies fail with EIO. "slow" fails
 * nothing: the background copy waits SLOW_CHUNK_US after each chunk, so the
 * guest's writes and frees reach pages before the copy does. */
enum { FAIL_LOG = 1, FAIL_FAULT = 2, FAIL_CHUNK = 4, FAIL_DISCARD = 8, SLOW_COPY = 16 };
#define SLOW_CHUNK_US 2000

/* Per sandbox. Invariants: lock guards phase, released, copied, the stash
 * and error; a page is read from guest RAM (into the image or the stash)
 * only while holding lock and only when its copied bit was clear, so each
 * page is copied exactly once, before the guest can change it; a stashed
 * page reaches the image before the snapshot is READY. Pages outside the
 * copy ranges held nothing at the pause (the image already reads zero
 * there) and are marked copied once the ranges are known. While phase is
 * PRE or COPY every page of guest RAM is either write-protected, logged in
 * released (PRE), or copied (COPY); a discard keeps that (discard_hook).
 * Any failure to copy or to log a page sets error, and a snapshot with an
 * error ends FAILED, never READY. */
struct snap_copier {
    struct sandbox *sb;
    int uffd;
    int quit_fd; /* an eventfd: the fault thread ends (fault_main) */
    _Atomic int faults_waiting; /* faults read and not yet served: the copier lets them go first */
    pthread_t thread;
    bool thread_running;
    pthread_mutex_t lock;
    /* Arming, against a discard replacing a range under it (a copy-on-write
     * child's fresh mapping must never be seen half-done). Taken before
     * lock when both are; arming does not take lock, so the guest's write
     * faults are served while a chunk is armed. */
    pthread_mutex_t arm_lock;
    enum copier_phase phase;
    uint64_t *released;
    size_t n_released, cap_released;
    struct snapshot *snap; /* reference held during the copy */
    uint64_t *copied;      /* bit per page; 1 outside the copy ranges */
    /* Bit per 2 MiB region of the image: its memory is prepared (by the
     * copier, ahead of its copy and without lock), so writing a page there
     * is quick. A guest write to a page whose region is not leaves the
     * page's pause-time content in the stash (copied bit set); the copier
     * writes the stash out before the snapshot is READY. */
    uint64_t *image_ready;
    uint8_t *image_map; /* the image, shared, while copying (live_prepare_image), or NULL */
    uint8_t *stash; /* STASH_PAGES pages, made once per copier, touched */
    uint64_t stash_gpa[STASH_PAGES];
    size_t n_stash;
    struct range *ranges;
    size_t n_ranges, next_range;
    /* A VM owning its RAM: the RAM file's data extents listed before
     * arming, and the pages written since (the dirty log taken in the
     * pause); a page with data at the pause is in one or the other. */
    struct range *pre;
    size_t n_pre;
    uint64_t *written;
    uint64_t next_off;
    uint64_t t0;
    char error[160]; /* first failure of the snapshot in flight, or "" */
    uint64_t held_max_ns, held_total_ns; /* guest writes held, from reading the fault to
                                            releasing it (the snapshot in flight) */
    int inject;      /* FAIL_* sites (tests only) */
};

/* snap_live_image.c */
void live_fail(struct snap_copier *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int live_copy_pending(struct snap_copier *c, uint64_t start, uint64_t end, int site);
void live_lock_after_faults(struct snap_copier *c);
int live_preserve_page(struct snap_copier *c, uint64_t gpa);
void live_prepare_image(struct snap_copier *c, uint64_t start, uint64_t end);
void live_flush_stash(struct snap_copier *c);
