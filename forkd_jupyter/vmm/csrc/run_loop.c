/* The vCPU run loop: one switch over exit reasons, plus the host-side
 * services it needs (output frames, interruptible waits, exits). */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "kvm_cpu.h"
#include "sandbox.h"
#include "sig.h"
#include "vmm_api.h"

/* Signal that kicks a vCPU thread out of KVM_RUN or a blocking call. */
#define SB_KICK_SIGNAL (SIGRTMIN + 7)

static void kick_handler(int sig) { (void)sig; }

static void install_kick_handler_once(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = kick_handler;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SB_KICK_SIGNAL, &sa, NULL);
}

static void install_kick_handler(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, install_kick_handler_once);
}

int sb_emit(struct sandbox *sb, enum sb_channel ch, const void *buf, size_t len)
{
    uint8_t hdr[5] = {(uint8_t)ch, (uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16),
                      (uint8_t)(len >> 24)};
    struct iovec iov[2] = {{hdr, sizeof(hdr)}, {(void *)buf, len}};
    size_t total = sizeof(hdr) + len, done = 0;
    int iovcnt = 2;
    struct iovec *v = iov;
    /* Invariant: a frame is written whole or the stream is dead (-EPIPE). */
    while (done < total) {
        ssize_t w = writev(sb->ctl_host_fd, v, iovcnt);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                struct pollfd p = {.fd = sb->ctl_host_fd, .events = POLLOUT};
                poll(&p, 1, 1000);
                continue;
            }
            return -EPIPE;
        }
        done += (size_t)w;
        while (iovcnt && (size_t)w >= v->iov_len) {
            w -= (ssize_t)v->iov_len;
            v++;
            iovcnt--;
        }
        if (iovcnt) {
            v->iov_base = (char *)v->iov_base + w;
            v->iov_len -= (size_t)w;
        }
    }
    return 0;
}

static void drain_wake(struct sandbox *sb)
{
    uint64_t v;
    while (read(sb->wake_fd, &v, sizeof(v)) > 0)
        ;
}

/* Moves signals queued by other threads into the guest's pending set.
 * Ordering: immediate_exit is cleared before pending_external is read, so a
 * signal queued after the read still stops the next KVM_RUN. */
static void take_external(struct sandbox *sb)
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
    take_external(sb);
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

void sb_exit(struct sandbox *sb, int status, int fatal_signal, const char *why)
{
    if (sb->exited)
        return;
    sb->exited = true;
    sb->exit_status = fatal_signal ? 128 + fatal_signal : (status & 0xff);
    sb->fatal_signal = fatal_signal;
    snprintf(sb->exit_reason, sizeof(sb->exit_reason), "%s", why);
    char msg[320];
    int n = snprintf(msg, sizeof(msg), "{\"status\":%d,\"signal\":%d}", sb->exit_status, fatal_signal);
    sb_emit(sb, SB_CH_EXIT, msg, (size_t)n);
}

