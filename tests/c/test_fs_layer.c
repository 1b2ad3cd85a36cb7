/* test_fs_view cases for the writable layer: files, directories, edge
 * cases of names, anonymous files, copies, extended attributes, branches. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fs/fs_memfs.h"
#include "fs/fs_view.h"
#include "fs_harness.h"
#include "fs_tests.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE 1
#endif

/* ------------------------------------------------------ the layer */

void test_layer_files(void) {
    struct stat st, hst;
    const uint64_t big = 3ULL << 20;
    uint8_t *data = malloc(big), *back = malloc(big);
    fill(data, big, 7);

    int64_t fd = g_open("/sandbox/data.bin", O_RDWR | O_CREAT | O_EXCL, 0644);
    CHECK(fd >= 0);
    CHECK_EQ(g_write((int)fd, data, big), big); /* one call */
    CHECK_EQ(h_sys(8, (uint64_t)fd, 0, SEEK_SET, 0, 0, 0), 0);
    memset(back, 0, big);
    CHECK_EQ(g_read((int)fd, back, big), big);
    CHECK(!memcmp(data, back, big));
    CHECK_EQ(g_read((int)fd, back, 10), 0);
    CHECK_EQ(g_fstat((int)fd, &st), 0);
    CHECK_EQ(st.st_size, big);
    CHECK(S_ISREG(st.st_mode));
    CHECK_EQ(st.st_mode & 07777, 0644);
    CHECK_EQ(stat(exe_path, &hst), 0);
    CHECK(st.st_dev != hst.st_dev);
    CHECK_EQ(st.st_dev, MEMFS_DEV);

    /* pread/pwrite leave the offset alone; lseek whences. */
    gva_t m = h_mark();
    gva_t b = h_alloc(16);
    memcpy(h_ptr(b), "HELLO", 5);
    CHECK_EQ(h_sys(18, (uint64_t)fd, b, 5, 100, 0, 0), 5);
    CHECK_EQ(h_sys(17, (uint64_t)fd, b + 8, 5, 100, 0, 0), 5);
    CHECK(!memcmp(h_ptr(b + 8), "HELLO", 5));
    CHECK_EQ(h_sys(17, (uint64_t)fd, b, 5, (uint64_t)-1, 0, 0), -EINVAL);
    CHECK_EQ(h_sys(8, (uint64_t)fd, 0, SEEK_CUR, 0, 0, 0), big);
    CHECK_EQ(h_sys(8, (uint64_t)fd, (uint64_t)-10, SEEK_END, 0, 0, 0), big - 10);
    CHECK_EQ(h_sys(8, (uint64_t)fd, (uint64_t)-1, SEEK_SET, 0, 0, 0), -EINVAL);
    CHECK_EQ(h_sys(8, (uint64_t)fd, 0, 99, 0, 0, 0), -EINVAL);
    /* readv/writev across several buffers. */
    struct iovec *iov = h_ptr(h_alloc(2 * sizeof(struct iovec)));
    gva_t iov_at = (gva_t)((uint8_t *)iov - (uint8_t *)h_ptr(0));
    gva_t p1 = h_str("abc"), p2 = h_str("defgh");
    iov[0] = (struct iovec){(void *)(uintptr_t)p1, 3};
    iov[1] = (struct iovec){(void *)(uintptr_t)p2, 5};
    CHECK_EQ(h_sys(296, (uint64_t)fd, iov_at, 2, 10, 0, 0), 8); /* pwritev */
    memset(h_ptr(p1), 0, 3);
    memset(h_ptr(p2), 0, 5);
    CHECK_EQ(h_sys(295, (uint64_t)fd, iov_at, 2, 10, 0, 0), 8); /* preadv */
    CHECK(!memcmp(h_ptr(p1), "abc", 3) && !memcmp(h_ptr(p2), "defgh", 5));
    CHECK_EQ(h_sys(19, (uint64_t)fd, iov_at, 2000, 0, 0, 0), -EINVAL);
    h_release(m);
    /* ftruncate, fallocate, fsync. */
    CHECK_EQ(h_sys(77, (uint64_t)fd, 1000, 0, 0, 0, 0), 0);
    CHECK_EQ(g_fstat((int)fd, &st), 0);
    CHECK_EQ(st.st_size, 1000);
    CHECK_EQ(h_sys(285, (uint64_t)fd, 0, 0, 5000, 0, 0), 0);
    CHECK_EQ(g_fstat((int)fd, &st), 0);
    CHECK_EQ(st.st_size, 5000);
    CHECK_EQ(h_sys(285, (uint64_t)fd, 0, (uint64_t)-1, 10, 0, 0), -EINVAL);
    CHECK_EQ(h_sys(285, (uint64_t)fd, 0, 0, 0, 0, 0), -EINVAL);
    CHECK_EQ(h_sys(74, (uint64_t)fd, 0, 0, 0, 0, 0), 0);
    g_close((int)fd);

    /* O_APPEND, O_TRUNC, creat. */
    fd = g_open("/tmp/log", O_WRONLY | O_CREAT | O_APPEND, 0600);
    CHECK_EQ(g_write((int)fd, "one\n", 4), 4);
    CHECK_EQ(h_sys(8, (uint64_t)fd, 0, SEEK_SET, 0, 0, 0), 0);
    CHECK_EQ(g_write((int)fd, "two\n", 4), 4);
    g_close((int)fd);
    char buf[64] = {0};
    fd = g_open("/tmp/log", O_RDONLY, 0);
    CHECK_EQ(g_read((int)fd, buf, sizeof(buf)), 8);
    CHECK(!memcmp(buf, "one\ntwo\n", 8));
    CHECK_EQ(g_write((int)fd, "x", 1), -EBADF);
    g_close((int)fd);
    m = h_mark();
    fd = h_sys(85, h_str("/tmp/log"), 0600, 0, 0, 0, 0);
    h_release(m);
    CHECK(fd >= 0);
    CHECK_EQ(g_fstat((int)fd, &st), 0);
    CHECK_EQ(st.st_size, 0);
    CHECK_EQ(g_read((int)fd, buf, 1), -EBADF);
    g_close((int)fd);

    /* umask applies to new files. */
    CHECK_EQ(h_sys(95, 077, 0, 0, 0, 0, 0), 022);
    fd = g_open("/tmp/private", O_WRONLY | O_CREAT, 0666);
    CHECK_EQ(g_fstat((int)fd, &st), 0);
    CHECK_EQ(st.st_mode & 0777, 0600);
    g_close((int)fd);
    CHECK_EQ(h_sys(95, 022, 0, 0, 0, 0, 0), 077);

    /* An unlinked file stays usable while open. */
    fd = g_open("/tmp/gone", O_RDWR | O_CREAT, 0600);
    CHECK_EQ(g_write((int)fd, "still here", 10), 10);
    CHECK_EQ(g_unlink("/tmp/gone"), 0);
    CHECK_EQ(g_stat("/tmp/gone", &st), -ENOENT);
    CHECK_EQ(h_sys(8, (uint64_t)fd, 0, SEEK_SET, 0, 0, 0), 0);
    CHECK_EQ(g_read((int)fd, buf, 10), 10);
    CHECK(!memcmp(buf, "still here", 10));
    g_close((int)fd);

    /* Renames, hard links, chmod, times. */
    CHECK_EQ(g_rename("/sandbox/data.bin", "/tmp/moved.bin"), 0);
    CHECK_EQ(g_stat("/sandbox/data.bin", &st), -ENOENT);
    CHECK_EQ(g_stat("/tmp/moved.bin", &st), 0);
    CHECK_EQ(st.st_size, 5000);
    m = h_mark();
    CHECK_EQ(h_sys(86, h_str("/tmp/moved.bin"), h_str("/tmp/hard.bin"), 0, 0, 0, 0), 0);
    CHECK_EQ(g_stat("/tmp/hard.bin", &st), 0);
    CHECK_EQ(st.st_nlink, 2);
    CHECK_EQ(h_sys(90, h_str("/tmp/hard.bin"), 0400, 0, 0, 0, 0), 0);
    CHECK_EQ(g_stat("/tmp/moved.bin", &st), 0);
    CHECK_EQ(st.st_mode & 07777, 0400);
    struct timespec *ts = h_ptr(h_alloc(2 * sizeof(struct timespec)));
    ts[0] = (struct timespec){1000, 5};
    ts[1] = (struct timespec){2000, 7};
    CHECK_EQ(h_sys(280, (uint64_t)AT_FDCWD, h_str("/tmp/moved.bin"),
                   (gva_t)((uint8_t *)ts - (uint8_t *)h_ptr(0)), 0, 0, 0),
             0);
    CHECK_EQ(g_stat("/tmp/hard.bin", &st), 0);
    CHECK_EQ(st.st_mtim.tv_sec, 2000);
    CHECK_EQ(st.st_mtim.tv_nsec, 7);
    CHECK_EQ(st.st_atim.tv_sec, 1000);
    /* chown: to the sandbox user (or -1) accepted, to anyone else EPERM */
    CHECK_EQ(h_sys(92, h_str("/tmp/moved.bin"), 1000, 1000, 0, 0, 0), 0);
    CHECK_EQ(h_sys(92, h_str("/tmp/moved.bin"), (uint64_t)-1, (uint64_t)-1, 0, 0, 0), 0);
    CHECK_EQ(h_sys(92, h_str("/tmp/moved.bin"), 0, 0, 0, 0, 0), -EPERM);
    CHECK_EQ(h_sys(92, h_str("/tmp/moved.bin"), 1000, 0, 0, 0, 0), -EPERM);
    CHECK_EQ(h_sys(316, (uint64_t)AT_FDCWD, h_str("/tmp/log"), (uint64_t)AT_FDCWD,
                   h_str("/tmp/moved.bin"), RENAME_NOREPLACE, 0),
             -EEXIST);
    CHECK_EQ(h_sys(82, h_str("/tmp/log"), h_str("/tmp/moved.bin"), 0, 0, 0, 0), 0);
    CHECK_EQ(g_stat("/tmp/moved.bin", &st), 0);
    CHECK_EQ(st.st_size, 0);
    CHECK_EQ(g_stat("/tmp/hard.bin", &st), 0);
    CHECK_EQ(st.st_nlink, 1);
    h_release(m);

    /* statx of a layer file. */
    m = h_mark();
    gva_t sx = h_alloc(256);
    CHECK_EQ(h_sys(332, (uint64_t)AT_FDCWD, h_str("/tmp/hard.bin"), 0, 0x7ff, sx, 0), 0);
    uint64_t sx_size;
    memcpy(&sx_size, (uint8_t *)h_ptr(sx) + 40, 8);
    CHECK_EQ(sx_size, 5000);
    h_release(m);
    free(data);
    free(back);
}

