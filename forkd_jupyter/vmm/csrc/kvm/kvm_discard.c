/* Guest memory that stops holding data (kvm_vm.h): discarded (madvise,
 * a mapping replaced) or released (no mapping reaches it any more).
 *
 * A host page handed back costs the guest a fault on its next touch: the
 * host allocates and clears a page and KVM's shadow MMU maps it, ~13 us
 * here against ~0.1 us to clear it in place. So a released range keeps its
 * host pages as spares, zeroed, up to a quarter of RAM: a program that
 * frees and allocates large buffers in turn (numpy's temporaries, a
 * DataFrame rebuilt in a loop) gets its next mapping there without faults.
 * Spares go back to the host on kvm_vm_trim (the sandbox between requests,
 * fj_sandbox_trim); what a range holds past the cap goes back at once.
 *
 * Invariants: a spare page is in no VMA and reads as zero (vm->spare);
 * only pages the host already holds are kept, so keeping never takes host
 * memory; every change the guest could see is marked dirty for snapshots. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kvm/kvm_vm.h"
#include "lib/bitmap.h"
#include "lib/pagemap.h"

/* FORKD_JUPYTER_SPARE_MEMORY=0 hands every released page back at once (to
 * compare the two ways, bench/memory-reuse); read at a VM's first release. */
static bool keeps_spares(void) {
    const char *v = getenv("FORKD_JUPYTER_SPARE_MEMORY");
    return !v || strcmp(v, "0") != 0;
}

static uint64_t cap_pages(const struct kvm_vm *vm) { return vm->ram_bytes / FJ_PAGE_SIZE / 4; }

/* Makes [gpa, gpa + len) read as zero by handing its pages back to the
 * host: a hole in the RAM file, or fresh anonymous memory over a private
 * view (the image below must not be touched), which the discard hook's
 * after call registers. Its before call was made. */
static void hand_back(struct kvm_vm *vm, gpa_t gpa, uint64_t len) {
    if (!vm->ram_private) {
        fallocate(vm->ram_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)gpa, (off_t)len);
        return;
    }
    mmap(vm->ram + gpa, len, PROT_READ | PROT_WRITE,
         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
    if (vm->discard_hook)
        vm->discard_hook(vm, gpa, len, true);
}

static void give_back(struct kvm_vm *vm, gpa_t gpa, uint64_t len) {
    if (vm->discard_hook)
        vm->discard_hook(vm, gpa, len, false);
    hand_back(vm, gpa, len);
}

/* The first steps of a discard or a release (never a borrowed VM's): the
 * range counts as changed since the last snapshot, the discard hook's
 * before call (a live copy takes what the guest saw there, a shared
 * object's pages included), and the range is the VM's own RAM again. */
static void begin_drop(struct kvm_vm *vm, gpa_t gpa, uint64_t len) {
    kvm_vm_mark_dirty(vm, gpa, len); /* reads as zero now: a change since the last snapshot */
    if (vm->discard_hook)
        vm->discard_hook(vm, gpa, len, false);
    kvm_vm_drop_foreign(vm, gpa, len);
}

void kvm_vm_discard(struct kvm_vm *vm, gpa_t gpa, uint64_t len) {
    if (len == 0)
        return;
    if (vm->ram_borrowed) {
        kvm_vm_mark_dirty(vm, gpa, len);
        memset(vm->ram + gpa, 0, len); /* the owner's memory: never unmapped from here */
        return;
    }
    begin_drop(vm, gpa, len);
    hand_back(vm, gpa, len);
}

/* Sets in vm->spare the pages of [gpa, gpa + len) the VM holds a host page
 * of its own for: resident in the RAM file, or a private view's anonymous
 * pages (never the image's). Returns how many, or -errno. */
static int64_t mark_held(struct kvm_vm *vm, gpa_t gpa, uint64_t len) {
    uint64_t base = (uint64_t)(uintptr_t)vm->ram;
    if (vm->ram_private)
        return fj_pagemap_anon(base + gpa, base + gpa + len, base, vm->spare, false);
    return fj_resident_pages(base + gpa, base + gpa + len, base, vm->spare);
}