int fj_sandbox_signal(fj_sandbox *sb, int signo)
{
    if (signo <= 0 || signo >= SB_NSIG)
        return -EINVAL;
    atomic_fetch_or(&sb->pending_external, 1ULL << signo);
    uint64_t one = 1;
    if (write(sb->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        return -errno;
    sb->vm.run->immediate_exit = 1;
    if (atomic_load(&sb->kick_armed))
        pthread_kill(sb->vcpu_thread, SB_KICK_SIGNAL);
    return 0;
}

int fj_sandbox_kill(fj_sandbox *sb) { return fj_sandbox_signal(sb, SIGKILL); }

static void kick(struct sandbox *sb)
{
    uint64_t one = 1;
    if (write(sb->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        return;
    sb->vm.run->immediate_exit = 1;
    if (atomic_load(&sb->kick_armed))
        pthread_kill(sb->vcpu_thread, SB_KICK_SIGNAL);
}

int sb_run_paused(struct sandbox *sb, struct sb_pause_job *job)
{
    job->done = false;
    pthread_mutex_lock(&sb->job_lock);
    if (!atomic_load(&sb->kick_armed) || sb->exited) {
        /* No vCPU thread: the guest is stopped already. */
        job->stopped_ns = fj_now_ns();
        job->result = job->fn(sb, job->arg);
        job->resumed_ns = fj_now_ns();
        pthread_mutex_unlock(&sb->job_lock);
        return job->result;
    }
    atomic_store(&sb->job, job);
    kick(sb);
    while (!job->done)
        pthread_cond_wait(&sb->job_cond, &sb->job_lock);
    pthread_mutex_unlock(&sb->job_lock);
    return job->result;
}

/* vCPU thread, between exits: runs a posted job with the guest stopped. */
static void run_job(struct sandbox *sb, uint64_t stopped_ns)
{
    struct sb_pause_job *job = atomic_exchange(&sb->job, NULL);
    if (!job)
        return;
    job->stopped_ns = stopped_ns;
    job->result = job->fn(sb, job->arg);
    job->resumed_ns = fj_now_ns();
    pthread_mutex_lock(&sb->job_lock);
    job->done = true;
    pthread_cond_broadcast(&sb->job_cond);
    pthread_mutex_unlock(&sb->job_lock);
}

static void learn_syscall_mode(struct sandbox *sb)
{
    struct kvm_sregs s;
    if (kvm_vm_get_sregs(&sb->vm, &s) == 0)
        sb->vm.syscall_mode = (s.cs.selector & 3) == 3 ? 1 : 2;
}

static void handle_syscall(struct sandbox *sb)
{
    if (!sb->vm.syscall_mode)
        learn_syscall_mode(sb);
    struct kvm_regs *r = kvm_vm_regs(&sb->vm);
    uint64_t a[6] = {r->rdi, r->rsi, r->rdx, r->r10, r->r8, r->r9};
    uint64_t nr = r->rax;
    /* Return to the caller first: a handler may replace the whole user
     * context (rt_sigreturn) and then returns SIG_REGS_REPLACED. In CPL0
     * mode the stub's sysretq does the return from RCX/R11. */
    r->r11 = (r->r11 & 0x3c7fd7) | 0x2;
    if (sb->vm.syscall_mode == 1) {
        r->rip = r->rcx;
        r->rflags = r->r11;
    }
    kvm_vm_regs_dirty(&sb->vm);
    int64_t ret = sys_dispatch(sb, nr, a);
    if (ret == SB_ERESTART) {
        /* Re-execute the SYSCALL instruction (2 bytes) with the same number. */
        r = kvm_vm_regs(&sb->vm);
        r->rax = nr;
        if (sb->vm.syscall_mode == 1)
            r->rip -= 2;
        else
            r->rcx -= 2;
    } else if (ret != SIG_REGS_REPLACED) {
        kvm_vm_regs(&sb->vm)->rax = (uint64_t)ret;
    }
}

static void crash(struct sandbox *sb, const char *what)
{
    struct kvm_regs *r = kvm_vm_regs(&sb->vm);
    char why[256];
    snprintf(why, sizeof(why), "%s (rip %#llx, exit reason %u)", what, (unsigned long long)r->rip,
             sb->vm.run->exit_reason);
    sb_exit(sb, 0, SIGKILL, why);
}

static void handle_exit(struct sandbox *sb)
{
    struct kvm_run *run = sb->vm.run;
    switch (run->exit_reason) {
    case KVM_EXIT_MMIO:
        if (run->mmio.phys_addr == layout_doorbell_gpa(sb->vm.ram_bytes) && run->mmio.is_write &&
            kvm_vm_regs(&sb->vm)->rip == layout_syscall_return_rip())
            handle_syscall(sb);
        else
            sig_fault(sb, SIGBUS, run->mmio.phys_addr, "access to unbacked memory");
        break;
    case KVM_EXIT_IO:
        if (run->io.port >= LAYOUT_EXC_PORT_BASE && run->io.port < LAYOUT_EXC_PORT_BASE + 32)
            sig_exception(sb, run->io.port - LAYOUT_EXC_PORT_BASE);
        else
            crash(sb, "unexpected port I/O");
        break;
    case KVM_EXIT_INTR:
        break;
    case KVM_EXIT_SHUTDOWN:
        crash(sb, "guest triple fault");
        break;
    case KVM_EXIT_HLT:
        crash(sb, "guest halted");
        break;
    case KVM_EXIT_FAIL_ENTRY:
        crash(sb, "KVM entry failed");
        break;
    case KVM_EXIT_INTERNAL_ERROR:
        crash(sb, "KVM internal error (emulation failed)");
        break;
    default:
        crash(sb, "unexpected exit");
        break;
    }
}

int fj_sandbox_run(fj_sandbox *sb)
{
    install_kick_handler();
    sb->vcpu_thread = pthread_self();
    sigset_t unblock;
    sigemptyset(&unblock);
    sigaddset(&unblock, SB_KICK_SIGNAL);
    pthread_sigmask(SIG_UNBLOCK, &unblock, NULL);
    atomic_store(&sb->kick_armed, 1);
    uint64_t stopped_ns = fj_now_ns();
    while (!sb->exited) {
        take_external(sb);
        if (atomic_load(&sb->job)) {
            run_job(sb, FJ_MAX(stopped_ns, sb->job_noticed_ns));
            sb->job_noticed_ns = 0;
        }
        sig_deliver_pending(sb);
        if (sb->exited)
            break;
        int err = kvm_vm_run(&sb->vm);
        stopped_ns = fj_now_ns();
        if (err == -EINTR || err == -EAGAIN)
            continue;
        if (err < 0) {
            char why[96];
            snprintf(why, sizeof(why), "KVM_RUN failed: %s", strerror(-err));
            sb_exit(sb, 0, SIGKILL, why);
            break;
        }
        handle_exit(sb);
    }
    pthread_mutex_lock(&sb->job_lock);
    atomic_store(&sb->kick_armed, 0);
    pthread_mutex_unlock(&sb->job_lock);
    run_job(sb, fj_now_ns()); /* a job posted as the guest exited */
    return sb->exit_status;
}
