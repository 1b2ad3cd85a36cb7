/* The filesystem view: path resolution (view_impl.h, fs_view.h).
 *
 * Invariant: resolution walks one component at a time and follows every
 * symlink (host or layer) through the view itself, so the resolved guest
 * path contains no symlink; a host path is used only when that resolved path
 * lies under a read-only root, so nothing outside the roots is ever opened.
 * The one shortcut (resolve_host_rest) keeps both: it resolves the rest of a
 * path below a host directory at once only when the host refuses any
 * symlink on the way (RESOLVE_NO_SYMLINKS) and every step is a path the
 * view maps to the same host path. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fs/fs_memfs.h"
#include "fs/view_impl.h"

static bool is_under(const char *path, const char *root) {
    size_t n = strlen(root);
    if (n == 1 && root[0] == '/')
        return true;
    return strncmp(path, root, n) == 0 && (path[n] == 0 || path[n] == '/');
}

bool view_in_layer(const char *path) {
    return is_under(path, "/tmp") || is_under(path, "/sandbox") || is_under(path, "/dev/shm");
}

int view_add_root(struct fs_view *v, const char *path) {
    for (size_t i = 0; i < v->n_roots; i++)
        if (!strcmp(v->roots[i], path))
            return 0;
    char **g = realloc(v->roots, (v->n_roots + 1) * sizeof(char *));
    if (!g)
        return -ENOMEM;
    v->roots = g;
    if (!(v->roots[v->n_roots] = strdup(path)))
        return -ENOMEM;
    v->n_roots++;
    return 0;
}

struct fs_view *fs_view_new(const struct fs_view_config *cfg) {
    struct fs_view *v = calloc(1, sizeof(*v));
    if (!v)
        return NULL;
    for (size_t i = 0; i < cfg->n_ro_roots; i++) {
        const char *r = cfg->ro_roots[i];
        if (!r || r[0] != '/' || view_in_layer(r) || !strcmp(r, "/"))
            continue; /* never the whole host, never over the layer */
        char canon[PATH_MAX];
        if (view_add_root(v, r) < 0 ||
            (realpath(r, canon) && strcmp(canon, "/") && view_add_root(v, canon) < 0))
            goto fail;
    }
    if (cfg->agent_host_dir && !(v->agent_dir = realpath(cfg->agent_host_dir, NULL)))
        goto fail;
    v->exe_path = strdup(cfg->exe_path ? cfg->exe_path : "");
    v->layer_limit = cfg->layer_bytes_limit;
    v->layer = memfs_new(cfg->layer_bytes_limit);
    if (!v->exe_path || !v->layer)
        goto fail;
    struct memfs_node *root = memfs_root(v->layer);
    int err = memfs_mknode(v->layer, root, "tmp", S_IFDIR | 01777, NULL, NULL);
    if (err == 0)
        err = memfs_mknode(v->layer, root, "sandbox", S_IFDIR | 0755, NULL, NULL);
    /* /dev/shm: where POSIX shared memory and semaphores live. */
    struct memfs_node *dev = NULL;
    if (err == 0)
        err = memfs_mknode(v->layer, root, "dev", S_IFDIR | 0755, NULL, &dev);
    if (err == 0)
        err = memfs_mknode(v->layer, dev, "shm", S_IFDIR | 01777, NULL, NULL);
    if (dev)
        memfs_node_put(v->layer, dev);
    memfs_node_put(v->layer, root);
    if (err < 0)
        goto fail;
    snprintf(v->cwd, sizeof(v->cwd), "%s",
             cfg->cwd && view_in_layer(cfg->cwd) ? cfg->cwd : "/sandbox");
    v->umask = 022;
    return v;
fail:
    fs_view_free(v);
    return NULL;
}

