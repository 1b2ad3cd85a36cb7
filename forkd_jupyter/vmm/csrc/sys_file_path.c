/* The files family, path-based calls: open, stat, access, directories,
 * links, renames, permissions, times. Every path is resolved through the
 * view (view.c); only the writable layer can change. */
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

#include "file_kinds.h"
#include "fs_memfs.h"
#include "sandbox.h"
#include "sys_file.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE 1
#endif

int sysf_path(struct sandbox *sb, uint64_t gva, char *out)
{
    if (!gva)
        return -EFAULT;
    int r = mm_copy_string(&sb->mm, out, gva, PATH_MAX);
    return r < 0 ? r : 0;
}

/* Directory relative paths start from: the cwd, or dirfd's path. */
static int base_of(struct sandbox *sb, int dirfd, const char *path, const char **base)
{
    if (path[0] == '/' || dirfd == AT_FDCWD) {
        *base = sb->view->cwd;
        return 0;
    }
    struct file *f = fdt_get(&sb->fdt, dirfd);
    if (!f)
        return -EBADF;
    if (!file_is_dir(f) || !f->path)
        return -ENOTDIR;
    *base = f->path;
    return 0;
}

int sysf_resolve_at(struct sandbox *sb, int dirfd, const char *path, bool follow, struct view_node *n)
{
    const char *base;
    int err = base_of(sb, dirfd, path, &base);
    if (err < 0)
        return err;
    err = view_resolve(sb->view, base, path, follow, n);
    if (err == 0 && n->kind == VK_PROCLINK && !strncmp(n->path, "/proc/self/fd/", 14) &&
        !fdt_get(&sb->fdt, atoi(n->path + 14)))
        err = -ENOENT; /* /proc/self/fd lists open descriptors only */
    if (err < 0)
        view_node_release(sb->view, n);
    return err;
}

/* Copies a path argument and resolves it (the common first step). */
static int resolve_arg(struct sandbox *sb, int dirfd, uint64_t gva, bool follow, struct view_node *n)
{
    char path[PATH_MAX];
    int err = sysf_path(sb, gva, path);
    return err < 0 ? err : sysf_resolve_at(sb, dirfd, path, follow, n);
}

static bool is_mount_point(const char *path) { return !strcmp(path, "/tmp") || !strcmp(path, "/sandbox"); }

/* ----------------------------------------------------------------- open */

static int64_t open_resolved(struct sandbox *sb, struct view_node *n, int flags, uint32_t mode)
{
    struct memfs *fs = fs_view_layer(sb->view);
    bool writable = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
    struct file *f = NULL;
    switch (n->kind) {
    case VK_NONE:
        if (!(flags & O_CREAT))
            return -ENOENT;
        if (n->trailing_slash)
            return -EISDIR; /* only a directory can be named with a trailing slash */
        if (n->parent_in_layer) {
            struct memfs_node *node;
            int err = memfs_mknode(fs, n->parent, n->leaf, S_IFREG | (mode & ~sb->view->umask & 07777), NULL, &node);
            if (err < 0)
                return err;
            f = file_layer_new(fs, node, flags, n->path);
            break;
        }
        return n->parent_visible ? -EROFS : -ENOENT;
    case VK_LAYER: {
        if ((flags & O_CREAT) && (flags & O_EXCL))
            return -EEXIST;
        if (n->is_link)
            return (flags & O_PATH) ? -EOPNOTSUPP : -ELOOP;
        bool dir = S_ISDIR(memfs_node_mode(n->node));
        if (dir && (writable || (flags & O_CREAT)))
            return -EISDIR;
        if (!dir && (flags & O_DIRECTORY))
            return -ENOTDIR;
        if (!dir && (flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY) {
            int err = memfs_truncate(fs, n->node, 0);
            if (err < 0)
                return err;
        }
        f = file_layer_new(fs, n->node, flags, n->path);
        n->node = NULL; /* the file owns the reference now */
        break;
    }
    case VK_HOST: {
        if ((flags & O_CREAT) && (flags & O_EXCL))
            return -EEXIST;
        if (n->is_link)
            return -ELOOP;
        struct stat st;
        if (stat(n->host, &st) < 0)
            return -ENOENT;
        bool dir = S_ISDIR(st.st_mode);
        if (writable || (dir && (flags & O_CREAT)))
            return dir ? -EISDIR : -EROFS;
        if (!dir && (flags & O_DIRECTORY))
            return -ENOTDIR;
        int fd = view_open_host(n, &st);
        if (fd < 0)
            return fd;
        f = file_host_new(fd, flags, n->path, dir);
        break;
    }
    case VK_VDIR:
        if ((flags & O_CREAT) && (flags & O_EXCL))
            return -EEXIST;
        if (writable || (flags & O_CREAT))
            return -EISDIR;
        f = file_vdir_new(flags, n->path);
        break;
    case VK_DEV:
        if (flags & O_DIRECTORY)
            return -ENOTDIR;
        f = file_dev_new(n->leaf, flags, n->path);
        break;
    default:
        return -ENOENT;
    }
    if (!f)
        return -ENOMEM;
    f->flags = flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC);
    int fd = fdt_install(&sb->fdt, f, 0, flags & O_CLOEXEC);
    if (fd < 0)
        file_put(f);
    return fd;
}

