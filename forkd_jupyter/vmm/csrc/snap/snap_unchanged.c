/* Pages a diff snapshot need not copy (snap_unchanged.h). */
#define _GNU_SOURCE
#include "snap/snap_unchanged.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snap/snapshot.h"

#include "api/vmm_api.h"

#include "api/snapshot_api.h" /* after vmm_api.h, whose types it uses */

#include "core/proc.h"
#include "lib/bitmap.h"

#define CHAIN_MAX 64 /* diff layers looked through; a page only deeper is copied */
/* A compare of a page written since the last diff (its copy in the
 * chain's image faulted in for it, or read) costs a third to a half of the
 * copy it saves when the page is unchanged. Pages
 * are compared in windows of WINDOW_PAGES; after BAD_WINDOWS_MAX windows
 * in a row that found less than a quarter of their pages unchanged, or
 * COMPARE_MAX_PAGES in one pause (128 MiB), the rest is copied as written:
 * a cell that rewrote its data with new values pays ~2,000 compares (~3 ms),
 * not one for every page it wrote, and an array half rewritten still has
 * its unchanged half left out. */
#define WINDOW_PAGES 512
#define BAD_WINDOWS_MAX 4
#define COMPARE_MAX_PAGES 32768

/* The diff layers of a chain, newest first. */
struct chain_view {
    const struct snapshot *layer[CHAIN_MAX];
    size_t n;
};

static struct chain_view chain_view_of(uint64_t ram_bytes, const struct snapshot *parent) {
    struct chain_view v = {.n = 0};
    for (const struct snapshot *l = parent; l && l->parent && l->delta && v.n < CHAIN_MAX;
         l = l->parent) {
        if (l->image_fd < 0 || l->ram_bytes != ram_bytes)
            break;
        v.layer[v.n++] = l;
    }
    return v;
}

/* The newest diff layer holding page p, or NULL. */
static const struct snapshot *holder(const struct chain_view *v, uint64_t p) {
    for (size_t i = 0; i < v->n; i++)
        if (fj_bit_test(v->layer[i]->delta, p))
            return v->layer[i];
    return NULL;
}

/* Pages [p, q) of dirty read zero: each leaves dirty when the chain holds
 * it as zero, else is set in zero. */
static int64_t sort_zero_run(const struct chain_view *v, uint64_t *dirty, uint64_t *zero,
                             uint64_t *unmapped, uint64_t p, uint64_t q, uint64_t *n_zero) {
    int64_t dropped = 0;
    for (uint64_t e, s = fj_bits_next_run(dirty, q, p, &e); s < q;
         s = fj_bits_next_run(dirty, q, e, &e))
        for (uint64_t i = s; i < e; i++) {
            fj_bit_set(unmapped, i);
            const struct snapshot *l = holder(v, i);
            if (l && snapshot_holds_zero(l, i)) {
                fj_bit_clear(dirty, i);
                dropped++;
            } else {
                fj_bit_set(zero, i);
                (*n_zero)++;
            }
        }
    return dropped;
}

int64_t snap_sort_unmapped(const struct sandbox *sb, const struct snapshot *parent, uint64_t *dirty,
                           uint64_t *unmapped, uint64_t **zero) {
    *zero = NULL;
    struct chain_view v = chain_view_of(sb->vm.ram_bytes, parent);
    uint64_t pages = sb->vm.ram_bytes / FJ_PAGE_SIZE, at = 0;
    uint64_t *z = calloc(1, kvm_vm_bitmap_bytes(&sb->vm));
    if (!z)
        return -ENOMEM;
    int64_t dropped = 0;
    uint64_t n_zero = 0;
    for (size_t i = 0; i <= sb->mm.n_vmas; i++) { /* the gaps between mappings */
        uint64_t end = i < sb->mm.n_vmas ? sb->mm.vmas[i].start / FJ_PAGE_SIZE : pages;
        if (at < end)
            dropped += sort_zero_run(&v, dirty, z, unmapped, at, FJ_MIN(end, pages), &n_zero);
        if (i < sb->mm.n_vmas)
            at = FJ_MAX(at, sb->mm.vmas[i].end / FJ_PAGE_SIZE);
    }
    if (n_zero)
        *zero = z;
    else
        free(z);
    return dropped;
}

/* The pages of dirty the chain holds in a diff layer, not in zero, and (in
 * or out of) kept, in word w. */
static uint64_t comparable(const struct chain_view *v, const uint64_t *dirty, const uint64_t *zero,
                           const uint64_t *kept, bool in_kept, size_t w) {
    uint64_t held = 0;
    for (size_t i = 0; i < v->n; i++)
        held |= v->layer[i]->delta[w];
    uint64_t k = kept ? kept[w] : 0;
    return dirty[w] & held & (zero ? ~zero[w] : ~0ULL) & (in_kept ? k : ~k);
}

static const uint8_t zero_page[FJ_PAGE_SIZE];

/* len bytes of layer l's image from page p: through its view, else read
 * into buf (len long); NULL when they cannot be read. */
