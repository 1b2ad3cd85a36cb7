/* Socket addresses and the sandbox's table of bound sockets (file/sock.h).
 *
 * The names a guest can give or reach: AF_UNIX paths (a socket node in the
 * writable layer, matched by its inode, so a renamed or removed name is
 * matched as Linux matches it), AF_UNIX abstract names, and ports on the
 * loopback addresses (127.0.0.0/8 and ::1; the wildcards stand for them).
 * Every other address is refused (EADDRNOTAVAIL to bind, ENETUNREACH to
 * reach: sock_addr_local). A v6 socket without IPV6_V6ONLY bound to :: also
 * takes v4 connections, as on Linux. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "core/proc.h"
#include "file/sock.h"

int sock_addr_check(const struct sock *s, const struct sock_addr *a) {
    if (a->len < sizeof(sa_family_t) || a->len > sizeof(a->ss))
        return -EINVAL;
    if (a->family != s->domain && !(s->domain == AF_INET6 && a->family == AF_INET))
        return -EAFNOSUPPORT;
    switch (a->family) {
    case AF_UNIX:
        return a->len <= sizeof(struct sockaddr_un) ? 0 : -EINVAL;
    case AF_INET:
        return s->domain == AF_INET6                  ? -EAFNOSUPPORT
               : a->len >= sizeof(struct sockaddr_in) ? 0
                                                      : -EINVAL;
    case AF_INET6:
        return a->len >= 24 ? 0 : -EINVAL; /* the RFC 2133 size, without scope id */
    case AF_NETLINK:
        return a->len >= sizeof(struct sockaddr_nl) ? 0 : -EINVAL;
    default:
        return -EAFNOSUPPORT;
    }
}

bool sock_addr_is_path(const struct sock_addr *a) {
    return a->family == AF_UNIX && a->len > sizeof(sa_family_t) && a->un.sun_path[0];
}

static bool is_abstract(const struct sock_addr *a) {
    return a->family == AF_UNIX && a->len > sizeof(sa_family_t) && !a->un.sun_path[0];
}

/* An inet address as v4 (mapped ones included) or v6: family, 16 bytes. */
struct ip {
    int v4;
    uint8_t b[16];
    uint16_t port;
};

static struct ip ip_of(const struct sock_addr *a) {
    struct ip ip = {0};
    if (a->family == AF_INET) {
        ip.v4 = 1;
        memcpy(ip.b, &a->in.sin_addr, 4);
        ip.port = ntohs(a->in.sin_port);
    } else {
        ip.port = ntohs(a->in6.sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&a->in6.sin6_addr)) {
            ip.v4 = 1;
            memcpy(ip.b, a->in6.sin6_addr.s6_addr + 12, 4);
        } else {
            memcpy(ip.b, &a->in6.sin6_addr, 16);
        }
    }
    return ip;
}

static bool ip_any(const struct ip *ip) {
    static const uint8_t zero[16];
    return !memcmp(ip->b, zero, ip->v4 ? 4 : 16);
}

static bool ip_loopback(const struct ip *ip) {
    static const uint8_t one[16] = {[15] = 1};
    return ip->v4 ? ip->b[0] == 127 : !memcmp(ip->b, one, 16);
}

bool sock_addr_local(const struct sock_addr *a) {
    if (a->family == AF_UNIX)
        return true;
    struct ip ip = ip_of(a);
    return ip_any(&ip) || ip_loopback(&ip);
}

static bool v6only(const struct sock *s) {
    return sock_opt_get(s, IPPROTO_IPV6, IPV6_V6ONLY, 0) != 0;
}

/* Does bound socket b's address take packets or connections for to? */
static bool ip_accepts(const struct sock *b, const struct ip *to) {
    struct ip mine = ip_of(&b->local);
    if (mine.port != to->port)
        return false;
    bool dual = b->domain == AF_INET6 && !v6only(b) && ip_any(&mine) && !mine.v4;
    if (mine.v4 != to->v4)
        return dual && to->v4;
    return ip_any(&mine) || ip_any(to) || !memcmp(mine.b, to->b, mine.v4 ? 4 : 16);
}

static bool names_equal(const struct sock *b, const struct sock_addr *a, uint64_t ino) {
    if (b->domain != AF_UNIX || b->local.family != AF_UNIX)
        return false;
    if (sock_addr_is_path(a))
        return ino && b->name_node == ino;
    return is_abstract(&b->local) && b->local.len == a->len &&
           !memcmp(b->local.un.sun_path, a->un.sun_path, a->len - sizeof(sa_family_t));
}

struct sock *sock_lookup(struct sb_procs *space, int type, const struct sock_addr *a,
                         uint64_t ino) {
    struct ip to = a->family == AF_UNIX ? (struct ip){0} : ip_of(a);
    for (struct sock *b = space->sockets; b; b = b->next_bound) {
        if (b->closed || b->type != type || (type == SOCK_STREAM && !b->listening))
            continue;
        if (a->family == AF_UNIX ? names_equal(b, a, ino)
                                 : b->domain != AF_UNIX && ip_accepts(b, &to))
            return b;
    }
    return NULL;
}

