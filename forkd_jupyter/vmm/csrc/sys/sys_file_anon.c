/* The files family, anonymous files and in-VMM copies: O_TMPFILE opens,
 * memfd_create, sendfile, copy_file_range and splice. Their entries are listed with
 * the descriptor-based calls (sys_file_fd.c), their handlers in sys_file.h.
 *
 * Anonymous files are layer files without a name (file_layer_anon): they
 * count against the layer's byte limit and branch with it. Copies move data
 * through a bounded VMM buffer using the descriptions' own read/write ops,
 * so every rule of those ops (read-only host files, pipes, O_APPEND) holds. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "file/file_kinds.h"
#include "fs/fs_memfs.h"
#include "core/sandbox.h"
#include "sys/sys.h"
#include "sys/sys_file.h"

#define MFD_CLOEXEC_ 0x1U
#define MFD_ALLOW_SEALING_ 0x2U
#define MFD_HUGETLB_ 0x4U
#define MFD_NOEXEC_SEAL_ 0x8U
#define MFD_EXEC_ 0x10U
#define MFD_HUGE_MASK_ (0x3fU << 26)
#define MFD_NAME_MAX 249 /* bytes of a memfd name, as on Linux */

#define COPY_CHUNK (1U << 20)  /* bytes moved per step */
#define COPY_MAX 0x7ffff000ULL /* Linux's MAX_RW_COUNT */

int64_t sysf_open_tmpfile(struct sandbox *sb, struct view_node *n, int flags, uint32_t mode) {
    if ((flags & O_ACCMODE) == O_RDONLY || (flags & O_CREAT))
        return -EINVAL;
    if (n->kind == VK_NONE)
        return -ENOENT;
    struct stat st;
    int err = view_stat(sb->view, n, &st);
    if (err < 0)
        return err;
    if (!S_ISDIR(st.st_mode))
        return -ENOTDIR;
    if (n->kind != VK_LAYER)
        return -EROFS;
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/#%llu (deleted)", strcmp(n->path, "/") ? n->path : "",
             (unsigned long long)fj_now_ns());
    struct file *f;
    int open_flags = flags & ~(O_TMPFILE | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC);
    err = file_layer_anon(fs_view_layer(sb->view), mode & ~sb->view->umask, open_flags, path, &f);
    if (err < 0)
        return err;
    int fd = fdt_install(&sb->fdt, f, 0, flags & O_CLOEXEC);
    if (fd < 0)
        file_put(f);
    return fd;
}

int64_t sysf_memfd_create(struct sandbox *sb, const uint64_t a[6]) {
    unsigned flags = (unsigned)a[1];
    unsigned known =
        MFD_CLOEXEC_ | MFD_ALLOW_SEALING_ | MFD_HUGETLB_ | MFD_NOEXEC_SEAL_ | MFD_EXEC_;
    if (a[1] > UINT32_MAX || (flags & ~(known | MFD_HUGE_MASK_)) ||
        ((flags & MFD_HUGE_MASK_) && !(flags & MFD_HUGETLB_)) ||
        ((flags & MFD_NOEXEC_SEAL_) && (flags & MFD_EXEC_)))
        return -EINVAL;
    char name[MFD_NAME_MAX + 1];
    if (!a[0])
        return -EFAULT;
    int len = mm_copy_string(&sb->mm, name, a[0], sizeof(name));
    if (len < 0)
        return len == -ENAMETOOLONG ? -EINVAL : len;
    char path[sizeof(name) + 32];
    snprintf(path, sizeof(path), "/memfd:%s (deleted)", name);
    struct file *f;
    int err = file_layer_anon(fs_view_layer(sb->view), (flags & MFD_NOEXEC_SEAL_) ? 0666 : 0777,
                              O_RDWR, path, &f);
    if (err < 0)
        return err;
    int fd = fdt_install(&sb->fdt, f, 0, flags & MFD_CLOEXEC_);
    if (fd < 0)
        file_put(f);
    return fd;
}

/* ------------------------------------------------------------ copies */

static int regular(struct sandbox *sb, struct file *f) {
    struct stat st;
    int err = f->ops->stat(sb, f, &st);
    if (err < 0)
        return err;
    return S_ISDIR(st.st_mode) ? -EISDIR : S_ISREG(st.st_mode) ? 0 : -EINVAL;
}

