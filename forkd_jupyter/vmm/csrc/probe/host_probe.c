/* Host probes (host_probe_api.h). Each probe really exercises the feature
 * the way the VMM uses it and releases everything it made before returning. */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "api/host_probe_api.h"

#define PROBE_BYTES (2UL << 20)
#define PROBE_USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#define PROBE_UFFD_USER_MODE_ONLY 1                     /* UFFD_USER_MODE_ONLY, Linux >= 5.11 */
#define PROBE_WP_FEATURES ((1ULL << 12) | (1ULL << 13)) /* WP_HUGETLBFS_SHMEM, WP_UNPOPULATED */

/* Tries both ways of getting a userfaultfd and records each; returns an
 * open one (the system call's first) or -1. */
static int probe_open_uffd(struct fj_uffd_probe *out)
{
    int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    out->syscall_errno = fd < 0 ? errno : 0;
    int devfd = -1;
    int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
    if (dev < 0) {
        out->devnode_errno = errno;
    } else {
        devfd = ioctl(dev, PROBE_USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
        out->devnode_errno = devfd < 0 ? errno : 0;
        close(dev);
    }
    if (fd < 0)
        return devfd;
    if (devfd >= 0)
        close(devfd);
    return fd;
}

/* A shared memfd mapping, as guest RAM is; *err gets the failing step's errno. */
static void *probe_map_memfd(int *memfd, int *err)
{
    *memfd = memfd_create("forkd-probe", MFD_CLOEXEC);
    if (*memfd < 0 || ftruncate(*memfd, PROBE_BYTES) < 0) {
        *err = errno;
        return MAP_FAILED;
    }
    void *p = mmap(NULL, PROBE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, *memfd, 0);
    *err = p == MAP_FAILED ? errno : 0;
    return p;
}

/* Negotiates the write-protect features on fd, then registers and arms a
 * populated shared memfd mapping as a live snapshot does. */
static void probe_wp(int fd, struct fj_uffd_probe *out)
{
    struct uffdio_api api = {.api = UFFD_API, .features = out->features & PROBE_WP_FEATURES};
    out->wp_api_errno = ioctl(fd, UFFDIO_API, &api) < 0 ? errno : 0;
    if (out->wp_api_errno)
        return;
    out->wp_features = api.features;
    int memfd = -1;
    void *p = probe_map_memfd(&memfd, &out->wp_memfd_errno);
    if (p != MAP_FAILED) {
        memset(p, 1, PROBE_BYTES);
        struct uffdio_register reg = {
            .range = {.start = (uint64_t)(uintptr_t)p, .len = PROBE_BYTES},
            .mode = UFFDIO_REGISTER_MODE_WP,
        };
        out->wp_register_errno = ioctl(fd, UFFDIO_REGISTER, &reg) < 0 ? errno : 0;
        if (!out->wp_register_errno) {
            struct uffdio_writeprotect wp = {.range = reg.range,
                                             .mode = UFFDIO_WRITEPROTECT_MODE_WP};
            out->wp_protect_errno = ioctl(fd, UFFDIO_WRITEPROTECT, &wp) < 0 ? errno : 0;
            /* Disarm before unmapping: nothing may block on this range. */
            wp.mode = 0;
            ioctl(fd, UFFDIO_WRITEPROTECT, &wp);
            ioctl(fd, UFFDIO_UNREGISTER, &reg.range);
        }
        munmap(p, PROBE_BYTES);
    }
    if (memfd >= 0)
        close(memfd);
}

/* Fills a missing page of a private memfd mapping as a child's placement
 * does: a userfaultfd of user-mode faults only, the range registered for
 * missing pages, UFFDIO_COPY, the page read back; 0 or the failing step's
 * errno. */
static int probe_fill(void)
{
    int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | PROBE_UFFD_USER_MODE_ONLY);
    if (fd < 0)
        return errno;
    uint8_t page[4096];
    memset(page, 0x5a, sizeof(page));
    struct uffdio_api api = {.api = UFFD_API};
    int err = ioctl(fd, UFFDIO_API, &api) < 0 ? errno : 0, memfd = -1;
    void *p = MAP_FAILED;
    if (err == 0 && ((memfd = memfd_create("forkd-probe", MFD_CLOEXEC)) < 0 ||
                     ftruncate(memfd, PROBE_BYTES) < 0))
        err = errno;
    if (err == 0 && (p = mmap(NULL, PROBE_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE, memfd, 0)) ==
                        MAP_FAILED)
        err = errno;
    if (err == 0) {
        struct uffdio_register reg = {.range = {.start = (uint64_t)(uintptr_t)p, .len = PROBE_BYTES},
                                      .mode = UFFDIO_REGISTER_MODE_MISSING};
        if (ioctl(fd, UFFDIO_REGISTER, &reg) < 0) {
            err = errno;
        } else {
            struct uffdio_copy c = {.dst = reg.range.start,
                                    .src = (uint64_t)(uintptr_t)page,
                                    .len = sizeof(page)};
            err = ioctl(fd, UFFDIO_COPY, &c) < 0 ? errno : 0;
            /* Unregistered before the read: nothing may wait on this range. */
            ioctl(fd, UFFDIO_UNREGISTER, &reg.range);
            if (err == 0 && memcmp(p, page, sizeof(page)) != 0)
                err = EIO;
        }
    }
    if (p != MAP_FAILED)
        munmap(p, PROBE_BYTES);
    if (memfd >= 0)
        close(memfd);
    close(fd);
    return err;
}

