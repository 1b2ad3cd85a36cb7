/* System V shared memory: shmget, shmat, shmdt, shmctl (the table and the
 * attach lists are core/sysv_shm.c). A segment is an unnamed file of the
 * writable layer, so it counts against the layer's size, and attaching it
 * is mmap's MAP_SHARED of that file: the processes of a sandbox attaching
 * one see the same bytes, as PostgreSQL's postmaster and backends do. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <time.h>

#include "core/proc.h"
#include "core/sysv_shm.h"
#include "file/file_kinds.h"
#include "fs/fs_view.h"
#include "sys/sys.h"

#define GUEST_ID 1000
#define SHMMAX_ (1ULL << 40) /* bytes of one segment: the layer's limit binds first */
#define SHM_EXEC_ 0100000

static struct sysv_seg *by_key(struct sysv_table *t, int32_t key) {
    for (unsigned i = 0; i < SYSV_SLOTS; i++)
        if (t->seg[i].used && !t->seg[i].removed && t->seg[i].key == key)
            return &t->seg[i];
    return NULL;
}

static int64_t make_segment(struct sandbox *sb, struct sysv_table *t, int32_t key, uint64_t size,
                            uint32_t mode) {
    struct sysv_seg *s = NULL;
    for (unsigned i = 0; i < SYSV_SLOTS && !s; i++)
        if (!t->seg[i].used)
            s = &t->seg[i];
    if (!s)
        return -ENOSPC;
    char path[64];
    snprintf(path, sizeof(path), "/SYSV%08x (deleted)", (unsigned)key);
    struct file *f;
    int err = file_layer_anon(fs_view_layer(sb->view), mode & 0777, O_RDWR, path, &f);
    if (err == 0 && (err = f->ops->truncate(sb, f, FJ_ALIGN_UP(size, FJ_PAGE_SIZE))) < 0)
        file_put(f);
    if (err < 0)
        return err;
    *s = (struct sysv_seg){.used = true,
                           .key = key,
                           .seq = t->next_seq++ % 32768,
                           .size = size,
                           .mode = mode & 0777,
                           .uid = GUEST_ID,
                           .gid = GUEST_ID,
                           .cuid = GUEST_ID,
                           .cgid = GUEST_ID,
                           .cpid = sb->pid,
                           .ctime = time(NULL),
                           .file = f};
    return sysv_id(t, s);
}

static int64_t sys_shmget(struct sandbox *sb, const uint64_t a[6]) {
    int32_t key = (int32_t)a[0];
    uint64_t size = a[1];
    int flags = (int)a[2];
    struct sysv_table *t = sysv_table(sb->procs);
    if (!t)
        return -ENOMEM;
    struct sysv_seg *s = key == IPC_PRIVATE ? NULL : by_key(t, key);
    if (s) {
        if ((flags & IPC_CREAT) && (flags & IPC_EXCL))
            return -EEXIST;
        return size > s->size ? -EINVAL : sysv_id(t, s);
    }
    if (key != IPC_PRIVATE && !(flags & IPC_CREAT))
        return -ENOENT;
    if (size < 1 || size > SHMMAX_)
        return -EINVAL;
    return make_segment(sb, t, key, size, (uint32_t)flags);
}

static int64_t sys_shmat(struct sandbox *sb, const uint64_t a[6]) {
    int id = (int)a[0];
    gva_t addr = a[1];
    int flags = (int)a[2];
    struct sysv_seg *s = sysv_by_id(sb->procs, id);
    if (!s)
        return -EINVAL;
    if (flags & SHM_RND)
        addr &= ~(FJ_PAGE_SIZE - 1);
    else if (addr % FJ_PAGE_SIZE)
        return -EINVAL;
    int prot =
        PROT_READ | (flags & SHM_RDONLY ? 0 : PROT_WRITE) | (flags & SHM_EXEC_ ? PROT_EXEC : 0);
    /* At an address, as Linux: in place of what is there with SHM_REMAP,
     * else only where nothing is. */
    int map_flags = MAP_SHARED | (!addr ? 0 : flags & SHM_REMAP ? MAP_FIXED : MAP_FIXED_NOREPLACE);
    uint64_t len = FJ_ALIGN_UP(s->size, FJ_PAGE_SIZE);
    int64_t at = sys_map_shared(sb, addr, len, prot, map_flags, s->file->node, 0);
    if (at < 0)
        return at == -EEXIST ? -EINVAL : at;
    int err = sysv_attached(sb, id, (gva_t)at, len);
    if (err < 0) {
        mm_unmap(&sb->mm, (gva_t)at, len);
        return err;
    }
    s->lpid = sb->pid;
    s->atime = time(NULL);
    return at;
}

static int64_t sys_shmdt(struct sandbox *sb, const uint64_t a[6]) {
    uint64_t len;
    int err = sysv_detach(sb, a[0], &len);
    return err < 0 ? err : mm_unmap(&sb->mm, a[0], len);
}

