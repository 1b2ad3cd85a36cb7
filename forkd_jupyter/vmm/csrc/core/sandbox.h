/* A sandbox: one guest process in one VM, and everything the VMM keeps for
 * it. Each guest thread runs on a vCPU of its own, served by a host thread
 * of its own (struct sb_thread). Guest code of all threads runs in parallel;
 * the VMM state (address space, fd table, files, signals, futexes) is
 * touched only under big_lock, which a vCPU thread holds while it serves an
 * exit and drops while its guest runs or it blocks. Host threads outside the
 * guest only set pending_external and kick, or stop every vCPU
 * (sb_run_paused). */
#ifndef SANDBOX_H
#define SANDBOX_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "core/fdt.h"
#include "kvm/kvm_vm.h"
#include "kvm/kvm_state.h"
#include "core/mm.h"

struct fs_view;
struct snap_copier;
struct snapshot;
struct sb_fast;

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

/* Signal state. The sandbox's copy holds the actions and the signals sent
 * to the process (pending); each thread's copy holds its mask, the signals
 * sent to that thread, its fault addresses and its alternate stack (its
 * act[] is unused). */
struct sb_signals {
    struct sb_sigaction act[SB_NSIG];
    uint64_t blocked;
    uint64_t pending;          /* under big_lock */
    uint64_t fault_addr[SB_NSIG]; /* si_addr of a pending synchronous fault, or 0 */
    gva_t altstack_sp;
    uint64_t altstack_size;
    int altstack_flags;
    /* rt_sigsuspend returned: the mask in force before it, which a signal
     * frame saves (its handler runs with the suspend mask, and the old one
     * returns at rt_sigreturn), or which returns at once when no handler
     * runs. */
    uint64_t mask_after;
    bool restore_after;
};

/* Work run while every vCPU of the guest is stopped (snapshots). */
struct sb_pause_job {
    int (*fn)(struct sandbox *sb, void *arg);
    void *arg;
    int result;
    uint64_t stopped_ns; /* when the guest stopped for this job */
    uint64_t resumed_ns; /* when the job finished (the guest resumes) */
};

enum sb_thread_state { SB_T_NEW, SB_T_RUNNING, SB_T_EXITED };
enum sb_wait_kind { SB_WAIT_FILES, SB_WAIT_FUTEX, SB_WAIT_VFORK };

/* A guest thread and the vCPU it runs on. */
#define SB_IN_CALL_FILES 4 /* more than any call names by descriptor but poll's */

struct sb_thread {
    struct sandbox *sb;
    struct kvm_vcpu *cpu;     /* &sb->vm.vcpu for the main thread, else &own_cpu */
    struct kvm_vcpu own_cpu;
    unsigned id;              /* slot in sb->threads = vCPU id */
    bool unusable;            /* its vCPU could not be made */
    uint32_t tid;
    enum sb_thread_state state; /* under big_lock */
    struct sb_signals sig;    /* per-thread part (see struct sb_signals) */
    gva_t clear_child_tid;    /* zeroed and futex-woken when the thread exits */
    uint64_t affinity;        /* sched_setaffinity's cores; 0: every core (inherited by clone) */
    gva_t robust_list;
    char comm[16];            /* PR_SET_NAME's; clone and fork copy it, exec clears it ("") */
    int wake_fd;              /* eventfd: written to end this thread's blocking wait */
    _Atomic int kick_armed;   /* its host thread is running (pthread_kill reaches it) */
    pthread_t host;
    pid_t host_tid;           /* host's thread id, set with kick_armed */
    bool host_started;        /* host must be joined */
    /* A blocking wait in progress (under big_lock). */
    bool waiting;
    bool vfork_waiting;       /* the parent side of a vfork, until its child lets go */
    uint64_t sigwait_set;     /* rt_sigtimedwait: signals that end the wait */
    enum sb_wait_kind wait_kind;
    gva_t futex_addr;         /* with futex_obj 0: the address; else the offset in the object */
    uint64_t futex_obj;       /* a futex in shared memory: the shared object's inode, else 0 */
    uint32_t futex_bitset;
    bool futex_woken;
    /* Open files the system call in progress named by descriptor
     * (sys_fd_file), each holding a reference until the call returns, so a
     * close by another thread meanwhile (or the process's end) leaves the
     * file open for this call, as Linux does (under big_lock). */
    struct file *in_call[SB_IN_CALL_FILES];
    unsigned n_in_call;
    /* Stops (sb_run_paused): registers as of the stop, when it noticed. */
    struct kvm_state saved;
    int saved_err;
    uint64_t noticed_ns, park_ns;
};

