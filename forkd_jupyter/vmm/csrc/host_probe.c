/* Doctor probes: userfaultfd features and memfd (host_probe_api.h). Each
 * probe really exercises the feature and releases everything it made. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "host_probe_api.h"

#define PROBE_BYTES (2UL << 20)

static int open_uffd(struct fj_uffd_probe *out)
{
    int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    out->syscall_errno = fd < 0 ? errno : 0;
    int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
    int devfd = dev < 0 ? -1 : ioctl(dev, _IO(0xAA, 0x00), O_CLOEXEC | O_NONBLOCK);
    out->devnode_errno = dev < 0 || devfd < 0 ? errno : 0;
    if (dev >= 0)
        close(dev);
    if (fd < 0)
        return devfd;
    if (devfd >= 0)
        close(devfd);
    return fd;
}

int fj_probe_uffd(struct fj_uffd_probe *out)
{
    memset(out, 0, sizeof(*out));
    out->api_errno = out->wp_register_errno = out->wp_protect_errno = -1;
    int fd = open_uffd(out);
    if (fd < 0)
        return -out->syscall_errno;
    struct uffdio_api api = {.api = UFFD_API, .features = 0};
    out->api_errno = ioctl(fd, UFFDIO_API, &api) < 0 ? errno : 0;
    out->features = api.features;
    close(fd);
    if (out->api_errno)
        return -out->api_errno;
    /* A second descriptor asks for what the VMM's live snapshots need. */
    if ((fd = open_uffd(out)) < 0)
        return -EIO;
    const uint64_t want = (1ULL << 12) | (1ULL << 13); /* WP_HUGETLBFS_SHMEM, WP_UNPOPULATED */
    struct uffdio_api api2 = {.api = UFFD_API, .features = out->features & want};
    int mem = memfd_create("forkd-probe", MFD_CLOEXEC);
    void *p = MAP_FAILED;
    if (ioctl(fd, UFFDIO_API, &api2) == 0 && mem >= 0 && ftruncate(mem, PROBE_BYTES) == 0)
        p = mmap(NULL, PROBE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, mem, 0);
    if (p != MAP_FAILED) {
        memset(p, 1, PROBE_BYTES);
        struct uffdio_register r = {.range = {(uint64_t)(uintptr_t)p, PROBE_BYTES}, .mode = UFFDIO_REGISTER_MODE_WP};
        out->wp_register_errno = ioctl(fd, UFFDIO_REGISTER, &r) < 0 ? errno : 0;
        if (!out->wp_register_errno) {
            struct uffdio_writeprotect wp = {.range = r.range, .mode = UFFDIO_WRITEPROTECT_MODE_WP};
            out->wp_protect_errno = ioctl(fd, UFFDIO_WRITEPROTECT, &wp) < 0 ? errno : 0;
            wp.mode = 0;
            ioctl(fd, UFFDIO_WRITEPROTECT, &wp);
        }
        munmap(p, PROBE_BYTES);
    } else {
        out->wp_register_errno = errno ? errno : EINVAL;
    }
    if (mem >= 0)
        close(mem);
    close(fd);
    return 0;
}

int fj_probe_memfd(int hugetlb)
{
    int fd = memfd_create("forkd-probe", MFD_CLOEXEC | (hugetlb ? MFD_HUGETLB : 0));
    if (fd < 0)
        return -errno;
    int err = 0;
    void *p = MAP_FAILED;
    if (ftruncate(fd, PROBE_BYTES) < 0 ||
        (p = mmap(NULL, PROBE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED)
        err = -errno;
    else if (hugetlb && madvise(p, PROBE_BYTES, MADV_POPULATE_WRITE) < 0)
        err = -errno; /* no free huge pages */
    else
        ((volatile char *)p)[0] = 1;
    if (p != MAP_FAILED)
        munmap(p, PROBE_BYTES);
    close(fd);
    return err;
}
