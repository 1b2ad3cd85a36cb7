/* VM, memslots and vCPU creation. */
#define _GNU_SOURCE
#include "kvm/kvm_vm.h"
#include "kvm/kvm_vdso.h"
#include "lib/pagemap.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>



static int kvm_fd = -1;
static int kvm_fd_errno;
static pthread_once_t kvm_once = PTHREAD_ONCE_INIT;

static void kvm_open_once(void)
{
    kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    kvm_fd_errno = kvm_fd < 0 ? errno : 0;
}

int kvm_dev_fd(void)
{
    pthread_once(&kvm_once, kvm_open_once);
    return kvm_fd >= 0 ? kvm_fd : -kvm_fd_errno;
}

static int set_memslot(int vm_fd, uint32_t slot, gpa_t gpa, void *host, uint64_t bytes, uint32_t flags)
{
    struct kvm_userspace_memory_region region = {
        .slot = slot,
        .flags = flags,
        .guest_phys_addr = gpa,
        .memory_size = bytes,
        .userspace_addr = (uint64_t)(uintptr_t)host,
    };
    return ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0 ? -errno : 0;
}

/* In a private view, the image's holes of 2 MiB and more become anonymous
 * memory: a child's fresh memory then costs one zeroed page on its first
 * write, where a hole of the image file took a page of the file (zeroed,
 * kept in the image for every child) and a copy of it. Both read as zero;
 * the image below is never changed either way. */
static int anonymous_holes(struct kvm_vm *vm, int image_fd)
{
    off_t end = (off_t)vm->ram_bytes;
    for (off_t hole = lseek(image_fd, 0, SEEK_HOLE); hole >= 0 && hole < end;) {
        off_t data = lseek(image_fd, hole, SEEK_DATA);
        if (data < 0)
            data = end; /* ENXIO: a hole to the end */
        uint64_t from = FJ_ALIGN_UP((uint64_t)hole, FJ_HUGE_SIZE);
        uint64_t to = FJ_ALIGN_DOWN((uint64_t)FJ_MIN(data, end), FJ_HUGE_SIZE);
        if (to > from &&
            mmap(vm->ram + from, to - from, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0) == MAP_FAILED)
            return -errno;
        if (data >= end)
            break;
        hole = lseek(image_fd, data, SEEK_HOLE);
    }
    return 0;
}

static int map_ram(struct kvm_vm *vm, uint64_t ram_bytes, int ram_fd, bool private)
{
    if (vm->ram_borrowed) {
        vm->ram_bytes = ram_bytes;
        return 0;
    }
    if (ram_fd < 0) {
        ram_fd = memfd_create("forkd-guest-ram", MFD_CLOEXEC);
        if (ram_fd < 0)
            return -errno;
        vm->ram_fd = ram_fd;
        if (ftruncate(ram_fd, (off_t)ram_bytes) < 0)
            return -errno;
    }
    vm->ram_bytes = ram_bytes;
    vm->ram_private = private;
    void *ram = mmap(NULL, ram_bytes, PROT_READ | PROT_WRITE, (private ? MAP_PRIVATE : MAP_SHARED) | MAP_NORESERVE,
                     ram_fd, 0);
    if (ram == MAP_FAILED)
        return -errno;
    vm->ram = ram;
    return private ? anonymous_holes(vm, ram_fd) : 0;
}

static int vm_create(struct kvm_vm *vm, uint64_t ram_bytes, int ram_fd, bool private, uint8_t *borrow);

int kvm_vm_create(struct kvm_vm *vm, uint64_t ram_bytes, int ram_fd)
{
    return vm_create(vm, ram_bytes, ram_fd, false, NULL);
}

int kvm_vm_create_borrowing(struct kvm_vm *vm, const struct kvm_vm *owner)
{
    return vm_create(vm, owner->ram_bytes, -1, owner->ram_private, owner->ram);
}

