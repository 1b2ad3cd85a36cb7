/* What the host holds behind a range of this process's memory, read from
 * /proc/self/pagemap with PAGEMAP_SCAN (Linux 6.7; older headers lack it,
 * the running kernel may still have it: without it the calls fail with
 * -ENOTTY or -EINVAL). */
#ifndef FJ_PAGEMAP_H
#define FJ_PAGEMAP_H

#include <linux/fs.h>

#include "lib/fj.h"

#ifndef PAGEMAP_SCAN
struct page_region {
    uint64_t start, end, categories;
};
struct pm_scan_arg {
    uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
    uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#define PAGE_IS_FILE (1 << 2)
#define PAGE_IS_PRESENT (1 << 3)
#define PAGE_IS_SWAPPED (1 << 4)
#define PAGE_IS_PFNZERO (1 << 5)
#endif

/* /proc/self/pagemap, opened once for the process; -errno. */
int fj_pagemap_fd(void);

/* Sets in bits (one per page, page 0 at base) the pages of [start, end)
 * that are this process's own anonymous memory: present or swapped, not
 * page cache and not the shared zero page. In a private file mapping these
 * are exactly the pages written since it was mapped. Stops after the first
 * run when first_only (bits may be NULL then). Returns the pages found, or
 * -errno. */
int64_t fj_pagemap_anon(uint64_t start, uint64_t end, uint64_t base, uint64_t *bits,
                        bool first_only);

/* Sets in bits (one per page, page 0 at base; bits may be NULL) the pages
 * of [start, end) the host holds, by mincore: present, or cached in the
 * file mapped there. Returns how many, or -errno. */
int64_t fj_resident_pages(uint64_t start, uint64_t end, uint64_t base, uint64_t *bits);

#endif
