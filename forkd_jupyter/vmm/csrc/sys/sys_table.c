/* The system-call table: the families' entries merged into one dispatch
 * array at first use. The table is data: docs/syscalls.md is generated from
 * it through fj_syscall_table_entry(). */
#define _GNU_SOURCE
#include <pthread.h>
#include <string.h>

#include "core/proc.h"
#include "sys/sys.h"

#include "api/vmm_api.h" /* after a header that brings <stdint.h> */

struct family {
    const char *name;
    const struct sys_entry *entries;
    const size_t *count;
};

static const struct family families[] = {
    {"files", sys_file_path_entries, &sys_file_path_count},
    {"files", sys_file_names_entries, &sys_file_names_count},
    {"files", sys_file_attr_entries, &sys_file_attr_count},
    {"files", sys_file_fd_entries, &sys_file_fd_count},
    {"memory", sys_mem_entries, &sys_mem_count},
    {"memory", sys_shm_entries, &sys_shm_count},
    {"process", sys_proc_entries, &sys_proc_count},
    {"process", sys_process_entries, &sys_process_count},
    {"process", sys_prctl_entries, &sys_prctl_count},
    {"signals", sys_signal_entries, &sys_signal_count},
    {"time", sys_time_entries, &sys_time_count},
    {"sockets", sys_socket_entries, &sys_socket_count},
    {"sockets", sys_socket_msg_entries, &sys_socket_msg_count},
    {"events", sys_epoll_entries, &sys_epoll_count},
    {"misc", sys_misc_entries, &sys_misc_count},
    {"time", sys_itimer_entries, &sys_itimer_count},
    {"time", sys_timerfd_entries, &sys_timerfd_count},
};

static const struct sys_entry *by_nr[SYS_MAX];
static const char *family_of[SYS_MAX];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void build_table(void) {
    for (size_t f = 0; f < FJ_ARRAY_SIZE(families); f++) {
        for (size_t i = 0; i < *families[f].count; i++) {
            const struct sys_entry *e = &families[f].entries[i];
            if (e->nr < SYS_MAX && !by_nr[e->nr]) {
                by_nr[e->nr] = e;
                family_of[e->nr] = families[f].name;
            }
        }
    }
}

const struct sys_entry *sys_lookup(uint32_t nr) {
    pthread_once(&table_once, build_table);
    return nr < SYS_MAX ? by_nr[nr] : NULL;
}

/* System calls that never change whether a descriptor is ready (the
 * others may, and wake threads waiting on files: sb_notify). */
static bool keeps_readiness(uint64_t nr) {
    switch (nr) {
    case 0xca:
    case 9:
    case 10:
    case 11:
    case 12:
    case 28:
    case 13:
    case 14:
    case 228:
    case 230:
    case 35:
    case 186:
    case 39:
    case 24:
    case 318:
    case 7:
    case 271:
    case 23:
    case 270:
    case 232:
    case 281:
    case 441:
    case 262:
    case 5:
    case 4:
    case 6:
    case 79:
    case 89:
    case 217:
    case 332:
    case 257:
    case 8:
    case 17:
        return true; /* futex, memory, signal masks, clocks, ids, waits, metadata, open, lseek,
                        pread */
    default:
        return false;
    }
}

/* As Linux counts them: a read-family call adds to syscr and what it read
 * to rchar, a write-family call to syscw and wchar; sendfile and
 * copy_file_range do both. */
static void count_io(struct sys_io_counts *io, uint64_t nr, int64_t ret) {
    uint64_t moved = ret > 0 ? (uint64_t)ret : 0;
    switch (nr) {
    case 0:   /* read */
    case 17:  /* pread64 */
    case 19:  /* readv */
    case 295: /* preadv */
    case 327: /* preadv2 */
        io->syscr++;
        io->rchar += moved;
        return;
    case 1:   /* write */
    case 18:  /* pwrite64 */
    case 20:  /* writev */
    case 296: /* pwritev */
    case 328: /* pwritev2 */
        io->syscw++;
        io->wchar += moved;
        return;
    case 40:  /* sendfile */
    case 326: /* copy_file_range */
        io->syscr++;
        io->syscw++;
        io->rchar += moved;
        io->wchar += moved;
        return;
    default:
        return;
    }
}

int64_t sys_dispatch(struct sandbox *sb, uint64_t nr, const uint64_t a[6]) {
    sb->stats.calls++;
    const struct sys_entry *e = nr < SYS_MAX ? sys_lookup((uint32_t)nr) : NULL;
    if (nr < SYS_MAX)
        sb->stats.per_nr[nr]++;
    if (!e || !e->handler) {
        sb->stats.unsupported_calls++;
        if (nr < SYS_MAX)
            sb->stats.unsupported_per_nr[nr]++;
        return -ENOSYS;
    }
    uint64_t start = fj_now_ns();
    struct sb_thread *t = sb_self(sb);
    int64_t ret = e->handler(sb, a);
    sys_call_done(t);
    sb->stats.ns_per_nr[nr] += fj_now_ns() - start;
    count_io(&sb->stats.io, nr, ret);
    if (!keeps_readiness(nr)) {
        if (sb->live_threads > 1 || sb->procs->hosted)
            sb_notify(sb);
        else /* nobody else waits; an EPOLLET entry still sees a change */
            atomic_fetch_add(&sb->procs->notify_seq, 1);
    }
    return ret;
}

int fj_syscall_table_entry(int index, struct fj_syscall_info *out) {
    pthread_once(&table_once, build_table);
    int seen = 0;
    for (uint32_t nr = 0; nr < SYS_MAX; nr++) {
        if (!by_nr[nr])
            continue;
        if (seen++ == index) {
            out->nr = nr;
            out->name = by_nr[nr]->name;
            out->level = by_nr[nr]->level;
            out->note = by_nr[nr]->note ? by_nr[nr]->note : "";
            out->family = family_of[nr];
            out->fast = sys_fast_condition(nr);
            return 0;
        }
    }
    return -ENOENT;
}

const char *fj_syscall_name(uint32_t nr) { return sys_name(nr); }
