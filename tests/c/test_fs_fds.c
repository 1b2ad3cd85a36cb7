/* test_fs_view cases for descriptors: devices, pipes, fd management,
 * readiness (poll/select), the working directory and argument checks. */
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

#include "fs_harness.h"
#include "fs/fs_memfs.h"
#include "fs_tests.h"
#include "fs/fs_view.h"

/* ------------------------------------------------------------ devices */

void test_devices(void) {
    const uint64_t big = 1ULL << 20;
    uint8_t *buf = malloc(big);
    int64_t fd = g_open("/dev/null", O_RDWR, 0);
    CHECK(fd >= 0);
    CHECK_EQ(g_read((int)fd, buf, 100), 0);
    CHECK_EQ(g_write((int)fd, buf, big), big);
    struct stat st;
    CHECK_EQ(g_fstat((int)fd, &st), 0);
    CHECK(S_ISCHR(st.st_mode));
    CHECK_EQ(st.st_rdev, makedev(1, 3));
    g_close((int)fd);
    fd = g_open("/dev/zero", O_RDONLY, 0);
    memset(buf, 1, big);
    CHECK_EQ(g_read((int)fd, buf, big), big);
    bool zero = true;
    for (uint64_t i = 0; i < big; i++)
        zero &= buf[i] == 0;
    CHECK(zero);
    g_close((int)fd);
    fd = g_open("/dev/full", O_WRONLY, 0);
    CHECK_EQ(g_write((int)fd, "x", 1), -ENOSPC);
    g_close((int)fd);
    const char *rnd[] = {"/dev/urandom", "/dev/random"};
    for (size_t k = 0; k < 2; k++) {
        fd = g_open(rnd[k], O_RDONLY | O_CLOEXEC, 0);
        CHECK(fd >= 0);
        memset(buf, 0, big);
        CHECK_EQ(g_read((int)fd, buf, big), big);
        size_t zeros = 0;
        for (uint64_t i = 0; i < big; i++)
            zeros += buf[i] == 0;
        CHECK(zeros < big / 128);
        g_close((int)fd);
    }
    CHECK_EQ(g_stat("/dev/urandom", &st), 0);
    CHECK_EQ(st.st_rdev, makedev(1, 9));
    CHECK_EQ(g_access("/dev/null", W_OK), 0);
    CHECK_EQ(g_open("/dev/null", O_RDONLY | O_DIRECTORY, 0), -ENOTDIR);
    free(buf);
}

/* -------------------------------------------------------------- pipes */

