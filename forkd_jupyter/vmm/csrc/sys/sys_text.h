/* Files made when opened (/proc, /sys): their text is rendered into a
 * growing buffer, then served as a read-only snapshot (sys_text.c). */
#ifndef SYS_TEXT_H
#define SYS_TEXT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

struct sandbox;

struct text {
    char *p;
    size_t len, cap;
};

/* Appends a formatted string; on ENOMEM the text simply stops growing. */
void text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Installs t (freed here) as a new descriptor of a private, read-only file
 * named path; flags are the open's (only O_RDONLY opens it: EACCES
 * otherwise; O_NONBLOCK and O_CLOEXEC kept). The fd, or -errno. */
int64_t text_install(struct sandbox *sb, const char *path, int flags, struct text *t);

/* The stat of a file made when opened: read-only, empty as Linux says of
 * them, its inode number ino, its device dev (st_dev's minor). */
void text_stat(struct stat *st, uint64_t ino, unsigned dev);

#endif
