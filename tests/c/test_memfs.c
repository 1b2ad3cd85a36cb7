/* Tests of the memfs layer (forkd_jupyter/vmm/csrc/fs/memfs_*.c).
 * Build: gcc -std=gnu11 -I forkd_jupyter/vmm/csrc -pthread tests/c/test_memfs.c \
 *        forkd_jupyter/vmm/csrc/fs/memfs_*.c
 * Prints "memfs: N passed" and exits 0 when every check passes. */
#define _GNU_SOURCE
#include "fs/fs_memfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int g_pass, g_fail;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (cond) {                                                                                \
            __atomic_fetch_add(&g_pass, 1, __ATOMIC_RELAXED);                                      \
        } else {                                                                                   \
            __atomic_fetch_add(&g_fail, 1, __ATOMIC_RELAXED);                                      \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                        \
        }                                                                                          \
    } while (0)

#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                      \
        if (va_ == vb_) {                                                                          \
            __atomic_fetch_add(&g_pass, 1, __ATOMIC_RELAXED);                                      \
        } else {                                                                                   \
            __atomic_fetch_add(&g_fail, 1, __ATOMIC_RELAXED);                                      \
            fprintf(stderr, "FAIL %s:%d: %s == %s (%lld != %lld)\n", __FILE__, __LINE__, #a, #b,   \
                    va_, vb_);                                                                     \
        }                                                                                          \
    } while (0)

#define MiB (1024ULL * 1024)
#define CH MEMFS_CHUNK_SIZE

/* ---------------------------------------------------------------------- */
/* Helpers                                                                */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void) {
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static uint64_t rnd_r(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static struct memfs_node *mk(struct memfs *fs, struct memfs_node *dir, const char *name,
                             uint32_t mode) {
    struct memfs_node *n = NULL;
    int rc = memfs_mknode(fs, dir, name, mode, NULL, &n);
    CHECK_EQ(rc, 0);
    return n;
}

static struct memfs_node *lk(struct memfs *fs, struct memfs_node *dir, const char *name) {
    struct memfs_node *n = NULL;
    if (memfs_lookup(fs, dir, name, &n) < 0)
        return NULL;
    return n;
}

static uint64_t ino_of(struct memfs *fs, struct memfs_node *dir, const char *name) {
    struct memfs_node *n = lk(fs, dir, name);
    if (!n)
        return 0;
    uint64_t ino = memfs_node_ino(n);
    memfs_node_put(fs, n);
    return ino;
}

static void wr(struct memfs *fs, struct memfs_node *n, const char *s, uint64_t off) {
    CHECK_EQ(memfs_pwrite(fs, n, s, strlen(s), off), (long long)strlen(s));
}

static void mkfile_with(struct memfs *fs, struct memfs_node *dir, const char *name, const char *s) {
    struct memfs_node *n = mk(fs, dir, name, S_IFREG | 0644);
    if (n) {
        wr(fs, n, s, 0);
        memfs_node_put(fs, n);
    }
}

/* Whole content of dir/name as a malloc'd NUL-terminated string (NULL if absent). */
static char *slurp(struct memfs *fs, struct memfs_node *dir, const char *name) {
    struct memfs_node *n = lk(fs, dir, name);
    if (!n)
        return NULL;
    struct stat st;
    memfs_getattr(fs, n, &st);
    char *buf = calloc(1, (size_t)st.st_size + 1);
    CHECK_EQ(memfs_pread(fs, n, buf, (uint64_t)st.st_size, 0), st.st_size);
    memfs_node_put(fs, n);
    return buf;
}

static int str_is(char *s, const char *want) {
    int ok = s && strcmp(s, want) == 0;
    free(s);
    return ok;
}

static off_t size_of(struct memfs *fs, struct memfs_node *n) {
    struct stat st;
    memfs_getattr(fs, n, &st);
    return st.st_size;
}

static nlink_t nlink_of(struct memfs *fs, struct memfs_node *n) {
    struct stat st;
    memfs_getattr(fs, n, &st);
    return st.st_nlink;
}

/* Directory listing collector. budget < 0: unlimited. */
struct listing {
    char (*names)[MEMFS_NAME_MAX + 1];
    uint64_t *inos;
    unsigned char *types;
    int n, cap;
    int budget;
};

static int collect(void *ctx, const char *name, uint64_t ino, unsigned char type, uint64_t next) {
    struct listing *l = ctx;
    if (l->budget == 0)
        return 1;
    if (l->budget > 0)
        l->budget--;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->names = realloc(l->names, (size_t)l->cap * sizeof(*l->names));
        l->inos = realloc(l->inos, (size_t)l->cap * sizeof(*l->inos));
        l->types = realloc(l->types, (size_t)l->cap);
    }
    snprintf(l->names[l->n], sizeof(l->names[0]), "%s", name);
    l->inos[l->n] = ino;
    l->types[l->n] = type;
    l->n++;
    return 0;
}

static void listing_free(struct listing *l) {
    free(l->names);
    free(l->inos);
    free(l->types);
    memset(l, 0, sizeof(*l));
}

static void list_all(struct memfs *fs, struct memfs_node *dir, struct listing *l) {
    uint64_t cookie = 0;
    memset(l, 0, sizeof(*l));
    l->budget = -1;
    CHECK_EQ(memfs_readdir(fs, dir, &cookie, collect, l), 0);
}

static int listing_find(const struct listing *l, const char *name) {
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->names[i], name) == 0)
            return i;
    return -1;
}

/* Structural equality of two trees: names, inode numbers, modes, sizes,
 * nlink, content and link targets. Returns the number of mismatches. */
static int tree_diff(struct memfs *a, struct memfs_node *da, struct memfs *b, struct memfs_node *db,
                     int depth) {
    struct listing la, lb;
    int bad = 0;
    list_all(a, da, &la);
    list_all(b, db, &lb);
    if (la.n != lb.n)
        bad++;
    for (int i = 2; i < la.n && !bad; i++) {
        int j = listing_find(&lb, la.names[i]);
        if (j < 0 || lb.inos[j] != la.inos[i] || lb.types[j] != la.types[i]) {
            bad++;
            break;
        }
        struct memfs_node *na = lk(a, da, la.names[i]), *nb = lk(b, db, la.names[i]);
        struct stat sa, sb;
        memfs_getattr(a, na, &sa);
        memfs_getattr(b, nb, &sb);
        if (sa.st_mode != sb.st_mode || sa.st_size != sb.st_size || sa.st_nlink != sb.st_nlink ||
            sa.st_ino != sb.st_ino || sa.st_mtim.tv_sec != sb.st_mtim.tv_sec ||
            sa.st_mtim.tv_nsec != sb.st_mtim.tv_nsec)
            bad++;
        if (S_ISREG(sa.st_mode) && !bad) {
            char *ba = malloc((size_t)sa.st_size + 1), *bb = malloc((size_t)sb.st_size + 1);
            memfs_pread(a, na, ba, (uint64_t)sa.st_size, 0);
            memfs_pread(b, nb, bb, (uint64_t)sb.st_size, 0);
            bad += memcmp(ba, bb, (size_t)sa.st_size) != 0;
            free(ba);
            free(bb);
        } else if (S_ISLNK(sa.st_mode) && !bad) {
            char ta[MEMFS_SYMLINK_MAX + 1], tb[MEMFS_SYMLINK_MAX + 1];
            int ka = memfs_readlink(a, na, ta, sizeof(ta)),
                kb = memfs_readlink(b, nb, tb, sizeof(tb));
            bad += ka != kb || memcmp(ta, tb, (size_t)ka) != 0;
        } else if (S_ISDIR(sa.st_mode) && !bad && depth < 32) {
            bad += tree_diff(a, na, b, nb, depth + 1);
        }
        memfs_node_put(a, na);
        memfs_node_put(b, nb);
    }
    listing_free(&la);
    listing_free(&lb);
    return bad;
}

/* ---------------------------------------------------------------------- */
/* Files                                                                  */

