/* signalfd(2) descriptors: a read takes pending signals of the descriptor's
 * mask instead of their handlers running, as util-linux's script, systemd's
 * tools and event loops built on epoll use it.
 *
 * Invariants: the mask never holds SIGKILL or SIGSTOP; a read or a poll
 * sees the signals pending for the calling thread (its own, then its
 * process's), as on Linux, whichever process made the descriptor. A waiter
 * learns of a new signal its thread blocks through sb_notify
 * (sig_wake_targets, sb_proc_signal, tgkill), a blocking read through its
 * sigwait set, as rt_sigtimedwait. A branch gets a copy of the mask. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>

#include "core/sig.h"
#include "file/file_kinds.h"

struct signalfd_state {
    uint64_t mask; /* VMM bits (bit n: signal n) */
    uint64_t ino;
};

static const struct file_ops sfd_ops;

static uint64_t mask_of(const struct file *f) { return ((struct signalfd_state *)f->priv)->mask; }

static uint64_t pending_for_caller(struct sandbox *sb) {
    sb_take_external(sb);
    return sb_self(sb)->sig.pending | sb->sig.pending;
}

/* One record per signal taken, with what sig_info knows of it (script(1)
 * waits for its child only on a SIGCHLD record saying it ended). */
static int64_t take_records(struct sandbox *sb, uint64_t mask, struct signalfd_siginfo *out,
                            uint64_t max) {
    uint64_t n = 0;
    for (int signo; n < max && (signo = sig_take(sb, mask)) != 0; n++) {
        struct g_siginfo si;
        sig_info(sb, signo, &si);
        memset(&out[n], 0, sizeof(out[n]));
        out[n].ssi_signo = (uint32_t)signo;
        out[n].ssi_code = si.si_code;
        if (si.si_code == 1 && signo != SIGCHLD) {
            out[n].ssi_addr = si.f0;
        } else {
            out[n].ssi_pid = (uint32_t)si.f0;
            out[n].ssi_uid = (uint32_t)(si.f0 >> 32);
            out[n].ssi_status = signo == SIGCHLD ? (int32_t)si.f1 : 0;
        }
    }
    return (int64_t)n;
}

static int64_t sfd_read(struct sandbox *sb, struct file *f, void *buf, uint64_t len) {
    uint64_t max = len / sizeof(struct signalfd_siginfo);
    if (max == 0)
        return -EINVAL;
    struct sb_thread *t = sb_self(sb);
    for (;;) {
        (void)pending_for_caller(sb);
        int64_t n = take_records(sb, mask_of(f), buf, max);
        if (n > 0)
            return n * (int64_t)sizeof(struct signalfd_siginfo);
        if (f->flags & O_NONBLOCK)
            return -EAGAIN;
        t->sigwait_set = mask_of(f);
        int err = sb_wait_fd(sb, -1, 0, -1);
        t->sigwait_set = 0;
        if (err < 0)
            return err;
    }
}

static short sfd_poll(struct sandbox *sb, struct file *f, short events) {
    return (pending_for_caller(sb) & mask_of(f)) ? (short)(events & POLLIN) : 0;
}

static int sfd_stat(struct sandbox *sb, struct file *f, struct stat *st) {
    /* An anonymous inode: no file type bits, as on Linux. */
    return file_anon_stat(st, 0600, ((struct signalfd_state *)f->priv)->ino, 0xe);
}

static void sfd_release(struct file *f) { free(f->priv); }

static struct file *sfd_make(const struct signalfd_state *from, int flags) {
    return file_new_with(&sfd_ops, O_RDWR | (flags & O_NONBLOCK), from, sizeof(*from));
}

static struct file *sfd_clone(struct file *f, struct fdt_clone_ctx *ctx) {
    return sfd_make(f->priv, f->flags);
}

static const struct file_ops sfd_ops = {
    .kind = "signalfd",
    .read = sfd_read,
    .stat = sfd_stat,
    .poll = sfd_poll,
    .release = sfd_release,
    .clone = sfd_clone,
};

struct file *file_signalfd_new(uint64_t mask, int flags) {
    static uint64_t next_ino;
    struct signalfd_state s = {
        .mask = mask & ~SIG_UNBLOCKABLE,
        .ino = __atomic_add_fetch(&next_ino, 1, __ATOMIC_RELAXED),
    };
    return sfd_make(&s, flags);
}

int file_signalfd_set_mask(struct file *f, uint64_t mask) {
    if (!f || f->ops != &sfd_ops)
        return -EINVAL;
    ((struct signalfd_state *)f->priv)->mask = mask & ~SIG_UNBLOCKABLE;
    return 0;
}
