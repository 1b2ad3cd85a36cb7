/* Memory images of snapshots: the copy made in a pause (snap_copy.h:
 * snap_copy_now, snap_copy_pages) and the ranges and writes the live copy
 * shares (snap_ranges.h). */
#define _GNU_SOURCE
#include "snap/snap_copy.h"
#include "snap/snap_ranges.h"
#include "lib/bitmap.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

int snap_range_push(struct range **r, size_t *n, size_t *cap, uint64_t start, uint64_t end)
{
    if (*n && (*r)[*n - 1].end >= start) {
        (*r)[*n - 1].end = FJ_MAX((*r)[*n - 1].end, end);
        return 0;
    }
    if (*n == *cap) {
        struct range *g = realloc(*r, (*cap = *cap ? *cap * 2 : 64) * sizeof(*g));
        if (!g)
            return -ENOMEM;
        *r = g;
    }
    (*r)[(*n)++] = (struct range){start, end};
    return 0;
}

int snap_write_image(int fd, const uint8_t *src, uint64_t off, uint64_t len)
{
    while (len) {
        ssize_t w = pwrite(fd, src, (size_t)FJ_MIN(len, 8ULL << 20), (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        src += w;
        off += (uint64_t)w;
        len -= (uint64_t)w;
    }
    return 0;
}

int snap_copy_file_range(int dst, int src, uint64_t off, uint64_t len)
{
    while (len) {
        loff_t in = (loff_t)off, out = (loff_t)off;
        ssize_t n = copy_file_range(src, &in, dst, &out, (size_t)len, 0);
        if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == EOPNOTSUPP)) {
            char buf[1 << 16]; /* a kernel that cannot copy between these files */
            n = pread(src, buf, (size_t)FJ_MIN(len, sizeof(buf)), (off_t)off);
            if (n > 0) /* a short write goes on from where it stopped */
                n = pwrite(dst, buf, (size_t)n, (off_t)off);
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EIO; /* src shorter than the range: an image is never so */
        off += (uint64_t)n;
        len -= (uint64_t)n;
    }
    return 0;
}

int snap_content_ranges(struct sandbox *sb, const struct mm *mm, struct range **out, size_t *n)
{
    struct range *r = NULL;
    size_t k = 0, cap = 0;
    int err = 0;
    if (!sb->vm.ram_private) {
        off_t at = 0, end = (off_t)sb->vm.ram_bytes;
        while (at < end && err == 0) {
            off_t data = lseek(sb->vm.ram_fd, at, SEEK_DATA);
            if (data < 0)
                break; /* ENXIO: no more data */
            off_t hole = lseek(sb->vm.ram_fd, data, SEEK_HOLE);
            if (hole < 0)
                hole = end;
            err = snap_range_push(&r, &k, &cap, FJ_ALIGN_DOWN((uint64_t)data, FJ_PAGE_SIZE),
                                  FJ_ALIGN_UP((uint64_t)hole, FJ_PAGE_SIZE));
            at = hole;
        }
    } else {
        for (size_t i = 0; i < mm->n_vmas && err == 0; i++)
            err = snap_range_push(&r, &k, &cap, mm->vmas[i].start, mm->vmas[i].end);
    }
    if (err < 0) {
        free(r);
        return err;
    }
    *out = r;
    *n = k;
    return 0;
}

int snap_copy_now(struct sandbox *sb, struct snapshot *snap)
{
    struct range *r;
    size_t n;
    int err = snap_content_ranges(sb, &sb->mm, &r, &n);
    if (err < 0)
        return err;
    for (size_t i = 0; err == 0 && i < n; i++)
        err = snap_write_image(snap->image_fd, sb->vm.ram + r[i].start, r[i].start, r[i].end - r[i].start);
    free(r);
    return err;
}

int snap_copy_pages(struct sandbox *sb, struct snapshot *snap, const uint64_t *bitmap,
                    const uint64_t *zero)
{
    uint64_t pages = sb->vm.ram_bytes / FJ_PAGE_SIZE, words = (pages + 63) / 64;
    uint64_t *copy = zero ? malloc(words * sizeof(*copy)) : NULL;
    if (zero && !copy)
        return -ENOMEM;
    for (uint64_t w = 0; copy && w < words; w++)
        copy[w] = bitmap[w] & ~zero[w]; /* the image's hole reads zero there */
    const uint64_t *want = copy ? copy : bitmap;
    int err = 0;
    for (uint64_t q, p = fj_bits_next_run(want, pages, 0, &q); p < pages && err == 0;
         p = fj_bits_next_run(want, pages, q, &q))
        err = snap_write_image(snap->image_fd, sb->vm.ram + p * FJ_PAGE_SIZE, p * FJ_PAGE_SIZE,
                               (q - p) * FJ_PAGE_SIZE);
    free(copy);
    return err;
}
