/* The guest's vDSO: clock_gettime, gettimeofday and time answered in the
 * guest from the TSC and the clock page the VMM keeps current
 * (csrc/kvm/vdso_data.h), so reading the time costs no VM exit. Other
 * clocks, and every call while the page is disabled, make the real system
 * call, which the VMM serves as before.
 *
 * Built on its own (not part of the VMM's C core) as a position-independent
 * shared object with no relocations, linked by vdso.lds so that one load
 * segment maps the file as it is; the VMM copies the file into the guest
 * and names it in AT_SYSINFO_EHDR. */
#include <stdint.h>

#include "kvm/vdso_data.h"

#define DATA ((const struct vdso_data *)FJ_VDSO_DATA_VA)
#define NSEC 1000000000ULL

#define SYS_gettimeofday 96
#define SYS_time 201
#define SYS_clock_gettime 228
#define SYS_clock_getres 229
#define SYS_getcpu 309

struct fj_timespec {
    int64_t tv_sec;
    int64_t tv_nsec;
};

struct fj_timeval {
    int64_t tv_sec;
    int64_t tv_usec;
};

static inline long sys2(long nr, long a, long b)
{
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b) : "rcx", "r11", "memory");
    return ret;
}

static inline long sys3(long nr, long a, long b, long c)
{
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a), "S"(b), "d"(c)
                     : "rcx", "r11", "memory");
    return ret;
}

static inline uint64_t tsc_ordered(void)
{
    uint32_t lo, hi;
    __asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi)::"memory");
    return ((uint64_t)hi << 32) | lo;
}

/* Nanoseconds of `which`, or -1 when the page is disabled. */
static int64_t read_ns(enum vdso_clock which)
{
    for (;;) {
        uint32_t seq = DATA->seq;
        __asm__ volatile("" ::: "memory");
        if (seq & 1)
            continue;
        if (!DATA->enabled)
            return -1;
        uint64_t tsc = tsc_ordered();
        uint64_t base = DATA->tsc_base;
        uint64_t delta = tsc > base ? tsc - base : 0;
        uint64_t ns = DATA->base_ns[which] + (uint64_t)(((unsigned __int128)delta * DATA->mult) >> 32);
        __asm__ volatile("" ::: "memory");
        if (DATA->seq == seq)
            return (int64_t)ns;
    }
}

static int clock_of(long clk)
{
    switch (clk) {
    case 0: /* CLOCK_REALTIME */
    case 5: /* CLOCK_REALTIME_COARSE */
        return VDSO_REALTIME;
    case 1: /* CLOCK_MONOTONIC */
    case 6: /* CLOCK_MONOTONIC_COARSE */
        return VDSO_MONOTONIC;
    case 7: /* CLOCK_BOOTTIME */
        return VDSO_BOOTTIME;
    default:
        return -1;
    }
}

__attribute__((used)) static int impl_clock_gettime(long clk, struct fj_timespec *ts)
{
    int which = clock_of(clk);
    int64_t ns = which < 0 ? -1 : read_ns((enum vdso_clock)which);
    if (ns < 0)
        return (int)sys2(SYS_clock_gettime, clk, (long)ts);
    ts->tv_sec = ns / (int64_t)NSEC;
    ts->tv_nsec = ns % (int64_t)NSEC;
    return 0;
}

__attribute__((used)) static int impl_gettimeofday(struct fj_timeval *tv, void *tz)
{
    int64_t ns = tz ? -1 : read_ns(VDSO_REALTIME);
    if (ns < 0)
        return (int)sys2(SYS_gettimeofday, (long)tv, (long)tz);
    if (tv) {
        tv->tv_sec = ns / (int64_t)NSEC;
        tv->tv_usec = (ns % (int64_t)NSEC) / 1000;
    }
    return 0;
}

__attribute__((used)) static long impl_time(long *t)
{
    int64_t ns = read_ns(VDSO_REALTIME);
    if (ns < 0)
        return sys2(SYS_time, (long)t, 0);
    long sec = (long)(ns / (int64_t)NSEC);
    if (t)
        *t = sec;
    return sec;
}

__attribute__((used)) static int impl_clock_getres(long clk, struct fj_timespec *res)
{
    return (int)sys2(SYS_clock_getres, clk, (long)res);
}

__attribute__((used)) static long impl_getcpu(unsigned *cpu, unsigned *node, void *unused)
{
    return sys3(SYS_getcpu, (long)cpu, (long)node, (long)unused);
}

/* The exported entry points: a jump each, 16 bytes apart, at the start of
 * .text.entry, which vdso.lds places at offset ENTRY_OFFSET. A guest caches
 * these addresses (glibc resolves them once), and a snapshot saved by one
 * build may be loaded by another: so they never move, whatever the code
 * behind them becomes. New entry points go at the end; none is removed. */
#define ENTRY(name, impl)                                                                          \
    ".p2align 4\n.globl " name "\n.type " name ",@function\n" name ":\n\tjmp " impl "\n"
__asm__(".pushsection .text.entry,\"ax\",@progbits\n" /* offset */
        ENTRY("__vdso_clock_gettime", "impl_clock_gettime")      /* +0x00 */
        ENTRY("__vdso_gettimeofday", "impl_gettimeofday")        /* +0x10 */
        ENTRY("__vdso_time", "impl_time")                        /* +0x20 */
        ENTRY("__vdso_clock_getres", "impl_clock_getres")        /* +0x30 */
        ENTRY("__vdso_getcpu", "impl_getcpu")                    /* +0x40 */
        ".weak clock_gettime\n.set clock_gettime, __vdso_clock_gettime\n"
        ".weak gettimeofday\n.set gettimeofday, __vdso_gettimeofday\n"
        ".weak time\n.set time, __vdso_time\n"
        ".weak clock_getres\n.set clock_getres, __vdso_clock_getres\n"
        ".weak getcpu\n.set getcpu, __vdso_getcpu\n"
        ".popsection\n");
