/* Open-file kinds of the view (file_kinds.h).
 *
 * Invariants: a host file is opened read-only and only by the view after the
 * path check; every kind keeps its own offset in f->off (host fds are read
 * with pread), so a branch's clone of a description is independent. */
#define _GNU_SOURCE
#include "file_kinds.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fs_memfs.h"
#include "sandbox.h"

/* ------------------------------------------------------------ dirents */

struct dirent_out {
    uint8_t *buf;
    uint64_t cap, used;
};

/* Appends one linux_dirent64; returns 1 when it does not fit. */
static int put_dirent(struct dirent_out *o, uint64_t ino, int64_t next, unsigned char type, const char *name)
{
    size_t nlen = strlen(name);
    uint16_t reclen = (uint16_t)FJ_ALIGN_UP(19 + nlen + 1, 8);
    if (o->used + reclen > o->cap)
        return 1;
    uint8_t *r = o->buf + o->used;
    memset(r, 0, reclen);
    memcpy(r, &ino, 8);
    memcpy(r + 8, &next, 8);
    memcpy(r + 16, &reclen, 2);
    r[18] = type;
    memcpy(r + 19, name, nlen);
    o->used += reclen;
    return 0;
}

static int64_t dirents_result(struct dirent_out *o, bool more)
{
    if (o->used == 0 && more)
        return -EINVAL; /* the buffer cannot hold the next entry */
    return (int64_t)o->used;
}

static short always_ready(struct sandbox *sb, struct file *f, short events) { return events & (POLLIN | POLLOUT); }

/* --------------------------------------------------------- host files */

static int64_t host_pread(struct sandbox *sb, struct file *f, void *buf, uint64_t len, uint64_t off)
{
    ssize_t r = pread(f->host_fd, buf, len, (off_t)off);
    return r < 0 ? -errno : r;
}

static int64_t host_read(struct sandbox *sb, struct file *f, void *buf, uint64_t len)
{
    int64_t r = host_pread(sb, f, buf, len, f->off);
    if (r > 0)
        f->off += (uint64_t)r;
    return r;
}

static int host_stat(struct sandbox *sb, struct file *f, struct stat *st)
{
    return fstat(f->host_fd, st) < 0 ? -errno : 0;
}

static int64_t seek_to(struct file *f, int64_t off, int whence, int64_t size)
{
    int64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? (int64_t)f->off : size;
    if (whence == SEEK_DATA || whence == SEEK_HOLE) {
        if (off < 0 || off >= size)
            return -ENXIO;
        f->off = (uint64_t)(whence == SEEK_DATA ? off : size);
        return (int64_t)f->off;
    }
    if (whence != SEEK_SET && whence != SEEK_CUR && whence != SEEK_END)
        return -EINVAL;
    if (base + off < 0)
        return -EINVAL;
    f->off = (uint64_t)(base + off);
    return (int64_t)f->off;
}

static int64_t host_lseek(struct sandbox *sb, struct file *f, int64_t off, int whence)
{
    struct stat st;
    if (fstat(f->host_fd, &st) < 0)
        return -errno;
    return seek_to(f, off, whence, st.st_size);
}

static int64_t host_getdents(struct sandbox *sb, struct file *f, void *buf, uint64_t len)
{
    uint8_t tmp[32768];
    if (lseek(f->host_fd, (off_t)f->dir_cookie, SEEK_SET) < 0)
        return -errno;
    long n = syscall(SYS_getdents64, f->host_fd, tmp, (unsigned)FJ_MIN(len, sizeof(tmp)));
    if (n < 0)
        return -errno;
    struct dirent_out o = {buf, len, 0};
    for (long at = 0; at < n;) {
        uint16_t reclen;
        int64_t next;
        memcpy(&reclen, tmp + at + 16, 2);
        memcpy(&next, tmp + at + 8, 8);
        if (o.used + reclen > o.cap)
            return dirents_result(&o, true);
        memcpy(o.buf + o.used, tmp + at, reclen);
        o.used += reclen;
        f->dir_cookie = (uint64_t)next;
        at += reclen;
    }
    return (int64_t)o.used;
}

