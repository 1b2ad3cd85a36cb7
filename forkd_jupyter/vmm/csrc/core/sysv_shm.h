/* System V shared memory of a sandbox (sysv_shm.c; the calls are
 * sys/sys_shm.c). */
#ifndef SYSV_SHM_H
#define SYSV_SHM_H

#include "core/sandbox.h"

#define SYSV_SLOTS 128 /* segments at once (SHMMNI): then shmget is ENOSPC */

struct file;
struct sb_procs;

/* A segment: an unnamed file of the writable layer that attaching maps
 * shared (core/shm.c), so every process attaching it sees the same bytes.
 * Its id is seq * SYSV_SLOTS + its slot; a removed one (IPC_RMID) keeps
 * its slot until the last process detaches it, with no key. */
struct sysv_seg {
    bool used, removed;
    int32_t key;
    uint32_t seq;
    uint64_t size; /* as asked; the file holds it rounded up to pages */
    uint32_t mode, uid, gid, cuid, cgid;
    uint32_t cpid, lpid;
    uint64_t nattch;
    int64_t atime, dtime, ctime;
    struct file *file;
};

struct sysv_table {
    struct sysv_seg seg[SYSV_SLOTS];
    uint32_t next_seq;
};

/* What one process attached, where. */
struct sysv_attach {
    gva_t at;
    uint64_t len;
    int id;
};

/* The sandbox's table (made at its first use; NULL when out of memory). */
struct sysv_table *sysv_table(struct sb_procs *p);
/* The live segment of id, or NULL. */
struct sysv_seg *sysv_by_id(struct sb_procs *p, int id);
int sysv_id(const struct sysv_table *t, const struct sysv_seg *s);
/* Records sb's attach of id at [at, at + len). -ENOMEM. */
int sysv_attached(struct sandbox *sb, int id, gva_t at, uint64_t len);
/* sb's attach starting at at: its entry is removed and the segment's count
 * dropped (the segment goes when removed and detached by all); its length
 * in *len, or -EINVAL when nothing is attached there. The caller unmaps. */
int sysv_detach(struct sandbox *sb, gva_t at, uint64_t *len);
/* A removed segment goes once nobody has it attached. */
void sysv_drop_if_gone(struct sysv_seg *s);
/* fork: child holds the parent's attaches too. exec and the end of a
 * process: it holds none (its mappings go with its address space). */
int sysv_forked(struct sandbox *parent, struct sandbox *child);
void sysv_detach_all(struct sandbox *sb);
/* The sandbox ends: its segments go. */
void sysv_free(struct sb_procs *p);

#endif
