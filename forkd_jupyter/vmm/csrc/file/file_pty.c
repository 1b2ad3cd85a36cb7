/* A pseudo-terminal pair's life and the files of its two ends (file/pty.h):
 * /dev/ptmx, /dev/pts/N and /dev/tty, their reads, writes, polls and
 * ioctls (termios, window size, the controlling terminal and its
 * foreground group, the pair's number and lock). A branch gets a copy of
 * each pair its processes hold (settings, session, what waits in either
 * direction), shared by the copies of both ends. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <termios.h>

#include "core/proc.h"
#include "file/pty.h"

static const struct file_ops master_ops, slave_ops;

static struct pty *pty_of(const struct file *f) { return f->priv; }
static bool is_master(const struct file *f) { return f->ops == &master_ops; }

static struct pty *find(struct sb_procs *space, int index) {
    for (struct pty *p = space->ptys; p; p = p->next)
        if (p->index == index)
            return p;
    return NULL;
}

/* The number in "/dev/pts/N", or -1. */
static int pts_index(const char *path) {
    if (strncmp(path, "/dev/pts/", 9))
        return -1;
    const char *n = path + 9;
    size_t len = strspn(n, "0123456789");
    if (!len || len > 4 || n[len] || (n[0] == '0' && len > 1))
        return -1;
    return atoi(n);
}

bool file_pty_path(const char *path) {
    return !strcmp(path, "/dev/ptmx") || !strcmp(path, "/dev/tty") || pts_index(path) >= 0;
}

static void release_end(struct pty *p) {
    if (p->masters || p->slaves)
        return;
    /* A snapshot's copy is on no list. */
    for (struct pty **at = p->space ? &p->space->ptys : NULL; at && *at; at = &(*at)->next)
        if (*at == p) {
            *at = p->next;
            break;
        }
    ring_free(&p->in);
    ring_free(&p->out);
    free(p);
}

static struct file *end_new(struct pty *p, bool master, int flags) {
    char path[32];
    snprintf(path, sizeof(path), master ? "/dev/ptmx" : "/dev/pts/%d", p->index);
    struct file *f =
        file_new(master ? &master_ops : &slave_ops, (flags & (O_ACCMODE | O_NONBLOCK)), path);
    if (!f)
        return NULL;
    f->priv = p;
    if (master) {
        p->masters++;
    } else {
        p->slaves++;
        p->slave_opened = true;
    }
    return f;
}

/* Opening the terminal end makes it the controlling terminal of a session
 * leader that has none, as on Linux (unless O_NOCTTY). */
static void maybe_control(struct sandbox *sb, struct pty *p, int flags) {
    struct sb_proc_slot *self = sb_proc_self(sb);
    if ((flags & O_NOCTTY) || !self || self->sid != self->pid || p->session)
        return;
    for (struct pty *q = sb->procs->ptys; q; q = q->next)
        if (q->session == self->sid)
            return;
    p->session = self->sid;
    p->fg_pgrp = self->pgid;
}

static int open_master(struct sandbox *sb, int flags, struct file **out) {
    int index = 0;
    while (index < PTY_MAX && find(sb->procs, index))
        index++;
    if (index == PTY_MAX)
        return -ENOSPC;
    struct pty *p = calloc(1, sizeof(*p));
    if (p && (ring_init(&p->in, RING_BYTES) < 0 || ring_init(&p->out, RING_BYTES) < 0)) {
        ring_free(&p->in);
        free(p);
        p = NULL;
    }
    if (!p)
        return -ENOMEM;
    p->index = index;
    p->space = sb->procs;
    p->locked = true; /* until unlockpt() */
    pty_ldisc_init(p);
    p->next = sb->procs->ptys;
    sb->procs->ptys = p;
    if (!(*out = end_new(p, true, flags))) {
        release_end(p);
        return -ENOMEM;
    }
    return 0;
}