static int64_t dir_lseek(struct sandbox *sb, struct file *f, int64_t off, int whence)
{
    if (whence != SEEK_SET || off < 0)
        return -EINVAL;
    f->dir_cookie = (uint64_t)off;
    return off;
}

static struct file *host_clone(struct file *f, struct fs_view *view);

static const struct file_ops host_file_ops = {
    .kind = "host-file", .read = host_read, .pread = host_pread, .lseek = host_lseek,
    .stat = host_stat, .poll = always_ready, .clone = host_clone,
};
static const struct file_ops host_dir_ops = {
    .kind = "host-dir", .lseek = dir_lseek, .stat = host_stat, .getdents = host_getdents,
    .poll = always_ready, .clone = host_clone,
};

struct file *file_host_new(int host_fd, int flags, const char *path, bool dir)
{
    struct file *f = file_new(dir ? &host_dir_ops : &host_file_ops, flags, path);
    if (!f) {
        close(host_fd);
        return NULL;
    }
    f->host_fd = host_fd;
    return f;
}

static struct file *host_clone(struct file *f, struct fs_view *view)
{
    int fd = fcntl(f->host_fd, F_DUPFD_CLOEXEC, 3);
    if (fd < 0)
        return NULL;
    struct file *c = file_host_new(fd, f->flags, f->path, f->ops == &host_dir_ops);
    if (c) {
        c->off = f->off;
        c->dir_cookie = f->dir_cookie;
    }
    return c;
}

/* -------------------------------------------------------- layer files */

static struct memfs *layer(struct sandbox *sb) { return fs_view_layer(sb->view); }

static int64_t layer_pread(struct sandbox *sb, struct file *f, void *buf, uint64_t len, uint64_t off)
{
    return memfs_pread(layer(sb), f->node, buf, len, off);
}

static int64_t layer_pwrite(struct sandbox *sb, struct file *f, const void *buf, uint64_t len, uint64_t off)
{
    return memfs_pwrite(layer(sb), f->node, buf, len, off);
}

static int64_t layer_size(struct sandbox *sb, struct file *f)
{
    struct stat st;
    int err = memfs_getattr(layer(sb), f->node, &st);
    return err < 0 ? err : st.st_size;
}

static int64_t layer_read(struct sandbox *sb, struct file *f, void *buf, uint64_t len)
{
    int64_t r = layer_pread(sb, f, buf, len, f->off);
    if (r > 0)
        f->off += (uint64_t)r;
    return r;
}

static int64_t layer_write(struct sandbox *sb, struct file *f, const void *buf, uint64_t len)
{
    if (f->flags & O_APPEND) {
        int64_t size = layer_size(sb, f);
        if (size < 0)
            return size;
        f->off = (uint64_t)size;
    }
    int64_t r = layer_pwrite(sb, f, buf, len, f->off);
    if (r > 0)
        f->off += (uint64_t)r;
    return r;
}

static int64_t layer_lseek(struct sandbox *sb, struct file *f, int64_t off, int whence)
{
    int64_t size = layer_size(sb, f);
    return size < 0 ? size : seek_to(f, off, whence, size);
}

static int layer_stat(struct sandbox *sb, struct file *f, struct stat *st)
{
    return memfs_getattr(layer(sb), f->node, st);
}

static int layer_truncate(struct sandbox *sb, struct file *f, uint64_t len)
{
    return memfs_truncate(layer(sb), f->node, len);
}

struct layer_dir_ctx {
    struct dirent_out *out;
    bool full;
};

static int layer_emit(void *p, const char *name, uint64_t ino, unsigned char type, uint64_t next)
{
    struct layer_dir_ctx *c = p;
    if (put_dirent(c->out, ino, (int64_t)next, type, name)) {
        c->full = true;
        return 1;
    }
    return 0;
}

