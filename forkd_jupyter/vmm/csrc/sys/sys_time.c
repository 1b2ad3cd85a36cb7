/* Clocks and sleeping. Sleeps are interruptible waits (sb_wait_fd), so an
 * interrupt ends them with EINTR as on Linux. */
#define _GNU_SOURCE
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "core/sandbox.h"
#include "sys/sys.h"

static int host_clock(uint64_t id, clockid_t *out)
{
    switch (id) {
    case CLOCK_REALTIME:
    case CLOCK_MONOTONIC:
    case CLOCK_MONOTONIC_RAW:
    case CLOCK_REALTIME_COARSE:
    case CLOCK_MONOTONIC_COARSE:
    case CLOCK_BOOTTIME:
        *out = (clockid_t)id;
        return 0;
    case CLOCK_PROCESS_CPUTIME_ID: /* every vCPU thread's (sb_process_cpu_ns) */
    case CLOCK_THREAD_CPUTIME_ID:
        *out = CLOCK_THREAD_CPUTIME_ID; /* the vCPU thread's time is the guest thread's */
        return 0;
    default:
        return -EINVAL;
    }
}

#define CPUCLOCK_PERTHREAD 4

/* A CPU-time clock (a negative id, of clock_getcpuclockid or
 * pthread_getcpuclockid, as Linux encodes them: ~pid << 3 | per-thread |
 * which) of this process or one of its threads: its time in ns, or
 * -EINVAL (another process's, or no such clock). */
static int64_t cpu_clock_ns(struct sandbox *sb, uint64_t id)
{
    int32_t clk = (int32_t)id;
    if (clk >= 0 || (clk & 3) == 3)
        return -EINVAL;
    int32_t pid = ~(clk >> 3);
    if (clk & CPUCLOCK_PERTHREAD) {
        struct sb_thread *t = pid == 0 ? sb_self(sb) : pid > 0 ? sb_thread_by_tid(sb, (uint32_t)pid) : NULL;
        return t ? (int64_t)sb_thread_cpu_ns(sb, t) : -EINVAL;
    }
    return pid == 0 || (uint32_t)pid == sb->pid ? (int64_t)sb_process_cpu_ns(sb) : -EINVAL;
}

static int64_t sys_clock_gettime(struct sandbox *sb, const uint64_t a[6])
{
    int64_t cpu = -1;
    clockid_t c = CLOCK_MONOTONIC; /* set below unless cpu is */
    if ((int32_t)a[0] < 0) {
        if ((cpu = cpu_clock_ns(sb, a[0])) < 0)
            return cpu;
    } else if (a[0] == CLOCK_PROCESS_CPUTIME_ID) {
        cpu = (int64_t)sb_process_cpu_ns(sb);
    } else {
        int err = host_clock(a[0], &c);
        if (err < 0)
            return err;
    }
    struct timespec ts;
    if (cpu >= 0) {
        ts.tv_sec = (time_t)((uint64_t)cpu / 1000000000ULL);
        ts.tv_nsec = (long)((uint64_t)cpu % 1000000000ULL);
    } else {
        clock_gettime(c, &ts);
    }
    return mm_copy_to(&sb->mm, a[1], &ts, sizeof(ts));
}

/* Setting the time needs a privilege the sandbox user does not have; the
 * clocks that cannot be set are EINVAL first, as on Linux. */
static int64_t sys_clock_settime(struct sandbox *sb, const uint64_t a[6])
{
    clockid_t c;
    if ((int32_t)a[0] < 0 || host_clock(a[0], &c) < 0 || a[0] != CLOCK_REALTIME)
        return -EINVAL;
    return -EPERM;
}

static int64_t sys_settimeofday(struct sandbox *sb, const uint64_t a[6]) { return -EPERM; }

static int64_t sys_clock_getres(struct sandbox *sb, const uint64_t a[6])
{
    clockid_t c = CLOCK_THREAD_CPUTIME_ID; /* a CPU-time clock's resolution */
    int64_t cpu = (int32_t)a[0] < 0 ? cpu_clock_ns(sb, a[0]) : 0;
    int err = cpu < 0 ? (int)cpu : (int32_t)a[0] < 0 ? 0 : host_clock(a[0], &c);
    if (err < 0)
        return err;
    struct timespec ts;
    clock_getres(c, &ts);
    return a[1] ? mm_copy_to(&sb->mm, a[1], &ts, sizeof(ts)) : 0;
}

static int64_t sys_gettimeofday(struct sandbox *sb, const uint64_t a[6])
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return a[0] ? mm_copy_to(&sb->mm, a[0], &tv, sizeof(tv)) : 0;
}