static void test_file_basics(void) {
    struct memfs *fs = memfs_new(64 * MiB);
    struct memfs_node *root = memfs_root(fs), *f = mk(fs, root, "f", S_IFREG | 0640);
    char buf[256];
    struct stat st;

    CHECK_EQ(memfs_node_mode(f), S_IFREG | 0640);
    CHECK_EQ(memfs_pread(fs, f, buf, 10, 0), 0);
    wr(fs, f, "hello", 0);
    CHECK_EQ(memfs_pread(fs, f, buf, sizeof(buf), 0), 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    CHECK_EQ(memfs_pread(fs, f, buf, sizeof(buf), 5), 0);
    CHECK_EQ(memfs_pread(fs, f, buf, sizeof(buf), 1000), 0);
    CHECK_EQ(memfs_pwrite(fs, f, "x", 0, 100), 0);
    CHECK_EQ(size_of(fs, f), 5);
    wr(fs, f, "J", 0);
    CHECK_EQ(memfs_pread(fs, f, buf, 5, 0), 5);
    CHECK(memcmp(buf, "Jello", 5) == 0);

    CHECK_EQ(memfs_getattr(fs, f, &st), 0);
    CHECK_EQ(st.st_size, 5);
    CHECK_EQ(st.st_nlink, 1);
    CHECK_EQ(st.st_uid, 1000);
    CHECK_EQ(st.st_gid, 1000);
    CHECK_EQ(st.st_blksize, 4096);
    CHECK_EQ(st.st_dev, MEMFS_DEV);
    CHECK_EQ(st.st_ino, memfs_node_ino(f));
    CHECK(st.st_blocks > 0 && st.st_blocks <= 8); /* a small file does not take a whole chunk */
    CHECK(st.st_mtim.tv_sec > 1600000000);

    /* holes read as zero, across chunk boundaries */
    wr(fs, f, "tail", 3 * CH + 10);
    CHECK_EQ(size_of(fs, f), 3 * CH + 14);
    char *big = malloc(4 * CH);
    CHECK_EQ(memfs_pread(fs, f, big, 4 * CH, 0), 3 * CH + 14);
    int zeros = 1;
    for (uint64_t i = 5; i < 3 * CH + 10; i++)
        zeros &= big[i] == 0;
    CHECK(zeros);
    CHECK(memcmp(big + 3 * CH + 10, "tail", 4) == 0);
    CHECK_EQ(memfs_getattr(fs, f, &st), 0);
    CHECK_EQ(st.st_blocks, (64 + CH + 511) / 512); /* a 64-byte chunk 0 and a full chunk 3 */

    /* a write straddling a chunk boundary */
    wr(fs, f, "ABCDEFGHIJ", CH - 5);
    CHECK_EQ(memfs_pread(fs, f, buf, 10, CH - 5), 10);
    CHECK(memcmp(buf, "ABCDEFGHIJ", 10) == 0);

    /* truncate down then up: the cut-off bytes come back as zeros */
    CHECK_EQ(memfs_truncate(fs, f, 3), 0);
    CHECK_EQ(size_of(fs, f), 3);
    CHECK_EQ(memfs_truncate(fs, f, 2 * CH), 0);
    CHECK_EQ(memfs_pread(fs, f, big, 4 * CH, 0), 2 * CH);
    zeros = memcmp(big, "Jel", 3) == 0;
    for (uint64_t i = 3; i < 2 * CH; i++)
        zeros &= big[i] == 0;
    CHECK(zeros);
    CHECK_EQ(memfs_truncate(fs, f, 0), 0);
    CHECK_EQ(memfs_getattr(fs, f, &st), 0);
    CHECK_EQ(st.st_blocks, 0);
    CHECK_EQ(memfs_truncate(fs, f, MEMFS_MAX_FILE_SIZE + 1), -EFBIG);
    CHECK_EQ(memfs_pwrite(fs, f, "x", 1, MEMFS_MAX_FILE_SIZE), -EFBIG);

    /* type errors */
    CHECK_EQ(memfs_pread(fs, root, buf, 1, 0), -EISDIR);
    CHECK_EQ(memfs_pwrite(fs, root, buf, 1, 0), -EISDIR);
    CHECK_EQ(memfs_truncate(fs, root, 0), -EISDIR);

    free(big);
    memfs_node_put(fs, f);
    memfs_node_put(fs, root);
    memfs_free(fs);
}

/* Random writes and truncates against a flat reference model. */
static void test_file_model(void) {
    struct memfs *fs = memfs_new(256 * MiB);
    struct memfs_node *root = memfs_root(fs), *f = mk(fs, root, "m", S_IFREG | 0644);
    const uint64_t max = 5 * CH;
    unsigned char *ref = calloc(1, max), *got = malloc(max), *src = malloc(max);
    uint64_t size = 0;
    int mismatches = 0;
    for (uint64_t i = 0; i < max; i++)
        src[i] = (unsigned char)rnd();
    struct memfs *snap = NULL;
    for (int op = 0; op < 3000; op++) {
        uint64_t r = rnd() % 10;
        if (r < 6) {
            uint64_t off = rnd() % max, len = rnd() % (r < 3 ? 200 : CH + 100);
            if (off + len > max)
                len = max - off;
            uint64_t so = rnd() % (max - len + 1);
            mismatches += memfs_pwrite(fs, f, src + so, len, off) != (int64_t)len;
            memcpy(ref + off, src + so, len);
            if (len && off + len > size)
                size = off + len;
        } else if (r < 9) {
            uint64_t len = rnd() % max;
            mismatches += memfs_truncate(fs, f, len) != 0;
            if (len < size)
                memset(ref + len, 0, size - len);
            size = len;
        } else { /* share chunks with a clone so that writes take the copy path */
            memfs_free(snap);
            snap = memfs_clone(fs);
        }
        if (op % 16 == 0 || op > 2900) {
            mismatches += memfs_pread(fs, f, got, max, 0) != (int64_t)size;
            mismatches += memcmp(got, ref, size) != 0;
        }
    }
    CHECK_EQ(mismatches, 0);
    CHECK_EQ(size_of(fs, f), size);
    memfs_free(snap);
    free(ref);
    free(got);
    free(src);
    memfs_node_put(fs, f);
    memfs_node_put(fs, root);
    memfs_free(fs);
}

/* ---------------------------------------------------------------------- */
/* Names                                                                  */

static void test_dirs(void) {
    struct memfs *fs = memfs_new(64 * MiB);
    struct memfs_node *root = memfs_root(fs), *n = NULL;
    struct memfs_node *a = mk(fs, root, "a", S_IFDIR | 0755);
    struct memfs_node *b = mk(fs, a, "b", S_IFDIR | 0700);
    struct memfs_node *c = mk(fs, b, "c", S_IFDIR | 0755);
    mkfile_with(fs, c, "deep", "deep-data");
    char name[300];

    CHECK_EQ(memfs_node_ino(root), 1);
    CHECK_EQ(memfs_node_mode(root), S_IFDIR | 0755);
    CHECK_EQ(memfs_node_mode(b), S_IFDIR | 0700);
    CHECK_EQ(ino_of(fs, root, "."), memfs_node_ino(root));
    CHECK_EQ(ino_of(fs, root, ".."), memfs_node_ino(root));
    CHECK_EQ(ino_of(fs, c, "."), memfs_node_ino(c));
    CHECK_EQ(ino_of(fs, c, ".."), memfs_node_ino(b));
    CHECK_EQ(ino_of(fs, b, ".."), memfs_node_ino(a));
    CHECK_EQ(ino_of(fs, a, ".."), memfs_node_ino(root));
    CHECK(str_is(slurp(fs, c, "deep"), "deep-data"));

    CHECK_EQ(memfs_lookup(fs, a, "nope", &n), -ENOENT);
    CHECK(n == NULL);
    struct memfs_node *f = lk(fs, c, "deep");
    CHECK_EQ(memfs_lookup(fs, f, "x", &n), -ENOTDIR);
    CHECK_EQ(memfs_mknode(fs, f, "x", S_IFREG | 0644, NULL, NULL), -ENOTDIR);
    CHECK_EQ(memfs_mknode(fs, a, "b", S_IFREG | 0644, NULL, NULL), -EEXIST);
    CHECK_EQ(memfs_mknode(fs, a, ".", S_IFDIR | 0755, NULL, NULL), -EEXIST);
    CHECK_EQ(memfs_mknode(fs, a, "..", S_IFDIR | 0755, NULL, NULL), -EEXIST);
    CHECK_EQ(memfs_mknode(fs, a, "", S_IFREG | 0644, NULL, NULL), -ENOENT);
    CHECK_EQ(memfs_mknode(fs, a, "s/t", S_IFREG | 0644, NULL, NULL), -EINVAL);
    CHECK_EQ(memfs_mknode(fs, a, "dev", S_IFCHR | 0644, NULL, NULL), -EINVAL);
    memset(name, 'n', 256);
    name[256] = 0;
    CHECK_EQ(memfs_mknode(fs, a, name, S_IFREG | 0644, NULL, NULL), -ENAMETOOLONG);
    CHECK_EQ(memfs_lookup(fs, a, name, &n), -ENAMETOOLONG);
    name[255] = 0;
    CHECK_EQ(memfs_mknode(fs, a, name, S_IFREG | 0644, NULL, NULL), 0);
    CHECK(ino_of(fs, a, name) != 0);

    /* nlink of directories: 2 + subdirectories */
    CHECK_EQ(nlink_of(fs, root), 3);
    CHECK_EQ(nlink_of(fs, a), 3);
    CHECK_EQ(nlink_of(fs, c), 2);

    /* unlink / rmdir errors */
    CHECK_EQ(memfs_unlink(fs, a, "b", 0), -EISDIR);
    CHECK_EQ(memfs_unlink(fs, a, "b", 1), -ENOTEMPTY);
    CHECK_EQ(memfs_unlink(fs, c, "deep", 1), -ENOTDIR);
    CHECK_EQ(memfs_unlink(fs, c, "missing", 0), -ENOENT);
    CHECK_EQ(memfs_unlink(fs, c, ".", 1), -EINVAL);
    CHECK_EQ(memfs_unlink(fs, c, "..", 1), -ENOTEMPTY);
    CHECK_EQ(memfs_unlink(fs, f, "x", 0), -ENOTDIR);
    CHECK_EQ(memfs_unlink(fs, c, "deep", 0), 0);
    CHECK_EQ(memfs_unlink(fs, b, "c", 1), 0);
    CHECK_EQ(nlink_of(fs, b), 2);

    /* a removed directory that is still referenced */
    CHECK_EQ(nlink_of(fs, c), 0);
    CHECK_EQ(memfs_lookup(fs, c, "x", &n), -ENOENT);
    CHECK_EQ(memfs_lookup(fs, c, "..", &n), -ENOENT);
    CHECK_EQ(ino_of(fs, c, "."), memfs_node_ino(c));
    CHECK_EQ(memfs_mknode(fs, c, "x", S_IFREG | 0644, NULL, NULL), -ENOENT);
    struct listing l;
    list_all(fs, c, &l);
    CHECK_EQ(l.n, 2);
    listing_free(&l);

    memfs_node_put(fs, f);
    memfs_node_put(fs, c);
    memfs_node_put(fs, b);
    memfs_node_put(fs, a);
    memfs_node_put(fs, root);
    memfs_free(fs);
}

static void test_unlink_open(void) {
    struct memfs *fs = memfs_new(64 * MiB);
    struct memfs_node *root = memfs_root(fs);
    uint64_t base = memfs_bytes_used(fs), nodes = memfs_node_count(fs);
    struct memfs_node *f = mk(fs, root, "open", S_IFREG | 0644);
    char buf[16];
    wr(fs, f, "still here", 0);
    uint64_t ino = memfs_node_ino(f);
    CHECK_EQ(memfs_unlink(fs, root, "open", 0), 0);
    CHECK(lk(fs, root, "open") == NULL);
    CHECK_EQ(nlink_of(fs, f), 0);
    CHECK_EQ(memfs_pread(fs, f, buf, sizeof(buf), 0), 10);
    CHECK(memcmp(buf, "still here", 10) == 0);
    wr(fs, f, "STILL", 0);
    CHECK_EQ(memfs_pread(fs, f, buf, 5, 0), 5);
    CHECK(memcmp(buf, "STILL", 5) == 0);
    CHECK_EQ(memfs_link(fs, f, root, "back"), -ENOENT);
    struct memfs_node *again = memfs_node_by_ino(fs, ino);
    CHECK(again == f);
    memfs_node_put(fs, again);
    CHECK(memfs_bytes_used(fs) > base);
    memfs_node_put(fs, f);
    CHECK_EQ(memfs_bytes_used(fs), base);
    CHECK_EQ(memfs_node_count(fs), nodes);
    CHECK(memfs_node_by_ino(fs, ino) == NULL);
    memfs_node_put(fs, root);
    memfs_free(fs);
}

static void test_rename(void) {
    struct memfs *fs = memfs_new(64 * MiB);
    struct memfs_node *root = memfs_root(fs);
    struct memfs_node *d1 = mk(fs, root, "d1", S_IFDIR | 0755);
    struct memfs_node *d2 = mk(fs, root, "d2", S_IFDIR | 0755);
    struct memfs_node *sub = mk(fs, d1, "sub", S_IFDIR | 0755);
    mkfile_with(fs, d1, "x", "X");
    mkfile_with(fs, d1, "y", "Y");
    mkfile_with(fs, sub, "inner", "I");
    char buf[8];

    /* plain rename within and across directories */
    CHECK_EQ(memfs_rename(fs, d1, "x", d1, "x2", 0), 0);
    CHECK(lk(fs, d1, "x") == NULL);
    CHECK(str_is(slurp(fs, d1, "x2"), "X"));
    CHECK_EQ(memfs_rename(fs, d1, "x2", d2, "x", 0), 0);
    CHECK(str_is(slurp(fs, d2, "x"), "X"));
    CHECK_EQ(memfs_rename(fs, d1, "missing", d2, "z", 0), -ENOENT);
    CHECK_EQ(memfs_rename(fs, d1, "y", d1, "y", 0), 0);
    CHECK(str_is(slurp(fs, d1, "y"), "Y"));

    /* replace an open file: it lives on, unnamed */
    struct memfs_node *victim = lk(fs, d2, "x");
    CHECK_EQ(memfs_rename(fs, d1, "y", d2, "x", 0), 0);
    CHECK(str_is(slurp(fs, d2, "x"), "Y"));
    CHECK(lk(fs, d1, "y") == NULL);
    CHECK_EQ(nlink_of(fs, victim), 0);
    CHECK_EQ(memfs_pread(fs, victim, buf, 8, 0), 1);
    CHECK_EQ(buf[0], 'X');
    memfs_node_put(fs, victim);

    /* NOREPLACE / EXCHANGE / bad flags */
    mkfile_with(fs, d1, "a", "A");
    CHECK_EQ(memfs_rename(fs, d1, "a", d2, "x", RENAME_NOREPLACE), -EEXIST);
    CHECK_EQ(memfs_rename(fs, d1, "a", d2, "new", RENAME_NOREPLACE), 0);
    CHECK_EQ(memfs_rename(fs, d2, "new", d1, "a", RENAME_NOREPLACE | RENAME_EXCHANGE), -EINVAL);
    CHECK_EQ(memfs_rename(fs, d2, "new", d1, "a", 0x80), -EINVAL);
    CHECK_EQ(memfs_rename(fs, d2, "new", d1, "nothere", RENAME_EXCHANGE), -ENOENT);
    CHECK_EQ(memfs_rename(fs, d2, "new", d2, "x", RENAME_EXCHANGE), 0);
    CHECK(str_is(slurp(fs, d2, "new"), "Y"));
    CHECK(str_is(slurp(fs, d2, "x"), "A"));
    /* exchange a file and a directory in different parents */
    uint64_t sub_ino = memfs_node_ino(sub);
    CHECK_EQ(memfs_rename(fs, d1, "sub", d2, "x", RENAME_EXCHANGE), 0);
    CHECK(str_is(slurp(fs, d1, "sub"), "A"));
    CHECK_EQ(ino_of(fs, d2, "x"), sub_ino);
    CHECK_EQ(ino_of(fs, sub, ".."), memfs_node_ino(d2));
    CHECK_EQ(nlink_of(fs, d1), 2);
    CHECK_EQ(nlink_of(fs, d2), 3);
    CHECK(str_is(slurp(fs, sub, "inner"), "I"));
    CHECK_EQ(memfs_rename(fs, d2, "x", d1, "sub", RENAME_EXCHANGE), 0);
    CHECK_EQ(ino_of(fs, sub, ".."), memfs_node_ino(d1));

    /* directories: into own subtree, over (non-)empty dirs, type mismatches */
    CHECK_EQ(memfs_rename(fs, root, "d1", sub, "loop", 0), -EINVAL);
    CHECK_EQ(memfs_rename(fs, d1, "sub", sub, "self", 0), -EINVAL);
    CHECK_EQ(memfs_rename(fs, root, "d1", d1, "sub", RENAME_EXCHANGE), -EINVAL);
    CHECK_EQ(memfs_rename(fs, d1, "sub", root, "d1", 0), -ENOTEMPTY);
    struct memfs_node *empty = mk(fs, d2, "empty", S_IFDIR | 0755);
    CHECK_EQ(memfs_rename(fs, d1, "sub", d2, "new", 0), -ENOTDIR);
    CHECK_EQ(memfs_rename(fs, d2, "new", d2, "empty", 0), -EISDIR);
    mkfile_with(fs, empty, "z", "z");
    CHECK_EQ(memfs_rename(fs, d1, "sub", d2, "empty", 0), -ENOTEMPTY);
    CHECK_EQ(memfs_unlink(fs, empty, "z", 0), 0);
    CHECK_EQ(nlink_of(fs, d2), 3);
    CHECK_EQ(memfs_rename(fs, d1, "sub", d2, "empty", 0), 0);
    CHECK_EQ(nlink_of(fs, empty), 0);
    CHECK_EQ(nlink_of(fs, d1), 2);
    CHECK_EQ(nlink_of(fs, d2), 3);
    CHECK_EQ(ino_of(fs, d2, "empty"), sub_ino);
    CHECK_EQ(ino_of(fs, sub, ".."), memfs_node_ino(d2));
    CHECK(str_is(slurp(fs, sub, "inner"), "I"));
    CHECK_EQ(memfs_rename(fs, d2, ".", d1, "q", 0), -EBUSY);
    CHECK_EQ(memfs_rename(fs, d2, "empty", d1, "..", 0), -EBUSY);

    /* hard links to one inode: renaming one onto the other does nothing */
    struct memfs_node *h = lk(fs, d2, "new");
    CHECK_EQ(memfs_link(fs, h, d1, "h2"), 0);
    CHECK_EQ(memfs_rename(fs, d2, "new", d1, "h2", 0), 0);
    CHECK(ino_of(fs, d2, "new") == memfs_node_ino(h) && ino_of(fs, d1, "h2") == memfs_node_ino(h));
    CHECK_EQ(nlink_of(fs, h), 2);
    memfs_node_put(fs, h);

    memfs_node_put(fs, empty);
    memfs_node_put(fs, sub);
    memfs_node_put(fs, d2);
    memfs_node_put(fs, d1);
    memfs_node_put(fs, root);
    memfs_free(fs);
}

static void test_symlink_and_links(void) {
    struct memfs *fs = memfs_new(64 * MiB);
    struct memfs_node *root = memfs_root(fs), *s = NULL, *t = NULL;
    char buf[64], longt[MEMFS_SYMLINK_MAX + 2];
    struct stat st;

    CHECK_EQ(memfs_mknode(fs, root, "ln", S_IFLNK, "/some/where", &s), 0);
    CHECK_EQ(memfs_node_mode(s), S_IFLNK | 0777);
    CHECK_EQ(memfs_readlink(fs, s, buf, sizeof(buf)), 11);
    CHECK(memcmp(buf, "/some/where", 11) == 0);
    CHECK_EQ(memfs_readlink(fs, s, buf, 4), 4);
    CHECK(memcmp(buf, "/som", 4) == 0);
    CHECK_EQ(memfs_getattr(fs, s, &st), 0);
    CHECK_EQ(st.st_size, 11);
    CHECK(S_ISLNK(st.st_mode));
    CHECK_EQ(memfs_pread(fs, s, buf, 1, 0), -EINVAL);
    CHECK_EQ(memfs_readlink(fs, root, buf, sizeof(buf)), -EINVAL);
    CHECK_EQ(memfs_mknode(fs, root, "empty", S_IFLNK, "", NULL), -ENOENT);
    memset(longt, 'p', sizeof(longt) - 1);
    longt[sizeof(longt) - 1] = 0;
    CHECK_EQ(memfs_mknode(fs, root, "long", S_IFLNK, longt, NULL), -ENAMETOOLONG);
    longt[MEMFS_SYMLINK_MAX] = 0;
    CHECK_EQ(memfs_mknode(fs, root, "long", S_IFLNK, longt, NULL), 0);
    CHECK_EQ(memfs_chmod(fs, s, 0600), -EOPNOTSUPP);

    /* hard links */
    struct memfs_node *d = mk(fs, root, "d", S_IFDIR | 0755);
    struct memfs_node *f = mk(fs, root, "f", S_IFREG | 0644);
    CHECK_EQ(memfs_link(fs, f, d, "f2"), 0);
    CHECK_EQ(memfs_link(fs, s, d, "ln2"), 0);
    CHECK_EQ(nlink_of(fs, f), 2);
    CHECK_EQ(nlink_of(fs, root), 3); /* files do not count */
    CHECK_EQ(memfs_link(fs, f, d, "f2"), -EEXIST);
    CHECK_EQ(memfs_link(fs, d, root, "d2"), -EPERM);
    CHECK_EQ(memfs_link(fs, f, f, "x"), -ENOTDIR);
    t = lk(fs, d, "f2");
    CHECK(t == f);
    wr(fs, t, "shared", 0);
    CHECK(str_is(slurp(fs, root, "f"), "shared"));
    CHECK_EQ(memfs_unlink(fs, root, "f", 0), 0);
    CHECK_EQ(nlink_of(fs, f), 1);
    CHECK(str_is(slurp(fs, d, "f2"), "shared"));
    memfs_node_put(fs, t);

    /* chmod and utimens */
    CHECK_EQ(memfs_chmod(fs, f, 04711), 0);
    CHECK_EQ(memfs_node_mode(f), S_IFREG | 04711);
    struct timespec ts[2] = {{1000, 5}, {2000, 7}};
    CHECK_EQ(memfs_utimens(fs, f, ts), 0);
    memfs_getattr(fs, f, &st);
    CHECK(st.st_atim.tv_sec == 1000 && st.st_atim.tv_nsec == 5);
    CHECK(st.st_mtim.tv_sec == 2000 && st.st_mtim.tv_nsec == 7);
    CHECK(st.st_ctim.tv_sec > 1600000000);
    struct timespec om[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
    CHECK_EQ(memfs_utimens(fs, f, om), 0);
    memfs_getattr(fs, f, &st);
    CHECK(st.st_atim.tv_sec == 1000 && st.st_mtim.tv_sec > 1600000000);
    struct timespec badts[2] = {{0, 1000000000}, {0, 0}};
    CHECK_EQ(memfs_utimens(fs, f, badts), -EINVAL);
    CHECK_EQ(memfs_utimens(fs, f, NULL), 0);
    memfs_getattr(fs, f, &st);
    CHECK(st.st_atim.tv_sec > 1600000000);

    memfs_node_put(fs, f);
    memfs_node_put(fs, d);
    memfs_node_put(fs, s);
    memfs_node_put(fs, root);
    memfs_free(fs);
}

/* ---------------------------------------------------------------------- */
/* readdir                                                                */

static void test_readdir(void) {
    struct memfs *fs = memfs_new(256 * MiB);
    struct memfs_node *root = memfs_root(fs), *d = mk(fs, root, "d", S_IFDIR | 0755);
    char name[32];
    const int N = 100;
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "e%03d", i);
        mkfile_with(fs, d, name, "");
    }
    struct memfs_node *sd = mk(fs, d, "subdir", S_IFDIR | 0755);
    struct memfs_node *ln = NULL;
    memfs_mknode(fs, d, "link", S_IFLNK, "e000", &ln);

    /* full listing: dots first, every entry once, right types */
    struct listing l;
    list_all(fs, d, &l);
    CHECK_EQ(l.n, N + 4);
    CHECK(strcmp(l.names[0], ".") == 0 && l.inos[0] == memfs_node_ino(d));
    CHECK(strcmp(l.names[1], "..") == 0 && l.inos[1] == memfs_node_ino(root));
    CHECK_EQ(l.types[listing_find(&l, "subdir")], DT_DIR);
    CHECK_EQ(l.types[listing_find(&l, "link")], DT_LNK);
    CHECK_EQ(l.types[listing_find(&l, "e050")], DT_REG);
    listing_free(&l);

    /* emitter that refuses: nothing consumed */
    uint64_t cookie = 0;
    memset(&l, 0, sizeof(l));
    l.budget = 0;
    CHECK_EQ(memfs_readdir(fs, d, &cookie, collect, &l), 1);
    CHECK_EQ(cookie, 0);
    CHECK_EQ(l.n, 0);

    /* one entry per call, deleting and adding as we go */
    int seen[200] = {0}, dup = 0, calls = 0, deleted_seen = 0, added_seen = 0;
    int deleted[200] = {0};
    for (;;) {
        l.budget = 1;
        int before = l.n;
        int rc = memfs_readdir(fs, d, &cookie, collect, &l);
        calls++;
        if (l.n > before) {
            const char *nm = l.names[l.n - 1];
            int idx;
            if (sscanf(nm, "e%d", &idx) == 1 && idx < 200) {
                dup += seen[idx]++ > 0;
                deleted_seen += deleted[idx];
            }
            added_seen += strncmp(nm, "new", 3) == 0;
        }
        if (rc == 0)
            break;
        CHECK_EQ(rc, 1);
        if (calls == 30) { /* drop some seen and some unseen entries, add new ones */
            for (int i = 0; i < N; i += 3) {
                snprintf(name, sizeof(name), "e%03d", i);
                CHECK_EQ(memfs_unlink(fs, d, name, 0), 0);
                if (!seen[i])
                    deleted[i] = 1;
            }
            for (int i = 0; i < 5; i++) {
                snprintf(name, sizeof(name), "new%d", i);
                mkfile_with(fs, d, name, "");
            }
        }
        if (calls > 1000)
            break;
    }
    CHECK_EQ(dup, 0);
    CHECK_EQ(deleted_seen, 0);
    CHECK_EQ(added_seen, 5); /* added after the cookie: returned once */
    int missing = 0;
    for (int i = 0; i < N; i++)
        missing += i % 3 != 0 && !seen[i];
    CHECK_EQ(missing, 0);
    listing_free(&l);
    CHECK_EQ(memfs_readdir(fs, sd, &cookie, collect, &l), 0); /* cookie past the end: nothing */
    CHECK_EQ(memfs_readdir(fs, ln, &cookie, collect, &l), -ENOTDIR);
    listing_free(&l);

    /* thousands of entries: lookups, deletes with compaction, resumable cookie */
    struct memfs_node *big = mk(fs, root, "big", S_IFDIR | 0755);
    const int M = 5000;
    for (int i = 0; i < M; i++) {
        snprintf(name, sizeof(name), "file-%05d", i);
        CHECK(memfs_mknode(fs, big, name, S_IFREG | 0644, NULL, NULL) == 0 || i < 0);
    }
    int found = 0;
    for (int i = 0; i < M; i += 7) {
        snprintf(name, sizeof(name), "file-%05d", i);
        found += ino_of(fs, big, name) != 0;
    }
    CHECK_EQ(found, (M + 6) / 7);
    cookie = 0;
    memset(&l, 0, sizeof(l));
    l.budget = 1000;
    CHECK_EQ(memfs_readdir(fs, big, &cookie, collect, &l), 1);
    for (int i = 0; i < M; i++)
        if (i % 10 != 0) {
            snprintf(name, sizeof(name), "file-%05d", i);
            memfs_unlink(fs, big, name, 0);
        }
    l.budget = -1;
    CHECK_EQ(memfs_readdir(fs, big, &cookie, collect, &l), 0);
    int bad = 0, prev = -1;
    for (int i = 2; i < l.n; i++) {
        int idx = atoi(l.names[i] + 5);
        bad += idx <= prev || (idx >= 998 && idx % 10 != 0);
        prev = idx;
    }
    CHECK_EQ(bad, 0);
    int expect = 2 + 998;
    for (int i = 998; i < M; i++)
        expect += i % 10 == 0;
    CHECK_EQ(l.n, expect);
    listing_free(&l);
    list_all(fs, big, &l);
    CHECK_EQ(l.n, 2 + M / 10);
    listing_free(&l);
    CHECK_EQ(nlink_of(fs, big), 2);

    memfs_node_put(fs, big);
    memfs_node_put(fs, ln);
    memfs_node_put(fs, sd);
    memfs_node_put(fs, d);
    memfs_node_put(fs, root);
    memfs_free(fs);
}