int64_t sysf_openat(struct sandbox *sb, int dirfd, uint64_t path_gva, int flags, uint32_t mode)
{
    char path[PATH_MAX];
    int err = sysf_path(sb, path_gva, path);
    if (err < 0)
        return err;
    if (flags & O_PATH) /* Linux ignores every other flag with O_PATH */
        flags &= O_PATH | O_CLOEXEC | O_DIRECTORY | O_NOFOLLOW;
    bool follow = !(flags & O_NOFOLLOW) && !((flags & O_CREAT) && (flags & O_EXCL));
    struct view_node n;
    if ((err = sysf_resolve_at(sb, dirfd, path, follow, &n)) < 0)
        return err;
    int64_t r = (flags & O_TMPFILE) == O_TMPFILE ? sysf_open_tmpfile(sb, &n, flags, mode)
                                                 : open_resolved(sb, &n, flags, mode);
    view_node_release(sb->view, &n);
    return r;
}

static int64_t sys_open(struct sandbox *sb, const uint64_t a[6]) { return sysf_openat(sb, AT_FDCWD, a[0], (int)a[1], (uint32_t)a[2]); }
static int64_t sys_openat(struct sandbox *sb, const uint64_t a[6]) { return sysf_openat(sb, (int)a[0], a[1], (int)a[2], (uint32_t)a[3]); }
static int64_t sys_creat(struct sandbox *sb, const uint64_t a[6])
{
    return sysf_openat(sb, AT_FDCWD, a[0], O_CREAT | O_WRONLY | O_TRUNC, (uint32_t)a[1]);
}

/* ----------------------------------------------------------------- stat */

/* Resolves (dirfd, path, flags) for the *at calls that accept
 * AT_EMPTY_PATH/AT_SYMLINK_NOFOLLOW; *fd_file is set instead for an empty path. */
static int resolve_flags(struct sandbox *sb, int dirfd, uint64_t path_gva, int flags, struct view_node *n,
                         struct file **fd_file)
{
    char path[PATH_MAX];
    *fd_file = NULL;
    int err = path_gva ? sysf_path(sb, path_gva, path) : -EFAULT;
    if (err == -EFAULT && !path_gva && (flags & AT_EMPTY_PATH))
        path[0] = 0, err = 0;
    if (err < 0)
        return err;
    if (!path[0]) {
        if (!(flags & AT_EMPTY_PATH))
            return -ENOENT;
        if (dirfd == AT_FDCWD) {
            snprintf(path, sizeof(path), ".");
        } else {
            *fd_file = fdt_get(&sb->fdt, dirfd);
            return *fd_file ? 0 : -EBADF;
        }
    }
    return sysf_resolve_at(sb, dirfd, path, !(flags & AT_SYMLINK_NOFOLLOW), n);
}

int sysf_stat_at(struct sandbox *sb, int dirfd, uint64_t path_gva, int flags, struct stat *st)
{
    struct view_node n;
    struct file *f;
    int err = resolve_flags(sb, dirfd, path_gva, flags, &n, &f);
    if (err < 0)
        return err;
    if (f)
        return f->ops->stat(sb, f, st);
    err = n.kind == VK_NONE ? -ENOENT : view_stat(sb->view, &n, st);
    view_node_release(sb->view, &n);
    return err;
}

static int64_t put_stat(struct sandbox *sb, int err, const struct stat *st, uint64_t out)
{
    return err < 0 ? err : mm_copy_to(&sb->mm, out, st, sizeof(*st));
}

