/* Internals of the filesystem view shared by view.c, the file kinds and the
 * files system-call family. See fs_view.h for what the guest sees. */
#ifndef VIEW_IMPL_H
#define VIEW_IMPL_H

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/fs_view.h"

#define VIEW_AGENT_DIR "/opt/forkd"
#define VIEW_MAX_LINKS 40

/* Whether the sandbox user may use a writable layer's node of mode for
 * want (R_OK | W_OK | X_OK): its owner's bits, the layer's files being
 * the user's; 0 or -EACCES, as Linux answers a user who is not root. The
 * one rule for the layer's modes: resolution (search) and the files
 * system calls (read, write, new and removed entries, chdir, access). */
static inline int view_layer_may(uint32_t mode, int want) {
    return ((mode >> 6) & (uint32_t)want) == (uint32_t)want ? 0 : -EACCES;
}

struct fs_view {
    char **roots; /* host paths visible read-only, as given and canonical */
    size_t n_roots;
    char *agent_dir; /* host directory shown at VIEW_AGENT_DIR */
    char *exe_path;
    uint64_t layer_limit;
    struct memfs *layer;
    bool layer_shared; /* another process's view owns layer (it outlives this view) */
    char cwd[PATH_MAX];
    unsigned umask;
};

enum view_kind {
    VK_NONE,     /* does not exist; parent (if any) says where it would be created */
    VK_LAYER,    /* a memfs node */
    VK_HOST,     /* a host file or directory under a read-only root */
    VK_VDIR,     /* a synthesized directory (ancestor of visible paths) */
    VK_DEV,      /* /dev/null, /dev/zero, /dev/full, /dev/random, /dev/urandom */
    VK_PROCLINK, /* /proc/self/exe, cwd or fd/N: a magic symlink */
};

struct view_node {
    enum view_kind kind;
    char path[PATH_MAX];       /* resolved guest path (no symlinks, no . or ..) */
    char host[PATH_MAX];       /* VK_HOST: the host path to open */
    struct memfs_node *node;   /* VK_LAYER: a reference (view_node_release) */
    struct memfs_node *parent; /* VK_NONE/VK_LAYER in the layer: parent dir reference */
    char leaf[NAME_MAX + 1];   /* last component */
    bool parent_in_layer;      /* VK_NONE: the parent directory is a layer directory */
    bool parent_visible;       /* VK_NONE: the parent exists (host or vdir): creating gives EROFS */
    bool is_link;              /* the last component is a symlink (not followed) */
    bool trailing_slash;       /* the last component was followed by '/' */
    uint8_t dots;              /* the path ended in "." (1) or ".." (2): it names no entry */
    bool has_st;               /* VK_HOST: st is its stat(2), taken as it was resolved */
    struct stat st;
};

/* Resolves path (absolute, or relative to base, a resolved guest directory
 * path) through the view. follow: follow a symlink in the last component.
 * Returns 0 (out->kind may be VK_NONE), or -errno for errors on the way
 * (ENOENT for a missing directory component, ENOTDIR, ELOOP, ENAMETOOLONG). */
int view_resolve(struct fs_view *v, const char *base, const char *path, bool follow,
                 struct view_node *out);
void view_node_release(struct fs_view *v, struct view_node *n);
/* Opens a VK_HOST node read-only, st being its stat(2): a regular file or a
 * directory, never a FIFO or device, and still of st's type when opened.
 * The fd, or -errno. */
int view_open_host(const struct view_node *n, const struct stat *st);
int view_stat(struct fs_view *v, struct view_node *n, struct stat *st);
/* What /dev/fd, /dev/stdin, /dev/stdout or /dev/stderr link to, or NULL. */
const char *view_dev_link_target(const char *path);
/* Adds a read-only root (kept as given and canonical); -errno. */
int view_add_root(struct fs_view *v, const char *root);
/* The files /proc and /proc/self list besides their directories and links:
 * the system-call layer makes them when opened (sys/sys_procfs.c, which
 * serves exactly these names). */
static const char *const view_proc_files[] = {"cpuinfo", "filesystems", "loadavg",
                                              "meminfo", "mounts",      "stat",
                                              "uptime",  "version",     "vmstat"};
/* The files of /proc/net (a synthesized directory). */
static const char *const view_proc_net_files[] = {"dev", "tcp", "tcp6", "udp", "udp6", "unix"};
static const char *const view_proc_self_files[] = {
    "cmdline", "comm",  "environ", "io",    "maps",         "mountinfo",
    "mounts",  "smaps", "stat",    "statm", "smaps_rollup", "status"};
/* The devices of /dev (VK_DEV). */
static const char *const view_devices[] = {"null",    "zero", "full", "random",
                                           "urandom", "tty",  "ptmx"};
/* The links of /dev that name descriptors, as udev makes them. */
static const char *const view_dev_links[][2] = {
    {"fd", "/proc/self/fd"},
    {"stdin", "/proc/self/fd/0"},
    {"stdout", "/proc/self/fd/1"},
    {"stderr", "/proc/self/fd/2"},
};
/* Each live thread's /proc/self/task/<tid>/. */
static const char *const view_proc_task_files[] = {"comm", "stat", "status"};
/* Whether a guest path is inside the writable layer (/tmp, /sandbox). */
bool view_in_layer(const char *path);
/* Directories of /proc that exist while their process or thread does
 * (the files layer says which): /proc/<pid> of another process of the
 * sandbox (its own is /proc/self), .../task, .../task/<tid>. */
enum view_proc_dir { VP_NONE, VP_PROCESS, VP_TASKS, VP_TASK };
enum view_proc_dir view_proc_dir(const char *path);
/* /sys/devices/system/cpu as Linux shows it, for the guest's cores
 * (fj_guest_cpus): the files the system-call layer makes when opened
 * (sys/sys_sysfs.c, which serves exactly these names), in the directories
 * view_sys_dir names. The rest of /sys does not exist. */
#define VIEW_SYS_CPU "/sys/devices/system/cpu"
static const char *const view_sys_cpu_files[] = {"kernel_max", "offline", "online", "possible",
                                                 "present"};
static const char *const view_sys_core_files[] = {"online"};
static const char *const view_sys_topology_files[] = {"cluster_cpus",
                                                      "cluster_cpus_list",
                                                      "cluster_id",
                                                      "core_cpus",
                                                      "core_cpus_list",
                                                      "core_id",
                                                      "core_siblings",
                                                      "core_siblings_list",
                                                      "die_cpus",
                                                      "die_cpus_list",
                                                      "die_id",
                                                      "package_cpus",
                                                      "package_cpus_list",
                                                      "physical_package_id",
                                                      "thread_siblings",
                                                      "thread_siblings_list"};
/* The synthesized directory of /sys a path is: VS_UP for /sys and its
 * descendants down to VIEW_SYS_CPU's parent, VS_CPUS for VIEW_SYS_CPU,
 * VS_CORE for .../cpuN of a core the guest has (*core: N), VS_TOPOLOGY for
 * its topology/. */
enum view_sys_dir { VS_NONE, VS_UP, VS_CPUS, VS_CORE, VS_TOPOLOGY };
enum view_sys_dir view_sys_dir(const char *path, unsigned *core);
/* Names a synthesized directory lists, via emit(name, d_type); 0 or -errno
 * (view_vdir.c). */
int view_vdir_list(struct fs_view *v, const char *path,
                   int (*emit)(void *, const char *, unsigned char), void *ctx);

#endif
