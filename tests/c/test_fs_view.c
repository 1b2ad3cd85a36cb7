/* Tests of the filesystem view and the files system-call family, driven
 * through the family's handlers with guest memory in a plain buffer
 * (fs_harness.c); the cases are here (the view's rules), in test_fs_layer.c
 * and in test_fs_fds.c. Host-dependent checks use the real host files named
 * by the read-only roots given on the command line:
 *
 *   test_fs_view EXE AGENT_DIR ROOT...
 *
 * Prints "fs_view: N passed" and exits 0 when every check passes. */
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

const char *exe_path;
const char **roots;
size_t n_roots;
char **all_roots;
size_t n_all_roots;

/* ------------------------------------------------------------ helpers */

bool under(const char *path, const char *root) {
    size_t n = strlen(root);
    return !strncmp(path, root, n) && (path[n] == 0 || path[n] == '/');
}

bool in_some_root(const char *path) {
    for (size_t i = 0; i < n_all_roots; i++)
        if (under(path, all_roots[i]))
            return true;
    return false;
}

bool given_root(const char *path) {
    for (size_t i = 0; i < n_roots; i++)
        if (!strcmp(roots[i], path))
            return true;
    return false;
}

bool host_is_link(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0 && S_ISLNK(st.st_mode);
}

unsigned char dt_of(mode_t m) {
    return S_ISDIR(m)   ? DT_DIR
           : S_ISLNK(m) ? DT_LNK
           : S_ISREG(m) ? DT_REG
           : S_ISCHR(m) ? DT_CHR
                        : DT_UNKNOWN;
}

char *read_host(const char *path, size_t *len) {
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return NULL;
    struct stat st;
    fstat(fd, &st);
    char *buf = malloc((size_t)st.st_size + 1);
    ssize_t r = pread(fd, buf, (size_t)st.st_size, 0);
    close(fd);
    *len = r < 0 ? 0 : (size_t)r;
    return buf;
}

void fill(uint8_t *buf, size_t len, unsigned seed) {
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)((i * 2654435761u + seed) >> 7);
}

/* ------------------------------------------------- host visibility */

void test_python_visible(void) {
    struct stat st, hst;
    CHECK_EQ(g_stat(exe_path, &st), 0);
    CHECK_EQ(stat(exe_path, &hst), 0);
    CHECK_EQ(st.st_ino, hst.st_ino);
    CHECK_EQ(st.st_size, hst.st_size);
    int64_t fd = g_open(exe_path, O_RDONLY | O_CLOEXEC, 0);
    CHECK(fd >= 0);
    char magic[4] = {0};
    CHECK_EQ(g_read((int)fd, magic, 4), 4);
    CHECK(!memcmp(magic,
                  "\x7f"
                  "ELF",
                  4));
    CHECK_EQ(g_fstat((int)fd, &st), 0);
    CHECK_EQ(st.st_dev, hst.st_dev);
    CHECK_EQ(g_close((int)fd), 0);

    /* The standard library under the prefix, byte for byte. */
    char prefix[PATH_MAX], os_py[PATH_MAX + 32];
    snprintf(prefix, sizeof(prefix), "%s", exe_path);
    *strrchr(prefix, '/') = 0;
    *strrchr(prefix, '/') = 0;
    snprintf(os_py, sizeof(os_py), "%s/lib/python3.11/os.py", prefix);
    size_t hlen;
    char *host = read_host(os_py, &hlen);
    if (host && in_some_root(os_py)) {
        fd = g_open(os_py, O_RDONLY, 0);
        CHECK(fd >= 0);
        char *got = malloc(hlen + 16);
        CHECK_EQ(g_read((int)fd, got, hlen + 16), hlen);
        CHECK(!memcmp(got, host, hlen));
        CHECK_EQ(g_read((int)fd, got, 16), 0);
        g_close((int)fd);
        free(got);
    }
    free(host);
}

/* The dynamic loader through Debian's symlinks (/lib64 -> usr/lib64,
 * /usr/lib64/ld-linux-x86-64.so.2 -> ../lib/x86_64-linux-gnu/...). */