static void fill_stat(const struct sysv_seg *s, struct shmid_ds *ds) {
    memset(ds, 0, sizeof(*ds));
    ds->shm_perm.__key = s->removed ? IPC_PRIVATE : s->key;
    ds->shm_perm.uid = s->uid;
    ds->shm_perm.gid = s->gid;
    ds->shm_perm.cuid = s->cuid;
    ds->shm_perm.cgid = s->cgid;
    ds->shm_perm.mode = s->mode | (s->removed ? SHM_DEST : 0);
    ds->shm_perm.__seq = (unsigned short)s->seq;
    ds->shm_segsz = s->size;
    ds->shm_atime = s->atime;
    ds->shm_dtime = s->dtime;
    ds->shm_ctime = s->ctime;
    ds->shm_cpid = (pid_t)s->cpid;
    ds->shm_lpid = (pid_t)s->lpid;
    ds->shm_nattch = s->nattch;
}

/* IPC_INFO and SHM_INFO: the limits, and what is in use. */
static int64_t shm_info(struct sandbox *sb, int cmd, gva_t out) {
    struct sysv_table *t = sysv_table(sb->procs);
    if (!t)
        return -ENOMEM;
    int highest = 0;
    unsigned long used = 0, pages = 0;
    for (unsigned i = 0; i < SYSV_SLOTS; i++)
        if (t->seg[i].used) {
            highest = (int)i;
            used++;
            pages += FJ_ALIGN_UP(t->seg[i].size, FJ_PAGE_SIZE) / FJ_PAGE_SIZE;
        }
    if (cmd == IPC_INFO) {
        struct shminfo info = {.shmmax = SHMMAX_,
                               .shmmin = 1,
                               .shmmni = SYSV_SLOTS,
                               .shmseg = SYSV_SLOTS,
                               .shmall = SHMMAX_ / FJ_PAGE_SIZE};
        return mm_copy_to(&sb->mm, out, &info, sizeof(info)) < 0 ? -EFAULT : highest;
    }
    struct shm_info info = {.used_ids = (int)used, .shm_tot = pages, .shm_rss = pages};
    return mm_copy_to(&sb->mm, out, &info, sizeof(info)) < 0 ? -EFAULT : highest;
}

static int64_t sys_shmctl(struct sandbox *sb, const uint64_t a[6]) {
    int id = (int)a[0], cmd = (int)a[1] & ~0x100 /* IPC_64 */;
    gva_t buf = a[2];
    if (cmd == IPC_INFO || cmd == SHM_INFO)
        return shm_info(sb, cmd, buf);
    struct sysv_seg *s = NULL;
    if (cmd == SHM_STAT || cmd == SHM_STAT_ANY) { /* id is a slot */
        struct sysv_table *t = sb->procs->sysv;
        s = t && id >= 0 && id < SYSV_SLOTS && t->seg[id].used ? &t->seg[id] : NULL;
    } else {
        s = sysv_by_id(sb->procs, id);
    }
    if (!s)
        return -EINVAL;
    struct shmid_ds ds;
    switch (cmd) {
    case IPC_STAT:
    case SHM_STAT:
    case SHM_STAT_ANY:
        fill_stat(s, &ds);
        if (mm_copy_to(&sb->mm, buf, &ds, sizeof(ds)) < 0)
            return -EFAULT;
        return cmd == IPC_STAT ? 0 : sysv_id(sb->procs->sysv, s);
    case IPC_SET:
        if (mm_copy_from(&sb->mm, &ds, buf, sizeof(ds)) < 0)
            return -EFAULT;
        if (ds.shm_perm.uid != GUEST_ID || ds.shm_perm.gid != GUEST_ID)
            return -EPERM; /* giving it away needs privileges */
        s->mode = ds.shm_perm.mode & 0777;
        s->ctime = time(NULL);
        return 0;
    case IPC_RMID:
        s->removed = true;
        s->ctime = time(NULL);
        sysv_drop_if_gone(s);
        return 0;
    case SHM_LOCK:
    case SHM_UNLOCK:
        return 0; /* nothing of a sandbox is swapped */
    default:
        return -EINVAL;
    }
}

const struct sys_entry sys_shm_entries[] = {
    {29, "shmget", sys_shmget, SYS_FULL, NULL},
    {30, "shmat", sys_shmat, SYS_FULL, NULL},
    {67, "shmdt", sys_shmdt, SYS_FULL, NULL},
    {31, "shmctl", sys_shmctl, SYS_PARTIAL,
     "IPC_STAT, IPC_SET (mode), IPC_RMID, IPC_INFO, SHM_INFO, SHM_STAT; SHM_LOCK and "
     "SHM_UNLOCK succeed; owner and group are the sandbox user's"},
};
const size_t sys_shm_count = FJ_ARRAY_SIZE(sys_shm_entries);