/* ---------------------------------------------------------------------- */
/* Accounting                                                             */

static void test_limit(void) {
    const uint64_t limit = 1 * MiB;
    struct memfs *fs = memfs_new(limit);
    struct memfs_node *root = memfs_root(fs);
    CHECK_EQ(memfs_bytes_used(fs), 0);
    CHECK_EQ(memfs_byte_limit(fs), limit);
    struct memfs_node *f = mk(fs, root, "big", S_IFREG | 0644);
    uint64_t base = memfs_bytes_used(fs);
    CHECK_EQ(base, MEMFS_NODE_CHARGE + MEMFS_DENTRY_CHARGE + 3);
    char *buf = malloc(2 * MiB);
    memset(buf, 'q', 2 * MiB);
    int64_t k = memfs_pwrite(fs, f, buf, 2 * MiB, 0);
    CHECK(k > 0 && (uint64_t)k < limit);
    CHECK(memfs_bytes_used(fs) <= limit);
    CHECK_EQ(size_of(fs, f), k);
    CHECK_EQ(memfs_pwrite(fs, f, buf, 2 * MiB, (uint64_t)k), -ENOSPC);
    CHECK_EQ(size_of(fs, f), k);

    /* truncate returns the budget */
    CHECK_EQ(memfs_truncate(fs, f, 0), 0);
    CHECK_EQ(memfs_bytes_used(fs), base);
    CHECK_EQ(memfs_pwrite(fs, f, buf, 512 * 1024, 0), 512 * 1024);
    CHECK_EQ(memfs_truncate(fs, f, 100), 0);
    CHECK(memfs_bytes_used(fs) <= base + 4096);

    /* unlinking the last name of an unreferenced file returns the budget */
    memfs_node_put(fs, f);
    CHECK_EQ(memfs_pwrite(fs, f = lk(fs, root, "big"), buf, 900 * 1024, 0), 900 * 1024);
    memfs_node_put(fs, f);
    CHECK_EQ(memfs_unlink(fs, root, "big", 0), 0);
    CHECK_EQ(memfs_bytes_used(fs), 0);
    struct memfs_node *g = mk(fs, root, "g", S_IFREG | 0644);
    CHECK_EQ(memfs_pwrite(fs, g, buf, 900 * 1024, 0), 900 * 1024);

    /* sparse writes far out are charged for their chunk table and run out */
    struct memfs_node *sp = NULL;
    CHECK_EQ(memfs_mknode(fs, root, "sp", S_IFREG | 0644, NULL, &sp), 0);
    CHECK_EQ(memfs_pwrite(fs, sp, "x", 1, 1ULL << 40), -ENOSPC);
    CHECK_EQ(memfs_truncate(fs, sp, 1ULL << 40), 0); /* size alone costs nothing */
    CHECK_EQ(size_of(fs, sp), 1ULL << 40);
    char z[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    CHECK_EQ(memfs_pread(fs, sp, z, 8, (1ULL << 40) - 4), 4);
    CHECK(z[0] == 0 && z[3] == 0 && z[4] == 1);

    /* nodes and names are charged too */
    struct memfs *tiny = memfs_new(MEMFS_NODE_CHARGE + MEMFS_DENTRY_CHARGE + 1);
    struct memfs_node *troot = memfs_root(tiny);
    CHECK_EQ(memfs_mknode(tiny, troot, "a", S_IFREG | 0644, NULL, NULL), 0);
    CHECK_EQ(memfs_mknode(tiny, troot, "b", S_IFREG | 0644, NULL, NULL), -ENOSPC);
    CHECK_EQ(memfs_unlink(tiny, troot, "a", 0), 0);
    CHECK_EQ(memfs_mknode(tiny, troot, "b", S_IFREG | 0644, NULL, NULL), 0);
    CHECK_EQ(memfs_mknode(tiny, troot, "c", S_IFLNK, "x", NULL), -ENOSPC);
    memfs_node_put(tiny, troot);
    memfs_free(tiny);

    /* everything goes back to zero */
    memfs_node_put(fs, sp);
    memfs_node_put(fs, g);
    CHECK_EQ(memfs_unlink(fs, root, "g", 0), 0);
    CHECK_EQ(memfs_unlink(fs, root, "sp", 0), 0);
    CHECK_EQ(memfs_bytes_used(fs), 0);
    CHECK_EQ(memfs_node_count(fs), 1);
    free(buf);
    memfs_node_put(fs, root);
    memfs_free(fs);
}

/* Random namespace operations; then everything is removed and the
 * accounting must return to zero. */
static void test_accounting_churn(void) {
    struct memfs *fs = memfs_new(512 * MiB);
    struct memfs_node *root = memfs_root(fs);
    struct memfs_node *dirs[4];
    char name[32], name2[32];
    unsigned char data[3000];
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof(name), "d%d", i);
        dirs[i] = mk(fs, root, name, S_IFDIR | 0755);
    }
    for (int op = 0; op < 4000; op++) {
        struct memfs_node *d = dirs[rnd() % 4], *d2 = dirs[rnd() % 4], *n = NULL;
        snprintf(name, sizeof(name), "n%d", (int)(rnd() % 50));
        snprintf(name2, sizeof(name2), "n%d", (int)(rnd() % 50));
        switch (rnd() % 7) {
        case 0:
            if (memfs_mknode(fs, d, name, S_IFREG | 0644, NULL, &n) == 0) {
                memfs_pwrite(fs, n, data, rnd() % sizeof(data), rnd() % (3 * CH));
                memfs_node_put(fs, n);
            }
            break;
        case 1:
            memfs_unlink(fs, d, name, 0);
            break;
        case 2:
            memfs_rename(fs, d, name, d2, name2, (unsigned)(rnd() % 3));
            break;
        case 3:
            if ((n = lk(fs, d, name))) {
                memfs_link(fs, n, d2, name2);
                memfs_node_put(fs, n);
            }
            break;
        case 4:
            if ((n = lk(fs, d, name))) {
                memfs_truncate(fs, n, rnd() % (2 * CH));
                memfs_node_put(fs, n);
            }
            break;
        case 5:
            memfs_mknode(fs, d, name, S_IFLNK, "target/path", NULL);
            break;
        default:
            memfs_mknode(fs, d, name, S_IFDIR | 0755, NULL, NULL);
            memfs_unlink(fs, d, name2, 1);
            break;
        }
    }
    for (int i = 0; i < 4; i++) {
        struct listing l;
        list_all(fs, dirs[i], &l);
        for (int j = 2; j < l.n; j++)
            CHECK(memfs_unlink(fs, dirs[i], l.names[j], l.types[j] == DT_DIR) == 0);
        listing_free(&l);
        memfs_node_put(fs, dirs[i]);
        snprintf(name, sizeof(name), "d%d", i);
        CHECK_EQ(memfs_unlink(fs, root, name, 1), 0);
    }
    CHECK_EQ(memfs_bytes_used(fs), 0);
    CHECK_EQ(memfs_node_count(fs), 1);
    memfs_node_put(fs, root);
    memfs_free(fs);
}

