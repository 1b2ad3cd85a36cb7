/* memfs: in-memory, copy-on-write, branchable inode filesystem.
 *
 * Structure (docs/memfs.md has the long form):
 * - struct memfs owns every node through an inode-number hash table (itab).
 *   Directory entries name nodes but hold no reference count; a node's nlink
 *   counts the entries naming it. A node is freed when nlink == 0, refs == 0
 *   and it is not held by a clone (memfs_node_maybe_free), never otherwise.
 * - Files are arrays of slots pointing at refcounted chunks (NULL = hole).
 *   Chunks are shared between layers after a clone; a chunk with refs > 1 is
 *   immutable and is copied before a write (memfs_file_prepare).
 * - Directories keep entries in an array ordered by a per-directory sequence
 *   number (the readdir cookie) with a chained hash index over it.
 *
 * Locking: fs->lock guards everything in a layer except node refcounts and
 * chunk refcounts, which are atomic. A node refcount only drops to zero under
 * the lock (memfs_node_put takes it), so a node seen with refs == 0 under the
 * lock has no holder that could call memfs_node_get concurrently. */
#define _GNU_SOURCE
#include "fs/fs_memfs.h"
#include "lib/crc32.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MEMFS_ROOT_INO 1
#define MEMFS_SMALL_MIN 64u  /* smallest chunk capacity */
#define MEMFS_PAGE 4096u     /* chunk 0 grows in powers of two up to this, then by it */
#define MEMFS_SLOT_CHARGE 8u /* bytes charged per allocated slot of a file's chunk array */
#define MEMFS_ITAB_MIN 64u   /* initial inode table size (a power of two) */
#define MEMFS_DIR_MIN 8u     /* initial directory capacity (a power of two) */
#define MEMFS_FIRST_SEQ 2u   /* cookies 0 and 1 are "." and ".." */
#define MEMFS_RELATIME_NS (24ULL * 3600 * 1000000000ULL)

/* ------------------------------------------------------------------------ */
/* Data structures                                                          */

/* A unit of file data. refs counts the file slots, in any layer, that point
 * at it. refs > 1: immutable. refs == 1: owned by one slot of one node of one
 * layer and changed only under that layer's lock; only a clone of that layer,
 * under the same lock, can raise it again. Bytes of a chunk at file offsets
 * >= the file size are zero. */
struct memfs_chunk {
    atomic_uint refs;
    uint32_t cap; /* bytes in data[]; past cap (within the file size) reads as zero */
    unsigned char data[];
};

struct memfs_file {
    uint64_t size;
    struct memfs_chunk **slots; /* slot i: chunk i or NULL (a hole); no chunk at i >= nslots */
    uint64_t nslots;            /* allocated slots, charged MEMFS_SLOT_CHARGE each */
    uint64_t alloc;             /* sum of the caps of the chunks in slots[] */
};

/* A directory entry. Removed entries stay as tombstones (node == NULL,
 * name == NULL, out of every hash chain) until compaction. */
struct memfs_dirent {
    struct memfs_node *node;
    char *name; /* owned, NUL-terminated */
    uint64_t seq;
    uint32_t hash;
    uint32_t namelen;
    int32_t hnext; /* next entry index in the same hash chain, -1 ends */
};

/* Invariants: ents[0..nents) has strictly increasing seq; live entries are
 * exactly those in the hash chains; nbuckets == 0 or nbuckets >= cap, a power
 * of two. A removed directory (nlink == 0) has no live entries. */
struct memfs_dir {
    struct memfs_dirent *ents;
    uint32_t nents, cap, live;
    int32_t *buckets;
    uint32_t nbuckets;
    uint32_t nsubdirs;         /* live entries that are directories */
    uint64_t next_seq;         /* seq of the next entry added */
    struct memfs_node *parent; /* the directory naming this one; root: itself; removed: NULL */
};

struct memfs_link {
    char *target; /* owned, NUL-terminated */
    uint32_t len; /* charged as data */
};

struct memfs_node {
    atomic_uint refs;         /* caller references; reaches 0 only under the lock */
    uint32_t mode;            /* type bits fixed; perms written under lock with atomic stores */
    uint32_t nlink;           /* entries naming this node; the root counts 1 */
    bool held;                /* held by a clone or a loaded image until memfs_drop_clone_holds */
    uint64_t ino;             /* fixed */
    struct memfs_node *hnext; /* inode table chain */
    struct timespec atime, mtime, ctime;
    union {
        struct memfs_file file;
        struct memfs_dir dir;
        struct memfs_link link;
    } u;
};

struct memfs {
    pthread_mutex_t lock;
    uint64_t byte_limit;
    uint64_t bytes_used; /* <= byte_limit except as loaded within it */
    uint64_t next_ino;
    uint64_t nnodes;
    struct memfs_node **itab; /* ino hash table, itab_size a power of two */
    uint64_t itab_size;
    struct memfs_node *root;  /* fixed, never freed before memfs_free */
    struct memfs_node **held; /* nodes with held set */
    size_t nheld, cap_held;
};

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */

static void memfs_lock(struct memfs *fs) { pthread_mutex_lock(&fs->lock); }
static void memfs_unlock(struct memfs *fs) { pthread_mutex_unlock(&fs->lock); }

static struct timespec memfs_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts;
}

static uint32_t memfs_type(const struct memfs_node *n) { return n->mode & S_IFMT; }
static bool memfs_is_dir(const struct memfs_node *n) { return memfs_type(n) == S_IFDIR; }
static bool memfs_is_reg(const struct memfs_node *n) { return memfs_type(n) == S_IFREG; }
static bool memfs_is_lnk(const struct memfs_node *n) { return memfs_type(n) == S_IFLNK; }

