/* Shared memory between the processes of a sandbox (shm.h). Each process
 * has a VM of its own, so a MAP_SHARED mapping is a host memfd (the shared
 * object) mapped over the process's RAM in the VMM (kvm_vm_map_foreign);
 * a forked child maps the same objects at the same places. A file of the
 * writable layer has one object per sandbox, made from its contents at its
 * first shared mapping, so every process mapping the file shares it
 * (POSIX semaphores, multiprocessing's heap in /dev/shm).
 *
 * Invariant: while a file has an object, the object holds the file's bytes
 * for [0, object size) as Linux's page cache would: reads of the file take
 * them from it, writes go to both, truncation zeroes what it cut; the
 * layer's copy gets them back at msync (and so what a snapshot or the
 * daemon reads of the file is its state at the last write or msync). */
#define _GNU_SOURCE
#include "core/shm.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/proc.h"
#include "fs/fs_memfs.h"
#include "fs/fs_view.h"

struct sb_shm {
    struct sb_shm *next;
    struct memfs_node *node; /* a reference */
    int fd;
    uint64_t size;
    uint64_t ino; /* the memfd's (kvm_foreign.ino of its mappings) */
};

#define COPY_CHUNK (1ULL << 20)

static struct memfs *layer(struct sandbox *sb) { return fs_view_layer(sb->view); }

/* The object of node, or NULL. */
static struct sb_shm *object_of(struct sandbox *sb, struct memfs_node *node) {
    struct sb_shm *o = sb->procs->shm;
    while (o && o->node != node)
        o = o->next;
    return o;
}

/* All of [off, off + len) of fd into buf; -errno. */
static int read_all(int fd, void *buf, uint64_t len, uint64_t off) {
    for (uint64_t done = 0; done < len;) {
        ssize_t r = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
        if (r < 0 && errno != EINTR)
            return -errno;
        if (r == 0)
            return -EIO;
        done += r > 0 ? (uint64_t)r : 0;
    }
    return 0;
}

static int write_all(int fd, const void *buf, uint64_t len, uint64_t off) {
    for (uint64_t done = 0; done < len;) {
        ssize_t w = pwrite(fd, (const char *)buf + done, len - done, (off_t)(off + done));
        if (w < 0 && errno != EINTR)
            return -errno;
        done += w > 0 ? (uint64_t)w : 0;
    }
    return 0;
}

/* Bytes [off, off + len) of o, within its size, to or from buf: the
 * object's, except where sb's VM holds a mapping of it detached for a
 * branch (kvm_vm_privatize_foreign): there its own RAM has them. -errno. */
static int object_io(struct sandbox *sb, struct sb_shm *o, void *buf, uint64_t len, uint64_t off,
                     bool write) {
    len = off < o->size ? FJ_MIN(len, o->size - off) : 0;
    int err = len == 0 ? 0 : write ? write_all(o->fd, buf, len, off) : read_all(o->fd, buf, len, off);
    for (size_t i = 0; err == 0 && len && i < sb->vm.n_foreign; i++) {
        const struct kvm_foreign *f = &sb->vm.foreign[i];
        uint64_t from = FJ_MAX(off, f->off), to = FJ_MIN(off + len, f->off + f->len);
        if (!f->detached || f->ino != o->ino || from >= to)
            continue;
        char *at = (char *)buf + (from - off);
        gva_t gva = f->gpa + (from - f->off);
        err = write ? mm_copy_to(&sb->mm, gva, at, to - from) : mm_copy_from(&sb->mm, at, gva, to - from);
    }
    return err;
}

int sb_shm_copy_file(struct sandbox *sb, struct memfs_node *node, int fd, uint64_t size) {
    char *buf = malloc(COPY_CHUNK);
    int err = buf ? 0 : -ENOMEM;
    for (uint64_t off = 0; err == 0 && off < size;) {
        int64_t r = sb_shm_pread(sb, node, buf, FJ_MIN(size - off, COPY_CHUNK), off);
        if (r <= 0) { /* 0: past the file's end */
            err = (int)r;
            break;
        }
        err = write_all(fd, buf, (uint64_t)r, off);
        off += (uint64_t)r;
    }
    free(buf);
    return err;
}

int64_t sb_shm_pread(struct sandbox *sb, struct memfs_node *node, void *buf, uint64_t len, uint64_t off) {
    int64_t r = memfs_pread(layer(sb), node, buf, len, off); /* the file's size bounds it */
    struct sb_shm *o = r > 0 ? object_of(sb, node) : NULL;
    int err = o ? object_io(sb, o, buf, (uint64_t)r, off, false) : 0;
    return err < 0 ? err : r;
}

int64_t sb_shm_pwrite(struct sandbox *sb, struct memfs_node *node, const void *buf, uint64_t len,
                      uint64_t off) {
    int64_t r = memfs_pwrite(layer(sb), node, buf, len, off);
    struct sb_shm *o = r > 0 ? object_of(sb, node) : NULL;
    int err = o ? object_io(sb, o, (void *)buf, (uint64_t)r, off, true) : 0;
    return err < 0 ? err : r;
}

int sb_shm_truncate(struct sandbox *sb, struct memfs_node *node, uint64_t len) {
    int err = memfs_truncate(layer(sb), node, len);
    struct sb_shm *o = err == 0 ? object_of(sb, node) : NULL;
    if (o && len < o->size &&
        fallocate(o->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)len, (off_t)(o->size - len)) < 0)
        return -errno;
    return err;
}

/* [from, to) of object o back into its file, within the file's size. */
static int write_back(struct sandbox *sb, struct sb_shm *o, uint64_t from, uint64_t to) {
    struct stat st;
    int err = memfs_getattr(layer(sb), o->node, &st);
    to = FJ_MIN(to, FJ_MIN(o->size, (uint64_t)st.st_size));
    char *buf = err == 0 && from < to ? malloc(1 << 16) : NULL;
    if (err == 0 && from < to && !buf)
        return -ENOMEM;
    for (uint64_t off = from; err == 0 && off < to;) {
        uint64_t n = FJ_MIN(to - off, 1u << 16);
        if ((err = object_io(sb, o, buf, n, off, false)) == 0) {
            int64_t w = memfs_pwrite(layer(sb), o->node, buf, n, off);
            err = w < 0 ? (int)w : 0;
        }
        off += n;
    }
    free(buf);
    return err;
}

int sb_shm_sync(struct sandbox *sb, gva_t start, uint64_t len) {
    const struct kvm_vm *vm = &sb->vm;
    for (size_t i = 0; i < vm->n_foreign; i++) {
        const struct kvm_foreign *f = &vm->foreign[i];
        gpa_t from = FJ_MAX(start, f->gpa), to = FJ_MIN(start + len, f->gpa + f->len);
        struct sb_shm *o = sb->procs->shm;
        while (o && o->ino != f->ino)
            o = o->next;
        if (!o || from >= to)
            continue; /* shared anonymous memory, or not in the range */
        int err = write_back(sb, o, f->off + (from - f->gpa), f->off + (to - f->gpa));
        if (err < 0)
            return err;
    }
    return 0;
}

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
    int fd = o ? new_object(size) : -ENOMEM;
    int err = fd < 0 ? fd : sb_shm_copy_file(sb, node, fd, size); /* past the file's end: zeros */
    if (err < 0) {
        if (fd >= 0)
            close(fd);
        free(o);
        return err;
    }
    struct stat st;
    *o = (struct sb_shm){.next = p->shm, .node = node, .fd = fd, .size = size,
                         .ino = fstat(fd, &st) == 0 ? (uint64_t)st.st_ino : 0};
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
