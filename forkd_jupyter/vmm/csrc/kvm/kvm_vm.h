/* A KVM virtual machine whose vCPUs start in 64-bit user mode: vCPU 0 is
 * created with the VM, the others (one per further guest thread) with
 * kvm_vcpu_create. */
#ifndef KVM_VM_H
#define KVM_VM_H

#include <linux/kvm.h>

#include "kvm/kvm_layout.h"
#include "lib/fj.h"

/* One vCPU. Invariant: only the host thread that runs it touches its
 * registers while it may be in KVM_RUN. */
struct kvm_vcpu {
    int fd;
    unsigned id; /* KVM vCPU id, also its slot in the system region (TSS, exception stack) */
    struct kvm_run *run; /* mmap of the vCPU; regs travel in run->s.regs */
    size_t run_size;
    /* How SYSCALL behaves here, learned at the first one: 0 unknown, 1 it
     * stays in CPL3 (kvm_pvm: the VMM returns to RCX itself), 2 it enters
     * CPL0 (hardware virtualisation: resume at the stub's sysretq). */
    int syscall_mode;
};

/* A range of RAM backed by another host object (kvm_foreign.c). */
struct kvm_foreign {
    gpa_t gpa;
    uint64_t len;
    int fd;       /* owned duplicate */
    uint64_t off; /* of gpa in the object */
    uint64_t ino; /* the object's identity (its inode) */
    bool detached; /* the range holds the VM's own RAM for now (kvm_vm_privatize_foreign) */
};

struct kvm_vm {
    int vm_fd;
    struct kvm_vcpu vcpu; /* vCPU 0 */
    int ram_fd;           /* memfd holding user RAM, or the snapshot image a child maps; owned */
    uint8_t *ram;         /* host view of user RAM: MAP_SHARED on ram_fd, or MAP_PRIVATE (child) */
    bool ram_private;     /* copy-on-write view of an immutable image: never write ram_fd */
    bool ram_borrowed;    /* ram is another VM's (vfork): never unmapped or punched from here */
    uint64_t ram_bytes;
    /* RAM slots KVM knows (one bit each, LAYOUT_SLOT_BYTES of RAM): KVM
     * keeps ~2.5 bytes of tables per page of a memslot under the shadow
     * MMU, so RAM is registered as the guest maps it and a sandbox pays
     * for what its processes map, not for its limit. A bit is set only
     * after its slot exists; slots are never removed before the VM. */
    uint64_t covered[LAYOUT_MAX_SLOTS / 64];
    /* Covered slots KVM logs dirty pages of (one bit each). KVM maps a
     * logged slot in 4 KiB pages only, so a child's slot that held none of
     * its own memory when covered starts unlogged: the guest reads the
     * image through large mappings where the host has them. Invariant: at
     * the start of each epoch an unlogged slot holds no anonymous page, so
     * every anonymous page found there later (fj_pagemap_anon) was written
     * since; a collection that finds one logs the slot from then on. */
    uint64_t logged[LAYOUT_MAX_SLOTS / 64];
    /* KVM leaves its dirty bits alone until told to clear them (manual
     * protection), so they can be read without starting a new epoch. */
    bool dirty_manual;
    uint8_t *sys; /* host view of the system region (anonymous) */
    gpa_t sys_gpa;
    uint64_t xcr0;
    /* Called by kvm_vm_discard before (after = false) and after (true)
     * dropping a range: a live copy in flight preserves the range first, and a
     * userfaultfd registration covers a replaced private mapping again. */
    void (*discard_hook)(struct kvm_vm *vm, gpa_t gpa, uint64_t len, bool after);
    void *owner;
    /* Pages the VMM itself wrote or discarded since the last
     * kvm_vm_collect_dirty (KVM's dirty log sees only guest writes). One bit
     * per page; set under the sandbox's lock (core/sandbox.h: big_lock). */
    uint64_t *vmm_dirty;
    /* Spare pages (kvm_discard.c): host pages of RAM no mapping reaches,
     * kept zeroed for the guest's next mapping there. One bit per page,
     * allocated at the first; spare_pages bits are set. Invariant: a set
     * bit's page is in no VMA and reads as zero, so giving it back to the
     * host changes nothing the guest can see. Under big_lock. */
    uint64_t *spare;
    uint64_t spare_pages;
    /* The guest's clock page (kvm_vdso.c): 0 not yet set up, 1 kept
     * current, 2 off (the guest makes system calls). */
    int vdso_state;
    struct kvm_foreign *foreign; /* disjoint ranges backed by shared objects */
    size_t n_foreign;
    int64_t vdso_tsc_offset; /* guest TSC - host TSC */
    /* Shorter image runs mapped into this VM's RAM at its spawn
     * (snap_map.c), counted in kvm_vm_mapped_runs_live until it is
     * destroyed. */
    uint64_t mapped_runs;
};

