/* The live copy (snap_copy.h: snap_copy_prepare_live and what follows): a
 * thread serving the guest's write faults under userfaultfd write
 * protection (snap_uffd.h), and a background copier (docs/snapshots.md,
 * "What the running cell feels: stall"). */
#define _GNU_SOURCE
#include "snap/snap_copy.h"
#include "snap/snap_ranges.h"
#include "snap/snap_uffd.h"

#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "api/vmm_api.h"
#include "api/snapshot_api.h"
#include "lib/bitmap.h"

#define COPY_CHUNK (256ULL << 10)
#define ARM_CHUNK (4ULL << 20)
/* Pages a guest write may leave in the stash (preserve_page): 2 MiB. */
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
 * page reaches the image before the snapshot is READY. Pages outside the copy ranges held nothing at the
 * pause (the image already reads zero there) and are marked copied once the
 * ranges are known. While phase is PRE or COPY every page of guest RAM is
 * either write-protected, logged in released (PRE), or copied (COPY); a
 * discard keeps that (discard_hook). Any failure to copy or to log a page
 * sets error, and a snapshot with an error ends FAILED, never READY. */
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
    uint8_t *image_map; /* the image, shared, while copying (prepare_image), or NULL */
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

/* Records the snapshot's first failure. lock held. */
static void copier_fail(struct snap_copier *c, const char *fmt, ...)
{
    if (c->error[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->error, sizeof(c->error), fmt, ap);
    va_end(ap);
}

static int read_inject(void)
{
    const char *v = getenv("FORKD_TEST_LIVE_COPY_FAIL");
    if (!v)
        return 0;
    return (strstr(v, "log") ? FAIL_LOG : 0) | (strstr(v, "fault") ? FAIL_FAULT : 0) |
           (strstr(v, "chunk") ? FAIL_CHUNK : 0) | (strstr(v, "discard") ? FAIL_DISCARD : 0) |
           (strstr(v, "slow") ? SLOW_COPY : 0);
}

/* Write protection off for all of guest RAM, a chunk per call: one call
 * over all of it holds the address space's lock (read) for tens of ms, and
 * any thread then asking for it (write) makes the guest's page faults,
 * which take it too, wait behind it. Each chunk under arm_lock: a discard
 * that has replaced a range but not registered it yet would make the call
 * fail at that range and leave the rest of the chunk protected, with no
 * copier left to serve a write there (the guest would wait forever). */
static void unprotect_all(struct snap_copier *c)
{
    struct kvm_vm *vm = &c->sb->vm;
    for (uint64_t at = 0; at < vm->ram_bytes; at += ARM_CHUNK) {
        pthread_mutex_lock(&c->arm_lock);
        snap_uffd_protect(c->uffd, vm->ram, at, FJ_MIN(ARM_CHUNK, vm->ram_bytes - at), false);
        pthread_mutex_unlock(&c->arm_lock);
    }
}

/* Copies the not-yet-copied pages of [start, end) to the image. lock held.
 * site: the FAIL_* site calling (failure injection). */
static int copy_pending(struct snap_copier *c, uint64_t start, uint64_t end, int site)
{
    uint64_t n = end / FJ_PAGE_SIZE;
    for (uint64_t p = fj_bits_find(c->copied, n, start / FJ_PAGE_SIZE, false); p < n;) {
        uint64_t q = fj_bits_find(c->copied, n, p, true);
        fj_bits_set(c->copied, p, q);
        int err = c->inject & site ? -EIO
                                   : snap_write_image(c->snap->image_fd, c->sb->vm.ram, p * FJ_PAGE_SIZE,
                                                      (q - p) * FJ_PAGE_SIZE);
        if (err < 0)
            return err;
        p = fj_bits_find(c->copied, n, q, false);
    }
    return 0;
}

/* Keeps the pause-time content of page gpa before the guest changes it.
 * lock held. Writing it to a region of the image not prepared yet would
 * clear 2 MiB there while the writer waits (prepare_image); the stash takes
 * a copy in memory instead. */
static int preserve_page(struct snap_copier *c, uint64_t gpa)
{
    uint64_t p = gpa / FJ_PAGE_SIZE;
    if (c->copied[p / 64] >> (p % 64) & 1)
        return 0;
    uint64_t region = gpa / FJ_HUGE_SIZE;
    bool ready = c->image_ready[region / 64] >> (region % 64) & 1;
    if (ready || c->n_stash == STASH_PAGES || (c->inject & FAIL_FAULT))
        return copy_pending(c, gpa, gpa + FJ_PAGE_SIZE, FAIL_FAULT);
    memcpy(c->stash + c->n_stash * FJ_PAGE_SIZE, c->sb->vm.ram + gpa, FJ_PAGE_SIZE);
    c->stash_gpa[c->n_stash++] = gpa;
    fj_bit_set(c->copied, p);
    return 0;
}

/* read_ns: when the fault was read; the writer waits at least from then
 * until the page is released here. lock held. */
static void handle_fault_locked(struct snap_copier *c, uint64_t addr, uint64_t read_ns)
{
    uint8_t *base = c->sb->vm.ram;
    uint64_t gpa = FJ_ALIGN_DOWN(addr - (uint64_t)(uintptr_t)base, FJ_PAGE_SIZE);
    if (c->phase == PHASE_PRE) {
        if (c->n_released == c->cap_released) {
            size_t cap = c->cap_released ? c->cap_released * 2 : 1024;
            uint64_t *g = c->inject & FAIL_LOG ? NULL : realloc(c->released, cap * sizeof(*g));
            if (g) {
                c->released = g;
                c->cap_released = cap;
            }
        }
        if (c->n_released < c->cap_released)
            c->released[c->n_released++] = gpa;
        else /* the page stays released and unlogged: the image cannot be exact */
            copier_fail(c, "out of memory logging pages written while arming");
    } else if (c->phase == PHASE_COPY) {
        int err = preserve_page(c, gpa);
        if (err < 0)
            copier_fail(c, "writing the image failed: %s", strerror(-err));
    }
    /* Unprotect while holding lock: a pause that re-protects logged pages
     * takes lock first, so it never races with this. */
    snap_uffd_protect(c->uffd, base, gpa, FJ_PAGE_SIZE, false);
    if (c->phase != PHASE_STOP) {
        uint64_t held = fj_now_ns() - read_ns;
        c->held_total_ns += held;
        c->held_max_ns = FJ_MAX(c->held_max_ns, held);
    }
}

/* Serves the guest write faults queued now. */
static void serve_queued_faults(struct snap_copier *c)
{
    struct uffd_msg msgs[32];
    ssize_t n;
    while ((n = read(c->uffd, msgs, sizeof(msgs))) > 0) {
        uint64_t read_ns = fj_now_ns();
        atomic_fetch_add(&c->faults_waiting, 1);
        pthread_mutex_lock(&c->lock);
        for (ssize_t i = 0; i < n / (ssize_t)sizeof(msgs[0]); i++)
            if (msgs[i].event == UFFD_EVENT_PAGEFAULT)
                handle_fault_locked(c, msgs[i].arg.pagefault.address, read_ns);
        pthread_mutex_unlock(&c->lock);
        atomic_fetch_sub(&c->faults_waiting, 1);
    }
}

/* The copier takes lock again and again with short breaks; a mutex does
 * not hand itself to a waiter, so a fault read meanwhile could wait for
 * many of the copier's steps. The copier yields to it before each step. */
static void lock_after_faults(struct snap_copier *c)
{
    while (atomic_load(&c->faults_waiting))
        sched_yield();
    pthread_mutex_lock(&c->lock);
}

static void drain_faults(struct snap_copier *c, int timeout_ms)
{
    struct pollfd p = {.fd = c->uffd, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) > 0)
        serve_queued_faults(c);
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
static void prepare_image(struct snap_copier *c, uint64_t start, uint64_t end)
{
    uint64_t ram = c->sb->vm.ram_bytes;
    if (!c->image_map) {
        c->image_map = mmap(NULL, ram, PROT_READ | PROT_WRITE, MAP_SHARED, c->snap->image_fd, 0);
        if (c->image_map == MAP_FAILED)
            c->image_map = NULL;
    }
    for (uint64_t r = start / FJ_HUGE_SIZE; r * FJ_HUGE_SIZE < end; r++) {
        if (c->image_ready[r / 64] >> (r % 64) & 1)
            continue;
        uint64_t at = r * FJ_HUGE_SIZE;
        if (c->image_map)
            (void)madvise(c->image_map + at, FJ_MIN(FJ_HUGE_SIZE, ram - at), MADV_POPULATE_WRITE);
        lock_after_faults(c);
        fj_bit_set(c->image_ready, r);
        pthread_mutex_unlock(&c->lock);
    }
}

/* Writes the stash to the image, the regions its pages fall in prepared
 * first with lock dropped (faults add to the stash meanwhile, never while
 * the stash is written). */
static void flush_stash(struct snap_copier *c)
{
    lock_after_faults(c);
    for (size_t i = 0; i < c->n_stash; i++) {
        uint64_t gpa = c->stash_gpa[i], r = gpa / FJ_HUGE_SIZE;
        if (c->image_ready[r / 64] >> (r % 64) & 1)
            continue;
        pthread_mutex_unlock(&c->lock);
        prepare_image(c, gpa, gpa + FJ_PAGE_SIZE);
        lock_after_faults(c);
    }
    for (size_t i = 0; i < c->n_stash; i++) {
        const uint8_t *page = c->stash + i * FJ_PAGE_SIZE;
        ssize_t w;
        while ((w = pwrite(c->snap->image_fd, page, FJ_PAGE_SIZE, (off_t)c->stash_gpa[i])) < 0 && errno == EINTR)
            ;
        if (w != (ssize_t)FJ_PAGE_SIZE)
            copier_fail(c, "writing the image failed: %s", w < 0 ? strerror(errno) : "short write");
    }
    c->n_stash = 0;
    pthread_mutex_unlock(&c->lock);
}

/* One chunk of the background copy; false when everything is copied. */
static bool copy_next_chunk(struct snap_copier *c)
{
    lock_after_faults(c);
    while (c->next_range < c->n_ranges && c->next_off >= c->ranges[c->next_range].end) {
        c->next_range++;
        if (c->next_range < c->n_ranges)
            c->next_off = c->ranges[c->next_range].start;
    }
    if (c->next_range >= c->n_ranges) {
        pthread_mutex_unlock(&c->lock);
        return false;
    }
    uint64_t start = c->next_off, end = FJ_MIN(start + COPY_CHUNK, c->ranges[c->next_range].end);
    /* Only this thread moves next_off and next_range: they hold while the
     * image's memory is prepared without lock. */
    pthread_mutex_unlock(&c->lock);
    prepare_image(c, start, end);
    lock_after_faults(c);
    int err = copy_pending(c, start, end, FAIL_CHUNK);
    snap_uffd_protect(c->uffd, c->sb->vm.ram, start, end - start, false);
    c->next_off = end;
    if (err < 0) {
        copier_fail(c, "writing the image failed: %s", strerror(-err));
        c->next_range = c->n_ranges;
    }
    pthread_mutex_unlock(&c->lock);
    return true;
}

static void finish_copy(struct snap_copier *c)
{
    /* Every page is copied: stop copying first, then unprotect. A fault
     * still queued is then only released (handle_fault in PHASE_STOP); were
     * it handled as a copy-phase fault after the unprotect, the writer it
     * woke could already have changed the page it would copy. */
    pthread_mutex_lock(&c->lock);
    struct snapshot *snap = c->snap;
    c->snap = NULL;
    c->phase = PHASE_STOP;
    if (c->image_map)
        munmap(c->image_map, c->sb->vm.ram_bytes);
    c->image_map = NULL;
    free(c->copied);
    free(c->image_ready);
    free(c->ranges);
    c->copied = NULL;
    c->image_ready = NULL;
    c->ranges = NULL;
    char error[sizeof(c->error)];
    memcpy(error, c->error, sizeof(error));
    uint64_t held_max = c->held_max_ns, held_total = c->held_total_ns;
    pthread_mutex_unlock(&c->lock);
    /* Nothing stays protected: pages outside the copy ranges were armed too. */
    unprotect_all(c);
    drain_faults(c, 0);
    snap->copy_ns = fj_now_ns() - c->t0;
    pthread_mutex_lock(&snap->lock);
    snap->held_max_ns = held_max;
    snap->held_total_ns = held_total;
    pthread_mutex_unlock(&snap->lock);
    snapshot_finish(snap, error[0] ? FJ_SNAP_FAILED : FJ_SNAP_READY, error[0] ? error : NULL);
    fj_snapshot_release(snap);
}

/* The ranges holding data at the pause of a VM owning its RAM: the extents
 * listed before arming and the runs of pages written since. A run of
 * written pages that is a hole now (memory the guest freed) is left out,
 * as is a hole leading it: reading a hole of the RAM file through its
 * mapping would give it memory. Its pages are zero in the image anyway. */
static int pause_ranges(struct snap_copier *c, struct range **out, size_t *n_out)
{
    uint64_t pages = c->sb->vm.ram_bytes / FJ_PAGE_SIZE;
    uint64_t *want = calloc((pages + 63) / 64, 8);
    if (!want)
        return -ENOMEM;
    for (size_t i = 0; i < c->n_pre; i++)
        fj_bits_set(want, c->pre[i].start / FJ_PAGE_SIZE, c->pre[i].end / FJ_PAGE_SIZE);
    for (uint64_t w = 0; w < (pages + 63) / 64; w++)
        want[w] |= c->written[w];
    struct range *r = NULL;
    size_t n = 0, cap = 0;
    int err = 0;
    for (uint64_t q, p = fj_bits_next_run(want, pages, 0, &q); p < pages && err == 0;
         p = fj_bits_next_run(want, pages, q, &q)) {
        off_t data = lseek(c->sb->vm.ram_fd, (off_t)(p * FJ_PAGE_SIZE), SEEK_DATA);
        if (data >= 0 && (uint64_t)data < q * FJ_PAGE_SIZE)
            err = snap_range_push(&r, &n, &cap, FJ_ALIGN_DOWN((uint64_t)data, FJ_PAGE_SIZE),
                                  q * FJ_PAGE_SIZE);
    }
    free(want);
    if (err < 0) {
        free(r);
        return err;
    }
    *out = r;
    *n_out = n;
    return 0;
}

/* The copy's ranges, computed once after the pause (see snap_copy_start_live).
 * A VM owning its RAM does not list its file's extents here: that walks
 * every page of the file (~15 ms per GiB of data), and the guest, which
 * re-faults everything after arming, was seen standing still meanwhile. */
static bool find_ranges(struct snap_copier *c)
{
    struct range *r = NULL;
    size_t n = 0;
    int err = c->sb->vm.ram_private ? snap_content_ranges(c->sb, &c->snap->mm, &r, &n) /* the pause-time map */
                                    : pause_ranges(c, &r, &n);
    pthread_mutex_lock(&c->lock);
    if (err < 0 || !r) {
        if (err < 0)
            copier_fail(c, "listing guest memory failed: %s", strerror(-err));
        free(r);
        r = calloc(1, sizeof(*r));
        n = 0;
    }
    /* Outside the ranges the pause held nothing (a page freed since then was
     * copied by the discard hook first): nothing to copy there. */
    uint64_t at = 0;
    for (size_t i = 0; r && i <= n; i++) {
        uint64_t end = i < n ? r[i].start : c->sb->vm.ram_bytes;
        if (at < end)
            fj_bits_set(c->copied, at / FJ_PAGE_SIZE, end / FJ_PAGE_SIZE);
        if (i < n)
            at = FJ_MAX(at, r[i].end);
    }
    c->ranges = r;
    c->n_ranges = n;
    c->next_range = 0;
    c->next_off = n ? r[0].start : 0;
    pthread_mutex_unlock(&c->lock);
    return r != NULL;
}

/* Serves the guest's write faults as they come, whatever the copier is
 * doing (preparing the image's memory can take milliseconds, and a guest
 * that just resumed writes to dozens of pages in a row). Ends when quit_fd
 * is written. The copier also serves faults between its steps. */
static void *fault_main(void *p)
{
    struct snap_copier *c = p;
    struct pollfd fds[2] = {{.fd = c->uffd, .events = POLLIN}, {.fd = c->quit_fd, .events = POLLIN}};
    while (!(poll(fds, 2, -1) < 0 && errno != EINTR) && !fds[1].revents)
        if (fds[0].revents)
            serve_queued_faults(c);
    return NULL;
}

static void copy_loop(struct snap_copier *c);

static void *copier_main(void *p)
{
    struct snap_copier *c = p;
    /* The fault thread takes no signal meant for vCPU threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    pthread_t faults;
    bool serving = pthread_create(&faults, NULL, fault_main, c) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    copy_loop(c);
    if (serving) {
        uint64_t one = 1;
        (void)!write(c->quit_fd, &one, sizeof(one));
        pthread_join(faults, NULL);
        (void)!read(c->quit_fd, &one, sizeof(one));
    }
    return NULL;
}

static void copy_loop(struct snap_copier *c)
{
    for (;;) {
        pthread_mutex_lock(&c->lock);
        enum copier_phase phase = c->phase;
        pthread_mutex_unlock(&c->lock);
        if (phase == PHASE_STOP)
            break;
        if (phase == PHASE_PRE) {
            drain_faults(c, 20);
            continue;
        }
        drain_faults(c, 0);
        if (!c->ranges && !find_ranges(c))
            continue;
        bool more = copy_next_chunk(c);
        flush_stash(c);
        if (!more) { /* every page copied or stashed: the stash is the last to write */
            finish_copy(c);
            break;
        }
        if (c->inject & SLOW_COPY)
            usleep(SLOW_CHUNK_US);
    }
}

