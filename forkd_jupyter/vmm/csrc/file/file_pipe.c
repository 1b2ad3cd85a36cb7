/* In-sandbox pipes (pipe, pipe2): a ring buffer shared by the two ends;
 * and FIFOs of the writable layer (mkfifo), whose pipe is made at the
 * node's first open and found by the node while any end is open.
 *
 * Invariants: pipe_buf is freed when its last end is released; readers and
 * writers count open descriptions of each end (dup shares a description;
 * an O_RDWR end of a FIFO counts as both). A FIFO's pipe is in the
 * registry, holding a reference to its node, exactly while it lives. A
 * branch gets its own copy of the buffer, contents included, shared by its
 * copies of the ends (fdt_clone_shared_copy): for a FIFO, a pipe of its
 * own, which the branch's later opens of the name do not join. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "core/sandbox.h"
#include "file/file_kinds.h"
#include "file/ring.h"
#include "fs/fs_memfs.h"

#define PIPE_MAX_BYTES (1u << 20) /* F_SETPIPE_SZ's limit: Linux's pipe-max-size */

struct pipe_buf {
    int readers, writers;
    uint64_t ino; /* a counter, never a host address */
    struct ring ring;
    /* A FIFO's: opens of each end so far (an open that finds the other end
     * closed waits for its next open, not for it to be open: it may close
     * again before the waiter runs),
     * its layer and node (a reference), the registry's next. */
    uint64_t reader_opens, writer_opens;
    struct memfs *fifo_fs;
    struct memfs_node *fifo;
    struct pipe_buf *next_fifo;
};

/* The FIFOs' pipes of every sandbox of the process, by (layer, node): a
 * branch's layer may share nodes with its source's, never a pipe. */
static pthread_mutex_t fifo_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pipe_buf *fifos;

static uint64_t new_ino(void) {
    static uint64_t next_ino; /* shared by every sandbox of the process */
    return __atomic_add_fetch(&next_ino, 1, __ATOMIC_RELAXED);
}

static void count_end(struct pipe_buf *p, int flags, int delta) {
    int mode = flags & O_ACCMODE;
    if (mode != O_WRONLY)
        p->readers += delta;
    if (mode != O_RDONLY)
        p->writers += delta;
}

static void free_pipe(struct pipe_buf *p) {
    if (p->fifo) {
        pthread_mutex_lock(&fifo_lock);
        struct pipe_buf **at = &fifos;
        while (*at != p)
            at = &(*at)->next_fifo;
        *at = p->next_fifo;
        pthread_mutex_unlock(&fifo_lock);
        memfs_node_put(p->fifo_fs, p->fifo);
    }
    ring_free(&p->ring);
    free(p);
}

/* One guest thread: a read on an empty pipe whose writer is open, or a write
 * to a full one, can only end by a signal, as on Linux (no other thread could
 * ever make progress). Non-blocking ends get EAGAIN. */
static int64_t pipe_read(struct sandbox *sb, struct file *f, void *buf, uint64_t len) {
    struct pipe_buf *p = f->priv;
    while (p->ring.len == 0) {
        if (p->writers == 0)
            return 0;
        if (f->flags & O_NONBLOCK)
            return -EAGAIN;
        int err = sb_wait_fd(sb, -1, 0, -1);
        if (err < 0)
            return err;
    }
    return (int64_t)ring_get(&p->ring, buf, len, false);
}

static bool no_readers(const void *p) { return ((const struct pipe_buf *)p)->readers == 0; }

static int64_t pipe_write(struct sandbox *sb, struct file *f, const void *buf, uint64_t len) {
    struct pipe_buf *p = f->priv;
    int64_t r = ring_write(sb, &p->ring, buf, len, f->flags & O_NONBLOCK, no_readers, p);
    if (r == -EPIPE)
        sb_raise(sb, SIGPIPE);
    return r;
}

static short pipe_poll(struct sandbox *sb, struct file *f, short events) {
    struct pipe_buf *p = f->priv;
    short r = 0;
    int mode = f->flags & O_ACCMODE;
    if (mode != O_WRONLY) {
        if (p->ring.len || !p->writers)
            r |= POLLIN;
        if (!p->writers)
            r |= POLLHUP;
    }
    if (mode != O_RDONLY) {
        if (ring_space(&p->ring))
            r |= POLLOUT;
        if (!p->readers)
            r |= POLLERR;
    }
    return r & (events | POLLHUP | POLLERR);
}

static int pipe_stat(struct sandbox *sb, struct file *f, struct stat *st) {
    return file_anon_stat(st, S_IFIFO | 0600, ((struct pipe_buf *)f->priv)->ino, 0xc);
}

static void pipe_release(struct file *f) {
    struct pipe_buf *p = f->priv;
    count_end(p, f->flags, -1);
    if (!p->readers && !p->writers)
        free_pipe(p);
}

static int64_t pipe_ioctl(struct sandbox *sb, struct file *f, uint64_t req, uint64_t arg) {
    if (req == 0x541B) { /* FIONREAD */
        int n = (int)((struct pipe_buf *)f->priv)->ring.len;
        return mm_copy_to(&sb->mm, arg, &n, sizeof(n));
    }
    return -ENOTTY;
}

static const struct file_ops pipe_ops;