/* ---------------------------------------------------------------------- */
/* Clones                                                                 */

static void test_clone_basic(void) {
    struct memfs *src = memfs_new(64 * MiB);
    struct memfs_node *sroot = memfs_root(src);
    struct memfs_node *d = mk(src, sroot, "dir", S_IFDIR | 0755);
    mkfile_with(src, d, "a", "alpha");
    mkfile_with(src, sroot, "b", "bravo");
    memfs_mknode(src, sroot, "l", S_IFLNK, "dir/a", NULL);
    struct memfs_node *a = lk(src, d, "a");
    memfs_link(src, a, sroot, "a-link");
    memfs_node_put(src, a);
    memfs_node_put(src, d);

    struct memfs *ch = memfs_clone(src);
    CHECK(ch != NULL);
    struct memfs_node *croot = memfs_root(ch);
    CHECK_EQ(tree_diff(src, sroot, ch, croot, 0), 0);
    CHECK_EQ(memfs_bytes_used(ch), memfs_bytes_used(src));
    CHECK_EQ(memfs_node_count(ch), memfs_node_count(src));
    struct memfs_node *cd = lk(ch, croot, "dir");
    CHECK(str_is(slurp(ch, cd, "a"), "alpha"));
    CHECK_EQ(ino_of(ch, cd, ".."), 1);

    /* source writes are invisible in the child and the other way round */
    struct memfs_node *sb = lk(src, sroot, "b"), *cb = lk(ch, croot, "b");
    wr(src, sb, "BRAVO", 0);
    CHECK(str_is(slurp(ch, croot, "b"), "bravo"));
    wr(ch, cb, "child", 0);
    CHECK(str_is(slurp(src, sroot, "b"), "BRAVO"));
    CHECK(str_is(slurp(ch, croot, "b"), "child"));
    memfs_truncate(ch, cb, 2);
    CHECK(str_is(slurp(src, sroot, "b"), "BRAVO"));
    memfs_node_put(src, sb);
    memfs_node_put(ch, cb);

    /* names diverge too */
    mkfile_with(ch, croot, "only-child", "c");
    CHECK(lk(src, sroot, "only-child") == NULL);
    CHECK_EQ(memfs_unlink(src, sroot, "a-link", 0), 0);
    CHECK(str_is(slurp(ch, croot, "a-link"), "alpha"));
    CHECK_EQ(memfs_rename(ch, cd, "a", croot, "moved", 0), 0);
    struct memfs_node *sd = lk(src, sroot, "dir");
    CHECK(str_is(slurp(src, sd, "a"), "alpha"));
    CHECK(lk(ch, cd, "a") == NULL);
    memfs_node_put(src, sd);
    /* new inode numbers continue from the same counter independently */
    struct memfs_node *n1 = mk(src, sroot, "n", S_IFREG | 0644);
    struct memfs_node *n2 = mk(ch, croot, "n", S_IFREG | 0644);
    CHECK(memfs_node_ino(n1) > 5 && memfs_node_ino(n2) >= memfs_node_ino(n1));
    memfs_node_put(src, n1);
    memfs_node_put(ch, n2);

    /* freeing the source first leaves the child intact */
    memfs_node_put(ch, cd);
    memfs_node_put(src, sroot);
    memfs_free(src);
    CHECK(str_is(slurp(ch, croot, "moved"), "alpha"));
    memfs_node_put(ch, croot);
    memfs_free(ch);
}

