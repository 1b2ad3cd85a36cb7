/* timerfd_create, timerfd_settime, timerfd_gettime (file/file_timerfd.c
 * is the descriptor). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/timerfd.h>
#include <time.h>

#include "core/sandbox.h"
#include "file/file_kinds.h"
#include "sys/sys.h"

#define CLOCK_REALTIME_ALARM_ 8
#define CLOCK_BOOTTIME_ALARM_ 9

struct g_itimerspec {
    struct timespec interval, value;
};

static int64_t sys_timerfd_create(struct sandbox *sb, const uint64_t a[6]) {
    int clock = (int)a[0];
    if (a[1] & ~(uint64_t)(TFD_CLOEXEC | TFD_NONBLOCK))
        return -EINVAL;
    if (clock == CLOCK_REALTIME_ALARM_ || clock == CLOCK_BOOTTIME_ALARM_)
        return -EPERM; /* needs CAP_WAKE_ALARM, which the sandbox user has not */
    if (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC && clock != CLOCK_BOOTTIME)
        return -EINVAL;
    struct file *f = file_timerfd_new(clock, a[1] & TFD_NONBLOCK ? O_NONBLOCK : 0);
    if (!f)
        return -ENOMEM;
    int fd = fdt_install(&sb->fdt, f, 0, a[1] & TFD_CLOEXEC);
    if (fd < 0)
        file_put(f);
    return fd;
}

static struct timespec to_timespec(uint64_t ns) {
    return (struct timespec){(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
}

static int64_t put_current(struct sandbox *sb, struct file *f, gva_t out) {
    uint64_t value, period;
    int err = file_timerfd_get(f, &value, &period);
    if (err < 0)
        return err;
    struct g_itimerspec cur = {to_timespec(period), to_timespec(value)};
    return mm_copy_to(&sb->mm, out, &cur, sizeof(cur));
}

static int64_t sys_timerfd_gettime(struct sandbox *sb, const uint64_t a[6]) {
    struct file *f = sys_fd_file(sb, a[0]);
    return !f ? -EBADF : put_current(sb, f, a[1]);
}

/* TFD_TIMER_CANCEL_ON_SET is accepted: nothing in a sandbox sets the clock. */
static int64_t sys_timerfd_settime(struct sandbox *sb, const uint64_t a[6]) {
    struct file *f = sys_fd_file(sb, a[0]);
    if (!f)
        return -EBADF;
    if (a[1] & ~(uint64_t)(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET))
        return -EINVAL;
    int64_t value, period;
    int err;
    if ((err = sys_read_timespec(sb, a[2] + offsetof(struct g_itimerspec, value), &value)) < 0 ||
        (err = sys_read_timespec(sb, a[2] + offsetof(struct g_itimerspec, interval), &period)) < 0)
        return err;
    if (a[3] && (err = put_current(sb, f, a[3])) < 0)
        return err;
    return file_timerfd_set(f, a[1] & TFD_TIMER_ABSTIME, (uint64_t)value, (uint64_t)period);
}

const struct sys_entry sys_timerfd_entries[] = {
    {283, "timerfd_create", sys_timerfd_create, SYS_PARTIAL,
     "CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME (the alarm clocks: EPERM); "
     "TFD_IOC_SET_TICKS is not offered"},
    {286, "timerfd_settime", sys_timerfd_settime, SYS_FULL, NULL},
    {287, "timerfd_gettime", sys_timerfd_gettime, SYS_FULL, NULL},
};
const size_t sys_timerfd_count = FJ_ARRAY_SIZE(sys_timerfd_entries);
