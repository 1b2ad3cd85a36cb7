/* The sockets family: socket, socketpair, bind, listen, connect, accept,
 * names, options, shutdown. Every socket lives in the sandbox (file/sock.h):
 * AF_UNIX, and TCP/UDP on the loopback addresses between the sandbox's own
 * threads and processes. No host socket is made, so nothing outside the
 * sandbox can be reached. Sending and receiving: sys_socket_msg.c. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <linux/netlink.h>
#include <netinet/tcp.h>
#include <string.h>

#include "core/proc.h"
#include "file/file_kinds.h"
#include "fs/fs_memfs.h"
#include "sys/sys_file.h"
#include "sys/sys_socket.h"

struct file *sys_sock_at(struct sandbox *sb, uint64_t fd, int64_t *err) {
    struct file *f = sys_fd_file(sb, fd);
    *err = !f ? -EBADF : !file_is_socket(f) ? -ENOTSOCK : 0;
    return *err ? NULL : f;
}

int sys_sock_read_addr(struct sandbox *sb, gva_t gva, uint64_t len, struct sock_addr *out) {
    memset(out, 0, sizeof(*out));
    if (len > sizeof(out->ss) || len > INT_MAX)
        return -EINVAL;
    out->len = (uint32_t)len;
    return mm_copy_from(&sb->mm, &out->ss, gva, len) < 0 ? -EFAULT : 0;
}

int64_t sys_sock_write_addr(struct sandbox *sb, gva_t addr, gva_t addrlen,
                            const struct sock_addr *a) {
    if (!addr)
        return 0;
    int32_t room;
    if (mm_copy_from(&sb->mm, &room, addrlen, sizeof(room)) < 0)
        return -EFAULT;
    if (room < 0)
        return -EINVAL;
    uint32_t full = a->len;
    if (mm_copy_to(&sb->mm, addr, &a->ss, FJ_MIN((uint32_t)room, full)) < 0 ||
        mm_copy_to(&sb->mm, addrlen, &full, sizeof(full)) < 0)
        return -EFAULT;
    return 0;
}

/* The path of an AF_UNIX address, NUL-terminated. */
static void unix_path(const struct sock_addr *a, char out[sizeof(a->un.sun_path) + 1]) {
    size_t n = a->len - sizeof(sa_family_t);
    memcpy(out, a->un.sun_path, n);
    out[n] = 0;
}

int sys_sock_target(struct sandbox *sb, const struct sock *s, const struct sock_addr *a,
                    struct sock **target) {
    *target = NULL;
    uint64_t ino = 0;
    if (sock_addr_is_path(a)) {
        char path[sizeof(a->un.sun_path) + 1];
        struct view_node n;
        unix_path(a, path);
        int err = sysf_resolve_at(sb, AT_FDCWD, path, true, &n);
        if (err < 0)
            return err;
        if (n.kind == VK_NONE)
            err = -ENOENT;
        else if (n.kind != VK_LAYER || !S_ISSOCK(memfs_node_mode(n.node)))
            err = -ECONNREFUSED; /* a host file, or no socket's name */
        else
            ino = memfs_node_ino(n.node);
        view_node_release(sb->view, &n);
        if (err < 0)
            return err;
    } else if (a->family != AF_UNIX && !sock_addr_local(a)) {
        return -ENETUNREACH;
    }
    *target = sock_lookup(sb->procs, s->type, a, ino);
    return 0;
}

/* ------------------------------------------------------------ making */

/* NETLINK_ROUTE only, answered by the VMM about the sandbox's loopback
 * interface (file/sock_netlink.c); no other netlink family. */
static int64_t netlink_socket(struct sandbox *sb, const uint64_t a[6]) {
    int type = (int)a[1] & 0xf;
    if (type != SOCK_RAW && type != SOCK_DGRAM)
        return -ESOCKTNOSUPPORT;
    if (a[2] != NETLINK_ROUTE)
        return -EPROTONOSUPPORT;
    struct sock *s = sock_new(AF_NETLINK, type, NETLINK_ROUTE);
    struct file *f = s ? sock_file_new(s, a[1] & SOCK_NONBLOCK ? O_NONBLOCK : 0) : NULL;
    if (!f)
        return -ENOMEM;
    return fdt_install(&sb->fdt, f, 0, a[1] & SOCK_CLOEXEC);
}

