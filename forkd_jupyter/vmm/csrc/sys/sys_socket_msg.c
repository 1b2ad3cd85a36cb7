/* The sockets family, data: sendto, recvfrom, sendmsg, recvmsg, with
 * addresses for datagrams and descriptors passed with SCM_RIGHTS between
 * the sandbox's processes (AF_UNIX). A stream's iovec is walked in order; a
 * datagram is gathered whole and scattered back. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "file/file_kinds.h"
#include "sys/sys_socket.h"

#define IOV_LIMIT 1024
#define MSG_KNOWN                                                                                  \
    (MSG_DONTWAIT | MSG_NOSIGNAL | MSG_PEEK | MSG_MORE | MSG_WAITALL | MSG_CMSG_CLOEXEC |          \
     MSG_TRUNC | MSG_EOR)
#define CMSG_ROOM 4096 /* the most control data read from or written to the guest */

static int64_t check_flags(uint64_t flags) {
    return flags & MSG_OOB ? -EOPNOTSUPP : flags & ~(uint64_t)MSG_KNOWN ? -EINVAL : 0;
}

/* One send: to (NULL: the connected peer) and rights (taken when sent). */
static int64_t send_one(struct sandbox *sb, struct file *f, const struct sock_addr *to,
                        const void *buf, uint64_t len, int flags, struct sock_rights **rights) {
    struct sock *s = sock_of(f), *target = NULL;
    int64_t err;
    if (s->domain == AF_NETLINK) { /* only the kernel's port, 0, answers */
        if (to && ((err = sock_addr_check(s, to)) < 0 || to->nl.nl_pid))
            return to && !err ? -ECONNREFUSED : err;
        return sock_netlink_request(sb, s, buf, len);
    }
    if (s->type == SOCK_STREAM) {
        if (to && s->domain == AF_UNIX)
            return s->connected ? -EISCONN : -EOPNOTSUPP;
        return sock_stream_send(sb, f, buf, len, flags, rights); /* TCP ignores the address */
    }
    if (to &&
        ((err = sock_addr_check(s, to)) < 0 || (err = sys_sock_target(sb, s, to, &target)) < 0))
        return err == -ENETUNREACH || s->domain == AF_UNIX ? err : (int64_t)len;
    return sock_dgram_send(sb, s, sock_nonblocking(f, flags), target, to, buf, len, rights);
}

static int64_t sys_sendto(struct sandbox *sb, const uint64_t a[6]) {
    int64_t err;
    struct file *f = sys_sock_at(sb, a[0], &err);
    if (!f || (err = check_flags(a[3])) < 0)
        return err;
    struct sock_addr to;
    if (a[4] && (err = sys_sock_read_addr(sb, a[4], a[5], &to)) < 0)
        return err;
    uint64_t len = FJ_MIN(a[2], 0x7ffff000ULL);
    const void *p = mm_read_ptr(&sb->mm, a[1], len);
    return p ? send_one(sb, f, a[4] ? &to : NULL, p, len, (int)a[3], NULL) : -EFAULT;
}

/* One receive into buf; *from: the sender for datagrams (len 0 otherwise). */
static int64_t recv_one(struct sandbox *sb, struct file *f, void *buf, uint64_t len, int flags,
                        struct sock_addr *from, struct sock_rights **rights, bool *truncated) {
    from->len = 0;
    *truncated = false;
    if (sock_of(f)->type == SOCK_STREAM)
        return sock_stream_recv(sb, f, buf, len, flags & ~MSG_TRUNC, rights);
    return sock_dgram_recv(sb, sock_of(f), sock_nonblocking(f, flags), buf, len, flags, from,
                           rights, truncated);
}