static int64_t sys_stat(struct sandbox *sb, const uint64_t a[6])
{
    struct stat st;
    return put_stat(sb, sysf_stat_at(sb, AT_FDCWD, a[0], 0, &st), &st, a[1]);
}

static int64_t sys_lstat(struct sandbox *sb, const uint64_t a[6])
{
    struct stat st;
    return put_stat(sb, sysf_stat_at(sb, AT_FDCWD, a[0], AT_SYMLINK_NOFOLLOW, &st), &st, a[1]);
}

static int64_t sys_newfstatat(struct sandbox *sb, const uint64_t a[6])
{
    struct stat st;
    return put_stat(sb, sysf_stat_at(sb, (int)a[0], a[1], (int)a[3], &st), &st, a[2]);
}

static int64_t sys_statx(struct sandbox *sb, const uint64_t a[6])
{
    struct stat st;
    int err = sysf_stat_at(sb, (int)a[0], a[1], (int)a[2], &st);
    if (err < 0)
        return err;
    struct statx x;
    memset(&x, 0, sizeof(x));
    x.stx_mask = STATX_BASIC_STATS;
    x.stx_blksize = (uint32_t)st.st_blksize;
    x.stx_nlink = (uint32_t)st.st_nlink;
    x.stx_uid = st.st_uid;
    x.stx_gid = st.st_gid;
    x.stx_mode = (uint16_t)st.st_mode;
    x.stx_ino = st.st_ino;
    x.stx_size = (uint64_t)st.st_size;
    x.stx_blocks = (uint64_t)st.st_blocks;
    x.stx_atime = (struct statx_timestamp){st.st_atim.tv_sec, (uint32_t)st.st_atim.tv_nsec, 0};
    x.stx_mtime = (struct statx_timestamp){st.st_mtim.tv_sec, (uint32_t)st.st_mtim.tv_nsec, 0};
    x.stx_ctime = (struct statx_timestamp){st.st_ctim.tv_sec, (uint32_t)st.st_ctim.tv_nsec, 0};
    x.stx_rdev_major = major(st.st_rdev);
    x.stx_rdev_minor = minor(st.st_rdev);
    x.stx_dev_major = major(st.st_dev);
    x.stx_dev_minor = minor(st.st_dev);
    return mm_copy_to(&sb->mm, a[4], &x, sizeof(x));
}

static int64_t access_at(struct sandbox *sb, int dirfd, uint64_t path_gva, int mode, int flags)
{
    if (mode & ~(R_OK | W_OK | X_OK))
        return -EINVAL;
    struct view_node n;
    struct file *f;
    int err = resolve_flags(sb, dirfd, path_gva, flags & (AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH), &n, &f);
    if (err < 0)
        return err;
    struct stat st;
    bool in_layer = f ? file_layer_fs(f) != NULL : n.kind == VK_LAYER;
    err = f ? f->ops->stat(sb, f, &st) : n.kind == VK_NONE ? -ENOENT : view_stat(sb->view, &n, &st);
    if (!f)
        view_node_release(sb->view, &n);
    if (err < 0)
        return err;
    if ((mode & W_OK) && !in_layer && !S_ISCHR(st.st_mode))
        return -EROFS;
    if ((mode & X_OK) && !(st.st_mode & 0111))
        return -EACCES;
    if ((mode & R_OK) && !(st.st_mode & 0444))
        return -EACCES;
    return 0;
}

static int64_t sys_access(struct sandbox *sb, const uint64_t a[6]) { return access_at(sb, AT_FDCWD, a[0], (int)a[1], 0); }
static int64_t sys_faccessat(struct sandbox *sb, const uint64_t a[6]) { return access_at(sb, (int)a[0], a[1], (int)a[2], 0); }
static int64_t sys_faccessat2(struct sandbox *sb, const uint64_t a[6])
{
    return access_at(sb, (int)a[0], a[1], (int)a[2], (int)a[3]);
}

/* A host symlink's target is shown only when it resolves (through the view)
 * to something the view shows: a link under a root that points outside every
 * root (Debian's /usr/lib/python3.X/sitecustomize.py -> /etc/...) would
 * otherwise name a host path the guest cannot see. */
static bool host_link_stays_in_view(struct sandbox *sb, const char *link_path)
{
    struct view_node t;
    if (view_resolve(sb->view, "/", link_path, true, &t) < 0)
        return false;
    bool visible = t.kind != VK_NONE;
    view_node_release(sb->view, &t);
    return visible;
}