static int64_t sys_socket(struct sandbox *sb, const uint64_t a[6]) {
    int domain = (int)a[0], type = (int)a[1] & 0xf, protocol = (int)a[2];
    if (a[1] & ~(uint64_t)(SOCK_NONBLOCK | SOCK_CLOEXEC | 0xf))
        return -EINVAL;
    if (domain == AF_NETLINK)
        return netlink_socket(sb, a);
    if (domain != AF_UNIX && domain != AF_INET && domain != AF_INET6)
        return -EAFNOSUPPORT; /* packet, ...: nothing of the host's */
    if (type == SOCK_RAW && domain != AF_UNIX)
        return -EPERM; /* raw sockets need privileges the sandbox user lacks */
    if (type != SOCK_STREAM && type != SOCK_DGRAM)
        return -ESOCKTNOSUPPORT;
    int expected = domain == AF_UNIX ? 0 : type == SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP;
    if (protocol != 0 && protocol != expected && !(domain == AF_UNIX && protocol == PF_UNIX))
        return -EPROTONOSUPPORT;
    struct sock *s = sock_new(domain, type, domain == AF_UNIX ? 0 : expected);
    struct file *f = s ? sock_file_new(s, a[1] & SOCK_NONBLOCK ? O_NONBLOCK : 0) : NULL;
    if (!f)
        return -ENOMEM;
    return fdt_install(&sb->fdt, f, 0, a[1] & SOCK_CLOEXEC);
}

static int64_t sys_socketpair(struct sandbox *sb, const uint64_t a[6]) {
    int domain = (int)a[0], type = (int)a[1] & 0xf, protocol = (int)a[2];
    if (a[1] & ~(uint64_t)(SOCK_NONBLOCK | SOCK_CLOEXEC | 0xf))
        return -EINVAL;
    if (domain == AF_INET || domain == AF_INET6)
        return -EOPNOTSUPP;
    if (domain != AF_UNIX)
        return -EAFNOSUPPORT;
    if (type != SOCK_STREAM && type != SOCK_DGRAM)
        return -EOPNOTSUPP;
    if (protocol != 0 && protocol != PF_UNIX)
        return -EPROTONOSUPPORT;
    struct file *ends[2];
    int err = file_socketpair_new(type, a[1] & SOCK_NONBLOCK ? O_NONBLOCK : 0, ends);
    return err < 0 ? err : sysf_install_pair(sb, ends, a[1] & SOCK_CLOEXEC, a[3]);
}

/* ------------------------------------------------------------ names */

/* A path name: a new socket node in the writable layer; its inode. */
static int64_t make_path_name(struct sandbox *sb, const struct sock_addr *a, uint64_t *ino) {
    char path[sizeof(a->un.sun_path) + 1];
    struct view_node n;
    unix_path(a, path);
    int err = sysf_resolve_at(sb, AT_FDCWD, path, false, &n);
    if (err < 0)
        return err;
    struct memfs_node *node = NULL;
    if (n.kind != VK_NONE)
        err = -EADDRINUSE;
    else if (!n.parent_in_layer)
        err = n.parent_visible ? -EROFS : -ENOENT;
    else
        err = memfs_mknode(fs_view_layer(sb->view), n.parent, n.leaf,
                           S_IFSOCK | (0777 & ~sb->view->umask), NULL, &node);
    if (err == 0) {
        *ino = memfs_node_ino(node);
        memfs_node_put(fs_view_layer(sb->view), node);
    }
    view_node_release(sb->view, &n);
    return err;
}

static void remove_path_name(struct sandbox *sb, const struct sock_addr *a) {
    char path[sizeof(a->un.sun_path) + 1];
    struct view_node n;
    unix_path(a, path);
    if (sysf_resolve_at(sb, AT_FDCWD, path, false, &n) < 0)
        return;
    if (n.kind == VK_LAYER && S_ISSOCK(memfs_node_mode(n.node)))
        memfs_unlink(fs_view_layer(sb->view), n.parent, n.leaf, 0);
    view_node_release(sb->view, &n);
}

