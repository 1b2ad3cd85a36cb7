/* Snapshots of a running sandbox and the children spawned from them. */
typedef struct snapshot fj_snapshot;

#define FJ_SNAP_FULL 0
#define FJ_SNAP_DIFF 1
#define FJ_SNAP_LIVE 2
/* Or-ed into FJ_SNAP_DIFF: the caller need not wait for READY, so the
 * diff's pages may be staged in the pause and compared and written after
 * it (snap/snap_stage.h); without it a diff is READY when the call returns. */
#define FJ_SNAP_MAY_STAGE 0x100
#define FJ_SNAP_WRITING 0
#define FJ_SNAP_READY 1
#define FJ_SNAP_FAILED 2

struct fj_snapshot_info {
    int mode;
    int status;
    double pause_ms;          /* the source's vCPU was stopped this long */
    double copy_ms;           /* memory copy, in or after the pause */
    double stall_ms;          /* longest single freeze the VMM imposed on the source: the
                                 pause, or (live) one guest write held by the copy-on-write */
    double stall_total_ms;    /* the pause plus (live) every held write, arming and copy */
    uint64_t logical_bytes;   /* guest memory the image stands for */
    uint64_t physical_bytes;  /* host memory the image holds of its own */
    uint64_t dirty_bytes;     /* guest memory written since the source's previous snapshot
                                 (what a diff would hold), whatever the mode */
    uint64_t kept_bytes;      /* diff: guest memory left writable after it, compared again at
                                 the next diff (snap/snap_unchanged.h) */
    int staged;               /* diff: its pages were staged in the pause, then compared and
                                 written after it (snap/snap_stage.h) */
    char error[160];
};

/* Any thread. Returns after the source resumed; a live snapshot may still be
 * writing (see fj_snapshot_wait). The caller owns one reference. */
int fj_sandbox_snapshot(fj_sandbox *sb, int mode, fj_snapshot **out);
int fj_snapshot_get_info(fj_snapshot *snap, struct fj_snapshot_info *out);
/* 0 when ready, -EIO when failed, -ETIMEDOUT (timeout_ns < 0 waits forever). */
int fj_snapshot_wait(fj_snapshot *snap, int64_t timeout_ns);
/* A new sandbox whose state is the snapshot's; ctl_fd as in fj_spawn_config.
 * Waits for a writing snapshot to be ready first. */
int fj_snapshot_spawn(fj_snapshot *snap, int ctl_fd, fj_sandbox **out);
void fj_snapshot_release(fj_snapshot *snap);
/* A ready diff snapshot absorbs its ready parent: its image becomes the
 * parent's with its own pages over it, it builds on the parent's parent
 * (standalone when the parent was full), and it drops its reference to the
 * parent. The caller guarantees nothing else uses the parent (no child of it
 * runs, no other snapshot builds on it) and serializes this with spawns from
 * either. 0, -EINVAL (not a diff), -EBUSY (not ready), or -errno (copying
 * failed: the snapshot is unchanged and still correct, but the parent's image
 * may hold some of its pages, so the parent must never be spawned from
 * again). */
int fj_snapshot_fold_parent(fj_snapshot *snap);
/* Any thread, on a child: remembers the pages it has touched since it was
 * spawned as the hint its lineage's next children are prefaulted with.
 * 0, or -errno (-ENOTTY: the kernel cannot scan page tables). */
int fj_sandbox_learn_working_set(fj_sandbox *sb);
/* Writes a snapshot (waiting until it is ready) into the existing directory
 * dir as files state, layer.memfs and memory.img; a diff chain is folded
 * into one image. 0 or -errno. */
int fj_snapshot_save(fj_snapshot *snap, const char *dir);
/* What a loaded snapshot's view is built from: this host's configuration,
 * never the saved files (they cannot widen what the guest may read). */
struct fj_load_config {
    const char *const *ro_roots;
    size_t n_ro_roots;
    const char *agent_host_dir;
    const char *exe_path;          /* must be the interpreter the snapshot was taken of */
};
/* Builds a ready, standalone (full) snapshot the caller owns from the
 * contents of a saved snapshot's files: state_fd and layer_fd are read;
 * memory_fd, a memfd (or a file of the image store) of exactly the state's
 * ram_bytes private to the caller (the image, holes read zero), is adopted (dup'd). The caller has
 * authenticated the contents; loading still checks every field. -EBADMSG:
 * checksum mismatch; -EPROTO: another version; -EXDEV: taken of another
 * interpreter; -EINVAL: not a snapshot (or damaged). */
int fj_snapshot_load(int state_fd, int layer_fd, int memory_fd, const struct fj_load_config *cfg,
                     fj_snapshot **out);
/* Full images are made as unlinked files in the directory
 * dir_fd (dup'd; a tmpfs that gives files 2 MiB pages, vmm/image_store.py)
 * from now on; -1: memfds again. -errno. */
int fj_snapshot_image_store(int dir_fd);