int kvm_vm_create_cow(struct kvm_vm *vm, uint64_t ram_bytes, int image_fd)
{
    int fd = fcntl(image_fd, F_DUPFD_CLOEXEC, 3);
    if (fd < 0)
        return -errno;
    return vm_create(vm, ram_bytes, fd, true, NULL); /* adopts fd, even on failure */
}

static bool slot_bit(const uint64_t *bits, uint64_t k)
{
    return __atomic_load_n(&bits[k / 64], __ATOMIC_ACQUIRE) & (1ULL << (k % 64));
}

static bool slot_covered(const struct kvm_vm *vm, uint64_t k) { return slot_bit(vm->covered, k); }

/* Bytes of RAM slot k holds (the last one may be short). */
static uint64_t slot_bytes(const struct kvm_vm *vm, uint64_t k)
{
    return FJ_MIN(LAYOUT_SLOT_BYTES, vm->ram_bytes - k * LAYOUT_SLOT_BYTES);
}

static int register_slot(struct kvm_vm *vm, uint64_t k, bool logged)
{
    gpa_t start = k * LAYOUT_SLOT_BYTES;
    int err = set_memslot(vm->vm_fd, LAYOUT_FIRST_RAM_SLOT + (uint32_t)k, start, vm->ram + start,
                          slot_bytes(vm, k), logged ? KVM_MEM_LOG_DIRTY_PAGES : 0);
    if (err == 0 && logged)
        __atomic_fetch_or(&vm->logged[k / 64], 1ULL << (k % 64), __ATOMIC_RELEASE);
    return err;
}

/* Pages of slot k the process holds as its own anonymous memory, set in
 * bitmap (a RAM bitmap; NULL: stop at the first). -errno. */
static int64_t slot_anon(const struct kvm_vm *vm, uint64_t k, uint64_t *bitmap)
{
    uint64_t at = (uint64_t)(uintptr_t)(vm->ram + k * LAYOUT_SLOT_BYTES);
    return fj_pagemap_anon(at, at + slot_bytes(vm, k), (uint64_t)(uintptr_t)vm->ram, bitmap,
                           bitmap == NULL);
}

/* A child's slot may start unlogged when nothing in it is the child's own
 * yet: what placing the chain and the working-set hint copied in at spawn
 * are not writes of this epoch, and only logging tells them apart. */
static bool may_start_unlogged(const struct kvm_vm *vm, uint64_t k)
{
    return vm->ram_private && !vm->ram_borrowed && vm->dirty_manual && slot_anon(vm, k, NULL) == 0;
}

int kvm_vm_cover(struct kvm_vm *vm, gpa_t gpa, uint64_t len)
{
    if (len == 0 || gpa >= vm->ram_bytes)
        return 0;
    uint64_t last = (FJ_MIN(gpa + len, vm->ram_bytes) - 1) / LAYOUT_SLOT_BYTES;
    for (uint64_t k = gpa / LAYOUT_SLOT_BYTES; k <= last; k++) {
        if (slot_covered(vm, k))
            continue;
        /* Guest RAM logs dirty pages, so a diff snapshot knows what changed
         * (or starts unlogged, kvm_vm.h: logged). Registering a slot again
         * with the same range is a no-op for KVM. */
        int err = register_slot(vm, k, !may_start_unlogged(vm, k));
        if (err < 0)
            return err;
        __atomic_fetch_or(&vm->covered[k / 64], 1ULL << (k % 64), __ATOMIC_RELEASE);
    }
    return 0;
}

/* The VMM's dirty bitmap lives in its own anonymous mapping: a page of it
 * (128 MiB of RAM) takes memory only once a bit in it is set, and
 * clearing hands the pages back instead of writing zeros over them. */
