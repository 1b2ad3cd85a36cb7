/* Descriptor tables, stubs, page tables and control registers.
 *
 * Invariant: everything here is written before the vCPU first runs and never
 * changed afterwards; page tables in particular (see kvm_layout.h). */
#define _GNU_SOURCE
#include "kvm/kvm_cpu.h"
#include "kvm/kvm_cpuid.h"
#include "kvm/kvm_calls.h"
#include "kvm/kvm_vdso.h"
#include "kvm/vdso_data.h"

#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#define PTE_P 0x1ULL
#define PTE_RW 0x2ULL
#define PTE_US 0x4ULL
#define PTE_PS 0x80ULL
#define PTE_NX (1ULL << 63)

#define CR0_PE 0x1ULL
#define CR0_MP 0x2ULL
#define CR0_ET 0x10ULL
#define CR0_NE 0x20ULL
#define CR0_WP 0x10000ULL
#define CR0_AM 0x40000ULL
#define CR0_PG 0x80000000ULL
#define CR4_PAE 0x20ULL
#define CR4_OSFXSR 0x200ULL
#define CR4_OSXMMEXCPT 0x400ULL
#define CR4_OSXSAVE 0x40000ULL
#define EFER_SCE 0x1ULL
#define EFER_LME 0x100ULL
#define EFER_LMA 0x400ULL
#define EFER_NXE 0x800ULL

#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083
#define MSR_SFMASK 0xc0000084

static uint64_t *sys_page(struct kvm_vm *vm, enum layout_sys_page p)
{
    return (uint64_t *)(vm->sys + (uint64_t)p * FJ_PAGE_SIZE);
}

static gpa_t sys_page_gpa(struct kvm_vm *vm, unsigned p) { return vm->sys_gpa + (uint64_t)p * FJ_PAGE_SIZE; }

static void write_gdt_tss(struct kvm_vm *vm)
{
    uint64_t *gdt = sys_page(vm, SYS_PAGE_GDT);
    gdt[GDT_KERNEL_CS / 8] = 0x00af9b000000ffffULL;
    gdt[GDT_KERNEL_DS / 8] = 0x00cf93000000ffffULL;
    gdt[GDT_USER32_CS / 8] = 0x00cffb000000ffffULL;
    gdt[GDT_USER_DS / 8] = 0x00cff3000000ffffULL;
    gdt[GDT_USER_CS / 8] = 0x00affb000000ffffULL;
    uint64_t tss = layout_sys_va(SYS_PAGE_GDT) + LAYOUT_TSS_OFFSET;
    uint64_t limit = 0x67;
    gdt[GDT_TSS / 8] = (limit & 0xffff) | ((tss & 0xffffff) << 16) | (0x89ULL << 40) |
                       (((tss >> 24) & 0xff) << 56);
    gdt[GDT_TSS / 8 + 1] = tss >> 32;
    uint8_t *t = (uint8_t *)gdt + LAYOUT_TSS_OFFSET;
    uint64_t rsp0 = layout_sys_va(SYS_PAGE_EXC_STACK) + LAYOUT_EXC_STACK_PAGES * FJ_PAGE_SIZE;
    memcpy(t + 4, &rsp0, 8);
    uint16_t iomap = 0x68;
    memcpy(t + 0x66, &iomap, 2);
}

/* vCPU id >= 1: its own TSS (at the start of its page), RSP0 the page's end,
 * so exceptions on several vCPUs at once push their frames apart. */
static void write_vcpu_tss(struct kvm_vm *vm, unsigned id)
{
    uint8_t *t = vm->sys + layout_tss_offset(id);
    memset(t, 0, 0x68);
    uint64_t rsp0 = LAYOUT_SYS_VA + layout_exc_stack_top(id);
    memcpy(t + 4, &rsp0, 8);
    uint16_t iomap = 0x68;
    memcpy(t + 0x66, &iomap, 2);
}

/* Each exception stub is `out (0xe0 + vector), al` (clobbers nothing) then
 * `hlt`; the VMM handles the port exit and never resumes the stub. */