static int64_t layer_getdents(struct sandbox *sb, struct file *f, void *buf, uint64_t len)
{
    struct dirent_out o = {buf, len, 0};
    struct layer_dir_ctx c = {&o, false};
    int err = memfs_readdir(layer(sb), f->node, &f->dir_cookie, layer_emit, &c);
    if (err < 0)
        return err;
    return dirents_result(&o, c.full);
}

static struct file *layer_clone(struct file *f, struct fs_view *view);

/* Layer nodes are released through their memfs: kept beside the file. */
struct layer_priv {
    struct memfs *fs;
};

static void layer_put(struct file *f)
{
    struct layer_priv *p = f->priv;
    if (p && f->node)
        memfs_node_put(p->fs, f->node);
    f->node = NULL;
    free(p);
    f->priv = NULL;
}

static const struct file_ops layer_file_ops_owned = {
    .kind = "layer-file", .read = layer_read, .write = layer_write, .pread = layer_pread,
    .pwrite = layer_pwrite, .lseek = layer_lseek, .stat = layer_stat, .poll = always_ready,
    .truncate = layer_truncate, .release = layer_put, .clone = layer_clone,
};
static const struct file_ops layer_dir_ops_owned = {
    .kind = "layer-dir", .lseek = dir_lseek, .stat = layer_stat, .getdents = layer_getdents,
    .poll = always_ready, .release = layer_put, .clone = layer_clone,
};

struct file *file_layer_new(struct memfs *fs, struct memfs_node *node, int flags, const char *path)
{
    bool dir = S_ISDIR(memfs_node_mode(node));
    struct file *f = file_new(dir ? &layer_dir_ops_owned : &layer_file_ops_owned, flags, path);
    struct layer_priv *p = malloc(sizeof(*p));
    if (!f || !p) {
        free(p);
        if (f)
            file_put(f);
        memfs_node_put(fs, node);
        return NULL;
    }
    p->fs = fs;
    f->priv = p;
    f->node = node;
    return f;
}

struct memfs *file_layer_fs(const struct file *f)
{
    return f->ops == &layer_file_ops_owned || f->ops == &layer_dir_ops_owned ? ((struct layer_priv *)f->priv)->fs
                                                                            : NULL;
}

static struct file *layer_clone(struct file *f, struct fs_view *view)
{
    struct memfs *fs = fs_view_layer(view);
    struct memfs_node *n = memfs_node_by_ino(fs, memfs_node_ino(f->node));
    if (!n)
        return NULL;
    struct file *c = file_layer_new(fs, n, f->flags, f->path);
    if (c) {
        c->off = f->off;
        c->dir_cookie = f->dir_cookie;
    }
    return c;
}

/* --------------------------------------------------- synthesized dirs */

struct vdir_ctx {
    struct dirent_out *out;
    uint64_t skip, index;
    bool full;
};

static int vdir_emit(void *p, const char *name, unsigned char type)
{
    struct vdir_ctx *c = p;
    uint64_t i = c->index++;
    if (i < c->skip)
        return 0;
    uint64_t ino = 0x1000 + i;
    if (put_dirent(c->out, ino, (int64_t)(i + 1), type, name)) {
        c->full = true;
        return 1;
    }
    return 0;
}

static int64_t vdir_getdents(struct sandbox *sb, struct file *f, void *buf, uint64_t len)
{
    struct dirent_out o = {buf, len, 0};
    struct vdir_ctx c = {&o, f->dir_cookie, 0, false};
    /* "." and ".." are indexes 0 and 1. */
    vdir_emit(&c, ".", 4);
    if (!c.full)
        vdir_emit(&c, "..", 4);
    if (!c.full) {
        int err = view_vdir_list(sb->view, f->path, vdir_emit, &c);
        if (err < 0)
            return err;
    }
    /* Entries consumed are those emitted before the buffer filled up. */
    uint64_t consumed = 0;
    for (uint64_t at = 0; at < o.used;) {
        uint16_t reclen;
        memcpy(&reclen, o.buf + at + 16, 2);
        at += reclen;
        consumed++;
    }
    f->dir_cookie += consumed;
    return dirents_result(&o, c.full);
}

