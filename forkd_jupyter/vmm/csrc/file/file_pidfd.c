/* Process descriptors (pidfd_open): a descriptor naming one process of the
 * sandbox, readable once that process has ended (a zombie or reaped), as
 * asyncio's pidfd child watcher and os.waitid(P_PIDFD) use it. Process ids
 * are never reused within a sandbox, so the pid alone names the process. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>

#include "core/proc.h"
#include "file/file_kinds.h"

static const struct file_ops pidfd_ops;

static uint32_t pid_of(const struct file *f) { return (uint32_t)(uintptr_t)f->priv; }

static short pidfd_poll(struct sandbox *sb, struct file *f, short events) {
    return sb_proc_find(sb, pid_of(f)) ? 0 : (short)(POLLIN & events);
}

static int pidfd_stat(struct sandbox *sb, struct file *f, struct stat *st) {
    return file_anon_stat(st, S_IFREG | 0600, pid_of(f), 0xe);
}

static struct file *pidfd_clone(struct file *f, struct fdt_clone_ctx *ctx) {
    struct file *c = file_new(&pidfd_ops, f->flags, NULL);
    if (c)
        c->priv = f->priv;
    return c;
}

static const struct file_ops pidfd_ops = {
    .kind = "pidfd",
    .stat = pidfd_stat,
    .poll = pidfd_poll,
    .clone = pidfd_clone,
};

struct file *file_pidfd_new(uint32_t pid, int flags) {
    struct file *f = file_new(&pidfd_ops, O_RDWR | (flags & O_NONBLOCK), NULL);
    if (f)
        f->priv = (void *)(uintptr_t)pid;
    return f;
}

int64_t file_pidfd_pid(const struct file *f) {
    return f && f->ops == &pidfd_ops ? (int64_t)pid_of(f) : -1;
}