static void write_exception_stubs(struct kvm_vm *vm)
{
    uint8_t *stubs = (uint8_t *)sys_page(vm, SYS_PAGE_EXC_STUBS);
    uint64_t *idt = sys_page(vm, SYS_PAGE_IDT);
    for (unsigned v = 0; v < 32; v++) {
        uint8_t *s = stubs + v * 8;
        s[0] = 0xe6;
        s[1] = (uint8_t)(LAYOUT_EXC_PORT_BASE + v);
        s[2] = 0xf4;
        uint64_t off = layout_sys_va(SYS_PAGE_EXC_STUBS) + v * 8;
        idt[v * 2] = (off & 0xffff) | ((uint64_t)GDT_KERNEL_CS << 16) | (0x8eULL << 40) |
                     (((off >> 16) & 0xffff) << 48);
        idt[v * 2 + 1] = off >> 32;
    }
}

/* The LSTAR stub: `mov byte [rip + doorbell], 0; sysretq`. The store exits
 * as MMIO and the VMM serves the system call. Where SYSCALL stays in CPL3
 * (kvm_pvm) the VMM returns the vCPU to RCX/R11 itself; where it enters CPL0
 * (hardware virtualisation) the VMM resumes at the sysretq. */
static void write_syscall_stub(struct kvm_vm *vm)
{
    uint8_t *s = (uint8_t *)sys_page(vm, SYS_PAGE_SYSCALL);
    int32_t rel = (int32_t)(layout_sys_va(SYS_PAGE_DOORBELL) -
                            (layout_sys_va(SYS_PAGE_SYSCALL) + LAYOUT_SYSCALL_STUB_LEN));
    s[0] = 0xc6;
    s[1] = 0x05;
    memcpy(s + 2, &rel, 4);
    s[6] = 0x00;
    s[7] = 0x48; /* sysretq */
    s[8] = 0x0f;
    s[9] = 0x07;
}

static void write_page_tables(struct kvm_vm *vm)
{
    uint64_t *pml4 = sys_page(vm, SYS_PAGE_PML4);
    uint64_t *pdpt_low = sys_page(vm, SYS_PAGE_PDPT_LOW);
    uint64_t *pdpt_high = sys_page(vm, SYS_PAGE_PDPT_HIGH);
    uint64_t *pd_high = sys_page(vm, SYS_PAGE_PD_HIGH);
    uint64_t *pt_high = sys_page(vm, SYS_PAGE_PT_HIGH);
    uint64_t *pt_first = sys_page(vm, SYS_PAGE_PT_FIRST);
    const uint64_t table = PTE_P | PTE_RW | PTE_US;

    /* User window: identity map of RAM, all present, user, writable. */
    pml4[0] = sys_page_gpa(vm, SYS_PAGE_PDPT_LOW) | table;
    uint64_t gibs = FJ_ALIGN_UP(vm->ram_bytes, 1ULL << 30) >> 30;
    for (uint64_t g = 0; g < gibs; g++) {
        unsigned pd_page = SYS_PAGE_PD_LOW + (unsigned)g;
        uint64_t *pd = sys_page(vm, pd_page);
        pdpt_low[g] = sys_page_gpa(vm, pd_page) | table;
        for (uint64_t i = 0; i < 512; i++) {
            gpa_t gpa = (g << 30) + (i << 21);
            if (gpa >= vm->ram_bytes)
                break;
            pd[i] = gpa | PTE_P | PTE_RW | PTE_US | PTE_PS;
        }
    }
    uint64_t *pd0 = sys_page(vm, SYS_PAGE_PD_LOW);
    pd0[0] = sys_page_gpa(vm, SYS_PAGE_PT_FIRST) | table;
    for (uint64_t i = LAYOUT_USER_MIN / FJ_PAGE_SIZE; i < 512; i++)
        pt_first[i] = (i * FJ_PAGE_SIZE) | PTE_P | PTE_RW | PTE_US;

    /* System pages at LAYOUT_SYS_VA. */
    pml4[511] = sys_page_gpa(vm, SYS_PAGE_PDPT_HIGH) | table;
    pdpt_high[0] = sys_page_gpa(vm, SYS_PAGE_PD_HIGH) | table;
    pd_high[0] = sys_page_gpa(vm, SYS_PAGE_PT_HIGH) | table;
    pt_high[SYS_PAGE_GDT] = sys_page_gpa(vm, SYS_PAGE_GDT) | PTE_P | PTE_RW;
    pt_high[SYS_PAGE_IDT] = sys_page_gpa(vm, SYS_PAGE_IDT) | PTE_P;
    pt_high[SYS_PAGE_EXC_STUBS] = sys_page_gpa(vm, SYS_PAGE_EXC_STUBS) | PTE_P;
    pt_high[SYS_PAGE_SYSCALL] = sys_page_gpa(vm, SYS_PAGE_SYSCALL) | PTE_P | PTE_US;
    for (unsigned i = 0; i < LAYOUT_EXC_STACK_PAGES; i++)
        pt_high[SYS_PAGE_EXC_STACK + i] = sys_page_gpa(vm, SYS_PAGE_EXC_STACK + i) | PTE_P | PTE_RW;
    for (unsigned id = 1; id < LAYOUT_MAX_VCPUS; id++) /* written once; filled when vCPU id is set up */
        pt_high[SYS_PAGE_CPU_FIRST + id - 1] = sys_page_gpa(vm, SYS_PAGE_CPU_FIRST + id - 1) | PTE_P | PTE_RW;
    for (unsigned i = 0; i < LAYOUT_CALL_BOX_PAGES; i++)
        pt_high[SYS_PAGE_CALL_BOXES + i] = sys_page_gpa(vm, SYS_PAGE_CALL_BOXES + i) | PTE_P | PTE_RW | PTE_US | PTE_NX;
    pt_high[SYS_PAGE_DOORBELL] = layout_doorbell_gpa(vm->ram_bytes) | PTE_P | PTE_RW | PTE_US;
    for (unsigned i = 0; i < FJ_VDSO_PAGES; i++)
        pt_high[FJ_VDSO_FIRST_PAGE + i] = sys_page_gpa(vm, FJ_VDSO_FIRST_PAGE + i) | PTE_P | PTE_US;
    pt_high[FJ_VDSO_DATA_PAGE] = sys_page_gpa(vm, FJ_VDSO_DATA_PAGE) | PTE_P | PTE_US | PTE_NX;
}