static int vdir_stat(struct sandbox *sb, struct file *f, struct stat *st)
{
    struct view_node n = {.kind = VK_VDIR};
    snprintf(n.path, sizeof(n.path), "%s", f->path);
    return view_stat(sb->view, &n, st);
}

static struct file *vdir_clone(struct file *f, struct fs_view *view)
{
    struct file *c = file_vdir_new(f->flags, f->path);
    if (c)
        c->dir_cookie = f->dir_cookie;
    return c;
}

static const struct file_ops vdir_ops = {
    .kind = "vdir", .lseek = dir_lseek, .stat = vdir_stat, .getdents = vdir_getdents,
    .poll = always_ready, .clone = vdir_clone,
};

struct file *file_vdir_new(int flags, const char *path) { return file_new(&vdir_ops, flags, path); }

bool file_is_dir(const struct file *f)
{
    return f->ops == &vdir_ops || f->ops == &host_dir_ops || f->ops == &layer_dir_ops_owned;
}

/* ------------------------------------------------------------ devices */

enum dev_kind { DEV_NULL, DEV_ZERO, DEV_FULL, DEV_RANDOM };

static enum dev_kind dev_of(struct file *f) { return (enum dev_kind)(uintptr_t)f->priv; }

static int64_t dev_read(struct sandbox *sb, struct file *f, void *buf, uint64_t len)
{
    switch (dev_of(f)) {
    case DEV_NULL:
        return 0;
    case DEV_RANDOM: {
        ssize_t r = getrandom(buf, FJ_MIN(len, 1u << 25), 0);
        return r < 0 ? -errno : r;
    }
    default:
        memset(buf, 0, len);
        return (int64_t)len;
    }
}

static int64_t dev_pread(struct sandbox *sb, struct file *f, void *buf, uint64_t len, uint64_t off)
{
    return dev_read(sb, f, buf, len);
}

static int64_t dev_write(struct sandbox *sb, struct file *f, const void *buf, uint64_t len)
{
    return dev_of(f) == DEV_FULL ? -ENOSPC : (int64_t)len;
}

static int64_t dev_pwrite(struct sandbox *sb, struct file *f, const void *buf, uint64_t len, uint64_t off)
{
    return dev_write(sb, f, buf, len);
}

static int64_t dev_lseek(struct sandbox *sb, struct file *f, int64_t off, int whence) { return 0; }

static int dev_stat(struct sandbox *sb, struct file *f, struct stat *st)
{
    struct view_node n = {.kind = VK_DEV};
    snprintf(n.path, sizeof(n.path), "%s", f->path ? f->path : "/dev/null");
    return view_stat(sb->view, &n, st);
}

static struct file *dev_clone(struct file *f, struct fs_view *view)
{
    struct file *c = file_new(f->ops, f->flags, f->path);
    if (c)
        c->priv = f->priv;
    return c;
}

static const struct file_ops dev_ops = {
    .kind = "device", .read = dev_read, .write = dev_write, .pread = dev_pread, .pwrite = dev_pwrite,
    .lseek = dev_lseek, .stat = dev_stat, .poll = always_ready, .clone = dev_clone,
};

struct file *file_dev_new(const char *name, int flags, const char *path)
{
    enum dev_kind k = !strcmp(name, "null") ? DEV_NULL : !strcmp(name, "full") ? DEV_FULL
                      : !strcmp(name, "zero") ? DEV_ZERO : DEV_RANDOM;
    struct file *f = file_new(&dev_ops, flags, path);
    if (f)
        f->priv = (void *)(uintptr_t)k;
    return f;
}

/* -------------------------------------------------------------- pipes */

#define PIPE_BYTES 65536

struct pipe_buf {
    int readers, writers;
    size_t head, len;
    uint8_t data[PIPE_BYTES];
};

/* One guest thread: a read on an empty pipe whose writer is open, or a write
 * to a full one, can only end by a signal, as on Linux (no other thread could
 * ever make progress). Non-blocking ends get EAGAIN. */
