/* Writing into the ring of a pipe or socket pair (ring.h: ring_write), as
 * Linux writes to a pipe: a blocking write returns once every byte is in
 * (waiting for the reader as often as needed), a write of at most
 * RING_ATOMIC bytes goes in whole or not at all, and a write the peer's
 * end leaves (or a signal or a stop interrupts) returns what went in. */
#define _GNU_SOURCE
#include "file/ring.h"

#include "core/sandbox.h"

int64_t ring_write(struct sandbox *sb, struct ring *r, const void *buf, uint64_t len, bool nonblock,
                   bool (*peer_gone)(const void *), const void *peer) {
    const uint8_t *src = buf;
    uint64_t done = 0;
    for (;;) {
        if (peer_gone(peer))
            return done ? (int64_t)done : -EPIPE;
        uint64_t need = len <= RING_ATOMIC ? len - done : 1; /* small writes are atomic */
        if (ring_space(r) >= need) {
            done += ring_put(r, src + done, len - done);
            if (done == len || nonblock)
                return (int64_t)done;
        } else if (nonblock) {
            return done ? (int64_t)done : -EAGAIN;
        }
        sb_notify(sb); /* the reader takes what went in, making room */
        int err = sb_wait_fd(sb, -1, 0, -1);
        if (err < 0)
            return done ? (int64_t)done : err; /* never restarted once bytes went in */
    }
}
