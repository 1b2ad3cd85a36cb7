/* Connections (file/sock.h): listen, connect and accept for stream sockets,
 * and a datagram socket's default peer.
 *
 * A connect to a listener makes the connection at once: the connecting
 * socket holds end 0 of a new pair, and a new socket holding end 1 waits on
 * the listener's queue until accept takes it. Bytes sent before the accept
 * wait in the pair. A full queue makes a blocking connect wait (EAGAIN when
 * non-blocking). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "core/proc.h"
#include "file/file_kinds.h"
#include "file/sock.h"

int sock_listen(struct sandbox *sb, struct sock *s, int backlog) {
    if (s->type != SOCK_STREAM)
        return -EOPNOTSUPP;
    if (s->connected)
        return -EINVAL;
    if (!s->local.len) {
        if (s->domain == AF_UNIX)
            return -EINVAL;
        int err = sock_autobind(sb, s);
        if (err < 0)
            return err;
    }
    s->listening = true;
    s->backlog = backlog < 0 ? 0 : backlog > SOCK_MAX_PENDING ? SOCK_MAX_PENDING : backlog;
    return 0;
}

/* a as seen by a socket of domain: a v4 address becomes v4-mapped for v6. */
static struct sock_addr seen_by(int domain, const struct sock_addr *a) {
    if (domain != AF_INET6 || a->family != AF_INET)
        return *a;
    struct sock_addr m = {.len = sizeof(m.in6)};
    m.in6.sin6_family = AF_INET6;
    m.in6.sin6_port = a->in.sin_port;
    m.in6.sin6_addr.s6_addr[10] = m.in6.sin6_addr.s6_addr[11] = 0xff;
    memcpy(m.in6.sin6_addr.s6_addr + 12, &a->in.sin_addr, 4);
    return m;
}

/* The name an unbound AF_UNIX socket shows: the family alone. */
static struct sock_addr name_of(const struct sock *s) {
    if (s->local.len)
        return s->local;
    return (struct sock_addr){.len = sizeof(sa_family_t), .family = (sa_family_t)s->domain};
}

static int64_t connect_dgram(struct sandbox *sb, struct sock *s, struct sock *target,
                             const struct sock_addr *to) {
    sock_put(s->dpeer);
    s->dpeer = NULL;
    if (to->family == AF_UNSPEC) { /* dissolves the association */
        s->connected = false;
        s->peer.len = 0;
        return 0;
    }
    if (s->domain == AF_UNIX) {
        if (!target)
            return -ECONNREFUSED;
        s->dpeer = target;
        sock_get(target);
    } else {
        int err = sock_autobind(sb, s);
        if (err < 0)
            return err;
    }
    s->peer = s->domain == AF_UNIX ? target->local : *to;
    s->connected = true;
    return 0;
}

/* Waits while target's queue is full; holds a reference meanwhile. */
static int64_t wait_for_room(struct sandbox *sb, struct file *f, struct sock *target) {
    int64_t err = 0;
    sock_get(target);
    while (!err && !target->closed && target->listening && target->n_pending > target->backlog) {
        if (sock_nonblocking(f, 0))
            err = -EAGAIN;
        else
            err = sb_wait_fd(sb, -1, 0, -1);
    }
    if (!err && (target->closed || !target->listening))
        err = -ECONNREFUSED;
    sock_put(target);
    return err;
}

int64_t sock_connect(struct sandbox *sb, struct file *f, struct sock *target,
                     const struct sock_addr *to) {
    struct sock *s = sock_of(f);
    if (s->type != SOCK_STREAM)
        return connect_dgram(sb, s, target, to);
    if (s->listening)
        return -EINVAL;
    if (s->connected)
        return -EISCONN;
    s->so_error = 0; /* a new attempt forgets the last one's failure */
    /* A non-blocking TCP connect answers EINPROGRESS, as on Linux even on
     * loopback; here it is complete (or refused, in SO_ERROR) by then. */
    bool in_progress = s->domain != AF_UNIX && sock_nonblocking(f, 0);
    if (!target && in_progress)
        s->so_error = ECONNREFUSED;
    if (!target)
        return in_progress ? -EINPROGRESS : -ECONNREFUSED;
    int64_t err = wait_for_room(sb, f, target);
    if (err == 0 && s->domain != AF_UNIX)
        err = sock_autobind(sb, s);
    if (err < 0)
        return err;
    struct sock *acc = sock_new(target->domain, SOCK_STREAM, target->protocol);
    struct sock_pending *w = calloc(1, sizeof(*w));
    if (acc) { /* an accepted socket has its listener's options, as on Linux */
        acc->n_opts = target->n_opts;
        memcpy(acc->opts, target->opts, sizeof(acc->opts));
    }
    if (!acc || !w || sock_connect_pair(s, acc) < 0) {
        free(w);
        sock_put(acc);
        return -ENOMEM;
    }
    acc->local = s->domain == AF_UNIX ? target->local : seen_by(target->domain, to);
    acc->peer = s->domain == AF_UNIX ? name_of(s) : seen_by(target->domain, &s->local);
    s->peer = s->domain == AF_UNIX ? target->local : *to;
    if (!(w->conn = sock_file_new(acc, 0))) {
        free(w);
        return -ENOMEM; /* acc's end is gone: s sees the peer closed */
    }
    *target->pending_tail = w;
    target->pending_tail = &w->next;
    target->n_pending++;
    return in_progress ? -EINPROGRESS : 0;
}

int64_t sock_accept(struct sandbox *sb, struct file *f, struct file **out) {
    struct sock *s = sock_of(f);
    if (!s->listening)
        return -EINVAL;
    while (!s->pending) {
        if (sock_nonblocking(f, 0))
            return -EAGAIN;
        int err = sb_wait_fd(sb, -1, 0, -1);
        if (err < 0)
            return err;
    }
    struct sock_pending *w = s->pending;
    if (!(s->pending = w->next))
        s->pending_tail = &s->pending;
    s->n_pending--;
    *out = w->conn;
    free(w);
    return 0;
}