/* ---------------------------------------------------------------- hooks */

/* A vCPU thread under the sandbox's big_lock. arm_lock and lock are held
 * from the before call to the after call, so a discard is one step for the
 * copier and for arming: a copy-on-write child's discard maps a fresh,
 * unregistered range that arming must never see half-done. */
static void discard_hook(struct kvm_vm *vm, gpa_t gpa, uint64_t len, bool after)
{
    struct snap_copier *c = vm->owner;
    if (!after) {
        /* The range is about to lose its content: copy it first if the copy
         * in flight still needs it. */
        pthread_mutex_lock(&c->arm_lock);
        pthread_mutex_lock(&c->lock);
        if (c->phase == PHASE_COPY && c->copied) {
            int err = copy_pending(c, gpa, gpa + len, FAIL_DISCARD);
            if (err < 0)
                copier_fail(c, "writing the image failed: %s", strerror(-err));
        }
        if (!vm->ram_private) {
            pthread_mutex_unlock(&c->lock);
            pthread_mutex_unlock(&c->arm_lock);
        }
        return;
    }
    /* A copy-on-write child's replacement mapping: register it, and while
     * arming protect it as the rest of RAM is, so the guest's writes to it
     * are logged and re-protected at the pause. In the copy phase its pages
     * were copied just before (above). */
    int err = snap_uffd_register(c->uffd, vm->ram, gpa, len);
    if (err == 0 && c->phase == PHASE_PRE)
        err = snap_uffd_protect(c->uffd, vm->ram, gpa, len, true);
    if (err < 0 && c->phase != PHASE_STOP)
        copier_fail(c, "protecting freed memory failed: %s", strerror(-err));
    pthread_mutex_unlock(&c->lock);
    pthread_mutex_unlock(&c->arm_lock);
}

