/* Diffs staged in their pause and finished after it (snap_stage.h). */
#define _GNU_SOURCE
#include "snap/snap_stage.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "snap/snapshot.h"

#include "api/vmm_api.h"

#include "api/snapshot_api.h" /* after vmm_api.h, whose types it uses */

#include "lib/bitmap.h"
#include "lib/fj.h"
#include "snap/snap_ranges.h"
#include "snap/snap_unchanged.h"

struct snap_stage {
    _Atomic int refs;
    /* 1 while a pause fills it, a diff's finishing reads it or a growth
     * replaces it; whoever set it clears it. */
    _Atomic int busy;
    _Atomic int growing; /* a growth thread runs */
    uint8_t *mem;        /* cap pages, populated */
    uint64_t *pages;     /* the guest page each staged copy is of, ascending */
    uint32_t cap, n;
    _Atomic uint32_t want; /* pages a diff that did not fit asked for */
};

static void stage_free_memory(uint8_t *mem, uint64_t *pages, uint32_t cap) {
    if (mem)
        munmap(mem, (size_t)cap * FJ_PAGE_SIZE);
    free(pages);
}

void snap_stage_put(struct snap_stage *stage) {
    if (!stage || atomic_fetch_sub(&stage->refs, 1) != 1)
        return;
    stage_free_memory(stage->mem, stage->pages, stage->cap);
    free(stage);
}

static void ask_for(struct snap_stage *st, uint64_t pages) {
    uint32_t want = (uint32_t)FJ_MIN(2 * pages, (uint64_t)STAGE_MAX_PAGES); /* room to grow */
    if (want > atomic_load(&st->want))
        atomic_store(&st->want, want);
}

bool snap_stage_claim(struct sandbox *sb, uint64_t pages) {
    if (pages == 0 || pages > STAGE_MAX_PAGES)
        return false;
    if (!sb->stage) {
        struct snap_stage *st = calloc(1, sizeof(*st));
        if (!st)
            return false;
        atomic_init(&st->refs, 1);
        sb->stage = st;
    }
    struct snap_stage *st = sb->stage;
    int idle = 0;
    if (!atomic_compare_exchange_strong(&st->busy, &idle, 1))
        return false;
    if (pages > st->cap) {
        ask_for(st, pages);
        atomic_store(&st->busy, 0);
        return false;
    }
    return true;
}

void snap_stage_unclaim(struct sandbox *sb) { atomic_store(&sb->stage->busy, 0); }

void snap_stage_copy(struct sandbox *sb, struct snapshot *snap) {
    struct snap_stage *st = sb->stage;
    uint64_t total = sb->vm.ram_bytes / FJ_PAGE_SIZE;
    uint32_t n = 0;
    for (uint64_t w = 0; w < (total + 63) / 64; w++) {
        uint64_t bits = snap->delta[w] & (snap->zero ? ~snap->zero[w] : ~0ULL);
        for (; bits; bits &= bits - 1) {
            uint64_t p = w * 64 + (uint64_t)__builtin_ctzll(bits);
            memcpy(st->mem + (size_t)n * FJ_PAGE_SIZE, sb->vm.ram + p * FJ_PAGE_SIZE, FJ_PAGE_SIZE);
            st->pages[n++] = p; /* (claimed: n stays within cap) */
        }
    }
    st->n = n;
    atomic_fetch_add(&st->refs, 1);
    snap->staged = st;
    snap->was_staged = true;
}

/* Compares the staged copies with the chain, writes the changed ones into
 * the image and makes the diff READY (or FAILED). */
static void finish(struct snapshot *snap) {
    struct snap_stage *st = snap->staged;
    uint64_t t0 = fj_now_ns();
    pthread_rwlock_rdlock(&snapshot_chains_lock);
    int64_t dropped = snap_drop_unchanged_staged(snap->parent, snap->ram_bytes, snap->delta,
                                                 st->pages, st->n, st->mem);
    int err = 0;
    for (uint32_t i = 0, j; i < st->n && err == 0; i = j) {
        j = i + 1;
        if (!fj_bit_test(snap->delta, st->pages[i]))
            continue;
        while (j < st->n && st->pages[j] == st->pages[j - 1] + 1 &&
               fj_bit_test(snap->delta, st->pages[j]))
            j++;
        err = snap_write_image(snap->image_fd, st->mem + (size_t)i * FJ_PAGE_SIZE,
                               st->pages[i] * FJ_PAGE_SIZE, (uint64_t)(j - i) * FJ_PAGE_SIZE);
    }
    pthread_rwlock_unlock(&snapshot_chains_lock);
    snap->staged = NULL;
    st->n = 0;
    atomic_store(&st->busy, 0);
    snap_stage_put(st);
    bool any = false;
    for (uint64_t w = 0; w < (snap->ram_bytes / FJ_PAGE_SIZE + 63) / 64 && !any; w++)
        any = snap->delta[w] != 0;
    pthread_mutex_lock(&snap->lock);
    snap->changed_nothing = !any;
    snap->dirty_bytes -= (uint64_t)dropped * FJ_PAGE_SIZE;
    snap->copy_ns += fj_now_ns() - t0;
    pthread_mutex_unlock(&snap->lock);
    char why[96];
    if (err < 0)
        snprintf(why, sizeof(why), "writing the diff's image: %s", strerror(-err));
    snapshot_finish(snap, err < 0 ? FJ_SNAP_FAILED : FJ_SNAP_READY, err < 0 ? why : NULL);
}

static void *finish_main(void *arg) {
    finish(arg);
    fj_snapshot_release(arg);
    return NULL;
}

void snap_stage_finish_later(struct snapshot *snap) {
    snapshot_get(snap);
    if (!snapshot_run_detached(finish_main, snap))
        finish_main(snap);
}

/* New memory of want pages, populated outside any pause (fresh memory
 * costs ~2-3 us a page here: the reason for a stage), then swapped in
 * when the stage is free. */
static void *grow_main(void *arg) {
    struct snap_stage *st = arg;
    uint32_t want = atomic_load(&st->want);
    size_t bytes = (size_t)want * FJ_PAGE_SIZE;
    uint8_t *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint64_t *pages = mem != MAP_FAILED ? malloc(want * sizeof(*pages)) : NULL;
    if (pages && madvise(mem, bytes, MADV_POPULATE_WRITE) < 0) {
        free(pages);
        pages = NULL;
    }
    if (!pages) {
        if (mem != MAP_FAILED)
            munmap(mem, bytes);
    } else {
        for (int idle = 0; !atomic_compare_exchange_weak(&st->busy, &idle, 1); idle = 0)
            usleep(100); /* a diff's finishing: a few milliseconds at most */
        uint8_t *old_mem = st->mem;
        uint64_t *old_pages = st->pages;
        uint32_t old_cap = st->cap;
        st->mem = mem;
        st->pages = pages;
        st->cap = want;
        atomic_store(&st->busy, 0);
        stage_free_memory(old_mem, old_pages, old_cap);
    }
    atomic_store(&st->growing, 0);
    snap_stage_put(st);
    return NULL;
}

void snap_stage_grow_later(struct sandbox *sb) {
    struct snap_stage *st = sb->stage;
    int no = 0;
    if (!st || atomic_load(&st->want) <= st->cap ||
        !atomic_compare_exchange_strong(&st->growing, &no, 1))
        return;
    atomic_fetch_add(&st->refs, 1);
    if (!snapshot_run_detached(grow_main, st)) {
        atomic_store(&st->growing, 0);
        snap_stage_put(st);
    }
}
