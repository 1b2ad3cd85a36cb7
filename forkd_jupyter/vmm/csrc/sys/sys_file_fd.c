/* The files family, descriptor-based calls: read/write and friends, seeking,
 * descriptor management, fcntl/ioctl, readiness (poll/select), pipes. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/select.h>
#include <sys/uio.h>

#include "core/file_locks.h"
#include "core/sandbox.h"
#include "file/file_kinds.h"
#include "fs/fs_memfs.h"
#include "sys/sys.h"
#include "sys/sys_file.h"

#define IOV_MAX_ 1024

static int64_t do_read(struct sandbox *sb, struct file *f, gva_t buf, uint64_t len, int64_t off) {
    if (!sysf_can_read(f))
        return -EBADF;
    if (file_is_dir(f))
        return -EISDIR;
    len = FJ_MIN(len, 0x7ffff000ULL);
    void *p = mm_write_ptr(&sb->mm, buf, len);
    if (!p)
        return -EFAULT;
    if (off < 0)
        return f->ops->read ? f->ops->read(sb, f, p, len) : -EINVAL;
    return f->ops->pread ? f->ops->pread(sb, f, p, len, (uint64_t)off) : -ESPIPE;
}

static int64_t do_write(struct sandbox *sb, struct file *f, gva_t buf, uint64_t len, int64_t off) {
    if (!sysf_can_write(f))
        return -EBADF;
    len = FJ_MIN(len, 0x7ffff000ULL);
    const void *p = mm_read_ptr(&sb->mm, buf, len);
    if (!p)
        return -EFAULT;
    if (off < 0)
        return f->ops->write ? f->ops->write(sb, f, p, len) : -EINVAL;
    return f->ops->pwrite ? f->ops->pwrite(sb, f, p, len, (uint64_t)off) : -ESPIPE;
}

static int64_t sys_read(struct sandbox *sb, const uint64_t a[6]) {
    struct file *f = sys_fd_file(sb, a[0]);
    return f ? do_read(sb, f, a[1], a[2], -1) : -EBADF;
}

static int64_t sys_write(struct sandbox *sb, const uint64_t a[6]) {
    struct file *f = sys_fd_file(sb, a[0]);
    return f ? do_write(sb, f, a[1], a[2], -1) : -EBADF;
}

static int64_t sys_pread64(struct sandbox *sb, const uint64_t a[6]) {
    struct file *f = sys_fd_file(sb, a[0]);
    if (!f)
        return -EBADF;
    return (int64_t)a[3] < 0 ? -EINVAL : do_read(sb, f, a[1], a[2], (int64_t)a[3]);
}

static int64_t sys_pwrite64(struct sandbox *sb, const uint64_t a[6]) {
    struct file *f = sys_fd_file(sb, a[0]);
    if (!f)
        return -EBADF;
    return (int64_t)a[3] < 0 ? -EINVAL : do_write(sb, f, a[1], a[2], (int64_t)a[3]);
}

/* readv/writev/preadv/pwritev: one call per iovec, stopping at a short one. */
static int64_t vector_io(struct sandbox *sb, const uint64_t a[6], bool write, bool positional) {
    struct file *f = sys_fd_file(sb, a[0]);
    if (!f)
        return -EBADF;
    uint64_t n = a[2];
    if (n > IOV_MAX_)
        return -EINVAL;
    int64_t off = positional ? (int64_t)a[3] : -1;
    if (positional && off < 0)
        return -EINVAL;
    int64_t total = 0;
    for (uint64_t i = 0; i < n; i++) {
        struct iovec v;
        if (mm_copy_from(&sb->mm, &v, a[1] + i * sizeof(v), sizeof(v)) < 0)
            return total ? total : -EFAULT;
        if (!v.iov_len)
            continue;
        int64_t r = write ? do_write(sb, f, (gva_t)(uintptr_t)v.iov_base, v.iov_len, off)
                          : do_read(sb, f, (gva_t)(uintptr_t)v.iov_base, v.iov_len, off);
        if (r < 0)
            return total ? total : r;
        total += r;
        if (positional)
            off += r;
        if ((uint64_t)r < v.iov_len)
            break;
    }
    return total;
}

