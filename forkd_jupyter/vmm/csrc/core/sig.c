/* Signal delivery to the guest (see sig.h).
 *
 * Invariants: signal state is touched under big_lock only; a frame is built
 * by the receiving thread between its exits, on its user stack (or
 * alternate stack) in guest memory, with its interrupted registers and
 * XSAVE image, so rt_sigreturn resumes the exact interrupted state. A
 * process-directed signal goes to the main thread unless it blocks it (as
 * Linux prefers, and as CPython expects of SIGINT), else to the first
 * thread that does not. */
#define _GNU_SOURCE
#include "core/sig.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "core/proc.h"
#include "kvm/kvm_cpu.h"

#define SA_SIGINFO_ 0x4ULL
#define SA_ONSTACK_ 0x08000000ULL
#define SA_RESTORER_ 0x04000000ULL
#define SA_RESTART_ 0x10000000ULL
#define SA_NODEFER_ 0x40000000ULL
#define SA_RESETHAND_ 0x80000000ULL
#define SS_ONSTACK_ 1
#define SS_DISABLE_ 2

/* Linux x86-64 user ABI layouts (uapi asm/sigcontext.h, asm/ucontext.h). */
struct g_sigcontext {
    uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
    uint64_t rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags;
    uint16_t cs, gs, fs, ss;
    uint64_t err, trapno, oldmask, cr2, fpstate;
    uint64_t reserved[8];
};
struct g_stack {
    uint64_t ss_sp;
    int32_t ss_flags;
    int32_t pad;
    uint64_t ss_size;
};
struct g_ucontext {
    uint64_t uc_flags, uc_link;
    struct g_stack uc_stack;
    struct g_sigcontext uc_mcontext;
    uint64_t uc_sigmask;
};
struct g_sigframe {
    uint64_t pretcode;
    struct g_ucontext uc;
    struct g_siginfo info;
};
_Static_assert(sizeof(struct g_sigcontext) == 256, "sigcontext layout");

static bool takes(const struct sb_thread *t, int signo)
{
    return t && t->state != SB_T_EXITED &&
           (!(t->sig.blocked & ~SIG_UNBLOCKABLE & (1ULL << signo)) ||
            (t->sigwait_set & (1ULL << signo)));
}

/* The thread a process-directed signo goes to (NULL: all block it; it
 * stays pending). */
static struct sb_thread *target_of(struct sandbox *sb, int signo)
{
    for (unsigned i = 0; i < LAYOUT_MAX_VCPUS; i++)
        if (takes(sb->threads[i], signo))
            return sb->threads[i];
    return NULL;
}

uint64_t sig_deliverable(struct sandbox *sb)
{
    struct sb_thread *t = sb_self(sb);
    uint64_t mine = t->sig.pending;
    for (uint64_t rest = sb->sig.pending; rest; rest &= rest - 1) {
        int signo = __builtin_ctzll(rest);
        if (target_of(sb, signo) == t)
            mine |= 1ULL << signo;
    }
    return mine & ~(t->sig.blocked & ~SIG_UNBLOCKABLE);
}

void sig_wake_targets(struct sandbox *sb, uint64_t bits)
{
    bool unclaimed = false;
    for (; bits; bits &= bits - 1) {
        struct sb_thread *t = target_of(sb, __builtin_ctzll(bits));
        if (t && t != sb_current)
            sb_kick(t);
        unclaimed |= !t;
    }
    if (unclaimed)
        sb_notify(sb); /* a signal every thread blocks may make a signalfd readable */
}

void sig_child_info(struct g_siginfo *si, uint32_t pid, int status)
{
    bool killed = (status & 0x7f) != 0;
    si->si_signo = SIGCHLD;
    si->si_code = killed ? 2 /* CLD_KILLED */ : 1 /* CLD_EXITED */;
    si->f0 = (uint64_t)1000 << 32 | pid;
    si->f1 = (uint32_t)(killed ? status & 0x7f : (status >> 8) & 0xff);
}

