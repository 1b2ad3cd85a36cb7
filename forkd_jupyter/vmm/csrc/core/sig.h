/* Guest signals: delivery with Linux's x86-64 rt_sigframe, rt_sigreturn,
 * and the conversion of guest exceptions into signals. */
#ifndef SIG_H
#define SIG_H

#include "core/sandbox.h"

/* Linux x86-64 siginfo_t, as the guest reads it. */
struct g_siginfo {
    int32_t si_signo, si_errno, si_code, pad;
    uint64_t f0, f1; /* kill: pid|uid in f0; fault: si_addr in f0 */
    uint8_t rest[128 - 32];
};
_Static_assert(sizeof(struct g_siginfo) == 128, "siginfo layout");
/* f0 of a signal the sandbox's process sent (SI_USER): its pid and uid. */
static inline uint64_t sig_sender(const struct sandbox *sb) {
    return (uint64_t)1000 << 32 | sb->pid;
}

/* The signals no mask holds: SIGKILL and SIGSTOP (VMM bits). */
#define SIG_UNBLOCKABLE ((1ULL << SIGKILL) | (1ULL << SIGSTOP))

/* Signal sets: the VMM keeps bit n for signal n; the guest's sigset_t has
 * bit n - 1 (signal 64, which the VMM's sets cannot hold, is dropped). */
static inline uint64_t sig_from_guest(uint64_t set) { return set << 1; }
static inline uint64_t sig_to_guest(uint64_t bits) { return bits >> 1; }

/* Returned by a system-call handler that replaced the whole user context. */
#define SIG_REGS_REPLACED ((int64_t)0x7ffffffffffff00dLL)

/* Signals the calling thread can take now: its own and the process's it is
 * the target of, not blocked (KILL/STOP never are). Under big_lock. */
uint64_t sig_deliverable(struct sandbox *sb);
/* Kicks the thread each process-directed signal in bits goes to; when
 * every thread blocks one, wakes the sandbox's waits on files instead (a
 * signalfd may have become readable). */
void sig_wake_targets(struct sandbox *sb, uint64_t bits);
/* A SIGCHLD's siginfo for child pid that ended with status (wait4's
 * encoding): CLD_EXITED or CLD_KILLED, its pid and status. */
void sig_child_info(struct g_siginfo *si, uint32_t pid, int status);
/* The siginfo the VMM can give for pending signo: a synchronous fault's
 * address; for SIGCHLD, a child that ended and was not waited for (the
 * first found), as Linux queues one per child; else SI_USER from this
 * process (the VMM keeps no queue of senders). */
void sig_info(struct sandbox *sb, int signo, struct g_siginfo *out);
/* Takes one pending signal of set (the calling thread's own first, then the
 * process's) without running its handler: its number, 0 when none. Under
 * big_lock; the caller has moved external signals in (sb_take_external). */
int sig_take(struct sandbox *sb, uint64_t set);
/* A system call that ended with EINTR for the signal about to be delivered
 * is made again after its handler (SA_RESTART, or a signal ignored,
 * explicitly or by default), as
 * Linux restarts calls interrupted by such signals. */
bool sig_restarts_call(struct sandbox *sb);
/* Delivers deliverable signals (one handler frame, or a default action).
 * Called by the receiving thread's vCPU thread between exits. */
void sig_deliver_pending(struct sandbox *sb);
/* A guest exception exited on the vector's port. */
void sig_exception(struct sandbox *sb, unsigned vector);
/* A synchronous fault: signal with si_addr; fatal when not handled. */
void sig_fault(struct sandbox *sb, int signo, uint64_t addr, const char *what);
int64_t sig_sigreturn(struct sandbox *sb);

#endif
