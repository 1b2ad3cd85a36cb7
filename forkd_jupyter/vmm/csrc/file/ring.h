/* A byte ring of RING_BYTES: the buffer behind pipes and socket pairs.
 * Owned by its kind object; callers keep the locking rules of that kind. */
#ifndef RING_H
#define RING_H

#include <stdint.h>
#include <string.h>

#include "lib/fj.h"

#define RING_BYTES 65536
#define RING_ATOMIC 4096 /* PIPE_BUF: writes up to this size are never split */

struct ring {
    size_t head, len;
    size_t limit; /* the capacity in use (a pipe's F_SETPIPE_SZ); 0: RING_BYTES */
    uint8_t data[RING_BYTES];
};

static inline size_t ring_capacity(const struct ring *r) {
    return r->limit ? r->limit : RING_BYTES;
}
static inline size_t ring_space(const struct ring *r) {
    return r->len < ring_capacity(r) ? ring_capacity(r) - r->len : 0;
}

/* Copies up to n bytes out (consuming them unless peek); returns the count. */
static inline size_t ring_get(struct ring *r, void *out, size_t n, bool peek) {
    n = FJ_MIN(n, r->len);
    size_t first = FJ_MIN(n, RING_BYTES - r->head);
    memcpy(out, r->data + r->head, first);
    memcpy((uint8_t *)out + first, r->data, n - first);
    if (!peek) {
        r->head = (r->head + n) % RING_BYTES;
        r->len -= n;
    }
    return n;
}

/* Copies up to n bytes in, as many as fit; returns the count. */
static inline size_t ring_put(struct ring *r, const void *in, size_t n) {
    n = FJ_MIN(n, ring_space(r));
    size_t tail = (r->head + r->len) % RING_BYTES;
    size_t first = FJ_MIN(n, RING_BYTES - tail);
    memcpy(r->data + tail, in, first);
    memcpy(r->data, (const uint8_t *)in + first, n - first);
    r->len += n;
    return n;
}

struct sandbox;
/* A write into r for a sandbox's descriptor (ring_write.c), under
 * big_lock: every byte unless nonblock (then what fits, or -EAGAIN), what
 * went in when the peer goes (peer_gone(peer)) or a signal or stop comes,
 * -EPIPE when the peer was gone before any byte went in. */
int64_t ring_write(struct sandbox *sb, struct ring *r, const void *buf, uint64_t len, bool nonblock,
                   bool (*peer_gone)(const void *), const void *peer);

#endif
