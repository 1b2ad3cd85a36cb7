/* Host-side access to the writable layer (layer_api.h).
 *
 * Invariant: these calls touch only memfs, never the host filesystem; a path
 * outside /tmp and /sandbox is refused before anything is looked up. Symlinks
 * are never followed, so a guest-made link cannot redirect a host transfer. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>

#include "fs/fs_memfs.h"
#include "fs/fs_view.h"
#include "core/sandbox.h"
#include "api/vmm_api.h"
#include "api/layer_api.h"

static bool in_layer(const char *path)
{
    static const char *const mounts[] = {"/tmp", "/sandbox"};
    for (size_t i = 0; i < FJ_ARRAY_SIZE(mounts); i++) {
        size_t n = strlen(mounts[i]);
        if (strncmp(path, mounts[i], n) == 0 && (path[n] == 0 || path[n] == '/'))
            return true;
    }
    return false;
}

/* Walks path; *parent gets the directory holding the last component (a new
 * reference) and *leaf its name (inside buf). Rejects "." and "..". */
static int walk_parent(struct memfs *fs, const char *path, char *buf, size_t buflen,
                       struct memfs_node **parent, const char **leaf)
{
    if (!path || path[0] != '/' || !in_layer(path))
        return -EACCES;
    if (strlen(path) >= buflen)
        return -ENAMETOOLONG;
    strcpy(buf, path);
    size_t len = strlen(buf);
    while (len > 1 && buf[len - 1] == '/')
        buf[--len] = 0;
    char *last = strrchr(buf, '/');
    *last = 0;
    *leaf = last + 1;
    struct memfs_node *dir = memfs_root(fs);
    char *save = NULL;
    /* The parent's components lie before the leaf; a path whose only slash
     * is its first ("/sandbox") has the root as parent and none to walk. */
    char *first = last == buf ? NULL : strtok_r(buf + 1, "/", &save);
    for (char *part = first; part; part = strtok_r(NULL, "/", &save)) {
        if (!strcmp(part, ".") || !strcmp(part, "..")) {
            memfs_node_put(fs, dir);
            return -EACCES;
        }
        struct memfs_node *next;
        int err = memfs_lookup(fs, dir, part, &next);
        memfs_node_put(fs, dir);
        if (err < 0)
            return err;
        if (S_ISLNK(memfs_node_mode(next))) {
            memfs_node_put(fs, next);
            return -ELOOP;
        }
        if (!S_ISDIR(memfs_node_mode(next))) {
            memfs_node_put(fs, next);
            return -ENOTDIR;
        }
        dir = next;
    }
    if (!strcmp(*leaf, ".") || !strcmp(*leaf, "..")) {
        memfs_node_put(fs, dir);
        return -EACCES;
    }
    *parent = dir;
    return 0;
}

static int lookup_node(struct memfs *fs, const char *path, struct memfs_node **out)
{
    char buf[4096];
    struct memfs_node *dir;
    const char *leaf;
    int err = walk_parent(fs, path, buf, sizeof(buf), &dir, &leaf);
    if (err < 0)
        return err;
    if (!*leaf) { /* the layer root itself is not addressable */
        memfs_node_put(fs, dir);
        return -EACCES;
    }
    err = memfs_lookup(fs, dir, leaf, out);
    memfs_node_put(fs, dir);
    if (err == 0 && S_ISLNK(memfs_node_mode(*out))) {
        memfs_node_put(fs, *out);
        return -ELOOP;
    }
    return err;
}

static struct memfs *layer_of(fj_sandbox *sb) { return fs_view_layer(sb->view); }

int64_t fj_layer_read(fj_sandbox *sb, const char *path, void *buf, uint64_t len, uint64_t off)
{
    struct memfs *fs = layer_of(sb);
    struct memfs_node *n;
    int err = lookup_node(fs, path, &n);
    if (err < 0)
        return err;
    int64_t r = S_ISREG(memfs_node_mode(n)) ? memfs_pread(fs, n, buf, len, off) : -EISDIR;
    memfs_node_put(fs, n);
    return r;
}

