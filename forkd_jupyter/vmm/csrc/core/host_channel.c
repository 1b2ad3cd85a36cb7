/* The sandbox's stream to the host: output, control and exit frames
 * (sandbox.h: sb_emit; sb_exit is core/proc.c). */
#define _GNU_SOURCE
#include <poll.h>
#include <stdio.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/sandbox.h"

int sb_emit(struct sandbox *sb, enum sb_channel ch, const void *buf, size_t len)
{
    uint8_t hdr[5] = {(uint8_t)ch, (uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16),
                      (uint8_t)(len >> 24)};
    struct iovec iov[2] = {{hdr, sizeof(hdr)}, {(void *)buf, len}};
    size_t total = sizeof(hdr) + len, done = 0;
    int iovcnt = 2;
    struct iovec *v = iov;
    /* Invariant: a frame is written whole or the stream is dead (-EPIPE). */
    while (done < total) {
        ssize_t w = writev(sb->ctl_host_fd, v, iovcnt);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                struct pollfd p = {.fd = sb->ctl_host_fd, .events = POLLOUT};
                poll(&p, 1, 1000);
                continue;
            }
            return -EPIPE;
        }
        done += (size_t)w;
        while (iovcnt && (size_t)w >= v->iov_len) {
            w -= (ssize_t)v->iov_len;
            v++;
            iovcnt--;
        }
        if (iovcnt) {
            v->iov_base = (char *)v->iov_base + w;
            v->iov_len -= (size_t)w;
        }
    }
    return 0;
}
