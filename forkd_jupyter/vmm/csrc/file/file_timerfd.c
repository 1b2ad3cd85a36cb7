/* timerfd(2) descriptors: a timer on a clock of the host's (the guest's
 * clocks are the host's) whose expirations a read takes as a count, as
 * libev, systemd's sd-event and Boost.Asio's reactor use it.
 *
 * Invariants: the state is a deadline on the timer's clock and a period,
 * brought up to date whenever it is looked at (expirations counted in
 * ticks, the deadline moved past now or the timer disarmed); nothing runs
 * in between. A waiter on files learns of an expiry through wake_in_ns
 * (the poll, select and epoll waits cap their sleep with it). A branch and
 * a fork's copy keep the deadline, on the same clock. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>

#include "core/sandbox.h"
#include "file/file_kinds.h"

struct timerfd_state {
    clockid_t clock;
    bool armed;
    uint64_t deadline_ns; /* on clock; meaningful when armed */
    uint64_t period_ns;   /* 0: one expiry */
    uint64_t ticks;       /* expirations not yet read */
    uint64_t ino;
};

static const struct file_ops tfd_ops;

static struct timerfd_state *state_of(struct file *f) { return f->priv; }

/* Counts the expirations due by now; returns now on the timer's clock. */
static uint64_t bring_up_to_date(struct timerfd_state *t) {
    uint64_t now = fj_clock_ns(t->clock);
    if (!t->armed || now < t->deadline_ns)
        return now;
    if (!t->period_ns) {
        t->ticks++;
        t->armed = false;
        return now;
    }
    uint64_t due = 1 + (now - t->deadline_ns) / t->period_ns;
    t->ticks += due;
    t->deadline_ns += due * t->period_ns;
    return now;
}

/* Nanoseconds until the next expiry, -1 when disarmed. */
static int64_t next_in(struct timerfd_state *t) {
    uint64_t now = bring_up_to_date(t);
    return t->armed ? (int64_t)(t->deadline_ns - now) : -1;
}

static int64_t tfd_read(struct sandbox *sb, struct file *f, void *buf, uint64_t len) {
    struct timerfd_state *t = state_of(f);
    if (len < 8)
        return -EINVAL;
    for (;;) {
        int64_t left = next_in(t);
        if (t->ticks) {
            memcpy(buf, &t->ticks, 8);
            t->ticks = 0;
            return 8;
        }
        if (f->flags & O_NONBLOCK)
            return -EAGAIN;
        int err = sb_wait_fd(sb, -1, 0, left);
        if (err < 0 && err != -ETIMEDOUT)
            return err;
    }
}

static short tfd_poll(struct sandbox *sb, struct file *f, short events) {
    struct timerfd_state *t = state_of(f);
    (void)next_in(t);
    return t->ticks ? (short)(events & POLLIN) : 0;
}

static int64_t tfd_wake_in_ns(struct sandbox *sb, struct file *f) { return next_in(state_of(f)); }

static int tfd_stat(struct sandbox *sb, struct file *f, struct stat *st) {
    /* An anonymous inode: no file type bits, as on Linux. */
    return file_anon_stat(st, 0600, state_of(f)->ino, 0xe);
}

static void tfd_release(struct file *f) { free(f->priv); }

static struct file *tfd_clone(struct file *f, struct fdt_clone_ctx *ctx) {
    return file_new_with(&tfd_ops, f->flags, f->priv, sizeof(struct timerfd_state));
}

static const struct file_ops tfd_ops = {
    .kind = "timerfd",
    .read = tfd_read,
    .stat = tfd_stat,
    .poll = tfd_poll,
    .wake_in_ns = tfd_wake_in_ns,
    .release = tfd_release,
    .clone = tfd_clone,
};

struct file *file_timerfd_new(clockid_t clock, int flags) {
    static uint64_t next_ino;
    struct timerfd_state t = {
        .clock = clock,
        .ino = __atomic_add_fetch(&next_ino, 1, __ATOMIC_RELAXED),
    };
    return file_new_with(&tfd_ops, O_RDWR | (flags & O_NONBLOCK), &t, sizeof(t));
}

int file_timerfd_get(struct file *f, uint64_t *value_ns, uint64_t *period_ns) {
    if (!f || f->ops != &tfd_ops)
        return -EINVAL;
    int64_t left = next_in(state_of(f));
    *value_ns = left < 0 ? 0 : left > 0 ? (uint64_t)left : 1;
    *period_ns = state_of(f)->period_ns;
    return 0;
}

int file_timerfd_set(struct file *f, bool absolute, uint64_t value_ns, uint64_t period_ns) {
    if (!f || f->ops != &tfd_ops)
        return -EINVAL;
    struct timerfd_state *t = state_of(f);
    t->ticks = 0;
    t->armed = value_ns != 0;
    t->period_ns = t->armed ? period_ns : 0;
    t->deadline_ns = absolute ? value_ns : fj_clock_ns(t->clock) + value_ns;
    return 0;
}
