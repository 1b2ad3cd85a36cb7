/* Memory system calls: allocation inside the fixed user window (mm.c). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>

#include "core/sandbox.h"
#include "core/shm.h"
#include "sys/sys.h"

#define MAP_FIXED_NOREPLACE_ 0x100000

/* Private writable memory but the stack: what Linux's RLIMIT_DATA counts. */
static bool is_data(const struct mm_vma *v) {
    return (v->prot & PROT_WRITE) && v->kind != MM_SHARED && v->kind != MM_STACK;
}

/* Bytes of the VMAs in [start, end) that are (data) data memory, or
 * (!data) any mapping. */
static uint64_t mapped_in(const struct mm *mm, gva_t start, gva_t end, bool data) {
    uint64_t bytes = 0;
    for (size_t i = 0; i < mm->n_vmas; i++) {
        const struct mm_vma *v = &mm->vmas[i];
        if ((!data || is_data(v)) && v->end > start && v->start < end)
            bytes += FJ_MIN(v->end, end) - FJ_MAX(v->start, start);
    }
    return bytes;
}

/* Whether the process would pass its RLIMIT_AS, or, for private writable
 * memory (data), its RLIMIT_DATA, if bytes were mapped in place of what
 * [start, end) holds (an empty range: in place of nothing). Only limits the
 * process set are checked: the defaults are the sandbox's RAM, which the
 * window bounds already. */
static bool over_limit(struct sandbox *sb, gva_t start, gva_t end, uint64_t bytes, bool data) {
    if ((sb->limits.rlim_set & (1u << RLIMIT_AS)) &&
        sb->mm.mapped_bytes - mapped_in(&sb->mm, start, end, false) + bytes >
            sys_rlimit(sb, RLIMIT_AS).rlim_cur)
        return true;
    return data && (sb->limits.rlim_set & (1u << RLIMIT_DATA)) &&
           mapped_in(&sb->mm, 0, UINT64_MAX, true) - mapped_in(&sb->mm, start, end, true) + bytes >
               sys_rlimit(sb, RLIMIT_DATA).rlim_cur;
}

static int64_t fill_from_file(struct sandbox *sb, int fd, gva_t at, uint64_t len, uint64_t off) {
    struct file *f = fdt_get(&sb->fdt, fd);
    if (!f)
        return -EBADF;
    if (!f->ops->pread)
        return -ENODEV;
    void *dst = mm_write_ptr(&sb->mm, at, FJ_ALIGN_UP(len, FJ_PAGE_SIZE));
    if (!dst)
        return -EFAULT;
    uint64_t done = 0;
    while (done < len) {
        int64_t r = f->ops->pread(sb, f, (char *)dst + done, len - done, off + done);
        if (r < 0)
            return r;
        if (r == 0)
            break;
        done += (uint64_t)r;
    }
    /* Past the end of the file, to the end of the last page: zeros (the
     * range may hold what a mapping it replaced left there, see mm_map). */
    memset((char *)dst + done, 0, FJ_ALIGN_UP(len, FJ_PAGE_SIZE) - done);
    return 0;
}

/* Fresh private memory the guest writes from the moment it has it (an
 * object arena, a small buffer, a heap extension) is populated by the host
 * when it is mapped, up to this size (kvm/kvm_populate.c: ~4 us a page
 * against ~13 us for the guest's own first touch); a larger mapping, a
 * stack or one the program may leave untouched (MAP_NORESERVE) is left to
 * the guest's faults, as Linux leaves all of them. MAP_POPULATE asks for
 * it at any size, as on Linux. */
#define POPULATE_MAX_BYTES (1u << 20)
#define MAP_NORESERVE_ 0x4000
#define MAP_POPULATE_ 0x8000
#define MAP_STACK_ 0x20000
#define MAP_GROWSDOWN_ 0x100

static bool populate_now(uint64_t bytes, int prot, int flags) {
    if (!(prot & PROT_WRITE))
        return false;
    if (flags & MAP_POPULATE_)
        return true;
    return bytes <= POPULATE_MAX_BYTES && !(flags & (MAP_NORESERVE_ | MAP_STACK_ | MAP_GROWSDOWN_));
}

/* MAP_SHARED of a layer file: the file's shared object (core/shm.c), so
 * any process that maps the file by name shares it (a POSIX semaphore).
 * Anonymous shared memory is the process's own until it forks
 * (sb_shm_promote). */