int file_pty_open(struct sandbox *sb, const char *path, int flags, struct file **out) {
    if (!strcmp(path, "/dev/ptmx"))
        return open_master(sb, flags, out);
    struct pty *p = NULL;
    if (!strcmp(path, "/dev/tty")) {
        struct sb_proc_slot *self = sb_proc_self(sb);
        for (p = sb->procs->ptys; p && self; p = p->next)
            if (p->session == self->sid)
                break;
        if (!p || !self)
            return -ENXIO; /* no controlling terminal */
    } else if (!(p = find(sb->procs, pts_index(path)))) {
        return -ENOENT;
    }
    if (p->locked)
        return -EIO;
    if (!(*out = end_new(p, false, flags)))
        return -ENOMEM;
    maybe_control(sb, p, flags);
    return 0;
}

static int end_stat(const struct pty *p, bool master, struct stat *st) {
    int err =
        file_anon_stat(st, S_IFCHR | (master ? 0666 : 0620), master ? 2 : 3 + (uint64_t)p->index,
                       master ? 0x5 : 0x18 /* devtmpfs, devpts */);
    st->st_rdev = master ? makedev(5, 2) : makedev(PTY_MAJOR, (unsigned)p->index);
    st->st_blksize = 1024;
    return err;
}

int file_pty_stat_path(struct sandbox *sb, const char *path, struct stat *st) {
    struct pty *p = find(sb->procs, pts_index(path));
    return p ? end_stat(p, false, st) : -ENOENT;
}

int file_pty_indexes(struct sandbox *sb, int *out, int max) {
    int n = 0;
    for (int i = 0; i < PTY_MAX && n < max; i++)
        if (find(sb->procs, i))
            out[n++] = i;
    return n;
}

/* ------------------------------------------------------------ the ends */

static int64_t master_read(struct sandbox *sb, struct file *f, void *buf, uint64_t len) {
    struct pty *p = pty_of(f);
    while (!p->out.len) {
        if (p->slave_opened && !p->slaves)
            return -EIO; /* the terminal end is gone, as Linux says */
        if (f->flags & O_NONBLOCK)
            return -EAGAIN;
        int err = sb_wait_fd(sb, -1, 0, -1);
        if (err < 0)
            return err;
    }
    return (int64_t)ring_get(&p->out, buf, len, false);
}

static int64_t master_write(struct sandbox *sb, struct file *f, const void *buf, uint64_t len) {
    struct pty *p = pty_of(f);
    uint64_t done = 0;
    for (;;) {
        done += pty_input(sb, p, (const uint8_t *)buf + done, len - done);
        if (done == len || (f->flags & O_NONBLOCK))
            return done || !len ? (int64_t)done : -EAGAIN;
        sb_notify(sb); /* the reader takes what went in, making room */
        int err = sb_wait_fd(sb, -1, 0, -1);
        if (err < 0)
            return done ? (int64_t)done : err;
    }
}

static int64_t slave_read(struct sandbox *sb, struct file *f, void *buf, uint64_t len) {
    struct pty *p = pty_of(f);
    for (;;) {
        int64_t r = pty_take_input(p, buf, len);
        if (r != -EAGAIN)
            return r;
        if (!p->masters)
            return 0; /* hung up */
        if (f->flags & O_NONBLOCK)
            return -EAGAIN;
        int err = sb_wait_fd(sb, -1, 0, -1);
        if (err < 0)
            return err;
    }
}

static int64_t slave_write(struct sandbox *sb, struct file *f, const void *buf, uint64_t len) {
    struct pty *p = pty_of(f);
    return p->masters ? pty_output(sb, p, buf, len, f->flags & O_NONBLOCK) : -EIO;
}

static short master_poll(struct sandbox *sb, struct file *f, short events) {
    struct pty *p = pty_of(f);
    short r = 0;
    if (p->out.len)
        r |= POLLIN;
    if (p->slave_opened && !p->slaves)
        r |= POLLIN | POLLHUP;
    if (ring_space(&p->in))
        r |= POLLOUT;
    return r & (events | POLLHUP | POLLERR);
}

