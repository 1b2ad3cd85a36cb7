/* Snapshots on disk: a directory of three files (docs/snapshots.md).
 *
 *   state        magic "FJSNAPST", version, the vCPU and VMM state, CRC-32
 *   layer.memfs  the writable layer (memfs_save: its own magic and CRC-32)
 *   memory.img   guest RAM as a sparse file of ram_bytes (holes read zero)
 *
 * Invariants: a saved snapshot stands alone (a diff chain is folded into
 * one image, oldest layer first); loading never trusts the files: every
 * length is bounds-checked, the CRC must match, the address-space map must
 * be one this VMM could have made, the view's read-only roots, agent
 * directory and interpreter come from the loading host's configuration (the
 * saved ones are read and ignored, the interpreter must match), host files
 * are reopened only through that view, and a description that cannot be
 * rebuilt is left closed, as a branch leaves a pipe. Authenticating the
 * files (an HMAC with the user's key) is the caller's (snapshot.py). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/bitmap.h"
#include "lib/crc32.h"
#include "kvm/kvm_layout.h"
#include "file/file_kinds.h"
#include "file/file_stdio.h"
#include "fs/fs_memfs.h"
#include "snap/snap_hint.h"
#include "snap/snap_ranges.h"
#include "snap/snapshot.h"
#include "api/vmm_api.h"
#include "api/snapshot_api.h"
#include "fs/view_impl.h"

#define STATE_MAGIC "FJSNAPST"
#define STATE_VERSION 4u /* 4: limits, 3: argv and envp, 2: threads; 1-3 read (default limits) */
#define MAX_STR PATH_MAX

/* ------------------------------------------------- a growing buffer */

struct out {
    unsigned char *p;
    size_t len, cap;
    int err;
};

static void put(struct out *o, const void *data, size_t n)
{
    if (o->err)
        return;
    if (o->len + n > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        while (cap < o->len + n)
            cap *= 2;
        unsigned char *p = realloc(o->p, cap);
        if (!p) {
            o->err = -ENOMEM;
            return;
        }
        o->p = p;
        o->cap = cap;
    }
    memcpy(o->p + o->len, data, n);
    o->len += n;
}

static void put_u64(struct out *o, uint64_t v) { put(o, &v, 8); }
static void put_u32(struct out *o, uint32_t v) { put(o, &v, 4); }
static void put_str(struct out *o, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    put_u32(o, (uint32_t)n);
    put(o, s, n);
}
static void put_blob(struct out *o, const void *p, size_t n)
{
    put_u32(o, (uint32_t)n);
    put(o, p, n);
}

/* A bounds-checked cursor: a read past the end sets bad and yields zeros. */
struct in {
    const unsigned char *p;
    size_t len, pos;
    bool bad;
};

static const void *take(struct in *r, size_t n)
{
    if (r->bad || n > r->len - r->pos) {
        r->bad = true;
        return NULL;
    }
    r->pos += n;
    return r->p + r->pos - n;
}

/* An unsigned integer of n <= 8 bytes, in the host's (little-endian) order. */
static uint64_t get_uint(struct in *r, size_t n)
{
    uint64_t v = 0;
    const void *p = take(r, n);
    if (p)
        memcpy(&v, p, n);
    return v;
}

static uint64_t get_u64(struct in *r) { return get_uint(r, 8); }
static uint32_t get_u32(struct in *r) { return (uint32_t)get_uint(r, 4); }

/* Copies a string of at most MAX_STR - 1 bytes into a malloc'd buffer. */
static char *get_str(struct in *r)
{
    uint32_t n = get_u32(r);
    const char *p = n < MAX_STR ? take(r, n) : (r->bad = true, NULL);
    char *s = p || n == 0 ? malloc(n + 1) : NULL;
    if (!s) {
        r->bad = true;
        return NULL;
    }
    memcpy(s, p ? p : "", n);
    s[n] = 0;
    return s;
}

/* A blob of exactly size bytes into dst. */
static void get_blob(struct in *r, void *dst, size_t size)
{
    if (get_u32(r) != size) {
        r->bad = true;
        return;
    }
    const void *p = take(r, size);
    if (p)
        memcpy(dst, p, size);
}