void test_layer_dirs(void) {
    struct stat st;
    CHECK_EQ(g_mkdir("/sandbox/d", 0755), 0);
    CHECK_EQ(g_mkdir("/sandbox/d", 0755), -EEXIST);
    CHECK_EQ(g_mkdir("/sandbox/nope/d", 0755), -ENOENT);
    CHECK_EQ(g_mkdir("/sandbox/d/sub/", 0755), 0);
    char name[64];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof(name), "/sandbox/d/file-with-a-longish-name-%03d", i);
        int64_t fd = g_open(name, O_WRONLY | O_CREAT, 0644);
        CHECK(fd >= 0);
        g_close((int)fd);
    }
    static struct h_dirent ents[400];
    int64_t dfd = g_open("/sandbox/d", O_RDONLY | O_DIRECTORY, 0);
    CHECK(dfd >= 0);
    int64_t n = g_list((int)dfd, 200, ents, 400); /* a few entries per call */
    CHECK_EQ(n, 303);
    CHECK(h_find(ents, n, ".") >= 0 && h_find(ents, n, "..") >= 0);
    int sub = h_find(ents, n, "sub");
    CHECK(sub >= 0 && ents[sub].type == DT_DIR);
    CHECK_EQ(g_fstatat(AT_FDCWD, "/sandbox/d/sub", &st, 0), 0);
    CHECK(sub >= 0 && ents[sub].ino == st.st_ino);
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof(name), "file-with-a-longish-name-%03d", i);
        int k = h_find(ents, n, name);
        CHECK(k >= 0 && ents[k].type == DT_REG);
    }
    /* Rewind, and a buffer too small for the first entry. */
    CHECK_EQ(h_sys(8, (uint64_t)dfd, 0, SEEK_SET, 0, 0, 0), 0);
    gva_t m = h_mark();
    gva_t tiny = h_alloc(16);
    CHECK_EQ(h_sys(217, (uint64_t)dfd, tiny, 16, 0, 0, 0), -EINVAL);
    CHECK_EQ(h_sys(217, (uint64_t)dfd, 0, 4096, 0, 0, 0), -EFAULT);
    h_release(m);
    CHECK_EQ(g_list((int)dfd, 65536, ents, 400), 303);
    CHECK_EQ(g_read((int)dfd, name, 4), -EISDIR);

    /* *at calls relative to a directory descriptor. */
    int64_t fd = g_openat((int)dfd, "sub/inner", O_WRONLY | O_CREAT, 0644);
    CHECK(fd >= 0);
    CHECK_EQ(g_fstatat((int)dfd, "sub/inner", &st, 0), 0);
    CHECK_EQ(g_fstatat((int)fd, "", &st, AT_EMPTY_PATH), 0);
    CHECK(S_ISREG(st.st_mode));
    CHECK_EQ(g_fstatat((int)fd, "", &st, 0), -ENOENT);
    CHECK_EQ(g_openat((int)fd, "x", O_RDONLY, 0), -ENOTDIR);
    CHECK_EQ(g_openat(12345, "x", O_RDONLY, 0), -EBADF);
    CHECK(g_openat(12345, "/tmp", O_RDONLY, 0) >= 0); /* absolute: dirfd ignored */
    g_close((int)fd);
    m = h_mark();
    CHECK_EQ(h_sys(263, (uint64_t)dfd, h_str("sub"), AT_REMOVEDIR, 0, 0, 0), -ENOTEMPTY);
    CHECK_EQ(h_sys(263, (uint64_t)dfd, h_str("sub/inner"), AT_REMOVEDIR, 0, 0, 0), -ENOTDIR);
    CHECK_EQ(h_sys(263, (uint64_t)dfd, h_str("sub/inner"), 0, 0, 0, 0), 0);
    CHECK_EQ(h_sys(263, (uint64_t)dfd, h_str("sub"), 0, 0, 0, 0), -EISDIR);
    CHECK_EQ(h_sys(263, (uint64_t)dfd, h_str("sub"), 0x1000, 0, 0, 0), -EINVAL);
    CHECK_EQ(h_sys(263, (uint64_t)dfd, h_str("sub"), AT_REMOVEDIR, 0, 0, 0), 0);
    CHECK_EQ(h_sys(258, (uint64_t)dfd, h_str("made"), 0700, 0, 0, 0), 0);          /* mkdirat */
    CHECK_EQ(h_sys(266, h_str("made"), (uint64_t)dfd, h_str("link"), 0, 0, 0), 0); /* symlinkat */
    h_release(m);
    CHECK_EQ(g_stat("/sandbox/d/link", &st), 0);
    CHECK(S_ISDIR(st.st_mode));
    CHECK_EQ(g_fstatat((int)dfd, "link", &st, AT_SYMLINK_NOFOLLOW), 0);
    CHECK(S_ISLNK(st.st_mode));
    g_close((int)dfd);

    /* Directory rules. */
    CHECK_EQ(g_open("/sandbox/d", O_WRONLY, 0), -EISDIR);
    CHECK_EQ(g_open("/sandbox/d/file-with-a-longish-name-000", O_RDONLY | O_DIRECTORY, 0),
             -ENOTDIR);
    CHECK_EQ(g_open("/sandbox/d/file-with-a-longish-name-000/", O_RDONLY, 0), -ENOTDIR);
    CHECK_EQ(g_rmdir("/sandbox/d"), -ENOTEMPTY);
    CHECK_EQ(g_rmdir("/sandbox/d/file-with-a-longish-name-000"), -ENOTDIR);
    CHECK_EQ(g_rename("/sandbox/d", "/sandbox/d/made/inside"), -EINVAL);
    CHECK_EQ(g_rename("/sandbox/d", "/tmp/d2"), 0);
    CHECK_EQ(g_stat("/tmp/d2/made", &st), 0);
    CHECK_EQ(g_rmdir("/tmp"), -EBUSY);
    CHECK_EQ(g_rmdir("/sandbox"), -EBUSY);
    CHECK_EQ(g_rename("/tmp", "/sandbox/t"), -EBUSY);
    gva_t m2 = h_mark();
    CHECK_EQ(h_sys(86, h_str("/tmp/d2"), h_str("/tmp/d3"), 0, 0, 0, 0), -EPERM);
    h_release(m2);
    struct statfs sf;
    m2 = h_mark();
    gva_t out = h_alloc(sizeof(sf));
    CHECK_EQ(h_sys(137, h_str("/tmp"), out, 0, 0, 0, 0), 0);
    memcpy(&sf, h_ptr(out), sizeof(sf));
    CHECK_EQ(sf.f_type, 0x01021994);
    CHECK(sf.f_blocks > 0);
    CHECK_EQ(h_sys(137, h_str(exe_path), out, 0, 0, 0, 0), 0);
    memcpy(&sf, h_ptr(out), sizeof(sf));
    CHECK(sf.f_flags & ST_RDONLY);
    CHECK_EQ(h_sys(137, h_str("/etc/shadow"), out, 0, 0, 0, 0), -ENOENT);
    h_release(m2);
}

