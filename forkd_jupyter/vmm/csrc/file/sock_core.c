/* The parts of a socket that know nothing of files (file/sock.h): making
 * one and counting its references, a connection's pair of rings, the
 * descriptors in flight, the kept options. Every other socket file calls
 * these; they call none of them. */
#define _GNU_SOURCE
#include <stdlib.h>

#include "file/file_kinds.h"
#include "file/sock.h"

struct sock *sock_new(int domain, int type, int protocol) {
    struct sock *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    static uint64_t next_ino; /* shared by every sandbox of the process */
    s->ino = __atomic_add_fetch(&next_ino, 1, __ATOMIC_RELAXED);
    s->refs = 1;
    s->domain = domain;
    s->type = type;
    s->protocol = protocol;
    s->pending_tail = &s->pending;
    s->rx_tail = &s->rx;
    return s;
}

void sock_get(struct sock *s) { s->refs++; }

void sock_put(struct sock *s) {
    if (s && --s->refs == 0)
        free(s);
}

void sock_rights_free(struct sock_rights *r) {
    while (r) {
        struct sock_rights *next = r->next;
        for (int i = 0; i < r->n; i++)
            file_put(r->files[i]);
        free(r);
        r = next;
    }
}

void sock_pair_release(struct sock_pair *p, int side) {
    if (--p->ends[side] > 0 || p->ends[!side] > 0)
        return;
    sock_rights_free(p->rights[0]);
    sock_rights_free(p->rights[1]);
    ring_free(&p->to[0]);
    ring_free(&p->to[1]);
    free(p);
}

static void set_room(struct sock_pair *p, int to) {
    size_t size = p->to[to].size;
    int snd = p->sndbuf[!to], rcv = p->rcvbuf[to];
    size_t sending = snd > 0 ? FJ_MAX(2 * (size_t)snd, (size_t)SOCK_MIN_SNDBUF) : size / 2;
    size_t receiving = rcv > 0 ? FJ_MAX(2 * (size_t)rcv, (size_t)SOCK_MIN_RCVBUF) : size / 2;
    if (p->unix_domain) { /* the sender's buffer alone */
        sending = snd > 0 ? sending : size;
        receiving = 0;
    }
    p->to[to].limit = FJ_MIN(sending + receiving, size);
}

void sock_pair_take_options(struct sock *s) {
    struct sock_pair *p = s->pair;
    if (!p)
        return;
    p->sndbuf[s->side] = sock_opt_get(s, SOL_SOCKET, SO_SNDBUF, 0);
    p->rcvbuf[s->side] = sock_opt_get(s, SOL_SOCKET, SO_RCVBUF, 0);
    set_room(p, 0);
    set_room(p, 1);
}

int sock_connect_pair(struct sock *a, struct sock *b) {
    size_t bytes = a->domain == AF_UNIX ? RING_UNIX_BYTES : RING_TCP_BYTES;
    struct sock_pair *p = calloc(1, sizeof(*p));
    if (p && (ring_init(&p->to[0], bytes) < 0 || ring_init(&p->to[1], bytes) < 0)) {
        ring_free(&p->to[0]);
        free(p);
        p = NULL;
    }
    if (!p)
        return -ENOMEM;
    a->pair = b->pair = p;
    a->side = 0;
    b->side = 1;
    p->unix_domain = a->domain == AF_UNIX;
    sock_pair_take_options(a);
    sock_pair_take_options(b);
    p->ends[0] = p->ends[1] = 1;
    a->connected = b->connected = true;
    return 0;
}

int sock_opt_get(const struct sock *s, int level, int name, int fallback) {
    for (int i = 0; i < s->n_opts; i++)
        if (s->opts[i].level == level && s->opts[i].name == name)
            return s->opts[i].value;
    return fallback;
}

int sock_opt_set(struct sock *s, int level, int name, int value) {
    for (int i = 0; i < s->n_opts; i++)
        if (s->opts[i].level == level && s->opts[i].name == name) {
            s->opts[i].value = value;
            return 0;
        }
    if (s->n_opts == SOCK_MAX_OPTS)
        return -ENOMEM;
    s->opts[s->n_opts++] = (struct sock_opt){level, name, value};
    return 0;
}
