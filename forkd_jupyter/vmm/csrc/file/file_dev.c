/* Devices of the view: /dev/null, /dev/zero, /dev/full, /dev/random and
 * /dev/urandom (both from getrandom). Stateless: a clone shares nothing. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "file/file_kinds.h"
#include "core/sandbox.h"

static short dev_poll(struct sandbox *sb, struct file *f, short events) {
    return events & (POLLIN | POLLOUT);
}

enum dev_kind { DEV_NULL, DEV_ZERO, DEV_FULL, DEV_RANDOM };

static enum dev_kind dev_of(struct file *f) { return (enum dev_kind)(uintptr_t)f->priv; }

static int64_t dev_read(struct sandbox *sb, struct file *f, void *buf, uint64_t len) {
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

static int64_t dev_pread(struct sandbox *sb, struct file *f, void *buf, uint64_t len,
                         uint64_t off) {
    return dev_read(sb, f, buf, len);
}

static int64_t dev_write(struct sandbox *sb, struct file *f, const void *buf, uint64_t len) {
    return dev_of(f) == DEV_FULL ? -ENOSPC : (int64_t)len;
}

static int64_t dev_pwrite(struct sandbox *sb, struct file *f, const void *buf, uint64_t len,
                          uint64_t off) {
    return dev_write(sb, f, buf, len);
}

static int64_t dev_lseek(struct sandbox *sb, struct file *f, int64_t off, int whence) { return 0; }

static int dev_stat(struct sandbox *sb, struct file *f, struct stat *st) {
    struct view_node n = {.kind = VK_DEV};
    snprintf(n.path, sizeof(n.path), "%s", f->path ? f->path : "/dev/null");
    return view_stat(sb->view, &n, st);
}

static struct file *dev_clone(struct file *f, struct fdt_clone_ctx *ctx) {
    struct file *c = file_new(f->ops, f->flags, f->path);
    if (c)
        c->priv = f->priv;
    return c;
}

static const struct file_ops dev_ops = {
    .kind = "device",
    .never_waits = true,
    .read = dev_read,
    .write = dev_write,
    .pread = dev_pread,
    .pwrite = dev_pwrite,
    .lseek = dev_lseek,
    .stat = dev_stat,
    .poll = dev_poll,
    .clone = dev_clone,
};

struct file *file_dev_new(const char *name, int flags, const char *path) {
    enum dev_kind k = !strcmp(name, "null")   ? DEV_NULL
                      : !strcmp(name, "full") ? DEV_FULL
                      : !strcmp(name, "zero") ? DEV_ZERO
                                              : DEV_RANDOM;
    struct file *f = file_new(&dev_ops, flags, path);
    if (f)
        f->priv = (void *)(uintptr_t)k;
    return f;
}