static int64_t sys_readv(struct sandbox *sb, const uint64_t a[6]) {
    return vector_io(sb, a, false, false);
}
static int64_t sys_writev(struct sandbox *sb, const uint64_t a[6]) {
    return vector_io(sb, a, true, false);
}
static int64_t sys_preadv(struct sandbox *sb, const uint64_t a[6]) {
    return vector_io(sb, a, false, true);
}
static int64_t sys_pwritev(struct sandbox *sb, const uint64_t a[6]) {
    return vector_io(sb, a, true, true);
}

static int64_t sys_lseek(struct sandbox *sb, const uint64_t a[6]) {
    struct file *f = sys_fd_file(sb, a[0]);
    if (!f)
        return -EBADF;
    return f->ops->lseek ? f->ops->lseek(sb, f, (int64_t)a[1], (int)a[2]) : -ESPIPE;
}

static int64_t sys_fstat(struct sandbox *sb, const uint64_t a[6]) {
    struct file *f = sys_fd_file(sb, a[0]);
    if (!f)
        return -EBADF;
    struct stat st;
    int err = f->ops->stat(sb, f, &st);
    return err < 0 ? err : mm_copy_to(&sb->mm, a[1], &st, sizeof(st));
}

static int64_t sys_getdents64(struct sandbox *sb, const uint64_t a[6]) {
    struct file *f = sys_fd_file(sb, a[0]);
    if (!f || (f->flags & O_PATH))
        return -EBADF;
    if (!f->ops->getdents)
        return -ENOTDIR;
    uint64_t len = FJ_MIN(a[2], 1u << 20);
    void *p = mm_write_ptr(&sb->mm, a[1], len);
    return p ? f->ops->getdents(sb, f, p, len) : -EFAULT;
}

/* ------------------------------------------------------- descriptors */

static int64_t sys_close(struct sandbox *sb, const uint64_t a[6]) {
    if (a[0] > INT_MAX)
        return -EBADF;
    file_locks_closing(sb, fdt_get(&sb->fdt, (int)a[0]));
    return fdt_close(&sb->fdt, (int)a[0]);
}

static int64_t sys_close_range(struct sandbox *sb, const uint64_t a[6]) {
    if (a[0] > a[1] || (a[2] & ~6ULL)) /* CLOSE_RANGE_UNSHARE 2, CLOSE_RANGE_CLOEXEC 4 */
        return -EINVAL;
    uint64_t last = FJ_MIN(a[1], (uint64_t)sb->fdt.cap - 1);
    for (uint64_t fd = a[0]; fd <= last && sb->fdt.cap > 0; fd++) {
        if (a[2] & 4) {
            fdt_set_cloexec(&sb->fdt, (int)fd, true);
        } else {
            file_locks_closing(sb, fdt_get(&sb->fdt, (int)fd));
            fdt_close(&sb->fdt, (int)fd);
        }
    }
    return 0;
}

static int64_t sys_dup(struct sandbox *sb, const uint64_t a[6]) {
    struct file *f = sys_fd_file(sb, a[0]);
    if (!f)
        return -EBADF;
    int fd = fdt_install(&sb->fdt, file_get(f), 0, false);
    if (fd < 0)
        file_put(f);
    return fd;
}

static int64_t dup_to(struct sandbox *sb, uint64_t oldfd, uint64_t newfd, bool cloexec) {
    struct file *f = sys_fd_file(sb, oldfd);
    if (!f)
        return -EBADF;
    if (newfd >= FDT_MAX)
        return -EBADF;
    if (oldfd == newfd)
        return (int64_t)newfd;
    file_locks_closing(sb, fdt_get(&sb->fdt, (int)newfd)); /* what newfd held is closed */
    int r = fdt_install_at(&sb->fdt, file_get(f), (int)newfd, cloexec);
    if (r < 0)
        file_put(f);
    return r;
}

static int64_t sys_dup2(struct sandbox *sb, const uint64_t a[6]) {
    if (a[0] == a[1])
        return sys_fd_file(sb, a[0]) ? (int64_t)a[1] : -EBADF;
    return dup_to(sb, a[0], a[1], false);
}

static int64_t sys_dup3(struct sandbox *sb, const uint64_t a[6]) {
    if (a[0] == a[1] || (a[2] & ~(uint64_t)O_CLOEXEC))
        return -EINVAL;
    return dup_to(sb, a[0], a[1], a[2] & O_CLOEXEC);
}