void test_loader_links(void) {
    const char *ld = "/lib64/ld-linux-x86-64.so.2";
    struct stat hst, st;
    if (stat(ld, &hst) < 0 || !given_root("/lib64"))
        return;
    CHECK_EQ(g_stat(ld, &st), 0);
    CHECK_EQ(st.st_ino, hst.st_ino);
    int64_t fd = g_open(ld, O_RDONLY, 0);
    CHECK(fd >= 0);
    char magic[4] = {0};
    CHECK_EQ(g_read((int)fd, magic, 4), 4);
    CHECK(!memcmp(magic,
                  "\x7f"
                  "ELF",
                  4));
    g_close((int)fd);

    char want[PATH_MAX], got[PATH_MAX];
    const char *links[] = {"/lib64", ld};
    for (size_t i = 0; i < 2; i++) {
        if (!host_is_link(links[i]))
            continue;
        ssize_t n = readlink(links[i], want, sizeof(want) - 1);
        want[n] = 0;
        CHECK_EQ(g_readlink(links[i], got, sizeof(got)), n);
        CHECK(!strcmp(got, want));
        CHECK_EQ(g_lstat(links[i], &st), 0);
        CHECK(S_ISLNK(st.st_mode));
        CHECK_EQ(g_open(links[i], O_RDONLY | O_NOFOLLOW, 0), -ELOOP);
    }
    /* A root given through a host symlink in its ancestors. */
    const char *libc = "/lib/x86_64-linux-gnu/libc.so.6";
    if (given_root("/lib/x86_64-linux-gnu") && stat(libc, &hst) == 0) {
        CHECK_EQ(g_stat(libc, &st), 0);
        CHECK_EQ(st.st_ino, hst.st_ino);
        fd = g_open(libc, O_RDONLY, 0);
        CHECK(fd >= 0);
        g_close((int)fd);
    }
    /* ".." after a followed link is taken from the link's target. */
    if (host_is_link("/lib64") && given_root("/usr/lib/x86_64-linux-gnu")) {
        CHECK_EQ(g_stat("/lib64/../lib/x86_64-linux-gnu", &st), 0);
        CHECK_EQ(stat("/usr/lib/x86_64-linux-gnu", &hst), 0);
        CHECK_EQ(st.st_ino, hst.st_ino);
    }
}

static void expect_invisible(const char *path) {
    struct stat st;
    char buf[64];
    CHECK_EQ(g_stat(path, &st), -ENOENT);
    CHECK_EQ(g_lstat(path, &st), -ENOENT);
    CHECK_EQ(g_open(path, O_RDONLY, 0), -ENOENT);
    CHECK_EQ(g_open(path, O_RDONLY | O_DIRECTORY, 0), -ENOENT);
    CHECK_EQ(g_access(path, F_OK), -ENOENT);
    CHECK_EQ(g_readlink(path, buf, sizeof(buf)), -ENOENT);
    CHECK_EQ(g_chdir(path), -ENOENT);
    /* Writing must not reveal existence either. */
    CHECK_EQ(g_open(path, O_WRONLY, 0), -ENOENT);
}

/* /etc/passwd and friends are the sandbox's own, never the host's. */
void test_etc_synthesized(void) {
    char buf[512];
    int64_t fd = g_open("/etc/passwd", O_RDONLY, 0);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    int64_t n = g_read((int)fd, buf, sizeof(buf) - 1);
    g_close((int)fd);
    CHECK(n > 0);
    buf[n > 0 ? n : 0] = 0;
    CHECK(strstr(buf, "sandbox:x:1000:1000:") != NULL);
    CHECK(strstr(buf, "root:x:0:0:root:/root:/usr/sbin/nologin") != NULL);
    CHECK_EQ(g_open("/etc/passwd", O_WRONLY, 0), -EROFS);
}

void test_outside_invisible(void) {
    const char *paths[] = {"/etc/shadow",
                           "/etc/gshadow",
                           "/etc/machine-id",
                           "/work",
                           "/work/main",
                           "/root/.bashrc",
                           "/root/.ssh",
                           "/home",
                           "/var",
                           "/sys/class",
                           "/sys/kernel",
                           "/sys/devices/system/node",
                           "/sys/devices/system/cpu/cpu64",
                           "/sys/devices/system/cpu/cpu0/cache",
                           "/proc/1",
                           "/proc/self/oom_score",
                           "/proc/self/maps/x",
                           "/dev/sda",
                           "/dev/kvm",
                           "/usr/bin/env",
                           "/bin/sh",
                           "/opt/forkd-nope",
                           "/usr/lib/x86_64-linux-gnu-nope"};
    for (size_t i = 0; i < FJ_ARRAY_SIZE(paths); i++)
        if (!in_some_root(paths[i]))
            expect_invisible(paths[i]);
}

