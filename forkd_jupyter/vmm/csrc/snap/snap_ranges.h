/* Ranges of guest RAM and writing them into an image (snap_copy.c), shared
 * by the copy made in a pause and the live copy (snap_live.c). */
#ifndef SNAP_RANGES_H
#define SNAP_RANGES_H

#include <stddef.h>
#include <stdint.h>

struct sandbox;
struct mm;

struct range {
    uint64_t start, end; /* guest-physical, page aligned */
};

/* Appends [start, end) to *r (*n used of *cap), merging it with the last
 * range when they touch; *r grows as needed. -ENOMEM. */
int snap_range_push(struct range **r, size_t *n, size_t *cap, uint64_t start, uint64_t end);
/* Ranges of guest RAM with content, in order: the memfd's data extents for
 * a sandbox owning its RAM (a walk of the file, ~15 ms per GiB of data);
 * the mapped VMAs of mm (a map of the same instant) for a copy-on-write
 * child. *out is malloc'd (NULL when *n is 0). -errno. */
int snap_content_ranges(struct sandbox *sb, const struct mm *mm, struct range **out, size_t *n);
/* Copies bytes [off, off + len) of the file src into dst at the same
 * offsets (in the kernel where it can). -errno. */
int snap_copy_file_range(int dst, int src, uint64_t off, uint64_t len);
/* Writes the len bytes at src to fd at offset off. -errno. */
int snap_write_image(int fd, const uint8_t *src, uint64_t off, uint64_t len);

#endif
