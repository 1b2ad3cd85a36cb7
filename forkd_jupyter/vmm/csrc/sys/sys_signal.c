/* Signal system calls (delivery itself is in sig.c). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>

#include "core/proc.h"
#include "core/sig.h"
#include "file/file_kinds.h"
#include "sys/sys.h"

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
        in.mask = sig_from_guest(in.mask) & ~SIG_UNBLOCKABLE;
        *act = in;
    }
    old.mask = sig_to_guest(old.mask);
    if (a[2] && mm_copy_to(&sb->mm, a[2], &old, sizeof(old)) < 0)
        return -EFAULT;
    return 0;
}

static int64_t sys_rt_sigprocmask(struct sandbox *sb, const uint64_t a[6])
{
    struct sb_signals *ts = &sb_self(sb)->sig;
    if (a[3] != 8)
        return -EINVAL;
    uint64_t old = sig_to_guest(ts->blocked), set;
    if (a[1]) {
        if (mm_copy_from(&sb->mm, &set, a[1], 8) < 0)
            return -EFAULT;
        set = sig_from_guest(set);
        switch (a[0]) {
        case SIG_BLOCK: ts->blocked |= set; break;
        case SIG_UNBLOCK: ts->blocked &= ~set; break;
        case SIG_SETMASK: ts->blocked = set; break;
        default: return -EINVAL;
        }
        ts->blocked &= ~SIG_UNBLOCKABLE;
        sig_wake_targets(sb, sb->sig.pending); /* blocking here may hand one to another thread */
    }
    if (a[2] && mm_copy_to(&sb->mm, a[2], &old, 8) < 0)
        return -EFAULT;
    return 0;
}

static int64_t sys_rt_sigreturn(struct sandbox *sb, const uint64_t a[6]) { return sig_sigreturn(sb); }

static int64_t sys_sigaltstack(struct sandbox *sb, const uint64_t a[6])
{
    struct sb_signals *ts = &sb_self(sb)->sig;
    struct {
        uint64_t sp;
        int32_t flags, pad;
        uint64_t size;
    } ss, old = {ts->altstack_sp, ts->altstack_flags, 0, ts->altstack_size};
    if (!old.size)
        old.flags = SS_DISABLE_;
    if (a[0]) {
        if (mm_copy_from(&sb->mm, &ss, a[0], sizeof(ss)) < 0)
            return -EFAULT;
        if (ss.flags & SS_DISABLE_) {
            ts->altstack_sp = ts->altstack_size = 0;
            ts->altstack_flags = SS_DISABLE_;
        } else {
            if (ss.size < 2048)
                return -ENOMEM;
            ts->altstack_sp = ss.sp;
            ts->altstack_size = ss.size;
            ts->altstack_flags = 0;
        }
    }
    if (a[1] && mm_copy_to(&sb->mm, a[1], &old, sizeof(old)) < 0)
        return -EFAULT;
    return 0;
}

static int64_t sys_rt_sigpending(struct sandbox *sb, const uint64_t a[6])
{
    struct sb_signals *ts = &sb_self(sb)->sig;
    uint64_t p = sig_to_guest((ts->pending | sb->sig.pending) & ts->blocked);
    return mm_copy_to(&sb->mm, a[0], &p, 8);
}

static int64_t sys_rt_sigsuspend(struct sandbox *sb, const uint64_t a[6])
{
    struct sb_signals *ts = &sb_self(sb)->sig;
    uint64_t mask;
    if (a[1] != 8)
        return -EINVAL;
    if (mm_copy_from(&sb->mm, &mask, a[0], 8) < 0)
        return -EFAULT;
    uint64_t saved = ts->restore_after ? ts->mask_after : ts->blocked;
    ts->blocked = sig_from_guest(mask) & ~SIG_UNBLOCKABLE;
    int ret;
    while ((ret = sb_wait_fd(sb, -1, 0, -1)) == 0) /* 0: a file changed, not a signal */
        ;
    if (ret == SB_ERESTART) { /* a stop: the call is made again after it */
        ts->blocked = saved;
        return SB_ERESTART;
    }
    /* The signal is delivered with the suspend mask in force, as on Linux:
     * its handler's frame saves the old mask (or it returns at once). */
    ts->mask_after = saved;
    ts->restore_after = true;
    return -EINTR;
}

static int64_t sys_pause(struct sandbox *sb, const uint64_t a[6])
{
    int ret;
    while ((ret = sb_wait_fd(sb, -1, 0, -1)) == 0) /* 0: a file changed, not a signal */
        ;
    return ret == SB_ERESTART ? SB_ERESTART : -EINTR;
}

/* rt_sigtimedwait(set, info, timeout, size): takes a pending signal of
 * set (the thread's own first) without running its handler. */
static int64_t sys_rt_sigtimedwait(struct sandbox *sb, const uint64_t a[6])
{
    struct sb_thread *t = sb_self(sb);
    uint64_t set;
    int64_t ns = -1;
    if (a[3] != 8)
        return -EINVAL;
    if (mm_copy_from(&sb->mm, &set, a[0], 8) < 0)
        return -EFAULT;
    if (a[2]) {
        int err = sys_read_timespec(sb, a[2], &ns);
        if (err < 0)
            return err;
    }
    set = sig_from_guest(set) & ~SIG_UNBLOCKABLE;
    uint64_t deadline = ns > 0 ? fj_now_ns() + (uint64_t)ns : 0;
    for (;;) {
        sb_take_external(sb);
        int signo = sig_take(sb, set);
        if (signo) {
            struct g_siginfo info;
            sig_info(sb, signo, &info);
            if (a[1] && mm_copy_to(&sb->mm, a[1], &info, sizeof(info)) < 0)
                return -EFAULT;
            return signo;
        }
        int64_t left = ns;
        if (ns > 0) {
            uint64_t now = fj_now_ns();
            left = now >= deadline ? 0 : (int64_t)(deadline - now);
        }
        if (left == 0)
            return -EAGAIN;
        t->sigwait_set = set;
        int err = sb_wait_fd(sb, -1, 0, left);
        t->sigwait_set = 0;
        if (err == -ETIMEDOUT)
            return -EAGAIN;
        if (err < 0)
            return err;
    }
}

