/* A child's RAM from a snapshot chain (snapshot.h: snapshot_map_memory):
 * the full image mapped copy-on-write, every diff layer's pages over it. */
#define _GNU_SOURCE
#include "snap/snapshot.h"

#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvm/kvm_vm.h"
#include "lib/bitmap.h"
#include "snap/snap_uffd.h"

/* Diff runs at least MAP_RUN_MIN long are mapped into a child copy-on-write
 * from the layer's image, and up to the caller's cap of runs at least
 * MAP_SHORT_RUN_MIN long; the others are copied (below). Mapped, a run
 * costs the spawn a mapping instead of a copy into fresh memory (~1-2 us a
 * page here), and the child a fault at its first touch of each page. The cap bounds
 * the mappings a child adds (the daemon holds every child in one address
 * space, under the host's limit on mappings): SNAP_MAP_SHORT_RUNS_MAX for
 * a spawn from a snapshot (a checkout of a notebook's checkpoint places its
 * scattered diff pages: 58-62 -> 44-45 ms, bench/time-travel/RESULTS.md),
 * none for a forked process (a program may fork a hundred). */
#define MAP_RUN_MIN (4ULL << 20)
#define MAP_SHORT_RUN_MIN (256ULL << 10)
/* Shorter runs mapped into the children alive in this process, at most: a
 * quarter of the host's usual limit on a process's mappings (65,530), for
 * any number of sandboxes (the daemon admits up to 256). */
#define SHORT_RUNS_LIVE_MAX 16384ULL

/* A child's copied pages are filled by userfaultfd (snap_uffd.h) while its
 * RAM is registered for missing pages: each becomes the child's own page
 * at once, copied from the layer's image view (snapshot.h), where a write
 * into the copy-on-write mapping of the full image (pread) first copies
 * the full image's page it replaces. Measured here, a checkout of a
 * notebook's checkpoint (~15,000 pages in ~6,000 short runs): ~1.2 us a
 * page against ~2.2 by pread (bench/time-travel/RESULTS.md). A view's page
 * read for the first time costs a fault (the views of pages diffs compare
 * are in already), about what pread costs. Where the RAM cannot be
 * registered, a layer has no view or a fill fails, the placement goes on
 * by pread, the registration dropped first (pread's writes into
 * registered missing pages would fail, or wait for a fill nobody makes). */
struct placing {
    struct kvm_vm *vm;
    uint64_t ram_bytes;
    int uffd; /* vm's RAM registered for missing pages while >= 0 */
};

static void placing_start(struct placing *pl) {
    pl->uffd = snap_uffd_open_fill();
    if (pl->uffd >= 0 && snap_uffd_register_missing(pl->uffd, pl->vm->ram, pl->ram_bytes) < 0) {
        close(pl->uffd);
        pl->uffd = -1;
    }
}

static void placing_stop(struct placing *pl) {
    if (pl->uffd < 0)
        return;
    snap_uffd_unregister(pl->uffd, pl->vm->ram, pl->ram_bytes);
    close(pl->uffd);
    pl->uffd = -1;
}

/* Fills pages [p, q) of the child's RAM from layer's image view: each run
 * of pages the layer holds as zero (holes, never read through the view)
 * with zeros, each other run with the view's bytes; -errno. */
static int fill_run(const struct snapshot *layer, const uint8_t *view, struct placing *pl,
                    uint64_t p, uint64_t q) {
    int err = 0;
    for (uint64_t a = p, b; a < q && err == 0; a = b) {
        bool zero = snapshot_holds_zero(layer, a);
        for (b = a + 1; b < q && snapshot_holds_zero(layer, b) == zero;)
            b++;
        uint64_t off = a * FJ_PAGE_SIZE, len = (b - a) * FJ_PAGE_SIZE;
        err = snap_uffd_fill(pl->uffd, pl->vm->ram + off, zero ? NULL : view + off, len);
    }
    return err;
}

/* Places pages [p, q) of a layer's image into the child's RAM, mapped or
 * copied (above); *short_runs_left counts down the shorter runs it may map. */
static int place_run(const struct snapshot *layer, struct placing *pl, uint64_t p, uint64_t q,
                     unsigned *short_runs_left) {
    uint8_t *ram = pl->vm->ram;
    uint64_t off = p * FJ_PAGE_SIZE, len = (q - p) * FJ_PAGE_SIZE;
    bool short_run = len < MAP_RUN_MIN;
    if ((!short_run || (len >= MAP_SHORT_RUN_MIN && *short_runs_left)) &&
        mmap(ram + off, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE,
             layer->image_fd, (off_t)off) != MAP_FAILED) {
        *short_runs_left -= short_run;
        return 0;
    }
    const uint8_t *view = pl->uffd >= 0 ? snapshot_image_view(layer) : NULL;
    if (view && fill_run(layer, view, pl, p, q) == 0)
        return 0;
    placing_stop(pl); /* pread below writes the pages (a partial fill's again) */
    while (len) { /* a direct write: the child's own dirty epoch starts empty */
        ssize_t r = pread(layer->image_fd, ram + off, len, (off_t)off);
        if (r <= 0)
            return r < 0 ? -errno : -EIO;
        off += (uint64_t)r;
        len -= (uint64_t)r;
    }
    return 0;
}

int snapshot_map_memory(struct snapshot *snap, struct kvm_vm *vm, unsigned short_runs_max) {
    /* Newest layer first; each page comes from the newest layer holding it
     * (placed: the pages already there), so a page rewritten by every cell
     * is placed once, not once per layer. Pages no layer holds stay the
     * chain's full image, mapped below. What a child reads never changes
     * under it: a fold writes only into an older image pages a newer layer
     * holds, and the child took those from the newer layer (snap_fold.c). */
    if (!snap->parent)
        return 0; /* the full image is the mapping itself */
    uint64_t pages = snap->ram_bytes / FJ_PAGE_SIZE, words = (pages + 63) / 64;
    uint64_t *placed = calloc(words, sizeof(*placed)), *want = malloc(words * sizeof(*want));
    int err = placed && want ? 0 : -ENOMEM;
    uint64_t live = kvm_vm_mapped_runs_live();
    unsigned short_runs_left = live >= SHORT_RUNS_LIVE_MAX
                                   ? 0
                                   : (unsigned)FJ_MIN(short_runs_max, SHORT_RUNS_LIVE_MAX - live);
    unsigned short_runs_allowed = short_runs_left, no_runs = 0;
    struct placing pl = {.vm = vm, .ram_bytes = snap->ram_bytes, .uffd = -1};
    if (err == 0)
        placing_start(&pl);
    for (const struct snapshot *layer = snap; layer->parent && err == 0; layer = layer->parent) {
        for (uint64_t w = 0; w < words; w++) {
            want[w] = layer->delta[w] & ~placed[w];
            placed[w] |= layer->delta[w];
        }
        unsigned *allowance = snapshot_image_is_own(layer) ? &short_runs_left : &no_runs;
        for (uint64_t q, p = fj_bits_next_run(want, pages, 0, &q); p < pages && err == 0;
             p = fj_bits_next_run(want, pages, q, &q))
            err = place_run(layer, &pl, p, q, allowance);
    }
    placing_stop(&pl);
    kvm_vm_add_mapped_runs(vm, short_runs_allowed - short_runs_left);
    free(placed);
    free(want);
    return err;
}
