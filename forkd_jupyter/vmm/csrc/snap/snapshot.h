/* A sandbox frozen at one instant: memory image, vCPU state, VMM state.
 *
 * Invariants: everything in a snapshot is immutable once status is READY;
 * the image memfd is never written after that (children map it private).
 * Memory image and the state of every vCPU are taken in one pause (every
 * vCPU parked), so they are of the same instant (for live, the background copy preserves
 * every page as of the pause before the source may write it). */
#ifndef SNAPSHOT_H
#define SNAPSHOT_H

#include <pthread.h>
#include <stdatomic.h>

#include "core/fdt.h"
#include "kvm/kvm_state.h"
#include "core/sandbox.h"
#include "lib/bitmap.h"

struct snap_copier;

/* A thread other than the main one, as of the pause. */
struct snap_thread {
    uint32_t tid;
    uint32_t id;             /* its vCPU id */
    struct kvm_state cpu;
    struct sb_signals sig;   /* the thread's part: mask, alternate stack */
    uint64_t clear_child_tid, robust_list;
};

/* A process of the table as of the pause (alive or a zombie). */
struct snap_slot {
    uint32_t pid, ppid, pgid, sid;
    bool zombie;
    int wait_status;
};

struct snapshot {
    _Atomic int refs;
    int mode;
    _Atomic int status;
    uint64_t ram_bytes;
    int image_fd;               /* memfd: guest RAM at the pause instant (full, live), or
                                   only the pages in delta (diff) */
    struct snapshot *parent;    /* diff: the snapshot whose memory this one builds on (a reference) */
    /* A fork's diff (snap_fork.c): taken as a full image instead when the
     * chain's diffs, this one included, would hold a quarter of what the
     * process maps. A forked child copies every diff page in short runs
     * (snapshot_map_memory), so a process whose chain holds much of its
     * memory (a branch's child after `import torch`) would have each child
     * copy it all again; after one full image, forks are small diffs. */
    bool full_if_chain_heavy;
    uint64_t *delta;            /* diff: bitmap of the pages image_fd holds */
    /* diff: the pages of delta that read zero and were not copied (the
     * image's hole there reads zero; snap_unchanged.h), or NULL. */
    uint64_t *zero;
    /* diff: image_fd mapped read-only, ram_bytes long, made at the first
     * read through it (snapshot_image_view, which caps the views of a
     * process) and kept to the end; NULL before, MAP_FAILED when it could
     * not be made. Moves with image_fd. */
    _Atomic(void *) image_view;
    struct kvm_state cpu;       /* the main thread */
    struct snap_thread *threads; /* the others */
    uint32_t n_threads;
    /* The threads' PR_SET_NAME names, [0] the main thread's and [1 + i]
     * threads[i]'s; NULL when none was set. Not saved to disk (a saved
     * snapshot's blob of a thread is struct snap_thread as it is). */
    char (*names)[16];
    uint32_t next_tid;
    struct mm mm;               /* address-space map (mm.vm is NULL) */
    struct sb_signals sig;      /* actions, and the main thread's mask and alternate stack */
    struct fdt fdt;             /* descriptions cloned against view */
    struct fs_view *view;       /* the writable layer as of the pause */
    /* The sandbox's other processes alive at the pause, each a snapshot of
     * its own whose view shares this one's layer (snap_procs.h), and the
     * process table (empty: the first process alone). */
    struct snapshot **procs;
    uint32_t n_procs;
    struct snap_slot *slots;
    uint32_t n_slots;
    uint32_t pid;
    char exe_path[4096];
    struct sb_limits limits;    /* setrlimit's, setpriority's and ioprio_set's values */
    struct sb_prctl prctl;      /* prctl's; not saved to disk (a loaded one has the defaults) */
    uint64_t pause_ns, copy_ns, logical_bytes, physical_bytes, dirty_bytes, kept_bytes;
    uint64_t held_max_ns, held_total_ns; /* live: guest writes held by the copier (arming and copy) */
    char error[160];
    pthread_mutex_t lock;
    pthread_cond_t cond;        /* signalled when status leaves WRITING */
    struct snap_copier *copier; /* live mode: background copy in flight */
    struct ws_hint *hint;       /* the source's working-set hint, for children */
    /* diff: may be staged (snap_stage.h: a sandbox's own diff, not a fork's
     * or another process's); while its finishing runs, the stage it holds. */
    bool may_stage, was_staged;
    struct snap_stage *staged;
    bool changed_nothing;     /* staged, finished: every page written was found unchanged */
    uint32_t idle_run_before; /* staged: the sandbox's diffs in a row that changed nothing, before */
};