void test_dotdot_escapes(void) {
    const char *paths[] = {
        "/usr/lib/x86_64-linux-gnu/../../../etc/shadow",
        "/tmp/../etc/shadow",
        "/tmp/../../../../../../etc/shadow",
        "/../../etc/shadow",
        "/sandbox/./../work",
        "/dev/../etc/shadow",
        "/proc/self/../../etc/shadow",
        "/lib64/../../etc/shadow",
    };
    for (size_t i = 0; i < FJ_ARRAY_SIZE(paths); i++)
        expect_invisible(paths[i]);
    CHECK_EQ(g_chdir("/tmp"), 0);
    expect_invisible("../etc/shadow");
    expect_invisible("../../../../../../../../etc/shadow");
    CHECK_EQ(g_chdir("/sandbox"), 0);
    /* ".." of "/" is "/". */
    struct stat st;
    CHECK_EQ(g_stat("/../../..", &st), 0);
    CHECK(S_ISDIR(st.st_mode));
}

/* Guest-made symlinks are followed through the view, never on the host. */
void test_layer_links(void) {
    char buf[PATH_MAX];
    struct stat st;
    CHECK_EQ(g_symlink("/etc/shadow", "/tmp/s1"), 0);
    CHECK_EQ(g_readlink("/tmp/s1", buf, sizeof(buf)), 11);
    CHECK(!strcmp(buf, "/etc/shadow"));
    CHECK_EQ(g_lstat("/tmp/s1", &st), 0);
    CHECK(S_ISLNK(st.st_mode));
    CHECK_EQ(g_stat("/tmp/s1", &st), -ENOENT);
    CHECK_EQ(g_open("/tmp/s1", O_RDONLY, 0), -ENOENT);
    CHECK_EQ(g_open("/tmp/s1", O_RDONLY | O_NOFOLLOW, 0), -ELOOP);
    CHECK_EQ(g_open("/tmp/s1", O_WRONLY | O_CREAT, 0644), -EROFS); /* /etc is visible */

    CHECK_EQ(g_symlink("../../../../../../etc/shadow", "/sandbox/s2"), 0);
    CHECK_EQ(g_open("/sandbox/s2", O_RDONLY, 0), -ENOENT);
    CHECK_EQ(g_symlink("/", "/tmp/root"), 0);
    CHECK_EQ(g_open("/tmp/root/etc/shadow", O_RDONLY, 0), -ENOENT);
    CHECK_EQ(g_open("/tmp/root/work", O_RDONLY, 0), -ENOENT);
    CHECK_EQ(g_stat("/tmp/root/tmp/root/tmp", &st), 0);

    /* A link to a visible host file works, and stays read-only. */
    CHECK_EQ(g_symlink(exe_path, "/tmp/py"), 0);
    int64_t fd = g_open("/tmp/py", O_RDONLY, 0);
    CHECK(fd >= 0);
    g_close((int)fd);
    CHECK_EQ(g_open("/tmp/py", O_RDWR, 0), -EROFS);
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", exe_path);
    *strrchr(dir, '/') = 0;
    CHECK_EQ(g_symlink(dir, "/tmp/bindir"), 0);
    CHECK_EQ(g_open("/tmp/bindir/../../../../../../../etc/shadow", O_RDONLY, 0), -ENOENT);
    CHECK_EQ(g_open("/tmp/bindir/newfile", O_WRONLY | O_CREAT, 0644), -EROFS);

    /* Dangling links: O_CREAT creates the target only inside the layer. */
    CHECK_EQ(g_symlink("/tmp/target", "/tmp/dangling"), 0);
    fd = g_open("/tmp/dangling", O_WRONLY | O_CREAT, 0644);
    CHECK(fd >= 0);
    g_close((int)fd);
    CHECK_EQ(g_lstat("/tmp/target", &st), 0);
    CHECK(S_ISREG(st.st_mode));
    CHECK_EQ(g_symlink("/nonexistent/file", "/tmp/d2"), 0);
    CHECK_EQ(g_open("/tmp/d2", O_WRONLY | O_CREAT, 0644), -ENOENT);
    CHECK_EQ(g_open("/tmp/dangling", O_WRONLY | O_CREAT | O_EXCL, 0644), -EEXIST);

    /* Loops and the 40-link limit. */
    CHECK_EQ(g_symlink("/tmp/loop_b", "/tmp/loop_a"), 0);
    CHECK_EQ(g_symlink("loop_a", "/tmp/loop_b"), 0);
    CHECK_EQ(g_open("/tmp/loop_a", O_RDONLY, 0), -ELOOP);
    CHECK_EQ(g_stat("/tmp/loop_a/x", &st), -ELOOP);
    CHECK_EQ(g_lstat("/tmp/loop_a", &st), 0);
    CHECK_EQ(g_mkdir("/tmp/chain", 0755), 0);
    char name[64], target[64];
    for (int i = 0; i < 41; i++) {
        snprintf(name, sizeof(name), "/tmp/chain/l%d", i);
        snprintf(target, sizeof(target), i == 40 ? "/tmp/target" : "l%d", i + 1);
        CHECK_EQ(g_symlink(target, name), 0);
    }
    CHECK_EQ(g_stat("/tmp/chain/l1", &st), 0);      /* 40 links */
    CHECK_EQ(g_stat("/tmp/chain/l0", &st), -ELOOP); /* 41 */

    /* Symlinks in the middle of a path, relative to their own directory. */
    CHECK_EQ(g_mkdir("/sandbox/real", 0755), 0);
    CHECK_EQ(g_symlink("real", "/sandbox/alias"), 0);
    fd = g_open("/sandbox/alias/f", O_WRONLY | O_CREAT, 0600);
    CHECK(fd >= 0);
    g_close((int)fd);
    CHECK_EQ(g_stat("/sandbox/real/f", &st), 0);
    CHECK_EQ(g_stat("/sandbox/alias/../real/f", &st), 0);
}

