/* NETLINK_ROUTE as a sandbox has it (file/sock.h): the one interface its
 * sockets reach, loopback ("lo", index 1, 127.0.0.1/8 and ::1/128), so
 * getifaddrs, if_nameindex and the tools on them (psutil's net_if_addrs,
 * hostname -I) see what the sandbox has; the interface ioctls of any
 * socket (SIOCGIFINDEX...) answer for lo the same. A dump of links or addresses is
 * answered in one datagram ending in NLMSG_DONE; a request for one link
 * by index or name gets it or ENODEV; anything else NLMSG_ERROR with
 * EOPNOTSUPP (a change to links, addresses or routes: the sandbox has no
 * host network to change). Replies come from port 0 (the kernel), to the
 * requester's port id. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <linux/if_arp.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "file/sock.h"

#define LO_INDEX 1
#define LO_MTU 65536
#define LO_FLAGS (IFF_UP | IFF_LOOPBACK | IFF_RUNNING) /* what SIOCGIFFLAGS's 16 bits hold */

struct reply {
    uint8_t *p;
    size_t len, cap;
    bool failed;
    uint32_t port; /* the requester's port id: every reply's nlmsg_pid */
};

/* Room for n more bytes, aligned to NLMSG_ALIGNTO; NULL when out of memory. */
static void *grow(struct reply *r, size_t n) {
    n = NLMSG_ALIGN(n);
    if (r->len + n > r->cap) {
        size_t cap = (r->cap ? r->cap * 2 : 1024) + n;
        uint8_t *p = realloc(r->p, cap);
        if (!p) {
            r->failed = true;
            return NULL;
        }
        r->p = p;
        r->cap = cap;
    }
    void *at = r->p + r->len;
    memset(at, 0, n);
    r->len += n;
    return at;
}

/* Starts a message of type; its header's offset (its length is set by end). */
static size_t begin(struct reply *r, const struct nlmsghdr *req, uint16_t type, uint16_t flags) {
    size_t at = r->len;
    struct nlmsghdr *h = grow(r, NLMSG_HDRLEN);
    if (h)
        *h = (struct nlmsghdr){.nlmsg_type = type, .nlmsg_flags = flags,
                               .nlmsg_seq = req->nlmsg_seq, .nlmsg_pid = r->port};
    return at;
}

static void end(struct reply *r, size_t at) {
    if (!r->failed)
        ((struct nlmsghdr *)(r->p + at))->nlmsg_len = (uint32_t)(r->len - at);
}

static void put(struct reply *r, const void *data, size_t n) {
    void *at = grow(r, n);
    if (at)
        memcpy(at, data, n);
}

static void attr(struct reply *r, uint16_t type, const void *data, size_t n) {
    struct rtattr a = {.rta_len = (unsigned short)RTA_LENGTH(n), .rta_type = type};
    size_t at = r->len;
    put(r, &a, sizeof(a));
    if (!r->failed) {
        r->len = at + RTA_LENGTH(0);
        put(r, data, n);
    }
}

static void link_lo(struct reply *r, const struct nlmsghdr *req, uint16_t flags) {
    size_t at = begin(r, req, RTM_NEWLINK, flags);
    struct ifinfomsg info = {.ifi_family = AF_UNSPEC, .ifi_type = ARPHRD_LOOPBACK,
                             .ifi_index = LO_INDEX,
                             .ifi_flags = LO_FLAGS | IFF_LOWER_UP};
    put(r, &info, sizeof(info));
    uint32_t mtu = LO_MTU, txq = 1000;
    uint8_t hw[6] = {0};
    attr(r, IFLA_IFNAME, "lo", 3);
    attr(r, IFLA_MTU, &mtu, sizeof(mtu));
    attr(r, IFLA_TXQLEN, &txq, sizeof(txq));
    attr(r, IFLA_ADDRESS, hw, sizeof(hw));
    attr(r, IFLA_BROADCAST, hw, sizeof(hw));
    end(r, at);
}

/* Starts lo's address message of family; its offset, for end. */
static size_t begin_addr(struct reply *r, const struct nlmsghdr *req, uint8_t family,
                         uint8_t prefixlen) {
    size_t at = begin(r, req, RTM_NEWADDR, NLM_F_MULTI);
    struct ifaddrmsg a = {.ifa_family = family, .ifa_prefixlen = prefixlen,
                          .ifa_flags = IFA_F_PERMANENT, .ifa_scope = RT_SCOPE_HOST,
                          .ifa_index = LO_INDEX};
    put(r, &a, sizeof(a));
    return at;
}

static void addrs_lo(struct reply *r, const struct nlmsghdr *req, uint8_t family) {
    if (family == AF_UNSPEC || family == AF_INET) {
        size_t at = begin_addr(r, req, AF_INET, 8);
        struct in_addr lo = {htonl(INADDR_LOOPBACK)};
        attr(r, IFA_ADDRESS, &lo, sizeof(lo));
        attr(r, IFA_LOCAL, &lo, sizeof(lo));
        attr(r, IFA_LABEL, "lo", 3);
        end(r, at);
    }
    if (family == AF_UNSPEC || family == AF_INET6) {
        size_t at = begin_addr(r, req, AF_INET6, 128);
        attr(r, IFA_ADDRESS, &in6addr_loopback, sizeof(in6addr_loopback));
        end(r, at);
    }
}

