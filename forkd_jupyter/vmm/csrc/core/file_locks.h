/* Advisory file locks between the processes of a sandbox (file_locks.c):
 * fcntl's record locks (F_SETLK, F_SETLKW, F_GETLK), their open file
 * description kind (F_OFD_*) and flock, as Linux keeps them, on the files
 * of the writable layer (a memfs node is the file's identity; a read-only
 * host file can only be read-locked, which never conflicts, so it needs no
 * record).
 *
 * Owners: a record lock belongs to a process (its pid) and an OFD or flock
 * lock to an open file description. Record and OFD locks conflict with each
 * other; flock locks only with flock locks. Two locks conflict when they
 * have different owners, overlap, and one of them is a write lock.
 *
 * Invariants, under big_lock: every lock's node is referenced by an open
 * description of the sandbox (the owner's), so node pointers in the table
 * are live. A record lock is dropped when its process closes a descriptor
 * of the file (file_locks_closing) and, when the table is searched, once
 * the process has ended or holds no descriptor of the file; an OFD or flock
 * lock when its description's last reference goes (file_put). A branch's
 * processes start with no locks. */
#ifndef FILE_LOCKS_H
#define FILE_LOCKS_H

#include <stdbool.h>
#include <stdint.h>

struct sandbox;
struct file;
struct sb_procs;

enum lock_kind { LOCK_RECORD, LOCK_OFD, LOCK_FLOCK };

struct file_lock {
    const void *node; /* the file */
    enum lock_kind kind;
    uint32_t pid;            /* LOCK_RECORD's owner */
    const struct file *file; /* LOCK_OFD's and LOCK_FLOCK's owner */
    short type;              /* F_RDLCK or F_WRLCK (F_UNLCK in a request: release) */
    uint64_t start, end;     /* bytes [start, end], end UINT64_MAX: to the end of the file */
};

/* The lock of another owner that would conflict with want, into *held;
 * false when none does. */
bool file_locks_conflict(struct sandbox *sb, const struct file_lock *want, struct file_lock *held);
/* Takes want (or releases its range, F_UNLCK) for its owner, replacing what
 * the owner held there; -EAGAIN when another owner's lock conflicts,
 * -ENOMEM. f: the description the request came through (an OFD or flock
 * lock's owner, whose last reference drops the lock). Waiters are woken. */
int file_locks_set(struct sandbox *sb, struct file *f, const struct file_lock *want);
/* The calling process closes a descriptor of f (close, close_range, dup2
 * over it, close-on-exec): its record locks on f's file go, as on Linux
 * (whichever of its descriptors of the file held them). */
void file_locks_closing(struct sandbox *sb, const struct file *f);
/* The description f's last reference goes: its OFD and flock locks go. */
void file_locks_file_gone(struct file *f);
/* The sandbox's processes end: the table goes. */
void file_locks_free(struct sb_procs *p);

#endif
