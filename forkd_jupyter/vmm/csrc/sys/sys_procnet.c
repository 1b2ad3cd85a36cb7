/* /proc/net as the sandbox has it (sys_procnet.h): its one interface, lo,
 * in dev, and its open sockets in tcp, tcp6, udp, udp6 and unix, in Linux's
 * formats (what psutil's net_connections, net_io_counters and
 * net_if_stats, netstat and ss read). A socket is listed once, found
 * through the descriptors of the sandbox's live processes (one in flight,
 * held by no descriptor, is not); its inode is the one fstat and
 * /proc/self/fd give. Under big_lock. */
#define _GNU_SOURCE
#include "sys/sys_procnet.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "core/proc.h"
#include "file/file_kinds.h"
#include "file/sock.h"

/* Linux's TCP states, as /proc/net/tcp numbers them. */
enum { TCP_ESTABLISHED_ = 1, TCP_CLOSE_ = 7, TCP_CLOSE_WAIT_ = 8, TCP_LISTEN_ = 10 };

/* Calls fn for each open socket of the sandbox, once. */
static void each_socket(struct sandbox *sb, void (*fn)(const struct sock *, void *), void *ctx) {
    size_t n = 0, cap = 0;
    uint64_t *seen = NULL;
    for (unsigned k = 0; k < SB_MAX_PROCS; k++) {
        struct sandbox *p = sb->procs->slot[k].sb;
        if (!p || !sb_proc_slot_live(&sb->procs->slot[k]))
            continue;
        for (int fd = 0; fd < p->fdt.cap; fd++) {
            const struct sock *s = p->fdt.slots[fd].f ? sock_of(p->fdt.slots[fd].f) : NULL;
            bool dup = false;
            for (size_t i = 0; s && i < n && !dup; i++)
                dup = seen[i] == s->ino;
            if (!s || dup)
                continue;
            if (n == cap) {
                uint64_t *g = realloc(seen, (cap = cap ? cap * 2 : 64) * sizeof(*g));
                if (!g)
                    break;
                seen = g;
            }
            seen[n++] = s->ino;
            fn(s, ctx);
        }
    }
    free(seen);
}

struct inet_ctx {
    struct text *t;
    int domain, type;
    unsigned row;
};

/* An address as /proc/net/tcp prints it: the 32-bit words of the address
 * as stored (network order) in the host's order, then the port. */
static void add_inet_addr(struct text *t, const struct sock_addr *a, int domain) {
    uint32_t words[4] = {0};
    uint16_t port = 0;
    if (a->len && a->family == AF_INET) {
        memcpy(words, &a->in.sin_addr, 4);
        port = ntohs(a->in.sin_port);
    } else if (a->len && a->family == AF_INET6) {
        memcpy(words, &a->in6.sin6_addr, 16);
        port = ntohs(a->in6.sin6_port);
    }
    for (int i = 0; i < (domain == AF_INET ? 1 : 4); i++)
        text_add(t, "%08X", words[i]);
    text_add(t, ":%04X ", port);
}

static void add_inet(const struct sock *s, void *p) {
    struct inet_ctx *c = p;
    if (s->domain != c->domain || s->type != c->type)
        return;
    int state = s->listening ? TCP_LISTEN_
                : s->connected || s->dpeer
                    ? (s->pair && s->pair->shut_wr[!s->side] ? TCP_CLOSE_WAIT_ : TCP_ESTABLISHED_)
                    : TCP_CLOSE_;
    text_add(c->t, "%4u: ", c->row++);
    add_inet_addr(c->t, &s->local, c->domain);
    add_inet_addr(c->t, &s->peer, c->domain);
    text_add(c->t, "%02X 00000000:00000000 00:00000000 00000000  1000        0 %llu 1 0 20 4 0\n",
             state, (unsigned long long)s->ino);
}

static void render_inet(struct sandbox *sb, int domain, int type, struct text *t) {
    if (domain == AF_INET)
        text_add(t, "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when "
                    "retrnsmt   uid  timeout inode\n");
    else
        text_add(t, "  sl  local_address                         remote_address                "
                    "        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n");
    struct inet_ctx c = {t, domain, type, 0};
    each_socket(sb, add_inet, &c);
}

void sysf_net_tcp(struct sandbox *sb, struct sb_thread *thread, struct text *t) {
    render_inet(sb, AF_INET, SOCK_STREAM, t);
}
void sysf_net_tcp6(struct sandbox *sb, struct sb_thread *thread, struct text *t) {
    render_inet(sb, AF_INET6, SOCK_STREAM, t);
}
void sysf_net_udp(struct sandbox *sb, struct sb_thread *thread, struct text *t) {
    render_inet(sb, AF_INET, SOCK_DGRAM, t);
}
void sysf_net_udp6(struct sandbox *sb, struct sb_thread *thread, struct text *t) {
    render_inet(sb, AF_INET6, SOCK_DGRAM, t);
}

static void add_unix(const struct sock *s, void *p) {
    struct text *t = p;
    if (s->domain != AF_UNIX)
        return;
    int state = s->listening               ? 1 /* SS_UNCONNECTED, listening */
                : s->connected || s->dpeer ? 3 /* SS_CONNECTED */
                                           : 1;
    text_add(t, "0000000000000000: 00000002 00000000 %08X %04X %02X %5llu",
             s->listening ? 0x10000U /* __SO_ACCEPTCON */ : 0U, (unsigned)s->type, state,
             (unsigned long long)s->ino);
    const struct sockaddr_un *un = &s->local.un;
    size_t len = s->local.len > offsetof(struct sockaddr_un, sun_path)
                     ? s->local.len - offsetof(struct sockaddr_un, sun_path)
                     : 0;
    if (len && un->sun_path[0])
        text_add(t, " %.*s", (int)strnlen(un->sun_path, len), un->sun_path);
    else if (len) /* abstract: '@' for the leading NUL, as Linux shows it */
        text_add(t, " @%.*s", (int)(len - 1), un->sun_path + 1);
    text_add(t, "\n");
}

void sysf_net_unix(struct sandbox *sb, struct sb_thread *thread, struct text *t) {
    text_add(t, "Num       RefCount Protocol Flags    Type St Inode Path\n");
    each_socket(sb, add_unix, t);
}

void sysf_net_dev(struct sandbox *sb, struct sb_thread *thread, struct text *t) {
    text_add(t, "Inter-|   Receive                                                |  Transmit\n"
                " face |bytes    packets errs drop fifo frame compressed multicast|bytes    "
                "packets errs drop fifo colls carrier compressed\n"
                "    lo:       0       0    0    0    0     0          0         0        0 "
                "      0    0    0    0     0       0          0\n");
}