int kvm_cpu_write_system_region(struct kvm_vm *vm)
{
    /* Zero without touching: only the pages written below become resident
     * (a memset would make all 2 MiB of every VM's region resident). */
    madvise(vm->sys, LAYOUT_SYS_BYTES, MADV_DONTNEED);
    write_gdt_tss(vm);
    write_exception_stubs(vm);
    write_syscall_stub(vm);
    kvm_calls_write_stub(vm);
    kvm_vdso_write(vm);
    write_page_tables(vm);
    return 0;
}

static int set_cpuid(struct kvm_vcpu *cpu, uint64_t *xcr0_out)
{
    struct kvm_cpuid2 *c;
    int err = kvm_supported_cpuid(&c);
    if (err < 0)
        return err;
    uint64_t xcr0 = 0x3;
    for (uint32_t i = 0; i < c->nent; i++) {
        struct kvm_cpuid_entry2 *e = &c->entries[i];
        if (e->function == 0xd && e->index == 0)
            xcr0 = (((uint64_t)e->edx << 32) | e->eax) & 0xe7; /* x87 SSE AVX, AVX-512 */
        if (e->function == 1)
            e->ecx |= 1u << 27; /* OSXSAVE mirrors CR4.OSXSAVE */
    }
    int r = ioctl(cpu->fd, KVM_SET_CPUID2, c);
    err = errno;
    free(c);
    *xcr0_out = xcr0 | 0x3;
    return r < 0 ? -err : 0;
}

static int set_msrs(struct kvm_vcpu *cpu)
{
    struct {
        struct kvm_msrs hdr;
        struct kvm_msr_entry e[4];
    } m = {0};
    m.hdr.nmsrs = 4;
    m.e[0].index = MSR_STAR;
    m.e[0].data = ((uint64_t)GDT_USER32_CS << 48) | ((uint64_t)GDT_KERNEL_CS << 32);
    m.e[1].index = MSR_LSTAR;
    m.e[1].data = layout_sys_va(SYS_PAGE_SYSCALL) + LAYOUT_STUB_FAST;
    m.e[2].index = MSR_CSTAR;
    m.e[2].data = layout_sys_va(SYS_PAGE_SYSCALL) + LAYOUT_STUB_FAST;
    m.e[3].index = MSR_SFMASK;
    m.e[3].data = 0x47700; /* TF DF IF IOPL NT AC, as Linux */
    int r = ioctl(cpu->fd, KVM_SET_MSRS, &m);
    if (r < 0)
        return -errno;
    return r == 4 ? 0 : -EINVAL;
}