struct fs_view *fs_view_restore(char *const *roots, size_t n_roots, const char *agent_dir,
                                const char *exe_path, uint64_t layer_limit, struct memfs *layer,
                                const char *cwd, unsigned umask) {
    struct fs_view *v = calloc(1, sizeof(*v));
    if (!v) {
        memfs_free(layer);
        return NULL;
    }
    v->layer = layer;
    for (size_t i = 0; i < n_roots; i++)
        if (roots[i][0] != '/' || !strcmp(roots[i], "/") || view_in_layer(roots[i]) ||
            view_add_root(v, roots[i]) < 0)
            goto fail;
    if (agent_dir[0] && !(v->agent_dir = strdup(agent_dir)))
        goto fail;
    if (!(v->exe_path = strdup(exe_path)))
        goto fail;
    v->layer_limit = layer_limit;
    snprintf(v->cwd, sizeof(v->cwd), "%s", view_in_layer(cwd) ? cwd : "/sandbox");
    v->umask = umask & 0777;
    return v;
fail:
    fs_view_free(v);
    return NULL;
}

void fs_view_saved_parts(const struct fs_view *v, char *const **roots, size_t *n_roots,
                         const char **agent_dir, const char **exe_path, uint64_t *layer_limit,
                         unsigned *umask) {
    *roots = v->roots;
    *n_roots = v->n_roots;
    *agent_dir = v->agent_dir ? v->agent_dir : "";
    *exe_path = v->exe_path;
    *layer_limit = v->layer_limit;
    *umask = v->umask;
}

void fs_view_free(struct fs_view *v) {
    if (!v)
        return;
    for (size_t i = 0; i < v->n_roots; i++)
        free(v->roots[i]);
    free(v->roots);
    free(v->agent_dir);
    free(v->exe_path);
    if (v->layer && !v->layer_shared)
        memfs_free(v->layer);
    free(v);
}

struct memfs *fs_view_layer(struct fs_view *v) { return v->layer; }
const char *fs_view_cwd(const struct fs_view *v) { return v->cwd; }

/* ------------------------------------------------------------ classify */

enum cls { C_NONE, C_LAYER, C_HOST, C_VDIR, C_DEV, C_PROCLINK };

static bool ancestor_of(const char *path, const char *root) {
    return strcmp(path, root) && is_under(root, path[0] ? path : "/");
}

const char *view_dev_link_target(const char *path) {
    if (strncmp(path, "/dev/", 5))
        return NULL;
    for (size_t i = 0; i < FJ_ARRAY_SIZE(view_dev_links); i++)
        if (!strcmp(path + 5, view_dev_links[i][0]))
            return view_dev_links[i][1];
    return NULL;
}

/* "/proc/self/fd/N" with N a descriptor number as Linux spells it. */
static bool fd_link_name(const char *path) {
    if (strncmp(path, "/proc/self/fd/", 14))
        return false;
    const char *n = path + 14;
    size_t len = strspn(n, "0123456789");
    return len > 0 && len < 10 && !n[len] && (n[0] != '0' || len == 1);
}

/* A positive number spelled as Linux spells ids, at p: its length, else 0. */
static size_t id_len(const char *p) {
    size_t n = strspn(p, "0123456789");
    return n && n < 10 && p[0] != '0' ? n : 0;
}

enum view_proc_dir view_proc_dir(const char *path) {
    if (strncmp(path, "/proc/", 6))
        return VP_NONE;
    const char *p = path + 6;
    size_t n = !strncmp(p, "self", 4) ? 4 : id_len(p);
    if (!n)
        return VP_NONE;
    p += n;
    if (!*p)
        return n == 4 && path[6] == 's' ? VP_NONE : VP_PROCESS; /* /proc/self is a VDIR of its own */
    if (strncmp(p, "/task", 5))
        return VP_NONE;
    p += 5;
    if (!*p)
        return VP_TASKS;
    return p[0] == '/' && (n = id_len(p + 1)) && !p[1 + n] ? VP_TASK : VP_NONE;
}