static int64_t sys_fcntl(struct sandbox *sb, const uint64_t a[6]) {
    struct file *f = sys_fd_file(sb, a[0]);
    if (!f)
        return -EBADF;
    int fd = (int)a[0];
    switch ((int)a[1]) {
    case F_DUPFD:
    case F_DUPFD_CLOEXEC: {
        if (a[2] >= (uint64_t)fdt_limit(&sb->fdt))
            return -EINVAL; /* as Linux: past RLIMIT_NOFILE */
        int r = fdt_install(&sb->fdt, file_get(f), (int)a[2], (int)a[1] == F_DUPFD_CLOEXEC);
        if (r < 0)
            file_put(f);
        return r;
    }
    case F_GETFD:
        return fdt_get_cloexec(&sb->fdt, fd) ? FD_CLOEXEC : 0;
    case F_SETFD:
        return fdt_set_cloexec(&sb->fdt, fd, a[2] & FD_CLOEXEC);
    case F_GETFL:
        return f->flags;
    case F_SETFL:
        f->flags = (f->flags & ~(O_APPEND | O_NONBLOCK)) | ((int)a[2] & (O_APPEND | O_NONBLOCK));
        return 0;
    case F_GETLK:
    case F_OFD_GETLK:
    case F_SETLK:
    case F_SETLKW:
    case F_OFD_SETLK:
    case F_OFD_SETLKW:
        return sysf_fcntl_lock(sb, f, (int)a[1], a[2]);
    case F_GETPIPE_SZ:
        return file_pipe_size(f, -1);
    case F_SETPIPE_SZ:
        return (int64_t)a[2] > INT32_MAX ? -EINVAL : file_pipe_size(f, (int64_t)(int)a[2]);
    default:
        return -EINVAL;
    }
}

static int64_t sys_ioctl(struct sandbox *sb, const uint64_t a[6]) {
    struct file *f = sys_fd_file(sb, a[0]);
    if (!f)
        return -EBADF;
    switch (a[1]) {
    case 0x5451: /* FIOCLEX */
        return fdt_set_cloexec(&sb->fdt, (int)a[0], true);
    case 0x5450: /* FIONCLEX */
        return fdt_set_cloexec(&sb->fdt, (int)a[0], false);
    case 0x5421: { /* FIONBIO */
        int on;
        if (mm_copy_from(&sb->mm, &on, a[2], sizeof(on)) < 0)
            return -EFAULT;
        f->flags = on ? f->flags | O_NONBLOCK : f->flags & ~O_NONBLOCK;
        return 0;
    }
    default:
        return f->ops->ioctl ? f->ops->ioctl(sb, f, a[1], a[2]) : -ENOTTY; /* no terminals */
    }
}

static int64_t sys_fsync(struct sandbox *sb, const uint64_t a[6]) {
    struct file *f = sys_fd_file(sb, a[0]);
    return !f ? -EBADF : f->ops->sync ? f->ops->sync(sb, f) : 0;
}

static int64_t sys_ftruncate(struct sandbox *sb, const uint64_t a[6]) {
    struct file *f = sys_fd_file(sb, a[0]);
    if (!f)
        return -EBADF;
    if ((int64_t)a[1] < 0 || !sysf_can_write(f))
        return -EINVAL;
    return f->ops->truncate ? f->ops->truncate(sb, f, a[1]) : -EINVAL;
}

static int64_t sys_fallocate(struct sandbox *sb, const uint64_t a[6]) {
    struct file *f = sys_fd_file(sb, a[0]);
    if (!f)
        return -EBADF;
    if ((int64_t)a[2] < 0 || (int64_t)a[3] <= 0)
        return -EINVAL;
    if (a[1] != 0)
        return -EOPNOTSUPP;
    if (!sysf_can_write(f))
        return -EBADF;
    if (file_is_dir(f))
        return -EISDIR;
    if (!f->ops->truncate)
        return -ENODEV;
    if (a[2] + a[3] > (uint64_t)INT64_MAX)
        return -EFBIG;
    struct stat st;
    int err = f->ops->stat(sb, f, &st);
    if (err < 0)
        return err;
    uint64_t end = a[2] + a[3];
    return end > (uint64_t)st.st_size ? f->ops->truncate(sb, f, end) : 0;
}

static int64_t sys_zero_fd(struct sandbox *sb, const uint64_t a[6]) {
    return sys_fd_file(sb, a[0]) ? 0 : -EBADF;
}
static int64_t sys_zero(struct sandbox *sb, const uint64_t a[6]) { return 0; }