static void test_clone_depth(void) {
    enum { DEPTH = 6 };
    struct memfs *fs[DEPTH + 1];
    char name[32], want[64];
    fs[0] = memfs_new(64 * MiB);
    struct memfs_node *r = memfs_root(fs[0]);
    struct memfs_node *f = mk(fs[0], r, "f", S_IFREG | 0644);
    memfs_pwrite(fs[0], f, "0000000", 7, 0);
    memfs_node_put(fs[0], f);
    memfs_node_put(fs[0], r);
    for (int i = 1; i <= DEPTH; i++) {
        fs[i] = memfs_clone(fs[i - 1]);
        CHECK(fs[i] != NULL);
        /* each level marks its own position in f and adds its own file */
        for (int j = 0; j < i; j++) {
            struct memfs_node *rr = memfs_root(fs[j]), *ff = lk(fs[j], rr, "f");
            memfs_pwrite(fs[j], ff, "x", 1, (uint64_t)i);
            memfs_node_put(fs[j], ff);
            memfs_node_put(fs[j], rr);
        }
        r = memfs_root(fs[i]);
        snprintf(name, sizeof(name), "level%d", i);
        mkfile_with(fs[i], r, name, name);
        memfs_node_put(fs[i], r);
    }
    /* level i saw writes of ancestors only before it was cloned */
    int bad = 0;
    for (int i = 0; i <= DEPTH; i++) {
        r = memfs_root(fs[i]);
        strcpy(want, "0000000");
        for (int k = i + 1; k <= DEPTH; k++)
            want[k] = 'x';
        char *got = slurp(fs[i], r, "f");
        bad += !got || strcmp(got, want) != 0;
        free(got);
        for (int k = 1; k <= DEPTH; k++) {
            snprintf(name, sizeof(name), "level%d", k);
            struct memfs_node *n = lk(fs[i], r, name);
            bad += (n != NULL) != (k <= i);
            memfs_node_put(fs[i], n);
        }
        memfs_node_put(fs[i], r);
    }
    CHECK_EQ(bad, 0);
    for (int i = 0; i <= DEPTH; i += 2) /* free out of order */
        memfs_free(fs[i]);
    for (int i = 1; i <= DEPTH; i += 2)
        memfs_free(fs[i]);
}

