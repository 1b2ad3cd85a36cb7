/* The sockets family: socketpair(AF_UNIX, SOCK_STREAM) inside the sandbox
 * (file/file_socket.c) and the calls that work on such sockets. No socket
 * reaches the host or a network: socket() is refused, and address-based
 * calls have nothing to bind or connect to. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "core/sandbox.h"
#include "file/file_kinds.h"
#include "sys/sys.h"
#include "sys/sys_file.h"

#define IOV_LIMIT 1024
#define MSG_KNOWN (MSG_DONTWAIT | MSG_NOSIGNAL | MSG_PEEK | MSG_MORE | MSG_WAITALL | MSG_CMSG_CLOEXEC)

/* The socket at fd: NULL with *err -EBADF (not open) or -ENOTSOCK. */
static struct file *sock_at(struct sandbox *sb, uint64_t fd, int64_t *err)
{
    struct file *f = fd > INT_MAX ? NULL : fdt_get(&sb->fdt, (int)fd);
    *err = !f ? -EBADF : !file_is_socket(f) ? -ENOTSOCK : 0;
    return *err ? NULL : f;
}

static int64_t check_flags(uint64_t flags) { return flags & MSG_OOB ? -EOPNOTSUPP : flags & ~(uint64_t)MSG_KNOWN ? -EINVAL : 0; }

static int64_t sys_socket(struct sandbox *sb, const uint64_t a[6]) { return -EACCES; }

static int64_t sys_socketpair(struct sandbox *sb, const uint64_t a[6])
{
    int domain = (int)a[0], type = (int)a[1], protocol = (int)a[2];
    if (domain != AF_UNIX)
        return -EAFNOSUPPORT;
    if (type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC | 0xf))
        return -EINVAL;
    if ((type & 0xf) != SOCK_STREAM)
        return -EOPNOTSUPP;
    if (protocol != 0)
        return -EPROTONOSUPPORT;
    struct file *ends[2];
    int err = file_socketpair_new(type & SOCK_NONBLOCK ? O_NONBLOCK : 0, ends);
    return err < 0 ? err : sysf_install_pair(sb, ends, type & SOCK_CLOEXEC, a[3]);
}

static int64_t sys_sendto(struct sandbox *sb, const uint64_t a[6])
{
    int64_t err;
    struct file *f = sock_at(sb, a[0], &err);
    if (!f)
        return err;
    if ((err = check_flags(a[3])) < 0)
        return err;
    if (a[4])
        return -EISCONN; /* a connected pair has its only peer */
    uint64_t len = FJ_MIN(a[2], 0x7ffff000ULL);
    const void *p = mm_read_ptr(&sb->mm, a[1], len);
    return p ? file_socket_send(sb, f, p, len, (int)a[3]) : -EFAULT;
}

/* Stream sockets report no source address: *addrlen becomes 0. */
static int64_t clear_addrlen(struct sandbox *sb, gva_t addr, gva_t addrlen)
{
    uint32_t zero = 0;
    return addr && addrlen ? mm_copy_to(&sb->mm, addrlen, &zero, sizeof(zero)) : 0;
}

static int64_t sys_recvfrom(struct sandbox *sb, const uint64_t a[6])
{
    int64_t err;
    struct file *f = sock_at(sb, a[0], &err);
    if (!f)
        return err;
    if ((err = check_flags(a[3])) < 0)
        return err;
    uint64_t len = FJ_MIN(a[2], 0x7ffff000ULL);
    void *p = mm_write_ptr(&sb->mm, a[1], len);
    if (!p)
        return -EFAULT;
    int64_t n = file_socket_recv(sb, f, p, len, (int)a[3]);
    if (n >= 0 && clear_addrlen(sb, a[4], a[5]) < 0)
        return -EFAULT;
    return n;
}

/* sendmsg/recvmsg: the iovec walked in order; ancillary data is not carried
 * (passing descriptors between processes comes with processes). */