/* ------------------------------------------------ host is read-only */

void test_host_read_only(void) {
    struct stat st;
    const char *file = exe_path;
    char dir[PATH_MAX], newf[PATH_MAX + 16];
    snprintf(dir, sizeof(dir), "%s", exe_path);
    *strrchr(dir, '/') = 0;
    snprintf(newf, sizeof(newf), "%s/newfile", dir);
    int flags[] = {O_WRONLY, O_RDWR, O_RDONLY | O_TRUNC, O_WRONLY | O_APPEND, O_WRONLY | O_CREAT};
    for (size_t i = 0; i < FJ_ARRAY_SIZE(flags); i++)
        CHECK_EQ(g_open(file, flags[i], 0644), -EROFS);
    CHECK_EQ(g_open(file, O_WRONLY | O_CREAT | O_EXCL, 0644), -EEXIST);
    CHECK_EQ(g_open(dir, O_WRONLY, 0), -EISDIR);
    CHECK_EQ(g_open(newf, O_WRONLY | O_CREAT, 0644), -EROFS);
    CHECK_EQ(g_open(newf, O_RDONLY, 0), -ENOENT);
    CHECK_EQ(g_open("/etc/newfile", O_WRONLY | O_CREAT, 0644), -EROFS); /* a synthesized dir */
    CHECK_EQ(g_open("/newfile", O_WRONLY | O_CREAT, 0644), -EROFS);
    CHECK_EQ(g_open("/work/newfile", O_WRONLY | O_CREAT, 0644), -ENOENT);
    CHECK_EQ(g_open("/etc/shadow", O_WRONLY | O_TRUNC, 0), -ENOENT);
    CHECK_EQ(g_access(file, W_OK), -EROFS);
    CHECK_EQ(g_access(file, R_OK), 0);
    CHECK_EQ(g_access("/usr", W_OK), -EROFS);
    CHECK_EQ(g_mkdir(newf, 0755), -EROFS);
    CHECK_EQ(g_mkdir("/etc/newdir", 0755), -EROFS);
    CHECK_EQ(g_mkdir("/work/newdir", 0755), -ENOENT);
    CHECK_EQ(g_mkdir(dir, 0755), -EEXIST);
    CHECK_EQ(g_unlink(file), -EROFS);
    CHECK_EQ(g_rmdir(dir), -EROFS);
    CHECK_EQ(g_rmdir("/usr"), -EROFS);
    CHECK_EQ(g_symlink("x", newf), -EROFS);
    int64_t r = g_rename(file, "/tmp/stolen");
    CHECK(r == -EROFS || r == -EXDEV);
    r = g_rename("/tmp", newf);
    CHECK(r == -EROFS || r == -EXDEV || r == -EBUSY);
    gva_t m = h_mark();
    CHECK_EQ(h_sys(86, h_str(file), h_str("/tmp/hard"), 0, 0, 0, 0), -EXDEV);  /* link */
    CHECK_EQ(h_sys(90, h_str(file), 0777, 0, 0, 0, 0), -EROFS);                /* chmod */
    CHECK_EQ(h_sys(92, h_str(file), 0, 0, 0, 0, 0), -EROFS);                   /* chown */
    CHECK_EQ(h_sys(76, h_str(file), 0, 0, 0, 0, 0), -EROFS);                   /* truncate */
    CHECK_EQ(h_sys(280, (uint64_t)AT_FDCWD, h_str(file), 0, 0, 0, 0), -EROFS); /* utimensat */
    CHECK_EQ(h_sys(235, h_str(file), 0, 0, 0, 0, 0), -EROFS);                  /* utimes */
    CHECK_EQ(h_sys(86, h_str("/etc/shadow"), h_str("/tmp/hard"), 0, 0, 0, 0), -ENOENT);
    h_release(m);
    CHECK_EQ(g_lstat("/tmp/stolen", &st), -ENOENT);
    CHECK_EQ(g_lstat("/tmp/hard", &st), -ENOENT);

    /* Descriptor calls on a host file. */
    int64_t fd = g_open(file, O_RDONLY, 0);
    CHECK(fd >= 0);
    CHECK_EQ(g_write((int)fd, "x", 1), -EBADF);
    CHECK_EQ(h_sys(77, (uint64_t)fd, 0, 0, 0, 0, 0), -EINVAL); /* ftruncate */
    CHECK_EQ(h_sys(91, (uint64_t)fd, 0777, 0, 0, 0, 0), -EROFS);
    CHECK_EQ(h_sys(93, (uint64_t)fd, 0, 0, 0, 0, 0), -EROFS);
    g_close((int)fd);
    struct stat hst;
    CHECK_EQ(stat(file, &hst), 0);
    CHECK_EQ(g_stat(file, &st), 0);
    CHECK_EQ(st.st_mode, hst.st_mode);
    CHECK_EQ(st.st_mtim.tv_sec, hst.st_mtim.tv_sec);
}

