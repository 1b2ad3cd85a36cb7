/* Shared memory between a sandbox's processes (shm.c). */
#ifndef SHM_H
#define SHM_H

#include "core/sandbox.h"

struct memfs;
struct memfs_node;
struct sb_procs;

/* MAP_SHARED of [at, at + len), already reserved in sb's address space, of
 * the writable layer's file node from off: the file's shared object. Under
 * big_lock. -errno. */
int sb_shm_map(struct sandbox *sb, struct memfs_node *node, gva_t at, uint64_t len, uint64_t off);
/* Before sb forks: its MAP_SHARED memory not yet shared becomes shared
 * objects (contents kept), which the child then maps too. -errno. */
int sb_shm_promote(struct sandbox *sb);
/* A layer file's reads, writes and truncation (the file kind's, open with
 * O_TRUNC, truncate(2)): the file's object, when it has one, is the
 * file's content (shm.c). -errno. */
int64_t sb_shm_pread(struct sandbox *sb, struct memfs_node *node, void *buf, uint64_t len, uint64_t off);
int64_t sb_shm_pwrite(struct sandbox *sb, struct memfs_node *node, const void *buf, uint64_t len,
                      uint64_t off);
int sb_shm_truncate(struct sandbox *sb, struct memfs_node *node, uint64_t len);
/* The layer file's bytes [0, size), as its reads give them, into fd at the
 * same offsets, up to the file's end (past it fd keeps what it holds).
 * -errno. */
int sb_shm_copy_file(struct sandbox *sb, struct memfs_node *node, int fd, uint64_t size);
/* msync: what the shared mappings of layer files in [start, start + len)
 * hold goes back to the files' layer copies. -errno. */
int sb_shm_sync(struct sandbox *sb, gva_t start, uint64_t len);
/* The sandbox ends: its objects go (fs: the first process's layer). */
void sb_shm_free_all(struct sb_procs *p, struct memfs *fs);

#endif
