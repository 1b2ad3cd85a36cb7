/* memfs: File data (copy-on-write chunks) and attributes. */
#define _GNU_SOURCE
#include "fs/memfs_impl.h"

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
int memfs_file_prepare(struct memfs *fs, struct memfs_file *f, uint64_t idx, uint64_t need) {
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
    if (memfs_is_data(n)) {
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
