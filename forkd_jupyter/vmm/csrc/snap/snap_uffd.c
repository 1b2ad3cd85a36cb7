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