static void test_clone_orphans(void) {
    struct memfs *src = memfs_new(64 * MiB);
    struct memfs_node *root = memfs_root(src);
    struct memfs_node *kept = mk(src, root, "kept", S_IFREG | 0644);
    struct memfs_node *lost = mk(src, root, "lost", S_IFREG | 0644);
    struct memfs_node *odir = mk(src, root, "odir", S_IFDIR | 0755);
    wr(src, kept, "kept-data", 0);
    wr(src, lost, "lost-data", 0);
    uint64_t ik = memfs_node_ino(kept), il = memfs_node_ino(lost), id = memfs_node_ino(odir);
    memfs_unlink(src, root, "kept", 0);
    memfs_unlink(src, root, "lost", 0);
    memfs_unlink(src, root, "odir", 1);
    uint64_t src_used = memfs_bytes_used(src);

    struct memfs *ch = memfs_clone(src);
    CHECK_EQ(memfs_bytes_used(ch), src_used);
    struct memfs_node *ck = memfs_node_by_ino(ch, ik), *cd = memfs_node_by_ino(ch, id);
    CHECK(ck != NULL && cd != NULL);
    char buf[16];
    CHECK_EQ(memfs_pread(ch, ck, buf, sizeof(buf), 0), 9);
    CHECK(memcmp(buf, "kept-data", 9) == 0);
    CHECK_EQ(nlink_of(ch, ck), 0);
    CHECK(memfs_node_by_ino(ch, 999) == NULL);
    memfs_drop_clone_holds(ch);
    CHECK(memfs_node_by_ino(ch, il) == NULL); /* not re-acquired: gone */
    struct memfs_node *again = memfs_node_by_ino(ch, ik);
    CHECK(again == ck);
    memfs_node_put(ch, again);
    wr(ch, ck, "KEPT", 0);
    CHECK_EQ(memfs_pread(src, kept, buf, 4, 0), 4);
    CHECK(memcmp(buf, "kept", 4) == 0);

    /* a clone of a clone that still holds orphans */
    struct memfs *ch2 = memfs_clone(ch);
    struct memfs_node *c2k = memfs_node_by_ino(ch2, ik);
    CHECK(c2k != NULL);
    CHECK_EQ(memfs_pread(ch2, c2k, buf, 4, 0), 4);
    CHECK(memcmp(buf, "KEPT", 4) == 0);
    memfs_node_put(ch2, c2k);
    memfs_free(ch2); /* holds not dropped: memfs_free frees them */

    memfs_node_put(ch, ck);
    memfs_node_put(ch, cd);
    CHECK_EQ(memfs_bytes_used(ch), 0);
    CHECK_EQ(memfs_node_count(ch), 1);
    memfs_free(ch);
    memfs_node_put(src, kept);
    memfs_node_put(src, lost);
    memfs_node_put(src, odir);
    CHECK_EQ(memfs_bytes_used(src), 0);
    memfs_node_put(src, root);
    memfs_free(src);
}

static void test_clone_private(void) {
    struct memfs *src = memfs_new(64 * MiB);
    struct memfs_node *root = memfs_root(src);
    char *buf = malloc(CH);
    memset(buf, 'p', CH);
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof(name), "f%d", i);
        struct memfs_node *f = mk(src, root, name, S_IFREG | 0644);
        memfs_pwrite(src, f, buf, CH, 0);
        memfs_node_put(src, f);
    }
    mkfile_with(src, root, "small", "tiny");
    CHECK_EQ(memfs_bytes_private(src), 4 * CH + 64);
    struct memfs *ch = memfs_clone(src);
    CHECK_EQ(memfs_bytes_private(src), 0);
    CHECK_EQ(memfs_bytes_private(ch), 0);
    struct memfs_node *croot = memfs_root(ch), *cf = lk(ch, croot, "f0");
    wr(ch, cf, "!", 100);
    CHECK_EQ(memfs_bytes_private(ch), CH);
    CHECK_EQ(memfs_bytes_private(src), CH); /* the original chunk is now src's alone */
    CHECK_EQ(memfs_bytes_used(ch), memfs_bytes_used(src));
    char got[4];
    struct memfs_node *sf = lk(src, root, "f0");
    memfs_pread(src, sf, got, 1, 100);
    CHECK_EQ(got[0], 'p');
    memfs_pread(ch, cf, got, 1, 100);
    CHECK_EQ(got[0], '!');
    /* growing a shared small file copies it */
    struct memfs_node *cs = lk(ch, croot, "small");
    wr(ch, cs, "-grown-well-beyond-sixty-four-bytes-------------------------------------", 4);
    CHECK(str_is(slurp(src, root, "small"), "tiny"));
    CHECK_EQ(memfs_bytes_private(ch), CH + 128);
    memfs_node_put(ch, cs);
    memfs_node_put(src, sf);
    memfs_node_put(ch, cf);
    memfs_node_put(ch, croot);
    memfs_free(ch);
    CHECK_EQ(memfs_bytes_private(src), 4 * CH + 64);
    free(buf);
    memfs_node_put(src, root);
    memfs_free(src);
}

