/* The CPUID the guest is given: what KVM supports on this host
 * (KVM_GET_SUPPORTED_CPUID) with the user-mode instructions the host's CPU
 * has (kvm_cpuid.c), and, for /proc/cpuinfo, which of the host's
 * feature flags the guest cannot use. */
#ifndef KVM_CPUID_H
#define KVM_CPUID_H

#include <linux/kvm.h>

#include "lib/fj.h"

/* A malloc'd copy of KVM's supported CPUID entries, completed with the
 * host CPU's user-mode instruction bits; -errno. */
int kvm_supported_cpuid(struct kvm_cpuid2 **out);
/* Whether /proc/cpuinfo flag name (Linux's spelling) names a feature whose
 * registers need XSAVE state that xcr0 (the guest's XCR0) leaves off.
 * Other flags are the CPU's, as the guest's CPUID reports them. */
bool kvm_cpu_flag_hidden(const char *name, uint64_t xcr0);

#endif
