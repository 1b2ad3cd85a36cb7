/* Signal system calls (delivery itself is in sig.c). */
#define _GNU_SOURCE
#include <signal.h>
#include <string.h>

#include "core/sandbox.h"
#include "sys/sys.h"
#include "core/sig.h"

#define UNBLOCKABLE ((1ULL << SIGKILL) | (1ULL << SIGSTOP))
#define SS_DISABLE_ 2

static int64_t sys_rt_sigaction(struct sandbox *sb, const uint64_t a[6])
{
    int signo = (int)a[0];
    if (signo <= 0 || signo >= SB_NSIG || a[3] != 8)
        return -EINVAL;
    struct sb_sigaction *act = &sb->sig.act[signo];
    struct sb_sigaction old = *act;
    if (a[1]) {
        if (signo == SIGKILL || signo == SIGSTOP)
            return -EINVAL;
        struct sb_sigaction in;
        if (mm_copy_from(&sb->mm, &in, a[1], sizeof(in)) < 0)
            return -EFAULT;
        in.mask &= ~UNBLOCKABLE;
        *act = in;
    }
    if (a[2] && mm_copy_to(&sb->mm, a[2], &old, sizeof(old)) < 0)
        return -EFAULT;
    return 0;
}

static int64_t sys_rt_sigprocmask(struct sandbox *sb, const uint64_t a[6])
{
    if (a[3] != 8)
        return -EINVAL;
    uint64_t old = sb->sig.blocked, set;
    if (a[1]) {
        if (mm_copy_from(&sb->mm, &set, a[1], 8) < 0)
            return -EFAULT;
        switch (a[0]) {
        case SIG_BLOCK: sb->sig.blocked |= set; break;
        case SIG_UNBLOCK: sb->sig.blocked &= ~set; break;
        case SIG_SETMASK: sb->sig.blocked = set; break;
        default: return -EINVAL;
        }
        sb->sig.blocked &= ~UNBLOCKABLE;
    }
    if (a[2] && mm_copy_to(&sb->mm, a[2], &old, 8) < 0)
        return -EFAULT;
    return 0;
}

static int64_t sys_rt_sigreturn(struct sandbox *sb, const uint64_t a[6]) { return sig_sigreturn(sb); }

static int64_t sys_sigaltstack(struct sandbox *sb, const uint64_t a[6])
{
    struct {
        uint64_t sp;
        int32_t flags, pad;
        uint64_t size;
    } ss, old = {sb->sig.altstack_sp, sb->sig.altstack_flags, 0, sb->sig.altstack_size};
    if (!old.size)
        old.flags = SS_DISABLE_;
    if (a[0]) {
        if (mm_copy_from(&sb->mm, &ss, a[0], sizeof(ss)) < 0)
            return -EFAULT;
        if (ss.flags & SS_DISABLE_) {
            sb->sig.altstack_sp = sb->sig.altstack_size = 0;
            sb->sig.altstack_flags = SS_DISABLE_;
        } else {
            if (ss.size < 2048)
                return -ENOMEM;
            sb->sig.altstack_sp = ss.sp;
            sb->sig.altstack_size = ss.size;
            sb->sig.altstack_flags = 0;
        }
    }
    if (a[1] && mm_copy_to(&sb->mm, a[1], &old, sizeof(old)) < 0)
        return -EFAULT;
    return 0;
}

static int64_t sys_rt_sigpending(struct sandbox *sb, const uint64_t a[6])
{
    uint64_t p = sb->sig.pending & sb->sig.blocked;
    return mm_copy_to(&sb->mm, a[0], &p, 8);
}

static int64_t sys_rt_sigsuspend(struct sandbox *sb, const uint64_t a[6])
{
    uint64_t mask;
    if (a[1] != 8)
        return -EINVAL;
    if (mm_copy_from(&sb->mm, &mask, a[0], 8) < 0)
        return -EFAULT;
    uint64_t saved = sb->sig.blocked;
    sb->sig.blocked = mask & ~UNBLOCKABLE;
    sb_wait_fd(sb, -1, 0, -1);
    /* The handler runs with the suspend mask; the old mask comes back at its
     * rt_sigreturn only in Linux, here it is restored at once (documented). */
    sb->sig.blocked = saved;
    return -EINTR;
}

static int64_t sys_pause(struct sandbox *sb, const uint64_t a[6])
{
    sb_wait_fd(sb, -1, 0, -1);
    return -EINTR;
}

static int64_t kill_self(struct sandbox *sb, int signo)
{
    if (signo < 0 || signo >= SB_NSIG)
        return -EINVAL;
    if (signo)
        sb_raise(sb, signo);
    return 0;
}

static int64_t sys_kill(struct sandbox *sb, const uint64_t a[6])
{
    int64_t pid = (int32_t)a[0];
    if (pid != sb->pid && pid != 0 && pid != -1 && pid != -(int64_t)sb->pid)
        return -ESRCH;
    return kill_self(sb, (int)a[1]);
}

static int64_t sys_tgkill(struct sandbox *sb, const uint64_t a[6])
{
    if ((uint32_t)a[0] != sb->pid || (uint32_t)a[1] != sb->pid)
        return -ESRCH;
    return kill_self(sb, (int)a[2]);
}

static int64_t sys_tkill(struct sandbox *sb, const uint64_t a[6])
{
    if ((uint32_t)a[0] != sb->pid)
        return -ESRCH;
    return kill_self(sb, (int)a[1]);
}

const struct sys_entry sys_signal_entries[] = {
    {13, "rt_sigaction", sys_rt_sigaction, SYS_FULL, NULL},
    {14, "rt_sigprocmask", sys_rt_sigprocmask, SYS_FULL, NULL},
    {15, "rt_sigreturn", sys_rt_sigreturn, SYS_FULL, "restores registers and XSAVE state"},
    {34, "pause", sys_pause, SYS_FULL, NULL},
    {62, "kill", sys_kill, SYS_PARTIAL, "only the sandbox's own process"},
    {127, "rt_sigpending", sys_rt_sigpending, SYS_FULL, NULL},
    {130, "rt_sigsuspend", sys_rt_sigsuspend, SYS_PARTIAL, "the old mask returns before the handler runs"},
    {131, "sigaltstack", sys_sigaltstack, SYS_FULL, NULL},
    {200, "tkill", sys_tkill, SYS_PARTIAL, "own thread only"},
    {234, "tgkill", sys_tgkill, SYS_PARTIAL, "own thread only"},
};
const size_t sys_signal_count = FJ_ARRAY_SIZE(sys_signal_entries);
