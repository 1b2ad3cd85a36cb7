/* memfs: Directory entries: the ordered array, its hash index, tombstones; listing. */
#define _GNU_SOURCE
#include "fs/memfs_impl.h"

/* ------------------------------------------------------------------------ */
/* Directories                                                              */

static int32_t memfs_dir_find(const struct memfs_dir *d, const char *name, size_t len, uint32_t h) {
    if (!d->nbuckets)
        return -1;
    for (int32_t i = d->buckets[h & (d->nbuckets - 1)]; i >= 0; i = d->ents[i].hnext) {
        const struct memfs_dirent *e = &d->ents[i];
        if (e->hash == h && e->namelen == len && memcmp(e->name, name, len) == 0)
            return i;
    }
    return -1;
}

void memfs_dir_rehash(struct memfs_dir *d) {
    for (uint32_t b = 0; b < d->nbuckets; b++)
        d->buckets[b] = -1;
    for (uint32_t i = 0; i < d->nents; i++) {
        struct memfs_dirent *e = &d->ents[i];
        if (!e->node)
            continue;
        uint32_t b = e->hash & (d->nbuckets - 1);
        e->hnext = d->buckets[b];
        d->buckets[b] = (int32_t)i;
    }
}

/* Drops tombstones in place, keeping seq order. Never allocates. */
static void memfs_dir_compact(struct memfs_dir *d) {
    uint32_t j = 0;
    for (uint32_t i = 0; i < d->nents; i++)
        if (d->ents[i].node)
            d->ents[j++] = d->ents[i];
    d->nents = j;
    memfs_dir_rehash(d);
}

/* Best effort: returns memory of a directory that has mostly emptied. */
static void memfs_dir_shrink(struct memfs_dir *d) {
    uint32_t cap = MEMFS_DIR_MIN;
    while (cap < d->live * 2)
        cap *= 2;
    if (cap >= d->cap || d->nents > cap)
        return;
    struct memfs_dirent *e = realloc(d->ents, cap * sizeof(*e));
    if (!e)
        return;
    d->ents = e;
    d->cap = cap;
    int32_t *b = realloc(d->buckets, cap * sizeof(*b));
    if (b) {
        d->buckets = b;
        d->nbuckets = cap;
    }
    memfs_dir_rehash(d);
}

/* Makes room for one more entry; -ENOMEM leaves the directory unchanged in
 * content (its arrays may have grown). */
static int memfs_dir_reserve(struct memfs_dir *d) {
    if (d->nents == d->cap && d->nents - d->live >= d->nents / 4 && d->nents > 0)
        memfs_dir_compact(d);
    if (d->nents == d->cap) {
        if (d->cap >= (1u << 30))
            return -ENOSPC;
        uint32_t cap = d->cap ? d->cap * 2 : MEMFS_DIR_MIN;
        struct memfs_dirent *e = realloc(d->ents, cap * sizeof(*e));
        if (!e)
            return -ENOMEM;
        d->ents = e;
        d->cap = cap;
    }
    if (d->nbuckets < d->cap) {
        int32_t *b = realloc(d->buckets, d->cap * sizeof(*b));
        if (!b)
            return -ENOMEM;
        d->buckets = b;
        d->nbuckets = d->cap;
        memfs_dir_rehash(d);
    }
    return 0;
}

/* Adds name -> node (name validated, absent). Charges the entry. The caller
 * adjusts nlink and subdirectory counts. */
int memfs_dir_add(struct memfs *fs, struct memfs_node *dn, const char *name, size_t len,
                  struct memfs_node *node) {
    struct memfs_dir *d = &dn->u.dir;
    int rc = memfs_charge(fs, MEMFS_DENTRY_CHARGE + len);
    if (rc < 0)
        return rc;
    char *copy = NULL;
    rc = memfs_dir_reserve(d);
    if (rc == 0 && !(copy = memfs_memdup(name, len)))
        rc = -ENOMEM;
    if (rc < 0) {
        memfs_uncharge(fs, MEMFS_DENTRY_CHARGE + len);
        return rc;
    }
    struct memfs_dirent *e = &d->ents[d->nents];
    e->node = node;
    e->name = copy;
    e->namelen = (uint32_t)len;
    e->hash = memfs_name_hash(name, len);
    e->seq = d->next_seq++;
    uint32_t b = e->hash & (d->nbuckets - 1);
    e->hnext = d->buckets[b];
    d->buckets[b] = (int32_t)d->nents;
    d->nents++;
    d->live++;
    return 0;
}

