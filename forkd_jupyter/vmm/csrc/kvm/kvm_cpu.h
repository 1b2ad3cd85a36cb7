/* x86-64 state of the guest: system region contents and vCPU set-up. */
#ifndef KVM_CPU_H
#define KVM_CPU_H

#include "kvm/kvm_vm.h"

/* Writes GDT, TSS, IDT, exception stubs, the system-call stub and the page
 * tables into vm->sys. */
int kvm_cpu_write_system_region(struct kvm_vm *vm);
/* CPUID, XCR0, system-call MSRs and control registers for 64-bit user mode. */
int kvm_cpu_setup(struct kvm_vm *vm);
/* Loads user code/data selectors (CPL3) into s. */
void kvm_cpu_user_segments(struct kvm_sregs *s);

/* Exception vectors that push an error code. */
static inline bool kvm_cpu_vector_has_error_code(unsigned v)
{
    return v == 8 || (v >= 10 && v <= 14) || v == 17 || v == 21 || v == 29 || v == 30;
}

#endif