/* -------------------------------------------------------- branches */

void test_branch(void) {
    int64_t fd = g_open("/tmp/shared", O_RDWR | O_CREAT, 0644);
    CHECK_EQ(g_write((int)fd, "parent", 6), 6);
    struct fs_view *child = fs_view_clone(h_sb.view);
    struct fdt child_fdt;
    CHECK_EQ(fdt_clone(&child_fdt, &h_sb.fdt, child, NULL), 0);
    /* The parent changes; the child keeps what it had. */
    CHECK_EQ(h_sys(18, (uint64_t)fd, (gva_t)h_str("PARENT"), 6, 0, 0, 0), 6);
    CHECK_EQ(g_unlink("/tmp/shared"), 0);
    struct fs_view *pv = h_sb.view;
    struct fdt pfdt = h_sb.fdt;
    h_sb.view = child;
    h_sb.fdt = child_fdt;
    char buf[16] = {0};
    CHECK_EQ(h_sys(8, (uint64_t)fd, 0, SEEK_SET, 0, 0, 0), 0);
    CHECK_EQ(g_read((int)fd, buf, 16), 6);
    CHECK(!memcmp(buf, "parent", 6));
    struct stat st;
    CHECK_EQ(g_stat("/tmp/shared", &st), 0);
    fdt_destroy(&h_sb.fdt);
    fs_view_free(child);
    h_sb.view = pv;
    h_sb.fdt = pfdt;
    g_close((int)fd);
}

