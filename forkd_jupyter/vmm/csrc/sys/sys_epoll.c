/* Event notification inside the sandbox: epoll instances (file/file_epoll.c)
 * and eventfd counters (file/file_eventfd.c), over the guest's own
 * descriptors. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include "core/sandbox.h"
#include "file/file_kinds.h"
#include "sys/sys.h"
#include "sys/sys_file.h"

#define EPOLL_MAX_EVENTS (INT_MAX / (int)sizeof(struct epoll_event))
#define WAIT_FDS 64

static int64_t install(struct sandbox *sb, struct file *f, bool cloexec) {
    if (!f)
        return -ENOMEM;
    int fd = fdt_install(&sb->fdt, f, 0, cloexec);
    if (fd < 0)
        file_put(f);
    return fd;
}

static int64_t sys_epoll_create(struct sandbox *sb, const uint64_t a[6]) {
    return (int)a[0] <= 0 ? -EINVAL : install(sb, file_epoll_new(0), false);
}

static int64_t sys_epoll_create1(struct sandbox *sb, const uint64_t a[6]) {
    if (a[0] & ~(uint64_t)EPOLL_CLOEXEC)
        return -EINVAL;
    return install(sb, file_epoll_new(0), a[0] & EPOLL_CLOEXEC);
}

static int64_t sys_epoll_ctl(struct sandbox *sb, const uint64_t a[6]) {
    struct file *ep = sys_fd_file(sb, a[0]), *target = sys_fd_file(sb, a[2]);
    if (!ep || !target)
        return -EBADF;
    if (!file_is_epoll(ep))
        return -EINVAL;
    struct epoll_event ev = {0};
    int op = (int)a[1];
    if (op != EPOLL_CTL_DEL && mm_copy_from(&sb->mm, &ev, a[3], sizeof(ev)) < 0)
        return -EFAULT;
    return file_epoll_ctl(sb, ep, op, (int)a[2], target, ev.events, ev.data.u64);
}

/* Waits up to timeout_ns (< 0: forever) for events of the epoll at epfd. */
static int64_t epoll_wait_ns(struct sandbox *sb, uint64_t epfd, gva_t out, int max,
                             int64_t timeout_ns) {
    struct file *ep = sys_fd_file(sb, epfd);
    if (!ep)
        return -EBADF;
    if (!file_is_epoll(ep) || max <= 0 || max > EPOLL_MAX_EVENTS)
        return -EINVAL;
    struct epoll_event *events = mm_write_ptr(&sb->mm, out, (uint64_t)max * sizeof(*events));
    if (!events)
        return -EFAULT;
    uint64_t deadline = timeout_ns >= 0 ? fj_now_ns() + (uint64_t)timeout_ns : 0;
    for (;;) {
        int n = file_epoll_collect(sb, ep, events, max);
        if (n || timeout_ns == 0)
            return n;
        int64_t left = timeout_ns < 0 ? -1 : (int64_t)(deadline - fj_now_ns());
        if (timeout_ns > 0 && left <= 0)
            return 0;
        int fds[WAIT_FDS];
        short evs[WAIT_FDS];
        int nw = file_epoll_fds(sb, ep, fds, evs, WAIT_FDS);
        int err = sysf_wait_ready(sb, fds, evs, (size_t)nw, left);
        if (err == -ETIMEDOUT)
            return 0;
        if (err < 0)
            return err;
    }
}

static int64_t ms_to_ns(int ms) { return ms < 0 ? -1 : (int64_t)ms * 1000000; }

static int64_t sys_epoll_wait(struct sandbox *sb, const uint64_t a[6]) {
    return epoll_wait_ns(sb, a[0], a[1], (int)a[2], ms_to_ns((int)a[3]));
}

static int64_t sys_epoll_pwait(struct sandbox *sb, const uint64_t a[6]) {
    return epoll_wait_ns(sb, a[0], a[1], (int)a[2], ms_to_ns((int)a[3]));
}

static int64_t sys_epoll_pwait2(struct sandbox *sb, const uint64_t a[6]) {
    int64_t ns = -1;
    if (a[3]) {
        int err = sys_read_timespec(sb, a[3], &ns);
        if (err < 0)
            return err;
    }
    return epoll_wait_ns(sb, a[0], a[1], (int)a[2], ns);
}

static int64_t make_eventfd(struct sandbox *sb, uint64_t initial, uint64_t flags) {
    if (flags & ~(uint64_t)(EFD_CLOEXEC | EFD_NONBLOCK | EFD_SEMAPHORE))
        return -EINVAL;
    int fl = (flags & EFD_NONBLOCK ? O_NONBLOCK : 0) | (flags & EFD_SEMAPHORE ? EFD_SEMAPHORE : 0);
    return install(sb, file_eventfd_new((uint32_t)initial, fl), flags & EFD_CLOEXEC);
}

static int64_t sys_eventfd(struct sandbox *sb, const uint64_t a[6]) {
    return make_eventfd(sb, a[0], 0);
}
static int64_t sys_eventfd2(struct sandbox *sb, const uint64_t a[6]) {
    return make_eventfd(sb, a[0], a[1]);
}

const struct sys_entry sys_epoll_entries[] = {
    {213, "epoll_create", sys_epoll_create, SYS_FULL, NULL},
    {291, "epoll_create1", sys_epoll_create1, SYS_FULL, NULL},
    {233, "epoll_ctl", sys_epoll_ctl, SYS_PARTIAL,
     "EPOLLET: reported again only when an event is new or something changed in the sandbox since "
     "(never fewer reports than Linux)"},
    {232, "epoll_wait", sys_epoll_wait, SYS_FULL, NULL},
    {281, "epoll_pwait", sys_epoll_pwait, SYS_PARTIAL, "the signal mask argument is ignored"},
    {441, "epoll_pwait2", sys_epoll_pwait2, SYS_PARTIAL, "the signal mask argument is ignored"},
    {284, "eventfd", sys_eventfd, SYS_FULL, NULL},
    {290, "eventfd2", sys_eventfd2, SYS_FULL, NULL},
};
const size_t sys_epoll_count = FJ_ARRAY_SIZE(sys_epoll_entries);