static uint64_t *new_vmm_dirty(const struct kvm_vm *vm)
{
    void *p = mmap(NULL, kvm_vm_bitmap_bytes(vm), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void clear_vmm_dirty(struct kvm_vm *vm)
{
    if (madvise(vm->vmm_dirty, kvm_vm_bitmap_bytes(vm), MADV_DONTNEED) < 0)
        memset(vm->vmm_dirty, 0, kvm_vm_bitmap_bytes(vm));
}

/* Clears KVM's dirty bits of slot k's pages set in part (its slice of a
 * RAM bitmap), write-protecting them so their next write is logged. */
static int rearm_slot(struct kvm_vm *vm, uint64_t k, const uint64_t *part)
{
    struct kvm_clear_dirty_log done = {
        .slot = LAYOUT_FIRST_RAM_SLOT + (uint32_t)k,
        .num_pages = (uint32_t)(slot_bytes(vm, k) / FJ_PAGE_SIZE),
        .dirty_bitmap = (void *)part,
    };
    return ioctl(vm->vm_fd, KVM_CLEAR_DIRTY_LOG, &done) < 0 ? -errno : 0;
}

/* The changes of unlogged slot k: its anonymous pages, counted, and set in
 * bitmap when not NULL. With log_if_written, a slot that has any is logged
 * from then on (the invariant of kvm_vm.h: logged). The count or -errno. */
static int64_t unlogged_changes(struct kvm_vm *vm, uint64_t k, uint64_t *bitmap, bool log_if_written)
{
    int64_t n = slot_anon(vm, k, bitmap);
    if (n > 0 && log_if_written) {
        int err = register_slot(vm, k, true);
        if (err < 0)
            return err;
    }
    return n;
}

/* Reads the guest's dirty bits of every registered slot into bitmap
 * (zero elsewhere); clears them in KVM, re-arming the log, when clear (an
 * unlogged slot's: unlogged_changes). */
static int read_dirty_log(struct kvm_vm *vm, uint64_t *bitmap, bool clear)
{
    /* A slot registered after this read starts clean, and the guest could
     * not write its range before. */
    memset(bitmap, 0, kvm_vm_bitmap_bytes(vm));
    for (uint64_t k = 0; k * LAYOUT_SLOT_BYTES < vm->ram_bytes; k++) {
        if (!slot_covered(vm, k))
            continue;
        if (!slot_bit(vm->logged, k)) {
            int64_t n = unlogged_changes(vm, k, bitmap, clear);
            if (n < 0)
                return (int)n;
            continue;
        }
        uint32_t slot = LAYOUT_FIRST_RAM_SLOT + (uint32_t)k;
        uint64_t *part = bitmap + k * (LAYOUT_SLOT_BYTES / FJ_PAGE_SIZE / 64);
        struct kvm_dirty_log log = {.slot = slot, .dirty_bitmap = part};
        if (ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0)
            return -errno;
        if (!clear || !vm->dirty_manual)
            continue; /* without manual protection the read itself cleared them */
        int err = rearm_slot(vm, k, part);
        if (err < 0)
            return err;
    }
    return 0;
}

/* Adds the pages the VMM itself wrote (KVM's log sees only the guest's). */
static void add_vmm_dirty(const struct kvm_vm *vm, uint64_t *bitmap)
{
    size_t words = kvm_vm_bitmap_bytes(vm) / 8;
    for (size_t i = 0; i < words; i++) /* (relaxed: a peek may race a write; a hint's read) */
        bitmap[i] |= __atomic_load_n(&vm->vmm_dirty[i], __ATOMIC_RELAXED);
}

int kvm_vm_collect_dirty(struct kvm_vm *vm, uint64_t *bitmap)
{
    int err = read_dirty_log(vm, bitmap, true);
    if (err < 0)
        return err;
    kvm_vm_mark_foreign_dirty(vm); /* other VMs write there unlogged */
    add_vmm_dirty(vm, bitmap);
    clear_vmm_dirty(vm);
    return 0;
}

int kvm_vm_peek_dirty(struct kvm_vm *vm, uint64_t *bitmap)
{
    if (!vm->dirty_manual)
        return -EOPNOTSUPP;
    int err = read_dirty_log(vm, bitmap, false);
    if (err < 0)
        return err;
    add_vmm_dirty(vm, bitmap);
    return 0;
}

int kvm_vm_collect_begin(struct kvm_vm *vm, uint64_t *bitmap)
{
    if (!vm->dirty_manual)
        return -EOPNOTSUPP;
    kvm_vm_mark_foreign_dirty(vm); /* other VMs write there unlogged */
    return kvm_vm_peek_dirty(vm, bitmap);
}

int kvm_vm_collect_end(struct kvm_vm *vm, const uint64_t *rearm)
{
    for (uint64_t k = 0; k * LAYOUT_SLOT_BYTES < vm->ram_bytes; k++) {
        if (!slot_covered(vm, k))
            continue;
        int64_t err;
        if (slot_bit(vm->logged, k))
            err = rearm_slot(vm, k, rearm + k * (LAYOUT_SLOT_BYTES / FJ_PAGE_SIZE / 64));
        else
            err = unlogged_changes(vm, k, NULL, true); /* as read_dirty_log's clear */
        if (err < 0)
            return (int)err;
    }
    clear_vmm_dirty(vm);
    return 0;
}

static int vm_create(struct kvm_vm *vm, uint64_t ram_bytes, int ram_fd, bool private, uint8_t *borrow)
{
    memset(vm, 0, sizeof(*vm));
    vm->vm_fd = vm->vcpu.fd = -1;
    vm->ram = borrow;
    vm->ram_borrowed = borrow != NULL;
    vm->ram_fd = ram_fd; /* adopted now, so every failure below closes it */
    if (ram_bytes == 0 || ram_bytes % FJ_HUGE_SIZE || ram_bytes > LAYOUT_MAX_RAM) {
        kvm_vm_destroy(vm);
        return -EINVAL;
    }
    int kfd = kvm_dev_fd();
    int err = kfd;
    if (kfd < 0)
        goto fail;
    vm->vm_fd = ioctl(kfd, KVM_CREATE_VM, 0);
    if (vm->vm_fd < 0) {
        err = -errno;
        goto fail;
    }
    fcntl(vm->vm_fd, F_SETFD, FD_CLOEXEC);
    struct kvm_enable_cap manual = {
        .cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
        .args = {KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE},
    };
    vm->dirty_manual = ioctl(vm->vm_fd, KVM_ENABLE_CAP, &manual) == 0;
    if ((err = map_ram(vm, ram_bytes, ram_fd, private)) < 0)
        goto fail;
    vm->sys_gpa = layout_sys_gpa(ram_bytes);
    vm->sys = mmap(NULL, LAYOUT_SYS_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (vm->sys == MAP_FAILED) {
        vm->sys = NULL;
        err = -errno;
        goto fail;
    }
    /* RAM's memslots come with the mappings that reach them (kvm_vm_cover). */
    if ((err = set_memslot(vm->vm_fd, 1, vm->sys_gpa, vm->sys, LAYOUT_SYS_BYTES, 0)) < 0)
        goto fail;
    if (!(vm->vmm_dirty = new_vmm_dirty(vm))) {
        err = -ENOMEM;
        goto fail;
    }
    if ((err = kvm_vcpu_create(vm, 0, &vm->vcpu)) < 0)
        goto fail;
    return 0;
fail:
    kvm_vm_destroy(vm);
    return err;
}

int kvm_vcpu_create(struct kvm_vm *vm, unsigned id, struct kvm_vcpu *out)
{
    memset(out, 0, sizeof(*out));
    out->fd = -1;
    out->id = id;
    if (id >= LAYOUT_MAX_VCPUS)
        return -EAGAIN;
    int kfd = kvm_dev_fd();
    if (kfd < 0)
        return kfd;
    int run_size = ioctl(kfd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (run_size < 0)
        return -errno;
    out->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, id);
    if (out->fd < 0) {
        int err = -errno;
        out->fd = -1;
        return err;
    }
    fcntl(out->fd, F_SETFD, FD_CLOEXEC);
    out->run_size = (size_t)run_size;
    out->run = mmap(NULL, out->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, out->fd, 0);
    if (out->run == MAP_FAILED) {
        int err = -errno;
        out->run = NULL;
        kvm_vcpu_destroy(out);
        return err;
    }
    return 0;
}

void kvm_vcpu_destroy(struct kvm_vcpu *cpu)
{
    if (cpu->run)
        munmap(cpu->run, cpu->run_size);
    if (cpu->fd >= 0)
        close(cpu->fd);
    cpu->run = NULL;
    cpu->fd = -1;
}

static _Atomic uint64_t mapped_runs_live;

void kvm_vm_add_mapped_runs(struct kvm_vm *vm, uint64_t n)
{
    vm->mapped_runs += n;
    atomic_fetch_add(&mapped_runs_live, n);
}

uint64_t kvm_vm_mapped_runs_live(void) { return atomic_load(&mapped_runs_live); }

void kvm_vm_destroy(struct kvm_vm *vm)
{
    atomic_fetch_sub(&mapped_runs_live, vm->mapped_runs);
    kvm_vm_free_foreign(vm);
    kvm_vcpu_destroy(&vm->vcpu);
    if (vm->vm_fd >= 0)
        close(vm->vm_fd);
    if (vm->ram && !vm->ram_borrowed)
        munmap(vm->ram, vm->ram_bytes);
    if (vm->ram_fd >= 0)
        close(vm->ram_fd);
    if (vm->sys)
        munmap(vm->sys, LAYOUT_SYS_BYTES);
    if (vm->vmm_dirty)
        munmap(vm->vmm_dirty, kvm_vm_bitmap_bytes(vm));
    if (vm->spare)
        munmap(vm->spare, kvm_vm_bitmap_bytes(vm));
    memset(vm, 0, sizeof(*vm));
    vm->vm_fd = vm->vcpu.fd = vm->ram_fd = -1;
}

int kvm_vcpu_get_sregs(struct kvm_vcpu *cpu, struct kvm_sregs *s)
{
    return ioctl(cpu->fd, KVM_GET_SREGS, s) < 0 ? -errno : 0;
}

int kvm_vcpu_set_sregs(struct kvm_vcpu *cpu, const struct kvm_sregs *s)
{
    /* GS base is the VMM's, per vCPU id: the system-call stub's call box
     * (kvm_calls.h); state copied from another vCPU never carries its own. */
    struct kvm_sregs mine = *s;
    mine.gs.base = layout_call_box_va(cpu->id);
    return ioctl(cpu->fd, KVM_SET_SREGS, &mine) < 0 ? -errno : 0;
}

int kvm_vcpu_set_fs_base(struct kvm_vcpu *cpu, uint64_t base)
{
    struct kvm_sregs s;
    int err = kvm_vcpu_get_sregs(cpu, &s);
    if (err < 0)
        return err;
    s.fs.base = base;
    return kvm_vcpu_set_sregs(cpu, &s);
}

uint64_t kvm_vcpu_get_fs_base(struct kvm_vcpu *cpu)
{
    struct kvm_sregs s;
    return kvm_vcpu_get_sregs(cpu, &s) < 0 ? 0 : s.fs.base;
}

int kvm_vcpu_run(struct kvm_vcpu *cpu)
{
    cpu->run->kvm_valid_regs = KVM_SYNC_X86_REGS;
    int r = ioctl(cpu->fd, KVM_RUN, 0);
    return r < 0 ? -errno : 0;
}

int kvm_vm_run(struct kvm_vm *vm)
{
    kvm_vdso_refresh(vm);
    return kvm_vcpu_run(&vm->vcpu);
}
