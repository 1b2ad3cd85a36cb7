/* Sandbox life cycle: allocate, load the program (address space, ELF, vCPU),
 * free. Spawning as the API offers it is api/spawn.c. */
#define _GNU_SOURCE
#include "core/sandbox.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/elf_load.h"
#include "core/file_locks.h"
#include "core/proc.h"
#include "core/shm.h"
#include "core/sysv_shm.h"
#include "kvm/kvm_cpu.h"
#include "fs/fs_memfs.h"
#include "fs/fs_view.h"
#include "lib/pagemap.h"
#include "api/vmm_api.h"

#define SANDBOX_STACK_BYTES (8ULL << 20)
#define SANDBOX_UID 1000

/* The dynamic loader a program names, as its source says. */
static int load_interp(struct mm *mm, const struct program_source *src, const char *path,
                       struct elf_image *out)
{
    if (!src->open_interp)
        return elf_load(mm, path, 0, out);
    int fd = src->open_interp(src->ctx, path);
    if (fd < 0)
        return fd;
    int err = elf_load_fd(mm, fd, path, 0, out);
    close(fd);
    return err;
}

int sandbox_load_into(struct kvm_vm *vm, struct mm *mm, const struct program_source *src,
                      const char *const *argv, const char *const *envp)
{
    gva_t stack_top;
    int err = mm_init(mm, vm, SANDBOX_STACK_BYTES, &stack_top);
    if (err < 0)
        return err;
    struct elf_image exe, interp;
    /* The executable sits low, its heap right above it, as Linux lays out. */
    err = src->fd >= 0 ? elf_load_fd(mm, src->fd, src->name, 0x400000, &exe)
                       : elf_load(mm, src->name, 0x400000, &exe);
    if (err < 0)
        return err;
    mm_set_brk(mm, exe.end, exe.end + vm->ram_bytes / 8);
    gva_t entry = exe.entry;
    const struct elf_image *interp_p = NULL;
    if (exe.interp[0]) {
        if ((err = load_interp(mm, src, exe.interp, &interp)) < 0)
            return err;
        entry = interp.entry;
        interp_p = &interp;
    }
    gva_t rsp;
    err = elf_build_stack(mm, stack_top, argv, envp, &exe, interp_p, src->name, SANDBOX_UID, &rsp);
    if (err < 0)
        return err;
    return kvm_cpu_boot(vm, entry, rsp);
}

int sandbox_load_program(struct sandbox *sb, const char *exe_path, const char *const *argv,
                         const char *const *envp)
{
    struct program_source src = {.name = exe_path, .fd = -1};
    return sandbox_load_into(&sb->vm, &sb->mm, &src, argv, envp);
}

void sandbox_free(struct sandbox *sb)
{
    if (sb->procs && sb->procs->first == sb && sb->procs->drop_unstarted)
        sb->procs->drop_unstarted(sb); /* they share its layer and lock */
    if (sb->lineage_release)
        sb->lineage_release(sb);
    fdt_destroy(&sb->fdt);
    free(sb->sysv_attached); /* (the counts go with the table, below or at its end) */
    if (sb->procs && sb->procs->first == sb)
        sysv_free(sb->procs);
    if (sb->procs && sb->procs->first == sb && sb->view)
        sb_shm_free_all(sb->procs, fs_view_layer(sb->view));
    if (sb->view)
        fs_view_free(sb->view);
    mm_destroy(&sb->mm);
    for (unsigned i = 0; i < 3; i++)
        if (sb->itimer_made[i])
            timer_delete(sb->itimer[i]);
    for (unsigned i = 0; i < LAYOUT_MAX_VCPUS; i++) {
        struct sb_thread *t = sb->threads[i];
        if (!t)
            continue;
        if (t->host_started)
            pthread_join(t->host, NULL);
        kvm_vcpu_destroy(&t->own_cpu);
        close(t->wake_fd);
        free(t);
    }
    kvm_vm_destroy(&sb->vm);
    if (sb->ctl_host_fd >= 0)
        close(sb->ctl_host_fd);
    if (sb->procs && sb->procs->first == sb) {
        file_locks_free(sb->procs);
        sb_procs_free(sb->procs);
    }
    pthread_mutex_destroy(&sb->job_lock);
    pthread_mutex_destroy(&sb->stop_lock);
    pthread_mutex_destroy(&sb->calls_lock);
    pthread_cond_destroy(&sb->job_cond);
    free(sb);
}