static int64_t sys_bind(struct sandbox *sb, const uint64_t a[6]) {
    int64_t err;
    struct file *f = sys_sock_at(sb, a[0], &err);
    struct sock_addr addr;
    if (!f || (err = sys_sock_read_addr(sb, a[1], a[2], &addr)) < 0 ||
        (err = sock_addr_check(sock_of(f), &addr)) < 0)
        return err;
    struct sock *s = sock_of(f);
    if (s->local.len)
        return -EINVAL;
    if (s->domain == AF_NETLINK) { /* a port id: the process's when 0, as for a first socket */
        addr.len = sizeof(addr.nl);
        addr.nl.nl_pid = addr.nl.nl_pid ? addr.nl.nl_pid : sb->pid;
        s->local = addr;
        return 0;
    }
    if (addr.family == AF_UNIX && addr.len == sizeof(sa_family_t))
        return sock_autobind(sb, s);
    uint64_t ino = 0;
    if (sock_addr_is_path(&addr) && (err = make_path_name(sb, &addr, &ino)) < 0)
        return err;
    if ((err = sock_bind(sb, s, &addr, ino)) < 0 && ino)
        remove_path_name(sb, &addr);
    return err;
}

static int64_t sys_listen(struct sandbox *sb, const uint64_t a[6]) {
    int64_t err;
    struct file *f = sys_sock_at(sb, a[0], &err);
    return f ? sock_listen(sb, sock_of(f), (int)a[1]) : err;
}

static int64_t sys_connect(struct sandbox *sb, const uint64_t a[6]) {
    int64_t err;
    struct file *f = sys_sock_at(sb, a[0], &err);
    struct sock_addr addr;
    if (!f || (err = sys_sock_read_addr(sb, a[1], a[2], &addr)) < 0)
        return err;
    struct sock *s = sock_of(f), *target = NULL;
    if (addr.len >= sizeof(sa_family_t) && addr.family == AF_UNSPEC && s->type == SOCK_DGRAM)
        return sock_connect(sb, f, NULL, &addr);
    if ((err = sock_addr_check(s, &addr)) < 0 || (err = sys_sock_target(sb, s, &addr, &target)) < 0)
        return err;
    return sock_connect(sb, f, target, &addr);
}

static int64_t accept_common(struct sandbox *sb, const uint64_t a[6], int flags) {
    int64_t err;
    struct file *f = sys_sock_at(sb, a[0], &err), *conn;
    if (!f)
        return err;
    if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC))
        return -EINVAL;
    if ((err = sock_accept(sb, f, &conn)) < 0)
        return err;
    if (flags & SOCK_NONBLOCK)
        conn->flags |= O_NONBLOCK;
    if ((err = sys_sock_write_addr(sb, a[1], a[2], &sock_of(conn)->peer)) < 0) {
        file_put(conn);
        return err;
    }
    return fdt_install(&sb->fdt, conn, 0, flags & SOCK_CLOEXEC);
}

static int64_t sys_accept(struct sandbox *sb, const uint64_t a[6]) {
    return accept_common(sb, a, 0);
}
static int64_t sys_accept4(struct sandbox *sb, const uint64_t a[6]) {
    return accept_common(sb, a, (int)a[3]);
}

static int64_t sys_getsockname(struct sandbox *sb, const uint64_t a[6]) {
    int64_t err;
    struct file *f = sys_sock_at(sb, a[0], &err);
    if (!f)
        return err;
    struct sock *s = sock_of(f);
    struct sock_addr name = s->local;
    if (!name.len) { /* unbound: the family alone (AF_UNIX) or the wildcard */
        name.family = (sa_family_t)s->domain;
        name.len = s->domain == AF_INET      ? sizeof(name.in)
                   : s->domain == AF_INET6   ? sizeof(name.in6)
                   : s->domain == AF_NETLINK ? sizeof(name.nl)
                                             : sizeof(sa_family_t);
    }
    return sys_sock_write_addr(sb, a[1], a[2], &name);
}

static int64_t sys_getpeername(struct sandbox *sb, const uint64_t a[6]) {
    int64_t err;
    struct file *f = sys_sock_at(sb, a[0], &err);
    if (!f)
        return err;
    struct sock *s = sock_of(f);
    if (!s->connected)
        return -ENOTCONN;
    struct sock_addr peer = s->peer;
    if (!peer.len)
        peer = (struct sock_addr){.len = sizeof(sa_family_t), .family = (sa_family_t)s->domain};
    return sys_sock_write_addr(sb, a[1], a[2], &peer);
}