static void test_clone_speed(void) {
    struct memfs *src = memfs_new(256 * MiB);
    struct memfs_node *root = memfs_root(src), *d = mk(src, root, "data", S_IFDIR | 0755);
    char *buf = malloc(CH), name[32];
    memset(buf, 'z', CH);
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof(name), "file%04d", i);
        struct memfs_node *f = mk(src, d, name, S_IFREG | 0644);
        buf[0] = (char)i;
        CHECK(memfs_pwrite(src, f, buf, CH, 0) == CH || i < 0);
        memfs_node_put(src, f);
    }
    double best = 1e9;
    struct memfs *ch = NULL;
    for (int rep = 0; rep < 5; rep++) {
        memfs_free(ch);
        double t0 = now_ms();
        ch = memfs_clone(src);
        double t = now_ms() - t0;
        best = t < best ? t : best;
    }
    printf("memfs: clone of 1000 files x 64 KiB (%.1f MiB): %.3f ms\n",
           (double)memfs_bytes_used(src) / MiB, best);
    CHECK(best < 250.0);
    CHECK_EQ(memfs_bytes_private(ch), 0);
    struct memfs_node *croot = memfs_root(ch), *cd = lk(ch, croot, "data");
    CHECK_EQ(tree_diff(src, d, ch, cd, 0), 0);
    memfs_node_put(ch, cd);
    memfs_node_put(ch, croot);
    memfs_free(ch);
    free(buf);
    memfs_node_put(src, d);
    memfs_node_put(src, root);
    memfs_free(src);
}

/* ---------------------------------------------------------------------- */
/* Images                                                                 */

static int image_fd(const void *buf, size_t len) {
    int fd = memfd_create("memfs-image", 0);
    if (len && write(fd, buf, len) != (ssize_t)len) {
        close(fd);
        return -1;
    }
    lseek(fd, 0, SEEK_SET);
    return fd;
}

static unsigned char *save_to_buf(struct memfs *fs, size_t *len) {
    int fd = memfd_create("memfs-save", 0);
    CHECK_EQ(memfs_save(fs, fd), 0);
    off_t end = lseek(fd, 0, SEEK_END);
    unsigned char *buf = malloc((size_t)end);
    CHECK_EQ(pread(fd, buf, (size_t)end, 0), end);
    close(fd);
    *len = (size_t)end;
    return buf;
}

static int load_buf(const void *buf, size_t len, uint64_t limit, struct memfs **out) {
    int fd = image_fd(buf, len);
    int rc = memfs_load(fd, limit, out);
    close(fd);
    return rc;
}

static uint32_t crc32_ref(const unsigned char *p, size_t n) {
    uint32_t c = 0xffffffffu;
    while (n--) {
        c ^= *p++;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    }
    return ~c;
}

static void fix_crc(unsigned char *buf, size_t len) {
    uint32_t c = crc32_ref(buf, len - 4);
    for (int i = 0; i < 4; i++)
        buf[len - 4 + i] = (unsigned char)(c >> (8 * i));
}

/* Walks a loaded layer and exercises it a little; must never crash. */
static void poke(struct memfs *fs) {
    struct memfs_node *root = memfs_root(fs);
    struct listing l;
    list_all(fs, root, &l);
    for (int i = 2; i < l.n; i++) {
        struct memfs_node *n = lk(fs, root, l.names[i]);
        char b[64];
        if (!n)
            continue;
        memfs_pread(fs, n, b, sizeof(b), 0);
        memfs_pwrite(fs, n, "w", 1, 3);
        struct listing sub;
        if (l.types[i] == DT_DIR) {
            list_all(fs, n, &sub);
            listing_free(&sub);
        }
        memfs_node_put(fs, n);
        memfs_unlink(fs, root, l.names[i], l.types[i] == DT_DIR);
    }
    listing_free(&l);
    memfs_node_put(fs, root);
    memfs_drop_clone_holds(fs);
    memfs_free(fs);
}

static struct memfs *build_sample(uint64_t *orphan_ino, struct memfs_node **orphan) {
    struct memfs *fs = memfs_new(64 * MiB);
    struct memfs_node *root = memfs_root(fs);
    struct memfs_node *d = mk(fs, root, "d", S_IFDIR | 0750);
    struct memfs_node *e = mk(fs, d, "e", S_IFDIR | 0755);
    struct memfs_node *f = mk(fs, e, "multi", S_IFREG | 0600);
    char *buf = malloc(3 * CH);
    for (uint64_t i = 0; i < 3 * CH; i++)
        buf[i] = (char)(i * 7);
    memfs_pwrite(fs, f, buf, 2 * CH + 100, 0);
    memfs_pwrite(fs, f, "end", 3, 6 * CH); /* holes in between */
    memfs_link(fs, f, root, "hard");
    mkfile_with(fs, d, "small", "small file");
    mkfile_with(fs, root, "empty", "");
    memfs_mknode(fs, root, "sym", S_IFLNK, "d/e/multi", NULL);
    struct timespec ts[2] = {{123456, 789}, {98765, 4321}};
    memfs_utimens(fs, d, ts);
    struct memfs_node *o = mk(fs, root, "orphan", S_IFREG | 0644);
    wr(fs, o, "orphan data", 0);
    memfs_unlink(fs, root, "orphan", 0);
    *orphan_ino = memfs_node_ino(o);
    *orphan = o;
    free(buf);
    memfs_node_put(fs, f);
    memfs_node_put(fs, e);
    memfs_node_put(fs, d);
    memfs_node_put(fs, root);
    return fs;
}

static void test_save_load(void) {
    uint64_t oino;
    struct memfs_node *orphan;
    struct memfs *fs = build_sample(&oino, &orphan), *back = NULL;
    size_t len;
    unsigned char *img = save_to_buf(fs, &len);
    CHECK(len > 2 * CH && memcmp(img, "FKDMEMFS", 8) == 0);
    CHECK_EQ(load_buf(img, len, 64 * MiB, &back), 0);
    struct memfs_node *ra = memfs_root(fs), *rb = memfs_root(back);
    CHECK_EQ(tree_diff(fs, ra, back, rb, 0), 0);
    CHECK_EQ(memfs_bytes_used(back), memfs_bytes_used(fs));
    CHECK_EQ(memfs_node_count(back), memfs_node_count(fs));
    struct memfs_node *bo = memfs_node_by_ino(back, oino);
    char b[16];
    CHECK(bo && memfs_pread(back, bo, b, sizeof(b), 0) == 11 && memcmp(b, "orphan data", 11) == 0);
    memfs_drop_clone_holds(back);
    CHECK(memfs_node_by_ino(back, oino) == bo);
    memfs_node_put(back, bo);
    memfs_node_put(back, bo);
    CHECK(memfs_node_by_ino(back, oino) == NULL);
    struct stat st;
    struct memfs_node *bd = lk(back, rb, "d");
    memfs_getattr(back, bd, &st);
    CHECK(st.st_atim.tv_sec == 123456 && st.st_atim.tv_nsec == 789);
    CHECK_EQ(ino_of(back, bd, ".."), 1);
    memfs_node_put(back, bd);
    struct memfs_node *nb = mk(back, rb, "after-load", S_IFREG | 0644);
    CHECK(memfs_node_ino(nb) > oino);
    memfs_node_put(back, nb);
    memfs_node_put(back, rb);
    memfs_free(back);

    /* a reload of a save of the reload is byte-identical */
    back = NULL;
    CHECK_EQ(load_buf(img, len, 64 * MiB, &back), 0);
    size_t len2;
    unsigned char *img2 = save_to_buf(back, &len2);
    CHECK_EQ(len2, len);
    memfs_free(back);
    free(img2);

    /* limits and bad input */
    CHECK_EQ(load_buf(img, len, 4096, &back), -ENOSPC);
    CHECK_EQ(load_buf(img, 0, 64 * MiB, &back), -EINVAL);
    CHECK(back == NULL);
    CHECK_EQ(memfs_save(fs, -1), -EBADF);

    /* flipped bytes: rejected by the checksum */
    int accepted = 0;
    for (size_t off = 0; off < len; off += (off < 4096 ? 1 : 997)) {
        img[off] ^= 0x5a;
        back = NULL;
        int rc = load_buf(img, len, 64 * MiB, &back);
        accepted += rc != -EINVAL;
        if (rc == 0)
            memfs_free(back);
        img[off] ^= 0x5a;
    }
    CHECK_EQ(accepted, 0);
    /* truncated images */
    int trunc_ok = 0;
    for (size_t cut = 0; cut < len; cut += (cut < 4096 ? 1 : 4093)) {
        back = NULL;
        trunc_ok += load_buf(img, cut, 64 * MiB, &back) == -EINVAL;
    }
    CHECK_EQ(trunc_ok, (int)(4096 + (len - 4096 + 4092) / 4093));

    /* corrupted content with a valid checksum: parsed defensively */
    size_t small_len;
    struct memfs *sm = memfs_new(MiB);
    struct memfs_node *sr = memfs_root(sm), *sd = mk(sm, sr, "dir", S_IFDIR | 0755);
    mkfile_with(sm, sd, "file", "content");
    struct memfs_node *hl = lk(sm, sd, "file");
    memfs_link(sm, hl, sr, "hl");
    memfs_node_put(sm, hl);
    memfs_mknode(sm, sd, "sub", S_IFDIR | 0755, NULL, NULL);
    memfs_mknode(sm, sr, "s", S_IFLNK, "dir/file", NULL);
    memfs_node_put(sm, sd);
    memfs_node_put(sm, sr);
    unsigned char *simg = save_to_buf(sm, &small_len);
    memfs_free(sm);
    int loaded = 0, rejected = 0, other = 0;
    unsigned char *mut = malloc(small_len);
    for (size_t off = 0; off < small_len - 4; off++)
        for (int v = 0; v < 5; v++) {
            static const unsigned char vals[5] = {0x00, 0xff, 0x01, 0x80, 0x2f};
            memcpy(mut, simg, small_len);
            mut[off] = (unsigned char)(v < 4 ? vals[v] : mut[off] ^ 0x10);
            fix_crc(mut, small_len);
            back = NULL;
            int rc = load_buf(mut, small_len, MiB, &back);
            if (rc == 0) {
                loaded++;
                poke(back);
            } else if (rc == -EINVAL) {
                rejected++;
            } else {
                other++;
            }
        }
    for (int t = 0; t < 2000; t++) { /* random multi-byte damage */
        memcpy(mut, simg, small_len);
        for (int k = 0; k < 1 + (int)(rnd() % 6); k++)
            mut[8 + rnd() % (small_len - 12)] = (unsigned char)rnd();
        fix_crc(mut, small_len);
        back = NULL;
        int rc = load_buf(mut, small_len, MiB, &back);
        if (rc == 0)
            poke(back);
        other += rc != 0 && rc != -EINVAL && rc != -ENOSPC;
    }
    printf("memfs: mutated images: %d loaded, %d rejected\n", loaded, rejected);
    CHECK(rejected > 0 && loaded > 0);
    CHECK_EQ(other, 0);
    free(mut);
    free(simg);

    memfs_node_put(fs, orphan);
    memfs_node_put(fs, ra);
    free(img);
    memfs_free(fs);
}