int64_t sysf_install_pair(struct sandbox *sb, struct file *ends[2], bool cloexec, gva_t out) {
    int fds[2];
    fds[0] = fdt_install(&sb->fdt, ends[0], 0, cloexec);
    fds[1] = fds[0] < 0 ? -EMFILE : fdt_install(&sb->fdt, ends[1], 0, cloexec);
    if (fds[1] < 0) {
        if (fds[0] >= 0)
            fdt_close(&sb->fdt, fds[0]);
        else
            file_put(ends[0]);
        file_put(ends[1]);
        return -EMFILE;
    }
    if (mm_copy_to(&sb->mm, out, fds, sizeof(fds)) < 0) {
        fdt_close(&sb->fdt, fds[0]);
        fdt_close(&sb->fdt, fds[1]);
        return -EFAULT;
    }
    return 0;
}

static int64_t make_pipe(struct sandbox *sb, uint64_t out, int flags) {
    if (flags & ~(O_CLOEXEC | O_NONBLOCK | O_DIRECT))
        return -EINVAL;
    struct file *ends[2];
    int err = file_pipe_new(flags, ends);
    return err < 0 ? err : sysf_install_pair(sb, ends, flags & O_CLOEXEC, out);
}

static int64_t sys_pipe(struct sandbox *sb, const uint64_t a[6]) { return make_pipe(sb, a[0], 0); }
static int64_t sys_pipe2(struct sandbox *sb, const uint64_t a[6]) {
    return make_pipe(sb, a[0], (int)a[1]);
}

/* --------------------------------------------------------- readiness */

static short ready_events(struct sandbox *sb, int fd, short events) {
    struct file *f = fdt_get(&sb->fdt, fd);
    if (!f)
        return POLLNVAL;
    return f->ops->poll ? f->ops->poll(sb, f, events) : (short)(events & (POLLIN | POLLOUT));
}

int sysf_wait_ready(struct sandbox *sb, const int *fds, const short *events, size_t n,
                    int64_t timeout_ns) {
    int64_t cap = -1; /* the nearest time a file becomes ready by itself (a timer) */
    int host = -1;    /* the first file's a host fd stands for */
    short host_events = 0;
    for (size_t i = 0; i < n; i++) {
        struct file *f = fdt_get(&sb->fdt, fds[i]);
        int64_t in = f && f->ops->wake_in_ns ? f->ops->wake_in_ns(sb, f) : -1;
        if (in >= 0 && (cap < 0 || in < cap))
            cap = in;
        if (host < 0 && f && f->ops->wait_fd && (host = f->ops->wait_fd(f)) >= 0)
            host_events = events[i] & (POLLIN | POLLOUT);
    }
    bool capped = cap >= 0 && (timeout_ns < 0 || cap < timeout_ns);
    int err = sb_wait_fd(sb, host, host_events, capped ? cap : timeout_ns);
    return capped && err == -ETIMEDOUT ? 0 : err; /* 0: the caller looks at the files again */
}

static int64_t do_poll(struct sandbox *sb, gva_t ufds, uint64_t nfds, int64_t timeout_ns) {
    if (nfds > FDT_MAX)
        return -EINVAL;
    struct pollfd *p =
        nfds ? (struct pollfd *)mm_write_ptr(&sb->mm, ufds, nfds * sizeof(*p)) : NULL;
    if (nfds && !p)
        return -EFAULT;
    uint64_t deadline = timeout_ns >= 0 ? fj_now_ns() + (uint64_t)timeout_ns : 0;
    int fds[64];
    short evs[64];
    for (;;) {
        int64_t count = 0;
        size_t nw = 0;
        for (uint64_t i = 0; i < nfds; i++) {
            p[i].revents = p[i].fd < 0 ? 0 : ready_events(sb, p[i].fd, p[i].events);
            count += p[i].revents != 0;
            if (nw < 64 && p[i].fd >= 0)
                fds[nw] = p[i].fd, evs[nw++] = p[i].events;
        }
        if (count || timeout_ns == 0)
            return count;
        int64_t left = timeout_ns < 0 ? -1 : (int64_t)(deadline - fj_now_ns());
        if (timeout_ns > 0 && left <= 0)
            return 0;
        int err = sysf_wait_ready(sb, fds, evs, nw, left);
        if (err == -ETIMEDOUT)
            return 0;
        if (err < 0)
            return err;
    }
}

static int64_t sys_poll(struct sandbox *sb, const uint64_t a[6]) {
    int timeout_ms = (int)a[2];
    return do_poll(sb, a[0], a[1], timeout_ms < 0 ? -1 : (int64_t)timeout_ms * 1000000);
}

