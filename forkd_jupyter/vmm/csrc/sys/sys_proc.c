/* Thread and identity system calls: uid/gid 1000, pids from a per-host
 * counter; threads run on vCPUs of their own (core/thread.c). New
 * processes and their relations are sys_process.c. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "core/proc.h"
#include "core/sandbox.h"
#include "core/sig.h"
#include "sys/sys.h"

/* Capabilities: the sandbox user has none (effective, permitted and
 * inheritable sets empty, as for any unprivileged user), may set its sets
 * to exactly that (libcap's cap_set_proc after cap_clear, as `ip` does at
 * start), and nothing more (EPERM). */
#define CAP_V1 0x19980330U /* one 32-bit set of each kind */
#define CAP_V2 0x20071026U /* two */
#define CAP_V3 0x20080522U

#define GUEST_ID 1000

static int64_t sys_getpid(struct sandbox *sb, const uint64_t a[6]) { return sb->pid; }
static int64_t sys_getid(struct sandbox *sb, const uint64_t a[6]) { return GUEST_ID; }
static int64_t sys_zero(struct sandbox *sb, const uint64_t a[6]) { return 0; }

/* An id the sandbox user may take: its own, or -1 (unchanged). */
static bool id_allowed(uint64_t id) {
    return id == GUEST_ID || id == (uint64_t)-1 || (uint32_t)id == (uint32_t)-1;
}

static int64_t sys_setid(struct sandbox *sb, const uint64_t a[6]) {
    return id_allowed(a[0]) ? 0 : -EPERM;
}

static int64_t sys_getresid(struct sandbox *sb, const uint64_t a[6]) {
    uint32_t id = GUEST_ID;
    for (int i = 0; i < 3; i++)
        if (mm_copy_to(&sb->mm, a[i], &id, sizeof(id)) < 0)
            return -EFAULT;
    return 0;
}

/* setresuid/setresgid (three ids), setreuid/setregid (two): each -1 or 1000. */
static int64_t sys_setresid(struct sandbox *sb, const uint64_t a[6]) {
    return id_allowed(a[0]) && id_allowed(a[1]) && id_allowed(a[2]) ? 0 : -EPERM;
}

static int64_t sys_setreid(struct sandbox *sb, const uint64_t a[6]) {
    return id_allowed(a[0]) && id_allowed(a[1]) ? 0 : -EPERM;
}

/* setfsuid/setfsgid answer the previous id and change nothing but to 1000. */
static int64_t sys_setfsid(struct sandbox *sb, const uint64_t a[6]) { return GUEST_ID; }

static int64_t sys_getgroups(struct sandbox *sb, const uint64_t a[6]) { return 0; }
static int64_t sys_eperm(struct sandbox *sb, const uint64_t a[6]) { return -EPERM; }

static int64_t sys_uname(struct sandbox *sb, const uint64_t a[6]) {
    struct utsname u;
    memset(&u, 0, sizeof(u));
    strcpy(u.sysname, "Linux");
    strcpy(u.nodename, "forkd-sandbox");
    struct utsname host;
    if (uname(&host) == 0) {
        memcpy(u.release, host.release, sizeof(u.release));
        memcpy(u.version, host.version, sizeof(u.version));
    }
    strcpy(u.machine, "x86_64");
    strcpy(u.domainname, "(none)");
    return mm_copy_to(&sb->mm, a[0], &u, sizeof(u));
}

static int64_t sys_gettid(struct sandbox *sb, const uint64_t a[6]) { return sb_self(sb)->tid; }

static int64_t sys_set_tid_address(struct sandbox *sb, const uint64_t a[6]) {
    struct sb_thread *t = sb_self(sb);
    t->clear_child_tid = a[0];
    return t->tid;
}

static int64_t sys_set_robust_list(struct sandbox *sb, const uint64_t a[6]) {
    if (a[1] != 24) /* sizeof(struct robust_list_head) */
        return -EINVAL;
    sb_self(sb)->robust_list = a[0];
    return 0;
}