/* A blocking system call returns this to be restarted transparently after
 * a pause job (the vCPU re-executes the SYSCALL instruction). */
#define SB_ERESTART (-512)
/* A call served outside its thread's vCPU loop (run/fast_calls.c) that
 * would have to wait returns this before any effect: it is made again the
 * usual way, with an exit. sb_serving_fast is set on that host thread
 * meanwhile. */
#define SB_EWOULDWAIT (-513)
extern _Thread_local bool sb_serving_fast;

struct ws_hint;

#define SYS_MAX 512 /* system-call numbers counted (sys/ dispatches below it) */

/* What the guest asked of the system-call layer; counted by sys/. */
/* /proc/<pid>/io: bytes the read and write families moved, and their calls. */
struct sys_io_counts {
    uint64_t rchar, wchar, syscr, syscw;
};

struct sys_stats {
    uint64_t calls;
    uint64_t unsupported_calls;
    uint32_t per_nr[SYS_MAX]; /* calls by number */
    uint64_t ns_per_nr[SYS_MAX]; /* time the VMM spent serving them (the exit itself excluded) */
    uint32_t unsupported_per_nr[SYS_MAX];
    uint64_t fast_calls; /* of calls, those served without a VM exit (run/fast_calls.c) */
    struct sys_io_counts io;
};

/* What a process used, as wait4's rusage and getrusage(RUSAGE_CHILDREN)
 * report it: CPU time (the VMM's included; there is no system time apart)
 * and the peak resident size. */
struct sb_usage {
    uint64_t cpu_ns;
    uint64_t maxrss_kib;
};

/* A process's limits and priorities, as a program set them: fork copies
 * them, exec keeps them, a snapshot holds them (its children and a saved
 * snapshot's have them back). */
struct snap_stage;

struct sb_limits {
    /* setrlimit's values for the resources whose bit is set in rlim_set,
     * the sandbox's defaults for the others (sys_proc.c). RLIMIT_AS and
     * RLIMIT_DATA bound the process's mappings (sys_mem.c), RLIMIT_NOFILE
     * its fds (fdt.limit, which a table's clone carries with it). */
    struct rlimit rlim[RLIM_NLIMITS];
    uint32_t rlim_set;
    int nice;   /* setpriority's value (kept, not applied) */
    int ioprio; /* ioprio_set's, 0 when none was set (kept, not applied) */
};

/* prctl(2)'s settings of a process (sys/sys_prctl.c). Fork clears
 * pdeath_signal and child_subreaper and copies the rest; exec keeps them
 * all but keep_caps; a snapshot holds them (in memory). */
struct sb_prctl {
    int pdeath_signal;    /* sent to this process when its parent ends; 0: none */
    bool child_subreaper; /* its orphaned descendants become its children */
    bool no_new_privs;    /* kept and reported (nothing in a sandbox raises privileges) */
    bool keep_caps;
    bool thp_disable;
    uint64_t timer_slack_ns; /* 0: Linux's default, 50 us */
};

