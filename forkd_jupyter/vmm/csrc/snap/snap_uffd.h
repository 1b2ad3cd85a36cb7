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

/* A non-blocking userfaultfd for filling missing pages, of user-mode
 * faults only: what an unprivileged process may open where the host allows
 * users no more (vm.unprivileged_userfaultfd = 0), and a touch of a missing
 * page by the kernel on this process's behalf fails (-EFAULT) instead of
 * waiting for a fill; -errno. */
int snap_uffd_open_fill(void);
/* Registers [base, + len) for missing pages (to fill them with
 * snap_uffd_fill), or unregisters it; -errno. While registered, a touch of
 * a missing page there by this process waits for a fill that nobody
 * makes: fill only. */
int snap_uffd_register_missing(int uffd, uint8_t *base, uint64_t len);
int snap_uffd_unregister(int uffd, uint8_t *base, uint64_t len);
/* Makes [dst, + len), missing pages of a registered range, private pages
 * holding [src, + len) (src NULL: zeros); -errno (-EEXIST: a page there is
 * present already). */
int snap_uffd_fill(int uffd, uint8_t *dst, const uint8_t *src, uint64_t len);

#endif
