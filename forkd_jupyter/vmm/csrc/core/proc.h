/* The processes of one sandbox. The first is the program the sandbox was
 * spawned with; every process it or its descendants make (fork, vfork,
 * clone without CLONE_VM) is a struct sandbox of its own with a VM of its
 * own. The processes of a sandbox share one lock (their big_lock), one
 * space of process and thread ids, the wake-ups of file waits (a pipe
 * between two processes wakes either side) and the writable layer.
 *
 * Invariants: a slot's sb is set while that process's VMM state exists;
 * every process but the first is freed (its host threads ended) before the
 * first one's run returns; a zombie keeps only its slot. */
#ifndef PROC_H
#define PROC_H

#include "core/sandbox.h"

/* At most this many processes at once (zombies included): then fork and
 * clone fail with EAGAIN. Enough for CPython's own multiprocessing suite
 * (100 processes at once); a fork bomb stops here. */
#define SB_MAX_PROCS 128

struct sb_proc_slot {
    struct sandbox *sb; /* NULL for a zombie, or once its VMM state is freed */
    uint32_t pid, ppid, pgid, sid;
    bool used;
    bool zombie;     /* ended, not yet waited for */
    bool reaped;     /* waited for (or nobody would): the slot goes with its VMM state */
    int wait_status; /* valid for a zombie: wait4's encoding */
    struct sb_usage usage; /* valid for a zombie: its own use with its waited children's */
};

struct sb_procs {
    pthread_mutex_t lock;   /* big_lock of every process */
    pthread_cond_t changed; /* a process's host side ended (hosted dropped) */
    struct sandbox *first;
    struct sb_proc_slot slot[SB_MAX_PROCS];
    unsigned hosted;             /* processes besides the first whose host threads run */
    uint32_t next_id;            /* the next process or thread id */
    _Atomic uint64_t notify_seq; /* bumped when a file's readiness may have changed */
    struct sb_shm *shm;          /* shared objects of layer files (core/shm.c) */
    struct sock *sockets;        /* bound sockets, a list owned by their files (file/sock.h) */
    uint16_t next_port;          /* where the search for a free ephemeral port starts */
    struct pty *ptys; /* pseudo-terminal pairs, a list owned by their files (file/pty.h) */
    struct file_lock *locks; /* advisory file locks (core/file_locks.h) */
    struct sysv_table *sysv; /* System V shared memory (core/sysv_shm.h), NULL until used */
    size_t n_locks, cap_locks;
    /* Set by run/: the host thread of a new process's main thread. */
    void *(*process_main)(void *main_thread);
    /* Set by snap/: fills a forked child's RAM with a copy of its parent's
     * (copy-on-write), under big_lock on the parent's vCPU thread. */
    int (*fork_memory)(struct sandbox *parent, struct sandbox *child);
    /* Set by snap/ when it restores processes: frees those that never
     * started (a branch freed before it ran, or whose spawn failed); called
     * by sandbox_free of the first. */
    void (*drop_unstarted)(struct sandbox *first);
};

/* A new set of processes whose first is sb (sb->procs, sb->big_lock); -errno. */
int sb_procs_new(struct sandbox *sb, uint32_t pid);
/* The first process's part: the set is freed with it. */
void sb_procs_free(struct sb_procs *p);
/* A new process or thread id. */
uint32_t sb_new_id(struct sandbox *sb);
/* A process that runs: neither a zombie nor reaped. */
bool sb_proc_slot_live(const struct sb_proc_slot *s);
/* The live (not zombie) process pid, or NULL. */
struct sandbox *sb_proc_find(struct sandbox *sb, uint32_t pid);
/* The slot of the process itself. */
struct sb_proc_slot *sb_proc_self(struct sandbox *sb);
/* The slot in use for pid, or NULL. */
struct sb_proc_slot *sb_proc_slot_of(struct sb_procs *p, uint32_t pid);
/* The live process a /proc path names ("/proc/self/...", "/proc/<pid>/...",
 * any process of sb's sandbox), *rest set to what follows its directory
 * ("" for the directory itself); NULL when there is none. */
struct sandbox *sb_proc_of_path(struct sandbox *sb, const char *path, const char **rest);
/* Processes besides sb that are alive or zombies. */
unsigned sb_proc_others(struct sandbox *sb);

/* Ends a process, every thread: exit_group status, or death by signal. The
 * first process's end reaches the host (an exit frame) and kills the rest;
 * another's is seen by its parent once its host side is done
 * (sb_proc_ended). */
void sb_exit(struct sandbox *sb, int status, int fatal_signal, const char *why);
/* A process besides the first ended and its files are closed: it becomes
 * a zombie its parent may wait for (SIGCHLD), or, its parent ignoring
 * SIGCHLD (or gone), is reaped at once; its children are orphans. */
void sb_proc_ended(struct sandbox *sb);
/* Whether sb's end leaves a zombie (its parent lives and takes SIGCHLD). */
bool sb_proc_leaves_zombie(struct sandbox *sb);
/* wait4's encoding of an ended process's status. */
int sb_proc_wait_status(const struct sandbox *sb);

/* Queues signo for the whole process target and kicks its threads (its
 * own vCPU threads deliver it). */
void sb_proc_signal(struct sandbox *target, int signo);
/* SIGKILL to every process of first's sandbox but first. */
void sb_proc_kill_others(struct sandbox *first);

/* wait4/waitid: finds a child of sb that ended, matching which (> 0 a pid,
 * -1 any, 0 sb's group, < -1 the group -which). 1 and *pid, *status,
 * *usage when one did (reaped unless keep; a reaped child's usage is added
 * to sb's children), 0 when none did yet, -ECHILD when there is none. */
int sb_proc_reap(struct sandbox *sb, int64_t which, bool keep, uint32_t *pid, int *status,
                 struct sb_usage *usage);
/* kill(2) to other processes: which as for reap (-1: all but the first);
 * signo 0 only checks. Handles which == sb's own pid too. -ESRCH. */
int sb_proc_kill(struct sandbox *sb, int64_t which, int signo);
/* setpgid(pid, pgid) and setsid(). */
int sb_proc_setpgid(struct sandbox *sb, uint32_t pid, uint32_t pgid);
int64_t sb_proc_setsid(struct sandbox *sb);

/* A child process of parent (copies of its signal actions, mask, fds
 * sharing its open files, its view of the writable layer), in the table,
 * with no VM yet; NULL and *err. */
struct sandbox *sb_proc_child(struct sandbox *parent, int *err);
/* Undoes sb_proc_child for a child that never ran. */
void sb_proc_discard(struct sandbox *child);
/* Starts the child's main thread; -errno (the child is then discarded). */
int sb_proc_start(struct sandbox *child);
/* A vfork child lets its parent go (it execs or ends): the pages it wrote
 * in the parent's memory count as the parent's. */
void sb_proc_vfork_release(struct sandbox *child);
/* A restored process none of whose threads started yet (its main thread
 * is new and has no host thread): started with the first, or freed with it. */
bool sb_proc_unstarted(const struct sandbox *sb);
/* Processes restored with a branch (snap/) start with its first: their
 * threads' host threads, under big_lock; -errno. */
int sb_procs_start_restored(struct sandbox *first);
/* The host side of a process besides the first ended: frees it. Called by
 * its main host thread, every other joined or ending. */
void sb_proc_finish(struct sandbox *sb);
/* The first process ended: every other one is killed and freed. */
void sb_procs_end(struct sandbox *first);

#endif
