/* Working-set hints: the guest pages a child touched in its first request,
 * kept for the next children of the same lineage and faulted in on the host
 * when they are spawned.
 *
 * Every first touch of a page by a fresh child costs a host fault (and, for
 * a write, a copy-on-write) on top of KVM's own fault; faulting the likely
 * pages in at spawn, in a few madvise calls, leaves the guest only KVM's
 * cheap part.
 *
 * Invariants:
 * - a hint changes what is resident in a child, never what a page holds:
 *   prefaulting a page of the child's private view copies (write) or maps
 *   (read) the image's own content, exactly what the guest's touch would do;
 * - the pages a hint writes are bounded (HINT_MAX_WRITTEN), so children stay
 *   mostly shared with their image;
 * - one hint is shared by a sandbox, its snapshots and their children (a
 *   reference each); its ranges are replaced whole under its lock. */
#ifndef SNAP_HINT_H
#define SNAP_HINT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

struct kvm_vm;

#define HINT_MAX_WRITTEN 2048 /* pages (8 MiB) a child copies up front */
#define HINT_MAX_READ 16384   /* pages (64 MiB) mapped up front; no memory of their own */

struct hint_range {
    uint64_t start, end; /* guest-physical bytes, page aligned */
};

struct ws_hint {
    _Atomic int refs;
    pthread_mutex_t lock;
    struct hint_range *written, *read;
    size_t n_written, n_read;
};

struct ws_hint *hint_new(void);
struct ws_hint *hint_get(struct ws_hint *h);
void hint_put(struct ws_hint *h);
/* Replaces h's ranges with the pages of vm's private RAM view that are
 * resident now: copied ones the child wrote since its last snapshot (its
 * dirty log; all copied ones where KVM cannot tell without starting a new
 * epoch) and mapped image pages (read). */
int hint_learn(struct ws_hint *h, struct kvm_vm *vm);
/* Faults h's pages into vm's private RAM view (before its vCPU runs). */
void hint_prefault(struct ws_hint *h, struct kvm_vm *vm);

#endif
