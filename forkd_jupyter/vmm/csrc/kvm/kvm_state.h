/* The architectural state of a vCPU, saved at a pause and restored into a
 * new VM (a child). Invariant: saved between exits by the thread that runs the vCPU, so
 * registers, segment state and the FPU image are of one instant. */
#ifndef KVM_STATE_H
#define KVM_STATE_H

#include "kvm/kvm_vm.h"

struct kvm_state {
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    struct kvm_xcrs xcrs;
    struct kvm_xsave xsave;
    int syscall_mode;
};

int kvm_state_save(struct kvm_vcpu *cpu, struct kvm_state *out);
/* cpu (same id as the saved one) belongs to a VM created with the same RAM
 * size and is set up (system region, CPUID, MSRs); this loads the saved
 * registers on top. */
int kvm_state_restore(struct kvm_vcpu *cpu, const struct kvm_state *in);

#endif
