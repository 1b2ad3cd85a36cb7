/* x86-64 state of the guest: system region contents and vCPU set-up. */
#ifndef KVM_CPU_H
#define KVM_CPU_H

#include "kvm/kvm_vm.h"

/* Writes GDT, TSS, IDT, exception stubs, the system-call stub and the page
 * tables into vm->sys. */
int kvm_cpu_write_system_region(struct kvm_vm *vm);
/* CPUID, XCR0, system-call MSRs and control registers for 64-bit user mode
 * (of vCPU 0, or of cpu, whose TSS it also writes). */
int kvm_cpu_setup(struct kvm_vm *vm);
int kvm_cpu_setup_vcpu(struct kvm_vm *vm, struct kvm_vcpu *cpu);
/* Loads user code/data selectors (CPL3) into s. */
void kvm_cpu_user_segments(struct kvm_sregs *s);

/* Writes descriptor tables, stubs and page tables into the system region and
 * puts the vCPU in 64-bit user mode at rip/rsp. Called once per VM. */
int kvm_cpu_boot(struct kvm_vm *vm, gva_t rip, gva_t rsp);
/* kvm_cpu_boot without the registers: system region, CPUID, MSRs, control
 * registers (a child then loads its saved state on top). */
int kvm_cpu_prepare(struct kvm_vm *vm);
/* Puts the vCPU back in user mode (segments) after an exception exit. */
int kvm_cpu_return_to_user(struct kvm_vcpu *cpu);

/* Exception vectors that push an error code. */
static inline bool kvm_cpu_vector_has_error_code(unsigned v)
{
    return v == 8 || (v >= 10 && v <= 14) || v == 17 || v == 21 || v == 29 || v == 30;
}

#endif