static int64_t sys_kill(struct sandbox *sb, const uint64_t a[6])
{
    int64_t pid = (int32_t)a[0];
    int signo = (int)a[1];
    if (signo < 0 || signo >= SB_NSIG)
        return -EINVAL;
    if (pid == sb->pid) {
        if (signo)
            sb_raise_process(sb, signo);
        return 0;
    }
    /* Other processes, or a group or all: queued for each (core/proc.c),
     * this one included when it is in the group. */
    bool self_too = pid == -1 || pid == 0 || (pid < 0 && sb_proc_self(sb) && sb_proc_self(sb)->pgid == (uint64_t)-pid);
    int err = sb_proc_kill(sb, pid, signo);
    if (self_too && signo && err == 0)
        sig_wake_targets(sb, 1ULL << signo);
    return err;
}

/* A signal to one thread of the sandbox. */
static int64_t kill_thread(struct sandbox *sb, uint32_t tid, int signo)
{
    if (signo < 0 || signo >= SB_NSIG)
        return -EINVAL;
    struct sb_thread *t = sb_thread_by_tid(sb, tid);
    if (!t)
        return -ESRCH;
    if (signo) {
        t->sig.pending |= 1ULL << signo;
        if (t != sb_current)
            sb_kick(t);
        if (t->sig.blocked & (1ULL << signo) & ~SIG_UNBLOCKABLE)
            sb_notify(sb); /* a signalfd may have become readable */
    }
    return 0;
}

static int64_t sys_tgkill(struct sandbox *sb, const uint64_t a[6])
{
    if ((uint32_t)a[0] != sb->pid)
        return -ESRCH;
    return kill_thread(sb, (uint32_t)a[1], (int)a[2]);
}

static int64_t sys_tkill(struct sandbox *sb, const uint64_t a[6]) { return kill_thread(sb, (uint32_t)a[0], (int)a[1]); }

/* signalfd4(fd, mask, sizemask, flags): a new descriptor (fd -1) or a new
 * mask for an existing one. */
static int64_t make_signalfd(struct sandbox *sb, int fd, gva_t umask, uint64_t size,
                             uint64_t flags)
{
    uint64_t mask;
    if (size != 8 || (flags & ~(uint64_t)(SFD_CLOEXEC | SFD_NONBLOCK)))
        return -EINVAL;
    if (mm_copy_from(&sb->mm, &mask, umask, 8) < 0)
        return -EFAULT;
    mask = sig_from_guest(mask);
    if (fd != -1) {
        struct file *f = sys_fd_file(sb, fd);
        return !f ? -EBADF : file_signalfd_set_mask(f, mask) < 0 ? -EINVAL : fd;
    }
    struct file *f = file_signalfd_new(mask, flags & SFD_NONBLOCK ? O_NONBLOCK : 0);
    if (!f)
        return -ENOMEM;
    int got = fdt_install(&sb->fdt, f, 0, flags & SFD_CLOEXEC);
    if (got < 0)
        file_put(f);
    return got;
}

static int64_t sys_signalfd(struct sandbox *sb, const uint64_t a[6])
{
    return make_signalfd(sb, (int)a[0], a[1], a[2], 0);
}

static int64_t sys_signalfd4(struct sandbox *sb, const uint64_t a[6])
{
    return make_signalfd(sb, (int)a[0], a[1], a[2], a[3]);
}

#define SIGINFO_NOTE                                                                               \
    "siginfo: a fault's address; SIGCHLD's child, code and status; else SI_USER from the process"

const struct sys_entry sys_signal_entries[] = {
    {13, "rt_sigaction", sys_rt_sigaction, SYS_FULL, NULL},
    {14, "rt_sigprocmask", sys_rt_sigprocmask, SYS_FULL, NULL},
    {15, "rt_sigreturn", sys_rt_sigreturn, SYS_FULL, "restores registers and XSAVE state"},
    {34, "pause", sys_pause, SYS_FULL, NULL},
    {62, "kill", sys_kill, SYS_FULL, "processes of the sandbox: a pid, a group, or all"},
    {127, "rt_sigpending", sys_rt_sigpending, SYS_FULL, NULL},
    {130, "rt_sigsuspend", sys_rt_sigsuspend, SYS_FULL, NULL},
    {131, "sigaltstack", sys_sigaltstack, SYS_FULL, NULL},
    {128, "rt_sigtimedwait", sys_rt_sigtimedwait, SYS_PARTIAL, SIGINFO_NOTE},
    {200, "tkill", sys_tkill, SYS_FULL, NULL},
    {234, "tgkill", sys_tgkill, SYS_FULL, NULL},
    {282, "signalfd", sys_signalfd, SYS_PARTIAL, SIGINFO_NOTE},
    {289, "signalfd4", sys_signalfd4, SYS_PARTIAL, SIGINFO_NOTE},
};
const size_t sys_signal_count = FJ_ARRAY_SIZE(sys_signal_entries);
