/* The live copy (snap_copy.h: snap_copy_prepare_live and what follows): a
 * thread serving the guest's write faults under userfaultfd write
 * protection (snap_uffd.h), and a background copier (docs/snapshots.md,
 * "What the running cell feels: stall"). */
#define _GNU_SOURCE
#include "snap/snap_live.h"
#include "snap/snap_uffd.h"

#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
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
            live_fail(c, "out of memory logging pages written while arming");
    } else if (c->phase == PHASE_COPY) {
        int err = live_preserve_page(c, gpa);
        if (err < 0)
            live_fail(c, "writing the image failed: %s", strerror(-err));
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

static void drain_faults(struct snap_copier *c, int timeout_ms)
{
    struct pollfd p = {.fd = c->uffd, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) > 0)
        serve_queued_faults(c);
}

/* One chunk of the background copy; false when everything is copied. */
static bool copy_next_chunk(struct snap_copier *c)
{
    live_lock_after_faults(c);
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
    live_prepare_image(c, start, end);
    live_lock_after_faults(c);
    int err = live_copy_pending(c, start, end, FAIL_CHUNK);
    snap_uffd_protect(c->uffd, c->sb->vm.ram, start, end - start, false);
    c->next_off = end;
    if (err < 0) {
        live_fail(c, "writing the image failed: %s", strerror(-err));
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
            live_fail(c, "listing guest memory failed: %s", strerror(-err));
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
    struct pollfd fds[2] = {{.fd = c->uffd, .events = POLLIN},
                            {.fd = c->quit_fd, .events = POLLIN}};
    while (!(poll(fds, 2, -1) < 0 && errno != EINTR) && !fds[1].revents) {
        if (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL))
            break; /* never spin on a descriptor in error: the copier serves */
        if (fds[0].revents)
            serve_queued_faults(c);
    }
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
        live_flush_stash(c);
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
            int err = live_copy_pending(c, gpa, gpa + len, FAIL_DISCARD);
            if (err < 0)
                live_fail(c, "writing the image failed: %s", strerror(-err));
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
        live_fail(c, "protecting freed memory failed: %s", strerror(-err));
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
        live_fail(c, "protecting pages written while arming failed: %s", strerror(-err));
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
