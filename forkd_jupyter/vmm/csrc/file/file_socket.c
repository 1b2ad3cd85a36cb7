/* In-sandbox socket pairs (socketpair(AF_UNIX, SOCK_STREAM)): two ends, a
 * ring each way, living in the VMM; nothing reaches the host. What asyncio's
 * self-pipe, signal.set_wakeup_fd and multiprocessing's pipes use.
 *
 * Invariants: a pair is freed when both ends have no open description left
 * (ends[] counts descriptions; dup shares one). to[i] holds the bytes waiting
 * for end i. A branch gets its own copy of the pair, buffered bytes included,
 * shared by its copies of the ends (fdt_clone_shared_copy). One guest thread: a
 * blocking call that cannot progress ends only by a signal, as on Linux. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/sandbox.h"
#include "file/file_kinds.h"
#include "file/ring.h"

struct sock_pair {
    struct ring to[2];
    int ends[2];     /* open descriptions of each end */
    bool shut_wr[2]; /* end i will send no more */
    bool shut_rd[2]; /* end i will receive no more */
    uint64_t ino[2]; /* counters, never host addresses */
};

/* f->priv: the pair; which end: f->dir_cookie (0 or 1). */
static struct sock_pair *pair_of(const struct file *f) { return f->priv; }
static int side_of(const struct file *f) { return (int)f->dir_cookie; }

static bool peer_done(const struct sock_pair *p, int side) {
    return p->ends[!side] == 0 || p->shut_wr[!side] || p->shut_rd[side];
}

int64_t file_socket_recv(struct sandbox *sb, struct file *f, void *buf, uint64_t len, int flags) {
    struct sock_pair *p = pair_of(f);
    int side = side_of(f);
    while (p->to[side].len == 0) {
        if (peer_done(p, side) || len == 0)
            return 0;
        if ((f->flags & O_NONBLOCK) || (flags & MSG_DONTWAIT))
            return -EAGAIN;
        int err = sb_wait_fd(sb, -1, 0, -1);
        if (err < 0)
            return err;
    }
    return (int64_t)ring_get(&p->to[side], buf, len, flags & MSG_PEEK);
}

/* f's peer takes no more: shut down on either side, or closed. */
static bool peer_gone(const void *file) {
    const struct file *f = file;
    struct sock_pair *p = pair_of(f);
    int side = side_of(f);
    return p->shut_wr[side] || p->ends[!side] == 0 || p->shut_rd[!side];
}

int64_t file_socket_send(struct sandbox *sb, struct file *f, const void *buf, uint64_t len,
                         int flags) {
    struct sock_pair *p = pair_of(f);
    int side = side_of(f);
    if (len == 0 && !peer_gone(f))
        return 0;
    bool nonblock = (f->flags & O_NONBLOCK) || (flags & MSG_DONTWAIT);
    int64_t r = ring_write(sb, &p->to[!side], buf, len, nonblock, peer_gone, f);
    if (r == -EPIPE && !(flags & MSG_NOSIGNAL))
        sb_raise(sb, SIGPIPE);
    return r;
}

int file_socket_shutdown(struct file *f, int how) {
    struct sock_pair *p = pair_of(f);
    if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
        return -EINVAL;
    if (how != SHUT_WR)
        p->shut_rd[side_of(f)] = true;
    if (how != SHUT_RD)
        p->shut_wr[side_of(f)] = true;
    return 0;
}

uint64_t file_socket_pending(const struct file *f, bool outgoing) {
    const struct sock_pair *p = pair_of(f);
    return p->to[outgoing ? !side_of(f) : side_of(f)].len;
}

static int64_t sock_read(struct sandbox *sb, struct file *f, void *buf, uint64_t len) {
    return file_socket_recv(sb, f, buf, len, 0);
}

static int64_t sock_write(struct sandbox *sb, struct file *f, const void *buf, uint64_t len) {
    return file_socket_send(sb, f, buf, len, 0);
}

static short sock_poll(struct sandbox *sb, struct file *f, short events) {
    struct sock_pair *p = pair_of(f);
    int side = side_of(f);
    short r = 0;
    if (p->to[side].len || peer_done(p, side))
        r |= POLLIN;
    if (peer_done(p, side))
        r |= POLLRDHUP;
    if (!p->shut_wr[side] && p->ends[!side] && !p->shut_rd[!side] && ring_space(&p->to[!side]))
        r |= POLLOUT;
    if (p->ends[!side] == 0 || (p->shut_wr[side] && peer_done(p, side)))
        r |= POLLHUP;
    return r & (events | POLLHUP | POLLERR);
}

static int sock_stat(struct sandbox *sb, struct file *f, struct stat *st) {
    return file_anon_stat(st, S_IFSOCK | 0777, pair_of(f)->ino[side_of(f)], 0x8);
}

static int64_t sock_ioctl(struct sandbox *sb, struct file *f, uint64_t req, uint64_t arg) {
    if (req != 0x541B && req != 0x5411) /* FIONREAD (SIOCINQ), SIOCOUTQ */
        return -ENOTTY;
    int n = (int)file_socket_pending(f, req == 0x5411);
    return mm_copy_to(&sb->mm, arg, &n, sizeof(n));
}

static void sock_release(struct file *f) {
    struct sock_pair *p = pair_of(f);
    if (--p->ends[side_of(f)] == 0 && p->ends[!side_of(f)] == 0)
        free(p);
}

static const struct file_ops sock_ops;

/* Makes f a description of end side of p (counted in p->ends). */
static void attach_end(struct file *f, struct sock_pair *p, int side) {
    f->priv = p;
    f->dir_cookie = (uint64_t)side;
    p->ends[side]++;
}

static struct file *end_file(int flags) {
    return file_new(&sock_ops, O_RDWR | (flags & O_NONBLOCK), NULL);
}

static struct file *sock_clone(struct file *f, struct fdt_clone_ctx *ctx) {
    struct file *c = end_file(f->flags);
    bool fresh;
    struct sock_pair *copy =
        c ? fdt_clone_shared_copy(ctx, pair_of(f), sizeof(*copy), &fresh) : NULL;
    if (!copy) {
        free(c);
        return NULL;
    }
    if (fresh)
        copy->ends[0] = copy->ends[1] = 0; /* counted as its ends are cloned */
    attach_end(c, copy, side_of(f));
    return c;
}

static const struct file_ops sock_ops = {
    .kind = "socket",
    .read = sock_read,
    .write = sock_write,
    .stat = sock_stat,
    .poll = sock_poll,
    .ioctl = sock_ioctl,
    .release = sock_release,
    .clone = sock_clone,
};

bool file_is_socket(const struct file *f) { return f->ops == &sock_ops; }

int file_socketpair_new(int flags, struct file *out[2]) {
    struct sock_pair *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    static uint64_t next_ino; /* shared by every sandbox of the process */
    p->ino[0] = __atomic_add_fetch(&next_ino, 1, __ATOMIC_RELAXED);
    p->ino[1] = __atomic_add_fetch(&next_ino, 1, __ATOMIC_RELAXED);
    out[0] = end_file(flags);
    out[1] = end_file(flags);
    if (!out[0] || !out[1]) {
        free(out[0]);
        free(out[1]);
        free(p);
        return -ENOMEM;
    }
    attach_end(out[0], p, 0);
    attach_end(out[1], p, 1);
    return 0;
}
