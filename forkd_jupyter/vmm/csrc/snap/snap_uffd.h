/* userfaultfd in write-protect mode, for the live copy (snap_live.c):
 * guest RAM registered once, ranges protected and unprotected while the
 * guest runs; a guest write to a protected page arrives as a message on
 * the descriptor and waits until its page is unprotected. And in missing
 * mode, for placing pages into a child's RAM before it runs (snap_map.c):
 * a page filled so becomes the child's own at once, without the
 * copy-on-write fault that would first copy the page it replaces. */
#ifndef SNAP_UFFD_H
#define SNAP_UFFD_H

#include <linux/userfaultfd.h>
#include <stdbool.h>
#include <stdint.h>

/* A non-blocking userfaultfd with write protection of shared memory, also
 * of pages not populated yet; -errno. */
int snap_uffd_open(void);
/* Registers [base + start, + len) for write protection; -errno. */
int snap_uffd_register(int uffd, uint8_t *base, uint64_t start, uint64_t len);
/* Protects (on) or unprotects [base + start, + len), waking writers waiting
 * there; -errno. */
int snap_uffd_protect(int uffd, uint8_t *base, uint64_t start, uint64_t len, bool on);

/* Registers [base, + len) for missing pages (to fill them with
 * snap_uffd_fill), or unregisters it; -errno. While registered, a touch of
 * a missing page there (a read or write by this process, the kernel's on
 * its behalf included) waits for a fill that nobody makes: fill only. */
int snap_uffd_register_missing(int uffd, uint8_t *base, uint64_t len);
int snap_uffd_unregister(int uffd, uint8_t *base, uint64_t len);
/* Makes [dst, + len), missing pages of a registered range, private pages
 * holding [src, + len) (src NULL: zeros); -errno (-EEXIST: a page there is
 * present already). */
int snap_uffd_fill(int uffd, uint8_t *dst, const uint8_t *src, uint64_t len);

#endif