static struct file *pipe_clone(struct file *f, struct fdt_clone_ctx *ctx) {
    struct file *c = file_new(&pipe_ops, f->flags, NULL);
    bool fresh;
    struct pipe_buf *copy = c ? fdt_clone_shared_copy(ctx, f->priv, sizeof(*copy), &fresh) : NULL;
    if (!copy) {
        free(c);
        return NULL;
    }
    if (fresh) {
        (void)ring_own_copy(&copy->ring);  /* on ENOMEM the branch's pipe holds nothing */
        copy->readers = copy->writers = 0; /* counted as its ends are cloned */
        copy->fifo = NULL;                 /* not in the registry: the branch's own pipe */
        copy->fifo_fs = NULL;
        copy->next_fifo = NULL;
    }
    c->priv = copy;
    count_end(copy, f->flags, 1);
    return c;
}

static const struct file_ops pipe_ops = {
    .kind = "pipe",
    .read = pipe_read,
    .write = pipe_write,
    .stat = pipe_stat,
    .poll = pipe_poll,
    .ioctl = pipe_ioctl,
    .release = pipe_release,
    .clone = pipe_clone,
};

bool file_is_pipe(const struct file *f) { return f->ops == &pipe_ops; }

int64_t file_pipe_size(struct file *f, int64_t want) {
    if (!file_is_pipe(f))
        return -EBADF;
    struct ring *r = &((struct pipe_buf *)f->priv)->ring;
    if (want < 0)
        return (int64_t)ring_capacity(r);
    size_t size = 4096;
    while (size < (size_t)want && size < ((size_t)1 << 31))
        size <<= 1;
    if (size > PIPE_MAX_BYTES)
        return -EPERM; /* past pipe-max-size, as Linux's default */
    if (size < r->len)
        return -EBUSY;
    if (size > r->size) {
        uint8_t *old = r->data;
        if (ring_move_to(r, size) < 0)
            return -ENOMEM;
        free(old);
    }
    r->limit = size;
    return (int64_t)size;
}

struct file *file_pipe_reopen(struct file *f, int flags) {
    struct file *c = file_new(&pipe_ops, (flags & O_ACCMODE) | (flags & O_NONBLOCK), NULL);
    if (c) {
        c->priv = f->priv;
        count_end(c->priv, c->flags, 1);
    }
    return c;
}

int file_pipe_new(int flags, struct file *out[2]) {
    struct pipe_buf *p = calloc(1, sizeof(*p));
    if (p && ring_init(&p->ring, RING_BYTES) < 0) {
        free(p);
        p = NULL;
    }
    if (!p)
        return -ENOMEM;
    int extra = flags & O_NONBLOCK;
    out[0] = file_new(&pipe_ops, O_RDONLY | extra, NULL);
    out[1] = file_new(&pipe_ops, O_WRONLY | extra, NULL);
    if (!out[0] || !out[1]) {
        free(out[0]);
        free(out[1]);
        ring_free(&p->ring);
        free(p);
        return -ENOMEM;
    }
    p->ino = new_ino();
    out[0]->priv = out[1]->priv = p;
    p->readers = p->writers = 1;
    return 0;
}

/* The pipe of FIFO node of layer fs, made when none is open. */
static struct pipe_buf *fifo_pipe(struct memfs *fs, struct memfs_node *node) {
    pthread_mutex_lock(&fifo_lock);
    struct pipe_buf *p = fifos;
    while (p && (p->fifo_fs != fs || p->fifo != node))
        p = p->next_fifo;
    if (!p && (p = calloc(1, sizeof(*p))) && ring_init(&p->ring, RING_BYTES) < 0) {
        free(p);
        p = NULL;
    }
    if (p && !p->fifo) {
        p->ino = new_ino();
        p->fifo_fs = fs;
        p->fifo = node;
        memfs_node_get(node);
        p->next_fifo = fifos;
        fifos = p;
    }
    pthread_mutex_unlock(&fifo_lock);
    return p;
}

int file_fifo_open(struct sandbox *sb, struct memfs *fs, struct memfs_node *node, int flags,
                   struct file **out) {
    int mode = flags & O_ACCMODE;
    if (mode != O_RDONLY && mode != O_WRONLY && mode != O_RDWR)
        return -EINVAL;
    struct pipe_buf *p = fifo_pipe(fs, node);
    struct file *f = p ? file_new(&pipe_ops, mode | (flags & O_NONBLOCK), NULL) : NULL;
    if (!f) {
        if (p && !p->readers && !p->writers)
            free_pipe(p);
        return -ENOMEM;
    }
    f->priv = p;
    count_end(p, mode, 1);
    uint64_t seen = mode == O_RDONLY ? p->writer_opens : p->reader_opens;
    p->reader_opens += mode != O_WRONLY;
    p->writer_opens += mode != O_RDONLY;
    sb_notify(sb); /* an open of the other end waiting for this one looks again */
    int err = 0;
    if (mode == O_WRONLY && (flags & O_NONBLOCK) && !p->readers)
        err = -ENXIO;
    else if (!(flags & O_NONBLOCK) && mode != O_RDWR && !(mode == O_RDONLY ? p->writers : p->readers))
        while (err == 0 && (mode == O_RDONLY ? p->writer_opens : p->reader_opens) == seen)
            err = sb_wait_fd(sb, -1, 0, -1);
    if (err < 0) {
        file_put(f);
        return err;
    }
    *out = f;
    return 0;
}