static int64_t sys_shutdown(struct sandbox *sb, const uint64_t a[6]) {
    int64_t err;
    struct file *f = sys_sock_at(sb, a[0], &err);
    if (!f)
        return err;
    struct sock *s = sock_of(f);
    int how = (int)a[1];
    if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
        return -EINVAL;
    if (!s->connected)
        return -ENOTCONN;
    if (s->pair) {
        if (how != SHUT_WR)
            s->pair->shut_rd[s->side] = true;
        if (how != SHUT_RD)
            s->pair->shut_wr[s->side] = true;
    }
    return 0;
}

/* ------------------------------------------------------------ options */

/* What Linux reports for SO_SNDBUF or SO_RCVBUF: twice the value set,
 * capped at twice net.core's maximum (wmem_max, rmem_max: Linux's default,
 * 212992, here) and at least its minimum; never set, a new socket's
 * default (TCP's initial 16 KiB and 128 KiB, the maximum for the others).
 * The room a connection has follows the value set (sock_core.c). */
static int buffer_size_reported(const struct sock *s, int name) {
    const uint32_t max = SOCK_DGRAM_QUEUE;
    int set = sock_opt_get(s, SOL_SOCKET, name, INT_MIN);
    if (set == INT_MIN) {
        bool tcp = s->type == SOCK_STREAM && s->domain != AF_UNIX;
        return !tcp ? (int)max : name == SO_SNDBUF ? 16384 : 131072;
    }
    uint32_t doubled = 2 * FJ_MIN((uint32_t)set, max); /* a negative value is a large one */
    return (int)FJ_MAX(doubled,
                       name == SO_SNDBUF ? (uint32_t)SOCK_MIN_SNDBUF : (uint32_t)SOCK_MIN_RCVBUF);
}

/* The value of an option that has one here (SOL_SOCKET answered from the
 * socket; IP, IPv6 and TCP options kept as set), or -ENOPROTOOPT. */
static int option_value(struct sandbox *sb, struct sock *s, int level, int name, int *value) {
    if (level == SOL_SOCKET) {
        switch (name) {
        case SO_TYPE:
            *value = s->type;
            return 0;
        case SO_DOMAIN:
            *value = s->domain;
            return 0;
        case SO_PROTOCOL:
            *value = s->protocol;
            return 0;
        case SO_ACCEPTCONN:
            *value = s->listening;
            return 0;
        case SO_ERROR:
            *value = s->so_error;
            s->so_error = 0;
            return 0;
        case SO_SNDBUF:
        case SO_RCVBUF:
            *value = buffer_size_reported(s, name);
            return 0;
        case SO_REUSEADDR:
        case SO_REUSEPORT:
        case SO_KEEPALIVE:
        case SO_BROADCAST:
        case SO_PASSCRED:
        case SO_OOBINLINE:
        case SO_DONTROUTE:
        case SO_PRIORITY:
        case SO_RCVLOWAT:
        case SO_SNDLOWAT:
        case SO_LINGER:
        case SO_RCVTIMEO_OLD:
        case SO_SNDTIMEO_OLD:
        case SO_TIMESTAMP_OLD:
            *value = sock_opt_get(s, level, name, name == SO_RCVLOWAT || name == SO_SNDLOWAT);
            return 0;
        default:
            return -ENOPROTOOPT;
        }
    }
    /* NETLINK_EXT_ACK, NETLINK_GET_STRICT_CHK and the other flags a netlink
     * socket has (iproute2 sets the first two): kept and read back. */
    if (level == SOL_NETLINK && s->domain == AF_NETLINK && name >= NETLINK_ADD_MEMBERSHIP &&
        name <= NETLINK_GET_STRICT_CHK) {
        *value = sock_opt_get(s, level, name, 0);
        return 0;
    }
    bool inet = s->domain != AF_UNIX && s->domain != AF_NETLINK;
    if ((level == IPPROTO_IP && inet) || (level == IPPROTO_IPV6 && s->domain == AF_INET6) ||
        (level == IPPROTO_TCP && inet && s->type == SOCK_STREAM) ||
        (level == IPPROTO_UDP && inet && s->type == SOCK_DGRAM)) {
        *value = sock_opt_get(s, level, name, 0);
        return 0;
    }
    return -ENOPROTOOPT;
}

/* Options whose value is a struct, not an int: its size. */
static uint32_t option_size(int level, int name) {
    if (level != SOL_SOCKET)
        return sizeof(int);
    switch (name) {
    case SO_LINGER:
        return 8; /* struct linger */
    case SO_RCVTIMEO_OLD:
    case SO_SNDTIMEO_OLD:
        return 16; /* struct timeval */
    case SO_PEERCRED:
        return 12; /* struct ucred */
    default:
        return sizeof(int);
    }
}

