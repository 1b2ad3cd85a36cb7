/* New processes and their relations: fork, vfork, clone and clone3 without
 * CLONE_THREAD, execve, wait4/waitid, process groups and sessions
 * (core/proc.h). A forked child gets a VM of its own whose memory is a
 * copy-on-write snapshot of its parent's; a vfork child runs on its
 * parent's memory, the parent waiting, until it execs or ends. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>

#include "core/exec.h"
#include "core/proc.h"
#include "core/shm.h"
#include "core/sysv_shm.h"
#include "file/file_kinds.h"
#include "kvm/kvm_cpu.h"
#include "sys/sys.h"
#include "sys/sys_file.h"

#define CLONE_VM_ 0x100ULL
#define CLONE_FS_ 0x200ULL
#define CLONE_FILES_ 0x400ULL
#define CLONE_SIGHAND_ 0x800ULL
#define CLONE_PIDFD_ 0x1000ULL
#define CLONE_VFORK_ 0x4000ULL
#define CLONE_PARENT_ 0x8000ULL
#define CLONE_THREAD_ 0x10000ULL
#define CLONE_SETTLS_ 0x80000ULL
#define CLONE_PARENT_SETTID_ 0x100000ULL
#define CLONE_CHILD_CLEARTID_ 0x200000ULL
#define CLONE_CHILD_SETTID_ 0x1000000ULL
#define CLONE_NAMESPACES_                                                                          \
    0x7e020000ULL /* NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET */
#define CLONE_SHARING_ (CLONE_FS_ | CLONE_FILES_ | CLONE_SIGHAND_ | CLONE_PARENT_ | CLONE_THREAD_)

struct new_process {
    uint64_t flags;
    gva_t stack, parent_tid, child_tid, tls;
};

/* The child's VM, registers and address space: a copy (fork) or a view of
 * the parent's memory (vfork). */
static int make_child(struct sandbox *sb, struct sandbox *c, const struct new_process *np,
                      bool vfork) {
    int err;
    if (vfork) {
        /* Memory shared before is shared with what the child execs. */
        if ((err = sb_shm_promote(sb)) < 0 || (err = kvm_vm_create_borrowing(&c->vm, &sb->vm)) < 0)
            return err;
        c->vfork_parent = sb;
        sb->vfork_children++;
    } else if (!sb->procs->fork_memory) {
        return -ENOSYS;
    } else if ((err = sb->procs->fork_memory(sb, c)) < 0 ||
               (err = kvm_vm_copy_foreign(&c->vm, &sb->vm)) < 0) {
        return err; /* (shared mappings stay shared with the child) */
    }
    if ((err = kvm_cpu_prepare(&c->vm)) < 0 ||
        (err = sb_copy_cpu_state(sb_self(sb), &c->vm.vcpu, np->flags & CLONE_SETTLS_, np->stack,
                                 np->tls)) < 0 ||
        (err = mm_clone(&c->mm, &sb->mm, &c->vm)) < 0)
        return err;
    uint32_t pid = c->pid;
    if ((np->flags & CLONE_PARENT_SETTID_) && mm_copy_to(&sb->mm, np->parent_tid, &pid, 4) < 0)
        return -EFAULT;
    if ((np->flags & CLONE_CHILD_SETTID_) && mm_copy_to(&c->mm, np->child_tid, &pid, 4) < 0)
        return -EFAULT;
    if (np->flags & CLONE_CHILD_CLEARTID_)
        c->threads[0]->clear_child_tid = np->child_tid;
    if ((err = sysv_forked(sb, c)) < 0)
        return err;
    c->limits = sb->limits; /* (the fd table's limit came with it: fdt_share) */
    c->prctl = sb->prctl;
    c->prctl.pdeath_signal = 0;
    c->prctl.child_subreaper = false;
    c->threads[0]->affinity = sb_self(sb)->affinity;
    memcpy(c->threads[0]->comm, sb_self(sb)->comm, sizeof(c->threads[0]->comm));
    return 0;
}