struct sandbox {
    struct kvm_vm vm;
    struct mm mm;
    struct fdt fdt;
    struct fs_view *view;
    struct sb_signals sig;  /* actions and process-directed signals */
    struct sys_stats stats;
    int ctl_host_fd;        /* socket to the host side; guest fd 3 reads from it */
    _Atomic uint64_t pending_external; /* signals sent from host threads (bit n = signo n) */
    pthread_mutex_t *big_lock; /* the VMM state; see the top of this file: procs->lock, one for
                                  every process of the sandbox */
    struct sb_procs *procs;    /* the sandbox's processes (core/proc.h); shared by them */
    struct sandbox *parent;    /* the process that made this one, NULL for the first */
    struct sandbox *vfork_parent; /* vfork: the parent, waiting until this one execs or ends; this
                                     process runs on its memory until then */
    unsigned vfork_children;   /* children running on this process's memory */
    struct sb_thread *vfork_thread; /* vfork: the parent's thread waiting until this one
                                       execs or ends (several threads may vfork at once) */
    struct sb_thread *threads[LAYOUT_MAX_VCPUS]; /* by vCPU id; [0] the main thread, never NULL */
    unsigned live_threads;     /* guest threads not exited (under big_lock) */
    /* Stops: job_lock guards running/parked, job_cond signals their changes. */
    pthread_mutex_t job_lock;
    pthread_cond_t job_cond;
    pthread_mutex_t stop_lock; /* one stop at a time */
    unsigned running;          /* host threads inside their vCPU loop */
    unsigned parked;           /* of those, stopped for the current stop */
    _Atomic int stop_req;
    unsigned pins; /* stops of every process (sb_run_paused_all) holding this one: it is not
                      freed meanwhile (under big_lock) */
    _Atomic uint64_t exited_cpu_ns;
    struct sb_usage children; /* children waited for, with theirs (under big_lock) */
    timer_t itimer[3];        /* ITIMER_REAL, VIRTUAL, PROF (sys/sys_itimer.c), made on first use */
    bool itimer_made[3]; /* CPU time of vCPU threads that ended */
    void *(*thread_main)(void *thread); /* a host thread's vCPU loop (run/, set by fj_sandbox_run) */
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
    /* The pages written in the epoch the last diff ended, or NULL, and the
     * ones it left writable (reported by the next whether written or not);
     * how many diffs in a row left pages writable, and how many in a row
     * found nothing changed (snap_unchanged.h). */
    uint64_t *diff_written;
    uint64_t *diff_kept;
    uint32_t diff_kept_epochs;
    uint32_t diff_idle_run;
    struct snap_stage *stage; /* where its diffs' pages are staged (snap/snap_stage.h), or NULL */
    /* Releases copier, last_snap, hint, diff_written and stage. Set by snap/ when it attaches
     * them; sandbox_free calls it first (core/ never calls snap/ itself). */
    void (*lineage_release)(struct sandbox *sb);
    uint64_t start_ns;
    struct sb_limits limits;
    struct sb_prctl prctl;
    /* System V segments this process attached (core/sysv_shm.h). */
    struct sysv_attach *sysv_attached;
    size_t n_sysv_attached, cap_sysv_attached;
    struct sb_fast *fast; /* the poller serving calls without exits (run/fast_calls.c), or NULL */
    /* Trampolines of patched system-call sites (core/call_sites.c): the
     * area being filled and its slots used; 0 until the first. */
    gva_t call_tramps;
    uint32_t call_tramps_used, call_tramp_areas;
    /* Held while sb->vm is replaced (execve, under big_lock): the poller
     * reads the call boxes in sb->vm without big_lock, under this. */
    pthread_mutex_t calls_lock;
};

/* A sandbox with its host channel and locks but no VM yet; NULL and *err on
 * failure. sandbox_free releases whatever parts exist. */
struct sandbox *sandbox_alloc(int ctl_fd, int *err);
/* The first process of a sandbox gets its set of processes (core/proc.h:
 * sb_procs_new) right after; a child process joins its parent's. */
void sandbox_free(struct sandbox *sb);
/* Builds the address space (stack, ELF and its interpreter, brk) and puts the
 * vCPU at the program's entry; a sandbox_alloc'ed sandbox with a VM. */
int sandbox_load_program(struct sandbox *sb, const char *exe_path, const char *const *argv,
                         const char *const *envp);