/* Adds n shorter image runs mapped into vm's RAM to the process-wide count,
 * which vm's destruction takes back. */
void kvm_vm_add_mapped_runs(struct kvm_vm *vm, uint64_t n);
/* Shorter image runs mapped into the RAM of the VMs alive in this process:
 * each a mapping of the host process, which the host limits. */
uint64_t kvm_vm_mapped_runs_live(void);

/* The process-wide /dev/kvm descriptor, opened on first use; -errno. */
int kvm_dev_fd(void);

/* Creates the VM, its memslots and vCPU. ram_fd < 0 makes a new memfd of
 * ram_bytes (a multiple of 2 MiB); otherwise ram_fd is adopted. -errno. */
int kvm_vm_create(struct kvm_vm *vm, uint64_t ram_bytes, int ram_fd);
/* Like kvm_vm_create, with RAM a private copy-on-write view of image_fd (a
 * snapshot image, which stays unchanged). image_fd is duplicated. */
int kvm_vm_create_cow(struct kvm_vm *vm, uint64_t ram_bytes, int image_fd);
/* A VM whose RAM is owner's own memory, shared (a vfork child runs on its
 * parent's memory); owner must outlive it. */
int kvm_vm_create_borrowing(struct kvm_vm *vm, const struct kvm_vm *owner);
/* Registers the memslots under [gpa, gpa + len) that are not yet (the
 * guest may touch the range from now on). -errno. */
int kvm_vm_cover(struct kvm_vm *vm, gpa_t gpa, uint64_t len);
/* Guest memory that stops holding data (kvm_discard.c). */
/* Makes [gpa, gpa + len) read as zero and returns its memory to the host. */
void kvm_vm_discard(struct kvm_vm *vm, gpa_t gpa, uint64_t len);
/* Makes [gpa, gpa + len), which no mapping reaches any more, read as zero;
 * as many of its host pages as fit in a quarter of RAM stay as spares,
 * zeroed: a later mapping there costs the guest no fault. */
void kvm_vm_release(struct kvm_vm *vm, gpa_t gpa, uint64_t len);
/* [gpa, gpa + len) is mapped again: its spare pages are the mapping's. */
void kvm_vm_reuse(struct kvm_vm *vm, gpa_t gpa, uint64_t len);
/* Returns every spare page to the host. */
void kvm_vm_trim(struct kvm_vm *vm);
/* The host allocates [gpa, gpa + len)'s pages now, for a guest about to
 * write them; what the range reads does not change (kvm_populate.c). */
void kvm_vm_populate(struct kvm_vm *vm, gpa_t gpa, uint64_t len);
void kvm_vm_destroy(struct kvm_vm *vm);

/* Creates vCPU id (1 <= id < LAYOUT_MAX_VCPUS) of vm; not set up yet
 * (kvm_cpu_setup_vcpu). -errno (-EEXIST when the id was created before). */
int kvm_vcpu_create(struct kvm_vm *vm, unsigned id, struct kvm_vcpu *out);
void kvm_vcpu_destroy(struct kvm_vcpu *cpu);

/* Register access through kvm_run's synced registers. */
static inline struct kvm_regs *kvm_vcpu_regs(struct kvm_vcpu *cpu) {
    return &cpu->run->s.regs.regs;
}
static inline void kvm_vcpu_regs_dirty(struct kvm_vcpu *cpu) {
    cpu->run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
}
static inline struct kvm_regs *kvm_vm_regs(struct kvm_vm *vm) { return kvm_vcpu_regs(&vm->vcpu); }

int kvm_vcpu_get_sregs(struct kvm_vcpu *cpu, struct kvm_sregs *s);
int kvm_vcpu_set_sregs(struct kvm_vcpu *cpu, const struct kvm_sregs *s);
int kvm_vcpu_set_fs_base(struct kvm_vcpu *cpu, uint64_t base);
uint64_t kvm_vcpu_get_fs_base(struct kvm_vcpu *cpu);