/* A NULL timespec pointer means no timeout (-1). */
static int64_t timespec_ns(struct sandbox *sb, gva_t at, int64_t *ns) {
    if (!at) {
        *ns = -1;
        return 0;
    }
    return sys_read_timespec(sb, at, ns);
}

static int64_t sys_ppoll(struct sandbox *sb, const uint64_t a[6]) {
    int64_t ns;
    int64_t err = timespec_ns(sb, a[2], &ns);
    return err < 0 ? err : do_poll(sb, a[0], a[1], ns);
}

static int64_t do_select(struct sandbox *sb, uint64_t nfds, gva_t rd, gva_t wr, gva_t ex,
                         int64_t timeout_ns) {
    if (nfds > FD_SETSIZE)
        return -EINVAL;
    fd_set r, w, e, ro, wo;
    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_ZERO(&e);
    size_t bytes = (nfds + 7) / 8;
    if ((rd && mm_copy_from(&sb->mm, &r, rd, bytes) < 0) ||
        (wr && mm_copy_from(&sb->mm, &w, wr, bytes) < 0) ||
        (ex && mm_copy_from(&sb->mm, &e, ex, bytes) < 0))
        return -EFAULT;
    uint64_t deadline = timeout_ns >= 0 ? fj_now_ns() + (uint64_t)timeout_ns : 0;
    for (;;) {
        FD_ZERO(&ro);
        FD_ZERO(&wo);
        int64_t count = 0;
        int fds[64];
        short evs[64];
        size_t nw = 0;
        for (int fd = 0; fd < (int)nfds; fd++) {
            short want =
                (short)((FD_ISSET(fd, &r) ? POLLIN : 0) | (FD_ISSET(fd, &w) ? POLLOUT : 0));
            if (!want)
                continue;
            short got = ready_events(sb, fd, want);
            if (got & POLLNVAL)
                return -EBADF;
            if ((got & (POLLIN | POLLHUP | POLLERR)) && (want & POLLIN))
                FD_SET(fd, &ro), count++;
            if ((got & (POLLOUT | POLLERR)) && (want & POLLOUT))
                FD_SET(fd, &wo), count++;
            if (nw < 64)
                fds[nw] = fd, evs[nw++] = want;
        }
        int64_t left = timeout_ns < 0 ? -1 : (int64_t)(deadline - fj_now_ns());
        if (count || timeout_ns == 0 || (timeout_ns > 0 && left <= 0)) {
            FD_ZERO(&e);
            if ((rd && mm_copy_to(&sb->mm, rd, &ro, bytes) < 0) ||
                (wr && mm_copy_to(&sb->mm, wr, &wo, bytes) < 0) ||
                (ex && mm_copy_to(&sb->mm, ex, &e, bytes) < 0))
                return -EFAULT;
            return count;
        }
        int err = sysf_wait_ready(sb, fds, evs, nw, left);
        if (err < 0 && err != -ETIMEDOUT)
            return err;
    }
}

static int64_t sys_select(struct sandbox *sb, const uint64_t a[6]) {
    int64_t ns = -1;
    if (a[4]) {
        struct timeval tv;
        if (mm_copy_from(&sb->mm, &tv, a[4], sizeof(tv)) < 0)
            return -EFAULT;
        if (tv.tv_sec < 0 || tv.tv_usec < 0)
            return -EINVAL;
        ns = tv.tv_sec * 1000000000LL + tv.tv_usec * 1000LL;
    }
    return do_select(sb, a[0], a[1], a[2], a[3], ns);
}

static int64_t sys_pselect6(struct sandbox *sb, const uint64_t a[6]) {
    int64_t ns;
    int64_t err = timespec_ns(sb, a[4], &ns);
    return err < 0 ? err : do_select(sb, a[0], a[1], a[2], a[3], ns);
}

