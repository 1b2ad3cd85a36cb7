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

#include "core/proc.h"
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
static void add(struct text *t, const char *fmt, ...) {
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

static const char *kind_name(const struct sandbox *sb, const struct mm_vma *v) {
    switch (v->kind) {
    case MM_STACK:
        return "[stack]";
    case MM_BRK:
        return "[heap]";
    default:
        return mm_name_at(&sb->mm, v->start);
    }
}

/* "/proc/self/X" or "/proc/<own pid>/X": X, else NULL. */
static const char *own_proc_file(const struct sandbox *sb, const char *path) {
    char own[32];
    snprintf(own, sizeof(own), "/proc/%u/", sb->pid);
    if (!strncmp(path, "/proc/self/", 11))
        return path + 11;
    if (!strncmp(path, own, strlen(own)))
        return path + strlen(own);
    return NULL;
}

static void render_maps(struct sandbox *sb, struct text *t) {
    for (size_t i = 0; i < sb->mm.n_vmas; i++) {
        const struct mm_vma *v = &sb->mm.vmas[i];
        const char *name = kind_name(sb, v);
        add(t, "%08llx-%08llx %c%c%cp 00000000 00:00 0%s%s\n", (unsigned long long)v->start,
            (unsigned long long)v->end, v->prot & PROT_READ ? 'r' : '-',
            v->prot & PROT_WRITE ? 'w' : '-', v->prot & PROT_EXEC ? 'x' : '-',
            name ? "                          " : "", name ? name : "");
    }
}

/* The signals whose action is SIG_IGN (handler 1) or a handler (> 1), as
 * the bit masks of /proc/<pid>/status (signal n is bit n - 1). */
static uint64_t with_action(const struct sandbox *sb, bool ignored) {
    uint64_t mask = 0;
    for (int n = 1; n < SB_NSIG; n++) {
        uint64_t h = sb->sig.act[n].handler;
        if (ignored ? h == 1 : h > 1)
            mask |= 1ULL << (n - 1);
    }
    return mask;
}

static void render_status(struct sandbox *sb, struct text *t) {
    const struct sb_proc_slot *self = sb_proc_self(sb);
    const char *name = strrchr(sb->exe_path, '/') ? strrchr(sb->exe_path, '/') + 1 : sb->exe_path;
    add(t,
        "Name:\t%.15s\nUmask:\t%04o\nState:\tR "
        "(running)\nTgid:\t%u\nNgid:\t0\nPid:\t%u\nPPid:\t%u\n",
        name, sb->view ? sb->view->umask : 022, sb->pid, sb->pid, self ? self->ppid : 0);
    add(t, "Uid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\n");
    add(t, "VmSize:\t%llu kB\nVmRSS:\t%llu kB\nThreads:\t%u\n",
        (unsigned long long)(sb->mm.mapped_bytes / 1024),
        (unsigned long long)(sb->mm.mapped_bytes / 1024), sb->live_threads);
    const struct sb_thread *me = sb_self(sb);
    add(t, "SigQ:\t0/63448\nSigPnd:\t%016llx\nShdPnd:\t%016llx\nSigBlk:\t%016llx\n",
        (unsigned long long)(me ? me->sig.pending : 0), (unsigned long long)sb->sig.pending,
        (unsigned long long)(me ? me->sig.blocked : 0));
    add(t, "SigIgn:\t%016llx\nSigCgt:\t%016llx\n", (unsigned long long)with_action(sb, true),
        (unsigned long long)with_action(sb, false));
}

bool sysf_proc_file(struct sandbox *sb, const char *path, struct stat *st) {
    const char *leaf = own_proc_file(sb, path);
    if (!leaf || (strcmp(leaf, "maps") && strcmp(leaf, "status")))
        return false;
    file_anon_stat(st, S_IFREG | 0444, 0x70726f63 + (leaf[0] == 's'), 0x16 /* proc */);
    st->st_size = 0;
    st->st_blksize = 1024;
    return true;
}

int64_t sysf_open_proc(struct sandbox *sb, const char *path, int flags) {
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