/* ------------------------------------------- synthesized directories */

static const char *const etc_names[] = {"passwd",   "group",  "hosts",    "nsswitch.conf",
                                        "hostname", "shells", "services", "protocols"};

/* Every name a synthesized directory must show: the next component of each
 * root strictly below it, plus the fixed top-level entries at "/". */
static void test_vdir(const char *dir) {
    static struct h_dirent ents[512];
    int64_t n = g_list_path(dir, ents, 512);
    CHECK(n >= 2);
    if (n < 0)
        return;
    size_t dlen = !strcmp(dir, "/") ? 0 : strlen(dir);
    for (int64_t i = 0; i < n && i < 512; i++) {
        const char *name = ents[i].name;
        if (!strcmp(name, ".") || !strcmp(name, ".."))
            continue;
        char child[PATH_MAX];
        snprintf(child, sizeof(child), "%.*s/%s", (int)dlen, dir, name);
        bool expected = false;
        for (size_t r = 0; r < n_all_roots; r++)
            expected |= under(all_roots[r], child);
        if (!dlen)
            expected |= !strcmp(name, "tmp") || !strcmp(name, "sandbox") || !strcmp(name, "dev") ||
                        !strcmp(name, "proc") || !strcmp(name, "opt") || !strcmp(name, "etc") ||
                        !strcmp(name, "sys");
        if (!strcmp(dir, "/etc")) /* synthesized from the agent's etc/ */
            for (size_t e = 0; e < FJ_ARRAY_SIZE(etc_names); e++)
                expected |= !strcmp(name, etc_names[e]);
        if (!expected)
            fprintf(stderr, "unexpected entry %s\n", child);
        CHECK(expected);
        struct stat st;
        CHECK_EQ(g_lstat(child, &st), 0);
        if (ents[i].type != dt_of(st.st_mode))
            fprintf(stderr, "d_type of %s: %d, lstat says %d\n", child, ents[i].type,
                    dt_of(st.st_mode));
        CHECK_EQ(ents[i].type, dt_of(st.st_mode));
        CHECK_EQ(ents[i].ino, st.st_ino);
    }
    /* Conversely, every visible child is listed. */
    for (size_t r = 0; r < n_all_roots; r++) {
        const char *root = all_roots[r];
        if (strncmp(root, dir, dlen) || root[dlen] != '/')
            continue;
        char name[NAME_MAX + 1];
        snprintf(name, sizeof(name), "%.*s", (int)strcspn(root + dlen + 1, "/"), root + dlen + 1);
        if (h_find(ents, n, name) < 0)
            fprintf(stderr, "%s does not list %s\n", dir, name);
        CHECK(h_find(ents, n, name) >= 0);
    }
}

