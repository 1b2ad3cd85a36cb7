/* The fd table. Invariant: every non-NULL slot holds one reference. */
#define _GNU_SOURCE
#include "core/fdt.h"
#include "core/file_locks.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct file *file_new(const struct file_ops *ops, int flags, const char *path) {
    struct file *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    static uint64_t next_serial;
    f->refs = 1;
    f->serial = __atomic_add_fetch(&next_serial, 1, __ATOMIC_RELAXED);
    f->ops = ops;
    f->flags = flags;
    f->host_fd = -1;
    if (path && !(f->path = strdup(path))) {
        free(f);
        return NULL;
    }
    return f;
}

struct file *file_new_with(const struct file_ops *ops, int flags, const void *priv, size_t size) {
    struct file *f = file_new(ops, flags, NULL);
    void *copy = f ? malloc(size) : NULL;
    if (!copy) {
        free(f);
        return NULL;
    }
    f->priv = memcpy(copy, priv, size);
    return f;
}

int file_anon_stat(struct stat *st, uint32_t mode, uint64_t ino, uint64_t dev) {
    memset(st, 0, sizeof(*st));
    st->st_mode = mode;
    st->st_nlink = 1;
    st->st_uid = st->st_gid = 1000;
    st->st_ino = ino;
    st->st_dev = dev;
    st->st_blksize = 4096;
    return 0;
}

struct file *file_get(struct file *f) {
    f->refs++;
    return f;
}

void file_put(struct file *f) {
    if (!f || --f->refs > 0)
        return;
    if (f->locked_in)
        file_locks_file_gone(f);
    if (f->ops->release)
        f->ops->release(f);
    if (f->host_fd >= 0)
        close(f->host_fd);
    free(f->path);
    free(f);
}

int fdt_init(struct fdt *t) {
    t->cap = 64;
    t->limit = FDT_MAX;
    t->slots = calloc((size_t)t->cap, sizeof(*t->slots));
    return t->slots ? 0 : -ENOMEM;
}

void fdt_destroy(struct fdt *t) {
    for (int i = 0; i < t->cap; i++)
        file_put(t->slots[i].f);
    free(t->slots);
    t->slots = NULL;
    t->cap = 0;
}

static int grow(struct fdt *t, int need) {
    if (need < t->cap)
        return 0;
    if (need >= FDT_MAX)
        return -EMFILE;
    int cap = t->cap;
    while (cap <= need)
        cap *= 2;
    if (cap > FDT_MAX)
        cap = FDT_MAX;
    struct fdt_slot *s = realloc(t->slots, (size_t)cap * sizeof(*s));
    if (!s)
        return -ENOMEM;
    memset(s + t->cap, 0, (size_t)(cap - t->cap) * sizeof(*s));
    t->slots = s;
    t->cap = cap;
    return 0;
}

int fdt_install(struct fdt *t, struct file *f, int min_fd, bool cloexec) {
    if (min_fd < 0)
        return -EINVAL;
    for (int fd = min_fd;; fd++) {
        if (fd >= fdt_limit(t))
            return -EMFILE;
        if (fd >= t->cap) {
            int err = grow(t, fd);
            if (err < 0)
                return err;
        }
        if (!t->slots[fd].f) {
            t->slots[fd].f = f;
            t->slots[fd].cloexec = cloexec;
            return fd;
        }
    }
}

int fdt_install_at(struct fdt *t, struct file *f, int fd, bool cloexec) {
    if (fd < 0 || fd >= fdt_limit(t))
        return -EBADF;
    int err = grow(t, fd);
    if (err < 0)
        return err == -EMFILE ? -EBADF : err;
    struct file *old = t->slots[fd].f;
    t->slots[fd].f = f;
    t->slots[fd].cloexec = cloexec;
    file_put(old);
    return fd;
}

struct file *fdt_get(struct fdt *t, int fd) {
    if (fd < 0 || fd >= t->cap)
        return NULL;
    return t->slots[fd].f;
}

int fdt_close(struct fdt *t, int fd) {
    struct file *f = fdt_get(t, fd);
    if (!f)
        return -EBADF;
    t->slots[fd].f = NULL;
    file_put(f);
    return 0;
}

int fdt_set_cloexec(struct fdt *t, int fd, bool on) {
    if (!fdt_get(t, fd))
        return -EBADF;
    t->slots[fd].cloexec = on;
    return 0;
}

