/* The files family: the working directory and names: mkdir, unlink, rename,
 * link, symlink, all within the writable layer. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <linux/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "file/file_kinds.h"
#include "fs/fs_memfs.h"
#include "core/sandbox.h"
#include "sys/sys.h"
#include "sys/sys_file.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE 1
#endif

/* ------------------------------------------------------------ directories */

static int64_t sys_getcwd(struct sandbox *sb, const uint64_t a[6])
{
    size_t len = strlen(sb->view->cwd) + 1;
    if (a[1] < len)
        return -ERANGE;
    return mm_copy_to(&sb->mm, a[0], sb->view->cwd, len) < 0 ? -EFAULT : (int64_t)len;
}

static int set_cwd(struct sandbox *sb, struct view_node *n)
{
    struct stat st;
    int err = n->kind == VK_NONE ? -ENOENT : view_stat(sb->view, n, &st);
    if (err == 0 && !S_ISDIR(st.st_mode))
        err = -ENOTDIR;
    if (err == 0 && n->kind == VK_LAYER)
        err = view_layer_may(st.st_mode, X_OK);
    if (err == 0)
        snprintf(sb->view->cwd, sizeof(sb->view->cwd), "%s", n->path);
    return err;
}

static int64_t sys_chdir(struct sandbox *sb, const uint64_t a[6])
{
    struct view_node n;
    int err = sysf_resolve_arg(sb, AT_FDCWD, a[0], true, &n);
    if (err < 0)
        return err;
    err = set_cwd(sb, &n);
    view_node_release(sb->view, &n);
    return err;
}

static int64_t sys_fchdir(struct sandbox *sb, const uint64_t a[6])
{
    struct file *f = fdt_get(&sb->fdt, (int)a[0]);
    if (!f)
        return -EBADF;
    if (!file_is_dir(f) || !f->path)
        return -ENOTDIR;
    snprintf(sb->view->cwd, sizeof(sb->view->cwd), "%s", f->path);
    return 0;
}

/* Where a new name would go: 0 with the parent in the layer, or -errno. */
static int new_name(struct view_node *n)
{
    if (n->kind != VK_NONE)
        return -EEXIST;
    if (n->parent_in_layer)
        return sysf_layer_dir_may_change(n->parent);
    return n->parent_visible ? -EROFS : -ENOENT;
}

static int64_t mkdir_at(struct sandbox *sb, int dirfd, uint64_t path_gva, uint32_t mode)
{
    char path[PATH_MAX];
    struct view_node n;
    int err = sysf_path(sb, path_gva, path);
    if (err < 0)
        return err;
    /* The new name may end in '/', and an existing file so named is EEXIST. */
    for (size_t len = strlen(path); len > 1 && path[len - 1] == '/'; len--)
        path[len - 1] = 0;
    if ((err = sysf_resolve_at(sb, dirfd, path, false, &n)) < 0)
        return err;
    if ((err = new_name(&n)) == 0)
        err = memfs_mknode(fs_view_layer(sb->view), n.parent, n.leaf, S_IFDIR | (mode & ~sb->view->umask & 07777),
                           NULL, NULL);
    view_node_release(sb->view, &n);
    return err;
}

/* mknod: a regular file, a FIFO or a socket's name in the layer; devices
 * need a privilege the sandbox user does not have (EPERM). */
static int64_t mknod_at(struct sandbox *sb, int dirfd, uint64_t path_gva, uint32_t mode)
{
    uint32_t type = mode & S_IFMT;
    if (type == S_IFCHR || type == S_IFBLK)
        return -EPERM;
    if (type == 0)
        type = S_IFREG;
    if (type != S_IFREG && type != S_IFIFO && type != S_IFSOCK)
        return -EINVAL;
    struct view_node n;
    int err = sysf_resolve_arg(sb, dirfd, path_gva, false, &n);
    if (err < 0)
        return err;
    if ((err = new_name(&n)) == 0)
        err = memfs_mknode(fs_view_layer(sb->view), n.parent, n.leaf, type | (mode & ~sb->view->umask & 07777),
                           NULL, NULL);
    view_node_release(sb->view, &n);
    return err;
}

