/* Datagrams (file/sock.h): AF_UNIX datagram sockets and UDP on loopback.
 * Each socket queues what it received, whole messages with their sender's
 * name, up to SOCK_DGRAM_QUEUE bytes: past that an AF_UNIX sender waits (or
 * gets EAGAIN) and a UDP datagram is dropped, as on Linux. A UDP datagram to
 * a port nobody has bound is dropped too; a connected UDP socket then gets
 * ECONNREFUSED from its next call, as the ICMP error gives on Linux. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "core/proc.h"
#include "file/file_kinds.h"
#include "file/sock.h"

#define UDP_MAX 65507 /* the largest UDP payload over IPv4 */

void sock_dgram_drop_all(struct sock *s) {
    while (s->rx) {
        struct sock_msg *m = s->rx;
        s->rx = m->next;
        sock_rights_free(m->rights);
        free(m);
    }
    s->rx_tail = &s->rx;
    s->rx_bytes = 0;
}

/* Where a datagram from s goes: *dst (NULL: dropped), or -errno. */
static int64_t destination(struct sandbox *sb, struct sock *s, struct sock *to,
                           const struct sock_addr *addr, struct sock **dst) {
    *dst = NULL;
    if (s->domain == AF_UNIX) {
        if (!addr && !s->connected)
            return -ENOTCONN;
        *dst = addr ? to : s->dpeer;
        return *dst && !(*dst)->closed ? 0 : -ECONNREFUSED;
    }
    if (!addr && !s->connected)
        return -EDESTADDRREQ;
    const struct sock_addr *where = addr ? addr : &s->peer;
    if (!sock_addr_local(where))
        return -ENETUNREACH;
    int err = sock_autobind(sb, s);
    if (err < 0)
        return err;
    *dst = sock_lookup(sb->procs, SOCK_DGRAM, where, 0);
    if (!*dst && !addr)
        s->so_error = ECONNREFUSED; /* nobody there: the next call learns it */
    return 0;
}

/* Waits until dst has room for len more bytes (AF_UNIX); holds a reference. */
static int64_t wait_for_room(struct sandbox *sb, bool nonblock, struct sock *dst, uint64_t len) {
    int64_t err = 0;
    sock_get(dst);
    while (!err && !dst->closed && dst->rx && dst->rx_bytes + len > SOCK_DGRAM_QUEUE)
        err = nonblock ? -EAGAIN : sb_wait_fd(sb, -1, 0, -1);
    if (!err && dst->closed)
        err = -ECONNREFUSED;
    sock_put(dst);
    return err;
}

static struct sock_addr sender_name(const struct sock *s, const struct sock *dst) {
    struct sock_addr a = s->local;
    if (!a.len)
        a = (struct sock_addr){.len = sizeof(sa_family_t), .family = (sa_family_t)s->domain};
    if (dst->domain == AF_INET6 &&
        a.family == AF_INET) { /* v4-mapped, as a dual-stack socket sees it */
        struct sock_addr m = {.len = sizeof(m.in6)};
        m.in6.sin6_family = AF_INET6;
        m.in6.sin6_port = a.in.sin_port;
        m.in6.sin6_addr.s6_addr[10] = m.in6.sin6_addr.s6_addr[11] = 0xff;
        memcpy(m.in6.sin6_addr.s6_addr + 12, &a.in.sin_addr, 4);
        a = m;
    }
    return a;
}

int64_t sock_dgram_send(struct sandbox *sb, struct sock *s, bool nonblock, struct sock *to,
                        const struct sock_addr *addr, const void *buf, uint64_t len,
                        struct sock_rights **rights) {
    if (len > (s->domain == AF_UNIX ? SOCK_DGRAM_QUEUE : UDP_MAX))
        return -EMSGSIZE;
    struct sock *dst;
    int64_t err = destination(sb, s, to, addr, &dst);
    if (err < 0 || !dst)
        return err < 0 ? err : (int64_t)len;
    if (dst->rx && dst->rx_bytes + len > SOCK_DGRAM_QUEUE) {
        if (s->domain != AF_UNIX)
            return (int64_t)len; /* a full UDP queue drops */
        if ((err = wait_for_room(sb, nonblock, dst, len)) < 0)
            return err;
    }
    struct sock_addr from = sender_name(s, dst);
    struct sock_msg *m = sock_dgram_deliver(dst, &from, buf, (uint32_t)len);
    if (!m)
        return -ENOMEM;
    m->rights = rights ? *rights : NULL; /* they travel with the datagram */
    if (rights)
        *rights = NULL;
    return (int64_t)len;
}

struct sock_msg *sock_dgram_deliver(struct sock *s, const struct sock_addr *from, const void *buf,
                                    uint32_t len) {
    struct sock_msg *m = malloc(sizeof(*m) + len);
    if (!m)
        return NULL;
    m->next = NULL;
    m->from = *from;
    m->len = len;
    m->rights = NULL;
    memcpy(m->data, buf, len);
    *s->rx_tail = m;
    s->rx_tail = &m->next;
    s->rx_bytes += len;
    return m;
}

int64_t sock_dgram_recv(struct sandbox *sb, struct sock *s, bool nonblock, void *buf, uint64_t len,
                        int flags, struct sock_addr *from, struct sock_rights **rights,
                        bool *truncated) {
    while (!s->rx) {
        if (s->so_error) {
            int e = s->so_error;
            s->so_error = 0;
            return -e;
        }
        if (nonblock)
            return -EAGAIN;
        int err = sb_wait_fd(sb, -1, 0, -1);
        if (err < 0)
            return err;
    }
    struct sock_msg *m = s->rx;
    uint64_t n = FJ_MIN(len, (uint64_t)m->len);
    memcpy(buf, m->data, n);
    *truncated = m->len > len;
    if (from)
        *from = m->from;
    int64_t full = m->len;
    if (flags & MSG_PEEK)
        return (flags & MSG_TRUNC) ? full : (int64_t)n;
    if (!(s->rx = m->next))
        s->rx_tail = &s->rx;
    s->rx_bytes -= m->len;
    if (rights)
        *rights = m->rights;
    else
        sock_rights_free(m->rights);
    free(m);
    return (flags & MSG_TRUNC) ? full : (int64_t)n;
}
