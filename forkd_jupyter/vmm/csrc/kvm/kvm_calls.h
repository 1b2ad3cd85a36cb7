/* System calls without a VM exit: the guest's half.
 *
 * A VM exit costs 25-130 us here (docs/design.md), a store seen by another
 * core ~0.15 us. So the LSTAR stub first offers an eligible call to a host
 * thread that polls while the guest makes calls (run/fast_calls.c): it
 * writes the number and arguments into its vCPU's call box (a user page of
 * the system region, found through GS, whose base the VMM sets per vCPU and
 * the guest cannot change: ARCH_SET_GS is refused, CR4.FSGSBASE is off),
 * marks it posted and spins until the box says done (or refused). When no
 * poller is awake, the number is not eligible, or the spin runs out and the
 * box can still be taken back, the stub falls through to the MMIO doorbell
 * as before.
 *
 * Invariant: whenever a vCPU thread holds big_lock with its vCPU out of
 * KVM_RUN, its guest is not inside the stub's fast path
 * (kvm_calls_resolve): a call served is returned, one not served is
 * rewound to its SYSCALL instruction. So signal frames, snapshots and
 * children never see a half-made call, and the box (not part of any
 * snapshot) never carries state across a pause. A box is taken (posted ->
 * taken) and answered (-> done) under big_lock in one go. */
#ifndef KVM_CALLS_H
#define KVM_CALLS_H

#include <stdatomic.h>

#include "kvm/kvm_vm.h"

enum kvm_call_state {
    KVM_CALL_IDLE = 0,
    KVM_CALL_POSTED = 1,
    KVM_CALL_TAKEN = 2,
    KVM_CALL_DONE = 4,
    KVM_CALL_REFUSED = 8, /* not served: the stub makes it with an exit */
};

/* One vCPU's box; 128 bytes, at layout_call_box_va(id). */
struct kvm_call_box {
    _Atomic uint32_t state;
    uint32_t spins; /* the stub's countdown */
    uint64_t nr;
    uint64_t args[6];
    uint64_t ret;
    uint64_t rip; /* where the call returns (RCX) */
    uint8_t pad[48];
};

/* RFLAGS a system call returns with: the caller's (R11, as SYSCALL saved
 * them), less what user mode may not set. */
static inline uint64_t kvm_calls_user_rflags(uint64_t r11) { return (r11 & 0x3c7fd7) | 0x2; }

/* Writes the stub's fast path (called by kvm_cpu_write_system_region);
 * it stays off until kvm_calls_enable. */
void kvm_calls_write_stub(struct kvm_vm *vm);
/* Numbers the stub offers to the poller (bit n = number n < 512). Only where
 * SYSCALL stays in CPL3: the fast path returns to the caller itself. */
void kvm_calls_enable(struct kvm_vm *vm, const uint64_t bitmap[8]);
bool kvm_calls_enabled(struct kvm_vm *vm);
/* The flag the stub reads before it offers a call: a poller is awake. */
static inline _Atomic uint8_t *kvm_calls_awake(struct kvm_vm *vm)
{
    return (_Atomic uint8_t *)(vm->sys + (uint64_t)SYS_PAGE_SYSCALL * FJ_PAGE_SIZE + LAYOUT_STUB_AWAKE);
}
static inline struct kvm_call_box *kvm_calls_box(struct kvm_vm *vm, unsigned id)
{
    return (struct kvm_call_box *)(vm->sys + (uint64_t)SYS_PAGE_CALL_BOXES * FJ_PAGE_SIZE) + id;
}
/* After KVM_RUN returned, before anything reads or saves cpu's registers:
 * moves a guest caught inside the fast path out of it (see the top). */
void kvm_calls_resolve(struct kvm_vm *vm, struct kvm_vcpu *cpu);

#endif