static int64_t sys_mknod(struct sandbox *sb, const uint64_t a[6]) { return mknod_at(sb, AT_FDCWD, a[0], (uint32_t)a[1]); }
static int64_t sys_mknodat(struct sandbox *sb, const uint64_t a[6]) { return mknod_at(sb, (int)a[0], a[1], (uint32_t)a[2]); }

static int64_t sys_mkdir(struct sandbox *sb, const uint64_t a[6]) { return mkdir_at(sb, AT_FDCWD, a[0], (uint32_t)a[1]); }
static int64_t sys_mkdirat(struct sandbox *sb, const uint64_t a[6]) { return mkdir_at(sb, (int)a[0], a[1], (uint32_t)a[2]); }

static int64_t unlink_at(struct sandbox *sb, int dirfd, uint64_t path_gva, int flags)
{
    if (flags & ~AT_REMOVEDIR)
        return -EINVAL;
    struct view_node n;
    int err = sysf_resolve_arg(sb, dirfd, path_gva, false, &n);
    if (err < 0)
        return err;
    if (n.kind == VK_NONE)
        err = -ENOENT;
    else if (n.dots) /* "." or "..": no entry to remove */
        err = !(flags & AT_REMOVEDIR) ? -EISDIR : n.dots == 1 ? -EINVAL : -ENOTEMPTY;
    else if (n.kind != VK_LAYER)
        err = -EROFS;
    else if (sysf_is_mount_point(n.path))
        err = -EBUSY;
    else if ((err = sysf_layer_dir_may_change(n.parent)) == 0)
        err = memfs_unlink(fs_view_layer(sb->view), n.parent, n.leaf, (flags & AT_REMOVEDIR) != 0);
    view_node_release(sb->view, &n);
    return err;
}

static int64_t sys_unlink(struct sandbox *sb, const uint64_t a[6]) { return unlink_at(sb, AT_FDCWD, a[0], 0); }
static int64_t sys_rmdir(struct sandbox *sb, const uint64_t a[6]) { return unlink_at(sb, AT_FDCWD, a[0], AT_REMOVEDIR); }
static int64_t sys_unlinkat(struct sandbox *sb, const uint64_t a[6]) { return unlink_at(sb, (int)a[0], a[1], (int)a[2]); }

/* Resolves the two paths of rename/link; on success both nodes need release. */
static int resolve_pair(struct sandbox *sb, int olddir, uint64_t old_gva, bool follow_old, int newdir,
                        uint64_t new_gva, struct view_node *o, struct view_node *n)
{
    int err = sysf_resolve_arg(sb, olddir, old_gva, follow_old, o);
    if (err < 0)
        return err;
    if ((err = sysf_resolve_arg(sb, newdir, new_gva, false, n)) < 0)
        view_node_release(sb->view, o);
    return err;
}

static int64_t rename_at(struct sandbox *sb, int olddir, uint64_t old_gva, int newdir, uint64_t new_gva, unsigned flags)
{
    struct view_node o, n;
    int err = resolve_pair(sb, olddir, old_gva, false, newdir, new_gva, &o, &n);
    if (err < 0)
        return err;
    if (o.kind == VK_NONE)
        err = -ENOENT;
    else if (o.dots || n.dots)
        err = -EBUSY;
    else if (o.kind != VK_LAYER || !(n.kind == VK_LAYER || (n.kind == VK_NONE && n.parent_in_layer)))
        err = n.kind == VK_NONE && !n.parent_visible && !n.parent_in_layer ? -ENOENT : -EROFS;
    else if (sysf_is_mount_point(o.path) || sysf_is_mount_point(n.path))
        err = -EBUSY;
    else if (n.trailing_slash && !S_ISDIR(memfs_node_mode(o.node)))
        err = -ENOTDIR;
    else if ((err = sysf_layer_dir_may_change(o.parent)) == 0 &&
             (err = sysf_layer_dir_may_change(n.parent)) == 0)
        err = memfs_rename(fs_view_layer(sb->view), o.parent, o.leaf, n.parent, n.leaf, flags);
    view_node_release(sb->view, &o);
    view_node_release(sb->view, &n);
    return err;
}

