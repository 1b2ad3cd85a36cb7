/* userfaultfd in write-protect mode (snap_uffd.h). */
#define _GNU_SOURCE
#include "snap/snap_uffd.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif

int snap_uffd_open(void) {
    int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
        if (dev < 0)
            return -errno;
        fd = ioctl(dev, _IO(0xAA, 0x00), O_CLOEXEC | O_NONBLOCK); /* USERFAULTFD_IOC_NEW */
        close(dev);
        if (fd < 0)
            return -errno;
    }
    struct uffdio_api api = {
        .api = UFFD_API, .features = UFFD_FEATURE_WP_HUGETLBFS_SHMEM | UFFD_FEATURE_WP_UNPOPULATED};
    if (ioctl(fd, UFFDIO_API, &api) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

int snap_uffd_register(int uffd, uint8_t *base, uint64_t start, uint64_t len) {
    struct uffdio_register r = {.range = {(uint64_t)(uintptr_t)(base + start), len},
                                .mode = UFFDIO_REGISTER_MODE_WP};
    return ioctl(uffd, UFFDIO_REGISTER, &r) < 0 ? -errno : 0;
}

int snap_uffd_protect(int uffd, uint8_t *base, uint64_t start, uint64_t len, bool on) {
    struct uffdio_writeprotect wp = {.range = {(uint64_t)(uintptr_t)(base + start), len},
                                     .mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0};
    while (ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) < 0) {
        if (errno != EAGAIN && errno != EINTR)
            return -errno;
    }
    return 0;
}

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

int snap_uffd_open_fill(void) {
    int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
    if (fd < 0)
        return snap_uffd_open(); /* a kernel without the flag (before 5.11) */
    struct uffdio_api api = {.api = UFFD_API};
    if (ioctl(fd, UFFDIO_API, &api) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

int snap_uffd_register_missing(int uffd, uint8_t *base, uint64_t len) {
    struct uffdio_register r = {.range = {(uint64_t)(uintptr_t)base, len},
                                .mode = UFFDIO_REGISTER_MODE_MISSING};
    return ioctl(uffd, UFFDIO_REGISTER, &r) < 0 ? -errno : 0;
}

int snap_uffd_unregister(int uffd, uint8_t *base, uint64_t len) {
    struct uffdio_range r = {(uint64_t)(uintptr_t)base, len};
    return ioctl(uffd, UFFDIO_UNREGISTER, &r) < 0 ? -errno : 0;
}

/* Zeros a fill copies from, a chunk at a time. */
static const uint8_t zeros[64 << 10];

int snap_uffd_fill(int uffd, uint8_t *dst, const uint8_t *src, uint64_t len) {
    /* One call fills pages of one mapping: a range over two (a hole of the
     * image made anonymous beside the image's pages, kvm_vm.c) is refused
     * whole (-ENOENT), and filled a page at a time. */
    uint64_t most = src ? len : sizeof(zeros);
    while (len) {
        uint64_t chunk = len < most ? len : most;
        struct uffdio_copy c = {.dst = (uint64_t)(uintptr_t)dst,
                                .src = (uint64_t)(uintptr_t)(src ? src : zeros),
                                .len = chunk};
        if (ioctl(uffd, UFFDIO_COPY, &c) < 0 && errno != EAGAIN && errno != EINTR) {
            if (errno != ENOENT || c.copy > 0 || most == 4096)
                return -errno;
            most = 4096;
            continue;
        }
        uint64_t done = c.copy > 0 ? (uint64_t)c.copy : 0; /* a partial copy goes on */
        dst += done;
        src = src ? src + done : NULL;
        len -= done;
    }
    return 0;
}