static const uint8_t *layer_copy(const struct snapshot *l, uint64_t p, size_t len, uint8_t *buf) {
    const uint8_t *view = snapshot_image_view(l);
    if (view)
        return view + p * FJ_PAGE_SIZE;
    return pread(l->image_fd, buf, len, (off_t)(p * FJ_PAGE_SIZE)) == (ssize_t)len ? buf : NULL;
}

/* Compares the pages of word w set in bits with the chain's copies and
 * clears the equal ones from dirty. Each run of them one layer holds is
 * compared in its mapped image, or read in one call into buf (64 pages)
 * when the image cannot be mapped. Returns how many were dropped. */
static int64_t drop_unchanged_word(const struct sandbox *sb, const struct chain_view *v,
                                   uint64_t *dirty, size_t w, uint64_t bits, uint8_t *buf) {
    int64_t dropped = 0;
    for (uint64_t e, s = fj_bits_next_run(&bits, 64, 0, &e); s < 64;
         s = fj_bits_next_run(&bits, 64, e, &e)) {
        for (uint64_t a = s, b; a < e; a = b) {
            uint64_t p = w * 64 + a;
            const struct snapshot *l = holder(v, p);
            for (b = a + 1; b < e && holder(v, w * 64 + b) == l;)
                b++;
            if (!l)
                continue;
            const uint8_t *copy = layer_copy(l, p, (size_t)(b - a) * FJ_PAGE_SIZE, buf);
            if (!copy)
                continue;
            for (uint64_t i = a; i < b; i++)
                if (memcmp(sb->vm.ram + (w * 64 + i) * FJ_PAGE_SIZE,
                           snapshot_holds_zero(l, w * 64 + i) ? zero_page
                                                              : copy + (i - a) * FJ_PAGE_SIZE,
                           FJ_PAGE_SIZE) == 0) {
                    fj_bit_clear(dirty, w * 64 + i);
                    dropped++;
                }
        }
    }
    return dropped;
}

/* Whether window after window of compares still pays (see WINDOW_PAGES):
 * called after each compare with the running counts. */
static bool still_worth(int64_t compared, int64_t dropped, int64_t *dropped_before_window,
                        int64_t *bad_windows) {
    if (compared % WINDOW_PAGES)
        return true;
    bool paid = (dropped - *dropped_before_window) * 4 >= WINDOW_PAGES;
    *bad_windows = paid ? 0 : *bad_windows + 1;
    *dropped_before_window = dropped;
    return compared < COMPARE_MAX_PAGES && *bad_windows < BAD_WINDOWS_MAX;
}

int64_t snap_drop_unchanged(const struct sandbox *sb, const struct snapshot *parent,
                            uint64_t *dirty, const uint64_t *zero, const uint64_t *kept) {
    struct chain_view v = chain_view_of(sb->vm.ram_bytes, parent);
    int64_t dropped = 0, compared = 0, dropped_before_window = 0, bad_windows = 0;
    size_t words = kvm_vm_bitmap_bytes(&sb->vm) / 8;
    /* Pages left writable are reported whether written or not: each is
     * compared, outside the budget below, a run at a time (one read per
     * run a layer holds: the pandas notebook's diffs at the VMM level
     * paused 281 ms in all instead of 291-293 one page a read). */
    uint8_t *buf = v.n ? malloc(64 * FJ_PAGE_SIZE) : NULL;
    for (size_t w = 0; w < words && buf && kept; w++)
        if (dirty[w])
            dropped += drop_unchanged_word(sb, &v, dirty, w,
                                           comparable(&v, dirty, zero, kept, true, w), buf);
    bool worth = buf != NULL;
    dropped_before_window = dropped;
    for (size_t w = 0; w < words && worth; w++) {
        if (!dirty[w])
            continue;
        for (uint64_t left = comparable(&v, dirty, zero, kept, false, w); left && worth;
             left &= left - 1) {
            dropped += drop_unchanged_word(sb, &v, dirty, w, left & -left, buf);
            worth = still_worth(++compared, dropped, &dropped_before_window, &bad_windows);
        }
    }
    free(buf); /* (without it, on ENOMEM, every page is copied as written) */
    return dropped;
}

int64_t snap_drop_unchanged_staged(const struct snapshot *parent, uint64_t ram_bytes,
                                   uint64_t *delta, const uint64_t *pages, uint32_t n,
                                   const uint8_t *staged) {
    struct chain_view v = chain_view_of(ram_bytes, parent);
    uint8_t *buf = v.n ? malloc(FJ_PAGE_SIZE) : NULL;
    int64_t dropped = 0, compared = 0, dropped_before_window = 0, bad_windows = 0;
    for (uint32_t i = 0; i < n && buf; i++) {
        const struct snapshot *l = holder(&v, pages[i]);
        if (!l)
            continue;
        const uint8_t *copy = snapshot_holds_zero(l, pages[i])
                                  ? zero_page
                                  : layer_copy(l, pages[i], FJ_PAGE_SIZE, buf);
        if (!copy)
            continue;
        if (memcmp(staged + (size_t)i * FJ_PAGE_SIZE, copy, FJ_PAGE_SIZE) == 0) {
            fj_bit_clear(delta, pages[i]);
            dropped++;
        }
        if (!still_worth(++compared, dropped, &dropped_before_window, &bad_windows))
            break;
    }
    free(buf);
    return dropped;
}