static int64_t sys_rename(struct sandbox *sb, const uint64_t a[6]) { return rename_at(sb, AT_FDCWD, a[0], AT_FDCWD, a[1], 0); }
static int64_t sys_renameat(struct sandbox *sb, const uint64_t a[6]) { return rename_at(sb, (int)a[0], a[1], (int)a[2], a[3], 0); }
static int64_t sys_renameat2(struct sandbox *sb, const uint64_t a[6])
{
    return rename_at(sb, (int)a[0], a[1], (int)a[2], a[3], (unsigned)a[4]);
}

static int64_t link_at(struct sandbox *sb, int olddir, uint64_t old_gva, int newdir, uint64_t new_gva, int flags)
{
    if (flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH))
        return -EINVAL;
    struct view_node o, n;
    int err = resolve_pair(sb, olddir, old_gva, flags & AT_SYMLINK_FOLLOW, newdir, new_gva, &o, &n);
    if (err < 0)
        return err;
    if (o.kind == VK_NONE)
        err = -ENOENT;
    else if ((err = new_name(&n)) == 0)
        err = o.kind == VK_LAYER ? memfs_link(fs_view_layer(sb->view), o.node, n.parent, n.leaf) : -EXDEV;
    view_node_release(sb->view, &o);
    view_node_release(sb->view, &n);
    return err;
}

static int64_t sys_link(struct sandbox *sb, const uint64_t a[6]) { return link_at(sb, AT_FDCWD, a[0], AT_FDCWD, a[1], 0); }
static int64_t sys_linkat(struct sandbox *sb, const uint64_t a[6]) { return link_at(sb, (int)a[0], a[1], (int)a[2], a[3], (int)a[4]); }

static int64_t symlink_at(struct sandbox *sb, uint64_t target_gva, int dirfd, uint64_t path_gva)
{
    char target[PATH_MAX], path[PATH_MAX];
    struct view_node n;
    int err = sysf_path(sb, target_gva, target);
    if (err == 0)
        err = sysf_path(sb, path_gva, path);
    if (err < 0)
        return err;
    if (!target[0])
        return -ENOENT;
    if ((err = sysf_resolve_at(sb, dirfd, path, false, &n)) < 0)
        return err;
    if ((err = new_name(&n)) == 0)
        err = memfs_mknode(fs_view_layer(sb->view), n.parent, n.leaf, S_IFLNK | 0777, target, NULL);
    view_node_release(sb->view, &n);
    return err;
}

static int64_t sys_symlink(struct sandbox *sb, const uint64_t a[6]) { return symlink_at(sb, a[0], AT_FDCWD, a[1]); }
static int64_t sys_symlinkat(struct sandbox *sb, const uint64_t a[6]) { return symlink_at(sb, a[0], (int)a[1], a[2]); }

const struct sys_entry sys_file_names_entries[] = {
    {79, "getcwd", sys_getcwd, SYS_FULL, NULL},
    {80, "chdir", sys_chdir, SYS_FULL, NULL},
    {81, "fchdir", sys_fchdir, SYS_FULL, NULL},
    {82, "rename", sys_rename, SYS_FULL, "within the writable layer"},
    {83, "mkdir", sys_mkdir, SYS_FULL, "within the writable layer"},
    {133, "mknod", sys_mknod, SYS_PARTIAL, "as mknodat"},
    {84, "rmdir", sys_rmdir, SYS_FULL, NULL},
    {86, "link", sys_link, SYS_FULL, "within the writable layer"},
    {87, "unlink", sys_unlink, SYS_FULL, NULL},
    {88, "symlink", sys_symlink, SYS_FULL, "links are followed through the view"},
    {258, "mkdirat", sys_mkdirat, SYS_FULL, NULL},
    {259, "mknodat", sys_mknodat, SYS_PARTIAL, "regular files, FIFOs and sockets' names in the writable layer; devices EPERM"},
    {263, "unlinkat", sys_unlinkat, SYS_FULL, NULL},
    {264, "renameat", sys_renameat, SYS_FULL, NULL},
    {265, "linkat", sys_linkat, SYS_FULL, NULL},
    {266, "symlinkat", sys_symlinkat, SYS_FULL, NULL},
    {316, "renameat2", sys_renameat2, SYS_FULL, "NOREPLACE and EXCHANGE"},
};
const size_t sys_file_names_count = FJ_ARRAY_SIZE(sys_file_names_entries);
