/* The poller: a host thread per guest process that serves system calls
 * posted in call boxes (kvm/kvm_calls.h) while the guest makes them, so
 * they cost no VM exit. It wakes at a call it could have served that came
 * by exit soon after another such, spins while calls keep coming and
 * sleeps after FAST_IDLE_NS without one, or backs off when it finds itself
 * descheduled (fast_calls.c). At most as many pollers of the host process
 * as it has cores spin at once (none on one core), each off the core of
 * the vCPU thread that woke it: a spinning poller takes a core.
 * FORKD_JUPYTER_FAST_CALLS=0 turns the path off (every call exits),
 * =poll keeps the poller but rewrites no call site. */
#ifndef FAST_CALLS_H
#define FAST_CALLS_H

#include "core/sandbox.h"

/* Before the process's vCPU loop starts / after every vCPU thread of it
 * ended; start is a no-op when the path is off or no thread can be made. */
void fast_calls_start(struct sandbox *sb);
void fast_calls_stop(struct sandbox *sb);
/* A vCPU thread, under big_lock, after it served call nr (arguments a) by
 * exit: turns the stub's offer on once SYSCALL is known to stay in CPL3,
 * and wakes the poller when the call was one it could have served and came
 * soon after another such. */
void fast_calls_after_exit(struct sandbox *sb, struct kvm_vcpu *cpu, uint64_t nr, const uint64_t a[6]);
/* Whether sb's call sites are rewritten to skip SYSCALL (core/call_sites.h). */
bool fast_calls_rewrite_sites(struct sandbox *sb);

#endif
