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

/* Futex waiters are the threads blocked in sb_wait_futex with futex_addr
 * set (core/thread.c wakes them); the value check and the queueing happen
 * under big_lock, so a wake between them cannot be lost. */
static int64_t futex_wait(struct sandbox *sb, const uint64_t a[6], uint32_t bitset)
{
    int op = (int)a[1] & FUTEX_CMD_MASK;
    if (!bitset)
        return -EINVAL;
    uint32_t cur;
    if (mm_copy_from(&sb->mm, &cur, a[0], 4) < 0)
        return -EFAULT;
    if (cur != (uint32_t)a[2])
        return -EAGAIN;
    int64_t ns = -1;
    if (a[3]) {
        int err = sys_read_timespec(sb, a[3], &ns);
        if (err < 0)
            return err;
        if (op == FUTEX_WAIT_BITSET) { /* absolute */
            ns -= (int64_t)fj_clock_ns(((int)a[1] & FUTEX_CLOCK_REALTIME) ? CLOCK_REALTIME : CLOCK_MONOTONIC);
            if (ns < 0)
                return -ETIMEDOUT;
        }
    }
    struct sb_thread *t = sb_self(sb);
    sb_futex_arm(sb, t, a[0]);
    t->futex_bitset = bitset;
    t->futex_woken = false;
    int err = sb_wait_futex(sb, ns);
    t->futex_addr = 0;
    return err;
}

/* FUTEX_WAKE_OP: *addr2 = op(*addr2, oparg); wake addr; wake addr2 when
 * the old value meets the comparison. */
static int64_t futex_wake_op(struct sandbox *sb, const uint64_t a[6])
{
    uint32_t enc = (uint32_t)a[5];
    int op = (enc >> 28) & 7, cmp = (enc >> 24) & 15;
    uint32_t oparg = (enc >> 12) & 0xfff, cmparg = enc & 0xfff;
    if (enc & (8u << 28))
        oparg = 1u << (oparg & 31);
    uint32_t *p = (uint32_t *)mm_write_ptr(&sb->mm, a[4], 4);
    if (!p)
        return -EFAULT;
    uint32_t old = *p, nv;
    switch (op) {
    case 0: nv = oparg; break;
    case 1: nv = old + oparg; break;
    case 2: nv = old | oparg; break;
    case 3: nv = old & ~oparg; break;
    case 4: nv = old ^ oparg; break;
    default: return -ENOSYS;
    }
    *p = nv;
    int32_t o = (int32_t)old, c = (int32_t)cmparg;
    bool hit;
    switch (cmp) {
    case 0: hit = o == c; break;
    case 1: hit = o != c; break;
    case 2: hit = o < c; break;
    case 3: hit = o <= c; break;
    case 4: hit = o > c; break;
    case 5: hit = o >= c; break;
    default: return -ENOSYS;
    }
    int woken = sb_futex_wake(sb, a[0], (int)a[2], ~0u);
    if (hit)
        woken += sb_futex_wake(sb, a[4], (int)a[3], ~0u);
    return woken;
}

static int64_t sys_futex(struct sandbox *sb, const uint64_t a[6])
{
    int op = (int)a[1] & FUTEX_CMD_MASK;
    int n = (int)FJ_MIN(a[2], (uint64_t)INT32_MAX);
    switch (op) {
    case FUTEX_WAIT:
        return futex_wait(sb, a, ~0u);
    case FUTEX_WAIT_BITSET:
        return futex_wait(sb, a, (uint32_t)a[5]);
    case FUTEX_WAKE:
        return sb_futex_wake(sb, a[0], n, ~0u);
    case FUTEX_WAKE_BITSET:
        return a[5] ? sb_futex_wake(sb, a[0], n, (uint32_t)a[5]) : -EINVAL;
    case FUTEX_CMP_REQUEUE: {
        uint32_t cur;
        if (mm_copy_from(&sb->mm, &cur, a[0], 4) < 0)
            return -EFAULT;
        if (cur != (uint32_t)a[5])
            return -EAGAIN;
    } /* fall through */
    case FUTEX_REQUEUE: {
        int woken = sb_futex_wake(sb, a[0], n, ~0u);
        return woken + sb_futex_requeue(sb, a[0], a[4], (int)FJ_MIN(a[3], (uint64_t)INT32_MAX));
    }
    case FUTEX_WAKE_OP:
        return futex_wake_op(sb, a);
    default:
        return -ENOSYS;
    }
}

const struct sys_entry sys_misc_entries[] = {
    {202, "futex", sys_futex, SYS_PARTIAL, "wait, wake, requeue, wake_op and bitset variants; no PI futexes (ENOSYS)"},
    {318, "getrandom", sys_getrandom, SYS_FULL, NULL},
};
const size_t sys_misc_count = FJ_ARRAY_SIZE(sys_misc_entries);
