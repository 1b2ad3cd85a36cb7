/* The clock page shared by the VMM (writer, kvm_vdso.c) and the guest's
 * vDSO (reader, vmm/vdso/vdso.c, compiled on its own for the guest).
 *
 * Invariants: the page sits at FJ_VDSO_DATA_VA in every guest, user-readable
 * and never writable by the guest; the VMM writes it only with `seq` odd
 * and bumps `seq` to even once done (a seqlock), and only while the vCPU
 * that would read it is stopped. A clock is
 *   base_ns[clock] + ((guest_tsc - tsc_base) * mult) >> 32
 * and `enabled == 0` sends every call to the real system call. */
#ifndef VDSO_DATA_H
#define VDSO_DATA_H

#include <stdint.h>

/* Guest-virtual addresses of the vDSO image and its clock page: pages
 * FJ_VDSO_FIRST_PAGE.. of the system region (kvm_layout.h, LAYOUT_SYS_VA). */
#define FJ_VDSO_FIRST_PAGE 96
#define FJ_VDSO_PAGES 4
#define FJ_VDSO_DATA_PAGE (FJ_VDSO_FIRST_PAGE + FJ_VDSO_PAGES)
#define FJ_VDSO_VA (0xffffff8000000000ULL + FJ_VDSO_FIRST_PAGE * 4096ULL)
#define FJ_VDSO_DATA_VA (0xffffff8000000000ULL + FJ_VDSO_DATA_PAGE * 4096ULL)

enum vdso_clock { VDSO_REALTIME = 0, VDSO_MONOTONIC = 1, VDSO_BOOTTIME = 2, VDSO_NCLOCKS = 3 };

struct vdso_data {
    volatile uint32_t seq;
    volatile uint32_t enabled;
    volatile uint64_t tsc_base;               /* guest TSC at the bases */
    volatile uint64_t mult;                   /* ns per TSC tick, times 2^32 */
    volatile uint64_t base_ns[VDSO_NCLOCKS];  /* each clock at tsc_base */
};

#endif
