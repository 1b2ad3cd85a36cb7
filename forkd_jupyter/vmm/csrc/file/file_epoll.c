/* epoll(7) instances: an interest list over the guest's descriptors, what
 * asyncio's default selector and most event loops wait on.
 *
 * Invariants: an entry names a descriptor number of the sandbox's own fd
 * table, so a branch's copy of the list (fd numbers are kept across a
 * branch) watches the branch's copies of the same files. Readiness is
 * level-triggered; an EPOLLET entry is reported again only when an event
 * it did not have is ready or something changed in the sandbox since its
 * last report (procs->notify_seq moved): never fewer reports than Linux
 * gives, and none while nothing happens. EPOLLONESHOT disables an entry once
 * reported until EPOLL_CTL_MOD. As on Linux an entry is (descriptor
 * number, description: its serial) and lasts while the description is in
 * its process's table: closing the number drops it unless a dup keeps the
 * description (then it is still reported, with its number), and a new file
 * at that number is a new entry (not EEXIST), never reported with the old
 * one's events. Only the process that added an entry judges it (an epoll
 * shared by fork is read through each process's own table); a branch's
 * copy binds each entry to the branch's file at that number at its first
 * look. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "core/proc.h"
#include "core/sandbox.h"
#include "file/file_kinds.h"

#define EPOLL_MAX_ENTRIES FDT_MAX

struct epoll_entry {
    int fd;
    uint32_t pid;    /* the process that added it */
    uint64_t serial; /* its description's (struct file.serial); 0 in a branch's copy until bound */
    uint32_t events;
    uint64_t data;
    bool disabled;     /* EPOLLONESHOT fired */
    uint32_t reported; /* EPOLLET: the events of the last report */
    uint64_t seq;      /* EPOLLET: procs->notify_seq at the last report */
};

struct epoll_set {
    struct epoll_entry *entries;
    size_t n, cap;
    uint64_t ino;
};

static const struct file_ops epoll_ops;

bool file_is_epoll(const struct file *f) { return f->ops == &epoll_ops; }

/* Regular files and directories cannot be watched (EPERM), as on Linux;
 * every other kind (pipes, sockets, terminals, devices...) can. */
static bool watchable(const struct file *f) {
    static const char *const kinds[] = {"host-file", "host-dir", "layer-file", "layer-dir", "vdir"};
    for (size_t i = 0; i < FJ_ARRAY_SIZE(kinds); i++)
        if (!strcmp(f->ops->kind, kinds[i]))
            return false;
    return true;
}

/* The description e watches as its process's table holds it now: the one
 * at its number, else (that number closed or reused while a dup keeps the
 * description) the one with its serial; NULL once the description is gone
 * from the table. Another process's entry: whatever is at the number. */
static struct file *watched(struct sandbox *sb, struct epoll_entry *e) {
    struct file *f = fdt_get(&sb->fdt, e->fd);
    if (e->pid != sb->pid)
        return f;
    if (f && !e->serial)
        e->serial = f->serial;
    if (f && f->serial == e->serial)
        return f;
    for (int fd = 0; fd < sb->fdt.cap; fd++) {
        struct file *g = sb->fdt.slots[fd].f;
        if (g && g->serial == e->serial)
            return g;
    }
    return NULL;
}

static void prune(struct sandbox *sb, struct epoll_set *s) {
    for (size_t i = 0; i < s->n;)
        if (s->entries[i].pid == sb->pid && !watched(sb, &s->entries[i]))
            s->entries[i] = s->entries[--s->n];
        else
            i++;
}

/* The entry of (fd, the description at fd), as Linux keys them (one of a
 * branch's copy not bound yet, another process's, matches by number). */
static struct epoll_entry *find(struct epoll_set *s, int fd, uint64_t serial) {
    for (size_t i = 0; i < s->n; i++)
        if (s->entries[i].fd == fd && (s->entries[i].serial == serial || !s->entries[i].serial))
            return &s->entries[i];
    return NULL;
}