/* NLMSG_ERROR carrying err (0: an acknowledgement) and the request's header. */
static void error(struct reply *r, const struct nlmsghdr *req, int err) {
    size_t at = begin(r, req, NLMSG_ERROR, 0);
    struct nlmsgerr e = {.error = err, .msg = *req};
    put(r, &e, sizeof(e));
    end(r, at);
}

/* Whether a RTM_GETLINK for one link names lo (by index or IFLA_IFNAME). */
static bool asks_for_lo(const struct nlmsghdr *req) {
    if (req->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifinfomsg)))
        return false;
    const struct ifinfomsg *info = NLMSG_DATA(req);
    if (info->ifi_index)
        return info->ifi_index == LO_INDEX;
    int left = (int)(req->nlmsg_len - NLMSG_LENGTH(sizeof(*info)));
    for (const struct rtattr *a = IFLA_RTA(info); RTA_OK(a, left); a = RTA_NEXT(a, left))
        if (a->rta_type == IFLA_IFNAME)
            return !strncmp(RTA_DATA(a), "lo", RTA_PAYLOAD(a)) && RTA_PAYLOAD(a) >= 2;
    return false;
}

static void answer(struct reply *r, const struct nlmsghdr *req) {
    bool dump = (req->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;
    const uint8_t *body = NLMSG_DATA(req);
    uint8_t family = req->nlmsg_len > NLMSG_HDRLEN ? body[0] : AF_UNSPEC;
    if (req->nlmsg_type == RTM_GETLINK && dump) {
        link_lo(r, req, NLM_F_MULTI);
    } else if (req->nlmsg_type == RTM_GETLINK) {
        if (!asks_for_lo(req))
            error(r, req, -ENODEV); /* an error is also the acknowledgement */
        else if (link_lo(r, req, 0), req->nlmsg_flags & NLM_F_ACK)
            error(r, req, 0);
        return;
    } else if (req->nlmsg_type == RTM_GETADDR && dump) {
        addrs_lo(r, req, family);
    } else if ((req->nlmsg_type == RTM_GETROUTE || req->nlmsg_type == RTM_GETNEIGH ||
                req->nlmsg_type == RTM_GETRULE) &&
               dump) {
        /* nothing of the host's: an empty table */
    } else {
        error(r, req, -EOPNOTSUPP);
        return;
    }
    size_t at = begin(r, req, NLMSG_DONE, NLM_F_MULTI);
    int zero = 0;
    put(r, &zero, sizeof(zero));
    end(r, at);
}

/* The netlink address of port id port. */
static struct sock_addr netlink_port(uint32_t port) {
    struct sock_addr a = {.len = sizeof(struct sockaddr_nl)};
    a.nl.nl_family = AF_NETLINK;
    a.nl.nl_pid = port;
    return a;
}

int64_t sock_netlink_request(struct sandbox *sb, struct sock *s, const void *buf, uint64_t len) {
    if (!s->local.len) /* autobind: the port id is the process's id, as for a first socket */
        s->local = netlink_port(sb->pid);
    struct reply r = {.port = s->local.nl.nl_pid};
    int left = (int)FJ_MIN(len, (uint64_t)INT32_MAX);
    for (const struct nlmsghdr *h = buf; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
        if (h->nlmsg_type < NLMSG_MIN_TYPE)
            continue; /* NOOP, DONE, ERROR from user space: nothing to answer */
        answer(&r, h);
    }
    struct sock_addr kernel = netlink_port(0);
    int64_t out = (int64_t)len;
    if (r.failed || (r.len && !sock_dgram_deliver(s, &kernel, r.p, (uint32_t)r.len)))
        out = -ENOBUFS;
    free(r.p);
    return out;
}

/* The interface requests of ioctl on a socket (struct ifreq), for lo:
 * index, name, flags, MTU (if_nametoindex, psutil's net_if_stats). */
int64_t sock_if_ioctl(struct sandbox *sb, uint64_t req, uint64_t arg) {
    if (req == SIOCETHTOOL)
        return -EOPNOTSUPP; /* as for Linux's lo: no link settings (duplex, speed) */
    if (req != SIOCGIFINDEX && req != SIOCGIFNAME && req != SIOCGIFFLAGS && req != SIOCGIFMTU)
        return -ENOTTY;
    struct ifreq r;
    if (mm_copy_from(&sb->mm, &r, arg, sizeof(r)) < 0)
        return -EFAULT;
    bool lo = req == SIOCGIFNAME ? r.ifr_ifindex == LO_INDEX
                                 : !strncmp(r.ifr_name, "lo", sizeof(r.ifr_name));
    if (!lo)
        return -ENODEV;
    if (req == SIOCGIFINDEX)
        r.ifr_ifindex = LO_INDEX;
    else if (req == SIOCGIFNAME)
        snprintf(r.ifr_name, sizeof(r.ifr_name), "lo");
    else if (req == SIOCGIFFLAGS)
        r.ifr_flags = LO_FLAGS;
    else
        r.ifr_mtu = LO_MTU;
    return mm_copy_to(&sb->mm, arg, &r, sizeof(r)) < 0 ? -EFAULT : 0;
}