static void memfs_touch_mc(struct memfs_node *n) { n->mtime = n->ctime = memfs_now(); }

static void memfs_touch_c(struct memfs_node *n) { n->ctime = memfs_now(); }

static int memfs_charge(struct memfs *fs, uint64_t bytes) {
    if (fs->bytes_used > fs->byte_limit || bytes > fs->byte_limit - fs->bytes_used)
        return -ENOSPC;
    fs->bytes_used += bytes;
    return 0;
}

static void memfs_uncharge(struct memfs *fs, uint64_t bytes) {
    fs->bytes_used = bytes > fs->bytes_used ? 0 : fs->bytes_used - bytes;
}

static uint64_t memfs_avail(const struct memfs *fs) {
    return fs->bytes_used >= fs->byte_limit ? 0 : fs->byte_limit - fs->bytes_used;
}

static bool memfs_is_dot(const char *name) {
    return name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0));
}

/* Validates an entry name: -ENOENT if empty, -ENAMETOOLONG, -EINVAL with '/'. */
static int memfs_name_check(const char *name, size_t *len) {
    size_t l = strnlen(name, MEMFS_NAME_MAX + 1);
    if (l == 0)
        return -ENOENT;
    if (l > MEMFS_NAME_MAX)
        return -ENAMETOOLONG;
    if (memchr(name, '/', l))
        return -EINVAL;
    *len = l;
    return 0;
}

static uint32_t memfs_name_hash(const char *s, size_t len) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return (uint32_t)h;
}

static char *memfs_memdup(const char *s, size_t len) {
    char *p = malloc(len + 1);
    if (p) {
        memcpy(p, s, len);
        p[len] = 0;
    }
    return p;
}

/* ------------------------------------------------------------------------ */
/* Chunks                                                                   */

static struct memfs_chunk *memfs_chunk_alloc(uint32_t cap) {
    struct memfs_chunk *c = calloc(1, sizeof(*c) + cap);
    if (!c)
        return NULL;
    atomic_init(&c->refs, 1);
    c->cap = cap;
    return c;
}