int file_epoll_ctl(struct sandbox *sb, struct file *ep, int op, int fd, struct file *target,
                   uint32_t events, uint64_t data) {
    struct epoll_set *s = ep->priv;
    if (target == ep)
        return -EINVAL;
    if (!watchable(target))
        return -EPERM;
    prune(sb, s); /* binds a branch's entries, too */
    struct epoll_entry *e = find(s, fd, target->serial);
    struct epoll_entry fresh = {
        .fd = fd, .pid = sb->pid, .serial = target->serial, .events = events, .data = data};
    switch (op) {
    case EPOLL_CTL_ADD:
        if (e)
            return -EEXIST;
        if (s->n == EPOLL_MAX_ENTRIES)
            return -ENOSPC;
        if (s->n == s->cap) {
            size_t cap = s->cap ? s->cap * 2 : 8;
            struct epoll_entry *grown = realloc(s->entries, cap * sizeof(*grown));
            if (!grown)
                return -ENOMEM;
            s->entries = grown;
            s->cap = cap;
        }
        s->entries[s->n++] = fresh;
        return 0;
    case EPOLL_CTL_MOD:
        if (!e)
            return -ENOENT;
        fresh.pid = e->pid;
        fresh.serial = e->serial;
        *e = fresh;
        return 0;
    case EPOLL_CTL_DEL:
        if (!e)
            return -ENOENT;
        *e = s->entries[--s->n];
        return 0;
    default:
        return -EINVAL;
    }
}

/* The events of e ready now (EPOLLERR and EPOLLHUP always count). */
static uint32_t ready(struct sandbox *sb, struct epoll_entry *e) {
    struct file *f = watched(sb, e);
    if (!f || e->disabled)
        return 0;
    short want = (short)(e->events & (EPOLLIN | EPOLLOUT | EPOLLPRI | EPOLLRDHUP));
    short got = f->ops->poll ? f->ops->poll(sb, f, want) : (short)(want & (POLLIN | POLLOUT));
    return (uint32_t)(unsigned short)got & (e->events | EPOLLERR | EPOLLHUP);
}

int file_epoll_collect(struct sandbox *sb, struct file *ep, struct epoll_event *out, int max) {
    struct epoll_set *s = ep->priv;
    prune(sb, s);
    int n = 0;
    uint64_t seq = atomic_load(&sb->procs->notify_seq);
    for (size_t i = 0; i < s->n && n < max; i++) {
        struct epoll_entry *e = &s->entries[i];
        uint32_t ev = ready(sb, e);
        if (e->events & EPOLLET) {
            bool edge = (ev & ~e->reported) || (ev && seq != e->seq);
            e->reported = ev;
            if (!edge)
                continue;
            e->seq = seq;
        }
        if (!ev)
            continue;
        out[n].events = ev;
        out[n].data.u64 = s->entries[i].data;
        n++;
        if (s->entries[i].events & EPOLLONESHOT)
            s->entries[i].disabled = true;
    }
    return n;
}

int file_epoll_fds(struct sandbox *sb, struct file *ep, int *fds, short *events, int max) {
    struct epoll_set *s = ep->priv;
    prune(sb, s);
    int n = 0;
    for (size_t i = 0; i < s->n && n < max; i++) {
        fds[n] = s->entries[i].fd;
        events[n++] = (short)(s->entries[i].events & (EPOLLIN | EPOLLOUT));
    }
    return n;
}

static short epoll_poll(struct sandbox *sb, struct file *f, short events) {
    struct epoll_set *s = f->priv;
    prune(sb, s);
    for (size_t i = 0; i < s->n; i++)
        if (ready(sb, &s->entries[i]))
            return events & POLLIN;
    return 0;
}

static int epoll_stat(struct sandbox *sb, struct file *f, struct stat *st) {
    return file_anon_stat(st, 0600, ((struct epoll_set *)f->priv)->ino, 0xe); /* anonymous inode */
}

static void epoll_release(struct file *f) {
    struct epoll_set *s = f->priv;
    free(s->entries);
    free(s);
}

static struct file *epoll_make(const struct epoll_set *from, int flags) {
    static uint64_t next_ino;
    struct file *f = file_new(&epoll_ops, O_RDWR, NULL);
    struct epoll_set *s = f ? calloc(1, sizeof(*s)) : NULL;
    if (!s) {
        free(f);
        return NULL;
    }
    s->ino = __atomic_add_fetch(&next_ino, 1, __ATOMIC_RELAXED);
    if (from && from->n) {
        if (!(s->entries = malloc(from->n * sizeof(*s->entries)))) {
            free(s);
            free(f);
            return NULL;
        }
        memcpy(s->entries, from->entries, from->n * sizeof(*s->entries));
        s->n = s->cap = from->n;
        for (size_t i = 0; i < s->n; i++)
            s->entries[i].serial = 0; /* the branch's files: bound at the first look */
    }
    f->priv = s;
    return f;
}

static struct file *epoll_clone(struct file *f, struct fdt_clone_ctx *ctx) {
    return epoll_make(f->priv, f->flags);
}

static const struct file_ops epoll_ops = {
    .kind = "epoll",
    .stat = epoll_stat,
    .poll = epoll_poll,
    .release = epoll_release,
    .clone = epoll_clone,
};

struct file *file_epoll_new(int flags) {
    return epoll_make(NULL, flags);
}