/* ------------------------------------------------------------- files */

static int write_all(int fd, const void *p, size_t n, off_t off)
{
    while (n) {
        ssize_t k = pwrite(fd, p, n, off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return k < 0 ? -errno : -EIO;
        p = (const char *)p + k, n -= (size_t)k, off += k;
    }
    return 0;
}

static int open_in(const char *dir, const char *name, int flags)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    int fd = open(path, flags | O_CLOEXEC | O_NOFOLLOW, 0600);
    return fd < 0 ? -errno : fd;
}

/* Copies every data extent of src (up to size) to dst; holes stay holes. */
static int copy_data_extents(int dst, int src, uint64_t size)
{
    for (off_t at = 0; (uint64_t)at < size;) {
        off_t data = lseek(src, at, SEEK_DATA);
        if (data < 0)
            return errno == ENXIO ? 0 : -errno;
        off_t hole = lseek(src, data, SEEK_HOLE);
        if (hole < 0)
            return -errno;
        if ((uint64_t)hole > size)
            hole = (off_t)size;
        int err = snap_copy_file_range(dst, src, (uint64_t)data, (uint64_t)(hole - data));
        if (err < 0)
            return err;
        at = hole;
    }
    return 0;
}

/* Writes the chain's memory as one image: the root's extents, then each
 * diff layer's pages, oldest first (later layers win). */
static int save_memory(struct snapshot *snap, int fd)
{
    if (snap->parent) {
        int err = save_memory(snap->parent, fd);
        uint64_t pages = snap->ram_bytes / FJ_PAGE_SIZE;
        for (uint64_t q, p = fj_bits_next_run(snap->delta, pages, 0, &q); err == 0 && p < pages;
             p = fj_bits_next_run(snap->delta, pages, q, &q))
            err = snap_copy_file_range(fd, snap->image_fd, p * FJ_PAGE_SIZE,
                                       (q - p) * FJ_PAGE_SIZE);
        return err;
    }
    return copy_data_extents(fd, snap->image_fd, snap->ram_bytes);
}

/* ------------------------------------------------------ file descriptions */

/* What a description needs to be rebuilt; see restore_file for each kind. */
static void save_file(struct out *o, const struct file *f)
{
    put_str(o, f->ops->kind);
    put_u32(o, (uint32_t)f->flags);
    put_u64(o, f->off);
    put_u64(o, f->dir_cookie);
    put_str(o, f->path);
    put_u64(o, f->node ? memfs_node_ino(f->node) : 0);
    put_u64(o, (uint64_t)(uintptr_t)f->priv);
}

static struct file *restore_file(struct fs_view *view, const char *kind, int flags,
                                 const char *path, uint64_t ino, uint64_t priv)
{
    struct memfs *fs = fs_view_layer(view);
    if (!strncmp(kind, "layer-", 6)) {
        struct memfs_node *n = memfs_node_by_ino(fs, ino);
        return n ? file_layer_new(fs, n, flags, path) : NULL;
    }
    if (!strcmp(kind, "vdir"))
        return file_vdir_new(flags, path);
    if (!strncmp(kind, "host-", 5) || !strcmp(kind, "device")) {
        struct view_node n;
        if (!path[0] || view_resolve(view, "/", path, true, &n) < 0)
            return NULL;
        struct file *f = NULL;
        struct stat st;
        int fd;
        if (n.kind == VK_DEV && !strcmp(kind, "device"))
            f = file_dev_new(n.leaf, flags, n.path);
        else if (n.kind == VK_HOST && stat(n.host, &st) == 0 && (fd = view_open_host(&n, &st)) >= 0)
            f = file_host_new(fd, flags, n.path, S_ISDIR(st.st_mode));
        view_node_release(view, &n);
        return f;
    }
    return file_stdio_restore(kind, (uintptr_t)priv, flags);
}