/* Held (read) by whatever reads a chain's layers outside the caller's
 * serialization (a staged diff's finishing), and (write) by a fold, which
 * rewires a chain. */
extern pthread_rwlock_t snapshot_chains_lock;

/* The per-thread part of signal state: mask and alternate stack. */
static inline void copy_thread_signals(struct sb_signals *dst, const struct sb_signals *src)
{
    dst->blocked = src->blocked;
    dst->altstack_sp = src->altstack_sp;
    dst->altstack_size = src->altstack_size;
    dst->altstack_flags = src->altstack_flags;
    dst->mask_after = src->mask_after;
    dst->restore_after = src->restore_after;
}

/* One reference, status WRITING, no image yet. */
struct snapshot *snapshot_alloc(int mode, uint64_t ram_bytes);
void snapshot_finish(struct snapshot *snap, int status, const char *error);
/* Fills a child's RAM: the chain's full image mapped copy-on-write, then
 * each page from the newest diff layer holding it, long runs mapped, up to
 * short_runs_max shorter ones mapped too, the rest copied (snap_map.c). */
int snapshot_map_memory(struct snapshot *snap, struct kvm_vm *vm, unsigned short_runs_max);
#define SNAP_MAP_SHORT_RUNS_MAX 256
struct snapshot *snapshot_get(struct snapshot *snap);
/* Whether snap's image is the VMM's own (a memfd), not a loaded snapshot's
 * file on disk: only the former is mapped for the VMM's own reads or as
 * a child's shorter runs (a file cut short under a mapping would fault). */
bool snapshot_image_is_own(const struct snapshot *snap);
/* snap's image mapped read-only (image_view), made at the first call and
 * kept while snap lives, or NULL when it is not mapped (an image not the
 * VMM's own, or the process's views at their cap). Its pages are read by
 * a diff's compare (snap_unchanged.c) and by a child's placement of the
 * pages it copies (snap_map.c); a page snap holds as zero (zero) is a hole
 * there and is never read through the view (a fault would give the image
 * a page of its own). */
const uint8_t *snapshot_image_view(const struct snapshot *snap);
/* Unmaps snap's image view, if any: its release. */
void snapshot_image_view_drop(struct snapshot *snap);
/* Whether snap (a diff) holds page p as zero: a hole of its image, read
 * with zeros, never through its view (a fault there would give the image
 * a page of its own). */
static inline bool snapshot_holds_zero(const struct snapshot *snap, uint64_t p)
{
    return snap->zero && fj_bit_test(snap->zero, p);
}
/* The full image at the bottom of a diff chain. */
struct snapshot *snapshot_chain_root(struct snapshot *snap);
/* With sb stopped (or only its calling thread running): snap's memory
 * (by snap->mode) and sb's new dirty epoch; sb->last_snap becomes snap and
 * the one it replaces goes to *replaced (release it outside any pause). */
int snapshot_capture_memory(struct sandbox *sb, struct snapshot *snap, struct snapshot **replaced);
/* snap's image file of ram_bytes, unless it has one: a file of the image
 * store for a full image when there is one (snap_image.c), else a memfd.
 * -errno. */
int snapshot_make_image(struct snapshot *snap);
/* In a pause: sb's threads' registers and signal state into snap. */
int snapshot_capture_threads(struct sandbox *sb, struct snapshot *snap);
/* In a pause, snap->view made: sb's address space, identity and files
 * (cloned within ctx, against snap->view). */
int snapshot_capture_state(struct sandbox *sb, struct snapshot *snap, struct fdt_clone_ctx *ctx);
/* A sandbox_alloc'ed process gets snap's memory, registers, threads (not
 * started) and address space. */
int snapshot_restore_process(struct sandbox *sb, struct snapshot *snap);
/* Starts fn(arg) on a detached thread; false when none could be made. */
bool snapshot_run_detached(void *(*fn)(void *), void *arg);
/* Drops a reference on a thread of its own (freeing an image takes long). */
void snapshot_release_in_background(struct snapshot *snap);
/* sb->lineage_release of every sandbox this layer attached state to. */
void snapshot_release_lineage(struct sandbox *sb);

#endif