static short slave_poll(struct sandbox *sb, struct file *f, short events) {
    struct pty *p = pty_of(f);
    short r = 0;
    if (pty_input_ready(p))
        r |= POLLIN;
    if (!p->masters)
        r |= POLLIN | POLLHUP;
    else if (ring_space(&p->out))
        r |= POLLOUT;
    return r & (events | POLLHUP | POLLERR);
}

static int master_stat(struct sandbox *sb, struct file *f, struct stat *st) {
    return end_stat(pty_of(f), true, st);
}
static int slave_stat(struct sandbox *sb, struct file *f, struct stat *st) {
    return end_stat(pty_of(f), false, st);
}

static void master_release(struct file *f) {
    struct pty *p = pty_of(f);
    if (--p->masters == 0 && p->session && p->fg_pgrp && p->space && p->space->first)
        sb_proc_kill(p->space->first, -(int64_t)p->fg_pgrp, SIGHUP); /* the terminal hung up */
    release_end(p);
}

static void slave_release(struct file *f) {
    struct pty *p = pty_of(f);
    p->slaves--;
    release_end(p);
}

/* ------------------------------------------------------------ ioctls */

static int64_t put_int(struct sandbox *sb, uint64_t arg, int v) {
    return mm_copy_to(&sb->mm, arg, &v, sizeof(v));
}

static int64_t get_int(struct sandbox *sb, uint64_t arg, int *v) {
    return mm_copy_from(&sb->mm, v, arg, sizeof(*v)) < 0 ? -EFAULT : 0;
}

/* The ioctls of the pair itself, asked of the master. */
static int64_t master_only(struct sandbox *sb, struct file *f, uint64_t req, uint64_t arg) {
    struct pty *p = pty_of(f);
    int v;
    switch (req) {
    case TIOCGPTN:
        return put_int(sb, arg, p->index);
    case TIOCSPTLCK:
        if (get_int(sb, arg, &v) < 0)
            return -EFAULT;
        p->locked = v != 0;
        return 0;
    case TIOCGPTLCK:
        return put_int(sb, arg, p->locked);
    case TIOCGPTPEER: {
        if (p->locked)
            return -EIO;
        struct file *s = end_new(p, false, (int)arg);
        if (!s)
            return -ENOMEM;
        int fd = fdt_install(&sb->fdt, s, 0, arg & O_CLOEXEC);
        if (fd < 0)
            file_put(s);
        return fd;
    }
    case TIOCPKT:
        return 0; /* packet mode is not modelled: reads stay plain */
    default:
        return -ENOTTY;
    }
}

static int64_t set_winsize(struct sandbox *sb, struct pty *p, uint64_t arg) {
    struct winsize ws;
    if (mm_copy_from(&sb->mm, &ws, arg, sizeof(ws)) < 0)
        return -EFAULT;
    bool changed = memcmp(&ws, &p->ws, sizeof(ws)) != 0;
    p->ws = ws;
    if (changed && p->fg_pgrp)
        sb_proc_kill(sb, -(int64_t)p->fg_pgrp, SIGWINCH);
    return 0;
}

