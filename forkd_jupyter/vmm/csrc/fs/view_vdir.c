/* What a synthesized directory of the view lists (VK_VDIR): /dev, /proc
 * and its process's files, /sys/devices/system/cpu, and the ancestors of the visible paths. Lists
 * that change with the sandbox (open descriptors, pseudo-terminals, live
 * threads, the process's own /proc/<pid>) are the files layer's. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/view_impl.h"

/* Emits each of n names as type; 1 when the buffer filled up. */
static int emit_names(int (*emit)(void *, const char *, unsigned char), void *ctx,
                      const char *const *names, size_t n, unsigned char type) {
    for (size_t i = 0; i < n; i++)
        if (emit(ctx, names[i], type))
            return 1;
    return 0;
}

/* Lists the names a synthesized directory shows. */
int view_vdir_list(struct fs_view *v, const char *path,
                   int (*emit)(void *, const char *, unsigned char), void *ctx) {
    const char *dir = strcmp(path, "/") ? path : "";
    if (!strcmp(path, "/dev")) {
        for (size_t i = 0; i < FJ_ARRAY_SIZE(view_devices); i++)
            if (emit(ctx, view_devices[i], 2 /* DT_CHR */))
                return 0;
        if (emit(ctx, "shm", 4 /* DT_DIR */) || emit(ctx, "pts", 4 /* DT_DIR */))
            return 0;
        for (size_t i = 0; i < FJ_ARRAY_SIZE(view_dev_links); i++)
            if (emit(ctx, view_dev_links[i][0], 10 /* DT_LNK */))
                return 0;
        return 0;
    }
    if (!strcmp(path, "/proc")) {
        if (!emit(ctx, "self", 4) && !emit(ctx, "net", 4))
            emit_names(emit, ctx, view_proc_files, FJ_ARRAY_SIZE(view_proc_files), 8 /* DT_REG */);
        return 0;
    }
    if (!strcmp(path, "/proc/net")) {
        emit_names(emit, ctx, view_proc_net_files, FJ_ARRAY_SIZE(view_proc_net_files), 8);
        return 0;
    }
    if (!strcmp(path, "/proc/self")) {
        if (!emit(ctx, "exe", 10) && !emit(ctx, "cwd", 10) && !emit(ctx, "fd", 4) &&
            !emit(ctx, "task", 4))
            emit_names(emit, ctx, view_proc_self_files, FJ_ARRAY_SIZE(view_proc_self_files), 8);
        return 0;
    }
    if (view_proc_dir(path) == VP_PROCESS) { /* another process's: no exe, fd of its own here */
        if (!emit(ctx, "task", 4))
            emit_names(emit, ctx, view_proc_self_files, FJ_ARRAY_SIZE(view_proc_self_files), 8);
        return 0;
    }
    if (view_proc_dir(path) == VP_TASK) {
        emit_names(emit, ctx, view_proc_task_files, FJ_ARRAY_SIZE(view_proc_task_files), 8);
        return 0;
    }
    unsigned core;
    switch (view_sys_dir(path, &core)) {
    case VS_CPUS:
        for (unsigned i = 0; i < fj_guest_cpus(); i++) {
            char name[16];
            snprintf(name, sizeof(name), "cpu%u", i);
            if (emit(ctx, name, 4))
                return 0;
        }
        emit_names(emit, ctx, view_sys_cpu_files, FJ_ARRAY_SIZE(view_sys_cpu_files), 8);
        return 0;
    case VS_CORE:
        if (!emit(ctx, "topology", 4))
            emit_names(emit, ctx, view_sys_core_files, FJ_ARRAY_SIZE(view_sys_core_files), 8);
        return 0;
    case VS_TOPOLOGY:
        emit_names(emit, ctx, view_sys_topology_files, FJ_ARRAY_SIZE(view_sys_topology_files), 8);
        return 0;
    default:
        break; /* VS_UP: the next component of VIEW_SYS_CPU, below */
    }
    if (!strcmp(path, "/proc/self/fd") || !strcmp(path, "/dev/pts") || view_proc_dir(path))
        return 0; /* listed by the files layer: the open descriptors, the pseudo-terminals, the
                     live threads */
    /* Next components of every visible path below dir, each once. */
    const char *extra[] = {"/tmp",          "/sandbox",           "/dev",          "/proc",
                           VIEW_SYS_CPU,    VIEW_AGENT_DIR,       "/etc/passwd",   "/etc/group",
                           "/etc/hosts",    "/etc/nsswitch.conf", "/etc/hostname", "/etc/shells",
                           "/etc/services", "/etc/protocols"};
    size_t total = v->n_roots + FJ_ARRAY_SIZE(extra);
    char **seen = calloc(total, sizeof(char *));
    if (!seen)
        return -ENOMEM;
    size_t n_seen = 0;
    size_t dlen = strlen(dir);
    for (size_t i = 0; i < total; i++) {
        const char *r = i < v->n_roots ? v->roots[i] : extra[i - v->n_roots];
        if (i >= v->n_roots && (!strcmp(r, VIEW_AGENT_DIR) || !strncmp(r, "/etc/", 5)) &&
            !v->agent_dir)
            continue;
        if (strncmp(r, dir, dlen) || r[dlen] != '/')
            continue;
        const char *name = r + dlen + 1;
        size_t len = strcspn(name, "/");
        char buf[NAME_MAX + 1];
        if (!len || len > NAME_MAX)
            continue;
        memcpy(buf, name, len);
        buf[len] = 0;
        bool dup = false;
        for (size_t k = 0; k < n_seen; k++)
            dup |= !strcmp(seen[k], buf);
        if (dup)
            continue;
        seen[n_seen++] = strdup(buf);
        bool etc_file = i >= v->n_roots && !strncmp(r, "/etc/", 5);
        if (emit(ctx, buf, etc_file ? 8 /* DT_REG */ : 4 /* DT_DIR */))
            break;
    }
    for (size_t k = 0; k < n_seen; k++)
        free(seen[k]);
    free(seen);
    return 0;
}
