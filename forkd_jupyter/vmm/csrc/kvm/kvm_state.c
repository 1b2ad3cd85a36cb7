/* vCPU state save/restore (kvm_state.h). */
#define _GNU_SOURCE
#include "kvm/kvm_state.h"

#include <string.h>
#include <sys/ioctl.h>

int kvm_state_save(struct kvm_vm *vm, struct kvm_state *out)
{
    memset(out, 0, sizeof(*out));
    /* The synced copy is authoritative: it may hold edits not yet pushed. */
    out->regs = *kvm_vm_regs(vm);
    out->syscall_mode = vm->syscall_mode;
    if (ioctl(vm->vcpu_fd, KVM_GET_SREGS, &out->sregs) < 0 || ioctl(vm->vcpu_fd, KVM_GET_XCRS, &out->xcrs) < 0 ||
        ioctl(vm->vcpu_fd, KVM_GET_XSAVE, &out->xsave) < 0)
        return -errno;
    return 0;
}

int kvm_state_restore(struct kvm_vm *vm, const struct kvm_state *in)
{
    if (ioctl(vm->vcpu_fd, KVM_SET_SREGS, &in->sregs) < 0 || ioctl(vm->vcpu_fd, KVM_SET_XCRS, &in->xcrs) < 0 ||
        ioctl(vm->vcpu_fd, KVM_SET_XSAVE, &in->xsave) < 0 || ioctl(vm->vcpu_fd, KVM_SET_REGS, &in->regs) < 0)
        return -errno;
    *kvm_vm_regs(vm) = in->regs;
    vm->run->kvm_dirty_regs = 0;
    vm->syscall_mode = in->syscall_mode;
    return 0;
}