enum view_sys_dir view_sys_dir(const char *path, unsigned *core) {
    if (!strcmp(path, "/sys") || !strcmp(path, "/sys/devices") ||
        !strcmp(path, "/sys/devices/system"))
        return VS_UP;
    size_t n = strlen(VIEW_SYS_CPU);
    if (strncmp(path, VIEW_SYS_CPU, n))
        return VS_NONE;
    const char *p = path + n;
    if (!*p)
        return VS_CPUS;
    if (strncmp(p, "/cpu", 4))
        return VS_NONE;
    p += 4;
    size_t digits = strspn(p, "0123456789");
    if (!digits || digits > 2 || (p[0] == '0' && digits > 1))
        return VS_NONE;
    *core = (unsigned)strtoul(p, NULL, 10);
    if (*core >= fj_guest_cpus())
        return VS_NONE;
    p += digits;
    return !*p ? VS_CORE : !strcmp(p, "/topology") ? VS_TOPOLOGY : VS_NONE;
}

/* /etc as programs expect it, synthesized: files of the agent's etc/ (the
 * sandbox user and group, localhost), never the host's. */
static const char *const etc_files[] = {"passwd",   "group",  "hosts",    "nsswitch.conf",
                                        "hostname", "shells", "services", "protocols"};

static enum cls classify(struct fs_view *v, const char *path, char *host, size_t hostlen) {
    if (!path[0])
        return C_VDIR; /* "/" */
    if (view_in_layer(path))
        return C_LAYER;
    if (!strcmp(path, "/dev") || !strcmp(path, "/proc") || !strcmp(path, "/proc/self") ||
        !strcmp(path, "/proc/net") || !strcmp(path, "/proc/self/fd") || !strcmp(path, "/dev/pts") ||
        view_proc_dir(path))
        return C_VDIR; /* which tasks exist, the files layer says */
    if (!strncmp(path, "/dev/pts/",
                 9)) /* a pseudo-terminal's end: whether it exists, the files say */
        return path[9] && strspn(path + 9, "0123456789") == strlen(path + 9) ? C_DEV : C_NONE;
    if (view_dev_link_target(path))
        return C_PROCLINK;
    if (!strncmp(path, "/dev/", 5)) {
        for (size_t i = 0; i < FJ_ARRAY_SIZE(view_devices); i++)
            if (!strcmp(path + 5, view_devices[i]))
                return C_DEV;
        return C_NONE;
    }
    if (!strcmp(path, "/proc/self/exe") || !strcmp(path, "/proc/self/cwd") || fd_link_name(path))
        return C_PROCLINK;
    unsigned core;
    if (view_sys_dir(path, &core))
        return C_VDIR;
    if (is_under(path, "/proc") || is_under(path, "/sys"))
        return C_NONE; /* a file made when opened (the files layer says which), or nothing */
    if (v->agent_dir && !strncmp(path, "/etc/", 5))
        for (size_t i = 0; i < FJ_ARRAY_SIZE(etc_files); i++)
            if (!strcmp(path + 5, etc_files[i])) {
                snprintf(host, hostlen, "%s/etc/%s", v->agent_dir, etc_files[i]);
                return C_HOST;
            }
    if (v->agent_dir && is_under(path, VIEW_AGENT_DIR)) {
        if ((size_t)snprintf(host, hostlen, "%s%s", v->agent_dir, path + strlen(VIEW_AGENT_DIR)) >=
            hostlen)
            return C_NONE;
        return C_HOST;
    }
    for (size_t i = 0; i < v->n_roots; i++)
        if (is_under(path, v->roots[i])) {
            snprintf(host, hostlen, "%s", path);
            return C_HOST;
        }
    if (v->agent_dir && (ancestor_of(path, VIEW_AGENT_DIR) || !strcmp(path, "/etc")))
        return C_VDIR;
    for (size_t i = 0; i < v->n_roots; i++)
        if (ancestor_of(path, v->roots[i]))
            return C_VDIR;
    return C_NONE;
}

/* ------------------------------------------------------------- resolve */