/* -------------------------------------------------------- edge cases */

void test_edges(void) {
    struct stat st;
    char buf[PATH_MAX];
    CHECK_EQ(g_mkdir("/tmp/sub", 0755), 0);
    CHECK_EQ(g_mkdir("/tmp/sub/inner", 0755), 0);
    /* "." and ".." as the last component of a removal or rename. */
    CHECK_EQ(g_rmdir("/tmp/sub/inner/."), -EINVAL);
    CHECK_EQ(g_rmdir("/tmp/sub/inner/.."), -ENOTEMPTY);
    CHECK_EQ(g_unlink("/tmp/sub/inner/."), -EISDIR);
    CHECK_EQ(g_rename("/tmp/sub/inner/.", "/tmp/moved"), -EBUSY);
    CHECK_EQ(g_rename("/tmp/sub/inner", "/tmp/sub/."), -EBUSY);
    CHECK_EQ(g_stat("/tmp/sub/inner", &st), 0);
    CHECK_EQ(g_mkdir("/tmp/sub/inner/.", 0755), -EEXIST);
    CHECK_EQ(g_mkdir("/tmp/.", 0755), -EEXIST);
    /* A trailing slash names a directory. */
    CHECK_EQ(g_open("/tmp/newfile/", O_WRONLY | O_CREAT, 0644), -EISDIR);
    CHECK_EQ(g_lstat("/tmp/newfile", &st), -ENOENT);
    CHECK_EQ(g_open("/tmp/sub/", O_WRONLY | O_CREAT, 0644), -EISDIR);
    CHECK_EQ(g_open("/tmp/sub", O_RDONLY | O_CREAT, 0644), -EISDIR);
    CHECK_EQ(g_open("/usr", O_RDONLY | O_CREAT, 0644), -EISDIR);
    CHECK_EQ(g_open("/", O_RDONLY | O_CREAT, 0644), -EISDIR);
    int64_t pathfd = g_open("/tmp/sub", O_PATH | O_DIRECTORY, 0);
    CHECK(pathfd >= 0);
    gva_t pm = h_mark();
    CHECK_EQ(h_sys(217, (uint64_t)pathfd, h_alloc(4096), 4096, 0, 0, 0), -EBADF);
    h_release(pm);
    CHECK_EQ(h_sys(81, (uint64_t)pathfd, 0, 0, 0, 0, 0), 0); /* fchdir */
    CHECK_EQ(g_stat("inner", &st), 0);
    CHECK_EQ(g_chdir("/sandbox"), 0);
    g_close((int)pathfd);
    int64_t fd = g_open("/tmp/file", O_WRONLY | O_CREAT, 0644);
    CHECK(fd >= 0);
    CHECK_EQ(g_stat("/tmp/file/", &st), -ENOTDIR);
    CHECK_EQ(g_mkdir("/tmp/file/", 0755), -EEXIST);
    CHECK_EQ(g_unlink("/tmp/file/"), -ENOTDIR);
    CHECK_EQ(g_symlink("file", "/tmp/lf"), 0);
    CHECK_EQ(g_symlink("sub", "/tmp/ld"), 0);
    CHECK_EQ(g_stat("/tmp/lf/", &st), -ENOTDIR); /* a trailing slash applies to the target */
    CHECK_EQ(g_stat("/tmp/ld/", &st), 0);
    CHECK(S_ISDIR(st.st_mode));
    CHECK_EQ(g_open("/tmp/lf/", O_RDONLY, 0), -ENOTDIR);
    CHECK_EQ(g_rename("/tmp/file", "/tmp/renamed/"), -ENOTDIR);
    gva_t m = h_mark();
    CHECK_EQ(h_sys(217, (uint64_t)fd, h_alloc(4096), 4096, 0, 0, 0), -ENOTDIR);
    h_release(m);
    g_close((int)fd);
    /* Permission bits in the layer. */
    CHECK_EQ(g_access("/tmp/file", X_OK), -EACCES);
    CHECK_EQ(g_access("/tmp/sub", X_OK), 0);
    CHECK_EQ(g_access("/tmp/file", W_OK), 0);
    /* readlink truncates to the buffer. */
    CHECK_EQ(g_symlink("abcdefgh", "/tmp/ln"), 0);
    CHECK_EQ(g_readlink("/tmp/ln", buf, 3), 3);
    CHECK(!memcmp(buf, "abc", 3));
    CHECK_EQ(g_readlink("/tmp/ln", buf, 0), -EINVAL);
    /* /proc/self/fd links name open descriptors only. */
    fd = g_open("/tmp/file", O_RDONLY, 0);
    snprintf(buf, sizeof(buf), "/proc/self/fd/%d", (int)fd);
    char target[PATH_MAX];
    CHECK_EQ(g_readlink(buf, target, sizeof(target)), 9);
    CHECK(!strcmp(target, "/tmp/file"));
    g_close((int)fd);
    CHECK_EQ(g_readlink(buf, target, sizeof(target)), -ENOENT);
    int64_t zero = g_open("/dev/null", O_RDONLY, 0);
    CHECK_EQ(zero, 0);
    CHECK_EQ(g_lstat("/proc/self/fd/0", &st), 0);
    CHECK(S_ISLNK(st.st_mode));
    CHECK_EQ(g_lstat("/proc/self/fd/abc", &st), -ENOENT);
    CHECK_EQ(g_lstat("/proc/self/fd/00", &st), -ENOENT);
    CHECK_EQ(g_lstat("/proc/self/fd/0x", &st), -ENOENT);
    CHECK_EQ(g_readlink("/proc/self/fd/abc", target, sizeof(target)), -ENOENT);
    CHECK_EQ(g_lstat("/proc/self/fd/12345", &st), -ENOENT);
    g_close((int)zero);
    /* O_PATH descriptors do not read. */
    fd = g_open("/tmp/file", O_PATH, 0);
    CHECK(fd >= 0);
    CHECK_EQ(g_read((int)fd, buf, 1), -EBADF);
    CHECK_EQ(g_fstat((int)fd, &st), 0);
    g_close((int)fd);
    /* linkat flags. */
    m = h_mark();
    CHECK_EQ(h_sys(265, (uint64_t)AT_FDCWD, h_str("/tmp/file"), (uint64_t)AT_FDCWD,
                   h_str("/tmp/f2"), 0x8000, 0),
             -EINVAL);
    CHECK_EQ(h_sys(265, (uint64_t)AT_FDCWD, h_str("/tmp/ln"), (uint64_t)AT_FDCWD, h_str("/tmp/f2"),
                   0, 0),
             0);
    h_release(m);
    CHECK_EQ(g_lstat("/tmp/f2", &st), 0);
    CHECK(S_ISLNK(st.st_mode));
}

