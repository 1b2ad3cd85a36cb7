/* A diff's written pages staged in its pause and finished after it
 * (snap_stage.c).
 *
 * A diff built on a parent compares each written page with the chain's
 * copy and copies the changed ones into fresh memory of its image: about
 * 1-1.5 us and ~1.8 us a page on these machines, all inside the pause. A
 * diff of a sandbox whose stage holds its written pages instead copies
 * them there, into memory populated ahead (~0.3-0.5 us a page), and the
 * guest resumes; a thread of its own then compares the staged copies with
 * the chain, writes the changed ones into the image, and only then makes
 * the diff READY. Whatever needs a diff's image waits for READY already (a
 * spawn, a save, a fold); the sandbox's next snapshot waits for its last
 * one too (snapshot_capture_memory).
 *
 * Invariants: staged copies are of the pause instant, so a finished diff
 * holds exactly what one made in the pause would. The stage is written
 * only in a pause of its sandbox and read only by the finishing of the
 * diff staged last, under stage->lock. The chain a finishing compares
 * against is held against folds (snapshot_chains_lock, read). A diff is
 * staged only when every written page fits the stage; a stage grows (in
 * the background, to the pages the last diff wrote, up to STAGE_MAX_PAGES)
 * after a diff that did not fit, and stays with its sandbox. */
#ifndef SNAP_STAGE_H
#define SNAP_STAGE_H

#include <stdbool.h>
#include <stdint.h>

struct sandbox;
struct snapshot;
struct snap_stage;

#define STAGE_MAX_PAGES 16384 /* 64 MiB: what a cell of a data notebook writes */
/* Staged only when a diff copies this many pages: fewer (an idle
 * sandbox's stray writes) cost little in the pause. */
#define STAGE_MIN_PAGES 256

/* In a pause of sb, its diff's pages collected: whether a stage of sb's,
 * free and large enough, takes the `pages` pages the diff will hold (it is
 * then the diff's to fill: snap_stage_copy). False when sb has none or it
 * is in use or too small (it is then asked to grow: snap_stage_grow_later).
 * May allocate. */
bool snap_stage_claim(struct sandbox *sb, uint64_t pages);
/* The same pause failed after a claim: the stage is free again. */
void snap_stage_unclaim(struct sandbox *sb);
/* In the same pause, after a claim: copies the pages of snap->delta not in
 * snap->zero into the stage and hands the stage to snap. */
void snap_stage_copy(struct sandbox *sb, struct snapshot *snap);
/* After the pause of a staged diff (snap->staged): its finishing, on a
 * thread of its own (on the caller's when none can be made). */
void snap_stage_finish_later(struct snapshot *snap);
/* After a pause: grows sb's stage in the background if a diff asked. */
void snap_stage_grow_later(struct sandbox *sb);
/* Drops a reference (a staged diff's, when finished; its sandbox's). */
void snap_stage_put(struct snap_stage *stage);

#endif
