/* The files family: permissions, ownership, times, truncation, umask and
 * filesystem statistics of paths and descriptors. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <linux/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "core/sandbox.h"
#include "core/shm.h"
#include "file/file_kinds.h"
#include "fs/fs_memfs.h"
#include "sys/sys.h"
#include "sys/sys_file.h"

/* ------------------------------------------------- permissions and times */

/* Applies fn to the layer node named by (dirfd, path, flags) or by fd f. */
static int64_t on_layer_node(struct sandbox *sb, int dirfd, uint64_t path_gva, int flags,
                             int (*fn)(struct sandbox *, struct memfs_node *, uint64_t),
                             uint64_t arg) {
    struct view_node n;
    struct file *f;
    int err = sysf_resolve_flags(sb, dirfd, path_gva, flags, &n, &f);
    if (err < 0)
        return err;
    if (f)
        return file_layer_fs(f) ? fn(sb, f->node, arg) : -EROFS;
    struct stat st;
    if (n.kind == VK_LAYER)
        err = fn(sb, n.node, arg);
    else
        err = sysf_node_stat(sb, &n, &st) < 0 ? -ENOENT : -EROFS;
    view_node_release(sb->view, &n);
    return err;
}

static int do_chmod(struct sandbox *sb, struct memfs_node *node, uint64_t mode) {
    return memfs_chmod(fs_view_layer(sb->view), node, (uint32_t)mode & 07777);
}

static int do_nothing(struct sandbox *sb, struct memfs_node *node, uint64_t arg) { return 0; }

