/* The vCPU loops: one host thread per guest thread, each looping over its
 * vCPU's exits (system calls to sys/, exceptions and faults to core/sig.c),
 * delivering signals between exits; the kick that stops a running vCPU; and
 * stops, in which every vCPU parks with its registers saved while another
 * host thread works on the guest (how snapshots take their instant).
 *
 * Invariants: a vCPU thread holds big_lock except inside KVM_RUN, inside a
 * blocking wait (core/wait.c) and while parked; a parked thread's saved
 * registers are those the guest resumes with. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "kvm/kvm_calls.h"
#include "kvm/kvm_cpu.h"
#include "run/fast_calls.h"
#include "kvm/kvm_vdso.h"
#include "core/call_sites.h"
#include "core/proc.h"
#include "sys/sys.h"
#include "core/sig.h"
#include "api/vmm_api.h"

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

int fj_sandbox_signal(fj_sandbox *sb, int signo)
{
    if (signo <= 0 || signo >= SB_NSIG)
        return -EINVAL;
    atomic_fetch_or(&sb->pending_external, 1ULL << signo);
    sb_kick_all(sb);
    return 0;
}

int fj_sandbox_kill(fj_sandbox *sb) { return fj_sandbox_signal(sb, SIGKILL); }

static void save_all(struct sandbox *sb)
{
    for (unsigned i = 0; i < LAYOUT_MAX_VCPUS; i++) {
        struct sb_thread *t = sb->threads[i];
        if (t && t->state != SB_T_EXITED && t->cpu->fd >= 0)
            t->saved_err = kvm_state_save(t->cpu, &t->saved);
    }
}

/* With stop_lock held and big_lock not: asks every vCPU thread to park
 * (stop_ask), and waits until all but `unparked` (the caller's own) have
 * (stop_wait). */
static void stop_ask(struct sandbox *sb)
{
    pthread_mutex_lock(&sb->job_lock);
    atomic_store(&sb->stop_req, 1);
    pthread_mutex_unlock(&sb->job_lock);
    sb_kick_all(sb);
}

static void stop_wait(struct sandbox *sb, unsigned unparked)
{
    pthread_mutex_lock(&sb->job_lock);
    while (sb->parked + unparked < sb->running)
        pthread_cond_wait(&sb->job_cond, &sb->job_lock);
    pthread_mutex_unlock(&sb->job_lock);
}

static void stop_and_wait(struct sandbox *sb, unsigned unparked)
{
    stop_ask(sb);
    stop_wait(sb, unparked);
}

/* When the guest stopped for a stop asked at asked_ns: when its first
 * thread did (a thread still parked from an earlier stop counts from this
 * one's request); UINT64_MAX when none runs. */
static uint64_t first_park_ns(struct sandbox *sb, uint64_t asked_ns)
{
    uint64_t stopped = UINT64_MAX;
    for (unsigned i = 0; i < LAYOUT_MAX_VCPUS; i++) {
        struct sb_thread *t = sb->threads[i];
        if (t && t->state == SB_T_RUNNING)
            stopped = FJ_MIN(stopped, FJ_MAX(t->park_ns, asked_ns));
    }
    return stopped;
}

int sb_run_paused(struct sandbox *sb, struct sb_pause_job *job)
{
    pthread_mutex_lock(&sb->stop_lock);
    pthread_mutex_lock(&sb->job_lock);
    if (sb->running == 0 || sb->exited) {
        /* No vCPU thread: the guest is stopped already. */
        pthread_mutex_unlock(&sb->job_lock);
        pthread_mutex_lock(sb->big_lock);
        job->stopped_ns = fj_now_ns();
        save_all(sb);
        job->result = job->fn(sb, job->arg);
        job->resumed_ns = fj_now_ns();
        pthread_mutex_unlock(sb->big_lock);
        pthread_mutex_unlock(&sb->stop_lock);
        return job->result;
    }
    uint64_t asked_ns = fj_now_ns();
    pthread_mutex_unlock(&sb->job_lock);
    stop_and_wait(sb, 0);
    pthread_mutex_lock(sb->big_lock); /* free: every vCPU thread is parked or gone */
    uint64_t stopped = first_park_ns(sb, asked_ns);
    job->stopped_ns = stopped == UINT64_MAX ? asked_ns : stopped;
    job->result = job->fn(sb, job->arg);
    job->resumed_ns = fj_now_ns();
    pthread_mutex_unlock(sb->big_lock);
    sb_resume_others(sb);
    return job->result;
}