static int64_t pty_ioctl(struct sandbox *sb, struct file *f, uint64_t req, uint64_t arg) {
    struct pty *p = pty_of(f);
    struct sb_proc_slot *self = sb_proc_self(sb);
    struct pty_termios t;
    int v;
    switch (req) {
    case TCGETS:
        return mm_copy_to(&sb->mm, arg, &p->tio, sizeof(p->tio));
    case TCSETS:
    case TCSETSW:
    case TCSETSF:
        if (mm_copy_from(&sb->mm, &t, arg, sizeof(t)) < 0)
            return -EFAULT;
        if (req == TCSETSF)
            pty_flush(p, 0);
        pty_set_termios(p, &t);
        return 0;
    case TIOCGWINSZ:
        return mm_copy_to(&sb->mm, arg, &p->ws, sizeof(p->ws));
    case TIOCSWINSZ:
        return set_winsize(sb, p, arg);
    case TIOCGPGRP:
        return p->session ? put_int(sb, arg, (int)p->fg_pgrp) : -ENOTTY;
    case TIOCSPGRP:
        if (get_int(sb, arg, &v) < 0)
            return -EFAULT;
        if (!p->session || !self || self->sid != p->session)
            return -ENOTTY;
        if (v <= 0)
            return -EINVAL;
        p->fg_pgrp = (uint32_t)v;
        return 0;
    case TIOCGSID:
        return p->session ? put_int(sb, arg, (int)p->session) : -ENOTTY;
    case TIOCSCTTY:
        if (!self || self->sid != self->pid)
            return -EPERM; /* only a session leader takes a controlling terminal */
        if (p->session && p->session != self->sid && !arg)
            return -EPERM;
        p->session = self->sid;
        p->fg_pgrp = self->pgid;
        return 0;
    case TIOCNOTTY:
        if (self && p->session == self->sid && self->sid == self->pid)
            p->session = p->fg_pgrp = 0;
        return 0;
    case FIONREAD: /* TIOCINQ */
        return put_int(sb, arg, (int)(is_master(f) ? p->out.len : p->in.len));
    case TIOCOUTQ:
        return put_int(sb, arg, (int)(is_master(f) ? p->in.len : p->out.len));
    case TCFLSH:
        if (arg > 2)
            return -EINVAL;
        pty_flush(p,
                  is_master(f) && arg != 2 ? !(int)arg : (int)arg); /* the master's "in" is out */
        return 0;
    case TCSBRK:
    case TCSBRKP:
    case TCXONC:
    case TIOCEXCL:
    case TIOCNXCL:
    case TIOCSETD:
        return 0;
    case TIOCGETD:
        return put_int(sb, arg, 0); /* N_TTY */
    default:
        return is_master(f) ? master_only(sb, f, req, arg) : -ENOTTY;
    }
}

/* The branch's copy of pair p, made once per clone: on the branch's list
 * of pairs, or on none for a snapshot (a sandbox spawned from it gets a
 * copy of that copy). Ends are counted as they are copied. */
static struct pty *pair_copy(struct fdt_clone_ctx *ctx, struct pty *p) {
    bool fresh;
    struct pty *c = fdt_clone_shared_copy(ctx, p, sizeof(*p), &fresh);
    if (c && fresh) {
        (void)ring_own_copy(&c->in); /* on ENOMEM the branch's pair holds nothing */
        (void)ring_own_copy(&c->out);
        c->masters = c->slaves = 0;
        c->space = ctx->procs;
        c->next = NULL;
        if (c->space) {
            c->next = c->space->ptys;
            c->space->ptys = c;
        }
    }
    return c;
}

/* On ENOMEM the copy stays as it is (the clone context may hand it to the
 * other end): a sandbox's pairs are freed with it. */
static struct file *pty_clone(struct file *f, struct fdt_clone_ctx *ctx) {
    struct pty *c = pair_copy(ctx, pty_of(f));
    return c ? end_new(c, is_master(f), f->flags) : NULL;
}

static const struct file_ops master_ops = {
    .kind = "ptmx",
    .read = master_read,
    .write = master_write,
    .stat = master_stat,
    .poll = master_poll,
    .ioctl = pty_ioctl,
    .release = master_release,
    .clone = pty_clone,
};

static const struct file_ops slave_ops = {
    .kind = "pts",
    .read = slave_read,
    .write = slave_write,
    .stat = slave_stat,
    .poll = slave_poll,
    .ioctl = pty_ioctl,
    .release = slave_release,
    .clone = pty_clone,
};