static int copier_get(struct sandbox *sb, struct snap_copier **out)
{
    struct snap_copier *c = sb->copier;
    if (c) {
        if (c->thread_running) { /* one live copy at a time: wait for the previous */
            pthread_join(c->thread, NULL);
            c->thread_running = false;
        }
        *out = c;
        return 0;
    }
    if (!(c = calloc(1, sizeof(*c))))
        return -ENOMEM;
    c->sb = sb;
    pthread_mutex_init(&c->lock, NULL);
    pthread_mutex_init(&c->arm_lock, NULL);
    c->stash = mmap(NULL, STASH_PAGES * FJ_PAGE_SIZE, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    c->quit_fd = eventfd(0, EFD_CLOEXEC);
    c->uffd = c->stash == MAP_FAILED || c->quit_fd < 0 ? -ENOMEM : snap_uffd_open();
    int err = c->uffd < 0 ? c->uffd : snap_uffd_register(c->uffd, sb->vm.ram, 0, sb->vm.ram_bytes);
    if (err < 0) {
        if (c->stash != MAP_FAILED)
            munmap(c->stash, STASH_PAGES * FJ_PAGE_SIZE);
        if (c->quit_fd >= 0)
            close(c->quit_fd);
        if (c->uffd >= 0)
            close(c->uffd);
        pthread_mutex_destroy(&c->lock);
        pthread_mutex_destroy(&c->arm_lock);
        free(c);
        return err;
    }
    sb->copier = c;
    sb->vm.owner = c;
    sb->vm.discard_hook = discard_hook;
    *out = c;
    return 0;
}

int snap_copy_prepare_live(struct sandbox *sb, struct snapshot *snap)
{
    struct snap_copier *c;
    int err = copier_get(sb, &c);
    if (err < 0)
        return err;
    if (!sb->vm.ram_private) { /* the extents before arming (pause_ranges) */
        free(c->pre);
        c->pre = NULL;
        c->n_pre = 0;
        if (!c->written && !(c->written = calloc(1, kvm_vm_bitmap_bytes(&sb->vm))))
            return -ENOMEM;
        if ((err = snap_content_ranges(sb, &sb->mm, &c->pre, &c->n_pre)) < 0)
            return err;
    }
    pthread_mutex_lock(&c->lock);
    c->phase = PHASE_PRE;
    c->n_released = 0;
    c->error[0] = 0;
    c->held_max_ns = c->held_total_ns = 0;
    c->inject = read_inject();
    pthread_mutex_unlock(&c->lock);
    if ((err = -pthread_create(&c->thread, NULL, copier_main, c)) < 0)
        return err;
    c->thread_running = true;
    /* Arm while the guest runs; its writes meanwhile are released and
     * logged (by the copier thread, and here between chunks). Each chunk
     * under arm_lock: never inside a discard (discard_hook). */
    for (uint64_t at = 0; at < sb->vm.ram_bytes && err == 0; at += ARM_CHUNK) {
        pthread_mutex_lock(&c->arm_lock);
        err = snap_uffd_protect(c->uffd, sb->vm.ram, at, FJ_MIN(ARM_CHUNK, sb->vm.ram_bytes - at),
                                true);
        pthread_mutex_unlock(&c->arm_lock);
        drain_faults(c, 0);
    }
    if (err < 0)
        snap_copy_abort(sb, snap);
    return err;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* In the pause (every vCPU parked). Only what must be of the
 * pause instant happens here; finding which ranges hold data is left to the
 * copier: a page that changes after the pause (written, or discarded) is
 * preserved first by the write fault or the discard hook, so copying the
 * ranges found later still yields the pause-time image. */
int snap_copy_start_live(struct sandbox *sb, struct snapshot *snap, const uint64_t *dirty)
{
    struct snap_copier *c = sb->copier;
    uint64_t pages = sb->vm.ram_bytes / FJ_PAGE_SIZE;
    uint64_t regions = (sb->vm.ram_bytes + FJ_HUGE_SIZE - 1) / FJ_HUGE_SIZE;
    uint64_t *copied = calloc((pages + 63) / 64, 8), *ready = calloc((regions + 63) / 64, 8);
    if (!copied || !ready) {
        free(copied);
        free(ready);
        return -ENOMEM;
    }
    int err = 0;
    pthread_mutex_lock(&c->lock);
    /* Pages the guest wrote while we armed: protect them again. Their content
     * now is the pause-time content (the guest is stopped). */
    qsort(c->released, c->n_released, sizeof(uint64_t), cmp_u64);
    for (size_t i = 0; i < c->n_released && err == 0;) {
        size_t j = i + 1;
        while (j < c->n_released && c->released[j] <= c->released[j - 1] + FJ_PAGE_SIZE)
            j++;
        err = snap_uffd_protect(c->uffd, sb->vm.ram, c->released[i],
                                c->released[j - 1] + FJ_PAGE_SIZE - c->released[i], true);
        i = j;
    }
    c->n_released = 0;
    if (err < 0)
        copier_fail(c, "protecting pages written while arming failed: %s", strerror(-err));
    if (!sb->vm.ram_private)
        memcpy(c->written, dirty, kvm_vm_bitmap_bytes(&sb->vm));
    c->snap = snapshot_get(snap);
    c->copied = copied;
    c->image_ready = ready;
    c->n_stash = 0;
    c->ranges = NULL; /* found by the copier thread */
    c->n_ranges = c->next_range = 0;
    c->next_off = 0;
    c->t0 = fj_now_ns();
    c->phase = PHASE_COPY;
    pthread_mutex_unlock(&c->lock);
    return err;
}

void snap_copy_abort(struct sandbox *sb, struct snapshot *snap)
{
    struct snap_copier *c = sb->copier;
    if (!c || !c->thread_running)
        return;
    pthread_mutex_lock(&c->lock);
    bool copying = c->phase == PHASE_COPY;
    if (!copying)
        c->phase = PHASE_STOP;
    pthread_mutex_unlock(&c->lock);
    if (!copying) {
        unprotect_all(c);
        pthread_join(c->thread, NULL);
        c->thread_running = false;
    }
}

void snap_copy_sandbox_gone(struct sandbox *sb)
{
    struct snap_copier *c = sb->copier;
    if (!c)
        return;
    if (c->thread_running) {
        snap_copy_abort(sb, NULL);
        if (c->thread_running) /* a copy in flight finishes first */
            pthread_join(c->thread, NULL);
    }
    close(c->uffd);
    close(c->quit_fd);
    munmap(c->stash, STASH_PAGES * FJ_PAGE_SIZE);
    free(c->released);
    free(c->pre);
    free(c->written);
    pthread_mutex_destroy(&c->lock);
    pthread_mutex_destroy(&c->arm_lock);
    free(c);
    sb->copier = NULL;
}