int64_t sys_map_shared(struct sandbox *sb, gva_t addr, uint64_t len, int prot, int flags,
                       struct memfs_node *node, uint64_t off) {
    gva_t at;
    len = FJ_ALIGN_UP(len, FJ_PAGE_SIZE);
    int err = mm_map(&sb->mm, addr, len, prot, flags & MAP_FIXED, flags & MAP_FIXED_NOREPLACE_,
                     true, MM_SHARED, &at);
    if (err < 0)
        return err;
    if ((err = sb_shm_map(sb, node, at, len, off)) < 0) {
        mm_unmap(&sb->mm, at, len);
        return err;
    }
    return (int64_t)at;
}

static int64_t sys_mmap(struct sandbox *sb, const uint64_t a[6]) {
    gva_t addr = a[0];
    uint64_t len = a[1], off = a[5];
    int prot = (int)a[2], flags = (int)a[3], fd = (int)a[4];
    bool anon = flags & MAP_ANONYMOUS;
    int type = flags & MAP_SHARED_VALIDATE;
    if (len == 0 || off % FJ_PAGE_SIZE ||
        (type != MAP_PRIVATE && type != MAP_SHARED && type != MAP_SHARED_VALIDATE))
        return -EINVAL;
    struct memfs_node *shared_node = NULL;
    if (!anon) {
        struct file *f = fdt_get(&sb->fdt, fd);
        if (!f)
            return -EBADF;
        if ((f->flags & O_ACCMODE) == O_WRONLY)
            return -EACCES;
        /* Shared mappings of the writable layer's files are shared objects
         * (core/shm.c); host files are read-only, their mappings copies. */
        if (type != MAP_PRIVATE && f->node)
            shared_node = f->node;
        else if (type != MAP_PRIVATE && (prot & PROT_WRITE))
            return -ENODEV;
    }
    bool shared = type != MAP_PRIVATE && (anon || shared_node);
    uint64_t bytes = FJ_ALIGN_UP(len, FJ_PAGE_SIZE);
    gva_t replaced = flags & MAP_FIXED ? addr : 0; /* elsewhere, it replaces nothing */
    if (over_limit(sb, replaced, replaced ? replaced + bytes : 0, bytes,
                   !shared && (prot & PROT_WRITE)))
        return -ENOMEM;
    if (shared_node)
        return sys_map_shared(sb, addr, len, prot, flags, shared_node, off);
    gva_t at;
    int err = mm_map(&sb->mm, addr, len, prot, flags & MAP_FIXED, flags & MAP_FIXED_NOREPLACE_,
                     !anon /* fill_from_file writes every byte */,
                     shared ? MM_SHARED
                     : anon ? MM_ANON
                            : MM_FILE,
                     &at);
    if (err < 0)
        return err;
    if (!anon) {
        int64_t r = fill_from_file(sb, fd, at, len, off);
        if (r < 0) {
            mm_unmap(&sb->mm, at, len);
            return r;
        }
        struct file *f = fdt_get(&sb->fdt, fd);
        mm_name_set(&sb->mm, at, len, f ? f->path : NULL);
    } else if (!shared && populate_now(bytes, prot, flags)) {
        mm_populate(&sb->mm, at, bytes);
    }
    return (int64_t)at;
}

static int64_t sys_munmap(struct sandbox *sb, const uint64_t a[6]) {
    return mm_unmap(&sb->mm, a[0], a[1]);
}

static int64_t sys_mprotect(struct sandbox *sb, const uint64_t a[6]) {
    return mm_protect(&sb->mm, a[0], a[1], (int)a[2]);
}

/* Linux's brk answers the break it keeps when it cannot move it. */
static int64_t sys_brk(struct sandbox *sb, const uint64_t a[6]) {
    gva_t from = FJ_ALIGN_UP(sb->mm.brk_cur, FJ_PAGE_SIZE), to = FJ_ALIGN_UP(a[0], FJ_PAGE_SIZE);
    if (to > from && over_limit(sb, from, to, to - from, true))
        return (int64_t)sb->mm.brk_cur;
    int64_t now = mm_brk(&sb->mm, a[0]);
    if (to > from && (uint64_t)now == a[0] && to - from <= POPULATE_MAX_BYTES)
        mm_populate(&sb->mm, from, to - from); /* malloc uses what it asks for */
    return now;
}