/* Could s, about to be bound to a, share it with bound socket b? */
static bool clashes(const struct sock *s, const struct sock_addr *a, const struct sock *b) {
    if (b->domain == AF_UNIX || b->type != s->type)
        return false;
    struct ip mine = ip_of(a), theirs = ip_of(&b->local);
    if (mine.port != theirs.port)
        return false;
    bool overlap = ip_accepts(b, &mine) ||
                   (s->domain == AF_INET6 && !v6only(s) && ip_any(&mine) && !mine.v4 && theirs.v4);
    if (!overlap)
        return false;
    if (sock_opt_get(s, SOL_SOCKET, SO_REUSEPORT, 0) &&
        sock_opt_get(b, SOL_SOCKET, SO_REUSEPORT, 0))
        return false;
    bool reuse = sock_opt_get(s, SOL_SOCKET, SO_REUSEADDR, 0) &&
                 sock_opt_get(b, SOL_SOCKET, SO_REUSEADDR, 0);
    return !(reuse && (s->type != SOCK_STREAM || !b->listening));
}

static bool port_free(struct sb_procs *space, int type, uint16_t port) {
    for (struct sock *b = space->sockets; b; b = b->next_bound)
        if (b->domain != AF_UNIX && b->type == type && ip_of(&b->local).port == port)
            return false;
    return true;
}

static void set_port(struct sock_addr *a, uint16_t port) {
    if (a->family == AF_INET)
        a->in.sin_port = htons(port);
    else
        a->in6.sin6_port = htons(port);
}

void sock_register(struct sb_procs *space, struct sock *s) {
    s->space = space;
    s->registered = true;
    s->next_bound = space->sockets;
    space->sockets = s;
}

int sock_bind(struct sandbox *sb, struct sock *s, const struct sock_addr *a, uint64_t ino) {
    struct sb_procs *space = sb->procs;
    if (s->local.len || s->connected)
        return -EINVAL;
    struct sock_addr name = *a;
    if (a->family == AF_UNIX) {
        if (is_abstract(a))
            for (struct sock *b = space->sockets; b; b = b->next_bound)
                if (!b->closed && names_equal(b, a, 0))
                    return -EADDRINUSE;
        s->name_node = ino;
    } else {
        struct ip ip = ip_of(a);
        if (!ip_any(&ip) && !ip_loopback(&ip))
            return -EADDRNOTAVAIL;
        name.len = a->family == AF_INET ? sizeof(name.in) : sizeof(name.in6);
        if (a->family == AF_INET)
            memset(name.in.sin_zero, 0, sizeof(name.in.sin_zero));
        if (ip.port == 0) {
            unsigned span = SOCK_EPHEMERAL_HI - SOCK_EPHEMERAL_LO + 1, i;
            for (i = 0; i < span; i++) {
                uint16_t port = (uint16_t)(SOCK_EPHEMERAL_LO + (space->next_port++ % span));
                if (port_free(space, s->type, port)) {
                    set_port(&name, port);
                    break;
                }
            }
            if (i == span)
                return -EADDRINUSE;
        }
        for (struct sock *b = space->sockets; b; b = b->next_bound)
            if (!b->closed && clashes(s, &name, b))
                return -EADDRINUSE;
    }
    s->local = name;
    sock_register(space, s);
    return 0;
}

int sock_autobind(struct sandbox *sb, struct sock *s) {
    if (s->local.len)
        return 0;
    struct sock_addr a = {.family = (sa_family_t)s->domain};
    if (s->domain == AF_UNIX) { /* an abstract name of five hex digits, as Linux gives */
        for (unsigned n = 0; n < 0x100000; n++) {
            char name[8];
            snprintf(name, sizeof(name), "%05x", (sb->procs->next_port++ + n * 7919u) & 0xfffff);
            memcpy(a.un.sun_path + 1, name, 5);
            a.len = sizeof(sa_family_t) + 6;
            if (sock_bind(sb, s, &a, 0) == 0)
                return 0;
        }
        return -EADDRINUSE;
    }
    if (s->domain == AF_INET) {
        a.len = sizeof(a.in);
        a.in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else {
        a.len = sizeof(a.in6);
        a.in6.sin6_addr = in6addr_loopback;
    }
    return sock_bind(sb, s, &a, 0);
}

void sock_unbind(struct sock *s) {
    if (!s->space)
        return;
    for (struct sock **at = &s->space->sockets; *at; at = &(*at)->next_bound)
        if (*at == s) {
            *at = s->next_bound;
            break;
        }
    s->space = NULL;
    s->registered = false;
    s->next_bound = NULL;
}
