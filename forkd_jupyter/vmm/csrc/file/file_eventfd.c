/* eventfd(2) objects: a 64-bit counter living in the VMM.
 *
 * Invariants: the counter never exceeds EVENTFD_MAX; a read takes the whole
 * counter (or 1 with EFD_SEMAPHORE) and never returns 0. One guest thread:
 * a blocking read of 0 or a write that would overflow ends only by a
 * signal. A branch gets a copy of the counter. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>

#include "core/sandbox.h"
#include "file/file_kinds.h"

#define EVENTFD_MAX 0xfffffffffffffffeULL

struct eventfd_state {
    uint64_t count;
    bool semaphore;
    uint64_t ino;
};

static int64_t efd_read(struct sandbox *sb, struct file *f, void *buf, uint64_t len)
{
    struct eventfd_state *e = f->priv;
    if (len < 8)
        return -EINVAL;
    while (e->count == 0) {
        if (f->flags & O_NONBLOCK)
            return -EAGAIN;
        int err = sb_wait_fd(sb, -1, 0, -1);
        if (err < 0)
            return err;
    }
    uint64_t v = e->semaphore ? 1 : e->count;
    e->count -= v;
    memcpy(buf, &v, 8);
    return 8;
}

static int64_t efd_write(struct sandbox *sb, struct file *f, const void *buf, uint64_t len)
{
    struct eventfd_state *e = f->priv;
    uint64_t v;
    if (len < 8)
        return -EINVAL;
    memcpy(&v, buf, 8);
    if (v == UINT64_MAX)
        return -EINVAL;
    while (EVENTFD_MAX - e->count < v) {
        if (f->flags & O_NONBLOCK)
            return -EAGAIN;
        int err = sb_wait_fd(sb, -1, 0, -1);
        if (err < 0)
            return err;
    }
    e->count += v;
    return 8;
}

static short efd_poll(struct sandbox *sb, struct file *f, short events)
{
    struct eventfd_state *e = f->priv;
    short r = (e->count ? POLLIN : 0) | (e->count < EVENTFD_MAX ? POLLOUT : 0);
    return r & events;
}

static int efd_stat(struct sandbox *sb, struct file *f, struct stat *st)
{
    /* An anonymous inode: no file type bits, as on Linux. */
    return file_anon_stat(st, 0600, ((struct eventfd_state *)f->priv)->ino, 0xe);
}

static void efd_release(struct file *f) { free(f->priv); }

static const struct file_ops efd_ops;

static struct file *efd_make(const struct eventfd_state *from, int flags)
{
    return file_new_with(&efd_ops, O_RDWR | (flags & O_NONBLOCK), from, sizeof(*from));
}

/* One description per eventfd object here (dup shares the description), so
 * the state is copied with it. */
static struct file *efd_clone(struct file *f, struct fdt_clone_ctx *ctx)
{
    return efd_make(f->priv, f->flags);
}

static const struct file_ops efd_ops = {
    .kind = "eventfd",
    .read = efd_read,
    .write = efd_write,
    .stat = efd_stat,
    .poll = efd_poll,
    .release = efd_release,
    .clone = efd_clone,
};

struct file *file_eventfd_new(uint64_t initial, int flags)
{
    static uint64_t next_ino;
    struct eventfd_state e = {
        .count = initial,
        .semaphore = flags & EFD_SEMAPHORE,
        .ino = __atomic_add_fetch(&next_ino, 1, __ATOMIC_RELAXED),
    };
    return efd_make(&e, flags);
}