static int64_t sys_recvfrom(struct sandbox *sb, const uint64_t a[6]) {
    int64_t err;
    struct file *f = sys_sock_at(sb, a[0], &err);
    if (!f || (err = check_flags(a[3])) < 0)
        return err;
    uint64_t len = FJ_MIN(a[2], 0x7ffff000ULL);
    void *p = mm_write_ptr(&sb->mm, a[1], len);
    if (!p)
        return -EFAULT;
    struct sock_addr from;
    bool truncated;
    int64_t n = recv_one(sb, f, p, len, (int)a[3], &from, NULL, &truncated);
    if (n >= 0 && (err = sys_sock_write_addr(sb, a[4], a[5], &from)) < 0)
        return err;
    return n;
}

/* ------------------------------------------------------------ messages */

struct guest_msg {
    struct msghdr m;
    struct iovec iov[IOV_LIMIT];
    uint64_t total;
};

static int64_t read_msg(struct sandbox *sb, gva_t at, struct guest_msg *g) {
    if (mm_copy_from(&sb->mm, &g->m, at, sizeof(g->m)) < 0)
        return -EFAULT;
    if (g->m.msg_iovlen > IOV_LIMIT)
        return -EMSGSIZE;
    if (g->m.msg_iovlen && mm_copy_from(&sb->mm, g->iov, (gva_t)(uintptr_t)g->m.msg_iov,
                                        g->m.msg_iovlen * sizeof(g->iov[0])) < 0)
        return -EFAULT;
    g->total = 0;
    for (size_t i = 0; i < g->m.msg_iovlen; i++) {
        if (g->iov[i].iov_len > 0x7ffff000ULL - g->total)
            return -EINVAL;
        g->total += g->iov[i].iov_len;
    }
    return 0;
}

/* The descriptors of the SCM_RIGHTS messages in the control data (other
 * kinds, SCM_CREDENTIALS, are accepted and have no effect). */
static int64_t rights_from_control(struct sandbox *sb, const struct msghdr *m,
                                   struct sock_rights **out) {
    *out = NULL;
    if (!m->msg_controllen)
        return 0;
    if (m->msg_controllen > CMSG_ROOM)
        return -ENOBUFS;
    uint8_t buf[CMSG_ROOM];
    if (mm_copy_from(&sb->mm, buf, (gva_t)(uintptr_t)m->msg_control, m->msg_controllen) < 0)
        return -EFAULT;
    struct msghdr local = {.msg_control = buf, .msg_controllen = m->msg_controllen};
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&local); c; c = CMSG_NXTHDR(&local, c)) {
        if (c->cmsg_len < CMSG_LEN(0) || (uint8_t *)c + c->cmsg_len > buf + m->msg_controllen)
            return -EINVAL;
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        int n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int)), have = *out ? (*out)->n : 0;
        if (have + n > SOCK_MAX_RIGHTS)
            return -EINVAL;
        struct sock_rights *r =
            realloc(*out, sizeof(*r) + (size_t)(have + n) * sizeof(r->files[0]));
        if (!r)
            return -ENOMEM;
        if (!*out)
            r->next = NULL, r->at = 0, r->n = 0;
        *out = r;
        const int *fds = (const int *)CMSG_DATA(c);
        for (int i = 0; i < n; i++) {
            struct file *f = fds[i] < 0 ? NULL : fdt_get(&sb->fdt, fds[i]);
            if (!f)
                return -EBADF;
            r->files[r->n++] = file_get(f);
        }
    }
    return 0;
}

/* A datagram's bytes from (or into) the guest's iovec. */
static int64_t gather(struct sandbox *sb, const struct guest_msg *g, uint8_t *buf) {
    for (size_t i = 0, off = 0; i < g->m.msg_iovlen; off += g->iov[i++].iov_len)
        if (mm_copy_from(&sb->mm, buf + off, (gva_t)(uintptr_t)g->iov[i].iov_base,
                         g->iov[i].iov_len) < 0)
            return -EFAULT;
    return 0;
}

