/* fj_probe_kvm: boots a 2 MiB guest whose user-mode code counts down a
 * register and then makes a system call; the time to that exit tells
 * whether CPL3 code runs natively or is emulated. */
#define _GNU_SOURCE
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "api/kvm_probe_api.h"
#include "kvm/kvm_cpu.h"

static int run_user_loop(struct kvm_vm *vm, uint64_t iters, double *ns)
{
    static const uint8_t head[] = {0x48, 0xb9}; /* mov rcx, imm64 */
    static const uint8_t tail[] = {0x48, 0xff, 0xc9, 0x75, 0xfb, 0x0f, 0x05}; /* dec rcx; jnz; syscall */
    gva_t code = LAYOUT_USER_MIN;
    uint8_t *p = vm->ram + code;
    memcpy(p, head, sizeof(head));
    memcpy(p + sizeof(head), &iters, 8);
    memcpy(p + sizeof(head) + 8, tail, sizeof(tail));
    int err = kvm_vm_cover(vm, 0, FJ_HUGE_SIZE);
    if (err == 0)
        err = kvm_cpu_boot(vm, code, LAYOUT_USER_MIN + 0x8000);
    if (err < 0)
        return err;
    uint64_t t0 = fj_now_ns();
    for (;;) {
        if ((err = kvm_vm_run(vm)) < 0) {
            if (err == -EINTR)
                continue;
            return err;
        }
        if (vm->vcpu.run->exit_reason != KVM_EXIT_MMIO ||
            vm->vcpu.run->mmio.phys_addr != layout_doorbell_gpa(vm->ram_bytes))
            return -EIO;
        break;
    }
    *ns = (double)(fj_now_ns() - t0);
    return 0;
}

int fj_probe_kvm(struct fj_kvm_probe *out, uint64_t loop_iters)
{
    memset(out, 0, sizeof(*out));
    out->api_version = out->create_vm_errno = out->create_vcpu_errno = out->user_loop_errno = -1;
    int kfd = kvm_dev_fd();
    if (kfd < 0) {
        out->open_errno = -kfd;
        return kfd;
    }
    out->api_version = ioctl(kfd, KVM_GET_API_VERSION, 0);
    out->sync_regs = ioctl(kfd, KVM_CHECK_EXTENSION, KVM_CAP_SYNC_REGS);
    struct kvm_vm vm;
    int err = kvm_vm_create(&vm, FJ_HUGE_SIZE, -1);
    if (err < 0) {
        /* Tell VM creation apart from vCPU creation. */
        int vm_fd = ioctl(kfd, KVM_CREATE_VM, 0);
        if (vm_fd < 0) {
            out->create_vm_errno = errno;
        } else {
            out->create_vm_errno = 0;
            int vcpu = ioctl(vm_fd, KVM_CREATE_VCPU, 0);
            out->create_vcpu_errno = vcpu < 0 ? errno : -err;
            if (vcpu >= 0)
                close(vcpu);
            close(vm_fd);
        }
        return err;
    }
    out->create_vm_errno = out->create_vcpu_errno = 0;
    err = run_user_loop(&vm, loop_iters, &out->user_loop_ns);
    out->user_loop_errno = -err;
    if (err == 0)
        out->user_loop_iters = loop_iters;
    kvm_vm_destroy(&vm);
    return err;
}
