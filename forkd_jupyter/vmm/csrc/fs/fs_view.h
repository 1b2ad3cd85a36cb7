/* The filesystem a guest sees.
 *
 *   /tmp, /sandbox          the private writable layer (memfs), branchable
 *   /opt/forkd              the guest agent's directory, read-only
 *   <read-only roots>       host directories/files CPython needs, visible
 *                           read-only at their own host path
 *   ancestors of the above  synthesized directories listing only what leads
 *                           to a visible path
 *   /dev/null, /dev/zero, /dev/random, /dev/urandom, /dev/full; /proc/self/exe, cwd
 *   and /proc/self/fd/N links
 * Nothing else exists (ENOENT). Invariant: a host file is opened only when
 * the real path it resolves to on the host lies under a read-only root, and
 * only for reading; the guest can never create or change a host file. */
#ifndef FS_VIEW_H
#define FS_VIEW_H

#include "lib/fj.h"

struct memfs;
struct sandbox;
struct file;

struct fs_view_config {
    const char *const *ro_roots; /* absolute host paths, visible read-only */
    size_t n_ro_roots;
    const char *agent_host_dir;  /* shown read-only at /opt/forkd */
    const char *exe_path;        /* target of /proc/self/exe */
    uint64_t layer_bytes_limit;  /* bytes the writable layer may hold */
    const char *cwd;             /* initial working directory, e.g. "/sandbox" */
};

struct fs_view *fs_view_new(const struct fs_view_config *cfg);
/* Copy-on-write branch of the writable layer; config and cwd are copied. */
struct fs_view *fs_view_clone(struct fs_view *v);
/* Another process's view of the same writable layer (fork): its own cwd,
 * umask and /proc/self/exe; the layer stays v's, which must outlive it. */
struct fs_view *fs_view_share(struct fs_view *v, const char *exe_path);
/* A view of owner's layer that is like's otherwise (its cwd, umask and
 * executable): another process of a branch whose first process has owner;
 * owner must outlive it. */
struct fs_view *fs_view_share_as(struct fs_view *owner, const struct fs_view *like);
/* /proc/self/exe after execve; -ENOMEM. */
int fs_view_set_exe(struct fs_view *v, const char *exe_path);
void fs_view_free(struct fs_view *v);
/* A view rebuilt from a saved snapshot: roots are taken as saved (each
 * absolute, never "/" nor inside the layer, or NULL is returned); adopts
 * layer, even on failure. */
struct fs_view *fs_view_restore(char *const *roots, size_t n_roots, const char *agent_dir,
                                const char *exe_path, uint64_t layer_limit, struct memfs *layer,
                                const char *cwd, unsigned umask);
/* The saved parts of a view, borrowed. */
void fs_view_saved_parts(const struct fs_view *v, char *const **roots, size_t *n_roots,
                         const char **agent_dir, const char **exe_path, uint64_t *layer_limit,
                         unsigned *umask);
struct memfs *fs_view_layer(struct fs_view *v);
const char *fs_view_cwd(const struct fs_view *v);

#endif