static void memfs_chunk_get(struct memfs_chunk *c) {
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

/* acq_rel: the last holder's free() happens after every other holder's last
 * access (release) and sees them (acquire). */
static void memfs_chunk_put(struct memfs_chunk *c) {
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
        free(c);
}

/* Acquire pairs with the release in memfs_chunk_put: once another layer's
 * drop makes us the only holder, its reads of data[] happen before our writes. */
static bool memfs_chunk_shared(struct memfs_chunk *c) {
    return atomic_load_explicit(&c->refs, memory_order_acquire) > 1;
}

/* Capacity for chunk `index` holding `need` bytes (1..CHUNK). Chunk 0 is sized
 * to fit (64 B, doubling to 4 KiB, then 4 KiB steps) so small files stay
 * small; every other chunk is full size. */
static uint32_t memfs_chunk_cap(uint64_t index, uint64_t need) {
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

static void memfs_itab_insert(struct memfs *fs, struct memfs_node *n) {
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

static struct memfs_node *memfs_itab_find(const struct memfs *fs, uint64_t ino) {
    struct memfs_node *n = fs->itab[memfs_ino_slot(ino, fs->itab_size)];
    while (n && n->ino != ino)
        n = n->hnext;
    return n;
}

static int memfs_hold(struct memfs *fs, struct memfs_node *n) {
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

static void memfs_dir_rehash(struct memfs_dir *d) {
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
static int memfs_dir_add(struct memfs *fs, struct memfs_node *dn, const char *name, size_t len,
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
static void memfs_dir_remove(struct memfs *fs, struct memfs_node *dn, int32_t slot) {
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
static int32_t memfs_dir_lookup(const struct memfs_node *dn, const char *name, size_t len) {
    return memfs_dir_find(&dn->u.dir, name, len, memfs_name_hash(name, len));
}

/* True if `a` is `d` or one of its ancestors. d must be a live directory. */
static bool memfs_is_ancestor(const struct memfs *fs, const struct memfs_node *a,
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
/* Node lifetime                                                            */

/* Allocates a node with a given inode number and inserts it in the table; no
 * charge, no timestamps. refs = 0, nlink = 0. */
static struct memfs_node *memfs_node_alloc(struct memfs *fs, uint64_t ino, uint32_t mode) {
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
static int memfs_node_create(struct memfs *fs, uint32_t mode, struct memfs_node **out) {
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
static uint64_t memfs_node_release(struct memfs_node *n) {
    uint64_t charged = MEMFS_NODE_CHARGE;
    if (memfs_is_reg(n)) {
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

static void memfs_node_destroy(struct memfs *fs, struct memfs_node *n) {
    memfs_itab_remove(fs, n);
    memfs_uncharge(fs, memfs_node_release(n));
    free(n);
}

/* Frees n if nothing keeps it alive any more. Lock held. */
static void memfs_node_maybe_free(struct memfs *fs, struct memfs_node *n) {
    if (n->nlink == 0 && !n->held && n != fs->root &&
        atomic_load_explicit(&n->refs, memory_order_acquire) == 0)
        memfs_node_destroy(fs, n);
}

/* One entry naming n in directory dn has gone (n may be freed later by the
 * caller through memfs_node_maybe_free). */
static void memfs_node_unlinked(struct memfs_node *dn, struct memfs_node *n) {
    n->nlink--;
    if (memfs_is_dir(n)) {
        dn->u.dir.nsubdirs--;
        n->u.dir.parent = NULL;
    }
    memfs_touch_c(n);
}

/* ------------------------------------------------------------------------ */
/* Lifecycle                                                                */

static struct memfs *memfs_alloc(uint64_t byte_limit, uint64_t itab_size) {
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
    if (memfs_is_reg(s)) {
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
    } else if (type != S_IFREG && type != S_IFDIR) {
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

/* ------------------------------------------------------------------------ */
/* File data                                                                */

/* Slot count after growing to hold index idx. */
static uint64_t memfs_slots_for(const struct memfs_file *f, uint64_t idx) {
    if (idx < f->nslots)
        return f->nslots;
    uint64_t n = f->nslots + f->nslots / 2;
    return n > idx + 1 ? n : idx + 1;
}

/* Bytes charged by making chunk idx private with room for `need` bytes. */
static uint64_t memfs_write_cost(const struct memfs_file *f, uint64_t idx, uint64_t need) {
    uint64_t cost = (memfs_slots_for(f, idx) - f->nslots) * MEMFS_SLOT_CHARGE;
    uint32_t cap = memfs_chunk_cap(idx, need);
    struct memfs_chunk *c = idx < f->nslots ? f->slots[idx] : NULL;
    uint32_t have = c ? c->cap : 0;
    return cost + (cap > have ? cap - have : 0);
}

/* Largest end (<= want) of a write into chunk idx that the budget allows;
 * returns 0 if not even one byte fits. */
static uint64_t memfs_write_fit(const struct memfs *fs, const struct memfs_file *f, uint64_t idx,
                                uint64_t start, uint64_t want) {
    uint64_t avail = memfs_avail(fs), lo = start, hi = want;
    while (lo < hi) { /* largest end in (start, want] with cost <= avail */
        uint64_t mid = lo + (hi - lo + 1) / 2;
        if (memfs_write_cost(f, idx, mid) <= avail)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo > start ? lo : 0;
}

static int memfs_file_grow_slots(struct memfs *fs, struct memfs_file *f, uint64_t idx) {
    uint64_t n = memfs_slots_for(f, idx);
    if (n == f->nslots)
        return 0;
    int rc = memfs_charge(fs, (n - f->nslots) * MEMFS_SLOT_CHARGE);
    if (rc < 0)
        return rc;
    struct memfs_chunk **s = realloc(f->slots, n * sizeof(*s));
    if (!s) {
        memfs_uncharge(fs, (n - f->nslots) * MEMFS_SLOT_CHARGE);
        return -ENOMEM;
    }
    memset(s + f->nslots, 0, (n - f->nslots) * sizeof(*s));
    f->slots = s;
    f->nslots = n;
    return 0;
}

/* Makes chunk idx private (copying a shared one) with capacity for `need`
 * bytes, charging any growth. Afterwards slots[idx] may be written. */
static int memfs_file_prepare(struct memfs *fs, struct memfs_file *f, uint64_t idx, uint64_t need) {
    int rc = memfs_file_grow_slots(fs, f, idx);
    if (rc < 0)
        return rc;
    struct memfs_chunk *c = f->slots[idx];
    bool shared = c && memfs_chunk_shared(c); /* cannot become shared: see memfs_chunk */
    uint32_t cap = memfs_chunk_cap(idx, need);
    if (c && c->cap > cap)
        cap = c->cap;
    if (c && c->cap == cap && !shared)
        return 0;
    uint32_t have = c ? c->cap : 0;
    if ((rc = memfs_charge(fs, cap - have)) < 0)
        return rc;
    struct memfs_chunk *nc;
    if (c && !shared) {
        nc = realloc(c, sizeof(*c) + cap);
        if (nc)
            memset(nc->data + have, 0, cap - have);
    } else {
        nc = memfs_chunk_alloc(cap);
        if (nc && c) {
            memcpy(nc->data, c->data, have);
            memfs_chunk_put(c);
        }
    }
    if (!nc) {
        memfs_uncharge(fs, cap - have);
        return -ENOMEM;
    }
    nc->cap = cap;
    f->slots[idx] = nc;
    f->alloc += cap - have;
    return 0;
}

/* Copies file bytes [off, off+len) (within the size) out. */
static void memfs_file_read(const struct memfs_file *f, unsigned char *buf, uint64_t len,
                            uint64_t off) {
    while (len) {
        uint64_t idx = off / MEMFS_CHUNK_SIZE, in = off % MEMFS_CHUNK_SIZE;
        uint64_t n = MEMFS_CHUNK_SIZE - in < len ? MEMFS_CHUNK_SIZE - in : len;
        struct memfs_chunk *c = idx < f->nslots ? f->slots[idx] : NULL;
        uint64_t from_data = c && in < c->cap ? (c->cap - in < n ? c->cap - in : n) : 0;
        if (from_data)
            memcpy(buf, c->data + in, from_data);
        memset(buf + from_data, 0, n - from_data);
        buf += n;
        off += n;
        len -= n;
    }
}

static bool memfs_ts_le(struct timespec a, struct timespec b) {
    return a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec <= b.tv_nsec);
}

/* relatime: atime moves when it is not newer than mtime/ctime or a day old. */
static void memfs_touch_atime(struct memfs_node *n) {
    struct timespec now = memfs_now();
    if (memfs_ts_le(n->atime, n->mtime) || memfs_ts_le(n->atime, n->ctime) ||
        n->atime.tv_sec <= now.tv_sec - (time_t)(MEMFS_RELATIME_NS / 1000000000ULL))
        n->atime = now;
}

int64_t memfs_pread(struct memfs *fs, struct memfs_node *n, void *buf, uint64_t len, uint64_t off) {
    int64_t rc;
    memfs_lock(fs);
    if (memfs_is_dir(n)) {
        rc = -EISDIR;
    } else if (!memfs_is_reg(n)) {
        rc = -EINVAL;
    } else if (off >= n->u.file.size) {
        rc = 0;
    } else {
        uint64_t left = n->u.file.size - off;
        len = len < left ? len : left;
        memfs_file_read(&n->u.file, buf, len, off);
        memfs_touch_atime(n);
        rc = (int64_t)len;
    }
    memfs_unlock(fs);
    return rc;
}

/* Writes as much as the budget allows; returns bytes written or -errno if
 * none. */
static int64_t memfs_file_write(struct memfs *fs, struct memfs_file *f, const unsigned char *buf,
                                uint64_t len, uint64_t off) {
    uint64_t done = 0;
    int rc = 0;
    while (done < len) {
        uint64_t pos = off + done, idx = pos / MEMFS_CHUNK_SIZE, in = pos % MEMFS_CHUNK_SIZE;
        uint64_t end =
            in + (MEMFS_CHUNK_SIZE - in < len - done ? MEMFS_CHUNK_SIZE - in : len - done);
        bool last = false;
        if (memfs_write_cost(f, idx, end) > memfs_avail(fs)) {
            end = memfs_write_fit(fs, f, idx, in, end);
            last = true;
            if (end == 0) {
                rc = -ENOSPC;
                break;
            }
        }
        if ((rc = memfs_file_prepare(fs, f, idx, end)) < 0)
            break;
        memcpy(f->slots[idx]->data + in, buf + done, end - in);
        done += end - in;
        if (last)
            break;
    }
    if (done && off + done > f->size)
        f->size = off + done;
    return done ? (int64_t)done : rc;
}

int64_t memfs_pwrite(struct memfs *fs, struct memfs_node *n, const void *buf, uint64_t len,
                     uint64_t off) {
    int64_t rc;
    memfs_lock(fs);
    if (memfs_is_dir(n)) {
        rc = -EISDIR;
    } else if (!memfs_is_reg(n)) {
        rc = -EINVAL;
    } else if (len == 0) {
        rc = 0;
    } else if (off >= MEMFS_MAX_FILE_SIZE) {
        rc = -EFBIG;
    } else {
        if (len > MEMFS_MAX_FILE_SIZE - off)
            len = MEMFS_MAX_FILE_SIZE - off;
        rc = memfs_file_write(fs, &n->u.file, buf, len, off);
        if (rc > 0)
            memfs_touch_mc(n);
    }
    memfs_unlock(fs);
    return rc;
}

/* Cuts the partial chunk at the new end so that bytes past `len` are zero,
 * copying it if shared. The only step of a shrink that can fail. */
static int memfs_file_cut_tail(struct memfs *fs, struct memfs_file *f, uint64_t len) {
    uint64_t idx = len / MEMFS_CHUNK_SIZE, keep = len % MEMFS_CHUNK_SIZE;
    struct memfs_chunk *c = idx < f->nslots ? f->slots[idx] : NULL;
    if (!c || keep == 0 || keep >= c->cap)
        return 0;
    uint32_t old = c->cap, cap = memfs_chunk_cap(idx, keep);
    if (memfs_chunk_shared(c)) {
        struct memfs_chunk *nc = memfs_chunk_alloc(cap);
        if (!nc)
            return -ENOMEM;
        memcpy(nc->data, c->data, keep);
        memfs_chunk_put(c);
        c = nc;
    } else {
        memset(c->data + keep, 0, c->cap - keep);
        struct memfs_chunk *nc = cap < c->cap ? realloc(c, sizeof(*c) + cap) : NULL;
        if (nc) {
            c = nc;
            c->cap = cap;
        }
    }
    f->slots[idx] = c;
    f->alloc -= old - c->cap;
    memfs_uncharge(fs, old - c->cap);
    return 0;
}

static void memfs_file_drop_from(struct memfs *fs, struct memfs_file *f, uint64_t first) {
    for (uint64_t i = first; i < f->nslots; i++) {
        struct memfs_chunk *c = f->slots[i];
        if (!c)
            continue;
        f->alloc -= c->cap;
        memfs_uncharge(fs, c->cap);
        memfs_chunk_put(c);
        f->slots[i] = NULL;
    }
    if (first == 0) {
        memfs_uncharge(fs, f->nslots * MEMFS_SLOT_CHARGE);
        free(f->slots);
        f->slots = NULL;
        f->nslots = 0;
    } else if (first < f->nslots / 2) {
        struct memfs_chunk **s = realloc(f->slots, first * sizeof(*s));
        if (s) {
            memfs_uncharge(fs, (f->nslots - first) * MEMFS_SLOT_CHARGE);
            f->slots = s;
            f->nslots = first;
        }
    }
}

int memfs_truncate(struct memfs *fs, struct memfs_node *n, uint64_t len) {
    int rc = 0;
    memfs_lock(fs);
    if (memfs_is_dir(n))
        rc = -EISDIR;
    else if (!memfs_is_reg(n))
        rc = -EINVAL;
    else if (len > MEMFS_MAX_FILE_SIZE)
        rc = -EFBIG;
    else if (len < n->u.file.size)
        rc = memfs_file_cut_tail(fs, &n->u.file, len);
    if (rc == 0) {
        struct memfs_file *f = &n->u.file;
        if (len < f->size)
            memfs_file_drop_from(fs, f, (len + MEMFS_CHUNK_SIZE - 1) / MEMFS_CHUNK_SIZE);
        f->size = len;
        memfs_touch_mc(n);
    }
    memfs_unlock(fs);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Attributes                                                               */

int memfs_getattr(struct memfs *fs, struct memfs_node *n, struct stat *st) {
    memset(st, 0, sizeof(*st));
    memfs_lock(fs);
    st->st_dev = MEMFS_DEV;
    st->st_ino = n->ino;
    st->st_mode = n->mode;
    st->st_uid = MEMFS_UID;
    st->st_gid = MEMFS_GID;
    st->st_blksize = 4096;
    st->st_atim = n->atime;
    st->st_mtim = n->mtime;
    st->st_ctim = n->ctime;
    if (memfs_is_reg(n)) {
        st->st_nlink = n->nlink;
        st->st_size = (off_t)n->u.file.size;
        st->st_blocks = (blkcnt_t)((n->u.file.alloc + 511) / 512);
    } else if (memfs_is_lnk(n)) {
        st->st_nlink = n->nlink;
        st->st_size = n->u.link.len;
    } else {
        st->st_nlink = n->nlink ? 2 + n->u.dir.nsubdirs : 0;
        st->st_size = 32 * ((off_t)n->u.dir.live + 2);
    }
    memfs_unlock(fs);
    return 0;
}

int memfs_chmod(struct memfs *fs, struct memfs_node *n, uint32_t perms) {
    int rc = 0;
    memfs_lock(fs);
    if (memfs_is_lnk(n)) {
        rc = -EOPNOTSUPP;
    } else {
        __atomic_store_n(&n->mode, memfs_type(n) | (perms & 07777), __ATOMIC_RELAXED);
        memfs_touch_c(n);
    }
    memfs_unlock(fs);
    return rc;
}

static int memfs_utime_check(const struct timespec *t) {
    if (t->tv_nsec == UTIME_NOW || t->tv_nsec == UTIME_OMIT)
        return 0;
    return t->tv_nsec >= 0 && t->tv_nsec < 1000000000L ? 0 : -EINVAL;
}

int memfs_utimens(struct memfs *fs, struct memfs_node *n, const struct timespec ts[2]) {
    struct timespec now_both[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
    if (!ts)
        ts = now_both;
    if (memfs_utime_check(&ts[0]) < 0 || memfs_utime_check(&ts[1]) < 0)
        return -EINVAL;
    memfs_lock(fs);
    struct timespec now = memfs_now();
    struct timespec *dst[2] = {&n->atime, &n->mtime};
    bool changed = false;
    for (int i = 0; i < 2; i++) {
        if (ts[i].tv_nsec == UTIME_OMIT)
            continue;
        *dst[i] = ts[i].tv_nsec == UTIME_NOW ? now : ts[i];
        changed = true;
    }
    if (changed)
        n->ctime = now;
    memfs_unlock(fs);
    return 0;
}

int memfs_readlink(struct memfs *fs, struct memfs_node *n, char *buf, size_t len) {
    int rc;
    memfs_lock(fs);
    if (!memfs_is_lnk(n)) {
        rc = -EINVAL;
    } else {
        size_t c = len < n->u.link.len ? len : n->u.link.len;
        memcpy(buf, n->u.link.target, c);
        rc = (int)c;
    }
    memfs_unlock(fs);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Directory listing                                                        */

static unsigned char memfs_dtype(const struct memfs_node *n) {
    return memfs_is_dir(n) ? DT_DIR : memfs_is_lnk(n) ? DT_LNK : DT_REG;
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

/* ------------------------------------------------------------------------ */
/* Images                                                                   */
/*
 * Little-endian throughout:
 *   header  "FKDMEMFS" u32 version=1 u32 flags=0 u64 root_ino u64 next_ino
 *           u64 node_count
 *   nodes   u64 ino u32 mode u32 nlink 3x(u64 sec, u32 nsec) (atime, mtime,
 *           ctime), then by type:
 *             reg  u64 size u32 count, count x (u32 index u32 len data[len])
 *             lnk  u32 len target[len]
 *             dir  u32 count, count x (u64 ino u16 namelen name[namelen])
 *   trailer u32 CRC-32 (IEEE) of everything before it
 * Loading recomputes nlink and every derived field from the entries. */

#define MEMFS_IMAGE_MAGIC "FKDMEMFS"
#define MEMFS_IMAGE_VERSION 1u
#define MEMFS_IMAGE_HDR 40u
#define MEMFS_IMAGE_REC_MIN 56u /* smallest node record */
#define MEMFS_IMAGE_BUF 65536u

struct memfs_writer {
    int fd;
    int err;
    uint32_t crc; /* of everything written so far, trailer excluded */
    size_t len;
    unsigned char buf[MEMFS_IMAGE_BUF];
};

static void memfs_w_flush(struct memfs_writer *w) {
    size_t off = 0;
    while (!w->err && off < w->len) {
        ssize_t k = write(w->fd, w->buf + off, w->len - off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            w->err = k < 0 ? -errno : -EIO;
        else
            off += (size_t)k;
    }
    w->len = 0;
}

/* Appends without touching the CRC (used for the trailer). */
static void memfs_w_raw(struct memfs_writer *w, const void *p, size_t n) {
    const unsigned char *s = p;
    while (n && !w->err) {
        size_t k = sizeof(w->buf) - w->len < n ? sizeof(w->buf) - w->len : n;
        memcpy(w->buf + w->len, s, k);
        w->len += k;
        s += k;
        n -= k;
        if (w->len == sizeof(w->buf))
            memfs_w_flush(w);
    }
}

static void memfs_w_bytes(struct memfs_writer *w, const void *p, size_t n) {
    w->crc = fj_crc32(w->crc, p, n);
    memfs_w_raw(w, p, n);
}

static void memfs_w_u16(struct memfs_writer *w, uint16_t v) {
    unsigned char b[2] = {(unsigned char)v, (unsigned char)(v >> 8)};
    memfs_w_bytes(w, b, 2);
}

static void memfs_w_u32(struct memfs_writer *w, uint32_t v) {
    unsigned char b[4];
    for (int i = 0; i < 4; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    memfs_w_bytes(w, b, 4);
}

static void memfs_w_u64(struct memfs_writer *w, uint64_t v) {
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    memfs_w_bytes(w, b, 8);
}

static void memfs_w_time(struct memfs_writer *w, struct timespec t) {
    memfs_w_u64(w, (uint64_t)t.tv_sec);
    memfs_w_u32(w, (uint32_t)t.tv_nsec);
}

/* Bytes of chunk idx that lie within the file (0 if it lies past the end). */
static uint32_t memfs_chunk_used(const struct memfs_file *f, uint64_t idx) {
    uint64_t start = idx * MEMFS_CHUNK_SIZE;
    const struct memfs_chunk *c = f->slots[idx];
    if (!c || start >= f->size)
        return 0;
    return f->size - start < c->cap ? (uint32_t)(f->size - start) : c->cap;
}

static void memfs_save_file(struct memfs_writer *w, const struct memfs_file *f) {
    uint32_t count = 0;
    for (uint64_t i = 0; i < f->nslots; i++)
        count += memfs_chunk_used(f, i) > 0;
    memfs_w_u64(w, f->size);
    memfs_w_u32(w, count);
    for (uint64_t i = 0; i < f->nslots; i++) {
        uint32_t len = memfs_chunk_used(f, i);
        if (!len)
            continue;
        memfs_w_u32(w, (uint32_t)i);
        memfs_w_u32(w, len);
        memfs_w_bytes(w, f->slots[i]->data, len);
    }
}

static void memfs_save_dir(struct memfs_writer *w, const struct memfs_dir *d) {
    memfs_w_u32(w, d->live);
    for (uint32_t i = 0; i < d->nents; i++) {
        const struct memfs_dirent *e = &d->ents[i];
        if (!e->node)
            continue;
        memfs_w_u64(w, e->node->ino);
        memfs_w_u16(w, (uint16_t)e->namelen);
        memfs_w_bytes(w, e->name, e->namelen);
    }
}

static void memfs_save_node(struct memfs_writer *w, const struct memfs_node *n) {
    memfs_w_u64(w, n->ino);
    memfs_w_u32(w, n->mode);
    memfs_w_u32(w, n->nlink);
    memfs_w_time(w, n->atime);
    memfs_w_time(w, n->mtime);
    memfs_w_time(w, n->ctime);
    if (memfs_is_reg(n)) {
        memfs_save_file(w, &n->u.file);
    } else if (memfs_is_lnk(n)) {
        memfs_w_u32(w, n->u.link.len);
        memfs_w_bytes(w, n->u.link.target, n->u.link.len);
    } else {
        memfs_save_dir(w, &n->u.dir);
    }
}

/* Serializes a private snapshot, so the layer is locked only for the clone. */
int memfs_save(struct memfs *fs, int fd) {
    struct memfs *snap = memfs_clone(fs);
    struct memfs_writer *w = malloc(sizeof(*w));
    if (!snap || !w) {
        memfs_free(snap);
        free(w);
        return -ENOMEM;
    }
    w->fd = fd;
    w->err = 0;
    w->len = 0;
    w->crc = 0;
    memfs_w_bytes(w, MEMFS_IMAGE_MAGIC, 8);
    memfs_w_u32(w, MEMFS_IMAGE_VERSION);
    memfs_w_u32(w, 0);
    memfs_w_u64(w, snap->root->ino);
    memfs_w_u64(w, snap->next_ino);
    memfs_w_u64(w, snap->nnodes);
    for (uint64_t b = 0; b < snap->itab_size; b++)
        for (struct memfs_node *n = snap->itab[b]; n; n = n->hnext)
            memfs_save_node(w, n);
    uint32_t crc = w->crc;
    unsigned char t[4] = {(unsigned char)crc, (unsigned char)(crc >> 8), (unsigned char)(crc >> 16),
                          (unsigned char)(crc >> 24)};
    memfs_w_raw(w, t, 4);
    memfs_w_flush(w);
    int rc = w->err;
    free(w);
    memfs_free(snap);
    return rc;
}

/* A bounds-checked cursor: any read past the end sets bad and yields zeros. */
struct memfs_reader {
    const unsigned char *p;
    size_t len, pos;
    bool bad;
};

static const unsigned char *memfs_r_bytes(struct memfs_reader *r, size_t n) {
    if (r->bad || n > r->len - r->pos) {
        r->bad = true;
        return NULL;
    }
    const unsigned char *p = r->p + r->pos;
    r->pos += n;
    return p;
}

static uint64_t memfs_r_uint(struct memfs_reader *r, int bytes) {
    const unsigned char *p = memfs_r_bytes(r, (size_t)bytes);
    uint64_t v = 0;
    for (int i = 0; p && i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static uint16_t memfs_r_u16(struct memfs_reader *r) { return (uint16_t)memfs_r_uint(r, 2); }
static uint32_t memfs_r_u32(struct memfs_reader *r) { return (uint32_t)memfs_r_uint(r, 4); }
static uint64_t memfs_r_u64(struct memfs_reader *r) { return memfs_r_uint(r, 8); }

static int memfs_r_time(struct memfs_reader *r, struct timespec *t) {
    t->tv_sec = (time_t)memfs_r_u64(r);
    uint32_t ns = memfs_r_u32(r);
    t->tv_nsec = ns;
    return r->bad || ns >= 1000000000u ? -EINVAL : 0;
}

static int memfs_read_all(int fd, unsigned char **out, size_t *outlen) {
    size_t cap = MEMFS_IMAGE_BUF, len = 0;
    unsigned char *buf = malloc(cap);
    if (!buf)
        return -ENOMEM;
    for (;;) {
        if (len == cap) {
            unsigned char *nb = cap < SIZE_MAX / 2 ? realloc(buf, cap * 2) : NULL;
            if (!nb) {
                free(buf);
                return -ENOMEM;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t k = read(fd, buf + len, cap - len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            int e = errno;
            free(buf);
            return -e;
        }
        if (k == 0)
            break;
        len += (size_t)k;
    }
    *out = buf;
    *outlen = len;
    return 0;
}

static int memfs_parse_file(struct memfs *fs, struct memfs_reader *r, struct memfs_file *f) {
    uint64_t size = memfs_r_u64(r);
    uint32_t count = memfs_r_u32(r);
    if (r->bad || size > MEMFS_MAX_FILE_SIZE ||
        count > (size + MEMFS_CHUNK_SIZE - 1) / MEMFS_CHUNK_SIZE)
        return -EINVAL;
    int64_t prev = -1;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t idx = memfs_r_u32(r), len = memfs_r_u32(r);
        const unsigned char *data = memfs_r_bytes(r, len);
        if (!data || (int64_t)idx <= prev || len == 0 || len > MEMFS_CHUNK_SIZE ||
            (uint64_t)idx * MEMFS_CHUNK_SIZE + len > size)
            return -EINVAL;
        prev = idx;
        int rc = memfs_file_prepare(fs, f, idx, len);
        if (rc < 0)
            return rc;
        memcpy(f->slots[idx]->data, data, len);
    }
    f->size = size;
    return 0;
}

static int memfs_parse_link(struct memfs *fs, struct memfs_reader *r, struct memfs_link *l) {
    uint32_t len = memfs_r_u32(r);
    const unsigned char *t = len <= MEMFS_SYMLINK_MAX ? memfs_r_bytes(r, len) : NULL;
    if (!t || len == 0 || memchr(t, 0, len))
        return -EINVAL;
    int rc = memfs_charge(fs, len);
    if (rc < 0)
        return rc;
    if (!(l->target = memfs_memdup((const char *)t, len)))
        return -ENOMEM;
    l->len = len;
    return 0;
}

/* Skips a directory's entry list (resolved later by memfs_parse_entries). */
static int memfs_skip_entries(struct memfs_reader *r) {
    uint32_t count = memfs_r_u32(r);
    for (uint32_t i = 0; i < count && !r->bad; i++) {
        memfs_r_u64(r);
        memfs_r_bytes(r, memfs_r_u16(r));
    }
    return r->bad ? -EINVAL : 0;
}

/* Parses one node record. Directories are recorded in dirs[] with the offset
 * of their entry list. */
static int memfs_parse_node(struct memfs *fs, struct memfs_reader *r, uint64_t next_ino,
                            struct memfs_node **dirs, size_t *dir_pos, size_t *ndirs) {
    struct timespec ts[3];
    uint64_t ino = memfs_r_u64(r);
    uint32_t mode = memfs_r_u32(r), type = mode & S_IFMT;
    memfs_r_u32(r); /* nlink: recomputed from the entries */
    for (int i = 0; i < 3; i++)
        if (memfs_r_time(r, &ts[i]) < 0)
            return -EINVAL;
    if (ino == 0 || ino >= next_ino || memfs_itab_find(fs, ino) ||
        (mode & ~(uint32_t)(S_IFMT | 07777)) ||
        (type != S_IFREG && type != S_IFDIR && type != S_IFLNK))
        return -EINVAL;
    int rc = memfs_charge(fs, MEMFS_NODE_CHARGE);
    if (rc < 0)
        return rc;
    struct memfs_node *n = memfs_node_alloc(fs, ino, mode);
    if (!n)
        return -ENOMEM;
    n->atime = ts[0];
    n->mtime = ts[1];
    n->ctime = ts[2];
    if (type == S_IFREG)
        return memfs_parse_file(fs, r, &n->u.file);
    if (type == S_IFLNK)
        return memfs_parse_link(fs, r, &n->u.link);
    dirs[*ndirs] = n;
    dir_pos[(*ndirs)++] = r->pos;
    return memfs_skip_entries(r);
}

static bool memfs_image_name_ok(const unsigned char *name, size_t len) {
    if (!name || len == 0 || len > MEMFS_NAME_MAX || memchr(name, '/', len) || memchr(name, 0, len))
        return false;
    return !(name[0] == '.' && (len == 1 || (len == 2 && name[1] == '.')));
}

/* Links the entries of directory dn; every directory gets at most one name. */
static int memfs_parse_entries(struct memfs *fs, struct memfs_reader *r, struct memfs_node *dn) {
    uint32_t count = memfs_r_u32(r);
    for (uint32_t i = 0; i < count; i++) {
        uint64_t ino = memfs_r_u64(r);
        uint16_t len = memfs_r_u16(r);
        const unsigned char *name = memfs_r_bytes(r, len);
        struct memfs_node *child = memfs_itab_find(fs, ino);
        if (!memfs_image_name_ok(name, len) || !child || child == fs->root ||
            memfs_dir_lookup(dn, (const char *)name, len) >= 0)
            return -EINVAL;
        if (memfs_is_dir(child) ? child->nlink != 0 : child->nlink >= MEMFS_LINK_MAX)
            return -EINVAL;
        int rc = memfs_dir_add(fs, dn, (const char *)name, len, child);
        if (rc < 0)
            return rc;
        child->nlink++;
        if (memfs_is_dir(child)) {
            child->u.dir.parent = dn;
            dn->u.dir.nsubdirs++;
        }
    }
    return 0;
}

/* Every named directory must be reachable from the root (no cycles), removed
 * directories must be empty, and unnamed nodes become held orphans. */
static int memfs_check_tree(struct memfs *fs) {
    size_t linked = 0, top = 0, reached = 0;
    for (uint64_t b = 0; b < fs->itab_size; b++)
        for (struct memfs_node *n = fs->itab[b]; n; n = n->hnext)
            if (memfs_is_dir(n)) {
                if (n->nlink == 0 && n->u.dir.live)
                    return -EINVAL;
                linked += n->nlink;
            }
    struct memfs_node **stack = malloc(linked * sizeof(*stack));
    if (!stack)
        return -ENOMEM;
    stack[top++] = fs->root;
    while (top) { /* each linked directory is named once, so pushed at most once */
        struct memfs_node *d = stack[--top];
        reached++;
        for (uint32_t i = 0; i < d->u.dir.nents; i++) {
            struct memfs_node *c = d->u.dir.ents[i].node;
            if (c && memfs_is_dir(c))
                stack[top++] = c;
        }
    }
    free(stack);
    if (reached != linked)
        return -EINVAL;
    for (uint64_t b = 0; b < fs->itab_size; b++)
        for (struct memfs_node *n = fs->itab[b]; n; n = n->hnext)
            if (n->nlink == 0 && memfs_hold(fs, n) < 0)
                return -ENOMEM;
    return 0;
}

static int memfs_parse_nodes(struct memfs *fs, struct memfs_reader *r, uint64_t nnodes,
                             uint64_t root_ino, uint64_t next_ino) {
    struct memfs_node **dirs = malloc(nnodes * sizeof(*dirs));
    size_t *pos = malloc(nnodes * sizeof(*pos)), ndirs = 0;
    int rc = dirs && pos ? 0 : -ENOMEM;
    for (uint64_t k = 0; k < nnodes && rc == 0; k++)
        rc = memfs_parse_node(fs, r, next_ino, dirs, pos, &ndirs);
    if (rc == 0 && r->pos != r->len)
        rc = -EINVAL;
    if (rc == 0) {
        fs->root = memfs_itab_find(fs, root_ino);
        if (!fs->root || !memfs_is_dir(fs->root))
            rc = -EINVAL;
    }
    if (rc == 0) {
        fs->root->nlink = 1;
        fs->root->u.dir.parent = fs->root;
        memfs_uncharge(fs, MEMFS_NODE_CHARGE); /* the root is not charged */
    }
    for (size_t i = 0; i < ndirs && rc == 0; i++) {
        struct memfs_reader er = {r->p, r->len, pos[i], false};
        rc = memfs_parse_entries(fs, &er, dirs[i]);
    }
    if (rc == 0)
        rc = memfs_check_tree(fs);
    free(dirs);
    free(pos);
    return rc;
}

static int memfs_parse_image(const unsigned char *buf, size_t len, uint64_t byte_limit,
                             struct memfs **out) {
    if (len < MEMFS_IMAGE_HDR + 4 || memcmp(buf, MEMFS_IMAGE_MAGIC, 8) != 0)
        return -EINVAL;
    uint32_t crc = fj_crc32(0, buf, len - 4);
    struct memfs_reader r = {buf, len, len - 4, false};
    if (memfs_r_u32(&r) != crc)
        return -EINVAL;
    r = (struct memfs_reader){buf, len - 4, 8, false};
    uint32_t version = memfs_r_u32(&r), flags = memfs_r_u32(&r);
    uint64_t root_ino = memfs_r_u64(&r), next_ino = memfs_r_u64(&r), nnodes = memfs_r_u64(&r);
    if (version != MEMFS_IMAGE_VERSION || flags != 0 || nnodes == 0 ||
        nnodes > (len - 4 - MEMFS_IMAGE_HDR) / MEMFS_IMAGE_REC_MIN)
        return -EINVAL;
    uint64_t itab = MEMFS_ITAB_MIN;
    while (itab < nnodes && itab < (1u << 20))
        itab *= 2;
    struct memfs *fs = memfs_alloc(byte_limit, itab);
    if (!fs)
        return -ENOMEM;
    int rc = memfs_parse_nodes(fs, &r, nnodes, root_ino, next_ino);
    if (rc < 0) {
        memfs_free(fs);
        return rc;
    }
    fs->next_ino = next_ino;
    *out = fs;
    return 0;
}

int memfs_load(int fd, uint64_t byte_limit, struct memfs **out) {
    unsigned char *buf = NULL;
    size_t len = 0;
    *out = NULL;
    int rc = memfs_read_all(fd, &buf, &len);
    if (rc < 0)
        return rc;
    rc = memfs_parse_image(buf, len, byte_limit, out);
    free(buf);
    return rc;
}
