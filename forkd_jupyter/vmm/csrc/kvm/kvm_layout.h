/* The guest's fixed memory layout.
 *
 * Guest-physical:
 *   [0, ram_bytes)                  user RAM, one memfd; a memslot per
 *                                   LAYOUT_SLOT_BYTES, registered when a
 *                                   mapping first reaches it (slot 2 + k)
 *   [sys_gpa, sys_gpa + SYS_BYTES)  system region: descriptor tables, stubs,
 *                                   exception stack, page tables (memslot 1)
 *   doorbell_gpa = sys_gpa + SYS_BYTES   no memslot: a store there exits to
 *                                   the VMM as MMIO (the system-call doorbell)
 * Guest-virtual:
 *   [0, ram_bytes)                  the user window, identity-mapped to RAM
 *                                   (2 MiB pages; the first 2 MiB in 4 KiB
 *                                   pages with a NULL guard below USER_MIN)
 *   SYS_VA + page * 4 KiB           the pages of the system region listed
 *                                   below; supervisor-only except the
 *                                   system-call stub and the doorbell
 * Invariant: the page tables are written once, before the first KVM_RUN,
 * and never edited again (the shadow MMU would not see edits). */
#ifndef KVM_LAYOUT_H
#define KVM_LAYOUT_H

#include "lib/fj.h"

#define LAYOUT_USER_MIN 0x10000ULL /* NULL guard: [0, 64 KiB) not mapped */
#define LAYOUT_SYS_VA 0xffffff8000000000ULL
#define LAYOUT_SYS_BYTES (2ULL << 20)
#define LAYOUT_MAX_RAM (64ULL << 30)
/* The unit of guest RAM given to KVM (kvm_vm_cover); 2 MiB aligned, so a
 * guest 2 MiB page never straddles two memslots. */
#define LAYOUT_SLOT_BYTES (32ULL << 20)
#define LAYOUT_MAX_SLOTS (LAYOUT_MAX_RAM / LAYOUT_SLOT_BYTES)
#define LAYOUT_FIRST_RAM_SLOT 2 /* 1 is the system region's */

/* Pages of the system region, by index (both its GPA and VA offset). */
enum layout_sys_page {
    SYS_PAGE_GDT = 0,      /* GDT at 0, TSS at LAYOUT_TSS_OFFSET */
    SYS_PAGE_IDT = 1,      /* 256 gates */
    SYS_PAGE_EXC_STUBS = 2,/* one stub per vector: out (0xe0 + vector), al */
    SYS_PAGE_SYSCALL = 3,  /* LSTAR target, user-executable */
    SYS_PAGE_EXC_STACK = 4,/* 4 pages; TSS.RSP0 = its top */
    SYS_PAGE_DOORBELL = 8, /* VA only: maps to doorbell_gpa */
    SYS_PAGE_PML4 = 9,
    SYS_PAGE_PDPT_LOW = 10,
    SYS_PAGE_PDPT_HIGH = 11,
    SYS_PAGE_PD_HIGH = 12,
    SYS_PAGE_PT_HIGH = 13,
    SYS_PAGE_PT_FIRST = 14, /* 4 KiB entries for the user window's first 2 MiB */
    SYS_PAGE_PD_LOW = 15,   /* one per GiB of RAM, up to LAYOUT_MAX_RAM */
    SYS_PAGE_CALL_BOXES = 104, /* 4 pages: a 128-byte call box per vCPU (kvm_calls.h), user-writable */
    /* 96..99: the vDSO image, user-executable; 100: its clock page,
     * user-readable (vdso_data.h, FJ_VDSO_FIRST_PAGE) */
    SYS_PAGE_CPU_FIRST = 112, /* vCPU k >= 1: page 111 + k holds its TSS at offset 0, its exception stack above */
};
/* vCPUs per VM (guest threads alive at once); vCPU 0 uses the GDT page's TSS. */
#define LAYOUT_MAX_VCPUS 128
#define LAYOUT_EXC_STACK_PAGES 4
#define LAYOUT_TSS_OFFSET 0x800
#define LAYOUT_EXC_PORT_BASE 0xe0 /* exception vector v exits on port 0xe0 + v */
#define LAYOUT_SYSCALL_STUB_LEN 7 /* mov byte [rip+doorbell], 0 */
/* In the system-call page: LSTAR enters at LAYOUT_STUB_FAST (kvm_calls.c),
 * whose slow path jumps to the doorbell store at offset 0. */
#define LAYOUT_STUB_FAST 16
#define LAYOUT_STUB_BITMAP 0x800 /* 512 bits: numbers offered to the poller */
#define LAYOUT_STUB_AWAKE 0x840  /* byte: a poller is awake */
#define LAYOUT_CALL_BOX_PAGES 4

#define GDT_KERNEL_CS 0x10
#define GDT_KERNEL_DS 0x18
#define GDT_USER32_CS 0x23
#define GDT_USER_DS 0x2b
#define GDT_USER_CS 0x33
#define GDT_TSS 0x40

static inline gva_t layout_sys_va(enum layout_sys_page p) { return LAYOUT_SYS_VA + (uint64_t)p * FJ_PAGE_SIZE; }
static inline gpa_t layout_sys_gpa(uint64_t ram_bytes) { return FJ_ALIGN_UP(ram_bytes, 1ULL << 30); }
static inline gpa_t layout_doorbell_gpa(uint64_t ram_bytes) { return layout_sys_gpa(ram_bytes) + LAYOUT_SYS_BYTES; }
/* The TSS of vCPU id and the top of its exception stack (offsets in the system region). */
static inline uint64_t layout_tss_offset(unsigned id)
{
    return id == 0 ? (uint64_t)SYS_PAGE_GDT * FJ_PAGE_SIZE + LAYOUT_TSS_OFFSET
                   : (uint64_t)(SYS_PAGE_CPU_FIRST + id - 1) * FJ_PAGE_SIZE;
}
static inline uint64_t layout_exc_stack_top(unsigned id)
{
    return id == 0 ? (uint64_t)(SYS_PAGE_EXC_STACK + LAYOUT_EXC_STACK_PAGES) * FJ_PAGE_SIZE
                   : (uint64_t)(SYS_PAGE_CPU_FIRST + id) * FJ_PAGE_SIZE;
}
static inline gva_t layout_call_box_va(unsigned id)
{
    return layout_sys_va(SYS_PAGE_CALL_BOXES) + (uint64_t)id * 128;
}
static inline gva_t layout_syscall_return_rip(void) { return layout_sys_va(SYS_PAGE_SYSCALL) + LAYOUT_SYSCALL_STUB_LEN; }

#endif
