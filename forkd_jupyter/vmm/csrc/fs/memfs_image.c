/* memfs: A layer saved to an image and loaded back (docs/snapshots.md). */
#define _GNU_SOURCE
#include "fs/memfs_impl.h"
#include "lib/crc32.h"

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
    if (memfs_is_data(n)) {
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
        (type != S_IFREG && type != S_IFDIR && type != S_IFLNK && !memfs_type_is_name_only(type)))
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
    if (memfs_type_is_name_only(type)) /* an empty file record */
        return memfs_parse_file(fs, r, &n->u.file) == 0 && n->u.file.size == 0 ? 0 : -EINVAL;
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
