/* Guest address space inside the fixed user window (see mm.h). */
#define _GNU_SOURCE
#include "core/mm.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kvm/kvm_vm.h"
#include "lib/pagemap.h"

static uint64_t page_up(uint64_t x) { return FJ_ALIGN_UP(x, FJ_PAGE_SIZE); }

void mm_discard(struct mm *mm, gva_t start, uint64_t len)
{
    kvm_vm_discard(mm->vm, start, len); /* identity map: gva == gpa in the window */
}

static int vma_insert_at(struct mm *mm, size_t i, struct mm_vma v)
{
    if (mm->vm) { /* (a snapshot's copy has none) */
        int err = kvm_vm_cover(mm->vm, v.start, v.end - v.start);
        if (err < 0)
            return err;
        kvm_vm_reuse(mm->vm, v.start, v.end - v.start);
    }
    if (mm->n_vmas == mm->cap_vmas) {
        size_t cap = mm->cap_vmas ? mm->cap_vmas * 2 : 64;
        struct mm_vma *n = realloc(mm->vmas, cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        mm->vmas = n;
        mm->cap_vmas = cap;
    }
    memmove(&mm->vmas[i + 1], &mm->vmas[i], (mm->n_vmas - i) * sizeof(v));
    mm->vmas[i] = v;
    mm->n_vmas++;
    mm->mapped_bytes += v.end - v.start;
    return 0;
}

static void vma_remove_at(struct mm *mm, size_t i)
{
    mm->mapped_bytes -= mm->vmas[i].end - mm->vmas[i].start;
    memmove(&mm->vmas[i], &mm->vmas[i + 1], (mm->n_vmas - i - 1) * sizeof(mm->vmas[0]));
    mm->n_vmas--;
}

/* First VMA whose end is above addr. */
static size_t vma_index(const struct mm *mm, gva_t addr)
{
    size_t lo = 0, hi = mm->n_vmas;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (mm->vmas[mid].end <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const struct mm_vma *mm_vma_at(const struct mm *mm, gva_t addr)
{
    size_t i = vma_index(mm, addr);
    return i < mm->n_vmas && mm->vmas[i].start <= addr ? &mm->vmas[i] : NULL;
}

static bool range_free(const struct mm *mm, gva_t start, gva_t end)
{
    size_t i = vma_index(mm, start);
    return i == mm->n_vmas || mm->vmas[i].start >= end;
}

bool mm_is_mapped(const struct mm *mm, gva_t start, uint64_t len)
{
    gva_t end = start + len, at = start;
    for (size_t i = vma_index(mm, start); at < end; i++) {
        if (i == mm->n_vmas || mm->vmas[i].start > at)
            return false;
        at = mm->vmas[i].end;
    }
    return true;
}

static bool in_window(const struct mm *mm, gva_t start, uint64_t len)
{
    return start >= LAYOUT_USER_MIN && len <= mm->vm->ram_bytes && start <= mm->vm->ram_bytes - len;
}

void mm_populate(struct mm *mm, gva_t start, uint64_t len)
{
    if (in_window(mm, start, len))
        kvm_vm_populate(mm->vm, start, len); /* identity map: gva == gpa in the window */
}

int mm_init(struct mm *mm, struct kvm_vm *vm, uint64_t stack_bytes, gva_t *stack_top)
{
    memset(mm, 0, sizeof(*mm));
    mm->vm = vm;
    stack_bytes = page_up(stack_bytes);
    gva_t top = vm->ram_bytes;
    struct mm_vma stack = {top - stack_bytes, top, PROT_READ | PROT_WRITE, MM_STACK};
    int err = vma_insert_at(mm, 0, stack);
    if (err < 0)
        return err;
    mm->mmap_top = stack.start - 16 * FJ_PAGE_SIZE;
    *stack_top = top;
    return 0;
}

void mm_set_brk(struct mm *mm, gva_t brk_start, gva_t brk_limit)
{
    mm->brk_start = mm->brk_cur = page_up(brk_start);
    mm->brk_limit = brk_limit;
}

void mm_destroy(struct mm *mm)
{
    mm_names_free(mm->names);
    free(mm->vmas);
    memset(mm, 0, sizeof(*mm));
}

int mm_clone(struct mm *dst, const struct mm *src, struct kvm_vm *vm)
{
    *dst = *src;
    dst->vm = vm;
    dst->names = mm_names_copy(src->names);
    dst->vmas = malloc(src->cap_vmas * sizeof(*dst->vmas));
    if (!dst->vmas)
        return -ENOMEM;
    memcpy(dst->vmas, src->vmas, src->n_vmas * sizeof(*dst->vmas));
    for (size_t i = 0; vm && i < dst->n_vmas; i++) {
        int err = kvm_vm_cover(vm, dst->vmas[i].start, dst->vmas[i].end - dst->vmas[i].start);
        if (err < 0)
            return err;
    }
    return 0;
}

uint64_t mm_range_resident(const struct mm *mm, gva_t start, gva_t end)
{
    uint64_t base = (uint64_t)(uintptr_t)mm->vm->ram;
    int64_t pages = fj_resident_pages(base + start, base + end, base, NULL);
    return pages > 0 ? (uint64_t)pages * FJ_PAGE_SIZE : 0;
}

uint64_t mm_resident_bytes(struct mm *mm)
{
    uint64_t bytes = 0;
    for (size_t i = 0; i < mm->n_vmas; i++)
        bytes += mm_range_resident(mm, mm->vmas[i].start, mm->vmas[i].end);
    mm->resident_peak = FJ_MAX(mm->resident_peak, bytes);
    return bytes;
}

/* Releasing this much at once may end a peak: the resident size is taken
 * first (a scan of the process's mappings, ~1 ms a GiB). */
#define PEAK_SAMPLE_BYTES (64ULL << 20)

/* Removes [start, end) from every VMA, splitting as needed. Releases the
 * freed RAM (it reads as zero) when discard is set. */
static int unmap_range(struct mm *mm, gva_t start, gva_t end, bool discard)
{
    if (discard && end - start >= PEAK_SAMPLE_BYTES && mm->vm && !range_free(mm, start, end))
        mm_resident_bytes(mm);
    mm_names_forget(mm, start, end);
    size_t i = vma_index(mm, start);
    while (i < mm->n_vmas && mm->vmas[i].start < end) {
        struct mm_vma v = mm->vmas[i];
        gva_t cut_lo = FJ_MAX(v.start, start), cut_hi = FJ_MIN(v.end, end);
        if (discard)
            kvm_vm_release(mm->vm, cut_lo, cut_hi - cut_lo); /* identity map: gva == gpa */
        else
            kvm_vm_drop_foreign(mm->vm, cut_lo, cut_hi - cut_lo); /* overwritten: never into a shared object */
        vma_remove_at(mm, i);
        if (v.start < cut_lo) {
            struct mm_vma left = v;
            left.end = cut_lo;
            int err = vma_insert_at(mm, i++, left);
            if (err < 0)
                return err;
        }
        if (cut_hi < v.end) {
            struct mm_vma right = v;
            right.start = cut_hi;
            int err = vma_insert_at(mm, i++, right);
            if (err < 0)
                return err;
        }
    }
    if (mm->brk_cur > mm->brk_start && start < mm->brk_cur && end > mm->brk_start) {
        /* Part of the heap went away: the break can no longer extend over it. */
        if (start <= mm->brk_start)
            mm->brk_cur = mm->brk_start;
    }
    return 0;
}

static int insert_vma(struct mm *mm, gva_t start, gva_t end, int prot, enum mm_kind kind)
{
    struct mm_vma v = {start, end, prot, kind};
    return vma_insert_at(mm, vma_index(mm, start), v);
}

/* Highest free gap of len bytes below mm->mmap_top and above floor. */
static int find_top_down(struct mm *mm, uint64_t len, gva_t floor, gva_t *out)
{
    floor = FJ_MAX(LAYOUT_USER_MIN, floor);
    gva_t ceiling = mm->mmap_top;
    size_t i = vma_index(mm, ceiling);
    for (;;) {
        /* gap is [prev_end, ceiling) where prev_end is the end of VMA i-1 */
        gva_t prev_end = i == 0 ? floor : FJ_MAX(floor, mm->vmas[i - 1].end);
        if (ceiling >= prev_end + len && ceiling - len >= prev_end) {
            *out = ceiling - len;
            return 0;
        }
        if (i == 0 || mm->vmas[i - 1].end <= floor)
            return -ENOMEM;
        i--;
        ceiling = mm->vmas[i].start;
    }
}

int mm_map(struct mm *mm, gva_t hint, uint64_t len, int prot, bool fixed, bool noreplace,
           bool overwritten, enum mm_kind kind, gva_t *out)
{
    if (len == 0)
        return -EINVAL;
    len = page_up(len);
    if (len < FJ_PAGE_SIZE || len > mm->vm->ram_bytes)
        return -ENOMEM;
    if (fixed || noreplace) {
        if (hint % FJ_PAGE_SIZE)
            return -EINVAL;
        if (!in_window(mm, hint, len))
            return -ENOMEM;
        if (!range_free(mm, hint, hint + len)) {
            if (noreplace)
                return -EEXIST;
            /* Pages the caller writes whole need not go back to the host
             * and be faulted in again. */
            int err = unmap_range(mm, hint, hint + len, !overwritten);
            if (err < 0)
                return err;
        }
        *out = hint;
    } else if (hint && hint % FJ_PAGE_SIZE == 0 && in_window(mm, hint, len) &&
               range_free(mm, hint, hint + len) && hint >= mm->brk_limit && hint + len <= mm->mmap_top) {
        *out = hint;
    } else {
        /* Keep clear of the heap's reserve first, then use it too (as Linux
         * does, brk then fails where a mapping took its place). */
        int err = find_top_down(mm, len, mm->brk_limit, out);
        if (err < 0)
            err = find_top_down(mm, len, page_up(mm->brk_cur), out);
        if (err < 0)
            return err;
    }
    return insert_vma(mm, *out, *out + len, prot, kind);
}

int mm_unmap(struct mm *mm, gva_t start, uint64_t len)
{
    if (start % FJ_PAGE_SIZE || len == 0)
        return -EINVAL;
    len = page_up(len);
    if (start + len < start)
        return -EINVAL;
    gva_t end = FJ_MIN(start + len, mm->vm->ram_bytes);
    if (start >= end)
        return 0;
    return unmap_range(mm, start, end, true);
}

int mm_protect(struct mm *mm, gva_t start, uint64_t len, int prot)
{
    if (start % FJ_PAGE_SIZE)
        return -EINVAL;
    len = page_up(len);
    if (!mm_is_mapped(mm, start, len))
        return -ENOMEM;
    /* Protection is recorded only: the fixed page tables map the whole
     * window read-write (kvm-on-these-machines: they cannot be edited). */
    for (size_t i = vma_index(mm, start); i < mm->n_vmas && mm->vmas[i].start < start + len; i++)
        if (mm->vmas[i].start >= start && mm->vmas[i].end <= start + len)
            mm->vmas[i].prot = prot;
    return 0;
}

int mm_remap(struct mm *mm, gva_t old, uint64_t old_len, uint64_t new_len, int flags,
             gva_t new_addr, gva_t *out)
{
    const int MAYMOVE = 1, FIXED = 2;
    if (old % FJ_PAGE_SIZE || new_len == 0)
        return -EINVAL;
    old_len = page_up(old_len);
    new_len = page_up(new_len);
    if ((flags & FIXED) && !(flags & MAYMOVE))
        return -EINVAL;
    if (old_len == 0 || !mm_is_mapped(mm, old, old_len))
        return -EFAULT;
    size_t i = vma_index(mm, old);
    int prot = mm->vmas[i].prot;
    enum mm_kind kind = mm->vmas[i].kind;
    if (!(flags & FIXED)) {
        if (new_len <= old_len) {
            int err = mm_unmap(mm, old + new_len, old_len - new_len);
            *out = old;
            return err;
        }
        if (in_window(mm, old, new_len) && range_free(mm, old + old_len, old + new_len)) {
            int err = insert_vma(mm, old + old_len, old + new_len, prot, kind);
            *out = old;
            return err;
        }
        if (!(flags & MAYMOVE))
            return -ENOMEM;
    }
    gva_t dst;
    int err = mm_map(mm, flags & FIXED ? new_addr : 0, new_len, prot, flags & FIXED, false, false,
                     kind, &dst);
    if (err < 0)
        return err;
    uint64_t keep = FJ_MIN(old_len, new_len);
    void *to = mm_write_ptr(mm, dst, keep);
    memmove(to, mm->vm->ram + old, keep);
    unmap_range(mm, old, old + old_len, true);
    *out = dst;
    return 0;
}

int64_t mm_brk(struct mm *mm, gva_t want)
{
    if (want == 0 || want < mm->brk_start)
        return (int64_t)mm->brk_cur;
    gva_t old_end = page_up(mm->brk_cur), new_end = page_up(want);
    if (new_end > old_end) {
        if (!in_window(mm, old_end, new_end - old_end) || !range_free(mm, old_end, new_end))
            return (int64_t)mm->brk_cur;
        if (insert_vma(mm, old_end, new_end, PROT_READ | PROT_WRITE, MM_BRK) < 0)
            return (int64_t)mm->brk_cur;
    } else if (new_end < old_end) {
        unmap_range(mm, new_end, old_end, true);
    }
    mm->brk_cur = want;
    return (int64_t)want;
}

const void *mm_read_ptr(struct mm *mm, gva_t addr, uint64_t len)
{
    if (len == 0)
        return mm->vm->ram;
    if (!in_window(mm, addr, len))
        return NULL;
    return mm->vm->ram + addr;
}

void *mm_write_ptr(struct mm *mm, gva_t addr, uint64_t len)
{
    if (len == 0)
        return mm->vm->ram;
    if (!in_window(mm, addr, len))
        return NULL;
    kvm_vm_mark_dirty(mm->vm, addr, len); /* KVM's dirty log misses host writes */
    return mm->vm->ram + addr;
}

int mm_copy_from(struct mm *mm, void *dst, gva_t src, uint64_t len)
{
    const void *p = mm_read_ptr(mm, src, len);
    if (!p)
        return -EFAULT;
    memcpy(dst, p, len);
    return 0;
}

int mm_copy_to(struct mm *mm, gva_t dst, const void *src, uint64_t len)
{
    void *p = mm_write_ptr(mm, dst, len);
    if (!p)
        return -EFAULT;
    memcpy(p, src, len);
    return 0;
}

int mm_copy_string(struct mm *mm, char *dst, gva_t src, size_t max)
{
    if (src < LAYOUT_USER_MIN || src >= mm->vm->ram_bytes)
        return -EFAULT;
    uint64_t avail = mm->vm->ram_bytes - src;
    const char *p = (const char *)mm->vm->ram + src;
    size_t n = strnlen(p, FJ_MIN(avail, (uint64_t)max));
    if (n == avail)
        return -EFAULT;
    if (n == max)
        return -ENAMETOOLONG;
    memcpy(dst, p, n + 1);
    return (int)n;
}
