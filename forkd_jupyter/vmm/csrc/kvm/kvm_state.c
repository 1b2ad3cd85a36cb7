/* vCPU state save/restore (kvm_state.h). */
#define _GNU_SOURCE
#include "kvm/kvm_state.h"

#include <string.h>
#include <sys/ioctl.h>

int kvm_state_save(struct kvm_vcpu *cpu, struct kvm_state *out)
{
    memset(out, 0, sizeof(*out));
    /* The synced copy is authoritative: it may hold edits not yet pushed. */
    out->regs = *kvm_vcpu_regs(cpu);
    out->syscall_mode = cpu->syscall_mode;
    if (ioctl(cpu->fd, KVM_GET_SREGS, &out->sregs) < 0 || ioctl(cpu->fd, KVM_GET_XCRS, &out->xcrs) < 0 ||
        ioctl(cpu->fd, KVM_GET_XSAVE, &out->xsave) < 0)
        return -errno;
    return 0;
}

int kvm_state_restore(struct kvm_vcpu *cpu, const struct kvm_state *in)
{
    if (kvm_vcpu_set_sregs(cpu, &in->sregs) < 0 || ioctl(cpu->fd, KVM_SET_XCRS, &in->xcrs) < 0 ||
        ioctl(cpu->fd, KVM_SET_XSAVE, &in->xsave) < 0 || ioctl(cpu->fd, KVM_SET_REGS, &in->regs) < 0)
        return -errno;
    *kvm_vcpu_regs(cpu) = in->regs;
    cpu->run->kvm_dirty_regs = 0;
    cpu->syscall_mode = in->syscall_mode;
    return 0;
}
