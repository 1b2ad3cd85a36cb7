/* The guest's CPUID (see kvm_cpuid.h). */
#define _GNU_SOURCE
#include "kvm/kvm_cpuid.h"
#include "kvm/kvm_vm.h"

#include <cpuid.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

/* Instructions a program runs at CPL3 with no operating-system state
 * (no XSAVE component, no MSR, no control register): the guest's code
 * runs on the host's CPU, so it has each one the host's CPUID reports,
 * whatever KVM's list says. kvm_pvm's list drops ABM (LZCNT): numpy then
 * finds no x86-64-v3 CPU and dispatches none of its AVX2 and AVX-512
 * kernels, and glibc picks slower string functions. */
enum { REG_EBX, REG_ECX };
static const struct user_feature_bits {
    uint32_t function, index;
    int reg;
    uint32_t bits;
} user_feature_bits[] = {
    /* LAHF, ABM (LZCNT), SSE4A, MisAlignSSE, PREFETCHW, TBM */
    {0x80000001, 0, REG_ECX, 1u << 0 | 1u << 5 | 1u << 6 | 1u << 7 | 1u << 8 | 1u << 21},
    /* BMI1, BMI2, ERMS, ADX */
    {7, 0, REG_EBX, 1u << 3 | 1u << 8 | 1u << 9 | 1u << 19},
};

static void add_user_features(struct kvm_cpuid2 *c)
{
    for (uint32_t i = 0; i < c->nent; i++) {
        struct kvm_cpuid_entry2 *e = &c->entries[i];
        for (size_t k = 0; k < FJ_ARRAY_SIZE(user_feature_bits); k++) {
            const struct user_feature_bits *u = &user_feature_bits[k];
            unsigned a, b, cx, d;
            if (e->function != u->function || e->index != u->index ||
                !__get_cpuid_count(u->function, u->index, &a, &b, &cx, &d))
                continue;
            if (u->reg == REG_EBX)
                e->ebx |= b & u->bits;
            else
                e->ecx |= cx & u->bits;
        }
    }
}

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
            add_user_features(c);
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