/* ---------------------------------------------------------------------- */
/* Threads                                                                */

struct cow_arg {
    struct memfs *fs;
    char fill;
    int bad;
    uint64_t seed;
};

static void *cow_writer(void *p) {
    struct cow_arg *a = p;
    struct memfs_node *root = memfs_root(a->fs), *f = lk(a->fs, root, "shared");
    char buf[4096], got[4096];
    memset(buf, a->fill, sizeof(buf));
    for (int i = 0; i < 3000; i++) {
        uint64_t off = (rnd_r(&a->seed) % (64 * CH / sizeof(buf))) * sizeof(buf);
        memfs_pwrite(a->fs, f, buf, sizeof(buf), off);
        memfs_pread(a->fs, f, got, sizeof(got), off);
        a->bad += memcmp(got, buf, sizeof(got)) != 0;
    }
    for (uint64_t off = 0; off < 64 * CH; off += sizeof(buf))
        memfs_pwrite(a->fs, f, buf, sizeof(buf), off);
    memfs_node_put(a->fs, f);
    memfs_node_put(a->fs, root);
    return NULL;
}

static void test_threads_cow(void) {
    struct memfs *src = memfs_new(256 * MiB);
    struct memfs_node *root = memfs_root(src), *f = mk(src, root, "shared", S_IFREG | 0644);
    char *buf = malloc(64 * CH);
    memset(buf, '.', 64 * CH);
    memfs_pwrite(src, f, buf, 64 * CH, 0);
    for (int round = 0; round < 3; round++) {
        struct memfs *ch = memfs_clone(src);
        struct memfs *ch2 = memfs_clone(src); /* a third layer holding the chunks, freed midway */
        struct cow_arg a = {src, (char)('A' + round), 0, 11 + (uint64_t)round};
        struct cow_arg b = {ch, (char)('a' + round), 0, 77 + (uint64_t)round};
        pthread_t ta, tb;
        pthread_create(&ta, NULL, cow_writer, &a);
        pthread_create(&tb, NULL, cow_writer, &b);
        memfs_free(ch2);
        pthread_join(ta, NULL);
        pthread_join(tb, NULL);
        CHECK_EQ(a.bad + b.bad, 0);
        struct memfs_node *cr = memfs_root(ch), *cf = lk(ch, cr, "shared");
        memfs_pread(src, f, buf, 64 * CH, 0);
        int ok = 1;
        for (uint64_t i = 0; i < 64 * CH; i++)
            ok &= buf[i] == a.fill;
        memfs_pread(ch, cf, buf, 64 * CH, 0);
        for (uint64_t i = 0; i < 64 * CH; i++)
            ok &= buf[i] == b.fill;
        CHECK(ok);
        CHECK_EQ(memfs_bytes_private(ch), 64 * CH);
        memfs_node_put(ch, cf);
        memfs_node_put(ch, cr);
        memfs_free(ch);
    }
    free(buf);
    memfs_node_put(src, f);
    memfs_node_put(src, root);
    memfs_free(src);
}

struct hammer_arg {
    struct memfs *fs;
    int id;
    int bad;
    uint64_t seed;
};

static void *hammer(void *p) {
    struct hammer_arg *a = p;
    struct memfs *fs = a->fs;
    struct memfs_node *root = memfs_root(fs), *d = lk(fs, root, "work");
    char name[32], name2[32], data[200], got[200];
    for (int i = 0; i < 3000; i++) {
        int k = (int)(rnd_r(&a->seed) % 20);
        snprintf(name, sizeof(name), "t%d-%d", a->id, k);
        snprintf(name2, sizeof(name2), "t%d-%d", a->id, (k + 1) % 20);
        struct memfs_node *n = NULL;
        switch (rnd_r(&a->seed) % 8) {
        case 0:
        case 1:
            if (memfs_mknode(fs, d, name, S_IFREG | 0644, NULL, &n) == 0 || (n = lk(fs, d, name))) {
                int len = snprintf(data, sizeof(data), "%s:%d:payload", name, i);
                memfs_truncate(fs, n, 0);
                memfs_pwrite(fs, n, data, (uint64_t)len, 0);
                a->bad += memfs_pread(fs, n, got, sizeof(got), 0) != len ||
                          memcmp(got, data, (size_t)len) != 0;
                memfs_node_put(fs, n);
            }
            break;
        case 2:
            memfs_unlink(fs, d, name, 0);
            break;
        case 3:
            memfs_rename(fs, d, name, d, name2, 0);
            break;
        case 4: { /* read someone else's file: content names itself */
            snprintf(name2, sizeof(name2), "t%d-%d", (a->id + 1) % 4, k);
            if ((n = lk(fs, d, name2))) {
                int64_t r = memfs_pread(fs, n, got, sizeof(got) - 1, 0);
                memfs_node_put(fs, n);
                if (r > 0) {
                    got[r] = 0;
                    a->bad += strncmp(got, "t", 1) != 0;
                }
            }
            break;
        }
        case 5: {
            struct listing l;
            list_all(fs, d, &l);
            listing_free(&l);
            break;
        }
        case 6: {
            struct memfs *c = memfs_clone(fs);
            a->bad += c == NULL;
            memfs_free(c);
            break;
        }
        default: {
            struct memfs_node *big = lk(fs, root, "bigshared");
            char blk[1024];
            memset(blk, 'A' + a->id, sizeof(blk));
            uint64_t off = (rnd_r(&a->seed) % 256) * sizeof(blk);
            memfs_pwrite(fs, big, blk, sizeof(blk), off);
            memfs_pread(fs, big, got, 100, off + 24);
            memfs_node_put(fs, big);
            break;
        }
        }
    }
    memfs_node_put(fs, d);
    memfs_node_put(fs, root);
    return NULL;
}

static void test_threads_hammer(void) {
    struct memfs *fs = memfs_new(256 * MiB);
    struct memfs_node *root = memfs_root(fs);
    memfs_mknode(fs, root, "work", S_IFDIR | 0755, NULL, NULL);
    memfs_mknode(fs, root, "bigshared", S_IFREG | 0644, NULL, NULL);
    struct hammer_arg args[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct hammer_arg){fs, i, 0, 1000 + (uint64_t)i * 7919};
        pthread_create(&th[i], NULL, hammer, &args[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    int bad = 0;
    for (int i = 0; i < 4; i++)
        bad += args[i].bad;
    CHECK_EQ(bad, 0);
    /* every surviving file still names itself */
    struct memfs_node *d = lk(fs, root, "work");
    struct listing l;
    list_all(fs, d, &l);
    int wrong = 0;
    for (int i = 2; i < l.n; i++) {
        char *s = slurp(fs, d, l.names[i]);
        wrong += !s || (s[0] && s[0] != 't');
        free(s);
        memfs_unlink(fs, d, l.names[i], 0);
    }
    listing_free(&l);
    CHECK_EQ(wrong, 0);
    memfs_node_put(fs, d);
    memfs_unlink(fs, root, "work", 1);
    memfs_unlink(fs, root, "bigshared", 0);
    CHECK_EQ(memfs_bytes_used(fs), 0);
    CHECK_EQ(memfs_node_count(fs), 1);
    memfs_node_put(fs, root);
    memfs_free(fs);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    test_file_basics();
    test_file_model();
    test_dirs();
    test_unlink_open();
    test_rename();
    test_symlink_and_links();
    test_readdir();
    test_limit();
    test_accounting_churn();
    test_clone_basic();
    test_clone_depth();
    test_clone_orphans();
    test_clone_private();
    test_clone_speed();
    test_save_load();
    test_threads_cow();
    test_threads_hammer();
    if (g_fail) {
        printf("memfs: %d passed, %d FAILED\n", g_pass, g_fail);
        return 1;
    }
    printf("memfs: %d passed\n", g_pass);
    return 0;
}