static int64_t msg_io(struct sandbox *sb, struct file *f, gva_t msg_at, int flags, bool send)
{
    struct msghdr m;
    if (mm_copy_from(&sb->mm, &m, msg_at, sizeof(m)) < 0)
        return -EFAULT;
    if (m.msg_iovlen > IOV_LIMIT)
        return -EMSGSIZE;
    if (send && (m.msg_name || m.msg_controllen))
        return m.msg_name ? -EISCONN : -EOPNOTSUPP;
    int64_t total = 0;
    for (size_t i = 0; i < m.msg_iovlen; i++) {
        struct iovec v;
        if (mm_copy_from(&sb->mm, &v, (gva_t)(uintptr_t)m.msg_iov + i * sizeof(v), sizeof(v)) < 0)
            return total ? total : -EFAULT;
        if (!v.iov_len)
            continue;
        int64_t n;
        if (send) {
            const void *p = mm_read_ptr(&sb->mm, (gva_t)(uintptr_t)v.iov_base, v.iov_len);
            n = p ? file_socket_send(sb, f, p, v.iov_len, total ? flags | MSG_DONTWAIT : flags) : -EFAULT;
        } else {
            void *p = mm_write_ptr(&sb->mm, (gva_t)(uintptr_t)v.iov_base, v.iov_len);
            n = p ? file_socket_recv(sb, f, p, v.iov_len, total ? flags | MSG_DONTWAIT : flags) : -EFAULT;
        }
        if (n < 0)
            return total ? total : n;
        total += n;
        if ((uint64_t)n < v.iov_len)
            break;
    }
    if (!send) {
        m.msg_namelen = 0;
        m.msg_controllen = 0;
        m.msg_flags = 0;
        if (mm_copy_to(&sb->mm, msg_at, &m, sizeof(m)) < 0)
            return -EFAULT;
    }
    return total;
}

static int64_t msg_call(struct sandbox *sb, const uint64_t a[6], bool send)
{
    int64_t err;
    struct file *f = sock_at(sb, a[0], &err);
    if (!f)
        return err;
    return (err = check_flags(a[2])) < 0 ? err : msg_io(sb, f, a[1], (int)a[2], send);
}

static int64_t sys_sendmsg(struct sandbox *sb, const uint64_t a[6]) { return msg_call(sb, a, true); }
static int64_t sys_recvmsg(struct sandbox *sb, const uint64_t a[6]) { return msg_call(sb, a, false); }

static int64_t sys_shutdown(struct sandbox *sb, const uint64_t a[6])
{
    int64_t err;
    struct file *f = sock_at(sb, a[0], &err);
    return f ? file_socket_shutdown(f, (int)a[1]) : err;
}

/* SOL_SOCKET options of a stream pair: answered for reading, accepted (and
 * without effect) for writing. */
static int sockopt_value(int name, int *value)
{
    switch (name) {
    case SO_TYPE: *value = SOCK_STREAM; return 0;
    case SO_DOMAIN: *value = AF_UNIX; return 0;
    case SO_PROTOCOL: *value = 0; return 0;
    case SO_ERROR: *value = 0; return 0;
    case SO_ACCEPTCONN: *value = 0; return 0;
    case SO_SNDBUF:
    case SO_RCVBUF: *value = 65536; return 0;
    case SO_PASSCRED:
    case SO_KEEPALIVE:
    case SO_REUSEADDR:
    case SO_BROADCAST:
    case SO_LINGER:
    case SO_RCVLOWAT:
    case SO_SNDLOWAT:
    case SO_RCVTIMEO:
    case SO_SNDTIMEO:
    case SO_PRIORITY: *value = 0; return 0;
    default: return -ENOPROTOOPT;
    }
}

static int64_t sys_getsockopt(struct sandbox *sb, const uint64_t a[6])
{
    int64_t err;
    if (!sock_at(sb, a[0], &err))
        return err;
    int value;
    if ((int)a[1] != SOL_SOCKET || sockopt_value((int)a[2], &value) < 0)
        return -ENOPROTOOPT;
    uint32_t len;
    if (mm_copy_from(&sb->mm, &len, a[4], sizeof(len)) < 0)
        return -EFAULT;
    if ((int32_t)len < 0)
        return -EINVAL;
    len = FJ_MIN(len, (uint32_t)sizeof(value));
    if (mm_copy_to(&sb->mm, a[3], &value, len) < 0 || mm_copy_to(&sb->mm, a[4], &len, sizeof(len)) < 0)
        return -EFAULT;
    return 0;
}