static int64_t scatter(struct sandbox *sb, const struct guest_msg *g, const uint8_t *buf,
                       uint64_t len) {
    for (size_t i = 0, off = 0; i < g->m.msg_iovlen && off < len; off += g->iov[i++].iov_len)
        if (mm_copy_to(&sb->mm, (gva_t)(uintptr_t)g->iov[i].iov_base, buf + off,
                       FJ_MIN(len - off, g->iov[i].iov_len)) < 0)
            return -EFAULT;
    return 0;
}

/* A stream's iovec in order: after the first, parts never wait. */
static int64_t stream_iov(struct sandbox *sb, struct file *f, const struct guest_msg *g, int flags,
                          bool send, struct sock_rights **rights) {
    int64_t total = 0;
    for (size_t i = 0; i < g->m.msg_iovlen; i++) {
        struct iovec v = g->iov[i];
        if (!v.iov_len)
            continue;
        int fl = total ? flags | MSG_DONTWAIT : flags;
        int64_t n;
        if (send) {
            const void *p = mm_read_ptr(&sb->mm, (gva_t)(uintptr_t)v.iov_base, v.iov_len);
            n = p ? send_one(sb, f, NULL, p, v.iov_len, fl, rights) : -EFAULT;
        } else {
            void *p = mm_write_ptr(&sb->mm, (gva_t)(uintptr_t)v.iov_base, v.iov_len);
            n = p ? sock_stream_recv(sb, f, p, v.iov_len, fl, total ? NULL : rights) : -EFAULT;
        }
        if (n < 0)
            return total ? total : n;
        total += n;
        if ((uint64_t)n < v.iov_len)
            break;
    }
    return total;
}

static int64_t sendmsg_one(struct sandbox *sb, struct file *f, gva_t at, int flags) {
    struct guest_msg *g = malloc(sizeof(*g));
    struct sock_rights *rights = NULL;
    struct sock_addr to;
    uint8_t *buf = NULL;
    int64_t r = g ? read_msg(sb, at, g) : -ENOMEM;
    if (r == 0 && g->m.msg_name && g->m.msg_namelen)
        r = sys_sock_read_addr(sb, (gva_t)(uintptr_t)g->m.msg_name, g->m.msg_namelen, &to);
    if (r == 0)
        r = rights_from_control(sb, &g->m, &rights);
    if (r == 0 && rights && sock_of(f)->domain != AF_UNIX)
        r = -EINVAL;
    bool named = r == 0 && g->m.msg_name && g->m.msg_namelen;
    if (r == 0 && sock_of(f)->type == SOCK_STREAM) {
        if (named && sock_of(f)->domain == AF_UNIX) /* TCP ignores the address */
            r = sock_of(f)->connected ? -EISCONN : -EOPNOTSUPP;
        else
            r = stream_iov(sb, f, g, flags, true, &rights);
    } else if (r == 0) {
        buf = malloc(g->total ? g->total : 1);
        r = !buf ? -ENOMEM : gather(sb, g, buf);
        if (r == 0)
            r = send_one(sb, f, named ? &to : NULL, buf, g->total, flags, &rights);
    }
    sock_rights_free(rights); /* what was not sent */
    free(buf);
    free(g);
    return r;
}

/* Installs received descriptors and writes the control data: what fits
 * (MSG_CTRUNC, and the rest closed, when the guest's buffer is short). */
