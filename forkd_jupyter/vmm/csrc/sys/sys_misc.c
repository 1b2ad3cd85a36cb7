/* Randomness, futexes, and the network (there is none). */
#define _GNU_SOURCE
#include <linux/futex.h>
#include <string.h>
#include <sys/random.h>

#include "core/sandbox.h"
#include "sys/sys.h"

static int64_t sys_getrandom(struct sandbox *sb, const uint64_t a[6])
{
    uint64_t len = FJ_MIN(a[1], 1u << 25);
    void *dst = mm_write_ptr(&sb->mm, a[0], len);
    if (!dst)
        return -EFAULT;
    uint64_t done = 0;
    while (done < len) {
        ssize_t r = getrandom((char *)dst + done, len - done, 0);
        if (r < 0)
            return done ? (int64_t)done : -errno;
        done += (uint64_t)r;
    }
    return (int64_t)len;
}

/* One thread: a wait on a matching value can only end by timeout or signal;
 * wakes find no waiters. */
static int64_t sys_futex(struct sandbox *sb, const uint64_t a[6])
{
    int op = (int)a[1] & FUTEX_CMD_MASK;
    switch (op) {
    case FUTEX_WAIT:
    case FUTEX_WAIT_BITSET: {
        uint32_t cur;
        if (mm_copy_from(&sb->mm, &cur, a[0], 4) < 0)
            return -EFAULT;
        if (cur != (uint32_t)a[2])
            return -EAGAIN;
        int64_t ns = -1;
        if (a[3]) {
            struct timespec ts;
            if (mm_copy_from(&sb->mm, &ts, a[3], sizeof(ts)) < 0)
                return -EFAULT;
            ns = ts.tv_sec * 1000000000LL + ts.tv_nsec;
            if (op == FUTEX_WAIT_BITSET) { /* absolute */
                struct timespec now;
                clock_gettime(((int)a[1] & FUTEX_CLOCK_REALTIME) ? CLOCK_REALTIME : CLOCK_MONOTONIC, &now);
                ns -= now.tv_sec * 1000000000LL + now.tv_nsec;
                if (ns < 0)
                    return -ETIMEDOUT;
            }
        }
        return sb_wait_fd(sb, -1, 0, ns);
    }
    case FUTEX_WAKE:
    case FUTEX_WAKE_BITSET:
        return 0;
    default:
        return -ENOSYS;
    }
}

const struct sys_entry sys_misc_entries[] = {
    {202, "futex", sys_futex, SYS_PARTIAL, "one thread: waits end by timeout or signal"},
    {318, "getrandom", sys_getrandom, SYS_FULL, NULL},
};
const size_t sys_misc_count = FJ_ARRAY_SIZE(sys_misc_entries);
