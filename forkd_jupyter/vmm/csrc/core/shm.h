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
/* The sandbox ends: its objects go (fs: the first process's layer). */
void sb_shm_free_all(struct sb_procs *p, struct memfs *fs);

#endif
