/* Foreign ranges of guest RAM (kvm_vm.h): pages backed by another host
 * object (a shared memory object several guest processes map), mapped over
 * the VM's own RAM in the VMM's address space. KVM follows the host
 * mapping (its MMU notifiers see the replacement), so the guest reads and
 * writes the object there.
 *
 * Invariants: ranges are page-aligned and disjoint; each holds its own
 * duplicate of the object's fd; dropping a range puts the VM's own RAM back
 * under it (reading as zero for a private view, as the RAM file for a
 * shared one). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvm/kvm_vm.h"

int kvm_vm_map_foreign(struct kvm_vm *vm, gpa_t gpa, uint64_t len, int fd, uint64_t off) {
    if (gpa % FJ_PAGE_SIZE || len % FJ_PAGE_SIZE || !len || gpa + len > vm->ram_bytes ||
        vm->ram_borrowed)
        return -EINVAL;
    kvm_vm_drop_foreign(vm, gpa, len);
    struct kvm_foreign *grown = realloc(vm->foreign, (vm->n_foreign + 1) * sizeof(*grown));
    if (!grown)
        return -ENOMEM;
    vm->foreign = grown;
    int own = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (own < 0)
        return -errno;
    if (mmap(vm->ram + gpa, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, own, (off_t)off) ==
        MAP_FAILED) {
        int err = -errno;
        close(own);
        return err;
    }
    struct stat st;
    vm->foreign[vm->n_foreign++] =
        (struct kvm_foreign){gpa, len, own, off, fstat(own, &st) == 0 ? st.st_ino : 0, false};
    kvm_vm_mark_dirty(vm, gpa, len);
    return 0;
}

/* The VM's own RAM under [gpa, gpa + len) again. */
static void restore_own(struct kvm_vm *vm, gpa_t gpa, uint64_t len) {
    if (vm->ram_private)
        mmap(vm->ram + gpa, len, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
    else
        mmap(vm->ram + gpa, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED | MAP_NORESERVE,
             vm->ram_fd, (off_t)gpa);
    kvm_vm_mark_dirty(vm, gpa, len);
}

void kvm_vm_drop_foreign(struct kvm_vm *vm, gpa_t gpa, uint64_t len) {
    gpa_t end = gpa + len;
    for (size_t i = 0; i < vm->n_foreign;) {
        struct kvm_foreign f = vm->foreign[i];
        gpa_t lo = FJ_MAX(f.gpa, gpa), hi = FJ_MIN(f.gpa + f.len, end);
        if (lo >= hi) {
            i++;
            continue;
        }
        if (!f.detached)
            restore_own(vm, lo, hi - lo);
        /* What is left of the range: below, above, or both (a split). */
        struct kvm_foreign below = {f.gpa, lo - f.gpa, f.fd, f.off, f.ino, f.detached};
        struct kvm_foreign above = {hi,    f.gpa + f.len - hi, -1, f.off + (hi - f.gpa),
                                    f.ino, f.detached};
        if (below.len && above.len) {
            above.fd = fcntl(f.fd, F_DUPFD_CLOEXEC, 3);
            struct kvm_foreign *grown = realloc(vm->foreign, (vm->n_foreign + 1) * sizeof(*grown));
            if (above.fd < 0 || !grown) { /* cannot keep it: give the upper part its own RAM too */
                if (above.fd >= 0)
                    close(above.fd);
                if (grown)
                    vm->foreign = grown;
                restore_own(vm, above.gpa, above.len);
                vm->foreign[i++] = below;
                continue;
            }
            vm->foreign = grown;
            vm->foreign[i] = below;
            vm->foreign[vm->n_foreign++] = above;
            i++;
        } else if (below.len || above.len) {
            if (above.len)
                above.fd = f.fd;
            vm->foreign[i++] = below.len ? below : above;
        } else {
            close(f.fd);
            vm->foreign[i] = vm->foreign[--vm->n_foreign];
        }
    }
}

int kvm_vm_copy_foreign(struct kvm_vm *dst, const struct kvm_vm *src) {
    for (size_t i = 0; i < src->n_foreign; i++) {
        const struct kvm_foreign *f = &src->foreign[i];
        if (f->detached)
            continue;
        int err = kvm_vm_map_foreign(dst, f->gpa, f->len, f->fd, f->off);
        if (err < 0)
            return err;
    }
    return 0;
}

/* The foreign range holding gpa, or NULL. */
static const struct kvm_foreign *range_at(const struct kvm_vm *vm, gpa_t gpa) {
    for (size_t i = 0; i < vm->n_foreign; i++)
        if (gpa >= vm->foreign[i].gpa && gpa < vm->foreign[i].gpa + vm->foreign[i].len)
            return &vm->foreign[i];
    return NULL;
}

gpa_t kvm_vm_own_run(const struct kvm_vm *vm, gpa_t from, gpa_t end, gpa_t *run_end) {
    for (const struct kvm_foreign *f; from < end && (f = range_at(vm, from));)
        from = f->gpa + f->len;
    gpa_t next = end;
    for (size_t i = 0; i < vm->n_foreign; i++)
        if (vm->foreign[i].gpa > from && vm->foreign[i].gpa < next)
            next = vm->foreign[i].gpa;
    *run_end = FJ_MAX(from, next);
    return FJ_MIN(from, end);
}

/* Copies [gpa, gpa + len) of RAM (as the VMM's mapping shows it) to fd at
 * off (to_object), or back. -errno. */
static int copy_range(struct kvm_vm *vm, gpa_t gpa, uint64_t len, int fd, uint64_t off,
                      bool to_object) {
    for (uint64_t done = 0; done < len;) {
        uint8_t *at = vm->ram + gpa + done;
        ssize_t n = to_object ? pwrite(fd, at, len - done, (off_t)(off + done))
                              : pread(fd, at, len - done, (off_t)(off + done));
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        done += (uint64_t)n;
    }
    return 0;
}

int kvm_vm_share_own(struct kvm_vm *vm, gpa_t gpa, uint64_t len, int fd) {
    int err = copy_range(vm, gpa, len, fd, 0, true);
    return err < 0 ? err : kvm_vm_map_foreign(vm, gpa, len, fd, 0);
}

int kvm_vm_privatize_foreign(struct kvm_vm *vm) {
    for (size_t i = 0; i < vm->n_foreign; i++) {
        struct kvm_foreign *f = &vm->foreign[i];
        if (f->detached)
            continue;
        restore_own(vm, f->gpa, f->len); /* the object keeps the contents */
        int err = copy_range(vm, f->gpa, f->len, f->fd, f->off, false);
        if (err < 0) { /* the object again: its contents are the only copy */
            mmap(vm->ram + f->gpa, f->len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, f->fd,
                 (off_t)f->off);
            return err;
        }
        f->detached = true;
    }
    return 0;
}

int kvm_vm_reattach_foreign(struct kvm_vm *vm) {
    for (size_t i = 0; i < vm->n_foreign; i++) {
        struct kvm_foreign *f = &vm->foreign[i];
        if (!f->detached)
            continue;
        int err = copy_range(vm, f->gpa, f->len, f->fd, f->off, true);
        if (err < 0)
            return err;
        if (mmap(vm->ram + f->gpa, f->len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, f->fd,
                 (off_t)f->off) == MAP_FAILED)
            return -errno;
        f->detached = false;
        kvm_vm_mark_dirty(vm, f->gpa, f->len);
    }
    return 0;
}

void kvm_vm_mark_foreign_dirty(struct kvm_vm *vm) {
    for (size_t i = 0; i < vm->n_foreign; i++)
        if (!vm->foreign[i].detached)
            kvm_vm_mark_dirty(vm, vm->foreign[i].gpa, vm->foreign[i].len);
}

void kvm_vm_free_foreign(struct kvm_vm *vm) {
    for (size_t i = 0; i < vm->n_foreign; i++)
        close(vm->foreign[i].fd);
    free(vm->foreign);
    vm->foreign = NULL;
    vm->n_foreign = 0;
}
