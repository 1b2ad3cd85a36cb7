/* What a resolved view node is (view_impl.h): its stat(2), and opening a
 * host node. A host node's stat comes from its resolution when that took
 * it (view_node.has_st), else from the host path, which lies under a
 * read-only root (view.c's invariant). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fs/fs_memfs.h"
#include "fs/view_impl.h"

static const unsigned device_major[] = {1, 1, 1, 1, 1, 5, 5}; /* as on Linux */
static const unsigned device_minor[] = {3, 5, 7, 8, 9, 0, 2};

int view_open_host(const struct view_node *n, const struct stat *st) {
    bool dir = S_ISDIR(st->st_mode);
    /* Only regular files and directories: opening a host FIFO or device
     * could block or act on the host. O_NONBLOCK keeps a file swapped for a
     * FIFO meanwhile from blocking the open; the fstat catches it. */
    if (!dir && !S_ISREG(st->st_mode))
        return -EACCES;
    int fd =
        open(n->host, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | (dir ? O_DIRECTORY : 0));
    if (fd < 0)
        return errno == EACCES ? -EACCES : -ENOENT;
    struct stat now;
    if (fstat(fd, &now) < 0 || (dir ? !S_ISDIR(now.st_mode) : !S_ISREG(now.st_mode))) {
        close(fd);
        return -EACCES;
    }
    return fd;
}

static uint64_t path_hash(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return h;
}

/* The stat of a node only the view has (a synthesized directory, a
 * device, a /proc link): its inode a hash of its path. */
static void synthesized(struct stat *st, mode_t mode, nlink_t nlink, dev_t dev, const char *path,
                        blksize_t blksize) {
    st->st_mode = mode;
    st->st_nlink = nlink;
    st->st_ino = path_hash(path);
    st->st_dev = dev;
    st->st_blksize = blksize;
}

/* A process's directory of /proc or one below it (/proc/PID/..., self,
 * thread-self): the sandbox user's, as Linux gives the process's owner
 * (ps and lsof name a process's user by it). */
static bool process_dir(const char *path) {
    if (strncmp(path, "/proc/", 6))
        return false;
    const char *c = path + 6;
    return (*c >= '0' && *c <= '9') || !strncmp(c, "self", 4) || !strncmp(c, "thread-self", 11);
}

int view_stat(struct fs_view *v, struct view_node *n, struct stat *st) {
    memset(st, 0, sizeof(*st));
    switch (n->kind) {
    case VK_LAYER:
        return memfs_getattr(v->layer, n->node, st);
    case VK_HOST:
        if (n->has_st) {
            *st = n->st;
            return 0;
        }
        return (n->is_link ? lstat(n->host, st) : stat(n->host, st)) < 0 ? -errno : 0;
    case VK_VDIR:
        synthesized(st, S_IFDIR | 0555, 2, 0x766469, n->path, 4096);
        if (process_dir(n->path))
            st->st_uid = st->st_gid = 1000;
        return 0;
    case VK_DEV:
        synthesized(st, S_IFCHR | 0666, 1, 0x5, n->path, 4096);
        st->st_rdev = makedev(1, 3);
        for (size_t i = 0; i < FJ_ARRAY_SIZE(view_devices); i++)
            if (strrchr(n->path, '/') && !strcmp(strrchr(n->path, '/') + 1, view_devices[i]))
                st->st_rdev = makedev(device_major[i], device_minor[i]);
        return 0;
    case VK_PROCLINK:
        synthesized(st, S_IFLNK | 0777, 1, 0x70726f63, n->path, 0);
        return 0;
    default:
        return -ENOENT;
    }
}
