/* A socket's life and its file ops (file/sock.h), and the data path of a
 * stream connection: a ring each way, descriptors in flight beside the
 * bytes they came with. What asyncio's self-pipe, multiprocessing's
 * connections and a local server's clients use. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "file/file_kinds.h"
#include "file/sock.h"

static const struct file_ops sock_ops;

struct sock *sock_of(const struct file *f) { return f && f->ops == &sock_ops ? f->priv : NULL; }
bool file_is_socket(const struct file *f) { return sock_of(f) != NULL; }

/* The description is gone: the name is free again, waiting connections and
 * datagrams are dropped, the peer sees the end of the stream. */
static void sock_close(struct sock *s) {
    s->closed = true;
    sock_unbind(s);
    while (s->pending) {
        struct sock_pending *w = s->pending;
        s->pending = w->next;
        file_put(w->conn);
        free(w);
    }
    s->n_pending = 0;
    if (s->pair)
        sock_pair_release(s->pair, s->side);
    s->pair = NULL;
    sock_put(s->dpeer);
    s->dpeer = NULL;
    sock_dgram_drop_all(s);
    sock_put(s);
}

struct file *sock_file_new(struct sock *s, int flags) {
    struct file *f = file_new(&sock_ops, O_RDWR | (flags & O_NONBLOCK), NULL);
    if (!f) {
        sock_close(s);
        return NULL;
    }
    f->priv = s;
    return f;
}

bool sock_nonblocking(const struct file *f, int flags) {
    return (f->flags & O_NONBLOCK) || (flags & MSG_DONTWAIT);
}

/* ------------------------------------------------------------ streams */

static bool peer_done(const struct sock_pair *p, int side) {
    return p->ends[!side] == 0 || p->shut_wr[!side] || p->shut_rd[side];
}

int64_t sock_stream_recv(struct sandbox *sb, struct file *f, void *buf, uint64_t len, int flags,
                         struct sock_rights **rights) {
    struct sock *s = sock_of(f);
    if (!s->pair)
        return s->listening || s->type == SOCK_STREAM ? -ENOTCONN : -EINVAL;
    struct sock_pair *p = s->pair;
    int side = s->side;
    while (p->to[side].len == 0) {
        if (peer_done(p, side) || len == 0)
            return 0;
        if (sock_nonblocking(f, flags))
            return -EAGAIN;
        int err = sb_wait_fd(sb, -1, 0, -1);
        if (err < 0)
            return err;
    }
    bool peek = flags & MSG_PEEK;
    uint64_t pos = p->got[side];
    struct sock_rights *r = p->rights[side];
    if (r && r->at <= pos) { /* these came with the bytes read now */
        if (!peek) {
            p->rights[side] = r->next;
            r->next = NULL;
            if (rights)
                *rights = r;
            else
                sock_rights_free(r);
        }
        r = p->rights[side];
        if (peek && r)
            r = r->next;
    }
    if (r) /* a read never runs into the next descriptors' data */
        len = FJ_MIN(len, r->at - pos);
    uint64_t n = ring_get(&p->to[side], buf, len, peek);
    if (!peek)
        p->got[side] += n;
    return (int64_t)n;
}

/* The peer of file takes no more: shut down on either side, or closed. */
static bool peer_gone(const void *file) {
    const struct sock *s = sock_of(file);
    const struct sock_pair *p = s->pair;
    return p->shut_wr[s->side] || p->ends[!s->side] == 0 || p->shut_rd[!s->side];
}

int64_t sock_stream_send(struct sandbox *sb, struct file *f, const void *buf, uint64_t len,
                         int flags, struct sock_rights **rights) {
    struct sock *s = sock_of(f);
    if (!s->pair && s->domain == AF_UNIX)
        return -ENOTCONN;
    if (!s->pair) { /* TCP, as Linux answers it */
        if (!(flags & MSG_NOSIGNAL))
            sb_raise(sb, SIGPIPE);
        return -EPIPE;
    }
    struct sock_pair *p = s->pair;
    int to = !s->side;
    if (len == 0 && !peer_gone(f))
        return 0;
    struct sock_rights **tail = NULL;
    if (rights && *rights) { /* in flight from the first byte of this data on */
        tail = &p->rights[to];
        while (*tail)
            tail = &(*tail)->next;
        (*rights)->at = p->got[to] + p->to[to].len;
        *tail = *rights;
    }
    int64_t r = ring_write(sb, &p->to[to], buf, len, sock_nonblocking(f, flags), peer_gone, f);
    if (tail && r > 0)
        *rights = NULL; /* taken over */
    else if (tail)
        *tail = NULL; /* nothing went with them: the caller keeps them */
    if (r == -EPIPE && !(flags & MSG_NOSIGNAL))
        sb_raise(sb, SIGPIPE);
    return r;
}

