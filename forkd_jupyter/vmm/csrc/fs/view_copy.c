/* Copies of a view: a branch's (its own copy-on-write layer) and another
 * process's (the same layer, its own cwd, umask and executable). */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "fs/fs_memfs.h"
#include "fs/view_impl.h"

/* A view with src's roots, agent directory, limits, cwd and umask, showing
 * exe_path as /proc/self/exe; no layer yet. NULL on ENOMEM. */
static struct fs_view *copy_config(const struct fs_view *src, const char *exe_path) {
    struct fs_view *v = calloc(1, sizeof(*v));
    if (!v)
        return NULL;
    for (size_t i = 0; i < src->n_roots; i++)
        if (view_add_root(v, src->roots[i]) < 0)
            goto fail;
    if (src->agent_dir && !(v->agent_dir = strdup(src->agent_dir)))
        goto fail;
    if (!(v->exe_path = strdup(exe_path)))
        goto fail;
    v->layer_limit = src->layer_limit;
    memcpy(v->cwd, src->cwd, sizeof(v->cwd));
    v->umask = src->umask;
    return v;
fail:
    fs_view_free(v);
    return NULL;
}

struct fs_view *fs_view_clone(struct fs_view *src) {
    struct fs_view *v = copy_config(src, src->exe_path);
    if (v && !(v->layer = memfs_clone(src->layer))) {
        fs_view_free(v);
        return NULL;
    }
    return v;
}

struct fs_view *fs_view_share(struct fs_view *src, const char *exe_path) {
    struct fs_view *v = copy_config(src, exe_path);
    if (v) {
        v->layer = src->layer;
        v->layer_shared = true;
    }
    return v;
}

struct fs_view *fs_view_share_as(struct fs_view *owner, const struct fs_view *like) {
    struct fs_view *v = copy_config(like, like->exe_path);
    if (v) {
        v->layer = owner->layer;
        v->layer_shared = true;
    }
    return v;
}

int fs_view_set_exe(struct fs_view *v, const char *exe_path) {
    char *p = strdup(exe_path);
    if (!p)
        return -ENOMEM;
    free(v->exe_path);
    v->exe_path = p;
    return 0;
}