void test_vdirs(void) {
    test_vdir("/");
    /* Every proper ancestor of a root that is not itself under a root. */
    for (size_t r = 0; r < n_all_roots; r++) {
        char anc[PATH_MAX];
        snprintf(anc, sizeof(anc), "%s", all_roots[r]);
        for (char *s = strrchr(anc, '/'); s && s != anc; s = strrchr(anc, '/')) {
            *s = 0;
            if (!in_some_root(anc))
                test_vdir(anc);
        }
    }
    static struct h_dirent ents[64];
    int64_t n = g_list_path("/dev", ents, 64);
    CHECK_EQ(n, 15); /* ".", "..", 7 devices, shm, pts and the 4 links to descriptors */
    CHECK(h_find(ents, n, "urandom") >= 0 && h_find(ents, n, "null") >= 0 &&
          h_find(ents, n, "shm") >= 0);
    CHECK(h_find(ents, n, "ptmx") >= 0 && h_find(ents, n, "pts") >= 0 &&
          h_find(ents, n, "stdin") >= 0);
    char target[64] = {0};
    CHECK_EQ(g_readlink("/dev/stdin", target, sizeof(target) - 1), 15);
    CHECK(!strcmp(target, "/proc/self/fd/0"));
    CHECK_EQ(g_list_path("/dev/pts", ents, 64), 2); /* no pseudo-terminal yet */
    CHECK_EQ(g_stat("/dev/pts/0", &(struct stat){0}), -ENOENT);
    struct stat st;
    CHECK_EQ(g_stat("/", &st), 0);
    CHECK(S_ISDIR(st.st_mode));
    CHECK_EQ(g_open("/", O_RDWR, 0), -EISDIR);
    CHECK_EQ(g_access("/", W_OK), -EROFS);
}

/* A host directory under a root lists what the host holds. */
void test_host_listing(void) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", exe_path);
    *strrchr(dir, '/') = 0;
    *strrchr(dir, '/') = 0;
    strcat(dir, "/lib/python3.11");
    if (!in_some_root(dir))
        snprintf(dir, sizeof(dir), "%s", roots[0]);
    DIR *d = opendir(dir);
    if (!d)
        return;
    static struct h_dirent ents[4096];
    int64_t fd = g_open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    CHECK(fd >= 0);
    int64_t n = g_list((int)fd, 1024, ents, 4096); /* many calls */
    CHECK(n > 2);
    size_t host_n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        host_n++;
        int k = h_find(ents, n, e->d_name);
        CHECK(k >= 0);
        if (k >= 0) {
            CHECK_EQ(ents[k].ino, e->d_ino);
            CHECK_EQ(ents[k].type, e->d_type);
        }
    }
    closedir(d);
    CHECK_EQ(n, host_n);
    /* Rewind and list again with a small buffer; too small for one entry. */
    CHECK_EQ(h_sys(8, (uint64_t)fd, 0, SEEK_SET, 0, 0, 0), 0);
    CHECK_EQ(g_list((int)fd, 64, ents, 4096), host_n);
    CHECK_EQ(h_sys(8, (uint64_t)fd, 0, SEEK_SET, 0, 0, 0), 0);
    gva_t m = h_mark();
    CHECK_EQ(h_sys(217, (uint64_t)fd, h_alloc(8), 8, 0, 0, 0), -EINVAL);
    h_release(m);
    g_close((int)fd);
}

/* ------------------------------------------------ a synthetic root */

/* A host tree made for the test (outside /tmp, which the layer shadows):
 *   BASE/secret               not visible
 *   BASE/alias -> root        the root as configured
 *   BASE/root/{file, fifo, sub/inner, esc, rel, sib, ok, self, abs_in}  */