/* Shared memory between VMs (kvm_foreign.c): [gpa, gpa + len) becomes
 * fd's pages from off (a private view mapping of fd). -errno. */
int kvm_vm_map_foreign(struct kvm_vm *vm, gpa_t gpa, uint64_t len, int fd, uint64_t off);
/* [gpa, gpa + len) is the VM's own RAM again (what was foreign reads as
 * zero). Called by kvm_vm_discard. */
void kvm_vm_drop_foreign(struct kvm_vm *vm, gpa_t gpa, uint64_t len);
/* dst maps the same objects at the same places as src (fork). */
int kvm_vm_copy_foreign(struct kvm_vm *dst, const struct kvm_vm *src);
/* The first run of [from, end) not backed by a foreign range: its start
 * (end when none) and, in *run_end, its end. */
gpa_t kvm_vm_own_run(const struct kvm_vm *vm, gpa_t from, gpa_t end, gpa_t *run_end);
/* [gpa, gpa + len) of the VM's own RAM becomes shared through fd (a new
 * object of at least len bytes), its contents kept. -errno. */
int kvm_vm_share_own(struct kvm_vm *vm, gpa_t gpa, uint64_t len, int fd);
/* Every foreign range becomes the VM's own RAM again, keeping its
 * contents (a process that no longer shares memory, before a snapshot);
 * each stays listed, detached, so kvm_vm_reattach_foreign can share it
 * again. */
int kvm_vm_privatize_foreign(struct kvm_vm *vm);
/* Detached ranges are their objects again, with the RAM's contents. */
int kvm_vm_reattach_foreign(struct kvm_vm *vm);
/* Foreign ranges count as written (another VM may have written them). */
void kvm_vm_mark_foreign_dirty(struct kvm_vm *vm);
void kvm_vm_free_foreign(struct kvm_vm *vm);

/* Marks [gpa, gpa + len) written by the VMM. */
static inline void kvm_vm_mark_dirty(struct kvm_vm *vm, gpa_t gpa, uint64_t len) {
    if (!vm->vmm_dirty || len == 0)
        return;
    for (uint64_t p = gpa / FJ_PAGE_SIZE; p <= (gpa + len - 1) / FJ_PAGE_SIZE; p++)
        vm->vmm_dirty[p / 64] |= 1ULL << (p % 64);
}
/* Fills bitmap (one bit per RAM page) with every page written since the
 * previous call, by the guest or the VMM, and starts a new epoch. */
int kvm_vm_collect_dirty(struct kvm_vm *vm, uint64_t *bitmap);
/* Fills bitmap with the pages written since the previous collection,
 * without starting a new epoch; -EOPNOTSUPP without manual protection. */
int kvm_vm_peek_dirty(struct kvm_vm *vm, uint64_t *bitmap);
/* A collection in two steps, for a caller that leaves some written pages
 * writable (the vCPUs stopped in between): kvm_vm_collect_begin fills
 * bitmap as kvm_vm_collect_dirty does but leaves KVM's bits set
 * (-EOPNOTSUPP without manual protection); kvm_vm_collect_end re-protects
 * the pages set in rearm and starts the new epoch. A page written but not
 * re-armed takes no write fault any more, and every later read reports it
 * as written until a collection re-arms it: a superset, never a loss. */
int kvm_vm_collect_begin(struct kvm_vm *vm, uint64_t *bitmap);
int kvm_vm_collect_end(struct kvm_vm *vm, const uint64_t *rearm);
static inline size_t kvm_vm_bitmap_bytes(const struct kvm_vm *vm) {
    return (size_t)((vm->ram_bytes / FJ_PAGE_SIZE + 63) / 64 * 8);
}

/* Guest memory KVM maps for the VM now, by page size (kvm_stats.c); -errno
 * when KVM does not say. */
int kvm_vm_mapped_pages(const struct kvm_vm *vm, uint64_t *pages_4k, uint64_t *pages_2m);

/* Runs cpu until the next exit; -errno (-EINTR when kicked). The caller
 * refreshes the guest's clock page first (kvm_vdso_refresh). */
int kvm_vcpu_run(struct kvm_vcpu *cpu);
/* kvm_vdso_refresh, then kvm_vcpu_run of vCPU 0 (one-vCPU users). */
int kvm_vm_run(struct kvm_vm *vm);

#endif