int fdt_get_cloexec(struct fdt *t, int fd) {
    if (!fdt_get(t, fd))
        return -EBADF;
    return t->slots[fd].cloexec;
}

int fdt_count(const struct fdt *t) {
    int n = 0;
    for (int i = 0; i < t->cap; i++)
        n += t->slots[i].f != NULL;
    return n;
}

/* Remembers from -> to in one of ctx's lists; -ENOMEM. */
static int memo_add(struct fdt_clone_memo **list, size_t *n, size_t *cap, const void *from,
                    void *to) {
    if (*n == *cap) {
        size_t grown_cap = *cap ? *cap * 2 : 8;
        struct fdt_clone_memo *grown = realloc(*list, grown_cap * sizeof(**list));
        if (!grown)
            return -ENOMEM;
        *list = grown;
        *cap = grown_cap;
    }
    (*list)[*n].from = from;
    (*list)[(*n)++].to = to;
    return 0;
}

void *fdt_clone_shared_copy(struct fdt_clone_ctx *ctx, const void *from, size_t size, bool *fresh) {
    for (size_t i = 0; i < ctx->n_shared; i++)
        if (ctx->shared[i].from == from) {
            *fresh = false;
            return ctx->shared[i].to;
        }
    void *to = malloc(size);
    if (!to || memo_add(&ctx->shared, &ctx->n_shared, &ctx->cap_shared, from, to) < 0) {
        free(to);
        return NULL;
    }
    memcpy(to, from, size);
    *fresh = true;
    return to;
}

/* The clone of description f within ctx (a new reference): the one made
 * earlier for another fd or table sharing f, else a new one. */
static struct file *clone_description(struct file *f, struct fdt_clone_ctx *ctx) {
    for (size_t i = 0; i < ctx->n_files; i++)
        if (ctx->files[i].from == f)
            return file_get(ctx->files[i].to);
    struct file *copy = f->ops->clone(f, ctx);
    if (copy && memo_add(&ctx->files, &ctx->n_files, &ctx->cap_files, f, copy) < 0) {
        file_put(copy);
        return NULL;
    }
    return copy;
}

int fdt_clone_with(struct fdt *dst, const struct fdt *src, struct fdt_clone_ctx *ctx) {
    int err = fdt_init(dst);
    for (int fd = 0; fd < src->cap && err == 0; fd++) {
        struct file *f = src->slots[fd].f;
        if (!f || !f->ops->clone)
            continue;
        struct file *copy = clone_description(f, ctx);
        if (!copy) {
            err = -ENOMEM;
            break;
        }
        int at = fdt_install_at(dst, copy, fd, src->slots[fd].cloexec);
        if (at < 0) {
            file_put(copy);
            err = at;
        }
    }
    dst->limit = src->limit; /* after the copies, as fdt_share */
    if (err < 0)
        fdt_destroy(dst);
    return err;
}

void fdt_clone_ctx_done(struct fdt_clone_ctx *ctx) {
    free(ctx->shared);
    free(ctx->files);
    ctx->shared = NULL;
    ctx->files = NULL;
    ctx->n_shared = ctx->cap_shared = ctx->n_files = ctx->cap_files = 0;
}

int fdt_clone(struct fdt *dst, const struct fdt *src, struct fs_view *view,
              struct sb_procs *procs) {
    struct fdt_clone_ctx ctx = {.view = view, .procs = procs};
    int err = fdt_clone_with(dst, src, &ctx);
    fdt_clone_ctx_done(&ctx);
    return err;
}

int fdt_share(struct fdt *dst, const struct fdt *src) {
    int err = fdt_init(dst);
    for (int fd = 0; fd < src->cap && err == 0; fd++) {
        struct file *f = src->slots[fd].f;
        if (!f)
            continue;
        int at = fdt_install_at(dst, file_get(f), fd, src->slots[fd].cloexec);
        if (at < 0) {
            file_put(f);
            err = at;
        }
    }
    dst->limit = src->limit; /* after the copies: fds opened above a lowered limit stay */
    return err;
}

void fdt_close_on_exec(struct fdt *t) {
    for (int fd = 0; fd < t->cap; fd++)
        if (t->slots[fd].f && t->slots[fd].cloexec)
            fdt_close(t, fd);
}
