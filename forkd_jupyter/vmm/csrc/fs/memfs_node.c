/* memfs: Chunks, the inode table, node lifetime and node references. */
#define _GNU_SOURCE
#include "fs/memfs_impl.h"

/* ------------------------------------------------------------------------ */
/* Chunks                                                                   */

struct memfs_chunk *memfs_chunk_alloc(uint32_t cap) {
    struct memfs_chunk *c = calloc(1, sizeof(*c) + cap);
    if (!c)
        return NULL;
    atomic_init(&c->refs, 1);
    c->cap = cap;
    return c;
}

void memfs_chunk_get(struct memfs_chunk *c) {
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

/* acq_rel: the last holder's free() happens after every other holder's last
 * access (release) and sees them (acquire). */
void memfs_chunk_put(struct memfs_chunk *c) {
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
        free(c);
}

/* Acquire pairs with the release in memfs_chunk_put: once another layer's
 * drop makes us the only holder, its reads of data[] happen before our writes. */
bool memfs_chunk_shared(struct memfs_chunk *c) {
    return atomic_load_explicit(&c->refs, memory_order_acquire) > 1;
}

/* Capacity for chunk `index` holding `need` bytes (1..CHUNK). Chunk 0 is sized
 * to fit (64 B, doubling to 4 KiB, then 4 KiB steps) so small files stay
 * small; every other chunk is full size. */
uint32_t memfs_chunk_cap(uint64_t index, uint64_t need) {
    if (index > 0 || need >= MEMFS_CHUNK_SIZE)
        return MEMFS_CHUNK_SIZE;
    if (need > MEMFS_PAGE)
        return (uint32_t)((need + MEMFS_PAGE - 1) & ~(uint64_t)(MEMFS_PAGE - 1));
    uint32_t cap = MEMFS_SMALL_MIN;
    while (cap < need)
        cap *= 2;
    return cap;
}

/* ------------------------------------------------------------------------ */
/* Inode table                                                              */

static uint64_t memfs_ino_slot(uint64_t ino, uint64_t size) {
    uint64_t h = ino * 0x9E3779B97F4A7C15ULL;
    return (h ^ (h >> 29)) & (size - 1);
}

/* Best effort: on ENOMEM the chains just get longer. */
static void memfs_itab_grow(struct memfs *fs) {
    uint64_t size = fs->itab_size * 2;
    struct memfs_node **t = calloc(size, sizeof(*t));
    if (!t)
        return;
    for (uint64_t b = 0; b < fs->itab_size; b++) {
        struct memfs_node *n = fs->itab[b], *next;
        for (; n; n = next) {
            next = n->hnext;
            uint64_t s = memfs_ino_slot(n->ino, size);
            n->hnext = t[s];
            t[s] = n;
        }
    }
    free(fs->itab);
    fs->itab = t;
    fs->itab_size = size;
}

void memfs_itab_insert(struct memfs *fs, struct memfs_node *n) {
    if (fs->nnodes >= fs->itab_size)
        memfs_itab_grow(fs);
    uint64_t s = memfs_ino_slot(n->ino, fs->itab_size);
    n->hnext = fs->itab[s];
    fs->itab[s] = n;
    fs->nnodes++;
}

static void memfs_itab_remove(struct memfs *fs, struct memfs_node *n) {
    struct memfs_node **pp = &fs->itab[memfs_ino_slot(n->ino, fs->itab_size)];
    while (*pp && *pp != n)
        pp = &(*pp)->hnext;
    if (*pp) {
        *pp = n->hnext;
        fs->nnodes--;
    }
}

struct memfs_node *memfs_itab_find(const struct memfs *fs, uint64_t ino) {
    struct memfs_node *n = fs->itab[memfs_ino_slot(ino, fs->itab_size)];
    while (n && n->ino != ino)
        n = n->hnext;
    return n;
}

int memfs_hold(struct memfs *fs, struct memfs_node *n) {
    if (fs->nheld == fs->cap_held) {
        size_t cap = fs->cap_held ? fs->cap_held * 2 : 16;
        struct memfs_node **h = realloc(fs->held, cap * sizeof(*h));
        if (!h)
            return -ENOMEM;
        fs->held = h;
        fs->cap_held = cap;
    }
    fs->held[fs->nheld++] = n;
    n->held = true;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Node lifetime                                                            */

/* Allocates a node with a given inode number and inserts it in the table; no
 * charge, no timestamps. refs = 0, nlink = 0. */
struct memfs_node *memfs_node_alloc(struct memfs *fs, uint64_t ino, uint32_t mode) {
    struct memfs_node *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    atomic_init(&n->refs, 0);
    n->ino = ino;
    n->mode = mode;
    if (memfs_is_dir(n))
        n->u.dir.next_seq = MEMFS_FIRST_SEQ;
    memfs_itab_insert(fs, n);
    return n;
}

/* A fresh node with the next inode number, charged, timestamps now. */
int memfs_node_create(struct memfs *fs, uint32_t mode, struct memfs_node **out) {
    int rc = memfs_charge(fs, MEMFS_NODE_CHARGE);
    if (rc < 0)
        return rc;
    struct memfs_node *n = memfs_node_alloc(fs, fs->next_ino, mode);
    if (!n) {
        memfs_uncharge(fs, MEMFS_NODE_CHARGE);
        return -ENOMEM;
    }
    fs->next_ino++;
    n->atime = n->mtime = n->ctime = memfs_now();
    *out = n;
    return 0;
}

/* Releases everything a node owns (not the node itself); returns the bytes it
 * was charged for. */
uint64_t memfs_node_release(struct memfs_node *n) {
    uint64_t charged = MEMFS_NODE_CHARGE;
    if (memfs_is_data(n)) {
        struct memfs_file *f = &n->u.file;
        for (uint64_t i = 0; i < f->nslots; i++)
            if (f->slots[i])
                memfs_chunk_put(f->slots[i]);
        charged += f->alloc + f->nslots * MEMFS_SLOT_CHARGE;
        free(f->slots);
    } else if (memfs_is_lnk(n)) {
        charged += n->u.link.len;
        free(n->u.link.target);
    } else {
        struct memfs_dir *d = &n->u.dir;
        for (uint32_t i = 0; i < d->nents; i++) {
            if (d->ents[i].node)
                charged += MEMFS_DENTRY_CHARGE + d->ents[i].namelen;
            free(d->ents[i].name);
        }
        free(d->ents);
        free(d->buckets);
    }
    return charged;
}

void memfs_node_destroy(struct memfs *fs, struct memfs_node *n) {
    memfs_itab_remove(fs, n);
    memfs_uncharge(fs, memfs_node_release(n));
    free(n);
}

/* Frees n if nothing keeps it alive any more. Lock held. */
void memfs_node_maybe_free(struct memfs *fs, struct memfs_node *n) {
    if (n->nlink == 0 && !n->held && n != fs->root &&
        atomic_load_explicit(&n->refs, memory_order_acquire) == 0)
        memfs_node_destroy(fs, n);
}

/* One entry naming n in directory dn has gone (n may be freed later by the
 * caller through memfs_node_maybe_free). */
void memfs_node_unlinked(struct memfs_node *dn, struct memfs_node *n) {
    n->nlink--;
    if (memfs_is_dir(n)) {
        dn->u.dir.nsubdirs--;
        n->u.dir.parent = NULL;
    }
    memfs_touch_c(n);
}

/* ------------------------------------------------------------------------ */
/* Node references                                                          */

struct memfs_node *memfs_root(struct memfs *fs) {
    memfs_node_get(fs->root);
    return fs->root;
}

struct memfs_node *memfs_node_by_ino(struct memfs *fs, uint64_t ino) {
    memfs_lock(fs);
    struct memfs_node *n = memfs_itab_find(fs, ino);
    if (n)
        memfs_node_get(n);
    memfs_unlock(fs);
    return n;
}

void memfs_node_get(struct memfs_node *n) {
    atomic_fetch_add_explicit(&n->refs, 1, memory_order_relaxed);
}

void memfs_node_put(struct memfs *fs, struct memfs_node *n) {
    if (!n)
        return;
    memfs_lock(fs);
    if (atomic_fetch_sub_explicit(&n->refs, 1, memory_order_acq_rel) == 1)
        memfs_node_maybe_free(fs, n);
    memfs_unlock(fs);
}

uint64_t memfs_node_ino(const struct memfs_node *n) { return n->ino; }

uint32_t memfs_node_mode(const struct memfs_node *n) {
    return __atomic_load_n(&n->mode, __ATOMIC_RELAXED);
}