static int64_t sys_get_robust_list(struct sandbox *sb, const uint64_t a[6]) {
    struct sb_thread *t = a[0] ? sb_thread_by_tid(sb, (uint32_t)a[0]) : sb_self(sb);
    if (!t)
        return -ESRCH;
    uint64_t head = t->robust_list, len = 24;
    if (mm_copy_to(&sb->mm, a[1], &head, 8) < 0 || mm_copy_to(&sb->mm, a[2], &len, 8) < 0)
        return -EFAULT;
    return 0;
}

static int64_t sys_exit_group(struct sandbox *sb, const uint64_t a[6]) {
    sb_exit(sb, (int)a[0], 0, "exited");
    return 0;
}

static int64_t sys_exit(struct sandbox *sb, const uint64_t a[6]) {
    sb_thread_exit(sb, (int)a[0]);
    return 0;
}

static int64_t sys_nosys(struct sandbox *sb, const uint64_t a[6]) { return -ENOSYS; }

/* The sandbox's defaults: its RAM bounds the address space (the soft
 * limit says so, the hard one is Linux's unlimited, so a program may raise
 * the soft one to it), its fd table the descriptors. */
static struct rlimit default_limit(const struct sandbox *sb, unsigned res) {
    switch (res) {
    case RLIMIT_STACK:
        return (struct rlimit){8 << 20, RLIM_INFINITY};
    case RLIMIT_NOFILE:
        return (struct rlimit){FDT_MAX, FDT_MAX};
    case RLIMIT_AS:
    case RLIMIT_DATA:
        return (struct rlimit){sb->vm.ram_bytes, RLIM_INFINITY};
    case RLIMIT_CORE:
        return (struct rlimit){0, 0};
    case RLIMIT_NPROC:
        return (struct rlimit){LAYOUT_MAX_VCPUS, LAYOUT_MAX_VCPUS};
    default:
        return (struct rlimit){RLIM_INFINITY, RLIM_INFINITY};
    }
}

struct rlimit sys_rlimit(const struct sandbox *sb, unsigned res) {
    return res < RLIM_NLIMITS && (sb->limits.rlim_set & (1u << res)) ? sb->limits.rlim[res]
                                                                     : default_limit(sb, res);
}

/* As Linux for an unprivileged process: soft above hard is EINVAL, a hard
 * limit raised EPERM. Kept limits are enforced where they bound what the
 * sandbox models (RLIMIT_AS, RLIMIT_DATA: sys_mem.c; RLIMIT_NOFILE: the fd
 * table), and read back by getrlimit, /proc and a forked child. */
static int set_rlimit(struct sandbox *sb, struct sandbox *target, unsigned res, gva_t from) {
    struct rlimit want, now = sys_rlimit(target, res);
    if (mm_copy_from(&sb->mm, &want, from, sizeof(want)) < 0)
        return -EFAULT;
    if (want.rlim_cur > want.rlim_max)
        return -EINVAL;
    if (want.rlim_max > now.rlim_max)
        return -EPERM;
    target->limits.rlim[res] = want;
    target->limits.rlim_set |= 1u << res;
    if (res == RLIMIT_NOFILE)
        target->fdt.limit = (int)FJ_MIN(want.rlim_cur, (rlim_t)FDT_MAX);
    return 0;
}

/* Any process of the sandbox (they are the same user's). Under big_lock. */
static int64_t sys_prlimit64(struct sandbox *sb, const uint64_t a[6]) {
    struct sandbox *target = a[0] == 0 ? sb : sb_proc_find(sb, (uint32_t)a[0]);
    if (!target)
        return -ESRCH;
    if (a[1] >= RLIM_NLIMITS)
        return -EINVAL;
    struct rlimit old = sys_rlimit(target, (unsigned)a[1]);
    if (a[2]) {
        int err = set_rlimit(sb, target, (unsigned)a[1], a[2]);
        if (err < 0)
            return err;
    }
    if (a[3] && mm_copy_to(&sb->mm, a[3], &old, sizeof(old)) < 0)
        return -EFAULT;
    return 0;
}