static int64_t new_process(struct sandbox *sb, const struct new_process *np) {
    if (np->flags & (CLONE_NAMESPACES_ | CLONE_PIDFD_))
        return -EPERM; /* no namespaces to make, no pidfds */
    if (np->flags & CLONE_SHARING_)
        return -EINVAL; /* sharing files or handlers between processes: not offered */
    bool vfork = np->flags & CLONE_VFORK_;
    if ((np->flags & CLONE_VM_) && !vfork)
        return -EINVAL; /* shared memory without vfork's wait: not offered */
    int err;
    struct sandbox *c = sb_proc_child(sb, &err);
    if (!c)
        return err;
    if ((err = make_child(sb, c, np, vfork)) < 0) {
        sb_proc_discard(c);
        return err == SB_ERESTART ? err : err == -ENOMEM ? -ENOMEM : -EAGAIN;
    }
    uint32_t pid = c->pid;
    struct sb_thread *self = sb_self(sb);
    if (vfork) {
        self->vfork_waiting = true;
        c->vfork_thread = self;
    }
    if (sb_proc_start(c) < 0) {
        self->vfork_waiting = false;
        return -EAGAIN;
    }
    if (vfork)
        sb_wait_vfork(sb); /* the child runs on our memory meanwhile */
    return pid;
}

static int64_t sys_fork(struct sandbox *sb, const uint64_t a[6]) {
    return new_process(sb, &(struct new_process){0});
}

static int64_t sys_vfork(struct sandbox *sb, const uint64_t a[6]) {
    return new_process(sb, &(struct new_process){.flags = CLONE_VM_ | CLONE_VFORK_});
}

/* clone(flags, stack, parent_tid, child_tid, tls). The low byte (the
 * signal the parent gets at the child's end) is taken as SIGCHLD. */
static int64_t sys_clone(struct sandbox *sb, const uint64_t a[6]) {
    if (sb_clone_makes_thread(a[0]))
        return sb_thread_clone(sb, a[0], a[1], a[2], a[3], a[4]);
    return new_process(sb, &(struct new_process){a[0] & ~0xffULL, a[1], a[2], a[3], a[4]});
}

