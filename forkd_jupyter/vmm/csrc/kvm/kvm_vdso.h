/* The guest's vDSO (vmm/vdso/vdso.c) and the clock page it reads
 * (vdso_data.h): written into the system region with it, kept current by
 * the VMM before each entry into the guest. */
#ifndef KVM_VDSO_H
#define KVM_VDSO_H

#include "kvm/kvm_vm.h"

/* The image is built into this core and fits its pages (else the guest
 * runs without a vDSO and makes every clock call a system call). */
bool kvm_vdso_available(void);
/* Copies the image and a disabled clock page into vm->sys (page tables are
 * kvm_cpu's). */
void kvm_vdso_write(struct kvm_vm *vm);
/* vCPU thread, guest stopped: brings the clock page up to date (enables it
 * the first time, when the host's TSC is a usable clock). */
void kvm_vdso_refresh(struct kvm_vm *vm);

#endif