static int64_t sys_setrlimit(struct sandbox *sb, const uint64_t a[6]) {
    return a[0] >= RLIM_NLIMITS ? -EINVAL : set_rlimit(sb, sb, (unsigned)a[0], a[1]);
}

static int64_t sys_getrlimit(struct sandbox *sb, const uint64_t a[6]) {
    if (a[0] >= RLIM_NLIMITS)
        return -EINVAL;
    struct rlimit r = sys_rlimit(sb, (unsigned)a[0]);
    return mm_copy_to(&sb->mm, a[1], &r, sizeof(r));
}

/* RUSAGE_SELF and RUSAGE_THREAD: CPU time (the vCPU threads', VMM work
 * included) and the process's peak resident size; RUSAGE_CHILDREN: the
 * children waited for, with theirs (core/proc.c). */
static int64_t sys_getrusage(struct sandbox *sb, const uint64_t a[6]) {
    struct sb_usage usage = sb->children;
    switch ((int32_t)a[0]) {
    case -1: /* RUSAGE_CHILDREN */
        break;
    case 0: /* RUSAGE_SELF */
    case 1: /* RUSAGE_THREAD */
        usage.cpu_ns = a[0] ? fj_clock_ns(CLOCK_THREAD_CPUTIME_ID) : sb_process_cpu_ns(sb);
        mm_resident_bytes(&sb->mm); /* samples the peak */
        usage.maxrss_kib = sb->mm.resident_peak / 1024;
        break;
    default:
        return -EINVAL;
    }
    struct rusage ru;
    sb_usage_rusage(&usage, &ru);
    return mm_copy_to(&sb->mm, a[1], &ru, sizeof(ru));
}

static int64_t sys_sysinfo(struct sandbox *sb, const uint64_t a[6]) {
    struct sysinfo si;
    memset(&si, 0, sizeof(si));
    struct sysinfo host;
    if (sysinfo(&host) == 0) /* the host's load, as /proc/loadavg (getloadavg reads this) */
        memcpy(si.loads, host.loads, sizeof(si.loads));
    si.uptime = (long)(fj_clock_ns(CLOCK_BOOTTIME) / 1000000000ULL); /* as /proc/uptime */
    si.totalram = sb->vm.ram_bytes;
    si.freeram =
        sb->vm.ram_bytes > sb->mm.mapped_bytes ? sb->vm.ram_bytes - sb->mm.mapped_bytes : 0;
    si.procs = (unsigned short)sb->live_threads;
    si.mem_unit = 1;
    return mm_copy_to(&sb->mm, a[0], &si, sizeof(si));
}

/* The guest's threads may run on every core it has (fj_guest_cpus). */
static uint64_t guest_cpu_mask(void) {
    unsigned n = fj_guest_cpus();
    return n == 64 ? ~0ULL : (1ULL << n) - 1;
}

/* Whether tid names a live thread of a live process of the sandbox (a
 * process's main thread's tid is its pid). Under big_lock. */
static bool thread_lives(struct sandbox *sb, uint32_t tid) {
    for (unsigned k = 0; k < SB_MAX_PROCS; k++) {
        const struct sb_proc_slot *s = &sb->procs->slot[k];
        if (sb_proc_slot_live(s) && s->sb && sb_thread_by_tid(s->sb, tid))
            return true;
    }
    return false;
}

/* The thread or process a sched_* call names (0: the caller; 1: init, the
 * parent the first process sees; any live thread's id, as on Linux: glibc's
 * pthread_getschedparam passes the thread's, and libzmq's threads abort
 * when it fails): 0, `negative` for a negative id, -ESRCH when no such
 * thread or process is in the sandbox. */
static int sched_target(struct sandbox *sb, uint64_t arg, int negative) {
    int32_t pid = (int32_t)arg;
    if (pid < 0)
        return negative;
    return pid == 0 || pid == 1 /* the parent the first process sees */ ||
                   sb_proc_kill(sb, pid, 0) == 0 || thread_lives(sb, (uint32_t)pid)
               ? 0
               : -ESRCH;
}

/* The thread of this process pid names (0: the caller), or NULL. */
static struct sb_thread *own_thread(struct sandbox *sb, int32_t pid) {
    return pid == 0 ? sb_self(sb) : pid > 0 ? sb_thread_by_tid(sb, (uint32_t)pid) : NULL;
}