void test_synthetic_root(void) {
    char base[] = "/var/tmp/fjv-XXXXXX";
    if (!mkdtemp(base)) {
        fprintf(stderr, "FAIL: cannot make %s\n", base);
        g_fail++;
        return;
    }
    char p[PATH_MAX + 64], r[PATH_MAX], alias[PATH_MAX];
    snprintf(r, sizeof(r), "%s/root", base);
    snprintf(alias, sizeof(alias), "%s/alias", base);
    CHECK_EQ(mkdir(r, 0755), 0);
    CHECK_EQ(symlink("root", alias), 0);
#define HOSTP(fmt, ...) (snprintf(p, sizeof(p), fmt, __VA_ARGS__), p)
    close(open(HOSTP("%s/secret", base), O_WRONLY | O_CREAT, 0644));
    FILE *fp = fopen(HOSTP("%s/file", r), "w");
    fputs("visible", fp);
    fclose(fp);
    CHECK_EQ(mkfifo(HOSTP("%s/fifo", r), 0644), 0);
    CHECK_EQ(mkdir(HOSTP("%s/sub", r), 0755), 0);
    close(open(HOSTP("%s/sub/inner", r), O_WRONLY | O_CREAT, 0644));
    CHECK_EQ(symlink("/etc/shadow", HOSTP("%s/esc", r)), 0);
    CHECK_EQ(symlink("../../../../../../etc/shadow", HOSTP("%s/rel", r)), 0);
    CHECK_EQ(symlink("../secret", HOSTP("%s/sib", r)), 0);
    CHECK_EQ(symlink("sub/inner", HOSTP("%s/ok", r)), 0);
    CHECK_EQ(symlink("self", HOSTP("%s/self", r)), 0);
    char abs_in[PATH_MAX + 16];
    snprintf(abs_in, sizeof(abs_in), "%s/sub", alias);
    CHECK_EQ(symlink(abs_in, HOSTP("%s/abs_in", r)), 0);

    const char *only[] = {alias};
    h_use_roots(only, 1);
    struct stat st;
    char buf[64];
    /* Reached through the configured (symlinked) path and the canonical one. */
    int64_t fd = g_open(HOSTP("%s/file", alias), O_RDONLY, 0);
    CHECK(fd >= 0);
    CHECK_EQ(g_read((int)fd, buf, sizeof(buf)), 7);
    g_close((int)fd);
    CHECK_EQ(g_stat(HOSTP("%s/file", r), &st), 0);
    CHECK_EQ(g_lstat(alias, &st), 0);
    CHECK(S_ISLNK(st.st_mode));
    CHECK_EQ(g_readlink(alias, buf, sizeof(buf)), 4);
    /* Links inside the root: followed through the view. */
    CHECK_EQ(g_stat(HOSTP("%s/ok", r), &st), 0);
    CHECK(S_ISREG(st.st_mode));
    CHECK_EQ(g_stat(HOSTP("%s/abs_in/inner", r), &st), 0);
    /* Below a root at once (view.c, resolve_host_rest) or by the walk, the
     * same answers: the host's file, EROFS for a new entry, ENOENT for a
     * missing directory on the way, ENOTDIR for a file used as one. */
    struct stat hst;
    CHECK_EQ(lstat(HOSTP("%s/sub/inner", r), &hst), 0);
    CHECK_EQ(g_stat(HOSTP("%s/sub/inner", r), &st), 0);
    CHECK_EQ(st.st_ino, hst.st_ino);
    CHECK_EQ(g_open(HOSTP("%s/sub/new", r), O_WRONLY | O_CREAT, 0644), -EROFS);
    CHECK_EQ(g_stat(HOSTP("%s/sub/new", r), &st), -ENOENT);
    CHECK_EQ(g_stat(HOSTP("%s/nosuch/inner", r), &st), -ENOENT);
    CHECK_EQ(g_open(HOSTP("%s/nosuch/new", r), O_WRONLY | O_CREAT, 0644), -ENOENT);
    CHECK_EQ(g_stat(HOSTP("%s/sub/inner/x", r), &st), -ENOTDIR);
    CHECK_EQ(g_stat(HOSTP("%s/ok/", r), &st), -ENOTDIR);
    CHECK_EQ(g_lstat(HOSTP("%s/sub/../ok", r), &st), 0);
    CHECK(S_ISLNK(st.st_mode));
    const char *escapes[] = {
        "esc", "rel", "sib", "sib/", "sub/../../secret", "../secret", "abs_in/../../secret"};
    for (size_t i = 0; i < FJ_ARRAY_SIZE(escapes); i++) {
        CHECK_EQ(g_open(HOSTP("%s/%s", r, escapes[i]), O_RDONLY, 0), -ENOENT);
        CHECK_EQ(g_stat(p, &st), -ENOENT);
    }
    CHECK_EQ(g_lstat(HOSTP("%s/esc", r), &st), 0); /* the link itself is visible */
    /* ...but not its target, a host path outside the view. */
    CHECK_EQ(g_readlink(p, buf, sizeof(buf)), -ENOENT);
    /* A link leading into the view reads as on the host. */
    CHECK_EQ(g_readlink(HOSTP("%s/abs_in", r), buf, sizeof(buf)),
             (int64_t)FJ_MIN(strlen(abs_in), sizeof(buf)));
    CHECK_EQ(g_stat(HOSTP("%s/self", r), &st), -ELOOP);
    CHECK_EQ(g_stat(HOSTP("%s/secret", base), &st), -ENOENT);
    /* The parent of the root lists only the way to it. */
    static struct h_dirent ents[16];
    int64_t n = g_list_path(base, ents, 16);
    CHECK_EQ(n, 4);
    CHECK(h_find(ents, n, "alias") >= 0 && h_find(ents, n, "root") >= 0);
    CHECK(h_find(ents, n, "secret") < 0);
    int k = h_find(ents, n, "alias");
    CHECK(k >= 0 && ents[k].type == DT_LNK);
    /* A FIFO is never opened (it would block the VMM). */
    CHECK_EQ(g_lstat(HOSTP("%s/fifo", r), &st), 0);
    CHECK(S_ISFIFO(st.st_mode));
    CHECK_EQ(g_open(p, O_RDONLY, 0), -EACCES);
    CHECK_EQ(g_open(p, O_RDONLY | O_NONBLOCK, 0), -EACCES);
    /* Nothing in the tree can be changed. */
    CHECK_EQ(g_open(HOSTP("%s/file", r), O_WRONLY, 0), -EROFS);
    CHECK_EQ(g_unlink(p), -EROFS);
    CHECK_EQ(g_open(HOSTP("%s/new", r), O_WRONLY | O_CREAT, 0644), -EROFS);
    CHECK_EQ(g_open(HOSTP("%s/new", base), O_WRONLY | O_CREAT, 0644), -EROFS);
    CHECK_EQ(g_mkdir(HOSTP("%s/sub/d", r), 0755), -EROFS);
    char to[PATH_MAX + 16];
    snprintf(to, sizeof(to), "%s/sub/file", r);
    CHECK_EQ(g_rename(HOSTP("%s/file", r), to), -EROFS);
    CHECK_EQ(lstat(HOSTP("%s/new", r), &st), -1);
    CHECK_EQ(lstat(HOSTP("%s/sub/file", r), &st), -1);
    CHECK_EQ(lstat(HOSTP("%s/file", r), &st), 0);
    h_use_roots(roots, n_roots);

    const char *rm[] = {"file", "fifo", "sub/inner", "esc", "rel", "sib", "ok", "self", "abs_in"};
    for (size_t i = 0; i < FJ_ARRAY_SIZE(rm); i++)
        unlink(HOSTP("%s/%s", r, rm[i]));
    rmdir(HOSTP("%s/sub", r));
    rmdir(r);
    unlink(alias);
    unlink(HOSTP("%s/secret", base));
    CHECK_EQ(rmdir(base), 0);
#undef HOSTP
}

