/* Guest memory that starts holding data: a small anonymous mapping or a
 * heap extension the guest has just asked for (sys_mem.c).
 *
 * The guest's first touch of a page the host has never given the VM costs
 * a host allocation inside KVM's fault, ~13 us here; a page the host
 * allocated beforehand costs the guest only the shadow MMU's mapping,
 * ~1.2 us, for ~2.8 us of allocation outside the guest's fault
 * (kvm-on-these-machines; the spares of kvm_discard.c exist for the same
 * reason). CPython's object arenas (1 MiB mappings) and malloc's heap are
 * written from the moment they are mapped, so they are populated whole.
 *
 * Invariant: populating never changes what the range reads (zeros, or a
 * spare's zeros, or a private view's pages, copied as a write would);
 * it only makes the host hold the pages, so every snapshot, diff and
 * copy-on-write rule sees what it would have seen after the guest's own
 * writes, or less. A failure leaves the pages to the guest's faults. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kvm/kvm_vm.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* FORKD_JUPYTER_POPULATE=0 leaves every page to the guest's faults (to
 * compare the two ways, bench/syscalls/bench_populate.py); read once per
 * process (0 unknown, 1 on, 2 off): getenv is not safe beside a setenv. */
static int populate_mode;

static bool populates(void) {
    int mode = __atomic_load_n(&populate_mode, __ATOMIC_RELAXED);
    if (mode == 0) {
        const char *v = getenv("FORKD_JUPYTER_POPULATE");
        mode = v && strcmp(v, "0") == 0 ? 2 : 1;
        __atomic_store_n(&populate_mode, mode, __ATOMIC_RELAXED);
    }
    return mode == 1;
}

void kvm_vm_populate(struct kvm_vm *vm, gpa_t gpa, uint64_t len) {
    if (len == 0 || vm->ram_borrowed || gpa >= vm->ram_bytes || !populates())
        return;
    (void)madvise(vm->ram + gpa, FJ_MIN(len, vm->ram_bytes - gpa), MADV_POPULATE_WRITE);
}