/* A thread's cores as sched_setaffinity left them (another process's: every
 * core). The host schedules the vCPU threads: the mask is kept, not applied. */
static int64_t sys_sched_getaffinity(struct sandbox *sb, const uint64_t a[6]) {
    struct sb_thread *t = own_thread(sb, (int32_t)a[0]);
    int err = t ? 0 : sched_target(sb, a[0], -ESRCH);
    if (err < 0)
        return err;
    if (a[1] < 8)
        return -EINVAL;
    uint64_t mask = t && t->affinity ? t->affinity : guest_cpu_mask();
    if (mm_copy_to(&sb->mm, a[2], &mask, sizeof(mask)) < 0)
        return -EFAULT;
    return 8;
}

static int64_t sys_sched_setaffinity(struct sandbox *sb, const uint64_t a[6]) {
    struct sb_thread *t = own_thread(sb, (int32_t)a[0]);
    if (!t)
        return sched_target(sb, a[0], -ESRCH); /* another process's: accepted */
    uint64_t mask = 0;
    if (a[1] && mm_copy_from(&sb->mm, &mask, a[2], FJ_MIN(a[1], sizeof(mask))) < 0)
        return -EFAULT;
    if (!(mask &= guest_cpu_mask()))
        return -EINVAL; /* no core the sandbox has */
    t->affinity = mask == guest_cpu_mask() ? 0 : mask;
    return 0;
}

/* Every process runs under SCHED_OTHER with priority 0; the real-time
 * policies need privileges the sandbox user does not have. */
#define SCHED_OTHER_ 0
#define SCHED_FIFO_ 1
#define SCHED_RR_ 2
#define SCHED_BATCH_ 3
#define SCHED_IDLE_ 5

static int64_t sys_sched_getscheduler(struct sandbox *sb, const uint64_t a[6]) {
    int err = sched_target(sb, a[0], -EINVAL);
    return err < 0 ? err : SCHED_OTHER_;
}

static int64_t sys_sched_getparam(struct sandbox *sb, const uint64_t a[6]) {
    int err = sched_target(sb, a[0], -EINVAL);
    int32_t priority = 0;
    return err < 0 ? err : mm_copy_to(&sb->mm, a[1], &priority, sizeof(priority));
}

/* setscheduler(pid, policy, param) and setparam(pid, param): priority 0
 * under a normal policy is accepted (and changes nothing). */
static int check_param(struct sandbox *sb, uint64_t policy, uint64_t param_addr) {
    int32_t priority;
    if (!param_addr || mm_copy_from(&sb->mm, &priority, param_addr, sizeof(priority)) < 0)
        return -EFAULT;
    if (policy == SCHED_FIFO_ || policy == SCHED_RR_)
        return priority < 1 || priority > 99 ? -EINVAL : -EPERM;
    if (policy != SCHED_OTHER_ && policy != SCHED_BATCH_ && policy != SCHED_IDLE_)
        return -EINVAL;
    return priority != 0 ? -EINVAL : 0;
}

static int64_t sys_sched_setscheduler(struct sandbox *sb, const uint64_t a[6]) {
    int err = sched_target(sb, a[0], -EINVAL);
    return err < 0 ? err : check_param(sb, a[1] & ~0x40000000ULL /* RESET_ON_FORK */, a[2]);
}

static int64_t sys_sched_setparam(struct sandbox *sb, const uint64_t a[6]) {
    int err = sched_target(sb, a[0], -EINVAL);
    return err < 0 ? err : check_param(sb, SCHED_OTHER_, a[1]);
}

static int64_t sys_sched_priority_max(struct sandbox *sb, const uint64_t a[6]) {
    return a[0] == SCHED_FIFO_ || a[0] == SCHED_RR_                              ? 99
           : a[0] == SCHED_OTHER_ || a[0] == SCHED_BATCH_ || a[0] == SCHED_IDLE_ ? 0
                                                                                 : -EINVAL;
}

