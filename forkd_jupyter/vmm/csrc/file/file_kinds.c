/* Open-file kinds of the view (file_kinds.h): host files and directories,
 * layer files and directories, synthesized directories. Devices are in
 * file_dev.c, pipes in file_pipe.c.
 *
 * Invariants: a host file is opened read-only and only by the view after the
 * path check; every kind keeps its own offset in f->off (host fds are read
 * with pread), so a branch's clone of a description is independent. */
#define _GNU_SOURCE
#include "file/file_kinds.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/proc.h"
#include "core/sandbox.h"
#include "core/shm.h"
#include "file/pty.h"
#include "fs/fs_memfs.h"

/* ------------------------------------------------------------ dirents */

struct dirent_out {
    uint8_t *buf;
    uint64_t cap, used;
};

/* Appends one linux_dirent64; returns 1 when it does not fit. */
static int put_dirent(struct dirent_out *o, uint64_t ino, int64_t next, unsigned char type,
                      const char *name) {
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

static int64_t dirents_result(struct dirent_out *o, bool more) {
    if (o->used == 0 && more)
        return -EINVAL; /* the buffer cannot hold the next entry */
    return (int64_t)o->used;
}

static short always_ready(struct sandbox *sb, struct file *f, short events) {
    return events & (POLLIN | POLLOUT);
}

/* --------------------------------------------------------- host files */

static int64_t host_pread(struct sandbox *sb, struct file *f, void *buf, uint64_t len,
                          uint64_t off) {
    ssize_t r = pread(f->host_fd, buf, len, (off_t)off);
    return r < 0 ? -errno : r;
}

static int64_t host_read(struct sandbox *sb, struct file *f, void *buf, uint64_t len) {
    int64_t r = host_pread(sb, f, buf, len, f->off);
    if (r > 0)
        f->off += (uint64_t)r;
    return r;
}

static int host_stat(struct sandbox *sb, struct file *f, struct stat *st) {
    return fstat(f->host_fd, st) < 0 ? -errno : 0;
}

static int64_t seek_to(struct file *f, int64_t off, int whence, int64_t size) {
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

static int64_t host_lseek(struct sandbox *sb, struct file *f, int64_t off, int whence) {
    struct stat st;
    if (fstat(f->host_fd, &st) < 0)
        return -errno;
    return seek_to(f, off, whence, st.st_size);
}

static int64_t host_getdents(struct sandbox *sb, struct file *f, void *buf, uint64_t len) {
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

static int64_t dir_lseek(struct sandbox *sb, struct file *f, int64_t off, int whence) {
    if (whence != SEEK_SET || off < 0)
        return -EINVAL;
    f->dir_cookie = (uint64_t)off;
    return off;
}

static struct file *host_clone(struct file *f, struct fdt_clone_ctx *ctx);

static const struct file_ops host_file_ops = {
    .kind = "host-file",
    .never_waits = true,
    .read = host_read,
    .pread = host_pread,
    .lseek = host_lseek,
    .stat = host_stat,
    .poll = always_ready,
    .clone = host_clone,
};
static const struct file_ops host_dir_ops = {
    .kind = "host-dir",
    .never_waits = true,
    .lseek = dir_lseek,
    .stat = host_stat,
    .getdents = host_getdents,
    .poll = always_ready,
    .clone = host_clone,
};

struct file *file_host_new(int host_fd, int flags, const char *path, bool dir) {
    struct file *f = file_new(dir ? &host_dir_ops : &host_file_ops, flags, path);
    if (!f) {
        close(host_fd);
        return NULL;
    }
    f->host_fd = host_fd;
    return f;
}

static struct file *host_clone(struct file *f, struct fdt_clone_ctx *ctx) {
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

static int64_t layer_pread(struct sandbox *sb, struct file *f, void *buf, uint64_t len,
                           uint64_t off) {
    return sb_shm_pread(sb, f->node, buf, len, off);
}

static int64_t layer_pwrite(struct sandbox *sb, struct file *f, const void *buf, uint64_t len,
                            uint64_t off) {
    return sb_shm_pwrite(sb, f->node, buf, len, off);
}

static int64_t layer_size(struct sandbox *sb, struct file *f) {
    struct stat st;
    int err = memfs_getattr(layer(sb), f->node, &st);
    return err < 0 ? err : st.st_size;
}

static int64_t layer_read(struct sandbox *sb, struct file *f, void *buf, uint64_t len) {
    int64_t r = layer_pread(sb, f, buf, len, f->off);
    if (r > 0)
        f->off += (uint64_t)r;
    return r;
}

static int64_t layer_write(struct sandbox *sb, struct file *f, const void *buf, uint64_t len) {
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

static int64_t layer_lseek(struct sandbox *sb, struct file *f, int64_t off, int whence) {
    int64_t size = layer_size(sb, f);
    return size < 0 ? size : seek_to(f, off, whence, size);
}

static int layer_stat(struct sandbox *sb, struct file *f, struct stat *st) {
    return memfs_getattr(layer(sb), f->node, st);
}

static int layer_truncate(struct sandbox *sb, struct file *f, uint64_t len) {
    return sb_shm_truncate(sb, f->node, len);
}

struct layer_dir_ctx {
    struct dirent_out *out;
    bool full;
};

static int layer_emit(void *p, const char *name, uint64_t ino, unsigned char type, uint64_t next) {
    struct layer_dir_ctx *c = p;
    if (put_dirent(c->out, ino, (int64_t)next, type, name)) {
        c->full = true;
        return 1;
    }
    return 0;
}

static int64_t layer_getdents(struct sandbox *sb, struct file *f, void *buf, uint64_t len) {
    struct dirent_out o = {buf, len, 0};
    struct layer_dir_ctx c = {&o, false};
    int err = memfs_readdir(layer(sb), f->node, &f->dir_cookie, layer_emit, &c);
    if (err < 0)
        return err;
    return dirents_result(&o, c.full);
}

static struct file *layer_clone(struct file *f, struct fdt_clone_ctx *ctx);

/* Layer nodes are released through their memfs: kept beside the file. */
struct layer_priv {
    struct memfs *fs;
};

static void layer_put(struct file *f) {
    struct layer_priv *p = f->priv;
    if (p && f->node)
        memfs_node_put(p->fs, f->node);
    f->node = NULL;
    free(p);
    f->priv = NULL;
}

static const struct file_ops layer_file_ops_owned = {
    .kind = "layer-file",
    .never_waits = true,
    .read = layer_read,
    .write = layer_write,
    .pread = layer_pread,
    .pwrite = layer_pwrite,
    .lseek = layer_lseek,
    .stat = layer_stat,
    .poll = always_ready,
    .truncate = layer_truncate,
    .release = layer_put,
    .clone = layer_clone,
};
static const struct file_ops layer_dir_ops_owned = {
    .kind = "layer-dir",
    .never_waits = true,
    .lseek = dir_lseek,
    .stat = layer_stat,
    .getdents = layer_getdents,
    .poll = always_ready,
    .release = layer_put,
    .clone = layer_clone,
};

struct file *file_layer_new(struct memfs *fs, struct memfs_node *node, int flags,
                            const char *path) {
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

int file_layer_anon(struct memfs *fs, uint32_t perms, int flags, const char *path,
                    struct file **out) {
    static uint64_t seq; /* shared by every sandbox of the process */
    struct memfs_node *root = memfs_root(fs), *node = NULL;
    char name[32];
    int err;
    do {
        snprintf(name, sizeof(name), ".anon-%llu",
                 (unsigned long long)__atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED));
        err = memfs_mknode(fs, root, name, S_IFREG | (perms & 07777), NULL, &node);
    } while (err == -EEXIST);
    if (err == 0 && (err = memfs_unlink(fs, root, name, 0)) < 0)
        memfs_node_put(fs, node);
    memfs_node_put(fs, root);
    if (err < 0)
        return err;
    *out = file_layer_new(fs, node, flags, path);
    return *out ? 0 : -ENOMEM;
}

struct memfs *file_layer_fs(const struct file *f) {
    return f->ops == &layer_file_ops_owned || f->ops == &layer_dir_ops_owned
               ? ((struct layer_priv *)f->priv)->fs
               : NULL;
}

static struct file *layer_clone(struct file *f, struct fdt_clone_ctx *ctx) {
    struct memfs *fs = fs_view_layer(ctx->view);
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
    struct fs_view *view;
    const char *dir; /* the synthesized directory's guest path */
    uint64_t skip, index;
    bool full;
};

/* d_ino and d_type of an entry are what lstat of it through the view says,
 * so that a listing agrees with stat (a root such as /lib64 can be a link). */
static void vdir_entry_attrs(struct vdir_ctx *c, const char *name, unsigned char *type,
                             uint64_t *ino) {
    char path[PATH_MAX];
    struct view_node n;
    struct stat st;
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", strcmp(c->dir, "/") ? c->dir : "", name) >=
        sizeof(path))
        return;
    if (view_resolve(c->view, "/", path, false, &n) == 0 && view_stat(c->view, &n, &st) == 0) {
        *type = (unsigned char)IFTODT(st.st_mode);
        *ino = st.st_ino;
    }
    view_node_release(c->view, &n);
}

static int vdir_emit(void *p, const char *name, unsigned char type) {
    struct vdir_ctx *c = p;
    uint64_t i = c->index++;
    if (i < c->skip)
        return 0;
    uint64_t ino = 0x1000 + i;
    vdir_entry_attrs(c, name, &type, &ino);
    if (put_dirent(c->out, ino, (int64_t)(i + 1), type, name)) {
        c->full = true;
        return 1;
    }
    return 0;
}

static int64_t vdir_getdents(struct sandbox *sb, struct file *f, void *buf, uint64_t len) {
    struct dirent_out o = {buf, len, 0};
    struct vdir_ctx c = {&o, sb->view, f->path, f->dir_cookie, 0, false};
    /* "." and ".." are indexes 0 and 1. */
    vdir_emit(&c, ".", 4);
    if (!c.full)
        vdir_emit(&c, "..", 4);
    if (!c.full && !strcmp(f->path, "/dev/pts")) {
        int idx[PTY_MAX], n = file_pty_indexes(sb, idx, PTY_MAX);
        for (int i = 0; i < n && !c.full; i++) {
            char name[16];
            snprintf(name, sizeof(name), "%d", idx[i]);
            vdir_emit(&c, name, 2 /* DT_CHR */);
        }
    } else if (!c.full && !strcmp(f->path, "/proc")) {
        for (unsigned k = 0; k < SB_MAX_PROCS && !c.full; k++) { /* the live processes, "self"... */
            char pid[16];
            snprintf(pid, sizeof(pid), "%u", sb->procs->slot[k].pid);
            if (sb_proc_slot_live(&sb->procs->slot[k]))
                vdir_emit(&c, pid, 4 /* DT_DIR */);
        }
        if (!c.full)
            view_vdir_list(sb->view, f->path, vdir_emit, &c);
    } else if (!c.full && view_proc_dir(f->path) == VP_TASKS) {
        const char *rest;
        struct sandbox *of = sb_proc_of_path(sb, f->path, &rest);
        for (unsigned i = 0; of && i < LAYOUT_MAX_VCPUS && !c.full; i++) {
            const struct sb_thread *th = of->threads[i];
            char name[16];
            snprintf(name, sizeof(name), "%u", th ? th->tid : 0);
            if (th && th->state != SB_T_EXITED)
                vdir_emit(&c, name, 4 /* DT_DIR */);
        }
    } else if (!c.full && !strcmp(f->path, "/proc/self/fd")) {
        /* the open descriptors, as the fd table holds them now */
        for (int fd = 0; fd < sb->fdt.cap && !c.full; fd++) {
            char name[16];
            snprintf(name, sizeof(name), "%d", fd);
            if (sb->fdt.slots[fd].f)
                vdir_emit(&c, name, 10 /* DT_LNK */);
        }
    } else if (!c.full) {
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

static int vdir_stat(struct sandbox *sb, struct file *f, struct stat *st) {
    struct view_node n = {.kind = VK_VDIR};
    snprintf(n.path, sizeof(n.path), "%s", f->path);
    return view_stat(sb->view, &n, st);
}

static struct file *vdir_clone(struct file *f, struct fdt_clone_ctx *ctx) {
    struct file *c = file_vdir_new(f->flags, f->path);
    if (c)
        c->dir_cookie = f->dir_cookie;
    return c;
}

static const struct file_ops vdir_ops = {
    .kind = "vdir",
    .never_waits = true,
    .lseek = dir_lseek,
    .stat = vdir_stat,
    .getdents = vdir_getdents,
    .poll = always_ready,
    .clone = vdir_clone,
};

struct file *file_vdir_new(int flags, const char *path) { return file_new(&vdir_ops, flags, path); }

bool file_is_dir(const struct file *f) {
    return f->ops == &vdir_ops || f->ops == &host_dir_ops || f->ops == &layer_dir_ops_owned;
}