void test_pipes(void) {
    gva_t m = h_mark();
    gva_t fds_at = h_alloc(8);
    CHECK_EQ(h_sys(293, fds_at, O_NONBLOCK | O_CLOEXEC, 0, 0, 0, 0), 0);
    int fds[2];
    memcpy(fds, h_ptr(fds_at), 8);
    CHECK(fds[0] >= 0 && fds[1] >= 0 && fds[0] != fds[1]);
    CHECK_EQ(h_sys(72, (uint64_t)fds[0], F_GETFD, 0, 0, 0, 0), FD_CLOEXEC);
    char buf[256];
    CHECK_EQ(g_read(fds[0], buf, 10), -EAGAIN);
    CHECK_EQ(g_write(fds[0], "x", 1), -EBADF);
    CHECK_EQ(g_write(fds[1], "hello", 5), 5);
    gva_t nread = h_alloc(4);
    CHECK_EQ(h_sys(16, (uint64_t)fds[0], FIONREAD, nread, 0, 0, 0), 0);
    CHECK_EQ(*(int *)h_ptr(nread), 5);
    CHECK_EQ(g_read(fds[0], buf, 3), 3);
    CHECK_EQ(g_read(fds[0], buf, 10), 2);
    CHECK(!memcmp(buf, "lo", 2));
    /* Fill it: a non-blocking writer gets EAGAIN once full. */
    static uint8_t chunk[1 << 17];
    CHECK_EQ(g_write(fds[1], chunk, sizeof(chunk)), 65536);
    CHECK_EQ(g_write(fds[1], chunk, 1), -EAGAIN);
    struct pollfd *p = h_ptr(h_alloc(2 * sizeof(struct pollfd)));
    gva_t p_at = (gva_t)((uint8_t *)p - (uint8_t *)h_ptr(0));
    p[0] = (struct pollfd){fds[0], POLLIN, 0};
    p[1] = (struct pollfd){fds[1], POLLOUT, 0};
    CHECK_EQ(h_sys(7, p_at, 2, 0, 0, 0, 0), 1);
    CHECK_EQ(p[0].revents, POLLIN);
    CHECK_EQ(p[1].revents, 0);
    CHECK_EQ(g_read(fds[0], chunk, sizeof(chunk)), 65536);
    /* Empty pipe, blocking mode: waits (here the wait is interrupted). */
    CHECK_EQ(h_sys(72, (uint64_t)fds[0], F_SETFL, 0, 0, 0, 0), 0);
    CHECK_EQ(h_sys(72, (uint64_t)fds[0], F_GETFL, 0, 0, 0, 0) & O_NONBLOCK, 0);
    int calls = h_wait_calls;
    CHECK_EQ(g_read(fds[0], buf, 10), -EINTR);
    CHECK_EQ(h_wait_calls, calls + 1);
    /* poll with a timeout on an empty pipe: times out. */
    p[1].fd = -1;
    CHECK_EQ(h_sys(7, p_at, 2, 50, 0, 0, 0), 0);
    CHECK_EQ(h_wait_last_timeout > 0 && h_wait_last_timeout <= 50000000, 1);
    CHECK_EQ(h_sys(7, p_at, 2, (uint64_t)-1, 0, 0, 0), -EINTR);
    /* Writer gone: EOF and POLLHUP; reader gone: EPIPE and SIGPIPE. */
    CHECK_EQ(g_close(fds[1]), 0);
    CHECK_EQ(g_read(fds[0], buf, 10), 0);
    CHECK_EQ(h_sys(7, p_at, 1, 0, 0, 0, 0), 1);
    CHECK(p[0].revents & POLLHUP);
    g_close(fds[0]);
    CHECK_EQ(h_sys(22, fds_at, 0, 0, 0, 0, 0), 0);
    memcpy(fds, h_ptr(fds_at), 8);
    g_close(fds[0]);
    h_raised = 0;
    CHECK_EQ(g_write(fds[1], "x", 1), -EPIPE);
    CHECK(h_raised & (1ULL << SIGPIPE));
    struct stat st;
    CHECK_EQ(g_fstat(fds[1], &st), 0);
    CHECK(S_ISFIFO(st.st_mode));
    CHECK(st.st_ino < (1ULL << 32)); /* no host addresses */
    CHECK_EQ(h_sys(8, (uint64_t)fds[1], 0, SEEK_SET, 0, 0, 0), -ESPIPE);
    g_close(fds[1]);
    CHECK_EQ(h_sys(293, fds_at, 0x40000000, 0, 0, 0, 0), -EINVAL);
    CHECK_EQ(h_sys(22, 8, 0, 0, 0, 0, 0), -EFAULT);
    h_release(m);
    CHECK_EQ(fdt_count(&h_sb.fdt), 0);
}

/* -------------------------------------------------------- descriptors */