/* Reads an optional guest loff_t: *has is false for a NULL pointer. */
static int read_off(struct sandbox *sb, gva_t at, bool *has, int64_t *off) {
    *has = at != 0;
    if (!at)
        return 0;
    if (mm_copy_from(&sb->mm, off, at, sizeof(*off)) < 0)
        return -EFAULT;
    return *off < 0 ? -EINVAL : 0;
}

/* Moves up to len bytes from in at *in_off (pread) to out, at *out_off with
 * pwrite when out_off is given, else with write. Returns the bytes moved
 * (both offsets advanced by it), or -errno when nothing moved. A short write
 * ends the copy: the bytes read beyond it are simply read again next time. */
static int64_t copy_between(struct sandbox *sb, struct file *in, uint64_t *in_off, struct file *out,
                            uint64_t *out_off, uint64_t len) {
    if (!in->ops->pread)
        return -EINVAL;
    if (out_off ? !out->ops->pwrite : !out->ops->write)
        return -EINVAL;
    uint8_t *buf = malloc(FJ_MIN(len, COPY_CHUNK));
    if (!buf)
        return -ENOMEM;
    int64_t total = 0, err = 0;
    while ((uint64_t)total < len) {
        uint64_t want = FJ_MIN(len - (uint64_t)total, COPY_CHUNK);
        int64_t r = in->ops->pread(sb, in, buf, want, *in_off);
        if (r <= 0) {
            err = r;
            break;
        }
        int64_t w = out_off ? out->ops->pwrite(sb, out, buf, (uint64_t)r, *out_off)
                            : out->ops->write(sb, out, buf, (uint64_t)r);
        if (w <= 0) {
            err = w;
            break;
        }
        total += w;
        *in_off += (uint64_t)w;
        if (out_off)
            *out_off += (uint64_t)w;
        if (w < r)
            break;
    }
    free(buf);
    return total ? total : err;
}

int64_t sysf_sendfile(struct sandbox *sb, const uint64_t a[6]) {
    struct file *out = fdt_get(&sb->fdt, (int)a[0]), *in = fdt_get(&sb->fdt, (int)a[1]);
    if (a[0] > INT_MAX || a[1] > INT_MAX || !out || !in || !sysf_can_read(in) ||
        !sysf_can_write(out))
        return -EBADF;
    if (out->flags & O_APPEND)
        return -EINVAL;
    int err = regular(sb, in);
    if (err < 0)
        return err == -EISDIR ? -EINVAL : err;
    bool has;
    int64_t off;
    if ((err = read_off(sb, a[2], &has, &off)) < 0)
        return err;
    uint64_t pos = has ? (uint64_t)off : in->off;
    int64_t r = copy_between(sb, in, &pos, out, NULL, FJ_MIN(a[3], COPY_MAX));
    if (r < 0)
        return r;
    if (has)
        return mm_copy_to(&sb->mm, a[2], &pos, sizeof(pos)) < 0 ? -EFAULT : r;
    in->off = pos;
    return r;
}

int64_t sysf_copy_file_range(struct sandbox *sb, const uint64_t a[6]) {
    struct file *in = fdt_get(&sb->fdt, (int)a[0]), *out = fdt_get(&sb->fdt, (int)a[2]);
    if (a[5] != 0)
        return -EINVAL;
    if (a[0] > INT_MAX || a[2] > INT_MAX || !in || !out || !sysf_can_read(in) ||
        !sysf_can_write(out) || (out->flags & O_APPEND))
        return -EBADF;
    int err = regular(sb, in);
    if (err == 0)
        err = regular(sb, out);
    if (err < 0)
        return err;
    bool has_in, has_out;
    int64_t off_in, off_out;
    if ((err = read_off(sb, a[1], &has_in, &off_in)) < 0 ||
        (err = read_off(sb, a[3], &has_out, &off_out)) < 0)
        return err;
    uint64_t pin = has_in ? (uint64_t)off_in : in->off,
             pout = has_out ? (uint64_t)off_out : out->off;
    uint64_t len = FJ_MIN(a[4], COPY_MAX);
    if (in->node && in->node == out->node && pin < pout + len && pout < pin + len)
        return -EINVAL; /* overlapping ranges of one file */
    if (!out->ops->pwrite)
        return -EBADF;
    int64_t r = copy_between(sb, in, &pin, out, &pout, len);
    if (r < 0)
        return r;
    if ((has_in && mm_copy_to(&sb->mm, a[1], &pin, sizeof(pin)) < 0) ||
        (has_out && mm_copy_to(&sb->mm, a[3], &pout, sizeof(pout)) < 0))
        return -EFAULT;
    if (!has_in)
        in->off = pin;
    if (!has_out)
        out->off = pout;
    return r;
}

