/* What a diff snapshot's dirty log overstates, and the pages left writable
 * between diffs (snap_unchanged.c).
 *
 * A page the guest wrote back to what it held (a reference count up, then
 * down) is logged all the same, and a page written at every cell takes a
 * KVM write fault at every cell (~3-4 us here) only so the log can say so.
 * So a diff built on a parent:
 * - compares each written page with the chain's copy (the newest diff
 *   layer holding it, in its image mapped read-only once: snapshot.h,
 *   image_view) and leaves the equal ones out;
 * - leaves writable (kvm_vm_collect_begin/end) the pages written in this
 *   epoch and the previous one, up to KEEP_MAX_PAGES: the next epoch reports
 *   them without a fault, and the next diff compares them again. So that
 *   pages that went cold stop being compared, every KEEP_EPOCHS diffs in a
 *   row while more than KEEP_SETTLED_PAGES are kept, the kept pages that
 *   diff found unchanged (or zero) are re-armed, the changed ones stay
 *   writable (re-arming those made the next cell of a data notebook pay a
 *   fault for each, ~10,000 pages, 40 ms); and after IDLE_REARM_DIFFS
 *   diffs in a row that found nothing changed, all are (an idle sandbox:
 *   the idle diffs after that compare nothing). Pages left writable are
 *   reported by the next diff whether written or not, so it compares them
 *   all; the pages written since are compared within a budget (below).
 *   A page no mapping reaches is re-armed unless it is a spare
 *   (kvm_discard.c): the next cell maps spares again, and writes them.
 *
 * Measured (2026-12-04, bench/time-travel/bench_diff_pause.py): a re-armed
 * page's next write costs a KVM write fault of ~3 us on some days and ~20
 * us on others (~600 pages re-armed: the next trivial cell 12-16 ms instead
 * of ~1 ms), while comparing a kept page costs ~1-1.5 us in the pause. So a
 * small kept set (a short cell's ~600 pages) is never re-armed while the
 * sandbox works, and one idle diff (a branch right after a checkpoint)
 * re-arms nothing.
 *
 * A written page no mapping reaches at the pause (a buffer the program
 * mapped, filled and unmapped since the last diff) reads zero: RAM starts
 * zero, every range unmapped is released as zero (kvm_discard.c) and every
 * new mapping covers its range first (mm.c: vma_insert_at). Such a page is
 * neither compared nor copied: it leaves the diff when the chain's newest
 * layer holding it holds it as zero too, else the diff holds it as zero
 * (snapshot.h: zero; the image's hole there reads zero).
 *
 * Invariant: a page leaves a diff only when its bytes equal those the chain
 * gives for it, so a child of the diff reads the sandbox's RAM at the
 * pause. Keeping a page writable only makes later logs report more pages,
 * never fewer. */
#ifndef SNAP_UNCHANGED_H
#define SNAP_UNCHANGED_H

#include <stdint.h>

struct sandbox;
struct snapshot;

#define KEEP_MAX_PAGES 16384 /* 64 MiB compared at most per diff for pages kept writable */
#define KEEP_EPOCHS 8
#define KEEP_SETTLED_PAGES 2048 /* 8 MiB: compared in ~2-3 ms, kept for good */
#define IDLE_REARM_DIFFS 2

/* Sorts out the pages of dirty no mapping of the sandbox reaches, setting
 * them all in unmapped: clears from dirty those the chain (from parent
 * down) holds as zero, sets the others in *zero (allocated when there is
 * one, else left NULL). Returns the number of pages cleared, or -ENOMEM.
 * The caller holds the chain against folding. */
int64_t snap_sort_unmapped(const struct sandbox *sb, const struct snapshot *parent, uint64_t *dirty,
                           uint64_t *unmapped, uint64_t **zero);

/* Clears from dirty the pages whose bytes in the sandbox's RAM equal those
 * of the newest diff layer holding them, from parent down (pages no diff
 * layer holds stay: the chain's full image is not compared); pages set in
 * zero (or NULL) are not compared; pages in kept (or NULL: the ones the
 * last diff left writable) are all compared, the others within a budget.
 * Returns the number of pages cleared. The caller holds the chain against
 * folding. */
int64_t snap_drop_unchanged(const struct sandbox *sb, const struct snapshot *parent,
                            uint64_t *dirty, const uint64_t *zero, const uint64_t *kept);

/* snap_drop_unchanged for a staged diff (snap_stage.h), after its pause:
 * the n pages staged (guest page pages[i] copied at staged + i pages),
 * compared within the same budget, cleared from delta when equal. The
 * caller holds the chain against folding (snapshot_chains_lock). */
int64_t snap_drop_unchanged_staged(const struct snapshot *parent, uint64_t ram_bytes,
                                   uint64_t *delta, const uint64_t *pages, uint32_t n,
                                   const uint8_t *staged);

#endif