static int64_t sys_time(struct sandbox *sb, const uint64_t a[6])
{
    time_t t = time(NULL);
    if (a[0] && mm_copy_to(&sb->mm, a[0], &t, sizeof(t)) < 0)
        return -EFAULT;
    return t;
}

static int64_t sleep_ns(struct sandbox *sb, int64_t ns, gva_t rem)
{
    uint64_t start = fj_now_ns();
    int err;
    /* A wait on no file also ends when another thread or process may have
     * changed a file's readiness: sleep on until the time is up. */
    do {
        int64_t left = ns - (int64_t)(fj_now_ns() - start);
        err = left > 0 ? sb_wait_fd(sb, -1, 0, left) : -ETIMEDOUT;
    } while (err == 0);
    if (err == -ETIMEDOUT)
        return 0;
    if (err == -EINTR && rem) {
        int64_t left = ns - (int64_t)(fj_now_ns() - start);
        struct timespec ts = {left > 0 ? left / 1000000000 : 0, left > 0 ? left % 1000000000 : 0};
        mm_copy_to(&sb->mm, rem, &ts, sizeof(ts));
    }
    return err;
}

int sys_read_timespec(struct sandbox *sb, gva_t at, int64_t *ns)
{
    struct timespec ts;
    if (mm_copy_from(&sb->mm, &ts, at, sizeof(ts)) < 0)
        return -EFAULT;
    if (ts.tv_sec < 0 || ts.tv_nsec < 0 || ts.tv_nsec >= 1000000000)
        return -EINVAL;
    *ns = ts.tv_sec > INT64_MAX / 1000000000 - 1 ? INT64_MAX : ts.tv_sec * 1000000000 + ts.tv_nsec;
    return 0;
}

static int64_t sys_nanosleep(struct sandbox *sb, const uint64_t a[6])
{
    int64_t ns;
    int err = sys_read_timespec(sb, a[0], &ns);
    return err < 0 ? err : sleep_ns(sb, ns, a[1]);
}

static int64_t sys_clock_nanosleep(struct sandbox *sb, const uint64_t a[6])
{
    clockid_t c;
    int64_t ns;
    int err = host_clock(a[0], &c);
    if (err == 0)
        err = sys_read_timespec(sb, a[2], &ns);
    if (err < 0)
        return err;
    if (a[1] & TIMER_ABSTIME) {
        ns -= (int64_t)fj_clock_ns(c);
        if (ns <= 0)
            return 0;
        return sleep_ns(sb, ns, 0);
    }
    return sleep_ns(sb, ns, a[3]);
}

static int64_t sys_times(struct sandbox *sb, const uint64_t a[6])
{
    int64_t ticks = (int64_t)(sb_process_cpu_ns(sb) / 10000000);
    int64_t children = (int64_t)(sb->children.cpu_ns / 10000000);
    if (a[0]) {
        int64_t t[4] = {ticks, 0, children, 0};
        if (mm_copy_to(&sb->mm, a[0], t, sizeof(t)) < 0)
            return -EFAULT;
    }
    return (int64_t)(fj_now_ns() / 10000000);
}

const struct sys_entry sys_time_entries[] = {
    {35, "nanosleep", sys_nanosleep, SYS_FULL, "interruptible"},
    {96, "gettimeofday", sys_gettimeofday, SYS_FULL,
     "the guest's vDSO answers it without a VM exit"},
    {100, "times", sys_times, SYS_PARTIAL,
     "user times only (the process's, the children's waited for)"},
    {201, "time", sys_time, SYS_FULL, "the guest's vDSO answers it without a VM exit"},
    {164, "settimeofday", sys_settimeofday, SYS_FULL,
     "EPERM: the sandbox user may not set the time"},
    {227, "clock_settime", sys_clock_settime, SYS_FULL,
     "EPERM for CLOCK_REALTIME (the sandbox user may not set the time), EINVAL for the others"},
    {228, "clock_gettime", sys_clock_gettime, SYS_FULL,
     "the guest's vDSO answers REALTIME, MONOTONIC, BOOTTIME and the coarse clocks without a VM "
     "exit; CPU time is that of the vCPU threads (the process's: all of them; a thread's, also by "
     "pthread_getcpuclockid, of this process's threads)"},
    {229, "clock_getres", sys_clock_getres, SYS_FULL, NULL},
    {230, "clock_nanosleep", sys_clock_nanosleep, SYS_FULL, "interruptible"},
};
const size_t sys_time_count = FJ_ARRAY_SIZE(sys_time_entries);