/* A program for sandbox_load_into: its content in fd (left open) when
 * >= 0, else the host file name; the guest knows it by name. open_interp,
 * when set, opens the dynamic loader the program names (a descriptor the
 * loading closes, or -errno): a program the guest wrote names any path
 * there, which must resolve in the guest's view, never on the host. */
struct program_source {
    const char *name;
    int fd;
    int (*open_interp)(void *ctx, const char *interp);
    void *ctx;
};
/* The same into a VM and address space of their own (execve); mm needs
 * mm_destroy even on failure. */
int sandbox_load_into(struct kvm_vm *vm, struct mm *mm, const struct program_source *exe,
                      const char *const *argv, const char *const *envp);

/* Writes one outer frame to the host; -errno (-EPIPE when the host is gone). */
int sb_emit(struct sandbox *sb, enum sb_channel ch, const void *buf, size_t len);

/* The calling vCPU thread's guest thread (the main thread when called from
 * a host thread that runs no vCPU of sb), and its vCPU. */
extern _Thread_local struct sb_thread *sb_current;
static inline struct sb_thread *sb_self(struct sandbox *sb)
{
    struct sb_thread *t = sb_current;
    return t && t->sb == sb ? t : sb->threads[0];
}
static inline struct kvm_vcpu *sb_cpu(struct sandbox *sb) { return sb_self(sb)->cpu; }
/* The program's name, the last component of its path (/proc's comm and
 * Name, PR_GET_NAME). */
static inline const char *sb_program_name(const struct sandbox *sb)
{
    const char *slash = strrchr(sb->exe_path, '/');
    return slash ? slash + 1 : sb->exe_path;
}
/* A thread's name (/proc's comm and Name, PR_GET_NAME): what PR_SET_NAME
 * set, else the program's; t NULL: the main thread's (the process's). */
static inline const char *sb_thread_name(const struct sandbox *sb, const struct sb_thread *t)
{
    if (!t)
        t = sb->threads[0];
    return t && t->comm[0] ? t->comm : sb_program_name(sb);
}

/* Under big_lock, which it drops while blocked: waits until host_fd is
 * readable (POLLIN) or writable (POLLOUT) (0), a signal arrives (-EINTR),
 * timeout_ns passes (-ETIMEDOUT; < 0 waits forever), the guest is being
 * stopped (SB_ERESTART) or, with host_fd < 0, another thread may have
 * changed a file's readiness (0: the caller checks again). */
int sb_wait_fd(struct sandbox *sb, int host_fd, short events, int64_t timeout_ns);
/* Like sb_wait_fd(-1), ended only by sb_futex_wake of this thread
 * (t->futex_woken, 0), a signal, the timeout or a stop. */
int sb_wait_futex(struct sandbox *sb, int64_t timeout_ns);
/* The parent side of vfork: waits (signals and stops aside) until
 * the calling thread's vfork_waiting is cleared, the process ends or SIGKILL is pending. */
void sb_wait_vfork(struct sandbox *sb);
/* Under big_lock: a file's readiness may have changed; wakes the threads
 * waiting on files, in every process of the sandbox (core/kick.c). */
void sb_notify(struct sandbox *sb);
/* Signal that kicks a vCPU thread out of KVM_RUN (run/ installs its handler). */
#define SB_KICK_SIGNAL (SIGRTMIN + 7)
/* Signal an interval timer sends to the vCPU thread that set it (sys/sys_itimer.c). */
#define SB_TIMER_SIGNAL (SIGRTMIN + 8)
/* Ends the blocking wait of t (t->wake_fd, and KVM_RUN by signal). */
void sb_kick(struct sb_thread *t);
/* Takes job_lock; kicks every live thread. */
void sb_kick_all(struct sandbox *sb);

/* Moves signals host threads queued (pending_external) into the process's
 * pending set; under big_lock. */
void sb_take_external(struct sandbox *sb);

/* True when a signal is deliverable to the calling thread now (or the
 * sandbox or the thread is ending): blocking calls then return -EINTR. */
bool sb_signal_pending(struct sandbox *sb);