static int layer_lookup(struct fs_view *v, const char *path, struct memfs_node **out) {
    struct memfs_node *n = memfs_root(v->layer);
    char buf[PATH_MAX];
    snprintf(buf, sizeof(buf), "%s", path);
    char *save = NULL;
    for (char *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        struct memfs_node *next;
        int err = memfs_lookup(v->layer, n, c, &next);
        memfs_node_put(v->layer, n);
        if (err < 0)
            return err;
        n = next;
    }
    *out = n;
    return 0;
}

static void parent_of(char *path) {
    char *slash = strrchr(path, '/');
    if (slash)
        *slash = 0;
}

/* Replaces the walk's remaining input with target + "/" + rest. */
static int path_splice(char *pending, size_t cap, const char *target, const char *rest) {
    char tmp[PATH_MAX * 2];
    int n =
        snprintf(tmp, sizeof(tmp), "%s%s%s", target, rest && *rest ? "/" : "", rest ? rest : "");
    if (n < 0 || (size_t)n >= cap || n >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    memcpy(pending, tmp, (size_t)n + 1);
    return 0;
}

void view_node_release(struct fs_view *v, struct view_node *n) {
    if (n->node)
        memfs_node_put(v->layer, n->node);
    if (n->parent)
        memfs_node_put(v->layer, n->parent);
    n->node = n->parent = NULL;
}

/* The rest of a path below a host directory in one step. The walk below
 * lstats every component by its full host path (a deep site-packages path:
 * ~12 us a stat here, ~2 on the host); when no component of rest is ".",
 * "..", a symlink or a name the view places elsewhere, the host's own
 * resolution of the whole path finds the same file, and openat2's
 * RESOLVE_NO_SYMLINKS guarantees the first condition it cannot check
 * beforehand. dir is a host directory the walk reached (host path == guest
 * path, no symlink in it). Any failure (a symlink, a missing name, a file
 * where a directory should be, no openat2) leaves the path to the walk,
 * which gives the exact answer. Resolved: out as the walk fills it, and
 * *err its result (0, or -ENOENT for a missing directory on the way). */
static bool resolve_host_rest(struct fs_view *v, const char *dir, const char *rest,
                              struct view_node *out, int *err) {
    char full[PATH_MAX], host[PATH_MAX];
    size_t n = strlen(dir), leaf = 0;
    *err = 0;
    if (n >= sizeof(full))
        return false;
    memcpy(full, dir, n + 1);
    for (const char *p = rest; *p;) {
        while (*p == '/')
            p++;
        size_t len = strcspn(p, "/");
        if (len == 0 || len > NAME_MAX || (len == 1 && p[0] == '.') ||
            (len == 2 && p[0] == '.' && p[1] == '.') || n + 1 + len >= sizeof(full))
            return false; /* a trailing slash, a dot component, too long */
        full[n++] = '/';
        leaf = n;
        memcpy(full + n, p, len);
        n += len;
        full[n] = 0;
        /* Each step must be the host's same path, as the walk would find. */
        if (classify(v, full, host, sizeof(host)) != C_HOST || strcmp(host, full) != 0)
            return false;
        p += len;
    }
    if (!leaf)
        return false;
    struct open_how how = {.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
                           .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
    int fd = (int)syscall(SYS_openat2, AT_FDCWD, full, &how, sizeof(how));
    if (fd < 0 && errno == ENOENT) {
        /* A name is missing, every one before it being a directory (a
         * symlink would have been ELOOP): the last one, when its directory
         * opens, as the walk answers (a new entry there is EROFS); an
         * earlier one otherwise (ENOENT). */
        full[leaf - 1] = 0;
        how.flags |= O_DIRECTORY;
        int dir_fd = (int)syscall(SYS_openat2, AT_FDCWD, full, &how, sizeof(how));
        int dir_errno = errno;
        full[leaf - 1] = '/';
        if (dir_fd >= 0) {
            close(dir_fd);
            out->kind = VK_NONE;
            out->parent_visible = true;
        } else if (dir_errno == ENOENT) {
            *err = -ENOENT;
        } else {
            return false;
        }
    } else if (fd < 0) {
        return false;
    } else {
        int r = fstat(fd, &out->st);
        close(fd);
        /* O_PATH | O_NOFOLLOW opens a last component that is a symlink
         * itself: the walk follows it, or not, through the view. */
        if (r < 0 || S_ISLNK(out->st.st_mode))
            return false;
        out->kind = VK_HOST;
        out->has_st = true;
        memcpy(out->host, full, n + 1);
    }
    memcpy(out->path, full, n + 1);
    snprintf(out->leaf, sizeof(out->leaf), "%s", full + leaf);
    return true;
}

int view_resolve(struct fs_view *v, const char *base, const char *path, bool follow,
                 struct view_node *out) {
    memset(out, 0, sizeof(*out));
    if (!path[0])
        return -ENOENT;
    char pending[PATH_MAX * 2], cur[PATH_MAX] = "";
    int n = path[0] == '/' ? snprintf(pending, sizeof(pending), "%s", path)
                           : snprintf(pending, sizeof(pending), "%s/%s", base, path);
    if (n < 0 || n >= PATH_MAX)
        return -ENAMETOOLONG;
    int links = 0;
    uint8_t dots = 0;
    char *p = pending;
    for (;;) {
        while (*p == '/')
            p++;
        if (!*p)
            break; /* trailing slashes: the directory itself */
        char comp[NAME_MAX + 1];
        size_t len = strcspn(p, "/");
        if (len > NAME_MAX)
            return -ENAMETOOLONG;
        memcpy(comp, p, len);
        comp[len] = 0;
        p += len;
        const char *rest = p;
        while (*rest == '/')
            rest++;
        bool last = !*rest;
        bool trailing_slash = last && *p == '/';
        if (!strcmp(comp, ".")) {
            dots = 1;
            continue;
        }
        if (!strcmp(comp, "..")) {
            dots = 2;
            parent_of(cur);
            continue;
        }
        dots = 0;
        if (last)
            out->trailing_slash = trailing_slash;
        char cand[PATH_MAX];
        if ((size_t)snprintf(cand, sizeof(cand), "%s/%s", cur, comp) >= sizeof(cand))
            return -ENAMETOOLONG;
        char host[PATH_MAX];
        enum cls c = classify(v, cand, host, sizeof(host));
        char target[PATH_MAX];
        bool is_link = false, is_dir = false, searchable = true;
        struct memfs_node *node = NULL;
        switch (c) {
        case C_LAYER: {
            int err = layer_lookup(v, cand, &node);
            if (err == -ENOENT && last) {
                out->kind = VK_NONE;
                out->parent_in_layer = true;
                snprintf(out->path, sizeof(out->path), "%s", cand);
                snprintf(out->leaf, sizeof(out->leaf), "%s", comp);
                return layer_lookup(v, cur, &out->parent);
            }
            if (err < 0)
                return err;
            uint32_t mode = memfs_node_mode(node);
            is_dir = S_ISDIR(mode);
            /* A name is looked up in a directory only with search
             * permission, as on Linux. */
            searchable = view_layer_may(mode, X_OK) == 0;
            if (S_ISLNK(mode)) {
                is_link = true;
                int r = memfs_readlink(v->layer, node, target, sizeof(target) - 1);
                if (r < 0) {
                    memfs_node_put(v->layer, node);
                    return r;
                }
                target[r] = 0;
            }
            break;
        }
        case C_HOST: {
            int err;
            if (!last && !strcmp(host, cand) && resolve_host_rest(v, cand, rest, out, &err))
                return err;
            struct stat st;
            if (lstat(host, &st) < 0) {
                if (errno == ENOENT && last) {
                    out->kind = VK_NONE;
                    out->parent_visible = true;
                    snprintf(out->path, sizeof(out->path), "%s", cand);
                    snprintf(out->leaf, sizeof(out->leaf), "%s", comp);
                    return 0;
                }
                return errno == ENOENT || errno == EACCES ? -ENOENT : -errno;
            }
            is_dir = S_ISDIR(st.st_mode);
            if (S_ISLNK(st.st_mode)) {
                is_link = true;
                ssize_t r = readlink(host, target, sizeof(target) - 1);
                if (r < 0)
                    return -ENOENT;
                target[r] = 0;
            }
            break;
        }
        case C_VDIR:
            is_dir = true;
            break;
        case C_DEV:
            break;
        case C_PROCLINK:
            if (!strcmp(cand, "/proc/self/exe") || !strcmp(cand, "/proc/self/cwd")) {
                is_link = true;
                snprintf(target, sizeof(target), "%s", cand[11] == 'e' ? v->exe_path : v->cwd);
            } else if (view_dev_link_target(cand)) {
                is_link = true;
                snprintf(target, sizeof(target), "%s", view_dev_link_target(cand));
            }
            break;
        case C_NONE:
            if (last) {
                /* cur is a directory of the view: creating here is EROFS. */
                out->kind = VK_NONE;
                out->parent_visible = true;
                snprintf(out->path, sizeof(out->path), "%s", cand);
                snprintf(out->leaf, sizeof(out->leaf), "%s", comp);
                return 0;
            }
            return -ENOENT;
        }
        if (is_link && (!last || follow || trailing_slash)) {
            if (node)
                memfs_node_put(v->layer, node);
            if (++links > VIEW_MAX_LINKS)
                return -ELOOP;
            if (target[0] == '/')
                cur[0] = 0;
            /* A trailing slash still applies to what the link names. */
            int err = path_splice(pending, sizeof(pending), target, trailing_slash ? "/" : rest);
            if (err < 0)
                return err;
            p = pending;
            continue;
        }
        if (!last) {
            if (node)
                memfs_node_put(v->layer, node);
            if (!is_dir)
                return -ENOTDIR;
            if (!searchable)
                return -EACCES;
            memcpy(cur, cand, sizeof(cur));
            continue;
        }
        /* The last component. */
        snprintf(out->path, sizeof(out->path), "%s", cand);
        snprintf(out->leaf, sizeof(out->leaf), "%s", comp);
        out->is_link = is_link;
        if (trailing_slash && !is_dir && !is_link) {
            if (node)
                memfs_node_put(v->layer, node);
            return -ENOTDIR;
        }
        switch (c) {
        case C_LAYER:
            out->kind = VK_LAYER;
            out->node = node;
            return layer_lookup(v, cur, &out->parent);
        case C_HOST:
            out->kind = VK_HOST;
            snprintf(out->host, sizeof(out->host), "%s", host);
            return 0;
        case C_VDIR:
            out->kind = VK_VDIR;
            return 0;
        case C_DEV:
            out->kind = VK_DEV;
            return 0;
        default:
            out->kind = VK_PROCLINK;
            return 0;
        }
    }
    /* The path named a directory reached through "/" , "." or "..". */
    out->dots = dots;
    snprintf(out->path, sizeof(out->path), "%s", cur[0] ? cur : "/");
    char host[PATH_MAX];
    enum cls c = classify(v, cur, host, sizeof(host));
    const char *slash = strrchr(out->path, '/');
    snprintf(out->leaf, sizeof(out->leaf), "%s", slash ? slash + 1 : "");
    if (c == C_LAYER) {
        out->kind = VK_LAYER;
        int err = layer_lookup(v, cur, &out->node);
        if (err < 0)
            return err;
        char par[PATH_MAX];
        memcpy(par, cur, sizeof(par));
        parent_of(par);
        if (view_in_layer(par))
            return layer_lookup(v, par, &out->parent);
        return 0;
    }
    if (c == C_HOST) {
        out->kind = VK_HOST;
        snprintf(out->host, sizeof(out->host), "%s", host);
        return 0;
    }
    out->kind = VK_VDIR;
    return 0;
}
