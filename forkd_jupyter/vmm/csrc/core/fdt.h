/* Open file descriptions and the guest's fd table.
 *
 * A struct file is one open file description: dup'ed fds share it (and its
 * offset). Each kind of file supplies a file_ops table; an operation left
 * NULL fails with the errno documented beside it. Buffers passed to ops are
 * host pointers already translated from guest memory (for reads, obtained
 * with mm_write_ptr). A sandbox's files are used under its big_lock only. */
#ifndef FDT_H
#define FDT_H

#include <sys/stat.h>

#include "lib/fj.h"

struct sandbox;
struct file;
struct fdt_clone_ctx;
struct memfs_node;
struct fs_view;
struct sb_procs;

struct file_ops {
    const char *kind;                                                          /* for stats/debug */
    bool never_waits; /* reads, writes and close never wait (files, directories, devices) */
    int64_t (*read)(struct sandbox *, struct file *, void *, uint64_t);        /* NULL: -EINVAL */
    int64_t (*write)(struct sandbox *, struct file *, const void *, uint64_t); /* NULL: -EINVAL */
    int64_t (*pread)(struct sandbox *, struct file *, void *, uint64_t,
                     uint64_t); /* NULL: -ESPIPE */
    int64_t (*pwrite)(struct sandbox *, struct file *, const void *, uint64_t,
                      uint64_t);                                            /* NULL: -ESPIPE */
    int64_t (*lseek)(struct sandbox *, struct file *, int64_t, int);        /* NULL: -ESPIPE */
    int (*stat)(struct sandbox *, struct file *, struct stat *);            /* required */
    int64_t (*getdents)(struct sandbox *, struct file *, void *, uint64_t); /* NULL: -ENOTDIR */
    /* Events ready now (POLLIN/POLLOUT/POLLHUP); NULL: always readable+writable. */
    short (*poll)(struct sandbox *, struct file *, short);
    /* Host fd a blocking wait can poll() on, or -1 (NULL: -1). */
    int (*wait_fd)(struct file *);
    /* Nanoseconds until the file may become ready by itself (a timer), -1
     * for never (NULL: never); waits on files sleep no longer than that. */
    int64_t (*wake_in_ns)(struct sandbox *, struct file *);
    int64_t (*ioctl)(struct sandbox *, struct file *, uint64_t, uint64_t); /* NULL: -ENOTTY */
    int (*truncate)(struct sandbox *, struct file *, uint64_t);            /* NULL: -EINVAL */
    int (*sync)(struct sandbox *, struct file *);                          /* NULL: 0 */
    void (*release)(struct file *);                                        /* frees kind data */
    /* An independent copy of this description for a branch whose filesystem
     * is ctx->view (same flags, offset and kind state; memfs nodes looked up
     * by inode number in the view's layer). Kind objects shared by several
     * descriptions (a pipe's buffer) are copied once per fdt_clone through
     * fdt_clone_shared_copy. NULL op: the fd is not carried into branches (it is
     * closed there). */
    struct file *(*clone)(struct file *f, struct fdt_clone_ctx *ctx);
};

struct file {
    int refs;
    uint64_t serial; /* unique to this description (epoll entries name it) */
    const struct file_ops *ops;
    int flags; /* open flags: O_ACCMODE, O_APPEND, O_NONBLOCK, O_DIRECTORY ... */
    uint64_t off;
    char *path;                 /* guest path it was opened by (malloc'd), or NULL */
    int host_fd;                /* kind data: a host fd owned by this file, or -1 */
    struct memfs_node *node;    /* kind data: a memfs node reference, or NULL */
    uint64_t dir_cookie;        /* directory position */
    void *priv;                 /* other kind data, freed by release */
    struct sb_procs *locked_in; /* its OFD and flock locks' table (core/file_locks.h), or NULL */
};

struct fdt_slot {
    struct file *f;
    bool cloexec;
};

#define FDT_MAX 4096

struct fdt {
    struct fdt_slot *slots;
    int cap;
    int limit; /* RLIMIT_NOFILE's soft value, at most FDT_MAX: no new fd at or above it */
};

struct file *file_new(const struct file_ops *ops, int flags, const char *path);
/* A description with no path whose priv is a malloc'd copy of size bytes
 * at priv (freed by the kind's release); NULL when out of memory. */
struct file *file_new_with(const struct file_ops *ops, int flags, const void *priv, size_t size);
/* The stat of an object living only in the VMM (pipe, socket pair, epoll,
 * eventfd): owned by the sandbox user, one link, a counter for inode. */
int file_anon_stat(struct stat *st, uint32_t mode, uint64_t ino, uint64_t dev);
struct file *file_get(struct file *f);
void file_put(struct file *f);

int fdt_init(struct fdt *t);
/* The fds a table may use: [0, fdt_limit). */
static inline int fdt_limit(const struct fdt *t) { return t->limit; }
void fdt_destroy(struct fdt *t);
/* Lowest free fd >= min_fd; takes over the caller's reference; -EMFILE. */
int fdt_install(struct fdt *t, struct file *f, int min_fd, bool cloexec);
/* Puts f at exactly fd, closing what was there (dup2 semantics). */
int fdt_install_at(struct fdt *t, struct file *f, int fd, bool cloexec);
struct file *fdt_get(struct fdt *t, int fd); /* borrowed; NULL when not open */
int fdt_close(struct fdt *t, int fd);        /* -EBADF */
int fdt_set_cloexec(struct fdt *t, int fd, bool on);
int fdt_get_cloexec(struct fdt *t, int fd);
int fdt_count(const struct fdt *t);
/* dst gets clones of src's open descriptions (fds that shared a description
 * share its clone), for a branch whose filesystem is view. */
int fdt_clone(struct fdt *dst, const struct fdt *src, struct fs_view *view, struct sb_procs *procs);

/* dst gets src's fds, sharing their open descriptions (fork). */
int fdt_share(struct fdt *dst, const struct fdt *src);
/* Closes every fd marked close-on-exec (execve). */
void fdt_close_on_exec(struct fdt *t);

/* One clone in progress: of one fd table (fdt_clone), or of the tables of
 * every process of a sandbox (fdt_clone_with on each, then
 * fdt_clone_ctx_done), where a description several tables share gets one
 * clone that they share again. */
struct fdt_clone_ctx {
    struct fs_view *view;
    struct sb_procs *procs; /* the branch's processes (its socket names), or NULL for a snapshot */
    struct fdt_clone_memo {
        const void *from;
        void *to;
    } *shared, *files; /* kind objects and descriptions already cloned: source -> copy */
    size_t n_shared, cap_shared, n_files, cap_files;
};
/* dst gets clones of src's descriptions within ctx (on failure dst is
 * empty and ctx still needs fdt_clone_ctx_done). */
int fdt_clone_with(struct fdt *dst, const struct fdt *src, struct fdt_clone_ctx *ctx);
void fdt_clone_ctx_done(struct fdt_clone_ctx *ctx);
/* The copy, for this clone, of a kind object that several descriptions
 * share (a pipe's buffer, a socket pair): the first call makes it, a plain
 * copy of size bytes of from, and sets *fresh (the caller then resets what
 * counts descriptions); later calls return the same copy. NULL on ENOMEM. */
void *fdt_clone_shared_copy(struct fdt_clone_ctx *ctx, const void *from, size_t size, bool *fresh);

#endif
