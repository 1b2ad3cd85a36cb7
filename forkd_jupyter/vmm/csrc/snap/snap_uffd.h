/* userfaultfd in write-protect mode, for the live copy (snap_live.c):
 * guest RAM registered once, ranges protected and unprotected while the
 * guest runs; a guest write to a protected page arrives as a message on
 * the descriptor and waits until its page is unprotected. */
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

#endif
