/* Standard streams and the control channel (see file_stdio.h). */
#define _GNU_SOURCE
#include "file/file_stdio.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <string.h>
#include <unistd.h>

static int stat_char(struct sandbox *sb, struct file *f, struct stat *st)
{
    memset(st, 0, sizeof(*st));
    st->st_mode = S_IFIFO | 0600;
    st->st_nlink = 1;
    st->st_uid = st->st_gid = 1000;
    st->st_blksize = 4096;
    st->st_ino = 0x100 + (uint64_t)(uintptr_t)f->priv;
    st->st_dev = 0x13;
    return 0;
}

static int64_t stdin_read(struct sandbox *sb, struct file *f, void *buf, uint64_t len) { return 0; }

static struct file *stdio_clone(struct file *f, struct fdt_clone_ctx *ctx);

static const struct file_ops stdin_ops = {
    .kind = "stdin",
    .read = stdin_read,
    .stat = stat_char,
    .clone = stdio_clone,
};

static int64_t out_write(struct sandbox *sb, struct file *f, const void *buf, uint64_t len)
{
    enum sb_channel ch = (enum sb_channel)(uintptr_t)f->priv;
    uint64_t done = 0;
    while (done < len) {
        size_t n = (size_t)FJ_MIN(len - done, 1u << 20);
        int err = sb_emit(sb, ch, (const char *)buf + done, n);
        if (err < 0)
            return done ? (int64_t)done : err;
        done += n;
    }
    return (int64_t)len;
}

static short out_poll(struct sandbox *sb, struct file *f, short events) { return events & POLLOUT; }

static const struct file_ops out_ops = {
    .kind = "stdout",
    .write = out_write,
    .stat = stat_char,
    .poll = out_poll,
    .clone = stdio_clone,
};

static int64_t ctl_read(struct sandbox *sb, struct file *f, void *buf, uint64_t len)
{
    for (;;) {
        ssize_t r = recv(f->host_fd, buf, len, MSG_DONTWAIT);
        if (r >= 0)
            return r;
        if (errno == ECONNRESET)
            return 0;
        if (errno != EAGAIN && errno != EINTR)
            return -errno;
        if (f->flags & O_NONBLOCK)
            return -EAGAIN;
        int err = sb_wait_fd(sb, f->host_fd, POLLIN, -1);
        if (err < 0)
            return err;
    }
}

static int64_t ctl_write(struct sandbox *sb, struct file *f, const void *buf, uint64_t len)
{
    int err = sb_emit(sb, SB_CH_CTL, buf, (size_t)len);
    return err < 0 ? err : (int64_t)len;
}

static short ctl_poll(struct sandbox *sb, struct file *f, short events)
{
    struct pollfd p = {.fd = f->host_fd, .events = POLLIN};
    short ready = events & POLLOUT;
    if (poll(&p, 1, 0) > 0)
        ready |= p.revents & (POLLIN | POLLHUP);
    return ready;
}

static int ctl_wait_fd(struct file *f) { return f->host_fd; }

static const struct file_ops ctl_ops = {
    .kind = "control",
    .read = ctl_read,
    .write = ctl_write,
    .stat = stat_char,
    .poll = ctl_poll,
    .wait_fd = ctl_wait_fd,
    .clone = stdio_clone,
};

static struct file *make(const struct file_ops *ops, int flags, uintptr_t priv)
{
    struct file *f = file_new(ops, flags, NULL);
    if (f)
        f->priv = (void *)priv;
    return f;
}

/* A branch's control channel is not connected until file_stdio_attach_ctl. */
static struct file *stdio_clone(struct file *f, struct fdt_clone_ctx *ctx)
{
    struct file *c = make(f->ops, f->flags, (uintptr_t)f->priv);
    if (c)
        c->off = f->off;
    return c;
}

void file_stdio_attach_ctl(struct fdt *t, int host_fd)
{
    for (int fd = 0; fd < t->cap; fd++) {
        struct file *f = t->slots[fd].f;
        if (f && f->ops == &ctl_ops && f->host_fd < 0)
            f->host_fd = fcntl(host_fd, F_DUPFD_CLOEXEC, 3);
    }
}

struct file *file_stdio_stdin(void) { return make(&stdin_ops, O_RDONLY, 0); }
struct file *file_stdio_out(enum sb_channel ch) { return make(&out_ops, O_WRONLY, (uintptr_t)ch); }
struct file *file_stdio_ctl(int host_fd)
{
    struct file *f = make(&ctl_ops, O_RDWR, 3);
    if (f && (f->host_fd = fcntl(host_fd, F_DUPFD_CLOEXEC, 3)) < 0) {
        file_put(f);
        return NULL;
    }
    return f;
}

struct file *file_stdio_restore(const char *kind, uintptr_t priv, int flags)
{
    const struct file_ops *ops = !strcmp(kind, stdin_ops.kind) ? &stdin_ops
                                 : !strcmp(kind, out_ops.kind) ? &out_ops
                                 : !strcmp(kind, ctl_ops.kind) ? &ctl_ops
                                                               : NULL;
    if (!ops || (ops == &out_ops && priv != SB_CH_STDOUT && priv != SB_CH_STDERR))
        return NULL;
    return make(ops, flags, ops == &ctl_ops ? 3 : priv);
}
