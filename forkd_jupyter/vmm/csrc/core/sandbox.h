/* A sandbox: one guest process in one VM, and everything the VMM keeps for
 * it. The vCPU thread (the one in sandbox_run) is the only one that touches
 * guest registers, memory and the fd table while the guest runs; other
 * threads only set `pending` bits and write wake_fd. */
#ifndef SANDBOX_H
#define SANDBOX_H

#include <pthread.h>
#include <signal.h>

#include "core/fdt.h"
#include "kvm/kvm_vm.h"
#include "core/mm.h"

struct fs_view;
struct snap_copier;
struct snapshot;

/* Channels of the stream the VMM writes to ctl_host_fd (outer frames
 * [u8 channel][u32 LE length][payload]). */
enum sb_channel { SB_CH_STDOUT = 1, SB_CH_STDERR = 2, SB_CH_CTL = 3, SB_CH_EXIT = 4 };

#define SB_NSIG 65

struct sb_sigaction {
    uint64_t handler; /* SIG_DFL 0, SIG_IGN 1, else a guest address */
    uint64_t flags;
    uint64_t restorer;
    uint64_t mask;
};

struct sb_signals {
    struct sb_sigaction act[SB_NSIG];
    uint64_t blocked;
    uint64_t pending;          /* raised inside the guest, vCPU thread only */
    uint64_t fault_addr[SB_NSIG]; /* si_addr of a pending synchronous fault, or 0 */
    gva_t altstack_sp;
    uint64_t altstack_size;
    int altstack_flags;
};

/* Work run on the vCPU thread while the guest is stopped (snapshots). */
struct sb_pause_job {
    int (*fn)(struct sandbox *sb, void *arg);
    void *arg;
    int result;
    uint64_t stopped_ns; /* when the vCPU stopped for this job */
    uint64_t resumed_ns; /* when the job finished (the guest resumes) */
    bool done;
};

/* A blocking system call returns this to be restarted transparently after
 * a pause job (the vCPU re-executes the SYSCALL instruction). */
#define SB_ERESTART (-512)

struct ws_hint;

#define SYS_MAX 512 /* system-call numbers counted (sys/ dispatches below it) */

/* What the guest asked of the system-call layer; counted by sys/. */
struct sys_stats {
    uint64_t calls;
    uint64_t unsupported_calls;
    uint32_t per_nr[SYS_MAX]; /* calls by number */
    uint64_t ns_per_nr[SYS_MAX]; /* time the VMM spent serving them (the exit itself excluded) */
    uint32_t unsupported_per_nr[SYS_MAX];
};

struct sandbox {
    struct kvm_vm vm;
    struct mm mm;
    struct fdt fdt;
    struct fs_view *view;
    struct sb_signals sig;
    struct sys_stats stats;
    int ctl_host_fd;        /* socket to the host side; guest fd 3 reads from it */
    int wake_fd;            /* eventfd: written to interrupt blocking waits */
    _Atomic uint64_t pending_external; /* signals sent from other threads (bit n = signo n) */
    _Atomic int kick_armed; /* the vCPU thread is in or about to enter KVM_RUN */
    pthread_mutex_t job_lock;  /* guards job and its done flag */
    pthread_cond_t job_cond;
    struct sb_pause_job *_Atomic job; /* posted by another thread, run by the vCPU thread */
    uint64_t job_noticed_ns;   /* vCPU thread: when a blocking wait saw the job */
    pthread_t vcpu_thread;
    bool vcpu_thread_set;
    int exit_status;        /* valid once exited: code, or 128 + fatal signal */
    int fatal_signal;
    bool exited;
    char exit_reason[256];
    uint32_t pid;
    uint64_t brk_hint;
    char exe_path[4096];    /* guest path of the main executable (= host path) */
    struct snap_copier *copier; /* userfaultfd state for live snapshots, or NULL */
    struct snapshot *last_snap; /* previous snapshot (or the one spawned from): what diff builds on */
    struct ws_hint *hint;       /* working-set hint of this lineage (snap_hint.h), or NULL */
    /* Releases copier, last_snap and hint. Set by snap/ when it attaches
     * them; sandbox_free calls it first (core/ never calls snap/ itself). */
    void (*lineage_release)(struct sandbox *sb);
    uint64_t start_ns;
};

/* A sandbox with its host channel and locks but no VM yet; NULL and *err on
 * failure. sandbox_free releases whatever parts exist. */
struct sandbox *sandbox_alloc(int ctl_fd, int *err);
void sandbox_free(struct sandbox *sb);
/* Builds the address space (stack, ELF and its interpreter, brk) and puts the
 * vCPU at the program's entry; a sandbox_alloc'ed sandbox with a VM. */
int sandbox_load_program(struct sandbox *sb, const char *exe_path, const char *const *argv,
                         const char *const *envp);

/* Writes one outer frame to the host; -errno (-EPIPE when the host is gone). */
int sb_emit(struct sandbox *sb, enum sb_channel ch, const void *buf, size_t len);

/* Blocks until host_fd is readable (POLLIN) or writable (POLLOUT), an
 * interrupt arrives (-EINTR), or timeout_ns passes (-ETIMEDOUT; < 0 waits
 * forever). host_fd < 0 just sleeps. */
int sb_wait_fd(struct sandbox *sb, int host_fd, short events, int64_t timeout_ns);

/* Moves signals other threads queued (pending_external) into the guest's
 * pending set; vCPU thread. */
void sb_take_external(struct sandbox *sb);

/* True when a signal is deliverable now: blocking calls then return -EINTR. */
bool sb_signal_pending(struct sandbox *sb);

/* Any thread but the vCPU's: stops the guest, runs job->fn on the vCPU
 * thread, resumes. Returns job->fn's result, or -ESRCH when the guest is not
 * running (then fn is run on the caller's thread, the guest being stopped). */
int sb_run_paused(struct sandbox *sb, struct sb_pause_job *job);

/* Raises signo inside the guest (kill/tgkill to itself, faults). */
void sb_raise(struct sandbox *sb, int signo);

/* Ends the guest: exit_group status, or death by signal. */
void sb_exit(struct sandbox *sb, int status, int fatal_signal, const char *why);

#endif
