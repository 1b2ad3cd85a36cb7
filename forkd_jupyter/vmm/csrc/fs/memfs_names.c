/* memfs: The namespace: lookup, create, unlink, rename, link. */
#define _GNU_SOURCE
#include "fs/memfs_impl.h"

/* ------------------------------------------------------------------------ */
/* Names                                                                    */

/* Checks that dir is a directory that still exists. */
static int memfs_dir_usable(const struct memfs_node *dir) {
    if (!memfs_is_dir(dir))
        return -ENOTDIR;
    return dir->nlink ? 0 : -ENOENT;
}

static int memfs_lookup_locked(struct memfs_node *dir, const char *name, struct memfs_node **out) {
    if (!memfs_is_dir(dir))
        return -ENOTDIR;
    if (strcmp(name, ".") == 0) {
        *out = dir;
        return 0;
    }
    if (dir->nlink == 0)
        return -ENOENT;
    if (strcmp(name, "..") == 0) {
        *out = dir->u.dir.parent;
        return 0;
    }
    size_t len;
    int rc = memfs_name_check(name, &len);
    if (rc < 0)
        return rc == -EINVAL ? -ENOENT : rc;
    int32_t slot = memfs_dir_lookup(dir, name, len);
    if (slot < 0)
        return -ENOENT;
    *out = dir->u.dir.ents[slot].node;
    return 0;
}

int memfs_lookup(struct memfs *fs, struct memfs_node *dir, const char *name,
                 struct memfs_node **out) {
    struct memfs_node *n = NULL;
    memfs_lock(fs);
    int rc = memfs_lookup_locked(dir, name, &n);
    if (rc == 0)
        memfs_node_get(n);
    memfs_unlock(fs);
    *out = n;
    return rc;
}

/* Fills in a new node's type-specific data; symlink target charged as data. */
static int memfs_node_init_type(struct memfs *fs, struct memfs_node *n, struct memfs_node *dir,
                                const char *target, size_t tlen) {
    if (memfs_is_lnk(n)) {
        int rc = memfs_charge(fs, tlen);
        if (rc < 0)
            return rc;
        n->u.link.target = memfs_memdup(target, tlen);
        if (!n->u.link.target) {
            memfs_uncharge(fs, tlen);
            return -ENOMEM;
        }
        n->u.link.len = (uint32_t)tlen;
    } else if (memfs_is_dir(n)) {
        n->u.dir.parent = dir;
    }
    return 0;
}

static int memfs_mknode_locked(struct memfs *fs, struct memfs_node *dir, const char *name,
                               uint32_t mode, const char *target, struct memfs_node **out) {
    uint32_t type = mode & S_IFMT;
    size_t len, tlen = 0;
    int rc = memfs_dir_usable(dir);
    if (rc < 0)
        return rc;
    if (memfs_is_dot(name))
        return -EEXIST;
    if ((rc = memfs_name_check(name, &len)) < 0)
        return rc;
    if (memfs_dir_lookup(dir, name, len) >= 0)
        return -EEXIST;
    if (type == S_IFLNK) {
        tlen = target ? strnlen(target, MEMFS_SYMLINK_MAX + 1) : 0;
        if (tlen == 0)
            return -ENOENT;
        if (tlen > MEMFS_SYMLINK_MAX)
            return -ENAMETOOLONG;
        mode = S_IFLNK | 0777;
    } else if (type != S_IFREG && type != S_IFDIR && !memfs_type_is_name_only(type)) {
        return -EINVAL;
    }
    struct memfs_node *n;
    if ((rc = memfs_node_create(fs, type | (mode & 07777), &n)) < 0)
        return rc;
    rc = memfs_node_init_type(fs, n, dir, target, tlen);
    if (rc == 0)
        rc = memfs_dir_add(fs, dir, name, len, n);
    if (rc < 0) {
        memfs_node_destroy(fs, n);
        return rc;
    }
    n->nlink = 1;
    if (type == S_IFDIR)
        dir->u.dir.nsubdirs++;
    memfs_touch_mc(dir);
    *out = n;
    return 0;
}

