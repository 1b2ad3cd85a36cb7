/* Which system calls the poller may serve without an exit
 * (run/fast_calls.c): those that never wait, never touch the caller's
 * registers or signal mask, and never start or end a thread or process.
 * The stub offers the numbers below; each call is checked again, with its
 * arguments, when the poller takes it (under big_lock). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/ioctl.h>

#include "sys/sys.h"

static const uint16_t offered[] = {
    0,   1,   3,   4,   5,   6,   8,   9,   10,  11,  12,  13,  16,  17,  18,  19,  20,  21,
    28,  32,  39,  63,  72,  74,  75,  76,  77,  79,  80,  81,  82,  83,  84,  87,  89,  90,
    91,  96,  97,  99,  102, 104, 107, 108, 110, 111, 186, 201, 202, 217, 228, 229, 257, 258,
    262, 263, 264, 267, 268, 269, 295, 296, 302, 316, 318, 332, 439,
};

static uint64_t mask[8];
static pthread_once_t mask_once = PTHREAD_ONCE_INIT;

static void fill_mask(void)
{
    for (size_t i = 0; i < FJ_ARRAY_SIZE(offered); i++)
        mask[offered[i] / 64] |= 1ULL << (offered[i] % 64);
}

const uint64_t *sys_fast_offered(void)
{
    pthread_once(&mask_once, fill_mask);
    return mask;
}

/* A descriptor whose reads, writes and close never wait; a closed one too
 * (the call fails at once). */
static bool never_waits(struct sandbox *sb, uint64_t fd)
{
    struct file *f = fd <= INT32_MAX ? fdt_get(&sb->fdt, (int)fd) : NULL;
    return !f || f->ops->never_waits;
}

static bool offered_nr(uint64_t nr)
{
    return nr < 512 && (sys_fast_offered()[nr / 64] & (1ULL << (nr % 64)));
}

/* Calls on a descriptor that are served only when it never waits. */
static bool on_descriptor(uint64_t nr)
{
    switch (nr) {
    case 0: case 1: case 3: case 17: case 18: case 19: case 20: case 74: case 75: case 77:
    case 295: case 296: /* read write close pread pwrite readv writev fsync fdatasync ftruncate preadv pwritev */
        return true;
    default:
        return false;
    }
}

const char *sys_fast_condition(uint32_t nr)
{
    if (!offered_nr(nr))
        return "";
    if (on_descriptor(nr))
        return "on files, directories and devices";
    switch (nr) {
    case 16:
        return "TCGETS, TIOCGWINSZ, FIONBIO, FIOCLEX, FIONCLEX";
    case 72:
        return "F_DUPFD(_CLOEXEC), F_GETFD, F_SETFD, F_GETFL, F_SETFL";
    case 202:
        return "wakes";
    case 257:
        return "yes (a FIFO's blocking open by exit)";
    default:
        return "yes";
    }
}

bool sys_fast_eligible(struct sandbox *sb, uint64_t nr, const uint64_t a[6])
{
    if (!offered_nr(nr))
        return false;
    if (on_descriptor(nr))
        return never_waits(sb, a[0]);
    switch (nr) {
    case 16: /* ioctl: terminal attributes and descriptor flags */
        return a[1] == TCGETS || a[1] == TIOCGWINSZ || a[1] == FIONBIO || a[1] == FIOCLEX ||
               a[1] == FIONCLEX;
    case 72: /* fcntl: descriptor flags and dup, never locks */
        return a[1] == F_DUPFD || a[1] == F_DUPFD_CLOEXEC || a[1] == F_GETFD || a[1] == F_SETFD ||
               a[1] == F_GETFL || a[1] == F_SETFL;
    case 202: { /* futex: wakes only */
        int op = (int)(a[1] & FUTEX_CMD_MASK);
        return op == FUTEX_WAKE || op == FUTEX_WAKE_BITSET;
    }
    default:
        return true;
    }
}