int sb_run_paused_all(struct sandbox *first, struct sb_pause_job *job)
{
    struct sb_procs *p = first->procs;
    struct sandbox *held[SB_MAX_PROCS];
    unsigned n_held = 0;
    uint64_t asked_ns = fj_now_ns();
    pthread_mutex_lock(first->big_lock);
    for (;;) {
        /* Processes not stopped yet (a fork may have made one meanwhile),
         * pinned so that none is freed while this stop holds it. A vfork
         * child is left to run until it execs or ends: its parent waits for
         * that before it can park. */
        struct sandbox *todo[SB_MAX_PROCS];
        unsigned n_todo = 0;
        bool vforking = false;
        for (unsigned i = 0; i < SB_MAX_PROCS; i++) {
            struct sandbox *sb = p->slot[i].sb;
            bool is_held = false;
            for (unsigned j = 0; j < n_held && !is_held; j++)
                is_held = held[j] == sb;
            if (!sb || is_held)
                continue;
            if (sb->vfork_parent && !sb->exited) {
                vforking = true;
                continue;
            }
            sb->pins++;
            todo[n_todo++] = sb;
        }
        if (n_todo == 0 && !vforking)
            break;
        if (n_todo == 0) { /* only vfork children are left: until they let go */
            pthread_cond_wait(&p->changed, first->big_lock);
            continue;
        }
        pthread_mutex_unlock(first->big_lock);  /* their threads take it on their way to park */
        for (unsigned i = 0; i < n_todo; i++) { /* all asked first: they park together */
            pthread_mutex_lock(&todo[i]->stop_lock);
            stop_ask(todo[i]);
        }
        for (unsigned i = 0; i < n_todo; i++) {
            stop_wait(todo[i], 0);
            held[n_held++] = todo[i];
        }
        pthread_mutex_lock(first->big_lock);
    }
    uint64_t stopped = UINT64_MAX;
    for (unsigned i = 0; i < n_held; i++) {
        if (held[i]->running == 0)
            save_all(held[i]); /* never started, or ended: nothing parked to save them */
        stopped = FJ_MIN(stopped, first_park_ns(held[i], asked_ns));
    }
    job->stopped_ns = stopped == UINT64_MAX ? asked_ns : stopped;
    job->result = job->fn(first, job->arg);
    job->resumed_ns = fj_now_ns();
    pthread_mutex_unlock(first->big_lock);
    for (unsigned i = 0; i < n_held; i++)
        sb_resume_others(held[i]);
    pthread_mutex_lock(first->big_lock);
    for (unsigned i = 0; i < n_held; i++)
        held[i]->pins--;
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(first->big_lock);
    return job->result;
}

int sb_stop_others(struct sandbox *sb)
{
    if (sb->live_threads <= 1)
        return 0;
    if (pthread_mutex_trylock(&sb->stop_lock) != 0)
        return SB_ERESTART;
    pthread_mutex_unlock(sb->big_lock); /* they take it on their way to park */
    stop_and_wait(sb, 1);
    pthread_mutex_lock(sb->big_lock);
    return 1;
}

void sb_resume_others(struct sandbox *sb)
{
    pthread_mutex_lock(&sb->job_lock);
    atomic_store(&sb->stop_req, 0);
    pthread_cond_broadcast(&sb->job_cond);
    pthread_mutex_unlock(&sb->job_lock);
    pthread_mutex_unlock(&sb->stop_lock);
}

/* Parks t for a stop: big_lock is let go meanwhile and held again after. */
static void park(struct sandbox *sb, struct sb_thread *t, uint64_t stopped_ns)
{
    pthread_mutex_unlock(sb->big_lock);
    t->park_ns = stopped_ns;
    t->saved_err = kvm_state_save(t->cpu, &t->saved);
    pthread_mutex_lock(&sb->job_lock);
    sb->parked++;
    pthread_cond_broadcast(&sb->job_cond);
    while (atomic_load(&sb->stop_req))
        pthread_cond_wait(&sb->job_cond, &sb->job_lock);
    sb->parked--;
    pthread_mutex_unlock(&sb->job_lock);
    pthread_mutex_lock(sb->big_lock);
}

static void learn_syscall_mode(struct kvm_vcpu *cpu)
{
    struct kvm_sregs s;
    if (kvm_vcpu_get_sregs(cpu, &s) == 0)
        cpu->syscall_mode = (s.cs.selector & 3) == 3 ? 1 : 2;
}

/* Calls Linux restarts after a handler with SA_RESTART (those a signal
 * interrupts with ERESTARTSYS): reads and writes, socket transfers,
 * waits for children and futexes. */
static bool restartable(uint64_t nr)
{
    switch (nr) {
    case 0: case 1: case 17: case 18: case 19: case 20: /* read write pread64 pwrite64 readv writev */
    case 43: case 44: case 45: case 46: case 47: case 288: /* accept sendto recvfrom sendmsg recvmsg accept4 */
    case 61: case 247: case 202: /* wait4 waitid futex */
        return true;
    default:
        return false;
    }
}