static int64_t sys_mremap(struct sandbox *sb, const uint64_t a[6]) {
    const struct mm_vma *v = mm_vma_at(&sb->mm, a[0]);
    uint64_t old_len = FJ_ALIGN_UP(a[1], FJ_PAGE_SIZE), new_len = FJ_ALIGN_UP(a[2], FJ_PAGE_SIZE);
    if (new_len > old_len && over_limit(sb, 0, 0, new_len - old_len, v && is_data(v)))
        return -ENOMEM;
    gva_t out;
    int err = mm_remap(&sb->mm, a[0], a[1], a[2], (int)a[3], a[4], &out);
    return err < 0 ? err : (int64_t)out;
}

static int64_t sys_madvise(struct sandbox *sb, const uint64_t a[6]) {
    gva_t start = a[0];
    uint64_t len = FJ_ALIGN_UP(a[1], FJ_PAGE_SIZE);
    if (start % FJ_PAGE_SIZE)
        return -EINVAL;
    if (a[2] == MADV_DONTNEED || a[2] == MADV_REMOVE) {
        if (!mm_is_mapped(&sb->mm, start, len))
            return -ENOMEM;
        mm_discard(&sb->mm, start, len); /* private anonymous memory reads as zero again */
    }
    return 0;
}

static int64_t sys_mincore(struct sandbox *sb, const uint64_t a[6]) {
    if (a[0] % FJ_PAGE_SIZE)
        return -EINVAL;
    uint64_t pages = FJ_ALIGN_UP(a[1], FJ_PAGE_SIZE) / FJ_PAGE_SIZE;
    if (!mm_is_mapped(&sb->mm, a[0], pages * FJ_PAGE_SIZE))
        return -ENOMEM;
    void *vec = mm_write_ptr(&sb->mm, a[2], pages);
    if (!vec)
        return -EFAULT;
    memset(vec, 1, pages);
    return 0;
}

static int64_t sys_zero(struct sandbox *sb, const uint64_t a[6]) { return 0; }

#define MS_ASYNC_ 1
#define MS_INVALIDATE_ 2
#define MS_SYNC_ 4

/* The checks Linux makes (a page-aligned start, known and compatible
 * flags, the whole range mapped: ENOMEM), then shared mappings of layer
 * files write back to the files' layer copies (core/shm.h). */
static int64_t sys_msync(struct sandbox *sb, const uint64_t a[6]) {
    uint64_t flags = a[2], len = FJ_ALIGN_UP(a[1], FJ_PAGE_SIZE);
    if ((a[0] & (FJ_PAGE_SIZE - 1)) || (flags & ~(uint64_t)(MS_ASYNC_ | MS_INVALIDATE_ | MS_SYNC_)) ||
        ((flags & MS_ASYNC_) && (flags & MS_SYNC_)) || len < a[1])
        return -EINVAL;
    if (a[0] + len < a[0])
        return -ENOMEM;
    if (len && !mm_is_mapped(&sb->mm, a[0], len))
        return -ENOMEM;
    return sb_shm_sync(sb, a[0], len);
}

const struct sys_entry sys_mem_entries[] = {
    {9, "mmap", sys_mmap, SYS_PARTIAL,
     "private file mappings are copies; MAP_SHARED of anonymous memory or a writable-layer file is "
     "shared between the sandbox's processes, and read() and write() of the file meet it as "
     "Linux's page cache does (msync writes it back to the layer's copy); shared writable "
     "mappings of host files fail with ENODEV"},
    {10, "mprotect", sys_mprotect, SYS_PARTIAL,
     "recorded, not enforced: the guest page tables are fixed"},
    {11, "munmap", sys_munmap, SYS_FULL, "freed memory is returned to the host"},
    {12, "brk", sys_brk, SYS_FULL, NULL},
    {25, "mremap", sys_mremap, SYS_FULL, NULL},
    {26, "msync", sys_msync, SYS_PARTIAL,
     "checks the range and flags as Linux does; shared mappings of writable-layer files write "
     "back to the file's copy that snapshots and the daemon read"},
    {27, "mincore", sys_mincore, SYS_PARTIAL, "reports every mapped page resident"},
    {28, "madvise", sys_madvise, SYS_PARTIAL,
     "DONTNEED and REMOVE free memory; other advice is accepted and ignored"},
    {149, "mlock", sys_zero, SYS_STUB, NULL},
    {150, "munlock", sys_zero, SYS_STUB, NULL},
    {151, "mlockall", sys_zero, SYS_STUB, NULL},
    {152, "munlockall", sys_zero, SYS_STUB, NULL},
};
const size_t sys_mem_count = FJ_ARRAY_SIZE(sys_mem_entries);
