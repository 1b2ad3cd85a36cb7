/* A child's RAM from a snapshot chain (snapshot.h: snapshot_map_memory):
 * the full image mapped copy-on-write, every diff layer's pages over it. */
#define _GNU_SOURCE
#include "snap/snapshot.h"

#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* Diff runs at least this long are mapped into a child, shorter ones copied
 * (fewer mappings: the daemon holds every child in one address space). */
#define MAP_RUN_MIN (4ULL << 20)

/* Places pages [p, q) of a layer's image into the child's RAM. A long run
 * is mapped copy-on-write from the layer instead of copied: spawning from a
 * checkpoint after a cell that wrote GiBs costs a mapping, not a copy. */
static int place_run(const struct snapshot *layer, struct kvm_vm *vm, uint64_t p, uint64_t q) {
    uint64_t off = p * FJ_PAGE_SIZE, len = (q - p) * FJ_PAGE_SIZE;
    if (len >= MAP_RUN_MIN &&
        mmap(vm->ram + off, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE,
             layer->image_fd, (off_t)off) != MAP_FAILED)
        return 0;
    while (len) { /* a direct write: the child's own dirty epoch starts empty */
        ssize_t r = pread(layer->image_fd, vm->ram + off, len, (off_t)off);
        if (r <= 0)
            return r < 0 ? -errno : -EIO;
        off += (uint64_t)r;
        len -= (uint64_t)r;
    }
    return 0;
}

int snapshot_map_memory(struct snapshot *snap, struct kvm_vm *vm) {
    /* Newest layer first; each page comes from the newest layer holding it
     * (placed: the pages already there), so a page rewritten by every cell
     * is placed once, not once per layer. Pages no layer holds stay the
     * chain's full image, mapped below. What a child reads never changes
     * under it: a fold writes only into an older image pages a newer layer
     * holds, and the child took those from the newer layer (snap_fold.c). */
    if (!snap->parent)
        return 0; /* the full image is the mapping itself */
    uint64_t pages = snap->ram_bytes / FJ_PAGE_SIZE, words = (pages + 63) / 64;
    uint64_t *placed = calloc(words, sizeof(*placed));
    if (!placed)
        return -ENOMEM;
    int err = 0;
    for (const struct snapshot *layer = snap; layer->parent && err == 0; layer = layer->parent) {
        for (uint64_t p = 0; p < pages && err == 0;) {
            uint64_t want = layer->delta[p / 64] & ~placed[p / 64];
            if (!(want >> (p % 64))) {
                p = FJ_ALIGN_UP(p + 1, 64); /* nothing more in this word */
                continue;
            }
            if (!(want >> (p % 64) & 1)) {
                p++;
                continue;
            }
            uint64_t q = p;
            while (q < pages && (layer->delta[q / 64] & ~placed[q / 64]) >> (q % 64) & 1)
                q++;
            err = place_run(layer, vm, p, q);
            p = q;
        }
        for (uint64_t w = 0; w < words; w++)
            placed[w] |= layer->delta[w];
    }
    free(placed);
    return err;
}