const struct sys_entry sys_file_fd_entries[] = {
    {0, "read", sys_read, SYS_FULL, NULL},
    {1, "write", sys_write, SYS_FULL, NULL},
    {3, "close", sys_close, SYS_FULL, NULL},
    {5, "fstat", sys_fstat, SYS_FULL, NULL},
    {7, "poll", sys_poll, SYS_FULL, NULL},
    {8, "lseek", sys_lseek, SYS_FULL, NULL},
    {16, "ioctl", sys_ioctl, SYS_PARTIAL,
     "terminal ioctls on pseudo-terminals (termios, window size, foreground group, TIOCGPTN...); "
     "FIONBIO, FIOCLEX, FIONCLEX, FIONREAD; on sockets SIOCGIFINDEX, SIOCGIFNAME, SIOCGIFFLAGS, "
     "SIOCGIFMTU of lo; ENOTTY elsewhere"},
    {17, "pread64", sys_pread64, SYS_FULL, NULL},
    {18, "pwrite64", sys_pwrite64, SYS_FULL, NULL},
    {19, "readv", sys_readv, SYS_FULL, NULL},
    {20, "writev", sys_writev, SYS_FULL, NULL},
    {22, "pipe", sys_pipe, SYS_PARTIAL, "in-sandbox pipes, carried into branches"},
    {23, "select", sys_select, SYS_FULL, NULL},
    {32, "dup", sys_dup, SYS_FULL, NULL},
    {33, "dup2", sys_dup2, SYS_FULL, NULL},
    {40, "sendfile", sysf_sendfile, SYS_FULL,
     "copies through the VMM; in_fd must be a regular file"},
    {72, "fcntl", sys_fcntl, SYS_PARTIAL,
     "record and OFD locks between the sandbox's processes on layer files (no deadlock detection); "
     "no seals; pipe sizes from 4096 to 65536 bytes"},
    {73, "flock", sysf_flock, SYS_FULL, "between the sandbox's processes, on layer files"},
    {74, "fsync", sys_fsync, SYS_FULL, "the layer lives in memory"},
    {75, "fdatasync", sys_fsync, SYS_FULL, NULL},
    {77, "ftruncate", sys_ftruncate, SYS_FULL, NULL},
    {162, "sync", sys_zero, SYS_FULL, NULL},
    {188, "setxattr", sysf_setxattr, SYS_PARTIAL,
     "no attributes: EROFS outside the layer, EOPNOTSUPP in it"},
    {189, "lsetxattr", sysf_lsetxattr, SYS_PARTIAL, NULL},
    {190, "fsetxattr", sysf_fsetxattr, SYS_PARTIAL, NULL},
    {191, "getxattr", sysf_getxattr, SYS_FULL, "no file has attributes: ENODATA"},
    {192, "lgetxattr", sysf_lgetxattr, SYS_FULL, NULL},
    {193, "fgetxattr", sysf_fgetxattr, SYS_FULL, NULL},
    {194, "listxattr", sysf_listxattr, SYS_FULL, "always an empty list"},
    {195, "llistxattr", sysf_llistxattr, SYS_FULL, NULL},
    {196, "flistxattr", sysf_flistxattr, SYS_FULL, NULL},
    {197, "removexattr", sysf_removexattr, SYS_FULL, NULL},
    {198, "lremovexattr", sysf_lremovexattr, SYS_FULL, NULL},
    {199, "fremovexattr", sysf_fremovexattr, SYS_FULL, NULL},
    {217, "getdents64", sys_getdents64, SYS_FULL, NULL},
    {221, "fadvise64", sys_zero_fd, SYS_STUB, NULL},
    {270, "pselect6", sys_pselect6, SYS_PARTIAL, "the signal mask argument is ignored"},
    {271, "ppoll", sys_ppoll, SYS_PARTIAL, "the signal mask argument is ignored"},
    {285, "fallocate", sys_fallocate, SYS_PARTIAL, "mode 0 only"},
    {292, "dup3", sys_dup3, SYS_FULL, NULL},
    {293, "pipe2", sys_pipe2, SYS_PARTIAL, "in-sandbox pipes, carried into branches"},
    {295, "preadv", sys_preadv, SYS_FULL, NULL},
    {296, "pwritev", sys_pwritev, SYS_FULL, NULL},
    {306, "syncfs", sys_zero_fd, SYS_FULL, NULL},
    {319, "memfd_create", sysf_memfd_create, SYS_PARTIAL,
     "an unnamed layer file; no seals, no shared writable mappings"},
    {275, "splice", sysf_splice, SYS_PARTIAL,
     "copies through the VMM, one end a pipe, at most 64 KiB a call; bytes read from a pipe are "
     "lost if the write side fails"},
    {326, "copy_file_range", sysf_copy_file_range, SYS_FULL, "copies through the VMM"},
    {436, "close_range", sys_close_range, SYS_FULL, NULL},
};
const size_t sys_file_fd_count = FJ_ARRAY_SIZE(sys_file_fd_entries);