static int64_t rights_to_control(struct sandbox *sb, struct msghdr *m, struct sock_rights *r,
                                 int flags) {
    uint64_t room = m->msg_controllen;
    m->msg_controllen = 0;
    if (!r)
        return 0;
    int fit = room < CMSG_LEN(sizeof(int))
                  ? 0
                  : (int)((FJ_MIN(room, CMSG_ROOM) - CMSG_LEN(0)) / sizeof(int));
    fit = FJ_MIN(fit, r->n);
    if (fit < r->n)
        m->msg_flags |= MSG_CTRUNC;
    uint8_t buf[CMSG_ROOM] = {0};
    struct cmsghdr *c = (struct cmsghdr *)buf;
    int *fds = (int *)CMSG_DATA(c);
    int n = 0;
    for (int i = 0; i < r->n; i++) {
        int fd = i < fit ? fdt_install(&sb->fdt, r->files[i], 0, flags & MSG_CMSG_CLOEXEC) : -1;
        if (fd < 0) {
            file_put(r->files[i]);
            if (i < fit)
                m->msg_flags |= MSG_CTRUNC;
            continue;
        }
        fds[n++] = fd;
    }
    r->n = 0;
    if (!n)
        return 0;
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN((size_t)n * sizeof(int));
    m->msg_controllen = FJ_MIN(CMSG_SPACE((size_t)n * sizeof(int)), room);
    return mm_copy_to(&sb->mm, (gva_t)(uintptr_t)m->msg_control, buf, m->msg_controllen) < 0
               ? -EFAULT
               : 0;
}

static int64_t recvmsg_one(struct sandbox *sb, struct file *f, gva_t at, int flags) {
    struct guest_msg *g = malloc(sizeof(*g));
    struct sock_rights *rights = NULL;
    struct sock_addr from = {0};
    uint8_t *buf = NULL;
    bool truncated = false;
    int64_t r = g ? read_msg(sb, at, g) : -ENOMEM;
    if (r == 0 && sock_of(f)->type == SOCK_STREAM) {
        r = stream_iov(sb, f, g, flags, false, &rights);
    } else if (r == 0) {
        buf = malloc(g->total ? g->total : 1);
        r = !buf ? -ENOMEM : recv_one(sb, f, buf, g->total, flags, &from, &rights, &truncated);
        if (r > 0 && scatter(sb, g, buf, FJ_MIN((uint64_t)r, g->total)) < 0)
            r = -EFAULT;
    }
    if (r >= 0) {
        g->m.msg_flags = truncated ? MSG_TRUNC : 0;
        int64_t w = rights_to_control(sb, &g->m, rights, flags);
        uint32_t room = g->m.msg_namelen;
        g->m.msg_namelen = from.len;
        if (w == 0 && g->m.msg_name && from.len &&
            mm_copy_to(&sb->mm, (gva_t)(uintptr_t)g->m.msg_name, &from.ss, FJ_MIN(room, from.len)) <
                0)
            w = -EFAULT;
        if (w == 0 && mm_copy_to(&sb->mm, at, &g->m, sizeof(g->m)) < 0)
            w = -EFAULT;
        if (w < 0)
            r = w;
    }
    sock_rights_free(rights);
    free(buf);
    free(g);
    return r;
}

static int64_t msg_call(struct sandbox *sb, const uint64_t a[6], bool send) {
    int64_t err;
    struct file *f = sys_sock_at(sb, a[0], &err);
    if (!f || (err = check_flags(a[2])) < 0)
        return err;
    return send ? sendmsg_one(sb, f, a[1], (int)a[2]) : recvmsg_one(sb, f, a[1], (int)a[2]);
}

static int64_t sys_sendmsg(struct sandbox *sb, const uint64_t a[6]) {
    return msg_call(sb, a, true);
}
static int64_t sys_recvmsg(struct sandbox *sb, const uint64_t a[6]) {
    return msg_call(sb, a, false);
}

const struct sys_entry sys_socket_msg_entries[] = {
    {44, "sendto", sys_sendto, SYS_FULL, "to the sandbox's own sockets"},
    {45, "recvfrom", sys_recvfrom, SYS_FULL, NULL},
    {46, "sendmsg", sys_sendmsg, SYS_PARTIAL,
     "SCM_RIGHTS carried; SCM_CREDENTIALS accepted, not delivered"},
    {47, "recvmsg", sys_recvmsg, SYS_PARTIAL, "SCM_RIGHTS delivered"},
};
const size_t sys_socket_msg_count = FJ_ARRAY_SIZE(sys_socket_msg_entries);