static int64_t sys_sched_priority_min(struct sandbox *sb, const uint64_t a[6]) {
    int64_t max = sys_sched_priority_max(sb, a);
    return max > 0 ? 1 : max;
}

static int64_t sys_sched_rr_get_interval(struct sandbox *sb, const uint64_t a[6]) {
    int err = sched_target(sb, a[0], -EINVAL);
    struct timespec slice = {0, 100 * 1000 * 1000}; /* Linux's default round-robin slice */
    return err < 0 ? err : mm_copy_to(&sb->mm, a[1], &slice, sizeof(slice));
}

static int64_t sys_sched_yield(struct sandbox *sb, const uint64_t a[6]) {
    sched_yield();
    return 0;
}

static int64_t sys_getcpu(struct sandbox *sb, const uint64_t a[6]) {
    uint32_t zero = 0;
    if (a[0] && mm_copy_to(&sb->mm, a[0], &zero, 4) < 0)
        return -EFAULT;
    if (a[1] && mm_copy_to(&sb->mm, a[1], &zero, 4) < 0)
        return -EFAULT;
    return 0;
}

#define PRIO_PROCESS_ 0
#define PRIO_USER_ 2

/* The process of the sandbox getpriority/setpriority and the ioprio calls
 * name (which, who: PRIO_PROCESS and 0 or a pid), or NULL for a group or
 * user (nice 0; setting is accepted, not applied); -ESRCH/-EINVAL in *err.
 * Under big_lock (every process's). */
static struct sandbox *priority_target(struct sandbox *sb, const uint64_t a[6], int *err) {
    int32_t who = (int32_t)a[1];
    *err = a[0] > PRIO_USER_ || who < 0 ? -EINVAL : 0;
    if (*err < 0 || a[0] != PRIO_PROCESS_)
        return NULL;
    if (who == 0 || (uint32_t)who == sb->pid)
        return sb;
    for (unsigned k = 0; k < SB_MAX_PROCS; k++) {
        const struct sb_proc_slot *s = &sb->procs->slot[k];
        if (s->used && !s->zombie && s->sb && s->pid == (uint32_t)who)
            return s->sb;
    }
    *err = -ESRCH;
    return NULL;
}

/* The kernel's encoding: 20 - nice. */
static int64_t sys_getpriority(struct sandbox *sb, const uint64_t a[6]) {
    int err;
    struct sandbox *p = priority_target(sb, a, &err);
    return err < 0 ? err : 20 - (p ? p->limits.nice : 0);
}

#define IOPRIO_CLASS_RT_ 1
#define IOPRIO_CLASS_IDLE_ 3
#define IOPRIO_DEFAULT_ 4 /* class none, level 4: what Linux reports for a process that set none */

/* ioprio_get/ioprio_set (which as getpriority's, 1-3): the process's own I/O
 * priority is kept, not applied; the real-time class needs a privilege
 * (EPERM). */
static int64_t sys_ioprio_get(struct sandbox *sb, const uint64_t a[6]) {
    int err = -EINVAL;
    const uint64_t b[6] = {a[0] - 1, a[1]};
    struct sandbox *p = a[0] >= 1 ? priority_target(sb, b, &err) : NULL;
    return err < 0 ? err : p && p->limits.ioprio ? p->limits.ioprio : IOPRIO_DEFAULT_;
}

static int64_t sys_ioprio_set(struct sandbox *sb, const uint64_t a[6]) {
    int err = -EINVAL;
    const uint64_t b[6] = {a[0] - 1, a[1]};
    struct sandbox *p = a[0] >= 1 ? priority_target(sb, b, &err) : NULL;
    uint32_t cls = (uint32_t)a[2] >> 13;
    if (err == 0 && (cls > IOPRIO_CLASS_IDLE_ || ((uint32_t)a[2] & 0x1fff) > 7))
        err = -EINVAL;
    if (err == 0 && cls == IOPRIO_CLASS_RT_)
        err = -EPERM;
    if (err == 0 && p)
        p->limits.ioprio = (int)a[2];
    return err;
}