void sig_info(struct sandbox *sb, int signo, struct g_siginfo *out)
{
    memset(out, 0, sizeof(*out));
    out->si_signo = signo;
    uint64_t fault = sb_self(sb)->sig.fault_addr[signo];
    if (fault) {
        out->si_code = 1; /* SEGV_MAPERR */
        out->f0 = fault;
        return;
    }
    for (unsigned k = 0; signo == SIGCHLD && k < SB_MAX_PROCS; k++) {
        const struct sb_proc_slot *s = &sb->procs->slot[k];
        if (s->used && s->zombie && s->ppid == sb->pid) {
            sig_child_info(out, s->pid, s->wait_status);
            return;
        }
    }
    out->f0 = sig_sender(sb); /* SI_USER */
}

int sig_take(struct sandbox *sb, uint64_t set)
{
    struct sb_thread *t = sb_self(sb);
    uint64_t mine = t->sig.pending & set, shared = sb->sig.pending & set;
    if (!(mine | shared))
        return 0;
    int signo = __builtin_ctzll(mine ? mine : shared);
    if (mine)
        t->sig.pending &= ~(1ULL << signo);
    else
        sb->sig.pending &= ~(1ULL << signo);
    return signo;
}

/* Where SYSCALL enters CPL0 (hardware virtualisation) a handler frame or a
 * sigreturn must also put the vCPU back in user mode; kvm_pvm stays in CPL3. */
static void leave_supervisor(struct sandbox *sb)
{
    if (sb_cpu(sb)->syscall_mode == 2)
        kvm_cpu_return_to_user(sb_cpu(sb));
}

static bool default_ignores(int signo)
{
    return signo == SIGCHLD || signo == SIGCONT || signo == SIGURG || signo == SIGWINCH ||
           signo == SIGSTOP || signo == SIGTSTP || signo == SIGTTIN || signo == SIGTTOU;
}

static void die_by(struct sandbox *sb, int signo, const char *detail)
{
    char why[256];
    const char *abbrev = sigabbrev_np(signo);
    snprintf(why, sizeof(why), "killed by SIG%s%s%s", abbrev ? abbrev : "?", detail ? ": " : "",
             detail ? detail : "");
    sb_exit(sb, 0, signo, why);
}

static int save_xsave(struct sandbox *sb, gva_t at)
{
    struct kvm_xsave xs;
    if (ioctl(sb_cpu(sb)->fd, KVM_GET_XSAVE, &xs) < 0)
        return -errno;
    return mm_copy_to(&sb->mm, at, &xs, sizeof(xs));
}

static int build_frame(struct sandbox *sb, int signo, const struct sb_sigaction *act)
{
    struct sb_signals *ts = &sb_self(sb)->sig;
    struct kvm_regs *r = kvm_vcpu_regs(sb_cpu(sb));
    gva_t sp = r->rsp;
    bool on_alt = ts->altstack_size && !(ts->altstack_flags & SS_DISABLE_) &&
                  !(sp >= ts->altstack_sp && sp < ts->altstack_sp + ts->altstack_size);
    if ((act->flags & SA_ONSTACK_) && on_alt)
        sp = ts->altstack_sp + ts->altstack_size;
    else
        sp -= 128; /* red zone */
    sp -= sizeof(struct kvm_xsave);
    sp &= ~63ULL;
    gva_t fpstate = sp;
    sp -= sizeof(struct g_sigframe);
    sp = ((sp + 8) & ~15ULL) - 8; /* as after a call: (rsp + 8) % 16 == 0 */
    struct g_sigframe f;
    memset(&f, 0, sizeof(f));
    f.pretcode = act->restorer;
    f.uc.uc_stack.ss_sp = ts->altstack_sp;
    f.uc.uc_stack.ss_size = ts->altstack_size;
    f.uc.uc_stack.ss_flags = ts->altstack_flags;
    struct g_sigcontext *m = &f.uc.uc_mcontext;
    m->r8 = r->r8, m->r9 = r->r9, m->r10 = r->r10, m->r11 = r->r11;
    m->r12 = r->r12, m->r13 = r->r13, m->r14 = r->r14, m->r15 = r->r15;
    m->rdi = r->rdi, m->rsi = r->rsi, m->rbp = r->rbp, m->rbx = r->rbx;
    m->rdx = r->rdx, m->rax = r->rax, m->rcx = r->rcx, m->rsp = r->rsp;
    m->rip = r->rip, m->eflags = r->rflags;
    m->cs = GDT_USER_CS, m->ss = GDT_USER_DS;
    m->cr2 = ts->fault_addr[signo];
    m->fpstate = fpstate;
    f.uc.uc_sigmask = sig_to_guest(ts->restore_after ? ts->mask_after : ts->blocked);
    sig_info(sb, signo, &f.info);
    if (save_xsave(sb, fpstate) < 0 || mm_copy_to(&sb->mm, sp, &f, sizeof(f)) < 0)
        return -EFAULT;
    r->rdi = (uint64_t)signo;
    r->rsi = sp + offsetof(struct g_sigframe, info);
    r->rdx = sp + offsetof(struct g_sigframe, uc);
    r->rax = 0;
    r->rsp = sp;
    r->rip = act->handler;
    r->rflags &= ~0x500ULL; /* DF, TF */
    kvm_vcpu_regs_dirty(sb_cpu(sb));
    leave_supervisor(sb);
    return 0;
}