static int64_t pipe_read(struct sandbox *sb, struct file *f, void *buf, uint64_t len)
{
    struct pipe_buf *p = f->priv;
    while (p->len == 0) {
        if (p->writers == 0)
            return 0;
        if (f->flags & O_NONBLOCK)
            return -EAGAIN;
        int err = sb_wait_fd(sb, -1, 0, -1);
        if (err < 0)
            return err;
    }
    uint64_t n = FJ_MIN(len, p->len);
    for (uint64_t i = 0; i < n; i++)
        ((uint8_t *)buf)[i] = p->data[(p->head + i) % PIPE_BYTES];
    p->head = (p->head + n) % PIPE_BYTES;
    p->len -= n;
    return (int64_t)n;
}

static int64_t pipe_write(struct sandbox *sb, struct file *f, const void *buf, uint64_t len)
{
    struct pipe_buf *p = f->priv;
    if (p->readers == 0) {
        sb_raise(sb, SIGPIPE);
        return -EPIPE;
    }
    while (p->len == PIPE_BYTES) {
        if (f->flags & O_NONBLOCK)
            return -EAGAIN;
        int err = sb_wait_fd(sb, -1, 0, -1);
        if (err < 0)
            return err;
    }
    uint64_t n = FJ_MIN(len, PIPE_BYTES - p->len);
    for (uint64_t i = 0; i < n; i++)
        p->data[(p->head + p->len + i) % PIPE_BYTES] = ((const uint8_t *)buf)[i];
    p->len += n;
    return (int64_t)n;
}

static short pipe_poll(struct sandbox *sb, struct file *f, short events)
{
    struct pipe_buf *p = f->priv;
    short r = 0;
    if ((f->flags & O_ACCMODE) == O_RDONLY) {
        if (p->len || !p->writers)
            r |= POLLIN;
        if (!p->writers)
            r |= POLLHUP;
    } else {
        if (p->len < PIPE_BYTES)
            r |= POLLOUT;
        if (!p->readers)
            r |= POLLERR;
    }
    return r & (events | POLLHUP | POLLERR);
}

static int pipe_stat(struct sandbox *sb, struct file *f, struct stat *st)
{
    memset(st, 0, sizeof(*st));
    st->st_mode = S_IFIFO | 0600;
    st->st_nlink = 1;
    st->st_uid = st->st_gid = 1000;
    st->st_ino = (uint64_t)(uintptr_t)f->priv;
    st->st_dev = 0xc;
    st->st_blksize = 4096;
    return 0;
}

static void pipe_release(struct file *f)
{
    struct pipe_buf *p = f->priv;
    if ((f->flags & O_ACCMODE) == O_RDONLY)
        p->readers--;
    else
        p->writers--;
    if (!p->readers && !p->writers)
        free(p);
}

static int64_t pipe_ioctl(struct sandbox *sb, struct file *f, uint64_t req, uint64_t arg)
{
    if (req == 0x541B) { /* FIONREAD */
        int n = (int)((struct pipe_buf *)f->priv)->len;
        return mm_copy_to(&sb->mm, arg, &n, sizeof(n));
    }
    return -ENOTTY;
}

static const struct file_ops pipe_ops = {
    .kind = "pipe", .read = pipe_read, .write = pipe_write, .stat = pipe_stat, .poll = pipe_poll,
    .ioctl = pipe_ioctl, .release = pipe_release,
};

int file_pipe_new(int flags, struct file *out[2])
{
    struct pipe_buf *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    int extra = flags & O_NONBLOCK;
    out[0] = file_new(&pipe_ops, O_RDONLY | extra, NULL);
    out[1] = file_new(&pipe_ops, O_WRONLY | extra, NULL);
    if (!out[0] || !out[1]) {
        free(out[0]);
        free(out[1]);
        free(p);
        return -ENOMEM;
    }
    out[0]->priv = out[1]->priv = p;
    p->readers = p->writers = 1;
    return 0;
}