int64_t fj_layer_write(fj_sandbox *sb, const char *path, const void *buf, uint64_t len, uint64_t off,
                       int truncate, uint32_t mode)
{
    struct memfs *fs = layer_of(sb);
    char tmp[4096];
    struct memfs_node *dir, *n;
    const char *leaf;
    int err = walk_parent(fs, path, tmp, sizeof(tmp), &dir, &leaf);
    if (err < 0)
        return err;
    if (!*leaf) {
        memfs_node_put(fs, dir);
        return -EISDIR;
    }
    err = memfs_lookup(fs, dir, leaf, &n);
    if (err == -ENOENT)
        err = memfs_mknode(fs, dir, leaf, S_IFREG | (mode & 07777), NULL, &n);
    memfs_node_put(fs, dir);
    if (err < 0)
        return err;
    int64_t r;
    if (!S_ISREG(memfs_node_mode(n)))
        r = S_ISDIR(memfs_node_mode(n)) ? -EISDIR : -ELOOP;
    else if (truncate && (r = memfs_truncate(fs, n, off)) < 0)
        ;
    else
        r = memfs_pwrite(fs, n, buf, len, off);
    memfs_node_put(fs, n);
    return r;
}

static void fill_dirent(struct memfs *fs, struct memfs_node *n, const char *name, struct fj_dirent *out)
{
    struct stat st;
    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "%s", name);
    if (memfs_getattr(fs, n, &st) == 0) {
        out->mode = st.st_mode;
        out->size = (uint64_t)st.st_size;
        out->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    }
}

int fj_layer_stat(fj_sandbox *sb, const char *path, struct fj_dirent *out)
{
    struct memfs *fs = layer_of(sb);
    struct memfs_node *n;
    int err = lookup_node(fs, path, &n);
    if (err < 0)
        return err;
    const char *slash = strrchr(path, '/');
    fill_dirent(fs, n, slash ? slash + 1 : path, out);
    memfs_node_put(fs, n);
    return 0;
}

int fj_layer_mkdir(fj_sandbox *sb, const char *path, uint32_t mode)
{
    struct memfs *fs = layer_of(sb);
    char tmp[4096];
    struct memfs_node *dir;
    const char *leaf;
    int err = walk_parent(fs, path, tmp, sizeof(tmp), &dir, &leaf);
    if (err < 0)
        return err;
    err = *leaf ? memfs_mknode(fs, dir, leaf, S_IFDIR | (mode & 07777), NULL, NULL) : -EEXIST;
    memfs_node_put(fs, dir);
    return err;
}

struct list_ctx {
    struct memfs *fs;
    struct memfs_node *dir;
    uint64_t skip, index;
    struct fj_dirent *out;
    int max, filled;
};

static int list_emit(void *p, const char *name, uint64_t ino, unsigned char type, uint64_t next)
{
    struct list_ctx *c = p;
    if (!strcmp(name, ".") || !strcmp(name, ".."))
        return 0;
    if (c->index++ < c->skip)
        return 0;
    if (c->filled == c->max)
        return 1;
    struct fj_dirent *d = &c->out[c->filled++];
    memset(d, 0, sizeof(*d));
    snprintf(d->name, sizeof(d->name), "%s", name);
    d->mode = type == 4 ? S_IFDIR : type == 10 ? S_IFLNK : S_IFREG; /* DT_DIR, DT_LNK */
    (void)ino;
    return 0;
}

int fj_layer_list(fj_sandbox *sb, const char *path, uint64_t start, struct fj_dirent *out, int max)
{
    struct memfs *fs = layer_of(sb);
    struct memfs_node *dir;
    int err = lookup_node(fs, path, &dir);
    if (err < 0)
        return err;
    struct list_ctx c = {fs, dir, start, 0, out, max, 0};
    uint64_t cookie = 0;
    err = memfs_readdir(fs, dir, &cookie, list_emit, &c);
    /* Sizes and times: the emit callback runs under the layer lock. */
    for (int i = 0; err >= 0 && i < c.filled; i++) {
        struct memfs_node *n;
        if (memfs_lookup(fs, dir, out[i].name, &n) == 0) {
            char name[256];
            memcpy(name, out[i].name, sizeof(name));
            fill_dirent(fs, n, name, &out[i]);
            memfs_node_put(fs, n);
        }
    }
    memfs_node_put(fs, dir);
    return err < 0 ? err : c.filled;
}

int fj_layer_remove(fj_sandbox *sb, const char *path)
{
    struct memfs *fs = layer_of(sb);
    char tmp[4096];
    struct memfs_node *dir, *n;
    const char *leaf;
    int err = walk_parent(fs, path, tmp, sizeof(tmp), &dir, &leaf);
    if (err < 0)
        return err;
    if (!*leaf) {
        memfs_node_put(fs, dir);
        return -EACCES;
    }
    err = memfs_lookup(fs, dir, leaf, &n);
    if (err == 0) {
        int is_dir = S_ISDIR(memfs_node_mode(n));
        memfs_node_put(fs, n);
        err = memfs_unlink(fs, dir, leaf, is_dir);
    }
    memfs_node_put(fs, dir);
    return err;
}
