/* The files family, path-based calls: resolving a guest path, open, stat,
 * access, readlink (directories and names: sys_file_names.c; permissions,
 * times, sizes: sys_file_attr.c). Every path is resolved through the view
 * (fs/view.c); only the writable layer can change. */
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
#include "file/pty.h"
#include "fs/fs_memfs.h"
#include "sys/sys.h"
#include "sys/sys_file.h"

int sysf_path(struct sandbox *sb, uint64_t gva, char *out) {
    if (!gva)
        return -EFAULT;
    int r = mm_copy_string(&sb->mm, out, gva, PATH_MAX);
    return r < 0 ? r : 0;
}

/* Directory relative paths start from: the cwd, or dirfd's path. */
static int base_of(struct sandbox *sb, int dirfd, const char *path, const char **base) {
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

/* The open file a /proc/self/fd/N node names, or NULL. */
static struct file *fd_link_file(struct sandbox *sb, const struct view_node *n) {
    if (n->kind != VK_PROCLINK || strncmp(n->path, "/proc/self/fd/", 14))
        return NULL;
    return fdt_get(&sb->fdt, atoi(n->path + 14));
}

/* "/proc/<own pid>..." spelled "/proc/self..." in own (PATH_MAX), or NULL
 * when path names no process's own directory. */
static const char *own_proc_dir(struct sandbox *sb, const char *path, char *own) {
    char pid[16];
    int n = snprintf(pid, sizeof(pid), "/proc/%u", sb->pid);
    if (strncmp(path, pid, (size_t)n) || (path[n] && path[n] != '/'))
        return NULL;
    return snprintf(own, PATH_MAX, "/proc/self%s", path + n) < PATH_MAX ? own : NULL;
}

int sysf_resolve_at(struct sandbox *sb, int dirfd, const char *path, bool follow,
                    struct view_node *n) {
    const char *base;
    char own[PATH_MAX];
    int err = base_of(sb, dirfd, path, &base);
    if (err < 0)
        return err;
    if (own_proc_dir(sb, path, own))
        path = own; /* a process's own /proc/<pid> is its /proc/self */
    err = view_resolve(sb->view, base, path, follow, n);
    if (err == 0 && n->kind == VK_PROCLINK && !strncmp(n->path, "/proc/self/fd/", 14) &&
        !fd_link_file(sb, n))
        err = -ENOENT; /* /proc/self/fd lists open descriptors only */
    if (err == 0 && n->kind == VK_VDIR && view_proc_dir(n->path) && !sysf_proc_dir_exists(sb, n->path))
        err = -ENOENT; /* /proc lists the sandbox's live processes and threads only */
    struct stat st;
    if (err == 0 && n->kind == VK_DEV && !strncmp(n->path, "/dev/pts/", 9) &&
        file_pty_stat_path(sb, n->path, &st) < 0)
        err = -ENOENT; /* /dev/pts lists the sandbox's pseudo-terminals only */
    if (err < 0)
        view_node_release(sb->view, n);
    return err;
}

/* Copies a path argument and resolves it (the common first step). */
int sysf_resolve_arg(struct sandbox *sb, int dirfd, uint64_t gva, bool follow,
                     struct view_node *n) {
    char path[PATH_MAX];
    int err = sysf_path(sb, gva, path);
    return err < 0 ? err : sysf_resolve_at(sb, dirfd, path, follow, n);
}

bool sysf_is_mount_point(const char *path) {
    return !strcmp(path, "/tmp") || !strcmp(path, "/sandbox");
}

/* ----------------------------------------------------------------- open */

static int64_t open_fd_link(struct sandbox *sb, struct view_node *n, int flags, uint32_t mode);

static int64_t open_resolved(struct sandbox *sb, struct view_node *n, int flags, uint32_t mode) {
    struct memfs *fs = fs_view_layer(sb->view);
    bool writable = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
    struct file *f = NULL;
    switch (n->kind) {
    case VK_NONE:
        if (!strncmp(n->path, "/proc/", 6) && !(flags & O_CREAT))
            return sysf_open_proc(sb, n->path, flags); /* made when opened, or ENOENT */
        if (!strncmp(n->path, "/sys/", 5) && !(flags & O_CREAT))
            return sysf_open_sys(sb, n->path, flags);
        if (!(flags & O_CREAT))
            return -ENOENT;
        if (n->trailing_slash)
            return -EISDIR; /* only a directory can be named with a trailing slash */
        if (n->parent_in_layer) {
            struct memfs_node *node;
            int err = sysf_layer_dir_may_change(n->parent);
            if (err == 0)
                err = memfs_mknode(fs, n->parent, n->leaf,
                                   S_IFREG | (mode & ~sb->view->umask & 07777), NULL, &node);
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
        if (S_ISSOCK(memfs_node_mode(n->node)) && !(flags & O_PATH))
            return -ENXIO; /* a bound socket's name: reached by connect only */
        int want = ((flags & O_ACCMODE) != O_WRONLY ? R_OK : 0) | (writable ? W_OK : 0);
        if (!(flags & O_PATH) && view_layer_may(memfs_node_mode(n->node), want) < 0)
            return -EACCES;
        if (S_ISFIFO(memfs_node_mode(n->node)) && !(flags & O_PATH)) {
            if (flags & O_DIRECTORY)
                return -ENOTDIR;
            if (sb_serving_fast)
                return SB_EWOULDWAIT; /* its open may wait for the other end */
            int err = file_fifo_open(sb, fs, n->node, flags, &f);
            if (err < 0)
                return err;
            break;
        }
        bool dir = S_ISDIR(memfs_node_mode(n->node));
        if (dir && (writable || (flags & O_CREAT)))
            return -EISDIR;
        if (!dir && (flags & O_DIRECTORY))
            return -ENOTDIR;
        if (!dir && (flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY) {
            int err = sb_shm_truncate(sb, n->node, 0);
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
        if (file_pty_path(n->path)) {
            int err = file_pty_open(sb, n->path, flags, &f);
            if (err < 0)
                return err;
            break;
        }
        f = file_dev_new(n->leaf, flags, n->path);
        break;
    case VK_PROCLINK:
        return open_fd_link(sb, n, flags, mode);
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

/* open() of /proc/self/fd/N (or /dev/stdin...): a new description of what
 * descriptor N is open on, as Linux gives: the same layer node (even
 * unlinked), the same host file, directory or device, a new end of the
 * same pipe (the access mode says which); a socket is ENXIO; other kinds
 * (the notebook's streams, eventfd, epoll) are shared as by dup. */
static int64_t open_fd_link(struct sandbox *sb, struct view_node *n, int flags, uint32_t mode) {
    struct file *f = fd_link_file(sb, n), *c;
    if (!f)
        return -ENOENT; /* /proc/self/exe or cwd opened without following it */
    flags &= ~(O_CREAT | O_EXCL);
    if (file_is_socket(f))
        return -ENXIO;
    if (file_layer_fs(f) || (f->path && !file_is_pipe(f))) {
        struct view_node m = {.kind = VK_LAYER};
        int err = 0;
        if (file_layer_fs(f)) {
            memfs_node_get(f->node);
            m.node = f->node;
            snprintf(m.path, sizeof(m.path), "%s", f->path ? f->path : n->path);
        } else {
            err = view_resolve(sb->view, "/", f->path, true, &m);
        }
        int64_t r = err < 0                 ? err
                    : m.kind == VK_PROCLINK ? -ENOENT
                                            : open_resolved(sb, &m, flags, mode);
        view_node_release(sb->view, &m);
        return r;
    }
    c = file_is_pipe(f) ? file_pipe_reopen(f, flags) : file_get(f);
    if (!c)
        return -ENOMEM;
    int fd = fdt_install(&sb->fdt, c, 0, flags & O_CLOEXEC);
    if (fd < 0)
        file_put(c);
    return fd;
}

int64_t sysf_openat(struct sandbox *sb, int dirfd, uint64_t path_gva, int flags, uint32_t mode) {
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

static int64_t sys_open(struct sandbox *sb, const uint64_t a[6]) {
    return sysf_openat(sb, AT_FDCWD, a[0], (int)a[1], (uint32_t)a[2]);
}
static int64_t sys_openat(struct sandbox *sb, const uint64_t a[6]) {
    return sysf_openat(sb, (int)a[0], a[1], (int)a[2], (uint32_t)a[3]);
}
static int64_t sys_creat(struct sandbox *sb, const uint64_t a[6]) {
    return sysf_openat(sb, AT_FDCWD, a[0], O_CREAT | O_WRONLY | O_TRUNC, (uint32_t)a[1]);
}

/* ----------------------------------------------------------------- stat */

/* Resolves (dirfd, path, flags) for the *at calls that accept
 * AT_EMPTY_PATH/AT_SYMLINK_NOFOLLOW; *fd_file is set instead for an empty path. */
int sysf_resolve_flags(struct sandbox *sb, int dirfd, uint64_t path_gva, int flags,
                       struct view_node *n, struct file **fd_file) {
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
    bool follow = !(flags & AT_SYMLINK_NOFOLLOW);
    err = sysf_resolve_at(sb, dirfd, path, follow, n);
    if (err == 0 && follow && (*fd_file = fd_link_file(sb, n)))
        view_node_release(sb->view, n); /* a followed /proc/self/fd/N is the open file itself */
    return err;
}

int sysf_node_stat(struct sandbox *sb, struct view_node *n, struct stat *st) {
    if (n->kind != VK_NONE)
        return view_stat(sb->view, n, st);
    return sysf_proc_file(sb, n->path, st) || sysf_sys_file(sb, n->path, st) ? 0 : -ENOENT;
}

int sysf_stat_at(struct sandbox *sb, int dirfd, uint64_t path_gva, int flags, struct stat *st) {
    struct view_node n;
    struct file *f;
    int err = sysf_resolve_flags(sb, dirfd, path_gva, flags, &n, &f);
    if (err < 0)
        return err;
    if (f)
        return f->ops->stat(sb, f, st);
    if (n.kind == VK_DEV && !strncmp(n.path, "/dev/pts/", 9))
        err = file_pty_stat_path(sb, n.path, st);
    else
        err = sysf_node_stat(sb, &n, st);
    view_node_release(sb->view, &n);
    return err;
}

static int64_t put_stat(struct sandbox *sb, int err, const struct stat *st, uint64_t out) {
    return err < 0 ? err : mm_copy_to(&sb->mm, out, st, sizeof(*st));
}

static int64_t sys_stat(struct sandbox *sb, const uint64_t a[6]) {
    struct stat st;
    return put_stat(sb, sysf_stat_at(sb, AT_FDCWD, a[0], 0, &st), &st, a[1]);
}

static int64_t sys_lstat(struct sandbox *sb, const uint64_t a[6]) {
    struct stat st;
    return put_stat(sb, sysf_stat_at(sb, AT_FDCWD, a[0], AT_SYMLINK_NOFOLLOW, &st), &st, a[1]);
}

static int64_t sys_newfstatat(struct sandbox *sb, const uint64_t a[6]) {
    struct stat st;
    return put_stat(sb, sysf_stat_at(sb, (int)a[0], a[1], (int)a[3], &st), &st, a[2]);
}

static int64_t sys_statx(struct sandbox *sb, const uint64_t a[6]) {
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

static int64_t access_at(struct sandbox *sb, int dirfd, uint64_t path_gva, int mode, int flags) {
    if (mode & ~(R_OK | W_OK | X_OK))
        return -EINVAL;
    struct view_node n;
    struct file *f;
    int err = sysf_resolve_flags(sb, dirfd, path_gva, flags & (AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH),
                                 &n, &f);
    if (err < 0)
        return err;
    struct stat st;
    bool in_layer = f ? file_layer_fs(f) != NULL : n.kind == VK_LAYER;
    err = f ? f->ops->stat(sb, f, &st) : sysf_node_stat(sb, &n, &st);
    if (!f)
        view_node_release(sb->view, &n);
    if (err < 0)
        return err;
    if ((mode & W_OK) && !in_layer && (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)))
        return -EROFS;
    if (in_layer && !S_ISLNK(st.st_mode))
        return view_layer_may(st.st_mode, mode);
    if ((mode & X_OK) && !(st.st_mode & 0111))
        return -EACCES;
    if ((mode & R_OK) && !(st.st_mode & 0444))
        return -EACCES;
    return 0;
}

static int64_t sys_access(struct sandbox *sb, const uint64_t a[6]) {
    return access_at(sb, AT_FDCWD, a[0], (int)a[1], 0);
}
static int64_t sys_faccessat(struct sandbox *sb, const uint64_t a[6]) {
    return access_at(sb, (int)a[0], a[1], (int)a[2], 0);
}
static int64_t sys_faccessat2(struct sandbox *sb, const uint64_t a[6]) {
    return access_at(sb, (int)a[0], a[1], (int)a[2], (int)a[3]);
}

/* A host symlink's target is shown only when it resolves (through the view)
 * to something the view shows: a link under a root that points outside every
 * root (Debian's /usr/lib/python3.X/sitecustomize.py -> /etc/...) would
 * otherwise name a host path the guest cannot see. */
static bool host_link_stays_in_view(struct sandbox *sb, const char *link_path) {
    struct view_node t;
    if (view_resolve(sb->view, "/", link_path, true, &t) < 0)
        return false;
    bool visible = t.kind != VK_NONE;
    view_node_release(sb->view, &t);
    return visible;
}

/* What readlink of /proc/self/fd/N says, as Linux spells it. */
static int fd_link_text(struct sandbox *sb, struct file *f, char *out, size_t cap) {
    if (f->path)
        return snprintf(out, cap, "%s", f->path);
    struct stat st;
    if (f->ops->stat(sb, f, &st) < 0)
        memset(&st, 0, sizeof(st));
    if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))
        return snprintf(out, cap, "%s:[%llu]", S_ISFIFO(st.st_mode) ? "pipe" : "socket",
                        (unsigned long long)st.st_ino);
    return snprintf(out, cap, "anon_inode:[%s]", file_is_epoll(f) ? "eventpoll" : f->ops->kind);
}

static int64_t readlink_at(struct sandbox *sb, int dirfd, uint64_t path_gva, uint64_t buf,
                           uint64_t size) {
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
        len = readlink(n.host, target, sizeof(target)) < 0
                  ? -errno
                  : (int64_t)readlink(n.host, target, sizeof(target));
    else if (n.is_link && n.kind == VK_HOST)
        len = -ENOENT; /* its target is outside the view: reveal nothing of it */
    else if (n.kind == VK_PROCLINK) {
        struct file *f = fd_link_file(sb, &n);
        if (!strcmp(n.path, "/proc/self/exe"))
            len = snprintf(target, sizeof(target), "%s", sb->exe_path);
        else if (!strcmp(n.path, "/proc/self/cwd"))
            len = snprintf(target, sizeof(target), "%s", fs_view_cwd(sb->view));
        else if (view_dev_link_target(n.path))
            len = snprintf(target, sizeof(target), "%s", view_dev_link_target(n.path));
        else
            len = f ? fd_link_text(sb, f, target, sizeof(target)) : -ENOENT;
    }
    view_node_release(sb->view, &n);
    if (len < 0)
        return len;
    len = FJ_MIN((uint64_t)len, size);
    return mm_copy_to(&sb->mm, buf, target, (uint64_t)len) < 0 ? -EFAULT : len;
}

static int64_t sys_readlink(struct sandbox *sb, const uint64_t a[6]) {
    return readlink_at(sb, AT_FDCWD, a[0], a[1], a[2]);
}
static int64_t sys_readlinkat(struct sandbox *sb, const uint64_t a[6]) {
    return readlink_at(sb, (int)a[0], a[1], a[2], a[3]);
}

const struct sys_entry sys_file_path_entries[] = {
    {2, "open", sys_open, SYS_FULL, "through the filesystem view"},
    {4, "stat", sys_stat, SYS_FULL, NULL},
    {6, "lstat", sys_lstat, SYS_FULL, NULL},
    {21, "access", sys_access, SYS_FULL, "W_OK outside the layer: EROFS"},
    {85, "creat", sys_creat, SYS_FULL, NULL},
    {89, "readlink", sys_readlink, SYS_FULL, NULL},
    {257, "openat", sys_openat, SYS_FULL, "through the filesystem view"},
    {262, "newfstatat", sys_newfstatat, SYS_FULL, NULL},
    {267, "readlinkat", sys_readlinkat, SYS_FULL, NULL},
    {269, "faccessat", sys_faccessat, SYS_FULL, NULL},
    {332, "statx", sys_statx, SYS_PARTIAL, "basic fields"},
    {439, "faccessat2", sys_faccessat2, SYS_FULL, NULL},
};
const size_t sys_file_path_count = FJ_ARRAY_SIZE(sys_file_path_entries);
