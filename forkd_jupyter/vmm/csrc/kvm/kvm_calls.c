/* The stub's fast path and the rule that keeps a guest out of it while the
 * VMM holds its vCPU (kvm_calls.h). */
#define _GNU_SOURCE
#include <string.h>

#include "kvm/kvm_calls.h"

/* The fast path, at LAYOUT_STUB_FAST of the system-call page (Intel
 * syntax; `slow` is the doorbell store at offset 0, `bitmap` and `awake`
 * are LAYOUT_STUB_BITMAP and LAYOUT_STUB_AWAKE). It uses RAX and the flags
 * only (SYSCALL's ABI clobbers both), never the stack, so a red zone stays
 * intact and the argument registers, RCX (return) and R11 survive:
 *
 *   00 cmp rax, 511 ; ja slow
 *   08 bt [rip + bitmap], rax ; jnc slow
 *   12 cmp byte [rip + awake], 0 ; je slow
 *   1b mov gs:[8], rax ; mov gs:[16..56], rdi rsi rdx r10 r8 r9
 *   5a mov gs:[72], rcx                               (where the call returns)
 *   63 mov dword gs:[4], SPINS
 *   6f mov dword gs:[0], POSTED                       <- post
 *   7b spin: pause ; mov eax, gs:[0] ; cmp eax, DONE ; je done
 *            cmp eax, REFUSED ; je back ; dec dword gs:[4] ; jnz spin
 *   99 lock btr dword gs:[0], 0 ; jc back             (taken back: exit)
 *   a6 wait: pause ; mov eax, gs:[0] ; cmp eax, DONE ; je done
 *            cmp eax, REFUSED ; jne wait
 *   ba back: mov dword gs:[0], IDLE ; mov rax, gs:[8] ; jmp slow
 *   d4 done: mov rax, gs:[64] ; mov dword gs:[0], IDLE
 *   e9 jmp rcx                                        (flags as the stub left them)
 */
static const uint8_t fast_path[] = {
    0x48, 0x3d, 0xff, 0x01, 0x00, 0x00, 0x77, 0xe8, 0x48, 0x0f, 0xa3, 0x05, 0xe0, 0x07, 0x00,
    0x00, 0x73, 0xde, 0x80, 0x3d, 0x17, 0x08, 0x00, 0x00, 0x00, 0x74, 0xd5, 0x65, 0x48, 0x89,
    0x04, 0x25, 0x08, 0x00, 0x00, 0x00, 0x65, 0x48, 0x89, 0x3c, 0x25, 0x10, 0x00, 0x00, 0x00,
    0x65, 0x48, 0x89, 0x34, 0x25, 0x18, 0x00, 0x00, 0x00, 0x65, 0x48, 0x89, 0x14, 0x25, 0x20,
    0x00, 0x00, 0x00, 0x65, 0x4c, 0x89, 0x14, 0x25, 0x28, 0x00, 0x00, 0x00, 0x65, 0x4c, 0x89,
    0x04, 0x25, 0x30, 0x00, 0x00, 0x00, 0x65, 0x4c, 0x89, 0x0c, 0x25, 0x38, 0x00, 0x00, 0x00,
    0x65, 0x48, 0x89, 0x0c, 0x25, 0x48, 0x00, 0x00, 0x00, 0x65, 0xc7, 0x04, 0x25, 0x04, 0x00,
    0x00, 0x00, 0x78, 0x56, 0x34, 0x12, 0x65, 0xc7, 0x04, 0x25, 0x00, 0x00, 0x00, 0x00, 0x01,
    0x00, 0x00, 0x00, 0xf3, 0x90, 0x65, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x00, 0x00, 0x83, 0xf8,
    0x04, 0x74, 0x4a, 0x83, 0xf8, 0x08, 0x74, 0x2b, 0x65, 0xff, 0x0c, 0x25, 0x04, 0x00, 0x00,
    0x00, 0x75, 0xe2, 0x65, 0xf0, 0x0f, 0xba, 0x34, 0x25, 0x00, 0x00, 0x00, 0x00, 0x00, 0x72,
    0x14, 0xf3, 0x90, 0x65, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x00, 0x00, 0x83, 0xf8, 0x04, 0x74,
    0x1f, 0x83, 0xf8, 0x08, 0x75, 0xec, 0x65, 0xc7, 0x04, 0x25, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x65, 0x48, 0x8b, 0x04, 0x25, 0x08, 0x00, 0x00, 0x00, 0xe9, 0x1c, 0xff,
    0xff, 0xff, 0x65, 0x48, 0x8b, 0x04, 0x25, 0x40, 0x00, 0x00, 0x00, 0x65, 0xc7, 0x04, 0x25,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xe1,
};
enum {
    AT_SPINS = 0x6b,  /* imm32 of `mov dword gs:[4], SPINS` */
    AT_POSTED = 0x7b, /* first instruction after the post */
    AT_JMP_RCX = 0xe9,
};
/* How long a caller spins before it takes its call back (~10-20 us here;
 * the poller answers a call in 1-3): a poller that does not answer in that
 * time is busy or descheduled. */
