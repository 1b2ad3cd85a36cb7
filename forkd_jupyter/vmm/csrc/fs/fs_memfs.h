/* memfs: the sandbox's private writable filesystem layer.
 *
 * An in-memory inode filesystem that can be branched cheaply: memfs_clone()
 * copies the node graph and shares file data copy-on-write, after which the
 * source and the branch diverge independently. Path walking is left to the
 * caller; memfs offers node-level operations only.
 *
 * Rules (see docs/memfs.md for the full design):
 * - One mutex per memfs; every call is thread-safe. No call holds the locks of
 *   two layers at once. The readdir emit callback runs with the lock held and
 *   must not call back into the same memfs.
 * - A struct memfs_node is refcounted. Functions that return a node return a
 *   new reference, which the caller drops with memfs_node_put(). A node lives
 *   while it is named by a directory entry, referenced, or held by a clone;
 *   so an unlinked file that is still open stays readable and writable.
 * - Errors are negative errno values.
 * - Everything the byte limit applies to (file data plus a fixed metadata
 *   charge per node and directory entry) is reported by memfs_bytes_used(). */
#ifndef FS_MEMFS_H
#define FS_MEMFS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

#define MEMFS_CHUNK_SIZE 65536u          /* file data unit; chunk i covers [i*64K, (i+1)*64K) */
#define MEMFS_NAME_MAX 255               /* longest directory entry name */
#define MEMFS_SYMLINK_MAX 4095           /* longest symlink target */
#define MEMFS_LINK_MAX 65000u            /* most hard links to one file (-EMLINK) */
#define MEMFS_MAX_FILE_SIZE (1ULL << 48) /* -EFBIG beyond */
#define MEMFS_DEV 0x6d656dULL            /* st_dev of every node */
#define MEMFS_UID 1000                   /* owner of every node */
#define MEMFS_GID 1000
#define MEMFS_NODE_CHARGE 256u  /* bytes charged per node */
#define MEMFS_DENTRY_CHARGE 64u /* bytes charged per directory entry, plus its name */

struct memfs;      /* one per sandbox; internally locked (one mutex) */
struct memfs_node; /* an inode; refcounted */
struct stat;

/* Lifecycle. memfs_new: an empty layer whose root is a directory with mode
 * 0755; NULL on ENOMEM. memfs_clone: a copy-on-write branch in
 * O(nodes + chunk pointers) that preserves inode numbers; NULL on ENOMEM.
 * Nodes that are unlinked but still referenced in src (orphans) are cloned
 * too and held by the clone until memfs_drop_clone_holds(clone); take the
 * references you need with memfs_node_by_ino() first. memfs_free: all node
 * references must have been put; frees everything else. */
struct memfs *memfs_new(uint64_t byte_limit);
struct memfs *memfs_clone(struct memfs *src);
void memfs_drop_clone_holds(struct memfs *fs);
void memfs_free(struct memfs *fs);

/* Nodes. memfs_node_get requires that the caller already holds a reference.
 * memfs_node_ino and memfs_node_mode need no lock. */
struct memfs_node *memfs_root(struct memfs *fs);
struct memfs_node *memfs_node_by_ino(struct memfs *fs, uint64_t ino);
void memfs_node_get(struct memfs_node *n);
void memfs_node_put(struct memfs *fs, struct memfs_node *n);
uint64_t memfs_node_ino(const struct memfs_node *n);
uint32_t memfs_node_mode(const struct memfs_node *n); /* S_IFMT | perms */

/* Names. "." and ".." are handled by lookup (".." of the root is the root).
 * Lookup and create in a removed directory give -ENOENT. mknode takes
 * S_IFREG, S_IFDIR, S_IFLNK, S_IFSOCK or S_IFIFO (a bound socket's or a FIFO's name; no data) in mode (perms are used as
 * given: apply the umask first); symlink_target is used only for S_IFLNK. out may be NULL. */
int memfs_lookup(struct memfs *fs, struct memfs_node *dir, const char *name,
                 struct memfs_node **out);
int memfs_mknode(struct memfs *fs, struct memfs_node *dir, const char *name, uint32_t mode,
                 const char *symlink_target, struct memfs_node **out);
int memfs_unlink(struct memfs *fs, struct memfs_node *dir, const char *name, int rmdir);
int memfs_rename(struct memfs *fs, struct memfs_node *olddir, const char *oldname,
                 struct memfs_node *newdir, const char *newname, unsigned flags);
int memfs_link(struct memfs *fs, struct memfs_node *node, struct memfs_node *newdir,
               const char *newname);

/* Data. pwrite may extend the file; holes read as zero. When the byte limit
 * would be exceeded it writes what fits (a short count) or, if nothing fits,
 * returns -ENOSPC. */
int64_t memfs_pread(struct memfs *fs, struct memfs_node *n, void *buf, uint64_t len, uint64_t off);
int64_t memfs_pwrite(struct memfs *fs, struct memfs_node *n, const void *buf, uint64_t len,
                     uint64_t off);
int memfs_truncate(struct memfs *fs, struct memfs_node *n, uint64_t len);

/* Attributes. getattr fills st_ino, st_mode, st_nlink, st_size, st_blocks
 * (512-byte units of allocated data), st_blksize = 4096, st_uid/st_gid =
 * 1000, ns timestamps, st_dev = MEMFS_DEV. utimens: ts NULL means both now;
 * UTIME_NOW and UTIME_OMIT are honoured. readlink copies at most len bytes,
 * without a NUL, and returns the count copied (readlink(2) semantics). */
int memfs_getattr(struct memfs *fs, struct memfs_node *n, struct stat *st);
int memfs_chmod(struct memfs *fs, struct memfs_node *n, uint32_t perms);
int memfs_utimens(struct memfs *fs, struct memfs_node *n, const struct timespec ts[2]);
int memfs_readlink(struct memfs *fs, struct memfs_node *n, char *buf, size_t len);

/* Directory listing with stable cookies, usable across concurrent
 * modification: an entry removed before it is reached is skipped and no entry
 * is returned twice. Cookie 0 starts; "." and ".." come first. emit returns
 * nonzero to stop; that entry is not consumed and *cookie is left at it, so
 * the caller can resume. Returns 0 at the end of the directory, 1 when emit
 * stopped, or -ENOTDIR. emit runs under the layer lock. */
int memfs_readdir(struct memfs *fs, struct memfs_node *dir, uint64_t *cookie,
                  int (*emit)(void *ctx, const char *name, uint64_t ino, unsigned char d_type,
                              uint64_t next_cookie),
                  void *ctx);

/* Accounting. bytes_used: what the byte limit applies to (see above).
 * bytes_private: bytes of data chunks not shared with any other layer. */
uint64_t memfs_bytes_used(struct memfs *fs);
uint64_t memfs_bytes_private(struct memfs *fs);
uint64_t memfs_byte_limit(struct memfs *fs);
uint64_t memfs_node_count(struct memfs *fs);

/* Images. save writes every node (reachable, orphaned-but-referenced, held)
 * with a magic, a version and a CRC-32; -errno on write errors. load returns
 * -EINVAL for a bad magic, version, checksum, truncation or inconsistent
 * content, -ENOSPC if the image does not fit byte_limit; orphans in the image
 * come back held, as after memfs_clone. */
int memfs_save(struct memfs *fs, int fd);
int memfs_load(int fd, uint64_t byte_limit, struct memfs **out);

#endif
