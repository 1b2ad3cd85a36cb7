/* Sockets inside the sandbox: AF_UNIX (path, abstract and unnamed), and
 * TCP and UDP on the loopback addresses (127.0.0.0/8, ::1). They live in the
 * VMM and reach only each other: no host socket is ever made, so no host
 * loopback, daemon socket, other sandbox or outside address is reachable.
 *
 * The parts, each calling only those listed before it: sock_core.c (making
 * a socket, references, a connection's pair, descriptors in flight,
 * options), sock_names.c (addresses and the sandbox's table of bound
 * sockets), sock_dgram.c (datagrams), sock_netlink.c (NETLINK_ROUTE's
 * answers about the loopback interface), sock_clone.c (a branch's copies),
 * file_socket.c (the file of a socket: its life, its ops, the stream data
 * path of a connection), sock_conn.c (listen, connect, accept).
 *
 * Invariants, all under the sandbox's big_lock (one per sandbox, shared by
 * its processes):
 * - One struct sock per open description (dup and fork share it); its
 *   file's release closes it (sock_close), and the struct itself is freed
 *   when refs (the file's, and those of datagram sockets connected to it)
 *   drop to zero.
 * - A bound socket is on its sandbox's list (procs->sockets) from bind until
 *   close; lookups by address walk that list.
 * - A stream connection is a sock_pair: two rings, one per direction; end i
 *   is held by one socket (ends[i] counts 0 or 1). Descriptors sent with
 *   SCM_RIGHTS wait on the direction's rights list, each at the byte
 *   position of the data they came with. */
#ifndef SOCK_H
#define SOCK_H

#include <linux/netlink.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "core/sandbox.h"
#include "file/ring.h"

#define SOCK_MAX_RIGHTS 253     /* SCM_MAX_FD */
#define SOCK_DGRAM_QUEUE 212992 /* bytes a datagram socket queues (Linux's default rmem) */
#define SOCK_MIN_SNDBUF 4608    /* the least SO_SNDBUF gives, as on Linux */
#define SOCK_MIN_RCVBUF 2304    /* the least SO_RCVBUF gives, as on Linux */
#define SOCK_MAX_PENDING 4096   /* SOMAXCONN */
#define SOCK_MAX_OPTS 24        /* options set with setsockopt that are kept */
#define SOCK_EPHEMERAL_LO 32768 /* ports given to bind(0) and autobind */
#define SOCK_EPHEMERAL_HI 60999

struct sock_addr {
    uint32_t len; /* 0: unnamed */
    union {
        sa_family_t family;
        struct sockaddr_un un;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
        struct sockaddr_nl nl;
        struct sockaddr_storage ss;
    };
};

/* Descriptors in flight (SCM_RIGHTS). */
struct sock_rights {
    struct sock_rights *next;
    uint64_t at; /* stream: position, in the direction's bytes, of the data they came with */
    int n;
    struct file *files[];
};

struct sock_pair {
    struct ring to[2];
    int ends[2];                   /* sockets holding each end (0 or 1) */
    bool shut_wr[2];               /* end i will send no more */
    bool shut_rd[2];               /* end i will receive no more */
    uint64_t put[2], got[2];       /* bytes ever put into and taken out of to[i] */
    struct sock_rights *rights[2]; /* in flight towards end i, in order of at */
    int sndbuf[2], rcvbuf[2];      /* end i's SO_SNDBUF, SO_RCVBUF; 0: not set */
    bool unix_domain;              /* AF_UNIX: only the sender's SO_SNDBUF counts */
};

struct sock_msg {
    struct sock_msg *next;
    struct sock_addr from;
    struct sock_rights *rights;
    uint32_t len;
    uint8_t data[];
};

struct sock_pending {
    struct sock_pending *next;
    struct file *conn; /* the accepted end, a socket file */
};

struct sock_opt {
    int level, name, value;
};

struct sock {
    int refs;
    int domain, type, protocol; /* type without SOCK_NONBLOCK/CLOEXEC */
    uint64_t ino;               /* a counter, never a host address */
    bool closed;                /* its description was released */

    /* The name: on procs->sockets while bound. */
    struct sb_procs *space; /* the sandbox whose list it is on, or NULL */
    struct sock *next_bound;
    bool registered; /* was given a name (kept by a snapshot's copy, whose space is NULL) */
    struct sock_addr local;
    uint64_t name_node; /* AF_UNIX path: the layer node naming it */

    /* Streams. */
    bool listening;
    int backlog, n_pending;
    struct sock_pending *pending, **pending_tail;
    struct sock_pair *pair; /* connected */
    int side;
    struct sock_addr peer; /* the connected peer's name (streams and datagrams) */
    bool connected;

    /* Datagrams. */
    struct sock *dpeer; /* the connected peer (a reference) */
    struct sock_msg *rx, **rx_tail;
    uint64_t rx_bytes;

    int so_error;
    int n_opts;
    struct sock_opt opts[SOCK_MAX_OPTS];
};

