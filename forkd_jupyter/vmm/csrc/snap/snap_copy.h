/* Copying guest memory into a snapshot image.
 *
 * full/diff (snap_copy.c): snap_copy_now copies while the guest is stopped.
 * live (snap_live.c): snap_copy_prepare_live write-protects guest RAM
 * while the guest still runs (pages it writes meanwhile are released and
 * logged);
 * snap_copy_start_live, in the pause, re-protects just the logged pages and
 * starts the background copy; a guest write to a page not yet copied is
 * held until that page is copied (copy-before-write), so the image is of the
 * pause instant. */
#ifndef SNAP_COPY_H
#define SNAP_COPY_H

#include "snap/snapshot.h"

int snap_copy_now(struct sandbox *sb, struct snapshot *snap);
/* Copies just the pages set in bitmap and not in zero (or NULL) (diff). */
int snap_copy_pages(struct sandbox *sb, struct snapshot *snap, const uint64_t *bitmap,
                    const uint64_t *zero);
int snap_copy_prepare_live(struct sandbox *sb, struct snapshot *snap);
/* dirty: the pages written since the previous snapshot, taken in this
 * pause (kvm_vm_collect_dirty). */
int snap_copy_start_live(struct sandbox *sb, struct snapshot *snap, const uint64_t *dirty);
/* The pause failed: undo prepare (unprotect, stop the handler). */
void snap_copy_abort(struct sandbox *sb, struct snapshot *snap);
/* Before a sandbox is freed: waits for its copy in flight. */
void snap_copy_sandbox_gone(struct sandbox *sb);

#endif
