/* The guest's address space: allocation inside the fixed user window, and
 * every access the VMM makes to guest memory.
 *
 * Invariants:
 * - VMAs are sorted, page-aligned, non-overlapping, inside
 *   [LAYOUT_USER_MIN, ram_bytes).
 * - Guest RAM outside every VMA reads as zero: whatever is unmapped is
 *   released (kvm_vm_release: cleared and kept as spare pages, or handed
 *   back to the host), so a new anonymous mapping needs no clearing.
 * - Every host-side write into guest RAM goes through mm_write_ptr() (or the
 *   helpers built on it), the one place that knows about snapshots. */
#ifndef MM_H
#define MM_H

#include "lib/fj.h"

struct kvm_vm;

/* MM_SHARED: MAP_SHARED memory, the process's own until it forks, then a
 * shared object mapped over its RAM (core/shm.c). */
enum mm_kind { MM_ANON, MM_FILE, MM_STACK, MM_BRK, MM_IMAGE, MM_SHARED };

struct mm_vma {
    gva_t start, end;
    int prot;
    enum mm_kind kind;
};

struct mm_names;

struct mm {
    struct kvm_vm *vm;
    struct mm_names *names; /* of file mappings (mm_names.c), or NULL */
    struct mm_vma *vmas;
    size_t n_vmas, cap_vmas;
    gva_t brk_start, brk_cur, brk_limit;
    gva_t mmap_top; /* top-down mmap allocation starts below this */
    /* Where exec put the argument and environment strings, each list NUL-separated
     * in order, as Linux's mm does (/proc/<pid>/cmdline, environ read them
     * there); 0 when not known (a snapshot saved before they were kept). */
    gva_t arg_start, arg_end, env_start, env_end;
    uint64_t mapped_bytes;
    /* The largest resident size seen (mm_resident_bytes; before releasing
     * a large range): getrusage's ru_maxrss, status's VmHWM. */
    uint64_t resident_peak;
};

int mm_init(struct mm *mm, struct kvm_vm *vm, uint64_t stack_bytes, gva_t *stack_top);
void mm_destroy(struct mm *mm);
int mm_clone(struct mm *dst, const struct mm *src, struct kvm_vm *vm);
/* Starts the heap at brk_start; top-down mmaps avoid [brk_start, brk_limit)
 * while they can. */
void mm_set_brk(struct mm *mm, gva_t brk_start, gva_t brk_limit);

/* mmap/munmap/mremap semantics on the window; -errno. fixed replaces: the
 * old pages are returned to the host (they read as zero), unless
 * `overwritten` says the caller writes every byte of the new range itself
 * (a file mapping's contents, zeros past the file's end). */
int mm_map(struct mm *mm, gva_t hint, uint64_t len, int prot, bool fixed, bool noreplace,
           bool overwritten, enum mm_kind kind, gva_t *out);
int mm_unmap(struct mm *mm, gva_t start, uint64_t len);
int mm_protect(struct mm *mm, gva_t start, uint64_t len, int prot);
int mm_remap(struct mm *mm, gva_t old, uint64_t old_len, uint64_t new_len, int flags,
             gva_t new_addr, gva_t *out);
int64_t mm_brk(struct mm *mm, gva_t want);
bool mm_is_mapped(const struct mm *mm, gva_t start, uint64_t len);
/* The mapping holding addr, or NULL; valid until the next change. */
const struct mm_vma *mm_vma_at(const struct mm *mm, gva_t addr);

/* Guest memory access. Pointers are valid only until the next mm call that
 * changes mappings; len == 0 is always valid. -EFAULT outside the window. */
const void *mm_read_ptr(struct mm *mm, gva_t addr, uint64_t len);
void *mm_write_ptr(struct mm *mm, gva_t addr, uint64_t len);
int mm_copy_from(struct mm *mm, void *dst, gva_t src, uint64_t len);
int mm_copy_to(struct mm *mm, gva_t dst, const void *src, uint64_t len);
/* Copies a NUL-terminated string of at most max bytes (incl. NUL):
 * -ENAMETOOLONG if longer, -EFAULT if unreadable. Returns its length. */
int mm_copy_string(struct mm *mm, char *dst, gva_t src, size_t max);
/* The pages of [start, end) the host holds for the guest (mincore of the
 * VMM's view): what Linux counts as resident. A child's pages still read
 * from its snapshot image count when the image's page is cached, as a
 * forked process's shared pages do. */
uint64_t mm_range_resident(const struct mm *mm, gva_t start, gva_t end);
/* The resident size of every mapping; raises resident_peak. */
uint64_t mm_resident_bytes(struct mm *mm);
/* Names of file mappings, for /proc/self/maps (core/mm_names.c). */
void mm_name_set(struct mm *mm, gva_t start, uint64_t len, const char *path);
const char *mm_name_at(const struct mm *mm, gva_t addr);
void mm_names_forget(struct mm *mm, gva_t start, gva_t end);
struct mm_names *mm_names_copy(const struct mm_names *src);
void mm_names_free(struct mm_names *names);

/* Punches [gpa, gpa+len) out of guest RAM (it reads as zero afterwards). */
void mm_discard(struct mm *mm, gva_t start, uint64_t len);
/* Has the host hold [start, start + len)'s pages for a guest about to write
 * them (kvm_vm_populate); what the range reads does not change. */
void mm_populate(struct mm *mm, gva_t start, uint64_t len);

#endif