static void segment(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code)
{
    memset(s, 0, sizeof(*s));
    s->selector = sel;
    s->limit = 0xffffffff;
    s->type = type;
    s->present = 1;
    s->dpl = sel & 3;
    s->s = 1;
    s->g = 1;
    s->l = code;
    s->db = !code;
}

void kvm_cpu_user_segments(struct kvm_sregs *s)
{
    uint64_t fs_base = s->fs.base, gs_base = s->gs.base;
    segment(&s->cs, GDT_USER_CS, 0xb, true);
    segment(&s->ss, GDT_USER_DS, 0x3, false);
    segment(&s->ds, GDT_USER_DS, 0x3, false);
    segment(&s->es, GDT_USER_DS, 0x3, false);
    segment(&s->fs, GDT_USER_DS, 0x3, false);
    segment(&s->gs, GDT_USER_DS, 0x3, false);
    s->fs.base = fs_base;
    s->gs.base = gs_base;
}

int kvm_cpu_setup_vcpu(struct kvm_vm *vm, struct kvm_vcpu *cpu)
{
    if (cpu->id)
        write_vcpu_tss(vm, cpu->id);
    int err = set_cpuid(cpu, &vm->xcr0);
    if (err < 0)
        return err;
    struct kvm_sregs s;
    if ((err = kvm_vcpu_get_sregs(cpu, &s)) < 0)
        return err;
    kvm_cpu_user_segments(&s);
    s.fs.base = 0;
    s.gs.base = layout_call_box_va(cpu->id); /* the stub's call box (kvm_calls.h) */
    memset(&s.tr, 0, sizeof(s.tr));
    s.tr.selector = GDT_TSS;
    s.tr.base = LAYOUT_SYS_VA + layout_tss_offset(cpu->id);
    s.tr.limit = 0x67;
    s.tr.type = 11;
    s.tr.present = 1;
    memset(&s.ldt, 0, sizeof(s.ldt));
    s.ldt.type = 2;
    s.ldt.unusable = 1;
    s.gdt.base = layout_sys_va(SYS_PAGE_GDT);
    s.gdt.limit = GDT_TSS + 15;
    s.idt.base = layout_sys_va(SYS_PAGE_IDT);
    s.idt.limit = 256 * 16 - 1;
    s.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_AM | CR0_PG;
    s.cr3 = vm->sys_gpa + (uint64_t)SYS_PAGE_PML4 * FJ_PAGE_SIZE;
    s.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT | CR4_OSXSAVE;
    s.efer = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;
    if ((err = kvm_vcpu_set_sregs(cpu, &s)) < 0)
        return err;
    struct kvm_xcrs xcrs = {0};
    xcrs.nr_xcrs = 1;
    xcrs.xcrs[0].xcr = 0;
    xcrs.xcrs[0].value = vm->xcr0;
    if (ioctl(cpu->fd, KVM_SET_XCRS, &xcrs) < 0)
        return -errno;
    if ((err = set_msrs(cpu)) < 0)
        return err;
    struct kvm_fpu fpu = {0};
    fpu.fcw = 0x37f;
    fpu.mxcsr = 0x1f80;
    if (ioctl(cpu->fd, KVM_SET_FPU, &fpu) < 0)
        return -errno;
    return 0;
}

int kvm_cpu_setup(struct kvm_vm *vm) { return kvm_cpu_setup_vcpu(vm, &vm->vcpu); }

int kvm_cpu_return_to_user(struct kvm_vcpu *cpu)
{
    struct kvm_sregs s;
    int err = kvm_vcpu_get_sregs(cpu, &s);
    if (err < 0)
        return err;
    kvm_cpu_user_segments(&s);
    return kvm_vcpu_set_sregs(cpu, &s);
}

int kvm_cpu_prepare(struct kvm_vm *vm)
{
    int err = kvm_cpu_write_system_region(vm);
    return err < 0 ? err : kvm_cpu_setup(vm);
}

int kvm_cpu_boot(struct kvm_vm *vm, gva_t rip, gva_t rsp)
{
    int err = kvm_cpu_prepare(vm);
    if (err < 0)
        return err;
    struct kvm_regs regs = {0};
    regs.rip = rip;
    regs.rsp = rsp;
    regs.rflags = 0x2;
    if (ioctl(vm->vcpu.fd, KVM_SET_REGS, &regs) < 0)
        return -errno;
    return 0;
}
