/* PAGEMAP_SCAN queries (pagemap.h). */
#define _GNU_SOURCE
#include "lib/pagemap.h"
#include "lib/bitmap.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

static int pagemap_fd = -1;
static pthread_once_t pagemap_once = PTHREAD_ONCE_INIT;

static void open_pagemap(void) {
    int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    pagemap_fd = fd >= 0 ? fd : -errno;
}

int fj_pagemap_fd(void) {
    pthread_once(&pagemap_once, open_pagemap);
    return pagemap_fd;
}

int64_t fj_pagemap_anon(uint64_t start, uint64_t end, uint64_t base, uint64_t *bits,
                        bool first_only) {
    int fd = fj_pagemap_fd();
    if (fd < 0)
        return fd;
    struct page_region regions[128];
    int64_t found = 0;
    for (uint64_t at = start; at < end;) {
        struct pm_scan_arg arg = {
            .size = sizeof(arg),
            .start = at,
            .end = end,
            .vec = (uint64_t)(uintptr_t)regions,
            .vec_len = first_only ? 1 : FJ_ARRAY_SIZE(regions),
            .max_pages = first_only ? 1 : 0,
            /* neither page cache nor the zero page, and present or swapped */
            .category_inverted = PAGE_IS_FILE | PAGE_IS_PFNZERO,
            .category_mask = PAGE_IS_FILE | PAGE_IS_PFNZERO,
            .category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
            .return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
        };
        int n = ioctl(fd, PAGEMAP_SCAN, &arg);
        if (n < 0)
            return -errno;
        for (int i = 0; i < n; i++) {
            uint64_t p = (regions[i].start - base) / FJ_PAGE_SIZE;
            uint64_t q = (regions[i].end - base) / FJ_PAGE_SIZE;
            found += (int64_t)(q - p);
            if (bits)
                fj_bits_set(bits, p, q);
        }
        if ((first_only && found) || arg.walk_end <= at)
            break;
        at = arg.walk_end;
    }
    return found;
}

int64_t fj_resident_pages(uint64_t start, uint64_t end, uint64_t base, uint64_t *bits) {
    unsigned char vec[4096];
    int64_t found = 0;
    for (uint64_t at = start; at < end;) {
        uint64_t n = FJ_MIN((end - at) / FJ_PAGE_SIZE, sizeof(vec));
        if (mincore((void *)(uintptr_t)at, n * FJ_PAGE_SIZE, vec) < 0)
            return -errno;
        for (uint64_t i = 0; i < n; i++) {
            if (!(vec[i] & 1))
                continue;
            found++;
            if (bits)
                fj_bit_set(bits, (at - base) / FJ_PAGE_SIZE + i);
        }
        at += n * FJ_PAGE_SIZE;
    }
    return found;
}