/* The bit after the first n set bits of [p, q) (q when there are fewer). */
static uint64_t after_set_bits(const uint64_t *bits, uint64_t q, uint64_t p, uint64_t n) {
    for (uint64_t e, s = fj_bits_next_run(bits, q, p, &e); s < q;
         s = fj_bits_next_run(bits, q, e, &e)) {
        if (e - s >= n)
            return s + n;
        n -= e - s;
    }
    return q;
}

void kvm_vm_release(struct kvm_vm *vm, gpa_t gpa, uint64_t len) {
    if (len == 0)
        return;
    if (vm->ram_borrowed || !vm->spare) {
        void *bits = vm->ram_borrowed || !keeps_spares()
                         ? MAP_FAILED
                         : mmap(NULL, kvm_vm_bitmap_bytes(vm), PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (bits == MAP_FAILED) {
            kvm_vm_discard(vm, gpa, len);
            return;
        }
        vm->spare = bits;
    }
    begin_drop(vm, gpa, len);
    uint64_t p = gpa / FJ_PAGE_SIZE, q = (gpa + len) / FJ_PAGE_SIZE;
    int64_t held = mark_held(vm, gpa, len);
    uint64_t room = cap_pages(vm) - FJ_MIN(vm->spare_pages, cap_pages(vm));
    if (held <= 0 || room == 0) {
        fj_bits_clear(vm->spare, p, q);
        hand_back(vm, gpa, len);
        return;
    }
    bool dropped = (uint64_t)held > room;
    if (dropped) /* the first pages held fill the room: the rest go back */
        fj_bits_clear(vm->spare, after_set_bits(vm->spare, q, p, room), q);
    vm->spare_pages += FJ_MIN((uint64_t)held, room);
    /* What is not kept must not read through: a hole where the RAM file
     * still holds a page, fresh memory where a private view still shows
     * the image. The hook's after call ends the step begun above (for a
     * private view it holds the live copy's locks until then). */
    for (uint64_t e, s = fj_bits_find(vm->spare, q, p, false); s < q;
         s = fj_bits_find(vm->spare, q, e, false)) {
        e = fj_bits_find(vm->spare, q, s, true);
        if (vm->ram_private)
            mmap(vm->ram + s * FJ_PAGE_SIZE, (e - s) * FJ_PAGE_SIZE, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
        else if (dropped) /* else a hole already */
            fallocate(vm->ram_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                      (off_t)(s * FJ_PAGE_SIZE), (off_t)((e - s) * FJ_PAGE_SIZE));
    }
    if (vm->ram_private && vm->discard_hook)
        vm->discard_hook(vm, gpa, len, true);
    /* Cleared as any write of the VMM's is made: outside the hook, so a
     * write-protected page's fault is served by the live copy. */
    for (uint64_t e, s = fj_bits_next_run(vm->spare, q, p, &e); s < q;
         s = fj_bits_next_run(vm->spare, q, e, &e))
        memset(vm->ram + s * FJ_PAGE_SIZE, 0, (e - s) * FJ_PAGE_SIZE);
}

void kvm_vm_reuse(struct kvm_vm *vm, gpa_t gpa, uint64_t len) {
    if (vm->spare_pages == 0 || len == 0)
        return;
    gpa_t end = FJ_MIN(gpa + len, vm->ram_bytes);
    if (gpa < end)
        vm->spare_pages -= fj_bits_clear(vm->spare, gpa / FJ_PAGE_SIZE, end / FJ_PAGE_SIZE);
}

void kvm_vm_trim(struct kvm_vm *vm) {
    if (vm->spare_pages == 0)
        return;
    uint64_t n = vm->ram_bytes / FJ_PAGE_SIZE;
    for (uint64_t e, s = fj_bits_next_run(vm->spare, n, 0, &e); s < n;
         s = fj_bits_next_run(vm->spare, n, e, &e))
        give_back(vm, s * FJ_PAGE_SIZE, (e - s) * FJ_PAGE_SIZE);
    if (madvise(vm->spare, kvm_vm_bitmap_bytes(vm), MADV_DONTNEED) < 0)
        memset(vm->spare, 0, kvm_vm_bitmap_bytes(vm));
    vm->spare_pages = 0;
}