static int64_t sys_getsockopt(struct sandbox *sb, const uint64_t a[6]) {
    int64_t err;
    struct file *f = sys_sock_at(sb, a[0], &err);
    if (!f)
        return err;
    struct sock *s = sock_of(f);
    int level = (int)a[1], name = (int)a[2];
    uint8_t out[16] = {0};
    uint32_t size = option_size(level, name);
    if (level == SOL_SOCKET && name == SO_PEERCRED) { /* every process is the sandbox user */
        if (s->domain != AF_UNIX || !s->connected)
            return -ENOTCONN;
        uint32_t cred[3] = {sb->pid, 1000, 1000};
        memcpy(out, cred, sizeof(cred));
    } else {
        int value;
        if ((err = option_value(sb, s, level, name, &value)) < 0)
            return err;
        memcpy(out, &value, sizeof(value));
    }
    int32_t len;
    if (mm_copy_from(&sb->mm, &len, a[4], sizeof(len)) < 0)
        return -EFAULT;
    if (len < 0)
        return -EINVAL;
    size = FJ_MIN((uint32_t)len, size);
    if (mm_copy_to(&sb->mm, a[3], out, size) < 0 ||
        mm_copy_to(&sb->mm, a[4], &size, sizeof(size)) < 0)
        return -EFAULT;
    return 0;
}

static int64_t sys_setsockopt(struct sandbox *sb, const uint64_t a[6]) {
    int64_t err;
    struct file *f = sys_sock_at(sb, a[0], &err);
    if (!f)
        return err;
    struct sock *s = sock_of(f);
    int level = (int)a[1], name = (int)a[2], value = 0;
    if (level == SOL_SOCKET && (name == SO_TYPE || name == SO_DOMAIN || name == SO_PROTOCOL ||
                                name == SO_ERROR || name == SO_ACCEPTCONN || name == SO_PEERCRED))
        return -ENOPROTOOPT;
    if ((err = option_value(sb, s, level, name, &value)) < 0)
        return err;
    uint32_t size = option_size(level, name);
    if (a[4] < FJ_MIN(size, (uint32_t)sizeof(int)))
        return -EINVAL;
    if (mm_copy_from(&sb->mm, &value, a[3], FJ_MIN(a[4], sizeof(value))) < 0)
        return -EFAULT;
    if (a[4] < sizeof(int))
        value &= 0xff; /* a char-sized option (IP_TTL and such may be) */
    if (level == IPPROTO_IPV6 && name == IPV6_V6ONLY && s->local.len)
        return -EINVAL;
    if ((err = sock_opt_set(s, level, name, value)) == 0 && level == SOL_SOCKET &&
        (name == SO_SNDBUF || name == SO_RCVBUF))
        sock_pair_take_options(s);
    return err;
}

const struct sys_entry sys_socket_entries[] = {
    {41, "socket", sys_socket, SYS_PARTIAL,
     "AF_UNIX, TCP and UDP on loopback, inside the sandbox; no host socket; NETLINK_ROUTE tells of "
     "the loopback interface only"},
    {53, "socketpair", sys_socketpair, SYS_FULL, "AF_UNIX stream and datagram"},
    {49, "bind", sys_bind, SYS_PARTIAL,
     "paths in the writable layer, abstract names, loopback addresses"},
    {50, "listen", sys_listen, SYS_FULL, NULL},
    {42, "connect", sys_connect, SYS_PARTIAL, "the sandbox's own sockets; elsewhere ENETUNREACH"},
    {43, "accept", sys_accept, SYS_FULL, NULL},
    {288, "accept4", sys_accept4, SYS_FULL, NULL},
    {48, "shutdown", sys_shutdown, SYS_FULL, NULL},
    {51, "getsockname", sys_getsockname, SYS_FULL, NULL},
    {52, "getpeername", sys_getpeername, SYS_FULL, NULL},
    {54, "setsockopt", sys_setsockopt, SYS_PARTIAL,
     "kept and read back; only SO_REUSEADDR/PORT, IPV6_V6ONLY act"},
    {55, "getsockopt", sys_getsockopt, SYS_PARTIAL,
     "type, domain, error, peer credentials, and what was set"},
};
const size_t sys_socket_count = FJ_ARRAY_SIZE(sys_socket_entries);