bool sig_restarts_call(struct sandbox *sb)
{
    uint64_t ready = sig_deliverable(sb);
    if (!ready)
        return false;
    int signo = __builtin_ctzll(ready);
    const struct sb_sigaction *act = &sb->sig.act[signo];
    /* Ignored, explicitly or by default (a child's SIGCHLD while the parent
     * waits for it): Linux never interrupts a call for it. */
    return act->handler == (uint64_t)(uintptr_t)SIG_IGN ||
           (act->handler == (uint64_t)(uintptr_t)SIG_DFL && default_ignores(signo)) ||
           (act->handler > (uint64_t)(uintptr_t)SIG_IGN && (act->flags & SA_RESTART_));
}

void sig_deliver_pending(struct sandbox *sb)
{
    struct sb_signals *ts = &sb_self(sb)->sig;
    uint64_t ready;
    while ((ready = sig_deliverable(sb)) != 0) {
        int signo = __builtin_ctzll(ready);
        if (ts->pending & (1ULL << signo))
            ts->pending &= ~(1ULL << signo);
        else
            sb->sig.pending &= ~(1ULL << signo);
        struct sb_sigaction *act = &sb->sig.act[signo];
        if (signo == SIGKILL) {
            die_by(sb, signo, NULL);
            return;
        }
        if (act->handler == (uint64_t)(uintptr_t)SIG_IGN)
            continue;
        if (act->handler == (uint64_t)(uintptr_t)SIG_DFL) {
            if (default_ignores(signo))
                continue;
            die_by(sb, signo, ts->fault_addr[signo] ? "invalid memory access" : NULL);
            return;
        }
        struct sb_sigaction copy = *act;
        if (build_frame(sb, signo, &copy) < 0) {
            die_by(sb, SIGSEGV, "could not write a signal frame to the guest stack");
            return;
        }
        ts->fault_addr[signo] = 0;
        ts->restore_after = false; /* the frame holds the mask to return to */
        ts->blocked |= copy.mask;
        if (!(copy.flags & SA_NODEFER_))
            ts->blocked |= 1ULL << signo;
        if (copy.flags & SA_RESETHAND_)
            act->handler = (uint64_t)(uintptr_t)SIG_DFL;
        return; /* one frame per entry; the next is delivered at the next exit */
    }
    if (ts->restore_after) { /* sigsuspend ended and no handler ran */
        ts->blocked = ts->mask_after;
        ts->restore_after = false;
    }
}

int64_t sig_sigreturn(struct sandbox *sb)
{
    struct sb_signals *ts = &sb_self(sb)->sig;
    leave_supervisor(sb);
    struct kvm_regs *r = kvm_vcpu_regs(sb_cpu(sb));
    struct g_ucontext uc;
    if (mm_copy_from(&sb->mm, &uc, r->rsp, sizeof(uc)) < 0) {
        die_by(sb, SIGSEGV, "bad rt_sigreturn frame");
        return SIG_REGS_REPLACED;
    }
    const struct g_sigcontext *m = &uc.uc_mcontext;
    r->r8 = m->r8, r->r9 = m->r9, r->r10 = m->r10, r->r11 = m->r11;
    r->r12 = m->r12, r->r13 = m->r13, r->r14 = m->r14, r->r15 = m->r15;
    r->rdi = m->rdi, r->rsi = m->rsi, r->rbp = m->rbp, r->rbx = m->rbx;
    r->rdx = m->rdx, r->rax = m->rax, r->rcx = m->rcx, r->rsp = m->rsp;
    r->rip = m->rip;
    r->rflags = (m->eflags & 0x3c0dd5) | 0x2; /* user-changeable flags only */
    kvm_vcpu_regs_dirty(sb_cpu(sb));
    ts->blocked = sig_from_guest(uc.uc_sigmask) & ~SIG_UNBLOCKABLE;
    if (m->fpstate) {
        struct kvm_xsave xs;
        if (mm_copy_from(&sb->mm, &xs, m->fpstate, sizeof(xs)) < 0 ||
            ioctl(sb_cpu(sb)->fd, KVM_SET_XSAVE, &xs) < 0)
            die_by(sb, SIGSEGV, "bad FPU state in rt_sigreturn frame");
    }
    return SIG_REGS_REPLACED;
}

