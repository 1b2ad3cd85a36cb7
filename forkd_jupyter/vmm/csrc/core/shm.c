/* Shared memory between the processes of a sandbox (shm.h). Each process
 * has a VM of its own, so a MAP_SHARED mapping is a host memfd (the shared
 * object) mapped over the process's RAM in the VMM (kvm_vm_map_foreign);
 * a forked child maps the same objects at the same places. A file of the
 * writable layer has one object per sandbox, made from its contents at its
 * first shared mapping, so every process mapping the file shares it
 * (POSIX semaphores, multiprocessing's heap in /dev/shm). */
#define _GNU_SOURCE
#include "core/shm.h"

#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/proc.h"
#include "fs/fs_memfs.h"
#include "fs/fs_view.h"

struct sb_shm {
    struct sb_shm *next;
    struct memfs_node *node; /* a reference */
    int fd;
    uint64_t size;
};

/* A new memfd of size bytes (zeros). */
static int new_object(uint64_t size) {
    int fd = memfd_create("forkd-shm", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (ftruncate(fd, (off_t)size) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

/* The object of node, at least size bytes: made from the file's contents
 * at its first shared mapping. */
static int object_for(struct sandbox *sb, struct memfs_node *node, uint64_t size,
                      struct sb_shm **out) {
    struct sb_procs *p = sb->procs;
    for (struct sb_shm *o = p->shm; o; o = o->next)
        if (o->node == node) {
            if (size > o->size && ftruncate(o->fd, (off_t)size) < 0)
                return -errno;
            o->size = FJ_MAX(o->size, size);
            *out = o;
            return 0;
        }
    struct sb_shm *o = calloc(1, sizeof(*o));
    char *buf = malloc(1 << 16);
    int fd = o && buf ? new_object(size) : -ENOMEM;
    for (uint64_t off = 0; fd >= 0 && off < size;) {
        int64_t r =
            memfs_pread(fs_view_layer(sb->view), node, buf, FJ_MIN(size - off, 1u << 16), off);
        if (r <= 0 || pwrite(fd, buf, (size_t)r, (off_t)off) != r)
            break; /* past the file's end: zeros */
        off += (uint64_t)r;
    }
    free(buf);
    if (fd < 0) {
        free(o);
        return fd;
    }
    *o = (struct sb_shm){.next = p->shm, .node = node, .fd = fd, .size = size};
    memfs_node_get(node);
    p->shm = o;
    *out = o;
    return 0;
}

int sb_shm_map(struct sandbox *sb, struct memfs_node *node, gva_t at, uint64_t len, uint64_t off) {
    struct sb_shm *o = NULL;
    int err = object_for(sb, node, off + len, &o);
    return err < 0 ? err : kvm_vm_map_foreign(&sb->vm, at, len, o->fd, off);
}

/* [start, end) of sb's RAM into a new shared object mapped in its place. */
static int promote_run(struct sandbox *sb, gpa_t start, gpa_t end) {
    int fd = new_object(end - start);
    if (fd < 0)
        return fd;
    int err = kvm_vm_share_own(&sb->vm, start, end - start, fd);
    close(fd);
    return err;
}

int sb_shm_promote(struct sandbox *sb) {
    int reattached = kvm_vm_reattach_foreign(&sb->vm); /* shared before a branch */
    if (reattached < 0)
        return reattached;
    for (size_t i = 0; i < sb->mm.n_vmas; i++) {
        const struct mm_vma *v = &sb->mm.vmas[i];
        if (v->kind != MM_SHARED)
            continue;
        gpa_t run_end;
        for (gpa_t at = kvm_vm_own_run(&sb->vm, v->start, v->end, &run_end); at < v->end;
             at = kvm_vm_own_run(&sb->vm, run_end, v->end, &run_end)) {
            int err = promote_run(sb, at, FJ_MIN(run_end, v->end));
            if (err < 0)
                return err;
        }
    }
    return 0;
}

void sb_shm_free_all(struct sb_procs *p, struct memfs *fs) {
    while (p->shm) {
        struct sb_shm *o = p->shm;
        p->shm = o->next;
        memfs_node_put(fs, o->node);
        close(o->fd);
        free(o);
    }
}
