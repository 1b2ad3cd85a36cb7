/* memfs: A layer's life: new, free, copy-on-write clone; accounting. */
#define _GNU_SOURCE
#include "fs/memfs_impl.h"

/* ------------------------------------------------------------------------ */
/* Lifecycle                                                                */

struct memfs *memfs_alloc(uint64_t byte_limit, uint64_t itab_size) {
    struct memfs *fs = calloc(1, sizeof(*fs));
    if (!fs)
        return NULL;
    fs->itab = calloc(itab_size, sizeof(*fs->itab));
    if (!fs->itab) {
        free(fs);
        return NULL;
    }
    pthread_mutex_init(&fs->lock, NULL);
    fs->itab_size = itab_size;
    fs->byte_limit = byte_limit;
    fs->next_ino = MEMFS_ROOT_INO + 1;
    return fs;
}

struct memfs *memfs_new(uint64_t byte_limit) {
    struct memfs *fs = memfs_alloc(byte_limit, MEMFS_ITAB_MIN);
    if (!fs)
        return NULL;
    struct memfs_node *root = memfs_node_alloc(fs, MEMFS_ROOT_INO, S_IFDIR | 0755);
    if (!root) {
        memfs_free(fs);
        return NULL;
    }
    root->atime = root->mtime = root->ctime = memfs_now();
    root->nlink = 1;
    root->u.dir.parent = root;
    fs->root = root; /* the root is not charged */
    return fs;
}

void memfs_free(struct memfs *fs) {
    if (!fs)
        return;
    for (uint64_t b = 0; b < fs->itab_size; b++) {
        struct memfs_node *n = fs->itab[b], *next;
        for (; n; n = next) {
            next = n->hnext;
            memfs_node_release(n);
            free(n);
        }
    }
    free(fs->itab);
    free(fs->held);
    pthread_mutex_destroy(&fs->lock);
    free(fs);
}

void memfs_drop_clone_holds(struct memfs *fs) {
    memfs_lock(fs);
    for (size_t i = 0; i < fs->nheld; i++) {
        fs->held[i]->held = false;
        memfs_node_maybe_free(fs, fs->held[i]);
    }
    free(fs->held);
    fs->held = NULL;
    fs->nheld = fs->cap_held = 0;
    memfs_unlock(fs);
}

/* Copies node s (of another layer) into dst without its directory entries:
 * file chunks are shared (refs + 1), no charge (the clone copies bytes_used). */
static struct memfs_node *memfs_node_copy(struct memfs *dst, const struct memfs_node *s) {
    struct memfs_node *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    atomic_init(&n->refs, 0);
    n->ino = s->ino;
    n->mode = __atomic_load_n(&s->mode, __ATOMIC_RELAXED);
    n->nlink = s->nlink;
    n->atime = s->atime;
    n->mtime = s->mtime;
    n->ctime = s->ctime;
    if (memfs_is_data(s)) {
        const struct memfs_file *sf = &s->u.file;
        struct memfs_file *f = &n->u.file;
        if (sf->nslots) {
            f->slots = malloc(sf->nslots * sizeof(*f->slots));
            if (!f->slots) {
                free(n);
                return NULL;
            }
            memcpy(f->slots, sf->slots, sf->nslots * sizeof(*f->slots));
            for (uint64_t i = 0; i < sf->nslots; i++)
                if (f->slots[i])
                    memfs_chunk_get(f->slots[i]);
        }
        f->nslots = sf->nslots;
        f->size = sf->size;
        f->alloc = sf->alloc;
    } else if (memfs_is_lnk(s)) {
        n->u.link.target = memfs_memdup(s->u.link.target, s->u.link.len);
        if (!n->u.link.target) {
            free(n);
            return NULL;
        }
        n->u.link.len = s->u.link.len;
    } else {
        n->u.dir.next_seq = s->u.dir.next_seq;
    }
    memfs_itab_insert(dst, n);
    return n;
}

/* Copies the entries of directory s into dn; every node they name already
 * exists in dst. Entries keep their cookies. */