int memfs_mknode(struct memfs *fs, struct memfs_node *dir, const char *name, uint32_t mode,
                 const char *symlink_target, struct memfs_node **out) {
    struct memfs_node *n = NULL;
    memfs_lock(fs);
    int rc = memfs_mknode_locked(fs, dir, name, mode, symlink_target, &n);
    if (rc == 0 && out)
        memfs_node_get(n);
    memfs_unlock(fs);
    if (out)
        *out = rc == 0 ? n : NULL;
    return rc;
}

static int memfs_unlink_locked(struct memfs *fs, struct memfs_node *dir, const char *name,
                               int rmdir) {
    size_t len;
    int rc = memfs_dir_usable(dir);
    if (rc < 0)
        return rc;
    if (strcmp(name, ".") == 0)
        return rmdir ? -EINVAL : -EISDIR;
    if (strcmp(name, "..") == 0)
        return rmdir ? -ENOTEMPTY : -EISDIR;
    if ((rc = memfs_name_check(name, &len)) < 0)
        return rc == -EINVAL ? -ENOENT : rc;
    int32_t slot = memfs_dir_lookup(dir, name, len);
    if (slot < 0)
        return -ENOENT;
    struct memfs_node *n = dir->u.dir.ents[slot].node;
    if (rmdir && !memfs_is_dir(n))
        return -ENOTDIR;
    if (!rmdir && memfs_is_dir(n))
        return -EISDIR;
    if (rmdir && n->u.dir.live)
        return -ENOTEMPTY;
    memfs_dir_remove(fs, dir, slot);
    memfs_node_unlinked(dir, n);
    memfs_touch_mc(dir);
    memfs_node_maybe_free(fs, n);
    return 0;
}

int memfs_unlink(struct memfs *fs, struct memfs_node *dir, const char *name, int rmdir) {
    memfs_lock(fs);
    int rc = memfs_unlink_locked(fs, dir, name, rmdir);
    memfs_unlock(fs);
    return rc;
}

/* Moves a subdirectory's bookkeeping from one parent to another. */
static void memfs_reparent(struct memfs_node *n, struct memfs_node *from, struct memfs_node *to) {
    if (!memfs_is_dir(n) || from == to)
        return;
    from->u.dir.nsubdirs--;
    to->u.dir.nsubdirs++;
    n->u.dir.parent = to;
}

static void memfs_rename_exchange(struct memfs_node *olddir, int32_t os, struct memfs_node *newdir,
                                  int32_t ns) {
    struct memfs_node *src = olddir->u.dir.ents[os].node;
    struct memfs_node *tgt = newdir->u.dir.ents[ns].node;
    olddir->u.dir.ents[os].node = tgt;
    newdir->u.dir.ents[ns].node = src;
    memfs_reparent(src, olddir, newdir);
    memfs_reparent(tgt, newdir, olddir);
    memfs_touch_c(tgt);
}

/* Type rules for replacing tgt by src. */
static int memfs_rename_replace_check(const struct memfs_node *src, const struct memfs_node *tgt) {
    if (memfs_is_dir(src) && !memfs_is_dir(tgt))
        return -ENOTDIR;
    if (!memfs_is_dir(src) && memfs_is_dir(tgt))
        return -EISDIR;
    if (memfs_is_dir(tgt) && tgt->u.dir.live)
        return -ENOTEMPTY;
    return 0;
}

/* Plain rename (possibly replacing). Validations are done by the caller except
 * the replace type rules. */
static int memfs_rename_move(struct memfs *fs, struct memfs_node *olddir, const char *oldname,
                             size_t oldlen, struct memfs_node *newdir, const char *newname,
                             size_t newlen, int32_t ns) {
    int32_t os = memfs_dir_lookup(olddir, oldname, oldlen);
    struct memfs_node *src = olddir->u.dir.ents[os].node;
    struct memfs_node *tgt = ns >= 0 ? newdir->u.dir.ents[ns].node : NULL;
    int rc;
    if (tgt) {
        if ((rc = memfs_rename_replace_check(src, tgt)) < 0)
            return rc;
        newdir->u.dir.ents[ns].node = src;
        memfs_node_unlinked(newdir, tgt);
    } else {
        if ((rc = memfs_dir_add(fs, newdir, newname, newlen, src)) < 0)
            return rc;
        os = memfs_dir_lookup(olddir, oldname, oldlen); /* may have moved by compaction */
    }
    if (memfs_is_dir(src)) {
        olddir->u.dir.nsubdirs--;
        newdir->u.dir.nsubdirs++;
        src->u.dir.parent = newdir;
    }
    memfs_dir_remove(fs, olddir, os);
    if (tgt)
        memfs_node_maybe_free(fs, tgt);
    return 0;
}

