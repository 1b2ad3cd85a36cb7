/* The files family, extended attributes: no file in the view has any.
 *
 * Listing gives an empty list and reading ENODATA, for every visible file;
 * setting is EROFS outside the layer and EOPNOTSUPP inside it (the layer
 * stores no attributes), removing is EROFS or ENODATA. Arguments are checked
 * in Linux's order (flags, name, size, then the file), and invisible paths
 * are ENOENT like everywhere else. Entries are in sys_file_fd.c's table. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <sys/xattr.h>

#include "file/file_kinds.h"
#include "core/sandbox.h"
#include "sys/sys.h"
#include "sys/sys_file.h"

#define XATTR_NAME_MAX_ 255
#define XATTR_SIZE_MAX_ 65536

enum xattr_target { BY_PATH, BY_LPATH, BY_FD };

/* 1 when the file is in the writable layer, 0 when read-only, or -errno. */
static int in_layer(struct sandbox *sb, enum xattr_target how, uint64_t arg) {
    if (how == BY_FD) {
        struct file *f = sys_fd_file(sb, arg);
        return !f ? -EBADF : file_layer_fs(f) != NULL;
    }
    char path[PATH_MAX];
    struct view_node n;
    int err = sysf_path(sb, arg, path);
    if (err < 0 || (err = sysf_resolve_at(sb, AT_FDCWD, path, how == BY_PATH, &n)) < 0)
        return err;
    struct stat st;
    err = n.kind == VK_LAYER ? 1 : sysf_node_stat(sb, &n, &st);
    view_node_release(sb->view, &n);
    return err;
}

static int check_name(struct sandbox *sb, uint64_t gva) {
    char name[XATTR_NAME_MAX_ + 1];
    if (!gva)
        return -EFAULT;
    int len = mm_copy_string(&sb->mm, name, gva, sizeof(name));
    if (len == -ENAMETOOLONG || len == 0)
        return -ERANGE;
    return len < 0 ? len : 0;
}

static int64_t set_x(struct sandbox *sb, const uint64_t a[6], enum xattr_target how) {
    if (a[4] & ~(uint64_t)(XATTR_CREATE | XATTR_REPLACE))
        return -EINVAL;
    int err = check_name(sb, a[1]);
    if (err < 0)
        return err;
    if (a[3] > XATTR_SIZE_MAX_)
        return -E2BIG;
    if (a[3] && !mm_read_ptr(&sb->mm, a[2], a[3]))
        return -EFAULT;
    err = in_layer(sb, how, a[0]);
    return err < 0 ? err : err ? -EOPNOTSUPP : -EROFS;
}

static int64_t get_x(struct sandbox *sb, const uint64_t a[6], enum xattr_target how) {
    int err = check_name(sb, a[1]);
    if (err == 0)
        err = in_layer(sb, how, a[0]);
    return err < 0 ? err : -ENODATA;
}

static int64_t list_x(struct sandbox *sb, const uint64_t a[6], enum xattr_target how) {
    int err = in_layer(sb, how, a[0]);
    return err < 0 ? err : 0; /* an empty list */
}

static int64_t remove_x(struct sandbox *sb, const uint64_t a[6], enum xattr_target how) {
    int err = check_name(sb, a[1]);
    if (err == 0)
        err = in_layer(sb, how, a[0]);
    return err < 0 ? err : err ? -ENODATA : -EROFS;
}

int64_t sysf_setxattr(struct sandbox *sb, const uint64_t a[6]) { return set_x(sb, a, BY_PATH); }
int64_t sysf_lsetxattr(struct sandbox *sb, const uint64_t a[6]) { return set_x(sb, a, BY_LPATH); }
int64_t sysf_fsetxattr(struct sandbox *sb, const uint64_t a[6]) { return set_x(sb, a, BY_FD); }
int64_t sysf_getxattr(struct sandbox *sb, const uint64_t a[6]) { return get_x(sb, a, BY_PATH); }
int64_t sysf_lgetxattr(struct sandbox *sb, const uint64_t a[6]) { return get_x(sb, a, BY_LPATH); }
int64_t sysf_fgetxattr(struct sandbox *sb, const uint64_t a[6]) { return get_x(sb, a, BY_FD); }
int64_t sysf_listxattr(struct sandbox *sb, const uint64_t a[6]) { return list_x(sb, a, BY_PATH); }
int64_t sysf_llistxattr(struct sandbox *sb, const uint64_t a[6]) { return list_x(sb, a, BY_LPATH); }
int64_t sysf_flistxattr(struct sandbox *sb, const uint64_t a[6]) { return list_x(sb, a, BY_FD); }
int64_t sysf_removexattr(struct sandbox *sb, const uint64_t a[6]) {
    return remove_x(sb, a, BY_PATH);
}
int64_t sysf_lremovexattr(struct sandbox *sb, const uint64_t a[6]) {
    return remove_x(sb, a, BY_LPATH);
}
int64_t sysf_fremovexattr(struct sandbox *sb, const uint64_t a[6]) {
    return remove_x(sb, a, BY_FD);
}
