/* Interruptible waits of vCPU threads (sandbox.h: sb_wait_fd,
 * sb_wait_futex, sb_notify, sb_signal_pending): a blocking system call
 * drops big_lock and sleeps on its thread's wake_fd (and a host fd) until
 * its condition may hold, a signal becomes deliverable, or a stop is
 * requested. Others wake it through wake_fd (sb_kick). */
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>

#include "core/proc.h"
#include "core/sig.h"

static void drain_wake(struct sb_thread *t)
{
    uint64_t v;
    while (read(t->wake_fd, &v, sizeof(v)) > 0)
        ;
}

/* Moves signals queued by host threads into the process's pending set.
 * Ordering: immediate_exit is cleared before pending_external is read, so a
 * signal queued after the read still stops the next KVM_RUN. */
void sb_take_external(struct sandbox *sb)
{
    struct sb_thread *t = sb_self(sb);
    t->cpu->run->immediate_exit = 0;
    uint64_t bits = atomic_exchange(&sb->pending_external, 0);
    if (bits) {
        sb->sig.pending |= bits;
        sig_wake_targets(sb, bits);
    }
}

bool sb_signal_pending(struct sandbox *sb)
{
    sb_take_external(sb);
    return sig_deliverable(sb) != 0 || sb->exited || sb_self(sb)->state == SB_T_EXITED;
}

/* Whether a wait of kind (not SB_WAIT_VFORK) ends now, and with what.
 * What the waiter waits for comes before a signal, as on Linux: a futex
 * wake or a change to files (the caller looks at its condition again and
 * waits anew, seeing the signal then if the condition does not hold). A
 * signal first would lose events that are counted, not states: a FIFO's
 * open whose partner opened, wrote and closed before the waiter ran. */
static bool wait_ended(struct sandbox *sb, struct sb_thread *t, enum sb_wait_kind kind, uint64_t seq, int *ret)
{
    if (kind == SB_WAIT_FUTEX && t->futex_woken)
        *ret = 0;
    else if (kind == SB_WAIT_FILES && atomic_load(&sb->procs->notify_seq) != seq)
        *ret = 0;
    else if (sb_signal_pending(sb))
        *ret = -EINTR;
    else if (t->sigwait_set & (t->sig.pending | sb->sig.pending))
        *ret = 0; /* rt_sigtimedwait takes it */
    else if (atomic_load(&sb->stop_req)) {
        t->noticed_ns = fj_now_ns(); /* an idle guest stops here, not at its last exit */
        *ret = SB_ERESTART;
    } else
        return false;
    return true;
}

/* Neither signals nor stops end the parent side of vfork: it resumes when
 * its child lets go of its memory, or dies. */
static bool vfork_ended(struct sandbox *sb, struct sb_thread *t)
{
    sb_take_external(sb);
    return !t->vfork_waiting || sb->exited || ((sb->sig.pending | t->sig.pending) >> SIGKILL & 1);
}

static int wait_common(struct sandbox *sb, enum sb_wait_kind kind, int host_fd, short events, int64_t timeout_ns)
{
    if (sb_serving_fast)
        return SB_EWOULDWAIT; /* the poller never waits (the calls it serves should not get here) */
    struct sb_thread *t = sb_self(sb);
    uint64_t deadline = timeout_ns >= 0 ? fj_now_ns() + (uint64_t)timeout_ns : 0;
    uint64_t seq = atomic_load(&sb->procs->notify_seq);
    int ret = 0;
    for (;;) {
        if (kind == SB_WAIT_VFORK ? vfork_ended(sb, t) : wait_ended(sb, t, kind, seq, &ret))
            break;
        int ms = -1;
        if (timeout_ns >= 0) {
            uint64_t now = fj_now_ns();
            if (now >= deadline) {
                ret = -ETIMEDOUT;
                break;
            }
            ms = (int)FJ_MIN((deadline - now + 999999) / 1000000, 1000000);
        }
        struct pollfd p[2] = {{.fd = t->wake_fd, .events = POLLIN}, {.fd = host_fd, .events = events}};
        t->waiting = true;
        t->wait_kind = kind;
        pthread_mutex_unlock(sb->big_lock);
        int r = poll(p, host_fd >= 0 ? 2 : 1, ms);
        int poll_errno = errno;
        pthread_mutex_lock(sb->big_lock);
        t->waiting = false;
        if (r < 0 && poll_errno != EINTR) {
            ret = -poll_errno;
            break;
        }
        if (r > 0 && host_fd >= 0 && p[1].revents) {
            ret = 0;
            break;
        }
        /* A wake-up is consumed here, or the eventfd stays readable and this
         * loop spins. Senders set what they announce before writing
         * wake_fd, and the loop re-checks everything after the drain, so
         * none is lost. */
        if (r > 0 && p[0].revents)
            drain_wake(t);
    }
    return ret;
}

int sb_wait_fd(struct sandbox *sb, int host_fd, short events, int64_t timeout_ns)
{
    return wait_common(sb, SB_WAIT_FILES, host_fd, events, timeout_ns);
}

int sb_wait_futex(struct sandbox *sb, int64_t timeout_ns)
{
    return wait_common(sb, SB_WAIT_FUTEX, -1, 0, timeout_ns);
}

void sb_wait_vfork(struct sandbox *sb)
{
    (void)wait_common(sb, SB_WAIT_VFORK, -1, 0, -1);
}
