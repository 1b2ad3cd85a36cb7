/* Files of /proc/self that are made when opened: maps (the address space,
 * with file mappings named: what threadpoolctl and friends read) and
 * status (name, ids, threads). Opening gives a read-only snapshot of the
 * contents, as a private file of the writable layer's kind. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/sandbox.h"
#include "file/file_kinds.h"
#include "fs/fs_view.h"
#include "sys/sys.h"
#include "sys/sys_file.h"

struct text {
    char *p;
    size_t len, cap;
};

static void add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct text *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->p ? t->p + t->len : NULL, t->p ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (t->p && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = (t->cap ? t->cap * 2 : 4096) + (size_t)n;
        char *p = realloc(t->p, cap);
        if (!p)
            return;
        t->p = p;
        t->cap = cap;
    }
}

static const char *kind_name(const struct sandbox *sb, const struct mm_vma *v)
{
    switch (v->kind) {
    case MM_STACK: return "[stack]";
    case MM_BRK: return "[heap]";
    default: return mm_name_at(&sb->mm, v->start);
    }
}

static void render_maps(struct sandbox *sb, struct text *t)
{
    for (size_t i = 0; i < sb->mm.n_vmas; i++) {
        const struct mm_vma *v = &sb->mm.vmas[i];
        const char *name = kind_name(sb, v);
        add(t, "%08llx-%08llx %c%c%cp 00000000 00:00 0%s%s\n", (unsigned long long)v->start,
            (unsigned long long)v->end, v->prot & PROT_READ ? 'r' : '-', v->prot & PROT_WRITE ? 'w' : '-',
            v->prot & PROT_EXEC ? 'x' : '-', name ? "                          " : "", name ? name : "");
    }
}

static void render_status(struct sandbox *sb, struct text *t)
{
    add(t, "Name:\tpython3\nState:\tR (running)\nTgid:\t%u\nPid:\t%u\nPPid:\t1\n", sb->pid, sb->pid);
    add(t, "Uid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\n");
    add(t, "VmSize:\t%llu kB\nVmRSS:\t%llu kB\nThreads:\t%u\n", (unsigned long long)(sb->mm.mapped_bytes / 1024),
        (unsigned long long)(sb->mm.mapped_bytes / 1024), sb->live_threads);
}

/* "/proc/self/X" or "/proc/<own pid>/X": X, else NULL. */
static const char *own_proc_file(const struct sandbox *sb, const char *path)
{
    char own[32];
    snprintf(own, sizeof(own), "/proc/%u/", sb->pid);
    if (!strncmp(path, "/proc/self/", 11))
        return path + 11;
    if (!strncmp(path, own, strlen(own)))
        return path + strlen(own);
    return NULL;
}

int64_t sysf_open_proc(struct sandbox *sb, const char *path, int flags)
{
    const char *leaf = own_proc_file(sb, path);
    if (!leaf || (strcmp(leaf, "maps") && strcmp(leaf, "status")))
        return -ENOENT;
    if ((flags & O_ACCMODE) != O_RDONLY || (flags & (O_CREAT | O_TRUNC)))
        return -EACCES;
    struct text t = {0};
    if (!strcmp(leaf, "maps"))
        render_maps(sb, &t);
    else
        render_status(sb, &t);
    struct file *f;
    int err = file_layer_anon(fs_view_layer(sb->view), 0444, O_RDWR, path, &f);
    if (err == 0 && t.len && f->ops->write(sb, f, t.p, t.len) != (int64_t)t.len)
        err = -ENOMEM;
    free(t.p);
    if (err < 0)
        return err;
    f->off = 0;
    f->flags = O_RDONLY | (flags & O_NONBLOCK);
    int fd = fdt_install(&sb->fdt, f, 0, flags & O_CLOEXEC);
    if (fd < 0)
        file_put(f);
    return fd;
}
