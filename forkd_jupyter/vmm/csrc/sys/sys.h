/* The system-call layer: handler type, the table (data), statistics.
 *
 * A handler gets the six argument registers and returns a value or -errno.
 * Handlers validate arguments before acting and translate every guest
 * pointer through mm.h. */
#ifndef SYS_H
#define SYS_H

#include "core/sandbox.h"

#include <limits.h>

typedef int64_t (*sys_handler)(struct sandbox *sb, const uint64_t a[6]);

/* The open file a descriptor argument names (any 64-bit value), or NULL.
 * It stays open until the call returns (sb_thread.in_call), even if another
 * thread closes the descriptor while this call waits. */
static inline struct file *sys_fd_file(struct sandbox *sb, uint64_t fd) {
    struct file *f = fd > INT_MAX ? NULL : fdt_get(&sb->fdt, (int)fd);
    struct sb_thread *t = sb_self(sb);
    if (f && t->n_in_call < SB_IN_CALL_FILES)
        t->in_call[t->n_in_call++] = file_get(f);
    return f;
}

/* The call t made returned: the files it named are let go (a last
 * reference closes its file now). */
static inline void sys_call_done(struct sb_thread *t) {
    while (t->n_in_call)
        file_put(t->in_call[--t->n_in_call]);
}

enum sys_support {
    SYS_FULL = 0,       /* Linux semantics within the sandbox */
    SYS_PARTIAL = 1,    /* works for what CPython uses; see note */
    SYS_STUB = 2,       /* accepted, does nothing useful (e.g. always 0) */
    SYS_REFUSED = 3,    /* fails with a specific errno by design; see note */
    SYS_UNSUPPORTED = 4 /* not in the table: ENOSYS, counted */
};

struct sys_entry {
    uint32_t nr;
    const char *name;
    sys_handler handler;
    enum sys_support level;
    const char *note;
};

/* Each family file defines its entries; sys_table.c merges them. */
extern const struct sys_entry sys_file_path_entries[];
extern const size_t sys_file_path_count;
extern const struct sys_entry sys_file_names_entries[];
extern const size_t sys_file_names_count;
extern const struct sys_entry sys_file_attr_entries[];
extern const size_t sys_file_attr_count;
extern const struct sys_entry sys_file_fd_entries[];
extern const size_t sys_file_fd_count;
extern const struct sys_entry sys_mem_entries[];
extern const size_t sys_mem_count;
extern const struct sys_entry sys_shm_entries[];
extern const size_t sys_shm_count;
extern const struct sys_entry sys_proc_entries[];
extern const size_t sys_proc_count;
extern const struct sys_entry sys_prctl_entries[];
extern const size_t sys_prctl_count;
extern const struct sys_entry sys_process_entries[];
extern const size_t sys_process_count;
extern const struct sys_entry sys_signal_entries[];
extern const size_t sys_signal_count;
extern const struct sys_entry sys_time_entries[];
extern const size_t sys_time_count;
extern const struct sys_entry sys_socket_entries[];
extern const size_t sys_socket_count;
extern const struct sys_entry sys_socket_msg_entries[];
extern const size_t sys_socket_msg_count;
extern const struct sys_entry sys_epoll_entries[];
extern const size_t sys_epoll_count;
extern const struct sys_entry sys_timerfd_entries[];
extern const size_t sys_timerfd_count;
extern const struct sys_entry sys_itimer_entries[];
extern const size_t sys_itimer_count;
extern const struct sys_entry sys_misc_entries[];
extern const size_t sys_misc_count;

const struct sys_entry *sys_lookup(uint32_t nr); /* NULL when unsupported */
/* Dispatches regs->rax; returns the value for rax. */
int64_t sys_dispatch(struct sandbox *sb, uint64_t nr, const uint64_t a[6]);
const char *sys_name(uint32_t nr); /* name even for numbers not in the table, or NULL */
/* The process's limit of resource res (sys_proc.c): setrlimit's value, or
 * the sandbox's default. */
struct rlimit sys_rlimit(const struct sandbox *sb, unsigned res);
/* Reads a guest struct timespec as nanoseconds: -EFAULT, or -EINVAL when
 * negative or not normalized. */
int sys_read_timespec(struct sandbox *sb, gva_t at, int64_t *ns);
/* mmap(2) with MAP_SHARED of the writable layer's file node from off (its
 * shared object): the address, or -errno (sys_mem.c). */
struct memfs_node;
int64_t sys_map_shared(struct sandbox *sb, gva_t addr, uint64_t len, int prot, int flags,
                       struct memfs_node *node, uint64_t off);

/* System calls without an exit (sys_fast.c): the numbers the stub offers
 * (512 bits), and whether this call may be served by the poller now. */
const uint64_t *sys_fast_offered(void);
bool sys_fast_eligible(struct sandbox *sb, uint64_t nr, const uint64_t a[6]);
/* For the compatibility table: when call nr is served that way ("" never). */
const char *sys_fast_condition(uint32_t nr);

#endif