static void handle_syscall(struct sandbox *sb, struct kvm_vcpu *cpu)
{
    if (!cpu->syscall_mode)
        learn_syscall_mode(cpu);
    struct kvm_regs *r = kvm_vcpu_regs(cpu);
    uint64_t a[6] = {r->rdi, r->rsi, r->rdx, r->r10, r->r8, r->r9};
    uint64_t nr = r->rax;
    if (cpu->syscall_mode == 1 && fast_calls_rewrite_sites(sb))
        sb_patch_call_site(sb, sb_self(sb), r->rcx, nr); /* its next call skips SYSCALL */
    /* Return to the caller first: a handler may replace the whole user
     * context (rt_sigreturn) and then returns SIG_REGS_REPLACED, and a new
     * thread starts from these registers. In CPL0 mode the stub's sysretq
     * does the return from RCX/R11. */
    r->r11 = kvm_calls_user_rflags(r->r11);
    if (cpu->syscall_mode == 1) {
        r->rip = r->rcx;
        r->rflags = r->r11;
    }
    kvm_vcpu_regs_dirty(cpu);
    int64_t ret = sys_dispatch(sb, nr, a);
    if (ret == -EINTR && restartable(nr) && sig_restarts_call(sb))
        ret = SB_ERESTART; /* after the handler, the call is made again */
    if (ret == SB_ERESTART) {
        /* Re-execute the SYSCALL instruction (2 bytes) with the same number. */
        r = kvm_vcpu_regs(cpu);
        r->rax = nr;
        if (cpu->syscall_mode == 1)
            r->rip -= 2;
        else
            r->rcx -= 2;
    } else if (ret != SIG_REGS_REPLACED) {
        kvm_vcpu_regs(cpu)->rax = (uint64_t)ret;
    }
    fast_calls_after_exit(sb, cpu, nr, a);
}

static void crash(struct sandbox *sb, struct kvm_vcpu *cpu, const char *what)
{
    char why[256];
    snprintf(why, sizeof(why), "%s (rip %#llx, exit reason %u)", what,
             (unsigned long long)kvm_vcpu_regs(cpu)->rip, cpu->run->exit_reason);
    sb_exit(sb, 0, SIGKILL, why);
}

static void handle_exit(struct sandbox *sb, struct kvm_vcpu *cpu)
{
    struct kvm_run *run = cpu->run;
    switch (run->exit_reason) {
    case KVM_EXIT_MMIO:
        if (run->mmio.phys_addr == layout_doorbell_gpa(sb->vm.ram_bytes) && run->mmio.is_write &&
            kvm_vcpu_regs(cpu)->rip == layout_syscall_return_rip())
            handle_syscall(sb, cpu);
        else if (run->mmio.phys_addr < sb->vm.ram_bytes) /* RAM no mapping reaches (kvm_vm_cover) */
            sig_fault(sb, SIGSEGV, run->mmio.phys_addr, "access to unmapped memory");
        else
            sig_fault(sb, SIGBUS, run->mmio.phys_addr, "access to unbacked memory");
        break;
    case KVM_EXIT_IO:
        if (run->io.port >= LAYOUT_EXC_PORT_BASE && run->io.port < LAYOUT_EXC_PORT_BASE + 32)
            sig_exception(sb, run->io.port - LAYOUT_EXC_PORT_BASE);
        else
            crash(sb, cpu, "unexpected port I/O");
        break;
    case KVM_EXIT_INTR:
        break;
    case KVM_EXIT_SHUTDOWN:
        crash(sb, cpu, "guest triple fault");
        break;
    case KVM_EXIT_HLT:
        crash(sb, cpu, "guest halted");
        break;
    case KVM_EXIT_FAIL_ENTRY:
        crash(sb, cpu, "KVM entry failed");
        break;
    case KVM_EXIT_INTERNAL_ERROR:
        crash(sb, cpu, "KVM internal error (emulation failed)");
        break;
    default:
        crash(sb, cpu, "unexpected exit");
        break;
    }
}