struct sandbox *sandbox_alloc(int ctl_fd, int *err)
{
    struct sandbox *sb = calloc(1, sizeof(*sb));
    if (!sb) {
        *err = -ENOMEM;
        return NULL;
    }
    sb->ctl_host_fd = -1;
    pthread_mutex_init(&sb->job_lock, NULL);
    pthread_mutex_init(&sb->stop_lock, NULL);
    pthread_mutex_init(&sb->calls_lock, NULL);
    pthread_cond_init(&sb->job_cond, NULL);
    sb->vm.vm_fd = sb->vm.vcpu.fd = sb->vm.ram_fd = -1;
    sb->start_ns = fj_now_ns();
    sb->live_threads = 1;
    sb->ctl_host_fd = fcntl(ctl_fd, F_DUPFD_CLOEXEC, 3);
    if (sb->ctl_host_fd < 0 || !sb_thread_add(sb, 0)) {
        *err = -errno;
        sandbox_free(sb);
        return NULL;
    }
    return sb;
}

int fj_sandbox_get_stats(fj_sandbox *sb, struct fj_sandbox_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->syscalls = sb->stats.calls;
    out->unsupported_syscalls = sb->stats.unsupported_calls;
    out->fast_syscalls = sb->stats.fast_calls;
    out->mapped_bytes = sb->mm.mapped_bytes;
    struct stat st;
    if (sb->vm.ram_fd >= 0 && fstat(sb->vm.ram_fd, &st) == 0)
        out->resident_bytes = (uint64_t)st.st_blocks * 512;
    if (sb->vm.ram_private && !sb->vm.ram_borrowed) {
        /* A child: its own pages (copies and fresh memory) beside the image it shares. */
        uint64_t base = (uint64_t)(uintptr_t)sb->vm.ram;
        int64_t own = fj_pagemap_anon(base, base + sb->vm.ram_bytes, base, NULL, false);
        if (own > 0)
            out->resident_bytes += (uint64_t)own * FJ_PAGE_SIZE;
    }
    out->spare_bytes = sb->vm.spare_pages * FJ_PAGE_SIZE;
    out->layer_bytes = sb->view ? memfs_bytes_used(fs_view_layer(sb->view)) : 0;
    out->uptime_ns = fj_now_ns() - sb->start_ns;
    kvm_vm_mapped_pages(&sb->vm, &out->kvm_pages_4k, &out->kvm_pages_2m);
    out->open_fds = fdt_count(&sb->fdt);
    out->exited = sb->exited;
    out->exit_status = sb->exit_status;
    out->fatal_signal = sb->fatal_signal;
    return 0;
}

uint64_t fj_sandbox_trim(fj_sandbox *sb)
{
    uint64_t pages = 0;
    pthread_mutex_lock(sb->big_lock);
    for (unsigned k = 0; k < SB_MAX_PROCS; k++) {
        struct sandbox *p = sb->procs->slot[k].used ? sb->procs->slot[k].sb : NULL;
        /* A vfork child runs on its parent's memory: its mappings there are
         * not in the parent's map, so the parent keeps its spares meanwhile. */
        if (p && !p->vfork_children) {
            pages += p->vm.spare_pages;
            kvm_vm_trim(&p->vm);
        }
    }
    pthread_mutex_unlock(sb->big_lock);
    return pages * FJ_PAGE_SIZE;
}

int fj_sandbox_unsupported(fj_sandbox *sb, uint32_t *nrs, uint32_t *counts, int max)
{
    int n = 0;
    for (uint32_t nr = 0; nr < SYS_MAX && n < max; nr++) {
        if (sb->stats.unsupported_per_nr[nr]) {
            nrs[n] = nr;
            counts[n] = sb->stats.unsupported_per_nr[nr];
            n++;
        }
    }
    return n;
}

int fj_sandbox_syscall_profile(fj_sandbox *sb, uint32_t *nrs, uint32_t *counts, uint64_t *ns,
                               int max)
{
    int n = 0;
    for (uint32_t nr = 0; nr < SYS_MAX && n < max; nr++) {
        if (sb->stats.per_nr[nr]) {
            nrs[n] = nr;
            counts[n] = sb->stats.per_nr[nr];
            ns[n] = sb->stats.ns_per_nr[nr];
            n++;
        }
    }
    return n;
}

const char *fj_sandbox_exit_reason(fj_sandbox *sb) { return sb->exit_reason; }