/* The sandbox user may make itself nicer, never less nice (RLIMIT_NICE is
 * 0 for it, as for an unprivileged Linux user): EACCES. */
static int64_t sys_setpriority(struct sandbox *sb, const uint64_t a[6]) {
    int err;
    struct sandbox *p = priority_target(sb, a, &err);
    if (err < 0 || !p)
        return err;
    int want = (int)(int32_t)a[2];
    want = want < -20 ? -20 : want > 19 ? 19 : want;
    if (want < p->limits.nice)
        return -EACCES;
    p->limits.nice = want;
    return 0;
}

/* Validates the header at a[0] (version, pid) as Linux does: an unknown
 * version gets the preferred one written back and EINVAL; *words: 32-bit
 * sets of each kind the version has, *pid: the process named (0: self). */
static int cap_header(struct sandbox *sb, uint64_t at, unsigned *words, int32_t *pid) {
    uint32_t h[2];
    if (mm_copy_from(&sb->mm, h, at, sizeof(h)) < 0)
        return -EFAULT;
    if (h[0] != CAP_V1 && h[0] != CAP_V2 && h[0] != CAP_V3) {
        uint32_t v3 = CAP_V3;
        return mm_copy_to(&sb->mm, at, &v3, sizeof(v3)) < 0 ? -EFAULT : -EINVAL;
    }
    *words = h[0] == CAP_V1 ? 1 : 2;
    *pid = (int32_t)h[1];
    if (*pid < 0)
        return -EINVAL;
    return *pid && *pid != (int32_t)sb->pid && sb_proc_kill(sb, *pid, 0) < 0 ? -ESRCH : 0;
}

static int64_t sys_capget(struct sandbox *sb, const uint64_t a[6]) {
    unsigned words;
    int32_t pid;
    int err = cap_header(sb, a[0], &words, &pid);
    if (!a[1]) /* a probe of the version */
        return err == -EINVAL ? 0 : err;
    if (err < 0)
        return err;
    uint32_t data[6] = {0}; /* effective, permitted, inheritable per word */
    return mm_copy_to(&sb->mm, a[1], data, words * 3 * sizeof(uint32_t));
}

static int64_t sys_capset(struct sandbox *sb, const uint64_t a[6]) {
    unsigned words;
    int32_t pid;
    int err = cap_header(sb, a[0], &words, &pid);
    if (err < 0)
        return err;
    uint32_t data[6];
    if (mm_copy_from(&sb->mm, data, a[1], words * 3 * sizeof(uint32_t)) < 0)
        return -EFAULT;
    if (pid && pid != (int32_t)sb->pid)
        return -EPERM; /* another process's: never */
    for (unsigned i = 0; i < words * 3; i++)
        if (data[i])
            return -EPERM; /* more than the empty sets */
    return 0;
}