/* sock_core.c */
struct sock *sock_new(int domain, int type, int protocol);
void sock_get(struct sock *s);
void sock_put(struct sock *s);
/* A connection of a's end 0 and b's end 1; -ENOMEM. */
int sock_connect_pair(struct sock *a, struct sock *b);
/* The socket holding end side of p lets go of it; the last frees p. */
void sock_pair_release(struct sock_pair *p, int side);
void sock_rights_free(struct sock_rights *r);
int sock_opt_get(const struct sock *s, int level, int name, int fallback);
/* A stream connection's room each way follows its ends' buffer options,
 * as Linux's does: TCP's SO_SNDBUF of the sending end and SO_RCVBUF of the
 * receiving one (each counted twice, with Linux's minimum; one not set
 * counts half the ring), an AF_UNIX pair's SO_SNDBUF of the sender alone;
 * never more than the ring. Takes s's options into its pair (when the
 * pair is made, and when one of them changes). */
void sock_pair_take_options(struct sock *s);
int sock_opt_set(struct sock *s, int level, int name, int value);

/* sock_names.c: addresses and the table of bound sockets. */
/* Checks a guest address for s's family (EINVAL, EAFNOSUPPORT). */
int sock_addr_check(const struct sock *s, const struct sock_addr *a);
bool sock_addr_is_path(const struct sock_addr *a);
/* A loopback address of the sandbox (or a wildcard, which means it). */
bool sock_addr_local(const struct sock_addr *a);
/* Gives s the name a (ino: the layer node of a path); EADDRINUSE,
 * EADDRNOTAVAIL, EINVAL when already bound. A port 0 gets a free one. */
int sock_bind(struct sandbox *sb, struct sock *s, const struct sock_addr *a, uint64_t ino);
/* Binds s to an unused name if it has none (before connect or send). */
int sock_autobind(struct sandbox *sb, struct sock *s);
void sock_unbind(struct sock *s);
/* The live socket of type bound to a (listening, for streams), or NULL;
 * ino for paths. */
struct sock *sock_lookup(struct sb_procs *space, int type, const struct sock_addr *a, uint64_t ino);
/* Registers a branch's copy under its name in space (for sock_clone.c). */
void sock_register(struct sb_procs *space, struct sock *s);

/* sock_dgram.c */
int64_t sock_dgram_send(struct sandbox *sb, struct sock *s, bool nonblock, struct sock *to,
                        const struct sock_addr *addr, const void *buf, uint64_t len,
                        struct sock_rights **rights);
/* Returns the datagram's length (full length with MSG_TRUNC), *truncated. */
int64_t sock_dgram_recv(struct sandbox *sb, struct sock *s, bool nonblock, void *buf, uint64_t len,
                        int flags, struct sock_addr *from, struct sock_rights **rights,
                        bool *truncated);
void sock_dgram_drop_all(struct sock *s);
/* Queues a datagram from for s, whatever its queue holds: the message
 * (its rights NULL), or NULL when out of memory. */
struct sock_msg *sock_dgram_deliver(struct sock *s, const struct sock_addr *from, const void *buf,
                                    uint32_t len);

/* sock_netlink.c: NETLINK_ROUTE as a sandbox has it (its loopback
 * interface only): answers the requests in buf, queued for s to receive;
 * len, or -errno. */
int64_t sock_netlink_request(struct sandbox *sb, struct sock *s, const void *buf, uint64_t len);
/* ioctl's interface requests (SIOCGIFINDEX, SIOCGIFNAME, SIOCGIFFLAGS,
 * SIOCGIFMTU) about lo; ENODEV for another interface, EOPNOTSUPP for
 * SIOCETHTOOL (as lo's), ENOTTY for another request. */
int64_t sock_if_ioctl(struct sandbox *sb, uint64_t req, uint64_t arg);

/* sock_clone.c */
struct sock *sock_copy(struct fdt_clone_ctx *ctx, struct sock *s);

/* file_socket.c */
struct file *sock_file_new(struct sock *s, int flags); /* takes over a reference */
struct sock *sock_of(const struct file *f);            /* NULL unless a socket */
/* A stream connection's recv/send; rights: sent along (taken over) or
 * received (set when some came, the caller installs or frees them). */
int64_t sock_stream_recv(struct sandbox *sb, struct file *f, void *buf, uint64_t len, int flags,
                         struct sock_rights **rights);
int64_t sock_stream_send(struct sandbox *sb, struct file *f, const void *buf, uint64_t len,
                         int flags, struct sock_rights **rights);
bool sock_nonblocking(const struct file *f, int flags);

/* sock_conn.c */
int sock_listen(struct sandbox *sb, struct sock *s, int backlog);
/* Connects stream or datagram socket s to target (found by sock_lookup
 * by the caller, NULL: nothing there). */
int64_t sock_connect(struct sandbox *sb, struct file *f, struct sock *target,
                     const struct sock_addr *to);
/* The next connection of listener f, waiting unless non-blocking. */
int64_t sock_accept(struct sandbox *sb, struct file *f, struct file **out);

#endif
