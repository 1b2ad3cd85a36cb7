/* Files of /sys made when opened: /sys/devices/system/cpu for the guest's
 * cores (fj_guest_cpus), as lscpu, psutil, os.cpu_count (glibc reads
 * "online") and PyTorch's cpuinfo read them. possible, present and online
 * list every core, offline none; kernel_max is the last core. A core's
 * topology/ files are the host's for that core when the host has them (the
 * guest's threads run on the host's cores), else those of a machine of
 * one package whose every core has one thread. Names are view_impl.h's. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "core/sandbox.h"
#include "fs/view_impl.h"
#include "sys/sys_file.h"
#include "sys/sys_text.h"

/* "0-3", or "2" for one core. */
static void add_list(struct text *t, unsigned first, unsigned last) {
    if (first == last)
        text_add(t, "%u\n", first);
    else
        text_add(t, "%u-%u\n", first, last);
}

/* A mask of cores [first, last] over the guest's cores, as Linux prints
 * cpumasks: 32-bit groups in hex, highest first, comma-separated, the
 * highest group as wide as its cores need. */
static void add_mask(struct text *t, unsigned first, unsigned last) {
    unsigned cores = fj_guest_cpus(), groups = (cores + 31) / 32;
    for (unsigned g = groups; g-- > 0;) {
        uint32_t bits = 0;
        for (unsigned c = g * 32; c < g * 32 + 32; c++)
            if (c >= first && c <= last)
                bits |= 1U << (c % 32);
        unsigned width = g == groups - 1 ? ((cores - g * 32) + 3) / 4 : 8;
        text_add(t, "%0*x%s", (int)width, bits, g ? "," : "\n");
    }
}

/* The topology file name of core, synthesized: one package, one die, and
 * each core a cluster and a core of its own with one thread. */
static void render_topology(unsigned core, const char *name, struct text *t) {
    unsigned last = fj_guest_cpus() - 1;
    bool whole = !strncmp(name, "core_siblings", 13) || !strncmp(name, "package_cpus", 12) ||
                 !strncmp(name, "die_cpus", 8);
    unsigned first_cpu = whole ? 0 : core, last_cpu = whole ? last : core;
    size_t n = strlen(name);
    if (n > 5 && !strcmp(name + n - 5, "_list"))
        add_list(t, first_cpu, last_cpu);
    else if (n > 3 && !strcmp(name + n - 3, "_id"))
        text_add(t, "%u\n", !strcmp(name, "core_id") || !strcmp(name, "cluster_id") ? core : 0);
    else
        add_mask(t, first_cpu, last_cpu);
}

/* Copies the host's file at path into t; false when it cannot be read. */
static bool add_host_file(const char *path, struct text *t) {
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    char buf[4096];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    if (!n)
        return false;
    buf[n] = 0;
    text_add(t, "%s", buf);
    return true;
}

/* The index of name among n names, or -1. */
static int name_index(const char *name, const char *const *names, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(name, names[i]))
            return (int)i;
    return -1;
}

/* Renders the file at path into t (when t is not NULL); false when /sys
 * has no such file. *ino: a number of its own. */
static bool render(const char *path, struct text *t, uint64_t *ino) {
    const char *slash = strrchr(path, '/');
    char dir[PATH_MAX];
    if (!slash || (size_t)(slash - path) >= sizeof(dir))
        return false;
    memcpy(dir, path, (size_t)(slash - path));
    dir[slash - path] = 0;
    const char *name = slash + 1;
    unsigned core = 0, last = fj_guest_cpus() - 1;
    int i;
    switch (view_sys_dir(dir, &core)) {
    case VS_CPUS:
        if ((i = name_index(name, view_sys_cpu_files, FJ_ARRAY_SIZE(view_sys_cpu_files))) < 0)
            return false;
        *ino = 0x73797300 + (unsigned)i;
        if (!t)
            return true;
        if (!strcmp(name, "offline"))
            text_add(t, "\n");
        else if (!strcmp(name, "kernel_max"))
            text_add(t, "%u\n", last);
        else
            add_list(t, 0, last);
        return true;
    case VS_CORE:
        if (name_index(name, view_sys_core_files, FJ_ARRAY_SIZE(view_sys_core_files)) < 0)
            return false;
        *ino = 0x73797400 + core;
        if (t)
            text_add(t, "1\n");
        return true;
    case VS_TOPOLOGY:
        i = name_index(name, view_sys_topology_files, FJ_ARRAY_SIZE(view_sys_topology_files));
        if (i < 0)
            return false;
        *ino = 0x73798000 + core * 64 + (unsigned)i;
        if (t && !add_host_file(path, t))
            render_topology(core, name, t);
        return true;
    default:
        return false;
    }
}

bool sysf_sys_file(struct sandbox *sb, const char *path, struct stat *st) {
    uint64_t ino;
    if (!render(path, NULL, &ino))
        return false;
    text_stat(st, ino, 0x15 /* sysfs */);
    return true;
}

int64_t sysf_open_sys(struct sandbox *sb, const char *path, int flags) {
    struct text t = {0};
    uint64_t ino;
    if (!render(path, &t, &ino))
        return -ENOENT;
    return text_install(sb, path, flags, &t);
}
