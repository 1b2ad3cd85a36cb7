/* A byte ring: the buffer behind pipes, socket pairs and terminals. Its
 * buffer is allocated when its owner is made, at the owner's capacity
 * (a power of two: untouched pages of a large one cost the host nothing);
 * owned by its kind object; callers keep the locking rules of that kind.
 *
 * Invariants: len <= limit <= size; head < size (or both 0); a copy made by
 * copying the owner's struct shares the buffer until ring_own_copy. */
#ifndef RING_H
#define RING_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/fj.h"

#define RING_BYTES 65536       /* a pipe's and a terminal's, as Linux's pipe */
#define RING_UNIX_BYTES 262144 /* a stream socket pair's, each way (Linux: ~208 KiB) */
#define RING_TCP_BYTES 4194304 /* a loopback TCP connection's, each way (Linux: ~4 MiB) */
#define RING_ATOMIC 4096       /* PIPE_BUF: writes up to this size are never split */

struct ring {
    size_t head, len;
    size_t limit; /* the capacity in use (a pipe's F_SETPIPE_SZ) */
    size_t size;  /* bytes at data: a power of two, 0 when there is no buffer */
    uint8_t *data;
};

/* An empty ring of size bytes (a power of two), its capacity; -ENOMEM. */
static inline int ring_init(struct ring *r, size_t size) {
    memset(r, 0, sizeof(*r));
    if (!(r->data = malloc(size)))
        return -ENOMEM;
    r->size = r->limit = size;
    return 0;
}

static inline void ring_free(struct ring *r) {
    free(r->data);
    memset(r, 0, sizeof(*r));
}

static inline size_t ring_capacity(const struct ring *r) { return r->limit; }
static inline size_t ring_space(const struct ring *r) {
    return r->len < ring_capacity(r) ? ring_capacity(r) - r->len : 0;
}

/* Copies up to n bytes out (consuming them unless peek); returns the count. */
static inline size_t ring_get(struct ring *r, void *out, size_t n, bool peek) {
    n = FJ_MIN(n, r->len);
    if (n == 0)
        return 0;
    size_t first = FJ_MIN(n, r->size - r->head);
    memcpy(out, r->data + r->head, first);
    memcpy((uint8_t *)out + first, r->data, n - first);
    if (!peek) {
        r->head = (r->head + n) & (r->size - 1);
        r->len -= n;
    }
    return n;
}

/* Copies up to n bytes in, as many as fit; returns the count. */
static inline size_t ring_put(struct ring *r, const void *in, size_t n) {
    n = FJ_MIN(n, ring_space(r));
    if (n == 0)
        return 0;
    size_t tail = (r->head + r->len) & (r->size - 1);
    size_t first = FJ_MIN(n, r->size - tail);
    memcpy(r->data + tail, in, first);
    memcpy(r->data, (const uint8_t *)in + first, n - first);
    r->len += n;
    return n;
}

/* A buffer of size bytes (a power of two) holding what r holds, from its
 * start; -ENOMEM (r unchanged). */
static inline int ring_move_to(struct ring *r, size_t size) {
    uint8_t *data = malloc(size);
    if (!data)
        return -ENOMEM;
    struct ring old = *r;
    ring_get(&old, data, old.len, true);
    r->data = data;
    r->size = size;
    r->head = 0;
    return 0;
}

/* After the owner's struct was copied (a branch's copy): a buffer of the
 * copy's own with the same bytes; -ENOMEM, and then the copy holds no
 * buffer and no room (it never shares the original's). */
static inline int ring_own_copy(struct ring *r) {
    if (!r->size)
        return 0;
    if (ring_move_to(r, r->size) == 0)
        return 0;
    memset(r, 0, sizeof(*r));
    return -ENOMEM;
}

struct sandbox;
/* A write into r for a sandbox's descriptor (ring_write.c), under
 * big_lock: every byte unless nonblock (then what fits, or -EAGAIN), what
 * went in when the peer goes (peer_gone(peer)) or a signal or stop comes,
 * -EPIPE when the peer was gone before any byte went in. */
int64_t ring_write(struct sandbox *sb, struct ring *r, const void *buf, uint64_t len, bool nonblock,
                   bool (*peer_gone)(const void *), const void *peer);

#endif