void test_descriptors(void) {
    int64_t fd = g_open("/tmp/fdtest", O_RDWR | O_CREAT, 0644);
    CHECK_EQ(fd, 0);
    CHECK_EQ(g_write((int)fd, "0123456789", 10), 10);
    int64_t d = h_sys(32, (uint64_t)fd, 0, 0, 0, 0, 0);
    CHECK_EQ(d, 1);
    /* dup'ed descriptors share the offset. */
    CHECK_EQ(h_sys(8, (uint64_t)d, 2, SEEK_SET, 0, 0, 0), 2);
    CHECK_EQ(h_sys(8, (uint64_t)fd, 0, SEEK_CUR, 0, 0, 0), 2);
    CHECK_EQ(h_sys(33, (uint64_t)fd, 10, 0, 0, 0, 0), 10);
    CHECK_EQ(h_sys(33, 10, 10, 0, 0, 0, 0), 10);
    CHECK_EQ(h_sys(33, 77, 77, 0, 0, 0, 0), -EBADF);
    CHECK_EQ(h_sys(292, 10, 10, 0, 0, 0, 0), -EINVAL);
    CHECK_EQ(h_sys(292, 10, 11, O_CLOEXEC, 0, 0, 0), 11);
    CHECK_EQ(h_sys(72, 11, F_GETFD, 0, 0, 0, 0), FD_CLOEXEC);
    CHECK_EQ(h_sys(72, 11, F_SETFD, 0, 0, 0, 0), 0);
    CHECK_EQ(h_sys(72, 11, F_GETFD, 0, 0, 0, 0), 0);
    CHECK_EQ(h_sys(16, 11, FIOCLEX, 0, 0, 0, 0), 0);
    CHECK_EQ(h_sys(72, 11, F_GETFD, 0, 0, 0, 0), FD_CLOEXEC);
    CHECK_EQ(h_sys(16, 11, FIONCLEX, 0, 0, 0, 0), 0);
    CHECK_EQ(h_sys(72, 11, F_GETFD, 0, 0, 0, 0), 0);
    CHECK_EQ(h_sys(72, (uint64_t)fd, F_DUPFD, 20, 0, 0, 0), 20);
    CHECK_EQ(h_sys(72, (uint64_t)fd, F_DUPFD_CLOEXEC, 20, 0, 0, 0), 21);
    CHECK_EQ(h_sys(72, 21, F_GETFD, 0, 0, 0, 0), FD_CLOEXEC);
    CHECK_EQ(h_sys(72, (uint64_t)fd, F_GETFL, 0, 0, 0, 0) & O_ACCMODE, O_RDWR);
    CHECK_EQ(h_sys(72, (uint64_t)fd, F_SETFL, O_APPEND, 0, 0, 0), 0);
    CHECK(h_sys(72, (uint64_t)fd, F_GETFL, 0, 0, 0, 0) & O_APPEND);
    CHECK_EQ(h_sys(72, (uint64_t)fd, 1033 /* F_ADD_SEALS */, 1, 0, 0, 0), -EINVAL);
    gva_t m = h_mark();
    gva_t lk = h_alloc(32);
    memset(h_ptr(lk), 0, 32);
    *(short *)h_ptr(lk) = F_WRLCK;
    CHECK_EQ(h_sys(72, (uint64_t)fd, F_SETLK, lk, 0, 0, 0), 0);
    CHECK_EQ(h_sys(72, (uint64_t)fd, F_GETLK, lk, 0, 0, 0), 0);
    CHECK_EQ(*(short *)h_ptr(lk), F_UNLCK);
    gva_t ws = h_alloc(16);
    CHECK_EQ(h_sys(16, (uint64_t)fd, TCGETS, ws, 0, 0, 0), -ENOTTY);
    CHECK_EQ(h_sys(16, (uint64_t)fd, TIOCGWINSZ, ws, 0, 0, 0), -ENOTTY);
    h_release(m);
    CHECK_EQ(h_sys(73, (uint64_t)fd, 2, 0, 0, 0, 0), 0);
    CHECK_EQ(h_sys(73, 999, 2, 0, 0, 0, 0), -EBADF);
    CHECK_EQ(h_sys(221, (uint64_t)fd, 0, 0, 0, 0, 0), 0);
    CHECK_EQ(h_sys(3, 999, 0, 0, 0, 0, 0), -EBADF);
    CHECK_EQ(h_sys(3, (uint64_t)-1, 0, 0, 0, 0, 0), -EBADF);
    CHECK_EQ(g_read(999, NULL, 0), -EBADF);
    CHECK_EQ(h_sys(0, (uint64_t)fd, 8, 100, 0, 0, 0), -EFAULT);               /* below the window */
    CHECK_EQ(h_sys(1, (uint64_t)fd, H_RAM_BYTES - 4, 100, 0, 0, 0), -EFAULT); /* past its end */
    /* close_range: CLOEXEC then close. */
    CHECK_EQ(h_sys(436, 20, 21, 4, 0, 0, 0), 0);
    CHECK_EQ(h_sys(72, 20, F_GETFD, 0, 0, 0, 0), FD_CLOEXEC);
    CHECK_EQ(h_sys(436, 5, ~0U, 0, 0, 0, 0), 0);
    CHECK_EQ(h_sys(72, 20, F_GETFD, 0, 0, 0, 0), -EBADF);
    CHECK_EQ(h_sys(436, 5, 4, 0, 0, 0, 0), -EINVAL);
    CHECK_EQ(fdt_count(&h_sb.fdt), 2);
    g_close(0);
    g_close(1);
}

/* ------------------------------------------------------- readiness */

void test_select(void) {
    int64_t f = g_open("/tmp/sel", O_RDWR | O_CREAT, 0644);
    gva_t m = h_mark();
    gva_t rd = h_alloc(128), wr = h_alloc(128), tv = h_alloc(16);
    memset(h_ptr(rd), 0, 128);
    memset(h_ptr(wr), 0, 128);
    ((uint8_t *)h_ptr(rd))[0] = 1 << f;
    ((uint8_t *)h_ptr(wr))[0] = 1 << f;
    memset(h_ptr(tv), 0, 16);
    CHECK_EQ(h_sys(23, (uint64_t)f + 1, rd, wr, 0, tv, 0), 2);
    CHECK_EQ(((uint8_t *)h_ptr(rd))[0], 1 << f);
    ((uint8_t *)h_ptr(rd))[0] = 1 << 5;
    CHECK_EQ(h_sys(23, 6, rd, 0, 0, tv, 0), -EBADF);
    /* pselect6/ppoll with timespecs. */
    struct timespec *ts = h_ptr(h_alloc(sizeof(*ts)));
    gva_t ts_at = (gva_t)((uint8_t *)ts - (uint8_t *)h_ptr(0));
    *ts = (struct timespec){0, 1000};
    ((uint8_t *)h_ptr(rd))[0] = 1 << f;
    CHECK_EQ(h_sys(270, (uint64_t)f + 1, rd, 0, 0, ts_at, 0), 1);
    *ts = (struct timespec){0, 2000000000};
    CHECK_EQ(h_sys(270, (uint64_t)f + 1, rd, 0, 0, ts_at, 0), -EINVAL);
    CHECK_EQ(h_sys(270, 1 << 20, rd, 0, 0, 0, 0), -EINVAL);
    struct pollfd *p = h_ptr(h_alloc(sizeof(*p)));
    gva_t p_at = (gva_t)((uint8_t *)p - (uint8_t *)h_ptr(0));
    *p = (struct pollfd){77, POLLIN, 0};
    *ts = (struct timespec){0, 0};
    CHECK_EQ(h_sys(271, p_at, 1, ts_at, 0, 8, 0), 1);
    CHECK_EQ(p->revents, POLLNVAL);
    /* Nothing to wait for: sleeps for the timeout. */
    int calls = h_wait_calls;
    CHECK_EQ(h_sys(7, 0, 0, 20, 0, 0, 0), 0);
    CHECK_EQ(h_wait_calls, calls + 1);
    CHECK_EQ(h_wait_last_fd, -1);
    CHECK_EQ(h_sys(7, 0, 0, (uint64_t)-1, 0, 0, 0), -EINTR);
    CHECK_EQ(h_sys(7, 8, 1, 0, 0, 0, 0), -EFAULT);
    h_release(m);
    g_close((int)f);
}