static int do_utimens(struct sandbox *sb, struct memfs_node *node, uint64_t times_gva) {
    struct timespec ts[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
    if (times_gva && mm_copy_from(&sb->mm, ts, times_gva, sizeof(ts)) < 0)
        return -EFAULT;
    return memfs_utimens(fs_view_layer(sb->view), node, ts);
}

static int64_t sys_chmod(struct sandbox *sb, const uint64_t a[6]) {
    return on_layer_node(sb, AT_FDCWD, a[0], 0, do_chmod, a[1]);
}
static int64_t sys_fchmodat(struct sandbox *sb, const uint64_t a[6]) {
    return on_layer_node(sb, (int)a[0], a[1], 0, do_chmod, a[2]);
}

static int64_t sys_fchmod(struct sandbox *sb, const uint64_t a[6]) {
    struct file *f = fdt_get(&sb->fdt, (int)a[0]);
    if (!f)
        return -EBADF;
    return file_layer_fs(f) ? do_chmod(sb, f->node, a[1]) : -EROFS;
}

/* The sandbox user (uid and gid 1000, no other group) may give a file only
 * to itself: any other owner or group is EPERM, as for a user on Linux
 * (-1 keeps the current one). */
static int owner_allowed(uint64_t uid, uint64_t gid) {
    uint32_t u = (uint32_t)uid, g = (uint32_t)gid;
    return (u == 1000 || u == UINT32_MAX) && (g == 1000 || g == UINT32_MAX) ? 0 : -EPERM;
}

static int64_t sys_chown(struct sandbox *sb, const uint64_t a[6]) {
    int err = on_layer_node(sb, AT_FDCWD, a[0], 0, do_nothing, 0);
    return err < 0 ? err : owner_allowed(a[1], a[2]);
}
static int64_t sys_lchown(struct sandbox *sb, const uint64_t a[6]) {
    int err = on_layer_node(sb, AT_FDCWD, a[0], AT_SYMLINK_NOFOLLOW, do_nothing, 0);
    return err < 0 ? err : owner_allowed(a[1], a[2]);
}
static int64_t sys_fchownat(struct sandbox *sb, const uint64_t a[6]) {
    int err = on_layer_node(sb, (int)a[0], a[1], (int)a[4], do_nothing, 0);
    return err < 0 ? err : owner_allowed(a[2], a[3]);
}

static int64_t sys_fchown(struct sandbox *sb, const uint64_t a[6]) {
    struct file *f = fdt_get(&sb->fdt, (int)a[0]);
    return !f ? -EBADF : !file_layer_fs(f) ? -EROFS : owner_allowed(a[1], a[2]);
}

static int64_t sys_utimensat(struct sandbox *sb, const uint64_t a[6]) {
    if (!a[1]) { /* futimens */
        struct file *f = fdt_get(&sb->fdt, (int)a[0]);
        if (!f)
            return -EBADF;
        return file_layer_fs(f) ? do_utimens(sb, f->node, a[2]) : -EROFS;
    }
    return on_layer_node(sb, (int)a[0], a[1], (int)a[3], do_utimens, a[2]);
}

static int64_t sys_utimes(struct sandbox *sb, const uint64_t a[6]) {
    struct timeval tv[2];
    struct timespec ts[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
    if (a[1]) {
        if (mm_copy_from(&sb->mm, tv, a[1], sizeof(tv)) < 0)
            return -EFAULT;
        for (int i = 0; i < 2; i++)
            ts[i] = (struct timespec){tv[i].tv_sec, tv[i].tv_usec * 1000};
    }
    struct view_node n;
    struct file *f;
    int err = sysf_resolve_flags(sb, AT_FDCWD, a[0], 0, &n, &f);
    if (err < 0)
        return err;
    err = n.kind == VK_NONE    ? -ENOENT
          : n.kind != VK_LAYER ? -EROFS
                               : memfs_utimens(fs_view_layer(sb->view), n.node, ts);
    view_node_release(sb->view, &n);
    return err;
}

static int64_t sys_truncate(struct sandbox *sb, const uint64_t a[6]) {
    if ((int64_t)a[1] < 0)
        return -EINVAL;
    struct view_node n;
    int err = sysf_resolve_arg(sb, AT_FDCWD, a[0], true, &n);
    if (err < 0)
        return err;
    if (n.kind == VK_NONE)
        err = -ENOENT;
    else if (n.kind != VK_LAYER)
        err = -EROFS;
    else if (S_ISDIR(memfs_node_mode(n.node)))
        err = -EISDIR;
    else if ((err = view_layer_may(memfs_node_mode(n.node), W_OK)) == 0)
        err = sb_shm_truncate(sb, n.node, a[1]);
    view_node_release(sb->view, &n);
    return err;
}

static int64_t sys_umask(struct sandbox *sb, const uint64_t a[6]) {
    unsigned old = sb->view->umask;
    sb->view->umask = (unsigned)a[0] & 0777;
    return old;
}

/* The writable layer's size and use; for a read-only host file (its host
 * fd, or its host path: host_fd < 0) the sizes of the host filesystem it is
 * on (df, shutil.disk_usage), read-only. */
static int fill_statfs(struct sandbox *sb, bool layer_fs, int host_fd, const char *host_path,
                       uint64_t out) {
    struct statfs s;
    memset(&s, 0, sizeof(s));
    s.f_bsize = s.f_frsize = 4096;
    s.f_namelen = 255;
    struct statfs h;
    if (!layer_fs && ((host_fd >= 0 && fstatfs(host_fd, &h) == 0) ||
                      (host_fd < 0 && host_path && statfs(host_path, &h) == 0))) {
        s.f_type = h.f_type;
        s.f_bsize = h.f_bsize;
        s.f_frsize = h.f_frsize;
        s.f_blocks = h.f_blocks;
        s.f_bfree = h.f_bfree;
        s.f_bavail = h.f_bavail;
        s.f_files = h.f_files;
        s.f_ffree = h.f_ffree;
        s.f_namelen = h.f_namelen;
        s.f_flags = ST_RDONLY;
    } else if (layer_fs) {
        struct memfs *fs = fs_view_layer(sb->view);
        s.f_type = 0x01021994; /* TMPFS_MAGIC */
        s.f_blocks = memfs_byte_limit(fs) / 4096;
        uint64_t used = memfs_bytes_used(fs) / 4096;
        s.f_bfree = s.f_bavail = s.f_blocks > used ? s.f_blocks - used : 0;
        s.f_files = 1 << 20;
        s.f_ffree = s.f_files - memfs_node_count(fs);
    } else {
        s.f_type = 0xEF53;
        s.f_flags = ST_RDONLY;
    }
    return mm_copy_to(&sb->mm, out, &s, sizeof(s));
}

static int64_t sys_statfs(struct sandbox *sb, const uint64_t a[6]) {
    struct view_node n;
    int err = sysf_resolve_arg(sb, AT_FDCWD, a[0], true, &n);
    if (err < 0)
        return err;
    struct stat st;
    err = sysf_node_stat(sb, &n, &st);
    if (err == 0)
        err = fill_statfs(sb, n.kind == VK_LAYER, -1, n.kind == VK_HOST ? n.host : NULL, a[1]);
    view_node_release(sb->view, &n);
    return err;
}

static int64_t sys_fstatfs(struct sandbox *sb, const uint64_t a[6]) {
    struct file *f = fdt_get(&sb->fdt, (int)a[0]);
    return f ? fill_statfs(sb, file_layer_fs(f) != NULL, f->host_fd, NULL, a[1]) : -EBADF;
}

const struct sys_entry sys_file_attr_entries[] = {
    {90, "chmod", sys_chmod, SYS_FULL, "read-only outside the layer: EROFS"},
    {91, "fchmod", sys_fchmod, SYS_FULL, NULL},
    {92, "chown", sys_chown, SYS_PARTIAL,
     "ownership is always uid 1000 in the layer; another owner is EPERM"},
    {93, "fchown", sys_fchown, SYS_PARTIAL, NULL},
    {94, "lchown", sys_lchown, SYS_PARTIAL, NULL},
    {95, "umask", sys_umask, SYS_FULL, NULL},
    {76, "truncate", sys_truncate, SYS_FULL, NULL},
    {137, "statfs", sys_statfs, SYS_PARTIAL,
     "the layer reports its byte limit; a read-only file its host filesystem's sizes"},
    {138, "fstatfs", sys_fstatfs, SYS_PARTIAL, NULL},
    {235, "utimes", sys_utimes, SYS_FULL, NULL},
    {260, "fchownat", sys_fchownat, SYS_PARTIAL, NULL},
    {268, "fchmodat", sys_fchmodat, SYS_FULL, NULL},
    {280, "utimensat", sys_utimensat, SYS_FULL, NULL},
};
const size_t sys_file_attr_count = FJ_ARRAY_SIZE(sys_file_attr_entries);