static int memfs_dir_copy(struct memfs *dst, struct memfs_node *dn, const struct memfs_node *s) {
    const struct memfs_dir *sd = &s->u.dir;
    struct memfs_dir *d = &dn->u.dir;
    d->next_seq = sd->next_seq;
    d->nsubdirs = sd->nsubdirs;
    d->parent = sd->parent ? memfs_itab_find(dst, sd->parent->ino) : NULL;
    if (!sd->live)
        return 0;
    uint32_t cap = MEMFS_DIR_MIN;
    while (cap < sd->live)
        cap *= 2;
    struct memfs_dirent *ents = malloc(cap * sizeof(*ents));
    int32_t *buckets = malloc(cap * sizeof(*buckets));
    if (!ents || !buckets) {
        free(ents);
        free(buckets);
        return -ENOMEM;
    }
    d->ents = ents;
    d->buckets = buckets;
    d->cap = d->nbuckets = cap;
    int rc = 0;
    for (uint32_t i = 0; i < sd->nents && rc == 0; i++) {
        const struct memfs_dirent *se = &sd->ents[i];
        if (!se->node)
            continue;
        struct memfs_dirent *e = &d->ents[d->nents];
        *e = *se;
        e->node = memfs_itab_find(dst, se->node->ino);
        e->name = memfs_memdup(se->name, se->namelen);
        if (!e->name) {
            rc = -ENOMEM;
            break;
        }
        d->nents++;
        d->live++;
    }
    memfs_dir_rehash(d);
    return rc;
}

static int memfs_clone_locked(struct memfs *src, struct memfs *dst) {
    for (uint64_t b = 0; b < src->itab_size; b++)
        for (struct memfs_node *s = src->itab[b]; s; s = s->hnext) {
            struct memfs_node *n = memfs_node_copy(dst, s);
            if (!n)
                return -ENOMEM;
            if (s->nlink == 0 && s != src->root && memfs_hold(dst, n) < 0)
                return -ENOMEM;
        }
    for (uint64_t b = 0; b < src->itab_size; b++)
        for (struct memfs_node *s = src->itab[b]; s; s = s->hnext)
            if (memfs_is_dir(s)) {
                int rc = memfs_dir_copy(dst, memfs_itab_find(dst, s->ino), s);
                if (rc < 0)
                    return rc;
            }
    dst->root = memfs_itab_find(dst, src->root->ino);
    dst->next_ino = src->next_ino;
    dst->bytes_used = src->bytes_used;
    return 0;
}

struct memfs *memfs_clone(struct memfs *src) {
    memfs_lock(src);
    struct memfs *dst = memfs_alloc(src->byte_limit, src->itab_size);
    int rc = dst ? memfs_clone_locked(src, dst) : -ENOMEM;
    memfs_unlock(src);
    if (rc < 0) {
        memfs_free(dst);
        return NULL;
    }
    return dst;
}

/* ------------------------------------------------------------------------ */
/* Accounting                                                               */

uint64_t memfs_bytes_used(struct memfs *fs) {
    memfs_lock(fs);
    uint64_t v = fs->bytes_used;
    memfs_unlock(fs);
    return v;
}

uint64_t memfs_byte_limit(struct memfs *fs) { return fs->byte_limit; }

uint64_t memfs_node_count(struct memfs *fs) {
    memfs_lock(fs);
    uint64_t v = fs->nnodes;
    memfs_unlock(fs);
    return v;
}

uint64_t memfs_bytes_private(struct memfs *fs) {
    uint64_t v = 0;
    memfs_lock(fs);
    for (uint64_t b = 0; b < fs->itab_size; b++)
        for (struct memfs_node *n = fs->itab[b]; n; n = n->hnext) {
            if (!memfs_is_reg(n))
                continue;
            for (uint64_t i = 0; i < n->u.file.nslots; i++) {
                struct memfs_chunk *c = n->u.file.slots[i];
                if (c && !memfs_chunk_shared(c))
                    v += c->cap;
            }
        }
    memfs_unlock(fs);
    return v;
}
