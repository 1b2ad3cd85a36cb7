/* The guest's CPUID (see kvm_cpuid.h). */
#define _GNU_SOURCE
#include "kvm/kvm_cpuid.h"
#include "kvm/kvm_vm.h"

#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

int kvm_supported_cpuid(struct kvm_cpuid2 **out)
{
    int kfd = kvm_dev_fd();
    if (kfd < 0)
        return kfd;
    for (uint32_t n = 128;; n *= 2) {
        struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(struct kvm_cpuid_entry2));
        if (!c)
            return -ENOMEM;
        c->nent = n;
        if (ioctl(kfd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
            *out = c;
            return 0;
        }
        int err = errno;
        free(c);
        if (err != E2BIG || n >= 4096)
            return -err;
    }
}

/* Features whose registers live in an XSAVE state component (by XCR0
 * bit): a CPU lists them, but a program may use them only where XCR0
 * enables that state (Linux clears them from /proc/cpuinfo otherwise, and
 * programs check XGETBV, as numpy does). Prefixes end in '_' or are whole
 * families ("avx512"). */
static const struct xstate_flags {
    uint64_t xcr0;
    const char *names[20];
} xstate_flags[] = {
    {1u << 2, /* YMM */
     {"avx", "avx2", "fma", "f16c", "vaes", "vpclmulqdq", "avx_vnni", "avx_vnni_int8",
      "avx_vnni_int16", "avx_ifma", "avx_ne_convert", "xop", "fma4", "sha512", "sm3", "sm4"}},
    {7u << 5, {"avx512"}},                  /* opmask, ZMM_Hi256, Hi16_ZMM: every avx512 flag */
    {3u << 17, {"amx_"}},                   /* XTILECFG, XTILEDATA */
    {1u << 9, {"pku", "ospke"}},            /* PKRU */
    {3u << 3, {"mpx"}},                     /* BNDREGS, BNDCSR */
};

bool kvm_cpu_flag_hidden(const char *name, uint64_t xcr0)
{
    for (size_t i = 0; i < FJ_ARRAY_SIZE(xstate_flags); i++) {
        const struct xstate_flags *x = &xstate_flags[i];
        for (size_t k = 0; k < FJ_ARRAY_SIZE(x->names) && x->names[k]; k++) {
            const char *f = x->names[k];
            size_t n = strlen(f);
            bool family = f[n - 1] == '_' || !strcmp(f, "avx512");
            if (family ? !strncmp(name, f, n) : !strcmp(name, f))
                return (xcr0 & x->xcr0) != x->xcr0;
        }
    }
    return false;
}
