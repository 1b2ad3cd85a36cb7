/* Advisory file locks between a sandbox's processes (file_locks.h): one
 * table per sandbox, in its process set, searched linearly (a sandbox holds
 * a handful of locks: SQLite takes at most a few per connection). */
#define _GNU_SOURCE
#include "core/file_locks.h"

#include <fcntl.h>
#include <stdlib.h>

#include "core/proc.h"

static bool overlap(const struct file_lock *a, const struct file_lock *b) {
    return a->start <= b->end && b->start <= a->end;
}

/* Record and OFD locks are one family; flock locks another. */
static bool same_family(const struct file_lock *a, const struct file_lock *b) {
    return (a->kind == LOCK_FLOCK) == (b->kind == LOCK_FLOCK);
}

static bool same_owner(const struct file_lock *a, const struct file_lock *b) {
    if (a->kind != b->kind)
        return false;
    return a->kind == LOCK_RECORD ? a->pid == b->pid : a->file == b->file;
}

/* Whether a record lock's process still lives with a descriptor of its file. */
static bool record_holder_open(struct sandbox *sb, const struct file_lock *l) {
    struct sandbox *owner = sb_proc_find(sb, l->pid);
    for (int fd = 0; owner && fd < owner->fdt.cap; fd++) {
        const struct file *f = owner->fdt.slots[fd].f;
        if (f && f->node == l->node)
            return true;
    }
    return false;
}

static void drop_at(struct sb_procs *p, size_t i) { p->locks[i] = p->locks[--p->n_locks]; }

/* Drops the record locks whose holder ended or closed the file. */
static void drop_stale(struct sandbox *sb) {
    struct sb_procs *p = sb->procs;
    for (size_t i = 0; i < p->n_locks;)
        if (p->locks[i].kind == LOCK_RECORD && !record_holder_open(sb, &p->locks[i]))
            drop_at(p, i);
        else
            i++;
}

bool file_locks_conflict(struct sandbox *sb, const struct file_lock *want, struct file_lock *held) {
    drop_stale(sb);
    struct sb_procs *p = sb->procs;
    for (size_t i = 0; i < p->n_locks; i++) {
        const struct file_lock *l = &p->locks[i];
        if (l->node == want->node && same_family(l, want) && !same_owner(l, want) &&
            overlap(l, want) && (l->type == F_WRLCK || want->type == F_WRLCK)) {
            *held = *l;
            return true;
        }
    }
    return false;
}

static int push(struct sb_procs *p, const struct file_lock *l) {
    if (p->n_locks == p->cap_locks) {
        size_t cap = p->cap_locks ? p->cap_locks * 2 : 16;
        struct file_lock *g = realloc(p->locks, cap * sizeof(*g));
        if (!g)
            return -ENOMEM;
        p->locks = g;
        p->cap_locks = cap;
    }
    p->locks[p->n_locks++] = *l;
    return 0;
}

/* Removes the owner's hold on want's range: locks inside it go, a lock
 * across one of its ends keeps the part outside (one across both is split
 * in two). Returns the locks it changed, or -ENOMEM. */
static int release_range(struct sb_procs *p, const struct file_lock *want) {
    int changed = 0;
    /* The parts kept are pushed at the end; they lie outside the range, so
     * the walk passes over them. */
    for (size_t i = 0; i < p->n_locks;) {
        struct file_lock *l = &p->locks[i];
        if (l->node != want->node || !same_owner(l, want) || !overlap(l, want)) {
            i++;
            continue;
        }
        struct file_lock before = *l, after = *l;
        bool keep_before = l->start < want->start;
        bool keep_after = l->end > want->end;
        before.end = want->start - 1;
        after.start = want->end + 1;
        drop_at(p, i); /* the last lock moved to i: looked at next */
        changed++;
        if ((keep_before && push(p, &before) < 0) || (keep_after && push(p, &after) < 0))
            return -ENOMEM;
    }
    return changed;
}

int file_locks_set(struct sandbox *sb, struct file *f, const struct file_lock *want) {
    struct file_lock held;
    if (want->type != F_UNLCK && file_locks_conflict(sb, want, &held))
        return -EAGAIN;
    struct sb_procs *p = sb->procs;
    int changed = release_range(p, want), err = changed < 0 ? changed : 0;
    if (err == 0 && want->type != F_UNLCK && (err = push(p, want)) == 0 &&
        want->kind != LOCK_RECORD)
        f->locked_in = p;
    if (changed) /* released or downgraded: a waiter looks again */
        sb_notify(sb);
    return err;
}

void file_locks_closing(struct sandbox *sb, const struct file *f) {
    struct sb_procs *p = sb->procs;
    if (!f || !f->node || !p->n_locks)
        return;
    bool dropped = false;
    for (size_t i = 0; i < p->n_locks;)
        if (p->locks[i].kind == LOCK_RECORD && p->locks[i].pid == sb->pid &&
            p->locks[i].node == f->node) {
            drop_at(p, i);
            dropped = true;
        } else {
            i++;
        }
    if (dropped)
        sb_notify(sb);
}

void file_locks_file_gone(struct file *f) {
    struct sb_procs *p = f->locked_in;
    f->locked_in = NULL;
    for (size_t i = 0; p && i < p->n_locks;)
        if (p->locks[i].kind != LOCK_RECORD && p->locks[i].file == f)
            drop_at(p, i);
        else
            i++;
}

void file_locks_free(struct sb_procs *p) {
    for (size_t i = 0; i < p->n_locks; i++)
        if (p->locks[i].kind != LOCK_RECORD)
            ((struct file *)p->locks[i].file)->locked_in = NULL; /* it lives: it holds a lock */
    free(p->locks);
    p->locks = NULL;
    p->n_locks = p->cap_locks = 0;
}