static int64_t readlink_at(struct sandbox *sb, int dirfd, uint64_t path_gva, uint64_t buf, uint64_t size)
{
    if ((int64_t)size <= 0)
        return -EINVAL;
    char path[PATH_MAX], target[PATH_MAX];
    int err = sysf_path(sb, path_gva, path);
    struct view_node n;
    if (err < 0 || (err = sysf_resolve_at(sb, dirfd, path, false, &n)) < 0)
        return err;
    int64_t len = -EINVAL;
    if (n.kind == VK_NONE)
        len = -ENOENT;
    else if (n.is_link && n.kind == VK_LAYER)
        len = memfs_readlink(fs_view_layer(sb->view), n.node, target, sizeof(target));
    else if (n.is_link && n.kind == VK_HOST && host_link_stays_in_view(sb, n.path))
        len = readlink(n.host, target, sizeof(target)) < 0 ? -errno : (int64_t)readlink(n.host, target, sizeof(target));
    else if (n.is_link && n.kind == VK_HOST)
        len = -ENOENT; /* its target is outside the view: reveal nothing of it */
    else if (n.kind == VK_PROCLINK) {
        if (!strcmp(n.path, "/proc/self/exe"))
            len = snprintf(target, sizeof(target), "%s", sb->exe_path);
        else {
            struct file *f = fdt_get(&sb->fdt, atoi(n.path + strlen("/proc/self/fd/")));
            len = !f ? -ENOENT : snprintf(target, sizeof(target), "%s", f->path ? f->path : "anon_inode:[fd]");
        }
    }
    view_node_release(sb->view, &n);
    if (len < 0)
        return len;
    len = FJ_MIN((uint64_t)len, size);
    return mm_copy_to(&sb->mm, buf, target, (uint64_t)len) < 0 ? -EFAULT : len;
}

static int64_t sys_readlink(struct sandbox *sb, const uint64_t a[6]) { return readlink_at(sb, AT_FDCWD, a[0], a[1], a[2]); }
static int64_t sys_readlinkat(struct sandbox *sb, const uint64_t a[6]) { return readlink_at(sb, (int)a[0], a[1], a[2], a[3]); }

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
    if (err == 0)
        snprintf(sb->view->cwd, sizeof(sb->view->cwd), "%s", n->path);
    return err;
}

