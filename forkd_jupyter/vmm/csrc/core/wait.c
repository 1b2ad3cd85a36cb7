/* Interruptible waits of the vCPU thread (sandbox.h: sb_wait_fd,
 * sb_signal_pending): a blocking system call sleeps here until its host fd
 * is ready, a signal becomes deliverable or another thread posts a pause
 * job. Other threads wake it through wake_fd. */
#define _GNU_SOURCE
#include <poll.h>
#include <stdatomic.h>
#include <unistd.h>

#include "core/sandbox.h"
#include "core/sig.h"

static void drain_wake(struct sandbox *sb)
{
    uint64_t v;
    while (read(sb->wake_fd, &v, sizeof(v)) > 0)
        ;
}

/* Moves signals queued by other threads into the guest's pending set.
 * Ordering: immediate_exit is cleared before pending_external is read, so a
 * signal queued after the read still stops the next KVM_RUN. */
void sb_take_external(struct sandbox *sb)
{
    sb->vm.run->immediate_exit = 0;
    uint64_t bits = atomic_exchange(&sb->pending_external, 0);
    if (bits) {
        drain_wake(sb);
        sb->sig.pending |= bits;
    }
}

bool sb_signal_pending(struct sandbox *sb)
{
    sb_take_external(sb);
    return sig_deliverable(sb) != 0 || sb->exited;
}

int sb_wait_fd(struct sandbox *sb, int host_fd, short events, int64_t timeout_ns)
{
    uint64_t deadline = timeout_ns >= 0 ? fj_now_ns() + (uint64_t)timeout_ns : 0;
    for (;;) {
        if (sb_signal_pending(sb))
            return -EINTR;
        if (atomic_load(&sb->job)) {
            sb->job_noticed_ns = fj_now_ns(); /* an idle guest stops here, not at its last exit */
            return SB_ERESTART;
        }
        int ms = -1;
        if (timeout_ns >= 0) {
            uint64_t now = fj_now_ns();
            if (now >= deadline)
                return -ETIMEDOUT;
            ms = (int)FJ_MIN((deadline - now + 999999) / 1000000, 1000000);
        }
        struct pollfd p[2] = {{.fd = sb->wake_fd, .events = POLLIN}, {.fd = host_fd, .events = events}};
        int r = poll(p, host_fd >= 0 ? 2 : 1, ms);
        if (r < 0 && errno != EINTR)
            return -errno;
        if (r > 0 && host_fd >= 0 && p[1].revents)
            return 0;
        /* A wake-up is consumed here, or the eventfd stays readable and this
         * loop spins. Senders set pending_external or job before writing
         * wake_fd, and the loop re-checks both after the drain, so none is
         * lost. */
        if (r > 0 && p[0].revents)
            drain_wake(sb);
    }
}