static void save_fdt(struct out *o, const struct fdt *t)
{
    uint32_t n = 0;
    for (int fd = 0; fd < t->cap; fd++)
        n += t->slots[fd].f != NULL;
    put_u32(o, n);
    for (int fd = 0; fd < t->cap; fd++) {
        const struct file *f = t->slots[fd].f;
        if (!f)
            continue;
        int shared = -1; /* a dup of an earlier fd shares its description */
        for (int prev = 0; prev < fd && shared < 0; prev++)
            if (t->slots[prev].f == f)
                shared = prev;
        put_u32(o, (uint32_t)fd);
        put_u32(o, t->slots[fd].cloexec);
        put_u32(o, (uint32_t)shared);
        if (shared < 0)
            save_file(o, f);
    }
}

static int load_fdt(struct in *r, struct fdt *t, struct fs_view *view)
{
    int err = fdt_init(t);
    uint32_t n = get_u32(r);
    for (uint32_t i = 0; err == 0 && i < n && !r->bad; i++) {
        int fd = (int)get_u32(r);
        bool cloexec = get_u32(r) != 0;
        int shared = (int)get_u32(r);
        if (fd < 0 || fd >= FDT_MAX) {
            r->bad = true;
            break;
        }
        struct file *f = NULL;
        if (shared >= 0) {
            struct file *earlier = shared < fd ? fdt_get(t, shared) : NULL;
            f = earlier ? file_get(earlier) : NULL;
        } else {
            char *kind = get_str(r);
            int flags = (int)get_u32(r);
            uint64_t off = get_u64(r), cookie = get_u64(r);
            char *path = get_str(r);
            uint64_t ino = get_u64(r), priv = get_u64(r);
            if (!r->bad && (f = restore_file(view, kind, flags, path, ino, priv))) {
                f->off = off;
                f->dir_cookie = cookie;
            }
            free(kind);
            free(path);
        }
        int rc = f ? fdt_install_at(t, f, fd, cloexec) : 0; /* >= 0 on success */
        if (rc < 0) {
            file_put(f);
            err = rc;
        }
    }
    return r->bad ? -EINVAL : err;
}

static void save_limits(struct out *o, const struct sb_limits *l)
{
    put_u32(o, RLIM_NLIMITS);
    for (unsigned i = 0; i < 2 * RLIM_NLIMITS; i++)
        put_u64(o, i % 2 ? l->rlim[i / 2].rlim_max : l->rlim[i / 2].rlim_cur);
    put_u32(o, l->rlim_set);
    put_u32(o, (uint32_t)l->nice);
    put_u32(o, (uint32_t)l->ioprio);
}

/* Version 4: only what a program could set (soft <= hard, nice in range, no real-time
 * I/O class); limits only restrict, the sandbox's bounds hold whatever a file says. */
static int load_limits(struct in *r, struct snapshot *snap)
{
    struct sb_limits *l = &snap->limits;
    bool bad = get_u32(r) != RLIM_NLIMITS;
    for (unsigned i = 0; i < RLIM_NLIMITS && !bad; i++) {
        l->rlim[i].rlim_cur = get_u64(r);
        l->rlim[i].rlim_max = get_u64(r);
    }
    l->rlim_set = get_u32(r);
    l->nice = (int)get_u32(r);
    l->ioprio = (int)get_u32(r);
    unsigned cls = (unsigned)l->ioprio >> 13;
    bad = bad || r->bad || l->rlim_set >> RLIM_NLIMITS || l->nice < -20 || l->nice > 19 ||
          cls == 1 || cls > 3 || (l->ioprio & 0x1fff) > 7;
    for (unsigned i = 0; i < RLIM_NLIMITS; i++)
        bad = bad || ((l->rlim_set >> i & 1) && l->rlim[i].rlim_cur > l->rlim[i].rlim_max);
    if (!bad && (l->rlim_set >> RLIMIT_NOFILE & 1))
        snap->fdt.limit = (int)FJ_MIN(l->rlim[RLIMIT_NOFILE].rlim_cur, (rlim_t)FDT_MAX);
    return bad ? -EINVAL : 0;
}

/* ------------------------------------------------------------- state */