#define SPINS 500u

static uint8_t *stub_page(struct kvm_vm *vm) { return vm->sys + (uint64_t)SYS_PAGE_SYSCALL * FJ_PAGE_SIZE; }

void kvm_calls_write_stub(struct kvm_vm *vm)
{
    _Static_assert(sizeof(struct kvm_call_box) == 128, "a call box is 128 bytes");
    _Static_assert(LAYOUT_MAX_VCPUS * 128 <= LAYOUT_CALL_BOX_PAGES * FJ_PAGE_SIZE, "boxes fit");
    uint8_t *page = stub_page(vm);
    memcpy(page + LAYOUT_STUB_FAST, fast_path, sizeof(fast_path));
    uint32_t spins = SPINS;
    memcpy(page + LAYOUT_STUB_FAST + AT_SPINS, &spins, 4);
    memset(page + LAYOUT_STUB_BITMAP, 0, 64);
    page[LAYOUT_STUB_AWAKE] = 0;
}

void kvm_calls_enable(struct kvm_vm *vm, const uint64_t bitmap[8])
{
    memcpy(stub_page(vm) + LAYOUT_STUB_BITMAP, bitmap, 64);
}

bool kvm_calls_enabled(struct kvm_vm *vm)
{
    uint64_t first;
    memcpy(&first, stub_page(vm) + LAYOUT_STUB_BITMAP, 8);
    return first != 0;
}

static bool in_fast_path(uint64_t rip, uint64_t *off)
{
    uint64_t start = layout_sys_va(SYS_PAGE_SYSCALL) + LAYOUT_STUB_FAST;
    *off = rip - start;
    return rip >= start && *off < sizeof(fast_path);
}

void kvm_calls_resolve(struct kvm_vm *vm, struct kvm_vcpu *cpu)
{
    struct kvm_regs *r = kvm_vcpu_regs(cpu);
    uint64_t off;
    if (cpu->syscall_mode != 1 || !in_fast_path(r->rip, &off))
        return;
    struct kvm_call_box *box = kvm_calls_box(vm, cpu->id);
    uint32_t state = atomic_load(&box->state);
    if (off >= AT_POSTED && state == KVM_CALL_DONE) {
        r->rax = box->ret; /* served: return it */
        r->rip = r->rcx;
    } else if (off == AT_JMP_RCX) {
        r->rip = r->rcx; /* RAX holds the result already */
    } else {
        /* Not served (not posted yet, posted, refused, taken back): the call
         * is made again from its SYSCALL instruction. Before the post RAX
         * still holds the number; after, the box does. */
        if (off >= AT_POSTED)
            r->rax = box->nr;
        r->rip = r->rcx - 2;
    }
    r->rflags = kvm_calls_user_rflags(r->r11);
    atomic_store(&box->state, KVM_CALL_IDLE);
    kvm_vcpu_regs_dirty(cpu);
}