/* ------------------------------------------ anonymous files, copies */

void test_anon_and_copies(void) {
    struct stat st;
    char buf[64];
    /* O_TMPFILE: unnamed, writable, only in the layer. */
    int64_t fd = g_open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    CHECK_EQ(g_write((int)fd, "anon", 4), 4);
    CHECK_EQ(g_fstat((int)fd, &st), 0);
    CHECK_EQ(st.st_nlink, 0);
    CHECK_EQ(st.st_size, 4);
    CHECK_EQ(st.st_mode, S_IFREG | 0600);
    CHECK_EQ(h_sys(72, (uint64_t)fd, F_GETFD, 0, 0, 0, 0), FD_CLOEXEC);
    g_close((int)fd);
    static struct h_dirent ents[8];
    CHECK_EQ(g_list_path("/tmp", ents, 8), 2); /* leaves no name behind */
    CHECK_EQ(g_open("/tmp", O_TMPFILE | O_RDONLY, 0600), -EINVAL);
    CHECK_EQ(g_open("/tmp", O_TMPFILE | O_RDWR | O_CREAT, 0600), -EINVAL);
    CHECK_EQ(g_open("/usr", O_TMPFILE | O_RDWR, 0600), -EROFS);
    CHECK_EQ(g_open("/tmp/none", O_TMPFILE | O_RDWR, 0600), -ENOENT);
    CHECK_EQ(g_open("/etc/shadow", O_TMPFILE | O_RDWR, 0600), -ENOENT);

    /* memfd_create. */
    gva_t m = h_mark();
    int64_t mfd = h_sys(319, h_str("buffer"), 1 /* MFD_CLOEXEC */, 0, 0, 0, 0);
    CHECK(mfd >= 0);
    CHECK_EQ(h_sys(72, (uint64_t)mfd, F_GETFD, 0, 0, 0, 0), FD_CLOEXEC);
    CHECK_EQ(g_write((int)mfd, "0123456789", 10), 10);
    CHECK_EQ(g_fstat((int)mfd, &st), 0);
    CHECK(S_ISREG(st.st_mode));
    CHECK_EQ(st.st_size, 10);
    CHECK_EQ(h_sys(77, (uint64_t)mfd, 4096, 0, 0, 0, 0), 0);
    char name[300];
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = 0;
    CHECK_EQ(h_sys(319, h_str(name), 0, 0, 0, 0, 0), -EINVAL);
    CHECK_EQ(h_sys(319, h_str("x"), 0x100, 0, 0, 0, 0), -EINVAL);
    CHECK_EQ(h_sys(319, 0, 0, 0, 0, 0, 0), -EFAULT);
    snprintf(buf, sizeof(buf), "/proc/self/fd/%d", (int)mfd);
    char target[PATH_MAX];
    CHECK(g_readlink(buf, target, sizeof(target)) > 0);
    CHECK(!strcmp(target, "/memfd:buffer (deleted)"));

    /* sendfile: host file -> layer file, with and without an offset. */
    int64_t in = g_open(exe_path, O_RDONLY, 0);
    int64_t out = g_open("/sandbox/copy", O_WRONLY | O_CREAT | O_TRUNC, 0755);
    CHECK(in >= 0 && out >= 0);
    struct stat hst;
    CHECK_EQ(stat(exe_path, &hst), 0);
    CHECK_EQ(h_sys(40, (uint64_t)out, (uint64_t)in, 0, 1ULL << 40, 0, 0), hst.st_size);
    CHECK_EQ(h_sys(8, (uint64_t)in, 0, SEEK_CUR, 0, 0, 0), hst.st_size);
    CHECK_EQ(h_sys(40, (uint64_t)out, (uint64_t)in, 0, 100, 0, 0), 0);
    CHECK_EQ(g_stat("/sandbox/copy", &st), 0);
    CHECK_EQ(st.st_size, hst.st_size);
    gva_t offp = h_alloc(8);
    *(int64_t *)h_ptr(offp) = 1;
    CHECK_EQ(h_sys(40, (uint64_t)out, (uint64_t)in, offp, 3, 0, 0), 3);
    CHECK_EQ(*(int64_t *)h_ptr(offp), 4);
    CHECK_EQ(h_sys(8, (uint64_t)in, 0, SEEK_CUR, 0, 0, 0), hst.st_size);
    CHECK_EQ(h_sys(40, (uint64_t)in, (uint64_t)out, 0, 3, 0, 0), -EBADF);
    g_close((int)out);
    size_t hlen;
    char *host = read_host(exe_path, &hlen);
    char *got = malloc(hlen + 3);
    int64_t back = g_open("/sandbox/copy", O_RDONLY, 0);
    CHECK_EQ(g_read((int)back, got, hlen + 3), hlen + 3);
    CHECK(!memcmp(got, host, hlen) && !memcmp(got + hlen, "ELF", 3));
    g_close((int)back);
    free(got);
    free(host);
    /* copy_file_range: layer to layer with both offsets; overlap; flags. */
    *(int64_t *)h_ptr(offp) = 2;
    gva_t offq = h_alloc(8);
    *(int64_t *)h_ptr(offq) = 0;
    out = g_open("/tmp/cfr", O_RDWR | O_CREAT, 0644);
    CHECK_EQ(h_sys(326, (uint64_t)mfd, offp, (uint64_t)out, offq, 5, 0), 5);
    CHECK_EQ(*(int64_t *)h_ptr(offp), 7);
    CHECK_EQ(*(int64_t *)h_ptr(offq), 5);
    CHECK_EQ(h_sys(17, (uint64_t)out, offq, 5, 0, 0, 0), 5);
    CHECK(!memcmp(h_ptr(offq), "23456", 5));
    CHECK_EQ(h_sys(326, (uint64_t)mfd, 0, (uint64_t)out, 0, 5, 1), -EINVAL);
    *(int64_t *)h_ptr(offp) = 0;
    *(int64_t *)h_ptr(offq) = 2;
    CHECK_EQ(h_sys(326, (uint64_t)out, offp, (uint64_t)out, offq, 4, 0), -EINVAL);
    CHECK_EQ(h_sys(326, (uint64_t)in, 0, (uint64_t)out, 0, 5, 0), 0); /* at EOF */
    int64_t dir = g_open("/tmp", O_RDONLY | O_DIRECTORY, 0);
    CHECK_EQ(h_sys(326, (uint64_t)dir, 0, (uint64_t)out, 0, 5, 0), -EISDIR);
    g_close((int)dir);
    g_close((int)out);
    g_close((int)in);
    g_close((int)mfd);
    h_release(m);
    CHECK_EQ(fdt_count(&h_sb.fdt), 0);
}