static int memfs_rename_locked(struct memfs *fs, struct memfs_node *olddir, const char *oldname,
                               struct memfs_node *newdir, const char *newname, unsigned flags) {
    size_t oldlen, newlen;
    int rc;
    if ((flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE)) ||
        (flags & RENAME_NOREPLACE && flags & RENAME_EXCHANGE))
        return -EINVAL;
    if ((rc = memfs_dir_usable(olddir)) < 0 || (rc = memfs_dir_usable(newdir)) < 0)
        return rc;
    if (memfs_is_dot(oldname) || memfs_is_dot(newname))
        return -EBUSY;
    if ((rc = memfs_name_check(oldname, &oldlen)) < 0)
        return rc == -EINVAL ? -ENOENT : rc;
    if ((rc = memfs_name_check(newname, &newlen)) < 0)
        return rc;
    int32_t os = memfs_dir_lookup(olddir, oldname, oldlen);
    if (os < 0)
        return -ENOENT;
    int32_t ns = memfs_dir_lookup(newdir, newname, newlen);
    struct memfs_node *src = olddir->u.dir.ents[os].node;
    struct memfs_node *tgt = ns >= 0 ? newdir->u.dir.ents[ns].node : NULL;
    if ((flags & RENAME_NOREPLACE) && tgt)
        return -EEXIST;
    if ((flags & RENAME_EXCHANGE) && !tgt)
        return -ENOENT;
    if (memfs_is_dir(src) && memfs_is_ancestor(fs, src, newdir))
        return -EINVAL;
    if (tgt && memfs_is_dir(tgt) && memfs_is_ancestor(fs, tgt, olddir))
        return (flags & RENAME_EXCHANGE) ? -EINVAL : -ENOTEMPTY;
    if (src == tgt)
        return 0;
    if (flags & RENAME_EXCHANGE)
        memfs_rename_exchange(olddir, os, newdir, ns);
    else if ((rc = memfs_rename_move(fs, olddir, oldname, oldlen, newdir, newname, newlen, ns)) < 0)
        return rc;
    memfs_touch_c(src);
    memfs_touch_mc(olddir);
    memfs_touch_mc(newdir);
    return 0;
}

int memfs_rename(struct memfs *fs, struct memfs_node *olddir, const char *oldname,
                 struct memfs_node *newdir, const char *newname, unsigned flags) {
    memfs_lock(fs);
    int rc = memfs_rename_locked(fs, olddir, oldname, newdir, newname, flags);
    memfs_unlock(fs);
    return rc;
}

static int memfs_link_locked(struct memfs *fs, struct memfs_node *node, struct memfs_node *newdir,
                             const char *newname) {
    size_t len;
    int rc;
    if (memfs_is_dir(node))
        return -EPERM;
    if ((rc = memfs_dir_usable(newdir)) < 0)
        return rc;
    if (node->nlink == 0)
        return -ENOENT;
    if (node->nlink >= MEMFS_LINK_MAX)
        return -EMLINK;
    if (memfs_is_dot(newname))
        return -EEXIST;
    if ((rc = memfs_name_check(newname, &len)) < 0)
        return rc;
    if (memfs_dir_lookup(newdir, newname, len) >= 0)
        return -EEXIST;
    if ((rc = memfs_dir_add(fs, newdir, newname, len, node)) < 0)
        return rc;
    node->nlink++;
    memfs_touch_c(node);
    memfs_touch_mc(newdir);
    return 0;
}

int memfs_link(struct memfs *fs, struct memfs_node *node, struct memfs_node *newdir,
               const char *newname) {
    memfs_lock(fs);
    int rc = memfs_link_locked(fs, node, newdir, newname);
    memfs_unlock(fs);
    return rc;
}
