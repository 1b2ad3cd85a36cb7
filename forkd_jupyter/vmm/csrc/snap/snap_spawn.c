/* Spawning children from snapshots (snapshot.h, snapshot_api.h): a child's
 * RAM maps its snapshot's image copy-on-write (a diff chain's layers placed
 * over it), its threads and VMM state are restored. */
#define _GNU_SOURCE
#include "snap/snapshot.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "api/vmm_api.h"

#include "api/snapshot_api.h" /* after vmm_api.h: it uses fj_sandbox */
#include "core/proc.h"
#include "file/file_stdio.h"
#include "fs/fs_memfs.h"
#include "fs/fs_view.h"
#include "kvm/kvm_cpu.h"
#include "snap/snap_fork.h"
#include "snap/snap_hint.h"
#include "snap/snap_procs.h"

int fj_snapshot_spawn(fj_snapshot *snap, int ctl_fd, fj_sandbox **out) {
    *out = NULL;
    int err = 0;
    for (struct snapshot *s = snap; s && err == 0; s = s->parent)
        err = fj_snapshot_wait(s, -1); /* never map a half-written image */
    if (err < 0)
        return err;
    struct sandbox *sb = sandbox_alloc(ctl_fd, &err);
    if (!sb)
        return err;
    sb->lineage_release = snapshot_release_lineage;
    if ((err = sb_procs_new(sb, snap->pid)) < 0)
        goto fail;
    snap_fork_attach(sb);
    memcpy(sb->exe_path, snap->exe_path, sizeof(sb->exe_path));
    if ((err = snapshot_restore_process(sb, snap)) < 0)
        goto fail;
    if (!(sb->view = fs_view_clone(snap->view))) {
        err = -ENOMEM;
        goto fail;
    }
    /* Every process's files in one clone: descriptions they shared stay shared. */
    struct fdt_clone_ctx ctx = {.view = sb->view, .procs = sb->procs};
    err = fdt_clone_with(&sb->fdt, &snap->fdt, &ctx);
    if (err == 0)
        err = snap_procs_spawn(sb, snap, &ctx);
    fdt_clone_ctx_done(&ctx);
    memfs_drop_clone_holds(fs_view_layer(sb->view));
    if (err < 0)
        goto fail;
    file_stdio_attach_ctl(&sb->fdt, sb->ctl_host_fd);
    sb->last_snap = snapshot_get(snap); /* a child's first diff builds on its origin */
    *out = sb;
    return 0;
fail:
    sandbox_free(sb);
    return err;
}
