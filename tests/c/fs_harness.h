/* A guest without a VM, for testing the files family: guest memory is a
 * plain buffer behind struct mm, the fd table and the filesystem view are
 * real, and system calls go straight to the files family's handlers.
 * The VMM functions the family needs from elsewhere (blocking waits,
 * signals, clocks, dirty tracking) are stubs in fs_harness.c. */
#ifndef FS_HARNESS_H
#define FS_HARNESS_H

#include <stdio.h>

#include "core/sandbox.h"
#include "sys/sys.h"

extern int g_pass, g_fail;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (cond) {                                                                                \
            g_pass++;                                                                              \
        } else {                                                                                   \
            g_fail++;                                                                              \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                        \
        }                                                                                          \
    } while (0)

#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                      \
        if (va_ == vb_) {                                                                          \
            g_pass++;                                                                              \
        } else {                                                                                   \
            g_fail++;                                                                              \
            fprintf(stderr, "FAIL %s:%d: %s == %s (%lld != %lld)\n", __FILE__, __LINE__, #a, #b,   \
                    va_, vb_);                                                                     \
        }                                                                                          \
    } while (0)

#define H_RAM_BYTES (64ULL << 20)

/* The sandbox under test; its view and fd table are created by h_init. */
extern struct sandbox h_sb;

/* What the stubs saw: sb_wait_fd calls and their arguments, raised signals.
 * h_wait_result is what sb_wait_fd returns (default -ETIMEDOUT when a
 * timeout was given, -EINTR otherwise, like an interrupt arriving). */
extern int h_wait_calls, h_wait_last_fd;
extern int64_t h_wait_last_timeout;
extern uint64_t h_raised;

int h_init(const char *const *roots, size_t n_roots, const char *agent_dir, const char *exe);
/* A fresh view and fd table (same configuration). */
void h_reset(void);
/* A fresh view and fd table over other read-only roots (kept by pointer). */
void h_use_roots(const char *const *roots, size_t n_roots);
void h_fini(void);

/* Guest memory: a bump allocator, reset by h_mark/h_release. */
gva_t h_alloc(uint64_t len);
gva_t h_str(const char *s);
void *h_ptr(gva_t at);
gva_t h_mark(void);
void h_release(gva_t mark);

/* Calls the files family's handler for nr (-ENOSYS when it has none). */
int64_t h_sys(uint32_t nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
              uint64_t a5);

/* Conveniences over h_sys for tests (paths are copied into guest memory). */
int64_t g_open(const char *path, int flags, unsigned mode);
int64_t g_openat(int dirfd, const char *path, int flags, unsigned mode);
int64_t g_close(int fd);
int64_t g_stat(const char *path, struct stat *st);
int64_t g_lstat(const char *path, struct stat *st);
int64_t g_fstat(int fd, struct stat *st);
int64_t g_fstatat(int dirfd, const char *path, struct stat *st, int flags);
int64_t g_read(int fd, void *buf, uint64_t len); /* through guest memory */
int64_t g_write(int fd, const void *buf, uint64_t len);
int64_t g_readlink(const char *path, char *buf, uint64_t len); /* NUL-terminates on success */
int64_t g_mkdir(const char *path, unsigned mode);
int64_t g_unlink(const char *path);
int64_t g_rmdir(const char *path);
int64_t g_rename(const char *from, const char *to);
int64_t g_symlink(const char *target, const char *path);
int64_t g_access(const char *path, int mode);
int64_t g_chdir(const char *path);

struct h_dirent {
    char name[256];
    unsigned char type;
    uint64_t ino;
};

/* Every entry of an open directory, read with getdents64 in buffers of
 * bufsize bytes; each record is checked (8-byte alignment, bounds, NUL,
 * d_off). Returns the count (at most max are stored) or -errno. */
int64_t g_list(int fd, uint64_t bufsize, struct h_dirent *out, size_t max);
/* g_list of a path opened with O_DIRECTORY, 4 KiB buffers. */
int64_t g_list_path(const char *path, struct h_dirent *out, size_t max);
/* Index of name in a listing, or -1. */
int h_find(const struct h_dirent *d, int64_t n, const char *name);

#endif