const struct sys_entry sys_proc_entries[] = {
    {39, "getpid", sys_getpid, SYS_FULL, NULL},
    {60, "exit", sys_exit, SYS_FULL, "the thread exits; the last one ends the process"},
    {63, "uname", sys_uname, SYS_FULL, NULL},
    {97, "getrlimit", sys_getrlimit, SYS_FULL, "the process's limits (the sandbox's by default)"},
    {98, "getrusage", sys_getrusage, SYS_PARTIAL,
     "CPU time (as user time) and peak resident size; RUSAGE_CHILDREN of the children waited for"},
    {99, "sysinfo", sys_sysinfo, SYS_PARTIAL,
     "memory of the sandbox; the host's load and uptime, as /proc says"},
    {102, "getuid", sys_getid, SYS_FULL, "uid 1000"},
    {104, "getgid", sys_getid, SYS_FULL, "gid 1000"},
    {105, "setuid", sys_setid, SYS_PARTIAL, "only to 1000"},
    {106, "setgid", sys_setid, SYS_PARTIAL, "only to 1000"},
    {107, "geteuid", sys_getid, SYS_FULL, NULL},
    {108, "getegid", sys_getid, SYS_FULL, NULL},
    {113, "setreuid", sys_setreid, SYS_PARTIAL, "only to 1000"},
    {114, "setregid", sys_setreid, SYS_PARTIAL, "only to 1000"},
    {115, "getgroups", sys_getgroups, SYS_FULL, "no supplementary groups"},
    {116, "setgroups", sys_eperm, SYS_FULL, "EPERM: the sandbox user is not privileged"},
    {117, "setresuid", sys_setresid, SYS_PARTIAL, "only to 1000"},
    {119, "setresgid", sys_setresid, SYS_PARTIAL, "only to 1000"},
    {122, "setfsuid", sys_setfsid, SYS_PARTIAL, "stays 1000"},
    {123, "setfsgid", sys_setfsid, SYS_PARTIAL, "stays 1000"},
    {118, "getresuid", sys_getresid, SYS_FULL, NULL},
    {120, "getresgid", sys_getresid, SYS_FULL, NULL},
    {125, "capget", sys_capget, SYS_FULL, "no capabilities"},
    {126, "capset", sys_capset, SYS_FULL, "only to no capabilities; EPERM otherwise"},
    {135, "personality", sys_zero, SYS_STUB, NULL},
    {140, "getpriority", sys_getpriority, SYS_PARTIAL,
     "the process's nice value as setpriority left it (kept, not applied: the host schedules the "
     "vCPUs); other processes and groups: nice 0"},
    {251, "ioprio_set", sys_ioprio_set, SYS_PARTIAL,
     "the process's own I/O priority is kept, not applied; the real-time class is EPERM"},
    {252, "ioprio_get", sys_ioprio_get, SYS_PARTIAL, "what ioprio_set kept"},
    {141, "setpriority", sys_setpriority, SYS_PARTIAL,
     "the process's own nice value, which the sandbox user may only raise (EACCES to lower it); "
     "other processes and groups: accepted"},
    {160, "setrlimit", sys_setrlimit, SYS_PARTIAL,
     "kept per process (forks, branches and saved snapshots keep them); RLIMIT_AS, RLIMIT_DATA "
     "and RLIMIT_NOFILE enforced"},
    {186, "gettid", sys_gettid, SYS_FULL, NULL},
    {142, "sched_setparam", sys_sched_setparam, SYS_PARTIAL, "SCHED_OTHER, priority 0"},
    {143, "sched_getparam", sys_sched_getparam, SYS_FULL, "priority 0"},
    {144, "sched_setscheduler", sys_sched_setscheduler, SYS_PARTIAL,
     "normal policies, priority 0; real-time EPERM"},
    {145, "sched_getscheduler", sys_sched_getscheduler, SYS_FULL, "SCHED_OTHER"},
    {146, "sched_get_priority_max", sys_sched_priority_max, SYS_FULL, NULL},
    {147, "sched_get_priority_min", sys_sched_priority_min, SYS_FULL, NULL},
    {148, "sched_rr_get_interval", sys_sched_rr_get_interval, SYS_FULL, "100 ms"},
    {203, "sched_setaffinity", sys_sched_setaffinity, SYS_PARTIAL,
     "kept per thread (inherited by its threads) and read back; the host schedules the vCPUs"},
    {204, "sched_getaffinity", sys_sched_getaffinity, SYS_FULL,
     "the host's cores, or what sched_setaffinity kept"},
    {24, "sched_yield", sys_sched_yield, SYS_FULL, "yields the vCPU thread's host core"},
    {218, "set_tid_address", sys_set_tid_address, SYS_FULL, NULL},
    {231, "exit_group", sys_exit_group, SYS_FULL, NULL},
    {273, "set_robust_list", sys_set_robust_list, SYS_PARTIAL,
     "kept; not walked when a thread dies"},
    {274, "get_robust_list", sys_get_robust_list, SYS_FULL, NULL},
    {302, "prlimit64", sys_prlimit64, SYS_PARTIAL,
     "any process of the sandbox's limits, as setrlimit"},
    {309, "getcpu", sys_getcpu, SYS_FULL, NULL},
    {334, "rseq", sys_nosys, SYS_REFUSED, "glibc runs without it"},
};
const size_t sys_proc_count = FJ_ARRAY_SIZE(sys_proc_entries);
