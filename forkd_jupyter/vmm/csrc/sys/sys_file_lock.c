/* The files family, advisory locks: fcntl's F_GETLK, F_SETLK, F_SETLKW and
 * their F_OFD_* kinds, and flock (core/file_locks.h keeps them). A lock on
 * a file outside the writable layer (a read-only host file, a pipe, a
 * socket) never conflicts: it is checked and granted. A blocked F_SETLKW or
 * flock waits for a release (woken at once by an unlock, or looking again
 * every LOCK_RECHECK_NS for a holder that ended or closed the file) or a
 * signal (EINTR); there is no deadlock detection. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <sys/file.h>

#include "core/file_locks.h"
#include "core/sandbox.h"
#include "sys/sys.h"
#include "sys/sys_file.h"

#define LOCK_RECHECK_NS (20 * 1000 * 1000ULL)

/* Takes want, waiting while another owner holds a conflicting lock when
 * wait is set. */
static int64_t take(struct sandbox *sb, struct file *f, const struct file_lock *want, bool wait) {
    if (!f->node)
        return 0; /* nothing else can hold a conflicting lock */
    for (;;) {
        int err = file_locks_set(sb, f, want);
        if (err != -EAGAIN || !wait)
            return err;
        err = sb_wait_fd(sb, -1, 0, (int64_t)LOCK_RECHECK_NS);
        if (err < 0 && err != -ETIMEDOUT)
            return err;
    }
}

/* The range of a struct flock (whence, start, len), as [start, end]. */
static int flock_range(struct sandbox *sb, struct file *f, const struct flock *fl,
                       struct file_lock *out) {
    int64_t base = 0;
    if (fl->l_whence == SEEK_CUR) {
        base = (int64_t)f->off;
    } else if (fl->l_whence == SEEK_END) {
        struct stat st;
        int err = f->ops->stat(sb, f, &st);
        if (err < 0)
            return err;
        base = st.st_size;
    } else if (fl->l_whence != SEEK_SET) {
        return -EINVAL;
    }
    int64_t start, end;
    if (__builtin_add_overflow(base, fl->l_start, &start))
        return -EOVERFLOW;
    if (fl->l_len > 0) {
        if (__builtin_add_overflow(start, fl->l_len - 1, &end))
            return -EOVERFLOW;
    } else if (fl->l_len < 0) {
        end = start - 1;
        start += fl->l_len;
    } else {
        end = -1; /* to the end of the file, whatever it grows to */
    }
    if (start < 0)
        return -EINVAL;
    out->start = (uint64_t)start;
    out->end = end < 0 ? UINT64_MAX : (uint64_t)end;
    return 0;
}

int64_t sysf_fcntl_lock(struct sandbox *sb, struct file *f, int cmd, gva_t arg) {
    struct flock fl;
    if (mm_copy_from(&sb->mm, &fl, arg, sizeof(fl)) < 0)
        return -EFAULT;
    bool ofd = cmd == F_OFD_GETLK || cmd == F_OFD_SETLK || cmd == F_OFD_SETLKW;
    if (ofd && fl.l_pid != 0)
        return -EINVAL;
    if (fl.l_type != F_RDLCK && fl.l_type != F_WRLCK && fl.l_type != F_UNLCK)
        return -EINVAL;
    struct file_lock want = {.node = f->node,
                             .kind = ofd ? LOCK_OFD : LOCK_RECORD,
                             .pid = sb->pid,
                             .file = f,
                             .type = fl.l_type};
    int err = flock_range(sb, f, &fl, &want);
    if (err < 0)
        return err;
    if (cmd == F_GETLK || cmd == F_OFD_GETLK) {
        struct file_lock held;
        if (!f->node || want.type == F_UNLCK || !file_locks_conflict(sb, &want, &held)) {
            fl.l_type = F_UNLCK;
        } else {
            fl.l_type = held.type;
            fl.l_whence = SEEK_SET;
            fl.l_start = (off_t)held.start;
            fl.l_len = held.end == UINT64_MAX ? 0 : (off_t)(held.end - held.start + 1);
            fl.l_pid = held.kind == LOCK_RECORD ? (pid_t)held.pid : -1;
        }
        return mm_copy_to(&sb->mm, arg, &fl, sizeof(fl)) < 0 ? -EFAULT : 0;
    }
    if ((fl.l_type == F_RDLCK && !sysf_can_read(f)) || (fl.l_type == F_WRLCK && !sysf_can_write(f)))
        return -EBADF;
    return take(sb, f, &want, cmd == F_SETLKW || cmd == F_OFD_SETLKW);
}

int64_t sysf_flock(struct sandbox *sb, const uint64_t a[6]) {
    struct file *f = sys_fd_file(sb, a[0]);
    if (!f || (f->flags & O_PATH))
        return -EBADF;
    int op = (int)(a[1] & ~(uint64_t)LOCK_NB);
    if (a[1] > INT32_MAX || (op != LOCK_SH && op != LOCK_EX && op != LOCK_UN))
        return -EINVAL;
    struct file_lock want = {.node = f->node,
                             .kind = LOCK_FLOCK,
                             .pid = sb->pid,
                             .file = f,
                             .type = op == LOCK_SH   ? F_RDLCK
                                     : op == LOCK_EX ? F_WRLCK
                                                     : F_UNLCK,
                             .start = 0,
                             .end = UINT64_MAX};
    return take(sb, f, &want, !(a[1] & LOCK_NB));
}