static int64_t sys_setsockopt(struct sandbox *sb, const uint64_t a[6])
{
    int64_t err;
    if (!sock_at(sb, a[0], &err))
        return err;
    int value;
    return (int)a[1] == SOL_SOCKET && sockopt_value((int)a[2], &value) == 0 ? 0 : -ENOPROTOOPT;
}

/* Both ends are unnamed AF_UNIX sockets: the address is the family alone. */
static int64_t unnamed_address(struct sandbox *sb, const uint64_t a[6])
{
    int64_t err;
    if (!sock_at(sb, a[0], &err))
        return err;
    uint32_t len;
    if (mm_copy_from(&sb->mm, &len, a[2], sizeof(len)) < 0)
        return -EFAULT;
    if ((int32_t)len < 0)
        return -EINVAL;
    uint16_t family = AF_UNIX;
    uint32_t full = sizeof(family);
    if (mm_copy_to(&sb->mm, a[1], &family, FJ_MIN(len, full)) < 0 || mm_copy_to(&sb->mm, a[2], &full, sizeof(full)) < 0)
        return -EFAULT;
    return 0;
}

/* bind/listen/connect/accept: nothing to bind to or reach. On a pair's
 * socket they fail as Linux fails them on a connected stream socket. */
static int64_t refuse_on_socket(struct sandbox *sb, uint64_t fd, int64_t err_if_socket)
{
    int64_t err;
    return sock_at(sb, fd, &err) ? err_if_socket : err;
}

static int64_t sys_connect(struct sandbox *sb, const uint64_t a[6]) { return refuse_on_socket(sb, a[0], -EISCONN); }
static int64_t sys_bind(struct sandbox *sb, const uint64_t a[6]) { return refuse_on_socket(sb, a[0], -EINVAL); }
static int64_t sys_listen(struct sandbox *sb, const uint64_t a[6]) { return refuse_on_socket(sb, a[0], -EINVAL); }
static int64_t sys_accept(struct sandbox *sb, const uint64_t a[6]) { return refuse_on_socket(sb, a[0], -EINVAL); }

const struct sys_entry sys_socket_entries[] = {
    {41, "socket", sys_socket, SYS_REFUSED, "no network: EACCES (socketpair works)"},
    {53, "socketpair", sys_socketpair, SYS_PARTIAL, "AF_UNIX SOCK_STREAM, inside the sandbox"},
    {42, "connect", sys_connect, SYS_REFUSED, "nothing to connect to: EISCONN on a pair's socket"},
    {43, "accept", sys_accept, SYS_REFUSED, "nothing listens: EINVAL"},
    {288, "accept4", sys_accept, SYS_REFUSED, "nothing listens: EINVAL"},
    {44, "sendto", sys_sendto, SYS_FULL, "to the connected peer"},
    {45, "recvfrom", sys_recvfrom, SYS_FULL, "no source address (stream)"},
    {46, "sendmsg", sys_sendmsg, SYS_PARTIAL, "no ancillary data (SCM_RIGHTS)"},
    {47, "recvmsg", sys_recvmsg, SYS_PARTIAL, "no ancillary data"},
    {48, "shutdown", sys_shutdown, SYS_FULL, NULL},
    {49, "bind", sys_bind, SYS_REFUSED, "nothing to bind: EINVAL"},
    {50, "listen", sys_listen, SYS_REFUSED, "EINVAL"},
    {51, "getsockname", unnamed_address, SYS_FULL, "unnamed AF_UNIX"},
    {52, "getpeername", unnamed_address, SYS_FULL, "unnamed AF_UNIX"},
    {54, "setsockopt", sys_setsockopt, SYS_PARTIAL, "SOL_SOCKET options accepted, without effect"},
    {55, "getsockopt", sys_getsockopt, SYS_PARTIAL, "SOL_SOCKET: type, domain, error, buffer sizes"},
};
const size_t sys_socket_count = FJ_ARRAY_SIZE(sys_socket_entries);
