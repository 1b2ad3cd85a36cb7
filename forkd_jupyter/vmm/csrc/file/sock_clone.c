/* A branch's copies of sockets (file/sock.h): a copy keeps its name (and
 * takes it in the branch's table), its options, what waits in its queues
 * and connections (a pair is copied once, shared by the copies of its two
 * ends) and the descriptors in flight (each a clone of its own). A copy made
 * for a snapshot is registered when a sandbox is spawned from it. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "file/file_kinds.h"
#include "file/sock.h"

/* Copies of the descriptors in flight; those that cannot be carried into a
 * branch (no clone op) are left out. */
static struct sock_rights *rights_copy(struct fdt_clone_ctx *ctx, const struct sock_rights *r) {
    struct sock_rights *head = NULL, **tail = &head;
    for (; r; r = r->next) {
        struct sock_rights *c = malloc(sizeof(*c) + (size_t)r->n * sizeof(c->files[0]));
        if (!c)
            break;
        c->next = NULL;
        c->at = r->at;
        c->n = 0;
        for (int i = 0; i < r->n; i++) {
            struct file *f = r->files[i];
            struct file *fc = f->ops->clone ? f->ops->clone(f, ctx) : NULL;
            if (fc)
                c->files[c->n++] = fc;
        }
        *tail = c;
        tail = &c->next;
    }
    return head;
}

static struct sock_pair *pair_copy(struct fdt_clone_ctx *ctx, struct sock_pair *p) {
    bool fresh;
    struct sock_pair *c = fdt_clone_shared_copy(ctx, p, sizeof(*c), &fresh);
    if (c && fresh) {
        (void)ring_own_copy(&c->to[0]); /* on ENOMEM the branch's pair holds nothing */
        (void)ring_own_copy(&c->to[1]);
        c->ends[0] = c->ends[1] = 0; /* counted as the ends are copied */
        c->rights[0] = rights_copy(ctx, p->rights[0]);
        c->rights[1] = rights_copy(ctx, p->rights[1]);
    }
    return c;
}

static void copy_queues(struct fdt_clone_ctx *ctx, const struct sock *s, struct sock *c) {
    for (const struct sock_pending *w = s->pending; w; w = w->next) {
        struct sock_pending *cw = calloc(1, sizeof(*cw));
        if (!cw || !(cw->conn = w->conn->ops->clone(w->conn, ctx))) {
            free(cw);
            continue;
        }
        *c->pending_tail = cw;
        c->pending_tail = &cw->next;
        c->n_pending++;
    }
    for (const struct sock_msg *m = s->rx; m; m = m->next) {
        struct sock_msg *cm = malloc(sizeof(*cm) + m->len);
        if (!cm)
            continue;
        memcpy(cm, m, sizeof(*cm) + m->len);
        cm->next = NULL;
        cm->rights = rights_copy(ctx, m->rights);
        *c->rx_tail = cm;
        c->rx_tail = &cm->next;
        c->rx_bytes += m->len;
    }
}

struct sock *sock_copy(struct fdt_clone_ctx *ctx, struct sock *s) {
    bool fresh;
    struct sock *c = fdt_clone_shared_copy(ctx, s, sizeof(*s), &fresh);
    if (!c)
        return NULL;
    if (!fresh) {
        sock_get(c);
        return c;
    }
    c->refs = 1;
    c->space = NULL;
    c->next_bound = NULL;
    c->pending = NULL;
    c->pending_tail = &c->pending;
    c->n_pending = 0;
    c->rx = NULL;
    c->rx_tail = &c->rx;
    c->rx_bytes = 0;
    c->pair = NULL;
    c->dpeer = NULL;
    if (s->closed)
        return c;
    if (s->pair && (c->pair = pair_copy(ctx, s->pair)))
        c->pair->ends[c->side]++;
    copy_queues(ctx, s, c);
    if (s->dpeer)
        c->dpeer = sock_copy(ctx, s->dpeer);
    if (c->registered && ctx->procs)
        sock_register(ctx->procs, c);
    return c;
}