/* struct clone_args (uapi linux/sched.h), the fields up to tls. */
struct g_clone_args {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

static int64_t sys_clone3(struct sandbox *sb, const uint64_t a[6]) {
    struct g_clone_args ca;
    if (a[1] < sizeof(ca))
        return -EINVAL;
    if (mm_copy_from(&sb->mm, &ca, a[0], sizeof(ca)) < 0)
        return -EFAULT;
    if ((ca.stack && !ca.stack_size) || ca.exit_signal >= SB_NSIG)
        return -EINVAL;
    gva_t stack = ca.stack ? ca.stack + ca.stack_size : 0;
    if (sb_clone_makes_thread(ca.flags)) {
        if (ca.exit_signal)
            return -EINVAL;
        return sb_thread_clone(sb, ca.flags, stack, ca.parent_tid, ca.child_tid, ca.tls);
    }
    return new_process(sb,
                       &(struct new_process){ca.flags, stack, ca.parent_tid, ca.child_tid, ca.tls});
}

/* The program execve runs, as a path of the view: the path as given, or,
 * when it names an open file (fexecve's empty path with AT_EMPTY_PATH, or a
 * /proc/self/fd/N or /dev/fd/N link, which sysf_resolve_flags follows to
 * the file), the path that file was opened by. Pipes, sockets and the like
 * are not programs (EACCES). */
static int exec_path(struct sandbox *sb, int dirfd, gva_t path_addr, uint64_t flags, char *out,
                     size_t cap) {
    int len = mm_copy_string(&sb->mm, out, path_addr, cap);
    if (len < 0)
        return len;
    if (dirfd != AT_FDCWD && len > 0 && out[0] != '/')
        return -ENOSYS; /* sb_exec resolves from the working directory */
    struct view_node n;
    struct file *f;
    int err = sysf_resolve_flags(sb, dirfd, path_addr, (int)(flags & AT_EMPTY_PATH), &n, &f);
    if (err < 0)
        return err;
    if (!f) {
        view_node_release(sb->view, &n);
        return 0;
    }
    if (!f->path || file_is_pipe(f) || file_is_socket(f) || strlen(f->path) >= cap)
        return -EACCES;
    strcpy(out, f->path);
    return 0;
}

static int64_t sys_execve(struct sandbox *sb, const uint64_t a[6]) {
    char path[PATH_MAX];
    int err = exec_path(sb, AT_FDCWD, a[0], 0, path, sizeof(path));
    return err < 0 ? err : sb_exec(sb, path, a[1], a[2]);
}

/* execveat(dirfd, path, argv, envp, flags): AT_FDCWD or an absolute path,
 * or AT_EMPTY_PATH with an empty path (fexecve: the open file itself). */
static int64_t sys_execveat(struct sandbox *sb, const uint64_t a[6]) {
    if (a[4] & ~(uint64_t)(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH))
        return -EINVAL;
    char path[PATH_MAX];
    int err = exec_path(sb, (int)a[0], a[1], a[4], path, sizeof(path));
    return err < 0 ? err : sb_exec(sb, path, a[2], a[3]);
}

#define WNOHANG_ 1
#define WEXITED_ 4
#define WNOWAIT_ 0x1000000

/* Until a child matching which ended: 1 with its pid and status, 0 (nohang
 * and none yet), or -errno (-EINTR: a signal came first). */
static int wait_child(struct sandbox *sb, int64_t which, bool nohang, bool keep, uint32_t *pid,
                      int *status, struct sb_usage *usage) {
    for (;;) {
        int r = sb_proc_reap(sb, which, keep, pid, status, usage);
        if (r != 0 || nohang)
            return r;
        int w = sb_wait_fd(sb, -1, 0, -1); /* a child's end notifies */
        if (w < 0)
            return w;
    }
}

/* The child's use into the guest's struct rusage at addr; ok, or -EFAULT. */
static int64_t copy_rusage(struct sandbox *sb, uint64_t addr, const struct sb_usage *usage,
                           int64_t ok) {
    struct rusage ru;
    sb_usage_rusage(usage, &ru);
    return mm_copy_to(&sb->mm, addr, &ru, sizeof(ru)) < 0 ? -EFAULT : ok;
}

static int64_t sys_wait4(struct sandbox *sb, const uint64_t a[6]) {
    int64_t which = (int32_t)a[0];
    if (which == INT32_MIN)
        return -ESRCH;
    if (a[2] &
        ~(uint64_t)(WNOHANG_ | 2 /* WUNTRACED */ | 8 /* WCONTINUED */ | 0xe0000000 /* __W* */))
        return -EINVAL;
    uint32_t pid = 0;
    int status = 0;
    struct sb_usage usage;
    int r = wait_child(sb, which, a[2] & WNOHANG_, false, &pid, &status, &usage);
    if (r <= 0)
        return r;
    if (a[1] && mm_copy_to(&sb->mm, a[1], &status, 4) < 0)
        return -EFAULT;
    return a[3] ? copy_rusage(sb, a[3], &usage, pid) : pid;
}

/* waitid(idtype, id, infop, options, rusage): P_ALL, P_PID, P_PGID. */
static int64_t sys_waitid(struct sandbox *sb, const uint64_t a[6]) {
    int64_t which;
    switch (a[0]) {
    case 0:
        which = -1;
        break;
    case 1:
        which = (int64_t)(uint32_t)a[1];
        break;
    case 2:
        which = a[1] ? -(int64_t)(uint32_t)a[1] : 0;
        break;
    case 3: /* P_PIDFD */
        if (!fdt_get(&sb->fdt, (int)a[1]))
            return -EBADF;
        if ((which = file_pidfd_pid(fdt_get(&sb->fdt, (int)a[1]))) < 0)
            return -EINVAL;
        break;
    default:
        return -EINVAL;
    }
    if (!(a[3] & WEXITED_))
        return -EINVAL;
    uint32_t pid = 0;
    int status = 0;
    struct sb_usage usage = {0, 0}; /* none found (WNOHANG): zeros, as Linux */
    int r = wait_child(sb, which, a[3] & WNOHANG_, a[3] & WNOWAIT_, &pid, &status, &usage);
    if (r < 0)
        return r;
    struct g_siginfo si;
    memset(&si, 0, sizeof(si));
    if (r == 1)
        sig_child_info(&si, pid, status);
    if (a[2] && mm_copy_to(&sb->mm, a[2], &si, sizeof(si)) < 0)
        return -EFAULT;
    return a[4] ? copy_rusage(sb, a[4], &usage, 0) : 0;
}

static int64_t sys_getppid(struct sandbox *sb, const uint64_t a[6]) {
    struct sb_proc_slot *s = sb_proc_self(sb);
    return s ? s->ppid : 1;
}

/* The slot of pid (0: the caller). */
static struct sb_proc_slot *slot_for(struct sandbox *sb, uint32_t pid) {
    struct sandbox *p = pid == 0 || pid == sb->pid ? sb : sb_proc_find(sb, pid);
    return p ? sb_proc_self(p) : NULL;
}

static int64_t sys_getpgid(struct sandbox *sb, const uint64_t a[6]) {
    struct sb_proc_slot *s = slot_for(sb, (uint32_t)a[0]);
    return s ? (int64_t)s->pgid : -ESRCH;
}

static int64_t sys_getpgrp(struct sandbox *sb, const uint64_t a[6]) {
    struct sb_proc_slot *s = slot_for(sb, 0);
    return s ? s->pgid : sb->pid;
}

static int64_t sys_getsid(struct sandbox *sb, const uint64_t a[6]) {
    struct sb_proc_slot *s = slot_for(sb, (uint32_t)a[0]);
    return s ? (int64_t)s->sid : -ESRCH;
}

static int64_t sys_setpgid(struct sandbox *sb, const uint64_t a[6]) {
    if ((int32_t)a[1] < 0)
        return -EINVAL;
    return sb_proc_setpgid(sb, (uint32_t)a[0], (uint32_t)a[1]);
}

static int64_t sys_setsid(struct sandbox *sb, const uint64_t a[6]) { return sb_proc_setsid(sb); }

/* pidfd_open: a descriptor of a live or ended (not yet reaped) process;
 * always close-on-exec, as on Linux. */
static int64_t sys_pidfd_open(struct sandbox *sb, const uint64_t a[6]) {
    if ((a[1] & ~(uint64_t)O_NONBLOCK) || (int32_t)a[0] <= 0) /* pid_t: the low 32 bits */
        return -EINVAL;
    if (sb_proc_kill(sb, (int32_t)a[0], 0) < 0)
        return -ESRCH;
    struct file *f = file_pidfd_new((uint32_t)a[0], (int)a[1]);
    if (!f)
        return -ENOMEM;
    int fd = fdt_install(&sb->fdt, f, 0, true);
    if (fd < 0)
        file_put(f);
    return fd;
}

static int64_t sys_pidfd_send_signal(struct sandbox *sb, const uint64_t a[6]) {
    struct file *f = fdt_get(&sb->fdt, (int)a[0]);
    if (!f)
        return -EBADF;
    int64_t pid = file_pidfd_pid(f);
    if (pid < 0 && file_is_dir(f) && f->path && !strcmp(f->path, "/proc/self"))
        pid = sb->pid; /* a /proc/<pid> directory names its process too */
    if (pid < 0)
        return -EBADF;
    if (a[3] || a[1] >= 65)
        return -EINVAL;
    if (!sb_proc_find(sb, (uint32_t)pid) && pid != sb->pid)
        return -ESRCH; /* it has ended */
    return sb_proc_kill(sb, pid, (int)a[1]);
}

const struct sys_entry sys_process_entries[] = {
    {56, "clone", sys_clone, SYS_PARTIAL,
     "threads (one vCPU each, at most 127 besides the main one: then EAGAIN); processes as fork "
     "and vfork; "
     "no namespaces (EPERM), no sharing of files or handlers between processes (EINVAL)"},
    {57, "fork", sys_fork, SYS_FULL,
     "the child is a VM of its own, its memory a copy-on-write snapshot"},
    {58, "vfork", sys_vfork, SYS_FULL,
     "the child runs on the parent's memory until it execs or ends"},
    {59, "execve", sys_execve, SYS_PARTIAL,
     "ELF programs of the view (read-only host files and the writable layer's: programs "
     "compiled in the sandbox), with their dynamic loader found in the view; #! scripts; not "
     "from the sandbox's first process (EPERM) nor with other threads alive (EBUSY)"},
    {61, "wait4", sys_wait4, SYS_PARTIAL, "rusage: CPU time (as user time) and peak resident size"},
    {109, "setpgid", sys_setpgid, SYS_FULL, NULL},
    {110, "getppid", sys_getppid, SYS_FULL, "1 for the sandbox's first process and for orphans"},
    {111, "getpgrp", sys_getpgrp, SYS_FULL, NULL},
    {112, "setsid", sys_setsid, SYS_FULL, NULL},
    {121, "getpgid", sys_getpgid, SYS_FULL, NULL},
    {124, "getsid", sys_getsid, SYS_FULL, NULL},
    {247, "waitid", sys_waitid, SYS_PARTIAL, "P_ALL, P_PID, P_PGID, P_PIDFD; WEXITED"},
    {424, "pidfd_send_signal", sys_pidfd_send_signal, SYS_PARTIAL,
     "the siginfo argument is ignored"},
    {434, "pidfd_open", sys_pidfd_open, SYS_FULL, "readable once the process has ended"},
    {322, "execveat", sys_execveat, SYS_PARTIAL,
     "AT_FDCWD, an absolute path, or AT_EMPTY_PATH (fexecve)"},
    {424, "pidfd_send_signal", sys_pidfd_send_signal, SYS_PARTIAL,
     "the siginfo argument is ignored"},
    {434, "pidfd_open", sys_pidfd_open, SYS_FULL, "readable once the process has ended"},
    {435, "clone3", sys_clone3, SYS_PARTIAL, "as clone; no pidfd"},
};
const size_t sys_process_count = FJ_ARRAY_SIZE(sys_process_entries);