/* Removes entry `slot` and uncharges it. Slot indices of other entries may
 * change (compaction); names and cookies do not. */
void memfs_dir_remove(struct memfs *fs, struct memfs_node *dn, int32_t slot) {
    struct memfs_dir *d = &dn->u.dir;
    struct memfs_dirent *e = &d->ents[slot];
    int32_t *pp = &d->buckets[e->hash & (d->nbuckets - 1)];
    while (*pp != slot)
        pp = &d->ents[*pp].hnext;
    *pp = e->hnext;
    memfs_uncharge(fs, MEMFS_DENTRY_CHARGE + e->namelen);
    free(e->name);
    e->name = NULL;
    e->node = NULL;
    d->live--;
    uint32_t dead = d->nents - d->live;
    if (dead > 32 && dead > d->live) {
        memfs_dir_compact(d);
        if (d->cap > 64 && d->live * 8 < d->cap)
            memfs_dir_shrink(d);
    }
}

/* First entry index with seq >= seq (nents if none). */
static uint32_t memfs_dir_seek(const struct memfs_dir *d, uint64_t seq) {
    uint32_t lo = 0, hi = d->nents;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (d->ents[mid].seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Looks up a validated name; -1 if absent. */
int32_t memfs_dir_lookup(const struct memfs_node *dn, const char *name, size_t len) {
    return memfs_dir_find(&dn->u.dir, name, len, memfs_name_hash(name, len));
}

/* True if `a` is `d` or one of its ancestors. d must be a live directory. */
bool memfs_is_ancestor(const struct memfs *fs, const struct memfs_node *a,
                       const struct memfs_node *d) {
    for (;;) {
        if (d == a)
            return true;
        if (d == fs->root || !d->u.dir.parent)
            return false;
        d = d->u.dir.parent;
    }
}

/* ------------------------------------------------------------------------ */
/* Directory listing                                                        */

static unsigned char memfs_dtype(const struct memfs_node *n) {
    return memfs_is_dir(n)    ? DT_DIR
           : memfs_is_lnk(n)  ? DT_LNK
           : memfs_is_sock(n) ? DT_SOCK
           : memfs_is_fifo(n) ? DT_FIFO
                              : DT_REG;
}

/* Cookies: 0 = ".", 1 = "..", k >= 2 = the first live entry with seq >= k.
 * Entry seqs only grow, so a cookie stays meaningful across any change. */
static int memfs_readdir_locked(struct memfs_node *dir, uint64_t *cookie,
                                int (*emit)(void *, const char *, uint64_t, unsigned char,
                                            uint64_t),
                                void *ctx) {
    if (!memfs_is_dir(dir))
        return -ENOTDIR;
    if (*cookie == 0) {
        if (emit(ctx, ".", dir->ino, DT_DIR, 1))
            return 1;
        *cookie = 1;
    }
    if (*cookie == 1) {
        const struct memfs_node *p = dir->u.dir.parent ? dir->u.dir.parent : dir;
        if (emit(ctx, "..", p->ino, DT_DIR, MEMFS_FIRST_SEQ))
            return 1;
        *cookie = MEMFS_FIRST_SEQ;
    }
    const struct memfs_dir *d = &dir->u.dir;
    for (uint32_t i = memfs_dir_seek(d, *cookie); i < d->nents; i++) {
        const struct memfs_dirent *e = &d->ents[i];
        if (!e->node)
            continue;
        if (emit(ctx, e->name, e->node->ino, memfs_dtype(e->node), e->seq + 1))
            return 1;
        *cookie = e->seq + 1;
    }
    return 0;
}

int memfs_readdir(struct memfs *fs, struct memfs_node *dir, uint64_t *cookie,
                  int (*emit)(void *ctx, const char *name, uint64_t ino, unsigned char d_type,
                              uint64_t next_cookie),
                  void *ctx) {
    memfs_lock(fs);
    int rc = memfs_readdir_locked(dir, cookie, emit, ctx);
    memfs_unlock(fs);
    return rc;
}