/* ------------------------------------------------ cwd and arguments */

void test_cwd_and_arguments(void) {
    gva_t m = h_mark();
    gva_t buf = h_alloc(PATH_MAX);
    CHECK_EQ(h_sys(79, buf, PATH_MAX, 0, 0, 0, 0), 9);
    CHECK(!strcmp(h_ptr(buf), "/sandbox"));
    CHECK_EQ(h_sys(79, buf, 4, 0, 0, 0, 0), -ERANGE);
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", exe_path);
    *strrchr(dir, '/') = 0;
    CHECK_EQ(g_chdir(dir), 0);
    CHECK_EQ(h_sys(79, buf, PATH_MAX, 0, 0, 0, 0), (int64_t)strlen(dir) + 1);
    CHECK(!strcmp(h_ptr(buf), dir));
    struct stat st;
    CHECK_EQ(g_stat(strrchr(exe_path, '/') + 1, &st), 0);
    CHECK_EQ(g_chdir(exe_path), -ENOTDIR);
    int64_t fd = g_open("/tmp", O_RDONLY | O_DIRECTORY, 0);
    CHECK_EQ(h_sys(81, (uint64_t)fd, 0, 0, 0, 0, 0), 0);
    CHECK_EQ(h_sys(79, buf, PATH_MAX, 0, 0, 0, 0), 5);
    g_close((int)fd);
    fd = g_open("/tmp/x", O_WRONLY | O_CREAT, 0644);
    CHECK_EQ(h_sys(81, (uint64_t)fd, 0, 0, 0, 0, 0), -ENOTDIR);
    g_close((int)fd);
    CHECK_EQ(g_stat("x", &st), 0);
    CHECK_EQ(g_chdir("/sandbox"), 0);

    /* Path arguments. */
    CHECK_EQ(h_sys(4, 0, buf, 0, 0, 0, 0), -EFAULT);
    CHECK_EQ(h_sys(4, H_RAM_BYTES + 4096, buf, 0, 0, 0, 0), -EFAULT);
    CHECK_EQ(g_stat("", &st), -ENOENT);
    char *longp = malloc(PATH_MAX + 10);
    memset(longp, 'a', PATH_MAX + 9);
    longp[0] = '/';
    longp[PATH_MAX + 9] = 0;
    CHECK_EQ(g_stat(longp, &st), -ENAMETOOLONG);
    CHECK_EQ(g_open(longp, O_WRONLY | O_CREAT, 0644), -ENAMETOOLONG);
    snprintf(longp, 300, "/tmp/%0290d", 0);
    CHECK_EQ(g_open(longp, O_WRONLY | O_CREAT, 0644), -ENAMETOOLONG);
    free(longp);
    CHECK_EQ(h_sys(4, h_str("/tmp"), 8, 0, 0, 0, 0), -EFAULT);
    CHECK_EQ(g_access("/tmp", 0x100), -EINVAL);
    CHECK_EQ(h_sys(89, h_str("/tmp"), buf, 100, 0, 0, 0), -EINVAL); /* not a link */
    CHECK_EQ(h_sys(89, h_str("/proc/self/exe"), buf, 4096, 0, 0, 0), (int64_t)strlen(exe_path));
    CHECK(!memcmp(h_ptr(buf), exe_path, strlen(exe_path)));
    CHECK_EQ(g_stat("/proc/self/exe", &st), 0);
    CHECK(S_ISREG(st.st_mode));
    CHECK_EQ(h_sys(440, 0, 0, 0, 0, 0, 0), -ENOSYS); /* not in the family */
    h_release(m);
}