/* ------------------------------------------------------------ file ops */

static int64_t sock_read(struct sandbox *sb, struct file *f, void *buf, uint64_t len) {
    struct sock *s = sock_of(f);
    if (s->type != SOCK_STREAM) {
        bool truncated;
        return sock_dgram_recv(sb, s, sock_nonblocking(f, 0), buf, len, 0, NULL, NULL, &truncated);
    }
    return sock_stream_recv(sb, f, buf, len, 0, NULL);
}

static int64_t sock_write(struct sandbox *sb, struct file *f, const void *buf, uint64_t len) {
    struct sock *s = sock_of(f);
    if (s->type != SOCK_STREAM)
        return sock_dgram_send(sb, s, sock_nonblocking(f, 0), NULL, NULL, buf, len, NULL);
    return sock_stream_send(sb, f, buf, len, 0, NULL);
}

static short stream_poll(const struct sock *s) {
    const struct sock_pair *p = s->pair;
    int side = s->side;
    if (s->listening)
        return s->n_pending ? POLLIN : 0;
    if (!p) /* not connected */
        return POLLOUT | POLLHUP;
    short r = 0;
    if (p->to[side].len || peer_done(p, side))
        r |= POLLIN;
    if (peer_done(p, side))
        r |= POLLRDHUP;
    if (!p->shut_wr[side] && p->ends[!side] && !p->shut_rd[!side] && ring_space(&p->to[!side]))
        r |= POLLOUT;
    if (p->ends[!side] == 0 || (p->shut_wr[side] && peer_done(p, side)))
        r |= POLLHUP;
    return r;
}

static short dgram_poll(const struct sock *s) {
    short r = s->rx ? POLLIN : 0;
    if (!s->dpeer || s->dpeer->closed || s->dpeer->rx_bytes < SOCK_DGRAM_QUEUE)
        r |= POLLOUT;
    return r;
}

static short sock_poll(struct sandbox *sb, struct file *f, short events) {
    struct sock *s = sock_of(f);
    short r = s->type == SOCK_STREAM ? stream_poll(s) : dgram_poll(s);
    if (s->so_error)
        r |= POLLERR;
    return r & (events | POLLHUP | POLLERR);
}

static int sock_stat(struct sandbox *sb, struct file *f, struct stat *st) {
    return file_anon_stat(st, S_IFSOCK | 0777, sock_of(f)->ino, 0x8);
}

static int64_t sock_ioctl(struct sandbox *sb, struct file *f, uint64_t req, uint64_t arg) {
    struct sock *s = sock_of(f);
    int n;
    if (req == 0x541B) /* FIONREAD (SIOCINQ): bytes waiting, or the next datagram's size */
        n = s->type != SOCK_STREAM ? (s->rx ? (int)s->rx->len : 0)
            : s->pair              ? (int)s->pair->to[s->side].len
                                   : 0;
    else if (req == 0x5411) /* SIOCOUTQ: bytes the peer has not taken */
        n = s->pair ? (int)s->pair->to[!s->side].len : 0;
    else
        return sock_if_ioctl(sb, req, arg);
    return mm_copy_to(&sb->mm, arg, &n, sizeof(n));
}

static void sock_release(struct file *f) { sock_close(sock_of(f)); }

static struct file *sock_clone(struct file *f, struct fdt_clone_ctx *ctx) {
    struct sock *copy = sock_copy(ctx, sock_of(f));
    return copy ? sock_file_new(copy, f->flags) : NULL;
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

int file_socketpair_new(int type, int flags, struct file *out[2]) {
    struct sock *a = sock_new(AF_UNIX, type, 0), *b = sock_new(AF_UNIX, type, 0);
    int err = a && b ? 0 : -ENOMEM;
    if (err == 0 && type == SOCK_STREAM) {
        err = sock_connect_pair(a, b);
    } else if (err == 0) { /* datagrams: each names the other as its peer */
        a->dpeer = b;
        b->dpeer = a;
        sock_get(a);
        sock_get(b);
        a->connected = b->connected = true;
    }
    if (err < 0) {
        if (a)
            sock_close(a);
        if (b)
            sock_close(b);
        return err;
    }
    if (!(out[0] = sock_file_new(a, flags))) {
        sock_close(b);
        return -ENOMEM;
    }
    if (!(out[1] = sock_file_new(b, flags))) {
        file_put(out[0]);
        return -ENOMEM;
    }
    return 0;
}