/* ------------------------------------------------------------ splice */

#define SPLICE_F_NONBLOCK_ 2U
#define SPLICE_FLAGS_ 0xfU     /* MOVE, NONBLOCK, MORE, GIFT */
#define PIPE_CHUNK (64U << 10) /* a pipe's capacity: what one call moves at most */

/* Moves what one read of in gives (at most len bytes) to out, whole: a
 * pipe's bytes, once read, are not put back, so only an error of out can
 * lose them (as when the write side of Linux's splice fails). */
static int64_t move_read(struct sandbox *sb, struct file *in, struct file *out, uint64_t *out_off,
                         uint64_t len) {
    if (!in->ops->read || (out_off ? !out->ops->pwrite : !out->ops->write))
        return -EINVAL;
    uint8_t *buf = malloc(len);
    if (!buf)
        return -ENOMEM;
    int64_t r = in->ops->read(sb, in, buf, len);
    for (int64_t done = 0; r > 0 && done < r;) {
        int64_t w = out_off ? out->ops->pwrite(sb, out, buf + done, (uint64_t)(r - done), *out_off)
                            : out->ops->write(sb, out, buf + done, (uint64_t)(r - done));
        if (w <= 0) {
            r = done ? done : w;
            break;
        }
        done += w;
        if (out_off)
            *out_off += (uint64_t)w;
    }
    free(buf);
    return r;
}

/* splice(fd_in, off_in, fd_out, off_out, len, flags): one end a pipe; the
 * bytes go through the VMM (in's read or pread, out's write or pwrite), so
 * every rule of those holds. SPLICE_F_NONBLOCK makes the pipe ends
 * non-blocking for the call. */
int64_t sysf_splice(struct sandbox *sb, const uint64_t a[6]) {
    struct file *in = sys_fd_file(sb, a[0]);
    struct file *out = sys_fd_file(sb, a[2]);
    if (a[5] & ~(uint64_t)SPLICE_FLAGS_)
        return -EINVAL;
    if (!in || !out || !sysf_can_read(in) || !sysf_can_write(out))
        return -EBADF;
    bool in_pipe = file_is_pipe(in), out_pipe = file_is_pipe(out);
    if (!in_pipe && !out_pipe)
        return -EINVAL;
    if ((in_pipe && a[1]) || (out_pipe && a[3]))
        return -ESPIPE;
    if (out->flags & O_APPEND)
        return -EINVAL;
    bool has_in, has_out;
    int64_t off_in, off_out;
    int64_t err;
    if ((err = read_off(sb, a[1], &has_in, &off_in)) < 0 ||
        (err = read_off(sb, a[3], &has_out, &off_out)) < 0)
        return err;
    uint64_t len = FJ_MIN(a[4], PIPE_CHUNK);
    if (!len)
        return 0;
    int in_flags = in->flags, out_flags = out->flags;
    if (a[5] & SPLICE_F_NONBLOCK_) { /* under big_lock, and nothing waits: restored below */
        if (in_pipe)
            in->flags |= O_NONBLOCK;
        if (out_pipe)
            out->flags |= O_NONBLOCK;
    }
    uint64_t pin = has_in ? (uint64_t)off_in : in->off, pout = (uint64_t)off_out;
    int64_t r;
    if (!in_pipe && in->ops->pread)
        r = copy_between(sb, in, &pin, out, NULL, len); /* file to pipe */
    else
        r = move_read(sb, in, out, has_out ? &pout : NULL, len);
    in->flags = in_flags;
    out->flags = out_flags;
    if (r <= 0)
        return r;
    if (!in_pipe && in->ops->pread && !has_in)
        in->off = pin;
    if ((has_in && mm_copy_to(&sb->mm, a[1], &pin, sizeof(pin)) < 0) ||
        (has_out && mm_copy_to(&sb->mm, a[3], &pout, sizeof(pout)) < 0))
        return -EFAULT;
    return r;
}