/* A vCPU thread of sb, under big_lock: stops every other vCPU thread of
 * sb (fork copies a process as one thread sees it). 1 when stopped (then
 * sb_resume_others), 0 when there were none, SB_ERESTART when another
 * stop is under way (the caller's system call is made again after it). */
int sb_stop_others(struct sandbox *sb);
void sb_resume_others(struct sandbox *sb);

/* Any host thread that runs no vCPU of sb: stops every vCPU (each saves its
 * registers in its sb_thread), runs job->fn on the caller's thread under
 * big_lock, resumes. Returns job->fn's result. */
int sb_run_paused(struct sandbox *sb, struct sb_pause_job *job);
/* The same for every process of first's sandbox at one instant: each
 * process's vCPUs park (one after the other, the table read again until no
 * process is left running), then job->fn runs once under big_lock. */
int sb_run_paused_all(struct sandbox *first, struct sb_pause_job *job);

/* Raises signo in the calling thread (faults, SIGPIPE), or in the process
 * (kill): delivered to the main thread unless it blocks signo. */
void sb_raise(struct sandbox *sb, int signo);
void sb_raise_process(struct sandbox *sb, int signo);

/* Ends the guest, every thread: exit_group status, or death by signal
 * (core/proc.h). */
void sb_exit(struct sandbox *sb, int status, int fatal_signal, const char *why);

/* Guest threads (core/thread.c), under big_lock. Whether clone flags ask
 * for a thread (the rest would be a new process). */
bool sb_clone_makes_thread(uint64_t flags);
/* clone/clone3 of a thread (sb_clone_makes_thread(flags)):
 * the new thread's id, or -errno (-EAGAIN past LAYOUT_MAX_VCPUS). */
int sb_thread_clone(struct sandbox *sb, uint64_t flags, gva_t stack, gva_t parent_tid, gva_t child_tid,
                    gva_t tls);
/* The calling thread exits (exit(2)); the last one ends the sandbox. */
void sb_thread_exit(struct sandbox *sb, int status);
/* Adds a thread on vCPU id (a child restored from a snapshot); not started. */
struct sb_thread *sb_thread_add(struct sandbox *sb, unsigned id);
struct sb_thread *sb_thread_by_tid(struct sandbox *sb, uint32_t tid);
/* t is about to wait on the futex at addr: its key (shared memory's
 * futexes are keyed by object and offset, so other processes reach them). */
void sb_futex_arm(struct sandbox *sb, struct sb_thread *t, gva_t addr);
/* Wakes up to n waiters on addr whose bitset meets bitset; how many. */
int sb_futex_wake(struct sandbox *sb, gva_t addr, int n, uint32_t bitset);
/* Moves up to n waiters on from to wait on to; how many. */
int sb_futex_requeue(struct sandbox *sb, gva_t from, gva_t to, int n);
/* CPU time of every vCPU thread of the guest, exited ones included. */
uint64_t sb_process_cpu_ns(struct sandbox *sb);
/* CPU time of guest thread t (its vCPU thread's; 0 before it runs). */
uint64_t sb_thread_cpu_ns(struct sandbox *sb, struct sb_thread *t);
/* Context switches [voluntary, involuntary] of the host threads of guest
 * thread only, or of every live thread when only is NULL (read from the
 * host's /proc: what the guest's threads waited for or were preempted). */
void sb_ctx_switches(struct sandbox *sb, struct sb_thread *only, uint64_t out[2]);
/* ru (struct rusage, the guest's layout is the host's) as usage says, CPU
 * time as user time; the rest 0. */
struct rusage;
void sb_usage_rusage(const struct sb_usage *usage, struct rusage *ru);
/* cpu (set up, its own TSS) gets the registers of parent's thread at its
 * system call, returning 0, on stack when not 0, with FS base tls when
 * set_tls. */
int sb_copy_cpu_state(struct sb_thread *parent, struct kvm_vcpu *cpu, bool set_tls, gva_t stack, gva_t tls);
/* Starts the host thread of t (a new or restored thread); -errno. */
int sb_thread_start(struct sb_thread *t);

#endif