void sb_raise(struct sandbox *sb, int signo)
{
    if (signo > 0 && signo < SB_NSIG)
        sb_self(sb)->sig.pending |= 1ULL << signo;
}

void sb_raise_process(struct sandbox *sb, int signo)
{
    if (signo <= 0 || signo >= SB_NSIG)
        return;
    sb->sig.pending |= 1ULL << signo;
    sig_wake_targets(sb, 1ULL << signo);
}

void sig_fault(struct sandbox *sb, int signo, uint64_t addr, const char *what)
{
    struct sb_signals *ts = &sb_self(sb)->sig;
    struct sb_sigaction *act = &sb->sig.act[signo];
    bool blocked = ts->blocked & (1ULL << signo);
    bool handled = act->handler > (uint64_t)(uintptr_t)SIG_IGN;
    if (!handled || blocked) {
        char detail[160];
        snprintf(detail, sizeof(detail), "%s at address %#llx (rip %#llx)", what, (unsigned long long)addr,
                 (unsigned long long)kvm_vcpu_regs(sb_cpu(sb))->rip);
        die_by(sb, signo, detail);
        return;
    }
    ts->fault_addr[signo] = addr ? addr : 1;
    ts->pending |= 1ULL << signo;
}

struct exc_signal {
    int signo;
    const char *what;
};

static struct exc_signal exception_signal(unsigned v)
{
    switch (v) {
    case 0: return (struct exc_signal){SIGFPE, "integer divide error"};
    case 1: case 3: return (struct exc_signal){SIGTRAP, "breakpoint"};
    case 6: return (struct exc_signal){SIGILL, "invalid opcode"};
    case 7: case 16: case 19: return (struct exc_signal){SIGFPE, "floating-point exception"};
    case 14: return (struct exc_signal){SIGSEGV, "invalid memory access"};
    case 17: return (struct exc_signal){SIGBUS, "alignment check"};
    default: return (struct exc_signal){SIGSEGV, "general protection fault"};
    }
}

void sig_exception(struct sandbox *sb, unsigned vector)
{
    struct kvm_vcpu *cpu = sb_cpu(sb);
    const uint64_t *top = (const uint64_t *)(sb->vm.sys + layout_exc_stack_top(cpu->id));
    /* Hardware frame, from the top of the exception stack down:
     * SS, RSP, RFLAGS, CS, RIP, [error code]. */
    uint64_t ss = top[-1], rsp = top[-2], rflags = top[-3], cs = top[-4], rip = top[-5];
    (void)ss;
    struct kvm_sregs s;
    if (kvm_vcpu_get_sregs(cpu, &s) < 0 || (cs & 3) != 3) {
        char why[128];
        snprintf(why, sizeof(why), "exception %u in supervisor code (rip %#llx)", vector,
                 (unsigned long long)rip);
        sb_exit(sb, 0, SIGKILL, why);
        return;
    }
    uint64_t cr2 = s.cr2;
    kvm_cpu_user_segments(&s);
    if (kvm_vcpu_set_sregs(cpu, &s) < 0) {
        sb_exit(sb, 0, SIGKILL, "could not return to user mode after an exception");
        return;
    }
    struct kvm_regs *r = kvm_vcpu_regs(cpu);
    r->rip = rip;
    r->rsp = rsp;
    r->rflags = rflags;
    kvm_vcpu_regs_dirty(cpu);
    struct exc_signal es = exception_signal(vector);
    sig_fault(sb, es.signo, vector == 14 ? cr2 : rip, es.what);
}