static void save_state(struct out *o, struct snapshot *snap)
{
    put(o, STATE_MAGIC, 8);
    put_u32(o, STATE_VERSION);
    put_u64(o, snap->ram_bytes);
    put_u32(o, snap->pid);
    put_str(o, snap->exe_path);
    put_u64(o, snap->logical_bytes);
    put_blob(o, &snap->cpu, sizeof(snap->cpu));
    put_blob(o, &snap->sig, sizeof(snap->sig));
    const struct mm *mm = &snap->mm;
    put_u64(o, mm->brk_start);
    put_u64(o, mm->brk_cur);
    put_u64(o, mm->brk_limit);
    put_u64(o, mm->mmap_top);
    put_u64(o, mm->mapped_bytes);
    put_blob(o, mm->vmas, mm->n_vmas * sizeof(*mm->vmas));
    char *const *roots;
    size_t n_roots;
    const char *agent_dir, *exe;
    uint64_t layer_limit;
    unsigned umask;
    fs_view_saved_parts(snap->view, &roots, &n_roots, &agent_dir, &exe, &layer_limit, &umask);
    put_u32(o, (uint32_t)n_roots);
    for (size_t i = 0; i < n_roots; i++)
        put_str(o, roots[i]);
    put_str(o, agent_dir);
    put_str(o, exe);
    put_u64(o, layer_limit);
    put_str(o, fs_view_cwd(snap->view));
    put_u32(o, umask);
    save_fdt(o, &snap->fdt);
    put_u32(o, snap->next_tid);
    put_u32(o, snap->n_threads);
    for (uint32_t i = 0; i < snap->n_threads; i++)
        put_blob(o, &snap->threads[i], sizeof(snap->threads[i]));
    put_u64(o, mm->arg_start);
    put_u64(o, mm->arg_end);
    put_u64(o, mm->env_start);
    put_u64(o, mm->env_end);
    save_limits(o, &snap->limits);
    uint32_t crc = fj_crc32(0, o->p, o->len);
    put_u32(o, crc);
}

int fj_snapshot_save(fj_snapshot *snap, const char *dir)
{
    if (snap->n_slots)
        return -EMLINK; /* several processes: the saved format holds one */
    int err = fj_snapshot_wait(snap, -1);
    if (err < 0)
        return err;
    struct out o = {0};
    save_state(&o, snap);
    if (o.err) {
        free(o.p);
        return o.err;
    }
    int state = open_in(dir, "state", O_WRONLY | O_CREAT | O_TRUNC);
    int layer = open_in(dir, "layer.memfs", O_WRONLY | O_CREAT | O_TRUNC);
    int memory = open_in(dir, "memory.img", O_RDWR | O_CREAT | O_TRUNC);
    err = state < 0 ? state : layer < 0 ? layer : memory < 0 ? memory : 0;
    if (err == 0)
        err = write_all(state, o.p, o.len, 0);
    if (err == 0)
        err = memfs_save(fs_view_layer(snap->view), layer);
    if (err == 0 && ftruncate(memory, (off_t)snap->ram_bytes) < 0)
        err = -errno;
    if (err == 0)
        err = save_memory(snap, memory);
    for (int *fd = (int[]){state, layer, memory}, i = 0; i < 3; i++)
        if (fd[i] >= 0 && (fsync(fd[i]) < 0 || close(fd[i]) < 0) && err == 0)
            err = -errno;
    free(o.p);
    return err;
}

static int read_file(int fd, unsigned char **buf, size_t *len)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (st.st_size > (16 << 20))
        return -EFBIG; /* the state of one process: far smaller */
    *len = (size_t)st.st_size;
    *buf = malloc(*len ? *len : 1);
    if (!*buf)
        return -ENOMEM;
    for (size_t got = 0; got < *len;) {
        ssize_t k = pread(fd, *buf + got, *len - got, (off_t)got);
        if (k <= 0)
            return k < 0 ? -errno : -EIO;
        got += (size_t)k;
    }
    return 0;
}