/* ---------------------------------------------- extended attributes */

void test_xattrs(void) {
    int64_t fd = g_open("/tmp/xa", O_RDWR | O_CREAT, 0644);
    gva_t m = h_mark();
    gva_t name = h_str("user.test"), val = h_alloc(64), f = h_str("/tmp/xa"),
          host = h_str(exe_path);
    gva_t hidden = h_str("/etc/shadow");
    CHECK_EQ(h_sys(194, f, val, 64, 0, 0, 0), 0);            /* listxattr */
    CHECK_EQ(h_sys(195, host, val, 64, 0, 0, 0), 0);         /* llistxattr */
    CHECK_EQ(h_sys(196, (uint64_t)fd, val, 64, 0, 0, 0), 0); /* flistxattr */
    CHECK_EQ(h_sys(194, hidden, val, 64, 0, 0, 0), -ENOENT);
    CHECK_EQ(h_sys(196, 999, val, 64, 0, 0, 0), -EBADF);
    CHECK_EQ(h_sys(191, f, name, val, 64, 0, 0), -ENODATA); /* getxattr */
    CHECK_EQ(h_sys(192, host, name, val, 64, 0, 0), -ENODATA);
    CHECK_EQ(h_sys(193, (uint64_t)fd, name, val, 64, 0, 0), -ENODATA);
    CHECK_EQ(h_sys(191, hidden, name, val, 64, 0, 0), -ENOENT);
    CHECK_EQ(h_sys(191, f, h_str(""), val, 64, 0, 0), -ERANGE);
    CHECK_EQ(h_sys(188, host, name, val, 4, 0, 0), -EROFS); /* setxattr */
    CHECK_EQ(h_sys(188, f, name, val, 4, 0, 0), -EOPNOTSUPP);
    CHECK_EQ(h_sys(188, f, name, val, 4, 8, 0), -EINVAL);
    CHECK_EQ(h_sys(188, f, name, val, 1 << 20, 0, 0), -E2BIG);
    CHECK_EQ(h_sys(188, hidden, name, val, 4, 0, 0), -ENOENT);
    CHECK_EQ(h_sys(197, host, name, 0, 0, 0, 0), -EROFS); /* removexattr */
    CHECK_EQ(h_sys(199, (uint64_t)fd, name, 0, 0, 0, 0), -ENODATA);
    h_release(m);
    g_close((int)fd);
}