static int64_t sys_chdir(struct sandbox *sb, const uint64_t a[6])
{
    struct view_node n;
    int err = resolve_arg(sb, AT_FDCWD, a[0], true, &n);
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
        return 0;
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

static int64_t sys_mkdir(struct sandbox *sb, const uint64_t a[6]) { return mkdir_at(sb, AT_FDCWD, a[0], (uint32_t)a[1]); }
static int64_t sys_mkdirat(struct sandbox *sb, const uint64_t a[6]) { return mkdir_at(sb, (int)a[0], a[1], (uint32_t)a[2]); }

static int64_t unlink_at(struct sandbox *sb, int dirfd, uint64_t path_gva, int flags)
{
    if (flags & ~AT_REMOVEDIR)
        return -EINVAL;
    struct view_node n;
    int err = resolve_arg(sb, dirfd, path_gva, false, &n);
    if (err < 0)
        return err;
    if (n.kind == VK_NONE)
        err = -ENOENT;
    else if (n.dots) /* "." or "..": no entry to remove */
        err = !(flags & AT_REMOVEDIR) ? -EISDIR : n.dots == 1 ? -EINVAL : -ENOTEMPTY;
    else if (n.kind != VK_LAYER)
        err = -EROFS;
    else if (is_mount_point(n.path))
        err = -EBUSY;
    else
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
    int err = resolve_arg(sb, olddir, old_gva, follow_old, o);
    if (err < 0)
        return err;
    if ((err = resolve_arg(sb, newdir, new_gva, false, n)) < 0)
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
    else if (is_mount_point(o.path) || is_mount_point(n.path))
        err = -EBUSY;
    else if (n.trailing_slash && !S_ISDIR(memfs_node_mode(o.node)))
        err = -ENOTDIR;
    else
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

/* ------------------------------------------------- permissions and times */

/* Applies fn to the layer node named by (dirfd, path, flags) or by fd f. */
static int64_t on_layer_node(struct sandbox *sb, int dirfd, uint64_t path_gva, int flags,
                             int (*fn)(struct sandbox *, struct memfs_node *, uint64_t), uint64_t arg)
{
    struct view_node n;
    struct file *f;
    int err = resolve_flags(sb, dirfd, path_gva, flags, &n, &f);
    if (err < 0)
        return err;
    if (f)
        return file_layer_fs(f) ? fn(sb, f->node, arg) : -EROFS;
    err = n.kind == VK_NONE ? -ENOENT : n.kind != VK_LAYER ? -EROFS : fn(sb, n.node, arg);
    view_node_release(sb->view, &n);
    return err;
}

static int do_chmod(struct sandbox *sb, struct memfs_node *node, uint64_t mode)
{
    return memfs_chmod(fs_view_layer(sb->view), node, (uint32_t)mode & 07777);
}

static int do_nothing(struct sandbox *sb, struct memfs_node *node, uint64_t arg) { return 0; }

static int do_utimens(struct sandbox *sb, struct memfs_node *node, uint64_t times_gva)
{
    struct timespec ts[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
    if (times_gva && mm_copy_from(&sb->mm, ts, times_gva, sizeof(ts)) < 0)
        return -EFAULT;
    return memfs_utimens(fs_view_layer(sb->view), node, ts);
}

static int64_t sys_chmod(struct sandbox *sb, const uint64_t a[6]) { return on_layer_node(sb, AT_FDCWD, a[0], 0, do_chmod, a[1]); }
static int64_t sys_fchmodat(struct sandbox *sb, const uint64_t a[6]) { return on_layer_node(sb, (int)a[0], a[1], 0, do_chmod, a[2]); }

static int64_t sys_fchmod(struct sandbox *sb, const uint64_t a[6])
{
    struct file *f = fdt_get(&sb->fdt, (int)a[0]);
    if (!f)
        return -EBADF;
    return file_layer_fs(f) ? do_chmod(sb, f->node, a[1]) : -EROFS;
}

static int64_t sys_chown(struct sandbox *sb, const uint64_t a[6]) { return on_layer_node(sb, AT_FDCWD, a[0], 0, do_nothing, 0); }
static int64_t sys_lchown(struct sandbox *sb, const uint64_t a[6])
{
    return on_layer_node(sb, AT_FDCWD, a[0], AT_SYMLINK_NOFOLLOW, do_nothing, 0);
}
static int64_t sys_fchownat(struct sandbox *sb, const uint64_t a[6])
{
    return on_layer_node(sb, (int)a[0], a[1], (int)a[4], do_nothing, 0);
}

static int64_t sys_fchown(struct sandbox *sb, const uint64_t a[6])
{
    struct file *f = fdt_get(&sb->fdt, (int)a[0]);
    return !f ? -EBADF : file_layer_fs(f) ? 0 : -EROFS;
}

static int64_t sys_utimensat(struct sandbox *sb, const uint64_t a[6])
{
    if (!a[1]) { /* futimens */
        struct file *f = fdt_get(&sb->fdt, (int)a[0]);
        if (!f)
            return -EBADF;
        return file_layer_fs(f) ? do_utimens(sb, f->node, a[2]) : -EROFS;
    }
    return on_layer_node(sb, (int)a[0], a[1], (int)a[3], do_utimens, a[2]);
}

static int64_t sys_utimes(struct sandbox *sb, const uint64_t a[6])
{
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
    int err = resolve_flags(sb, AT_FDCWD, a[0], 0, &n, &f);
    if (err < 0)
        return err;
    err = n.kind == VK_NONE ? -ENOENT : n.kind != VK_LAYER ? -EROFS
                                      : memfs_utimens(fs_view_layer(sb->view), n.node, ts);
    view_node_release(sb->view, &n);
    return err;
}

static int64_t sys_truncate(struct sandbox *sb, const uint64_t a[6])
{
    if ((int64_t)a[1] < 0)
        return -EINVAL;
    struct view_node n;
    int err = resolve_arg(sb, AT_FDCWD, a[0], true, &n);
    if (err < 0)
        return err;
    if (n.kind == VK_NONE)
        err = -ENOENT;
    else if (n.kind != VK_LAYER)
        err = -EROFS;
    else if (S_ISDIR(memfs_node_mode(n.node)))
        err = -EISDIR;
    else
        err = memfs_truncate(fs_view_layer(sb->view), n.node, a[1]);
    view_node_release(sb->view, &n);
    return err;
}

static int64_t sys_umask(struct sandbox *sb, const uint64_t a[6])
{
    unsigned old = sb->view->umask;
    sb->view->umask = (unsigned)a[0] & 0777;
    return old;
}

static int fill_statfs(struct sandbox *sb, bool layer_fs, uint64_t out)
{
    struct statfs s;
    memset(&s, 0, sizeof(s));
    s.f_bsize = s.f_frsize = 4096;
    s.f_namelen = 255;
    if (layer_fs) {
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

static int64_t sys_statfs(struct sandbox *sb, const uint64_t a[6])
{
    struct view_node n;
    int err = resolve_arg(sb, AT_FDCWD, a[0], true, &n);
    if (err < 0)
        return err;
    err = n.kind == VK_NONE ? -ENOENT : fill_statfs(sb, n.kind == VK_LAYER, a[1]);
    view_node_release(sb->view, &n);
    return err;
}

static int64_t sys_fstatfs(struct sandbox *sb, const uint64_t a[6])
{
    struct file *f = fdt_get(&sb->fdt, (int)a[0]);
    return f ? fill_statfs(sb, file_layer_fs(f) != NULL, a[1]) : -EBADF;
}

const struct sys_entry sys_file_path_entries[] = {
    {2, "open", sys_open, SYS_FULL, "through the filesystem view"},
    {4, "stat", sys_stat, SYS_FULL, NULL},
    {6, "lstat", sys_lstat, SYS_FULL, NULL},
    {21, "access", sys_access, SYS_FULL, "W_OK outside the layer: EROFS"},
    {79, "getcwd", sys_getcwd, SYS_FULL, NULL},
    {80, "chdir", sys_chdir, SYS_FULL, NULL},
    {81, "fchdir", sys_fchdir, SYS_FULL, NULL},
    {82, "rename", sys_rename, SYS_FULL, "within the writable layer"},
    {83, "mkdir", sys_mkdir, SYS_FULL, "within the writable layer"},
    {84, "rmdir", sys_rmdir, SYS_FULL, NULL},
    {85, "creat", sys_creat, SYS_FULL, NULL},
    {86, "link", sys_link, SYS_FULL, "within the writable layer"},
    {87, "unlink", sys_unlink, SYS_FULL, NULL},
    {88, "symlink", sys_symlink, SYS_FULL, "links are followed through the view"},
    {89, "readlink", sys_readlink, SYS_FULL, NULL},
    {90, "chmod", sys_chmod, SYS_FULL, "read-only outside the layer: EROFS"},
    {91, "fchmod", sys_fchmod, SYS_FULL, NULL},
    {92, "chown", sys_chown, SYS_STUB, "ownership is always uid 1000 in the layer"},
    {93, "fchown", sys_fchown, SYS_STUB, NULL},
    {94, "lchown", sys_lchown, SYS_STUB, NULL},
    {95, "umask", sys_umask, SYS_FULL, NULL},
    {76, "truncate", sys_truncate, SYS_FULL, NULL},
    {137, "statfs", sys_statfs, SYS_PARTIAL, "the layer reports its byte limit"},
    {138, "fstatfs", sys_fstatfs, SYS_PARTIAL, NULL},
    {235, "utimes", sys_utimes, SYS_FULL, NULL},
    {257, "openat", sys_openat, SYS_FULL, "through the filesystem view"},
    {258, "mkdirat", sys_mkdirat, SYS_FULL, NULL},
    {260, "fchownat", sys_fchownat, SYS_STUB, NULL},
    {262, "newfstatat", sys_newfstatat, SYS_FULL, NULL},
    {263, "unlinkat", sys_unlinkat, SYS_FULL, NULL},
    {264, "renameat", sys_renameat, SYS_FULL, NULL},
    {265, "linkat", sys_linkat, SYS_FULL, NULL},
    {266, "symlinkat", sys_symlinkat, SYS_FULL, NULL},
    {267, "readlinkat", sys_readlinkat, SYS_FULL, NULL},
    {268, "fchmodat", sys_fchmodat, SYS_FULL, NULL},
    {269, "faccessat", sys_faccessat, SYS_FULL, NULL},
    {280, "utimensat", sys_utimensat, SYS_FULL, NULL},
    {316, "renameat2", sys_renameat2, SYS_FULL, "NOREPLACE and EXCHANGE"},
    {332, "statx", sys_statx, SYS_PARTIAL, "basic fields"},
    {439, "faccessat2", sys_faccessat2, SYS_FULL, NULL},
};
const size_t sys_file_path_count = FJ_ARRAY_SIZE(sys_file_path_entries);
