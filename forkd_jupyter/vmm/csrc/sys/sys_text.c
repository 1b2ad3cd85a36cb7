/* Files made when opened (sys_text.h). */
#define _GNU_SOURCE
#include "sys/sys_text.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/sandbox.h"
#include "file/file_kinds.h"
#include "fs/fs_view.h"

void text_add(struct text *t, const char *fmt, ...) {
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

int64_t text_install(struct sandbox *sb, const char *path, int flags, struct text *t) {
    struct file *f = NULL;
    int err = (flags & O_ACCMODE) != O_RDONLY || (flags & (O_CREAT | O_TRUNC)) ? -EACCES : 0;
    if (err == 0)
        err = file_layer_anon(fs_view_layer(sb->view), 0444, O_RDWR, path, &f);
    if (err == 0 && t->len && f->ops->write(sb, f, t->p, t->len) != (int64_t)t->len)
        err = -ENOMEM;
    free(t->p);
    *t = (struct text){0};
    if (err < 0) {
        if (f)
            file_put(f);
        return err;
    }
    f->off = 0;
    f->flags = O_RDONLY | (flags & O_NONBLOCK);
    int fd = fdt_install(&sb->fdt, f, 0, flags & O_CLOEXEC);
    if (fd < 0)
        file_put(f);
    return fd;
}

void text_stat(struct stat *st, uint64_t ino, unsigned dev) {
    file_anon_stat(st, S_IFREG | 0444, ino, dev);
    st->st_size = 0;
    st->st_blksize = 1024;
}