/* --------------------------------------------------------------- main */

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s EXE AGENT_DIR ROOT...\n", argv[0]);
        return 2;
    }
    exe_path = argv[1];
    roots = (const char **)argv + 3;
    n_roots = (size_t)argc - 3;
    all_roots = calloc(2 * n_roots, sizeof(char *));
    for (size_t i = 0; i < n_roots; i++) {
        all_roots[n_all_roots++] = strdup(roots[i]);
        char *canon = realpath(roots[i], NULL);
        if (canon && strcmp(canon, roots[i]))
            all_roots[n_all_roots++] = canon;
        else
            free(canon);
    }
    if (h_init(roots, n_roots, strcmp(argv[2], "-") ? argv[2] : NULL, exe_path) < 0) {
        fprintf(stderr, "FAIL: harness set-up\n");
        return 1;
    }
    void (*tests[])(void) = {test_python_visible,
                             test_loader_links,
                             test_outside_invisible,
                             test_etc_synthesized,
                             test_dotdot_escapes,
                             test_layer_links,
                             test_host_read_only,
                             test_layer_files,
                             test_layer_dirs,
                             test_vdirs,
                             test_host_listing,
                             test_devices,
                             test_pipes,
                             test_descriptors,
                             test_select,
                             test_cwd_and_arguments,
                             test_branch,
                             test_edges,
                             test_anon_and_copies,
                             test_xattrs,
                             test_synthetic_root};
    for (size_t i = 0; i < FJ_ARRAY_SIZE(tests); i++) {
        h_reset();
        tests[i]();
    }
    h_fini();
    for (size_t i = 0; i < n_all_roots; i++)
        free(all_roots[i]);
    free(all_roots);
    printf("fs_view: %d passed\n", g_pass);
    if (g_fail)
        printf("fs_view: %d FAILED\n", g_fail);
    return g_fail ? 1 : 0;
}
