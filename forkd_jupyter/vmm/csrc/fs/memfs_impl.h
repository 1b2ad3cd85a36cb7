/* memfs: in-memory, copy-on-write, branchable inode filesystem. These are
 * its internals, shared by its files; the interface is fs_memfs.h.
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
 * lock has no holder that could call memfs_node_get concurrently.
 *
 * Files, each calling only those before it in this list:
 *   memfs_node.c   chunks, the inode table, node lifetime and references
 *   memfs_dir.c    directory entries (hash index, tombstones) and listing
 *   memfs_names.c  lookup, create, unlink, rename, link
 *   memfs_data.c   file data (copy-on-write chunks) and attributes
 *   memfs_layer.c  a layer's life: new, free, clone; accounting
 *   memfs_image.c  saving a layer to an image and loading it back */
#ifndef MEMFS_IMPL_H
#define MEMFS_IMPL_H

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

#include "fs/fs_memfs.h"

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

static inline void memfs_lock(struct memfs *fs) { pthread_mutex_lock(&fs->lock); }
static inline void memfs_unlock(struct memfs *fs) { pthread_mutex_unlock(&fs->lock); }

static inline struct timespec memfs_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts;
}

static inline uint32_t memfs_type(const struct memfs_node *n) { return n->mode & S_IFMT; }
static inline bool memfs_is_dir(const struct memfs_node *n) { return memfs_type(n) == S_IFDIR; }
static inline bool memfs_is_reg(const struct memfs_node *n) { return memfs_type(n) == S_IFREG; }
static inline bool memfs_is_lnk(const struct memfs_node *n) { return memfs_type(n) == S_IFLNK; }
static inline bool memfs_is_sock(const struct memfs_node *n) { return memfs_type(n) == S_IFSOCK; }
static inline bool memfs_is_fifo(const struct memfs_node *n) { return memfs_type(n) == S_IFIFO; }
/* Names with no data: a bound socket's, a FIFO's (its pipe lives while it
 * is open, file_pipe.c). */
static inline bool memfs_type_is_name_only(uint32_t type) { return type == S_IFSOCK || type == S_IFIFO; }
/* Nodes stored as u.file: regular files, and names only (always empty). */
static inline bool memfs_is_data(const struct memfs_node *n) {
    return memfs_is_reg(n) || memfs_type_is_name_only(memfs_type(n));
}

static inline void memfs_touch_mc(struct memfs_node *n) { n->mtime = n->ctime = memfs_now(); }

static inline void memfs_touch_c(struct memfs_node *n) { n->ctime = memfs_now(); }

static inline int memfs_charge(struct memfs *fs, uint64_t bytes) {
    if (fs->bytes_used > fs->byte_limit || bytes > fs->byte_limit - fs->bytes_used)
        return -ENOSPC;
    fs->bytes_used += bytes;
    return 0;
}

static inline void memfs_uncharge(struct memfs *fs, uint64_t bytes) {
    fs->bytes_used = bytes > fs->bytes_used ? 0 : fs->bytes_used - bytes;
}

static inline uint64_t memfs_avail(const struct memfs *fs) {
    return fs->bytes_used >= fs->byte_limit ? 0 : fs->byte_limit - fs->bytes_used;
}

static inline bool memfs_is_dot(const char *name) {
    return name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0));
}

/* Validates an entry name: -ENOENT if empty, -ENAMETOOLONG, -EINVAL with '/'. */
static inline int memfs_name_check(const char *name, size_t *len) {
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

static inline uint32_t memfs_name_hash(const char *s, size_t len) {
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

static inline char *memfs_memdup(const char *s, size_t len) {
    char *p = malloc(len + 1);
    if (p) {
        memcpy(p, s, len);
        p[len] = 0;
    }
    return p;
}

/* ------------------------------------------------------------------------ */
/* Shared between the memfs files                                           */

struct memfs_chunk *memfs_chunk_alloc(uint32_t cap);
void memfs_chunk_get(struct memfs_chunk *c);
void memfs_chunk_put(struct memfs_chunk *c);
bool memfs_chunk_shared(struct memfs_chunk *c);
uint32_t memfs_chunk_cap(uint64_t index, uint64_t need);
void memfs_itab_insert(struct memfs *fs, struct memfs_node *n);
struct memfs_node *memfs_itab_find(const struct memfs *fs, uint64_t ino);
int memfs_hold(struct memfs *fs, struct memfs_node *n);
struct memfs_node *memfs_node_alloc(struct memfs *fs, uint64_t ino, uint32_t mode);
int memfs_node_create(struct memfs *fs, uint32_t mode, struct memfs_node **out);
uint64_t memfs_node_release(struct memfs_node *n);
void memfs_node_destroy(struct memfs *fs, struct memfs_node *n);
void memfs_node_maybe_free(struct memfs *fs, struct memfs_node *n);
void memfs_node_unlinked(struct memfs_node *dn, struct memfs_node *n);
void memfs_dir_rehash(struct memfs_dir *d);
int memfs_dir_add(struct memfs *fs, struct memfs_node *dn, const char *name, size_t len,
                  struct memfs_node *node);
void memfs_dir_remove(struct memfs *fs, struct memfs_node *dn, int32_t slot);
int32_t memfs_dir_lookup(const struct memfs_node *dn, const char *name, size_t len);
bool memfs_is_ancestor(const struct memfs *fs, const struct memfs_node *a,
                       const struct memfs_node *d);
int memfs_file_prepare(struct memfs *fs, struct memfs_file *f, uint64_t idx, uint64_t need);
struct memfs *memfs_alloc(uint64_t byte_limit, uint64_t itab_size);

#endif