/* Magic, CRC-32 and version; leaves r after the version, the CRC cut off. */
static int check_state_header(struct in *r)
{
    if (r->len < 12 || memcmp(r->p, STATE_MAGIC, 8))
        return -EINVAL;
    uint32_t crc;
    memcpy(&crc, r->p + r->len - 4, 4);
    if (fj_crc32(0, r->p, r->len - 4) != crc)
        return -EBADMSG;
    r->len -= 4;
    take(r, 8);
    uint32_t version = get_u32(r);
    return version >= 1 && version <= STATE_VERSION ? (int)version : -EPROTO;
}

/* Version 2: the threads besides the main one. */
static int load_threads(struct in *r, struct snapshot *snap)
{
    snap->next_tid = get_u32(r);
    uint32_t n = get_u32(r);
    if (r->bad || n >= LAYOUT_MAX_VCPUS)
        return -EINVAL;
    snap->n_threads = n;
    if (!(snap->threads = calloc(n ? n : 1, sizeof(*snap->threads))))
        return -ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        get_blob(r, &snap->threads[i], sizeof(snap->threads[i]));
        if (snap->threads[i].id == 0 || snap->threads[i].id >= LAYOUT_MAX_VCPUS)
            r->bad = true;
    }
    return r->bad ? -EINVAL : 0;
}

/* An address-space map this VMM could have made (mm.h's invariants). */
static bool mm_is_plausible(const struct mm *mm, uint64_t ram_bytes)
{
    uint64_t mapped = 0, prev_end = LAYOUT_USER_MIN;
    for (size_t i = 0; i < mm->n_vmas; i++) {
        const struct mm_vma *v = &mm->vmas[i];
        if (v->start < prev_end || v->end <= v->start || v->end > ram_bytes ||
            v->start % FJ_PAGE_SIZE || v->end % FJ_PAGE_SIZE || (unsigned)v->prot > 7 ||
            (unsigned)v->kind > MM_SHARED)
            return false;
        mapped += v->end - v->start;
        prev_end = v->end;
    }
    return mapped == mm->mapped_bytes && mm->brk_start <= mm->brk_cur &&
           mm->brk_cur <= mm->brk_limit && mm->brk_limit <= ram_bytes && mm->mmap_top <= ram_bytes;
}

