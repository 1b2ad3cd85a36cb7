/* Shared by the parts of the files family: sys_file_path.c (path
 * resolution, open, stat), sys_file_names.c and sys_file_attr.c (the other
 * path-based calls), sys_file_fd.c (descriptor-based calls, and the table entries of
 * sys_file_anon.c's anonymous files and copies, sys_file_lock.c's locks
 * and sys_file_xattr.c's extended attributes). */
#ifndef SYS_FILE_H
#define SYS_FILE_H

#include "core/sandbox.h"
#include "fs/fs_memfs.h"
#include "fs/view_impl.h"

#include <fcntl.h>

/* Whether a description may be read or written: its access mode, and
 * never an O_PATH one (EBADF), as on Linux. */
static inline bool sysf_can_read(const struct file *f) {
    return (f->flags & O_ACCMODE) != O_WRONLY && !(f->flags & O_PATH);
}
static inline bool sysf_can_write(const struct file *f) {
    return (f->flags & O_ACCMODE) != O_RDONLY && !(f->flags & O_PATH);
}

/* Whether the sandbox user may make a new entry in, or remove one from,
 * layer directory dir (write and search: view_layer_may). */
static inline int sysf_layer_dir_may_change(const struct memfs_node *dir) {
    return view_layer_may(memfs_node_mode(dir), W_OK | X_OK);
}

int sysf_path(struct sandbox *sb, uint64_t gva, char *out);
int sysf_resolve_at(struct sandbox *sb, int dirfd, const char *path, bool follow,
                    struct view_node *n);
int64_t sysf_openat(struct sandbox *sb, int dirfd, uint64_t path_gva, int flags, uint32_t mode);
/* Resolves the guest path at gva relative to dirfd. */
int sysf_resolve_arg(struct sandbox *sb, int dirfd, uint64_t gva, bool follow, struct view_node *n);
/* Resolves (dirfd, path, flags) for the *at calls that accept
 * AT_EMPTY_PATH/AT_SYMLINK_NOFOLLOW; *fd_file is set instead for an empty path. */
int sysf_resolve_flags(struct sandbox *sb, int dirfd, uint64_t path_gva, int flags,
                       struct view_node *n, struct file **fd_file);
/* The stat of a resolved node, a file of /proc or /sys made when opened
 * (VK_NONE to the view) included; -ENOENT when nothing is there. */
int sysf_node_stat(struct sandbox *sb, struct view_node *n, struct stat *st);
/* /tmp and /sandbox: the layer's mount points, which cannot be removed or renamed. */
bool sysf_is_mount_point(const char *path);

/* Installs a pair of new descriptions (a pipe's or socket pair's ends) at
 * the two lowest free fds and writes the fds to the guest's int[2] at out;
 * on failure neither is installed. */
int64_t sysf_install_pair(struct sandbox *sb, struct file *ends[2], bool cloexec, gva_t out);
/* Waits until one of fds may be ready, a signal is pending, or timeout_ns
 * passes (-ETIMEDOUT; < 0: no timeout); 0 too when a file's own timer
 * (wake_in_ns) is due first. Callers check readiness again. */
int sysf_wait_ready(struct sandbox *sb, const int *fds, const short *events, size_t n,
                    int64_t timeout_ns);

/* sys_file_anon.c: an O_TMPFILE open of the directory n; memfd_create,
 * sendfile, copy_file_range and splice (handlers listed in sys_file_fd.c's
 * table). */
/* /proc/self/maps and /proc/self/status, made when opened (sys_procfs.c);
 * -ENOENT for the rest of /proc. */
int64_t sysf_open_proc(struct sandbox *sb, const char *path, int flags);
/* Whether path is a file of /proc made when opened (st: its stat). */
bool sysf_proc_file(struct sandbox *sb, const char *path, struct stat *st);
/* The files of /sys made when opened (sys_sysfs.c): an open (-ENOENT for
 * the rest of /sys), and whether path is one (st: its stat). */
int64_t sysf_open_sys(struct sandbox *sb, const char *path, int flags);
bool sysf_sys_file(struct sandbox *sb, const char *path, struct stat *st);
/* Whether the process (and thread) a directory of /proc names lives:
 * /proc/<pid>, .../task, .../task/<tid> (view_proc_dir). */
bool sysf_proc_dir_exists(struct sandbox *sb, const char *path);
int64_t sysf_open_tmpfile(struct sandbox *sb, struct view_node *n, int flags, uint32_t mode);
int64_t sysf_memfd_create(struct sandbox *sb, const uint64_t a[6]);
int64_t sysf_sendfile(struct sandbox *sb, const uint64_t a[6]);
int64_t sysf_copy_file_range(struct sandbox *sb, const uint64_t a[6]);
int64_t sysf_splice(struct sandbox *sb, const uint64_t a[6]);

/* sys_file_lock.c: fcntl's lock commands (cmd, the struct flock at arg) on
 * the open file f, and flock. */
int64_t sysf_fcntl_lock(struct sandbox *sb, struct file *f, int cmd, gva_t arg);
int64_t sysf_flock(struct sandbox *sb, const uint64_t a[6]);

/* sys_file_xattr.c: extended attributes (none exist in the view). */
int64_t sysf_setxattr(struct sandbox *sb, const uint64_t a[6]);
int64_t sysf_lsetxattr(struct sandbox *sb, const uint64_t a[6]);
int64_t sysf_fsetxattr(struct sandbox *sb, const uint64_t a[6]);
int64_t sysf_getxattr(struct sandbox *sb, const uint64_t a[6]);
int64_t sysf_lgetxattr(struct sandbox *sb, const uint64_t a[6]);
int64_t sysf_fgetxattr(struct sandbox *sb, const uint64_t a[6]);
int64_t sysf_listxattr(struct sandbox *sb, const uint64_t a[6]);
int64_t sysf_llistxattr(struct sandbox *sb, const uint64_t a[6]);
int64_t sysf_flistxattr(struct sandbox *sb, const uint64_t a[6]);
int64_t sysf_removexattr(struct sandbox *sb, const uint64_t a[6]);
int64_t sysf_lremovexattr(struct sandbox *sb, const uint64_t a[6]);
int64_t sysf_fremovexattr(struct sandbox *sb, const uint64_t a[6]);

#endif