/* The loop of guest thread t until it or the sandbox exits. */
static void thread_loop(struct sandbox *sb, struct sb_thread *t)
{
    sb_current = t;
    sigset_t unblock;
    sigemptyset(&unblock);
    sigaddset(&unblock, SB_KICK_SIGNAL);
    sigaddset(&unblock, SB_TIMER_SIGNAL);
    pthread_sigmask(SIG_UNBLOCK, &unblock, NULL);
    pthread_mutex_lock(&sb->job_lock);
    t->host = pthread_self();
    t->host_tid = (pid_t)syscall(SYS_gettid);
    atomic_store(&t->kick_armed, 1);
    pthread_mutex_unlock(&sb->job_lock);
    pthread_mutex_lock(sb->big_lock);
    uint64_t stopped_ns = fj_now_ns();
    while (!sb->exited && t->state != SB_T_EXITED) {
        t->cpu->run->immediate_exit = 0; /* before stop_req is read: a later kick still stops KVM_RUN */
        if (atomic_load(&sb->stop_req)) {
            park(sb, t, FJ_MAX(stopped_ns, t->noticed_ns));
            t->noticed_ns = 0;
            stopped_ns = fj_now_ns();
            continue;
        }
        sb_take_external(sb);
        sig_deliver_pending(sb);
        if (sb->exited || t->state == SB_T_EXITED)
            break;
        kvm_vdso_refresh(&sb->vm);
        pthread_mutex_unlock(sb->big_lock);
        int err = kvm_vcpu_run(t->cpu);
        stopped_ns = fj_now_ns();
        pthread_mutex_lock(sb->big_lock);
        kvm_calls_resolve(&sb->vm, t->cpu); /* out of the stub's fast path before anything reads the registers */
        if (err == -EINTR || err == -EAGAIN)
            continue;
        if (err < 0) {
            char why[96];
            snprintf(why, sizeof(why), "KVM_RUN failed: %s", strerror(-err));
            sb_exit(sb, 0, SIGKILL, why);
            break;
        }
        handle_exit(sb, t->cpu);
    }
    pthread_mutex_unlock(sb->big_lock);
    uint64_t cpu_ns = fj_clock_ns(CLOCK_THREAD_CPUTIME_ID);
    pthread_mutex_lock(&sb->job_lock);
    atomic_fetch_add(&sb->exited_cpu_ns, cpu_ns);
    atomic_store(&t->kick_armed, 0);
    sb->running--;
    pthread_cond_broadcast(&sb->job_cond); /* a stop waiting for this thread */
    pthread_mutex_unlock(&sb->job_lock);
}

static void *thread_main(void *p)
{
    struct sb_thread *t = p;
    thread_loop(t->sb, t);
    return NULL;
}

/* After a process's main thread left its loop: the process lives while any
 * thread does; then every host thread is joined. */
static void join_threads(struct sandbox *sb)
{
    pthread_mutex_lock(&sb->job_lock);
    while (sb->running > 0)
        pthread_cond_wait(&sb->job_cond, &sb->job_lock);
    pthread_mutex_unlock(&sb->job_lock);
    for (unsigned i = 1; i < LAYOUT_MAX_VCPUS; i++) {
        struct sb_thread *t = sb->threads[i];
        if (t && t->host_started) {
            pthread_join(t->host, NULL);
            t->host_started = false;
        }
    }
}

/* The main host thread of a process besides the first. */
static void *process_main(void *p)
{
    struct sb_thread *t = p;
    struct sandbox *sb = t->sb;
    fast_calls_start(sb);
    thread_loop(sb, t);
    join_threads(sb);
    fast_calls_stop(sb);
    sb_current = NULL;
    sb_proc_finish(sb);
    return NULL;
}

int fj_sandbox_run(fj_sandbox *sb)
{
    install_kick_handler();
    sb->thread_main = thread_main;
    sb->procs->process_main = process_main;
    struct sb_thread *main_thread = sb->threads[0];
    kvm_vdso_refresh(&sb->vm); /* first from here: it reads vCPU 0, which no one runs yet */
    /* The main thread counts as running first: a stop that comes while the
     * others start waits for it to park (and save its registers). */
    pthread_mutex_lock(&sb->job_lock);
    sb->running++;
    if (main_thread->state != SB_T_EXITED)
        main_thread->state = SB_T_RUNNING;
    pthread_mutex_unlock(&sb->job_lock);
    /* Threads restored with a child start with it. */
    pthread_mutex_lock(sb->big_lock);
    for (unsigned i = 1; i < LAYOUT_MAX_VCPUS; i++) {
        struct sb_thread *t = sb->threads[i];
        if (t && t->state == SB_T_NEW && sb_thread_start(t) < 0)
            sb_exit(sb, 0, SIGKILL, "could not start a host thread for a guest thread");
    }
    if (!sb->exited && sb_procs_start_restored(sb) < 0) /* a branch's other processes */
        sb_exit(sb, 0, SIGKILL, "could not start the host thread of a guest process");
    pthread_mutex_unlock(sb->big_lock);
    fast_calls_start(sb);
    thread_loop(sb, main_thread);
    join_threads(sb);
    fast_calls_stop(sb);
    sb_procs_end(sb); /* the sandbox's other processes end with it */
    sb_current = NULL;
    return sb->exit_status;
}