int fj_probe_uffd(struct fj_uffd_probe *out)
{
    memset(out, 0, sizeof(*out));
    out->api_errno = out->wp_api_errno = out->wp_memfd_errno = -1;
    out->wp_register_errno = out->wp_protect_errno = -1;
    out->fill_errno = probe_fill();
    int fd = probe_open_uffd(out);
    if (fd < 0)
        return out->syscall_errno ? -out->syscall_errno : -out->devnode_errno;
    struct uffdio_api api = {.api = UFFD_API, .features = 0};
    out->api_errno = ioctl(fd, UFFDIO_API, &api) < 0 ? errno : 0;
    out->features = api.features;
    close(fd);
    if (out->api_errno)
        return 0;
    /* The handshake is once per descriptor: a second one asks for WP. */
    struct fj_uffd_probe again;
    fd = probe_open_uffd(&again);
    if (fd < 0) {
        out->wp_api_errno = again.syscall_errno ? again.syscall_errno : again.devnode_errno;
        return 0;
    }
    probe_wp(fd, out);
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
        err = -errno; /* hugetlb: mmap reserves the pages, ENOMEM when none are free */
    else if (hugetlb && madvise(p, PROBE_BYTES, MADV_POPULATE_WRITE) < 0)
        err = -errno; /* an error here instead of a SIGBUS on the write below */
    else
        memset(p, 1, PROBE_BYTES);
    if (p != MAP_FAILED)
        munmap(p, PROBE_BYTES);
    close(fd);
    return err;
}

static int probe_pread_exact(int fd, void *buf, size_t len, off_t off)
{
    ssize_t r = pread(fd, buf, len, off);
    if (r < 0)
        return errno;
    return (size_t)r == len ? 0 : ENOEXEC;
}

/* Finds PT_INTERP in a 64-bit little-endian ELF; 0 or a positive errno. */
static int probe_interp(int fd, const Elf64_Ehdr *eh, struct fj_elf_probe *out)
{
    if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum > 256)
        return ENOEXEC;
    for (int i = 0; i < eh->e_phnum; i++) {
        Elf64_Phdr ph;
        int err = probe_pread_exact(fd, &ph, sizeof(ph), (off_t)(eh->e_phoff + i * sizeof(ph)));
        if (err)
            return err;
        if (ph.p_type != PT_INTERP)
            continue;
        if (ph.p_filesz == 0 || ph.p_filesz > sizeof(out->interp))
            return ENAMETOOLONG;
        if ((err = probe_pread_exact(fd, out->interp, ph.p_filesz, (off_t)ph.p_offset)))
            return err;
        out->interp[ph.p_filesz - 1] = 0; /* the segment holds the terminating NUL */
        return 0;
    }
    return 0;
}

int fj_probe_elf(const char *path, struct fj_elf_probe *out)
{
    memset(out, 0, sizeof(*out));
    out->interp_errno = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -(out->open_errno = errno);
    /* Invariant: head is NUL-terminated after the n bytes read. */
    char head[sizeof(out->shebang)];
    ssize_t n = pread(fd, head, sizeof(head) - 1, 0);
    if (n < 0) {
        out->open_errno = errno;
        close(fd);
        return -out->open_errno;
    }
    head[n] = 0;
    if (n >= 2 && head[0] == '#' && head[1] == '!') {
        out->is_script = 1;
        memcpy(out->shebang, head, strcspn(head, "\n"));
    } else if (n >= (ssize_t)sizeof(Elf64_Ehdr) && !memcmp(head, ELFMAG, SELFMAG)) {
        out->is_elf = 1;
        Elf64_Ehdr eh;
        memcpy(&eh, head, sizeof(eh));
        out->elf_class = eh.e_ident[EI_CLASS];
        if (eh.e_ident[EI_CLASS] == ELFCLASS64 && eh.e_ident[EI_DATA] == ELFDATA2LSB) {
            out->machine = eh.e_machine;
            out->type = eh.e_type;
            out->interp_errno = probe_interp(fd, &eh, out);
        }
    } else if (n >= SELFMAG && !memcmp(head, ELFMAG, SELFMAG)) {
        out->is_elf = 1; /* truncated: no header to read further */
    }
    close(fd);
    return 0;
}
