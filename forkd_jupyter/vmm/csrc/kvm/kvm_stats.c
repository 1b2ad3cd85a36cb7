/* KVM's own statistics of a VM (KVM_GET_STATS_FD, Linux 5.14). */
#define _GNU_SOURCE
#include "kvm/kvm_vm.h"

#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* The value of the first element of the statistic called name, read from
 * stats_fd laid out as hdr says; -ENOENT when KVM has none by that name. */
static int64_t stat_named(int stats_fd, const struct kvm_stats_header *hdr, const char *name) {
    size_t desc_size = sizeof(struct kvm_stats_desc) + hdr->name_size;
    struct kvm_stats_desc *d = malloc(desc_size);
    if (!d)
        return -ENOMEM;
    int64_t out = -ENOENT;
    for (uint32_t i = 0; i < hdr->num_desc; i++) {
        off_t at = (off_t)hdr->desc_offset + (off_t)(i * desc_size);
        if (pread(stats_fd, d, desc_size, at) != (ssize_t)desc_size) {
            out = -EIO;
            break;
        }
        if (strncmp(d->name, name, hdr->name_size) != 0)
            continue;
        uint64_t value;
        at = (off_t)hdr->data_offset + d->offset;
        out = pread(stats_fd, &value, sizeof(value), at) == sizeof(value) ? (int64_t)value : -EIO;
        break;
    }
    free(d);
    return out;
}

int kvm_vm_mapped_pages(const struct kvm_vm *vm, uint64_t *pages_4k, uint64_t *pages_2m) {
    int fd = ioctl(vm->vm_fd, KVM_GET_STATS_FD, NULL);
    if (fd < 0)
        return -errno;
    struct kvm_stats_header hdr;
    int64_t small = -EIO, large = -EIO;
    if (pread(fd, &hdr, sizeof(hdr), 0) == sizeof(hdr)) {
        small = stat_named(fd, &hdr, "pages_4k");
        large = stat_named(fd, &hdr, "pages_2m");
    }
    close(fd);
    if (small < 0 || large < 0)
        return (int)(small < 0 ? small : large);
    *pages_4k = (uint64_t)small;
    *pages_2m = (uint64_t)large;
    return 0;
}