/* Adopts layer: it ends up in snap->view, or is freed. */
static int load_state(struct in *r, struct snapshot *snap, struct memfs *layer,
                      const struct fj_load_config *cfg)
{
    int header = check_state_header(r);
    if (header < 0) {
        memfs_free(layer);
        return header;
    }
    snap->ram_bytes = get_u64(r);
    snap->pid = get_u32(r);
    char *exe_path = get_str(r);
    bool same_exe = exe_path && !strcmp(exe_path, cfg->exe_path);
    free(exe_path);
    if (strlen(cfg->exe_path) >= sizeof(snap->exe_path)) {
        memfs_free(layer);
        return -ENAMETOOLONG;
    }
    snprintf(snap->exe_path, sizeof(snap->exe_path), "%s", cfg->exe_path);
    snap->logical_bytes = get_u64(r);
    get_blob(r, &snap->cpu, sizeof(snap->cpu));
    get_blob(r, &snap->sig, sizeof(snap->sig));
    struct mm *mm = &snap->mm;
    mm->brk_start = get_u64(r);
    mm->brk_cur = get_u64(r);
    mm->brk_limit = get_u64(r);
    mm->mmap_top = get_u64(r);
    mm->mapped_bytes = get_u64(r);
    uint32_t vma_bytes = get_u32(r);
    const void *vmas = take(r, vma_bytes);
    if (r->bad || vma_bytes % sizeof(*mm->vmas)) {
        memfs_free(layer);
        return -EINVAL;
    }
    mm->n_vmas = mm->cap_vmas = vma_bytes / sizeof(*mm->vmas);
    if (!(mm->vmas = malloc(vma_bytes ? vma_bytes : 1))) {
        memfs_free(layer);
        return -ENOMEM;
    }
    memcpy(mm->vmas, vmas, vma_bytes);
    if (snap->ram_bytes == 0 || snap->ram_bytes % FJ_HUGE_SIZE || snap->ram_bytes > LAYOUT_MAX_RAM ||
        !mm_is_plausible(mm, snap->ram_bytes)) {
        memfs_free(layer);
        return -EINVAL;
    }
    uint32_t n_roots = get_u32(r);
    char **roots = n_roots <= 64 ? calloc(n_roots ? n_roots : 1, sizeof(char *)) : NULL;
    if (!roots)
        r->bad = true;
    for (uint32_t i = 0; roots && i < n_roots && !r->bad; i++)
        roots[i] = get_str(r);
    char *agent_dir = get_str(r), *exe = get_str(r);
    uint64_t layer_limit = get_u64(r);
    char *cwd = get_str(r);
    unsigned umask = get_u32(r);
    int err = -EINVAL;
    same_exe = same_exe && exe && !strcmp(exe, cfg->exe_path);
    if (!r->bad && !same_exe) {
        memfs_free(layer);
        err = -EXDEV;
    } else if (!r->bad) {
        /* The saved roots and agent directory are read (the format has
         * them) and ignored: this host's configuration decides the view. */
        snap->view = fs_view_restore((char *const *)cfg->ro_roots, cfg->n_ro_roots,
                                     cfg->agent_host_dir ? cfg->agent_host_dir : "", cfg->exe_path,
                                     layer_limit, layer, cwd, umask);
    } else {
        memfs_free(layer);
    }
    if (snap->view)
        err = load_fdt(r, &snap->fdt, snap->view);
    if (err == 0 && header >= 2)
        err = load_threads(r, snap);
    if (err == 0 && header >= 3) {
        mm->arg_start = get_u64(r);
        mm->arg_end = get_u64(r);
        mm->env_start = get_u64(r);
        mm->env_end = get_u64(r);
        if (mm->arg_start > mm->arg_end || mm->arg_end > mm->env_start ||
            mm->env_start > mm->env_end || mm->env_end > snap->ram_bytes)
            err = -EINVAL;
    }
    if (err == 0 && header >= 4)
        err = load_limits(r, snap);
    for (uint32_t i = 0; roots && i < n_roots; i++)
        free(roots[i]);
    free(roots);
    free(agent_dir);
    free(exe);
    free(cwd);
    if (err == 0 && (r->pos != r->len || snap->ram_bytes == 0 || snap->ram_bytes % FJ_HUGE_SIZE))
        err = -EINVAL;
    return err;
}

int fj_snapshot_load(int state_fd, int layer_fd, int memory_fd, const struct fj_load_config *cfg,
                     fj_snapshot **out)
{
    *out = NULL;
    if (!cfg || !cfg->exe_path || (cfg->n_ro_roots && !cfg->ro_roots))
        return -EINVAL;
    struct snapshot *snap = snapshot_alloc(FJ_SNAP_FULL, 0); /* the size comes from state */
    if (!snap)
        return -ENOMEM;
    unsigned char *buf = NULL;
    size_t len = 0;
    struct memfs *layer = NULL;
    int err = read_file(state_fd, &buf, &len);
    if (err == 0 && lseek(layer_fd, 0, SEEK_SET) < 0)
        err = -errno;
    if (err == 0)
        err = memfs_load(layer_fd, UINT64_MAX, &layer);
    if (err == 0) {
        struct in r = {.p = buf, .len = len};
        err = load_state(&r, snap, layer, cfg); /* adopts layer */
        if (err == 0)
            memfs_drop_clone_holds(fs_view_layer(snap->view));
    }
    struct stat st;
    if (err == 0 && (fstat(memory_fd, &st) < 0 || (uint64_t)st.st_size != snap->ram_bytes))
        err = -EINVAL;
    if (err == 0 && (snap->image_fd = fcntl(memory_fd, F_DUPFD_CLOEXEC, 3)) < 0)
        err = -errno;
    free(buf);
    if (err != 0) {
        err = err < 0 ? err : -EINVAL;
        snapshot_finish(snap, FJ_SNAP_FAILED, "load failed");
        fj_snapshot_release(snap);
        return err;
    }
    snap->hint = hint_new(); /* its children teach their own lineage */
    snapshot_finish(snap, FJ_SNAP_READY, NULL);
    *out = snap;
    return 0;
}
