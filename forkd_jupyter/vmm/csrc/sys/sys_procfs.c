/* Files of /proc made when opened. A process's (/proc/self/X, or
 * /proc/<pid>/X of any live process of the sandbox, each a VM of its own:
 * ps, pgrep and psutil read every pid's): maps (the address space, with
 * file mappings named: what threadpoolctl and friends read), smaps and
 * smaps_rollup (each mapping's resident pages: psutil's USS and PSS), io
 * (the read and write families' counts), status (name, ids, threads), stat
 * and statm (resident pages as smaps counts them), cmdline and environ (read from the
 * process's memory, where exec put them, as Linux does), comm, mounts; and
 * each live thread's task/<tid>/{stat,status,comm}. The system's, as the
 * sandbox sees it: meminfo (its RAM), vmstat (the same in pages), stat (the host's CPU times, the
 * sandbox's boot time and processes), cpuinfo (the host's processors the
 * sandbox has, without the flags of features whose state the guest's XCR0
 * leaves off), uptime, loadavg, mounts, version, filesystems, and net/
 * (sys_procnet.c: the sandbox's interface and sockets). Opening
 * gives a read-only snapshot of the contents, as a private file of the
 * writable layer's kind. Every process's state is read under big_lock,
 * which guards all of the sandbox's processes. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "core/proc.h"
#include "core/sandbox.h"
#include "file/file_kinds.h"
#include "fs/fs_view.h"
#include "fs/view_impl.h"
#include "kvm/kvm_cpuid.h"
#include "sys/sys.h"
#include "sys/sys_file.h"
#include "sys/sys_procnet.h"
#include "sys/sys_text.h"

static const char *kind_name(const struct sandbox *sb, const struct mm_vma *v) {
    switch (v->kind) {
    case MM_STACK:
        return "[stack]";
    case MM_BRK:
        return "[heap]";
    default:
        return mm_name_at(&sb->mm, v->start);
    }
}

static void add_map_line(struct sandbox *sb, const struct mm_vma *v, struct text *t) {
    const char *name = kind_name(sb, v);
    text_add(t, "%08llx-%08llx %c%c%c%c 00000000 00:00 0%s%s\n", (unsigned long long)v->start,
             (unsigned long long)v->end, v->prot & PROT_READ ? 'r' : '-',
             v->prot & PROT_WRITE ? 'w' : '-', v->prot & PROT_EXEC ? 'x' : '-',
             v->kind == MM_SHARED ? 's' : 'p', name ? "                          " : "",
             name ? name : "");
}

static void render_maps(struct sandbox *sb, struct sb_thread *thread, struct text *t) {
    for (size_t i = 0; i < sb->mm.n_vmas; i++)
        add_map_line(sb, &sb->mm.vmas[i], t);
}

/* What smaps says of resident memory, in bytes: no page is swapped, locked
 * or huge; every page counts as the process's own (PSS = RSS: MAP_SHARED
 * memory shared with a forked child is counted whole by each); dirty where
 * the process may write it, clean (a file's) elsewhere. */
struct smaps_counts {
    uint64_t size, rss, private_clean, private_dirty, anonymous;
};

static void count_vma(struct sandbox *sb, const struct mm_vma *v, struct smaps_counts *c) {
    uint64_t rss = mm_range_resident(&sb->mm, v->start, v->end);
    c->size += v->end - v->start;
    c->rss += rss;
    if (v->prot & PROT_WRITE)
        c->private_dirty += rss;
    else
        c->private_clean += rss;
    if (v->kind != MM_FILE && v->kind != MM_IMAGE)
        c->anonymous += rss;
}

/* The rows of smaps and smaps_rollup in Linux 6's order: the rollup has
 * no size rows, and only it splits Pss into Anon, File and Shmem. */
enum smaps_file { SMAPS = 1, ROLLUP = 2, BOTH = 3 };

static void add_smaps_counts(const struct smaps_counts *c, enum smaps_file file, struct text *t) {
    const struct {
        const char *name;
        uint64_t bytes;
        enum smaps_file in;
    } rows[] = {
        {"Size:", c->size, SMAPS},
        {"KernelPageSize:", 4096, SMAPS},
        {"MMUPageSize:", 4096, SMAPS},
        {"Rss:", c->rss, BOTH},
        {"Pss:", c->rss, BOTH},
        {"Pss_Dirty:", c->private_dirty, BOTH},
        {"Pss_Anon:", c->anonymous, ROLLUP},
        {"Pss_File:", c->rss - c->anonymous, ROLLUP},
        {"Pss_Shmem:", 0, ROLLUP},
        {"Shared_Clean:", 0, BOTH},
        {"Shared_Dirty:", 0, BOTH},
        {"Private_Clean:", c->private_clean, BOTH},
        {"Private_Dirty:", c->private_dirty, BOTH},
        {"Referenced:", c->rss, BOTH},
        {"Anonymous:", c->anonymous, BOTH},
        {"KSM:", 0, BOTH},
        {"LazyFree:", 0, BOTH},
        {"AnonHugePages:", 0, BOTH},
        {"ShmemPmdMapped:", 0, BOTH},
        {"FilePmdMapped:", 0, BOTH},
        {"Shared_Hugetlb:", 0, BOTH},
        {"Private_Hugetlb:", 0, BOTH},
        {"Swap:", 0, BOTH},
        {"SwapPss:", 0, BOTH},
        {"Locked:", 0, BOTH},
    };
    for (size_t i = 0; i < FJ_ARRAY_SIZE(rows); i++)
        if (rows[i].in & file)
            text_add(t, "%-16s%8llu kB\n", rows[i].name,
                     (unsigned long long)(rows[i].bytes / 1024));
}

/* proc(5)'s smaps: each mapping's maps line, then its counts. */
static void render_smaps(struct sandbox *sb, struct sb_thread *thread, struct text *t) {
    for (size_t i = 0; i < sb->mm.n_vmas; i++) {
        const struct mm_vma *v = &sb->mm.vmas[i];
        struct smaps_counts c = {0};
        count_vma(sb, v, &c);
        add_map_line(sb, v, t);
        add_smaps_counts(&c, SMAPS, t);
        text_add(t, "THPeligible:    0\nVmFlags:%s%s%s mr mw me ac\n",
                 v->prot & PROT_READ ? " rd" : "", v->prot & PROT_WRITE ? " wr" : "",
                 v->prot & PROT_EXEC ? " ex" : "");
    }
}

/* The counts of every mapping summed (psutil's memory_full_info reads USS
 * and PSS here). */
static void render_smaps_rollup(struct sandbox *sb, struct sb_thread *thread, struct text *t) {
    struct smaps_counts c = {0};
    for (size_t i = 0; i < sb->mm.n_vmas; i++)
        count_vma(sb, &sb->mm.vmas[i], &c);
    gva_t lo = sb->mm.n_vmas ? sb->mm.vmas[0].start : 0;
    gva_t hi = sb->mm.n_vmas ? sb->mm.vmas[sb->mm.n_vmas - 1].end : 0;
    text_add(t, "%08llx-%08llx ---p 00000000 00:00 0                          [rollup]\n",
             (unsigned long long)lo, (unsigned long long)hi);
    add_smaps_counts(&c, ROLLUP, t);
}

/* proc(5)'s io: the read and write families' bytes and calls (sys_table.c
 * counts them); no byte reaches a storage device (the layer is memory). */
static void render_io(struct sandbox *sb, struct sb_thread *thread, struct text *t) {
    const struct sys_io_counts *io = &sb->stats.io;
    text_add(t,
             "rchar: %llu\nwchar: %llu\nsyscr: %llu\nsyscw: %llu\nread_bytes: 0\n"
             "write_bytes: 0\ncancelled_write_bytes: 0\n",
             (unsigned long long)io->rchar, (unsigned long long)io->wchar,
             (unsigned long long)io->syscr, (unsigned long long)io->syscw);
}

/* The signals whose action is SIG_IGN (handler 1) or a handler (> 1), as
 * the bit masks of /proc/<pid>/status (signal n is bit n - 1). */
static uint64_t with_action(const struct sandbox *sb, bool ignored) {
    uint64_t mask = 0;
    for (int n = 1; n < SB_NSIG; n++) {
        uint64_t h = sb->sig.act[n].handler;
        if (ignored ? h == 1 : h > 1)
            mask |= 1ULL << (n - 1);
    }
    return mask;
}

/* R while a thread of the process runs (the reader's own always does),
 * S when every live thread waits in a blocking call. */
static char state_of(const struct sandbox *sb) {
    for (unsigned i = 0; i < LAYOUT_MAX_VCPUS; i++) {
        const struct sb_thread *th = sb->threads[i];
        if (th && th->state != SB_T_EXITED && !th->waiting)
            return 'R';
    }
    return 'S';
}

/* thread: a task/<tid>/ file's thread, NULL for the process's own file. */
static void render_status(struct sandbox *sb, struct sb_thread *thread, struct text *t) {
    const struct sb_proc_slot *self = sb_proc_self(sb);
    text_add(t,
             "Name:\t%.15s\nUmask:\t%04o\nState:\t%s\nTgid:\t%u\nNgid:\t0\nPid:\t%u\nPPid:\t%u\n",
             sb_thread_name(sb, thread), sb->view ? sb->view->umask : 022,
             state_of(sb) == 'R' ? "R (running)" : "S (sleeping)", sb->pid,
             thread ? thread->tid : sb->pid, self ? self->ppid : 0);
    text_add(t, "Uid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\n");
    uint64_t rss = mm_resident_bytes(&sb->mm);
    text_add(t, "VmSize:\t%llu kB\nVmHWM:\t%llu kB\nVmRSS:\t%llu kB\nThreads:\t%u\n",
             (unsigned long long)(sb->mm.mapped_bytes / 1024),
             (unsigned long long)(sb->mm.resident_peak / 1024), (unsigned long long)(rss / 1024),
             sb->live_threads);
    const struct sb_thread *me = thread ? thread : sb_self(sb);
    text_add(t, "SigQ:\t0/63448\nSigPnd:\t%016llx\nShdPnd:\t%016llx\nSigBlk:\t%016llx\n",
             (unsigned long long)(me ? me->sig.pending : 0), (unsigned long long)sb->sig.pending,
             (unsigned long long)(me ? me->sig.blocked : 0));
    text_add(t, "SigIgn:\t%016llx\nSigCgt:\t%016llx\n", (unsigned long long)with_action(sb, true),
             (unsigned long long)with_action(sb, false));
    uint64_t switches[2];
    sb_ctx_switches(sb, thread, switches);
    text_add(t, "voluntary_ctxt_switches:\t%llu\nnonvoluntary_ctxt_switches:\t%llu\n",
             (unsigned long long)switches[0], (unsigned long long)switches[1]);
}

#define TICKS_PER_S 100 /* USER_HZ */

static uint64_t clock_ns(clockid_t c) {
    struct timespec ts;
    clock_gettime(c, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* The sandbox's RAM (each process's VM has that much) and what the
 * mappings of all its processes leave free. Under big_lock (every
 * process's). */
/* The sandbox's RAM and what its live processes' mappings use of it, in kB. */
static void memory_kb(struct sandbox *sb, uint64_t *total, uint64_t *used) {
    uint64_t mapped = 0;
    for (unsigned k = 0; k < SB_MAX_PROCS; k++) {
        const struct sandbox *p = sb->procs->slot[k].sb;
        mapped += p && sb_proc_slot_live(&sb->procs->slot[k]) ? p->mm.mapped_bytes : 0;
    }
    *total = sb->vm.ram_bytes / 1024;
    *used = FJ_MIN(FJ_MAX(mapped, sb->mm.mapped_bytes) / 1024, *total);
}

static void render_meminfo(struct sandbox *sb, struct sb_thread *thread, struct text *t) {
    uint64_t total, used;
    memory_kb(sb, &total, &used);
    static const char *const zero[] = {"Buffers",    "Cached",    "SwapCached", "Dirty",
                                       "Writeback",  "Shmem",     "Slab",       "SReclaimable",
                                       "SUnreclaim", "SwapTotal", "SwapFree"};
    text_add(t, "MemTotal:       %8llu kB\nMemFree:        %8llu kB\nMemAvailable:   %8llu kB\n",
             (unsigned long long)total, (unsigned long long)(total - used),
             (unsigned long long)(total - used));
    text_add(t, "Active:         %8llu kB\nInactive:       %8llu kB\n", (unsigned long long)used,
             0ULL);
    for (size_t i = 0; i < FJ_ARRAY_SIZE(zero); i++)
        text_add(t, "%s:%*s%8llu kB\n", zero[i], (int)(15 - strlen(zero[i])), "", 0ULL);
}

/* meminfo's figures in pages, as vmstat, psutil.swap_memory and sar read
 * them: no swap, no page cache, no paging. */
static void render_vmstat(struct sandbox *sb, struct sb_thread *thread, struct text *t) {
    uint64_t total, used;
    memory_kb(sb, &total, &used);
    unsigned long long free_pages = (total - used) / 4, used_pages = used / 4;
    text_add(t, "nr_free_pages %llu\nnr_inactive_anon 0\nnr_active_anon %llu\n", free_pages,
             used_pages);
    static const char *const zero[] = {"nr_inactive_file",    "nr_active_file",
                                       "nr_unevictable",      "nr_mlock",
                                       "nr_file_pages",       "nr_dirty",
                                       "nr_writeback",        "nr_shmem",
                                       "nr_slab_reclaimable", "nr_slab_unreclaimable"};
    for (size_t i = 0; i < FJ_ARRAY_SIZE(zero); i++)
        text_add(t, "%s 0\n", zero[i]);
    text_add(t, "nr_anon_pages %llu\nnr_mapped %llu\n", used_pages, used_pages);
    static const char *const events[] = {"pgpgin",  "pgpgout", "pswpin",
                                         "pswpout", "pgfault", "pgmajfault"};
    for (size_t i = 0; i < FJ_ARRAY_SIZE(events); i++)
        text_add(t, "%s 0\n", events[i]);
}

/* The first n lines of a host /proc file that start with prefix. */
static void add_host_lines(struct text *t, const char *host, const char *prefix, unsigned n) {
    FILE *f = fopen(host, "re");
    char line[1024];
    while (f && n && fgets(line, sizeof(line), f))
        if (!strncmp(line, prefix, strlen(prefix))) {
            text_add(t, "%s", line);
            n--;
        }
    if (f)
        fclose(f);
}

static unsigned sandbox_processes(struct sandbox *sb) {
    unsigned n = 0;
    for (unsigned k = 0; k < SB_MAX_PROCS; k++)
        n += sb_proc_slot_live(&sb->procs->slot[k]);
    return n;
}

/* CPU lines are the host's (one per core the sandbox has: its threads run
 * there); the boot time is the host's, as the guest's clocks are. */
static void render_stat(struct sandbox *sb, struct sb_thread *thread, struct text *t) {
    add_host_lines(t, "/proc/stat", "cpu", fj_guest_cpus() + 1);
    uint64_t boot_s = (clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_BOOTTIME)) / 1000000000ULL;
    text_add(t,
             "intr 0\nctxt 0\nsoftirq 0 0 0 0 0 0 0 0 0 0 0\nbtime %llu\nprocesses "
             "%u\nprocs_running 1\nprocs_blocked 0\n",
             (unsigned long long)boot_s, sb->procs->next_id);
}

static void render_uptime(struct sandbox *sb, struct sb_thread *thread, struct text *t) {
    uint64_t up = clock_ns(CLOCK_BOOTTIME) / 10000000ULL; /* centiseconds */
    text_add(t, "%llu.%02llu 0.00\n", (unsigned long long)(up / 100),
             (unsigned long long)(up % 100));
}

static void render_loadavg(struct sandbox *sb, struct sb_thread *thread, struct text *t) {
    double load[3] = {0, 0, 0};
    FILE *f = fopen("/proc/loadavg", "re");
    if (f) {
        if (fscanf(f, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3)
            load[0] = load[1] = load[2] = 0;
        fclose(f);
    }
    text_add(t, "%.2f %.2f %.2f 1/%u %u\n", load[0], load[1], load[2], sandbox_processes(sb),
             sb->procs->next_id);
}

/* What statfs says of each place (sys_file_attr.c): the layer is tmpfs. */
static const struct {
    const char *source, *point, *type, *options;
} mounts[] = {
    {"rootfs", "/", "rootfs", "ro"},
    {"proc", "/proc", "proc", "rw,nosuid,nodev,noexec"},
    {"sandbox", "/tmp", "tmpfs", "rw,nosuid,nodev"},
    {"sandbox", "/sandbox", "tmpfs", "rw,nosuid,nodev"},
    {"sandbox", "/dev/shm", "tmpfs", "rw,nosuid,nodev"},
};

static void render_mounts(struct sandbox *sb, struct sb_thread *thread, struct text *t) {
    for (size_t i = 0; i < FJ_ARRAY_SIZE(mounts); i++)
        text_add(t, "%s %s %s %s 0 0\n", mounts[i].source, mounts[i].point, mounts[i].type,
                 mounts[i].options);
}

/* proc(5)'s mountinfo of the same (df and libmount read it). */
static void render_mountinfo(struct sandbox *sb, struct sb_thread *thread, struct text *t) {
    for (size_t i = 0; i < FJ_ARRAY_SIZE(mounts); i++)
        text_add(t, "%zu %d 0:%zu / %s %s - %s %s %s\n", 20 + i, i ? 20 : 1, 20 + i,
                 mounts[i].point, mounts[i].options, mounts[i].type, mounts[i].source,
                 mounts[i].options[1] == 'o' ? "ro" : "rw");
}

/* proc(5)'s /proc/<pid>/stat: what the sandbox keeps (ids, threads, CPU
 * time, start, memory); the rest 0. */
static void render_pid_stat(struct sandbox *sb, struct sb_thread *thread, struct text *t) {
    const struct sb_proc_slot *self = sb_proc_self(sb);
    uint64_t ns = thread ? sb_thread_cpu_ns(sb, thread) : sb_process_cpu_ns(sb);
    uint64_t cpu = ns / (1000000000ULL / TICKS_PER_S);
    /* start_ns is CLOCK_MONOTONIC; proc(5) counts from boot. */
    uint64_t boot_offset = clock_ns(CLOCK_BOOTTIME) - clock_ns(CLOCK_MONOTONIC);
    uint64_t start = (sb->start_ns + boot_offset) / (1000000000ULL / TICKS_PER_S);
    uint64_t bytes = sb->mm.mapped_bytes, resident = mm_resident_bytes(&sb->mm);
    uint64_t children = thread ? 0 : sb->children.cpu_ns / (1000000000ULL / TICKS_PER_S);
    text_add(t, "%u (%.15s) %c %u %u %u 0 -1 0 0 0 0 0 %llu 0 %llu 0 20 0 %u 0 %llu %llu %llu",
             thread ? thread->tid : sb->pid, sb_thread_name(sb, thread), state_of(sb),
             self ? self->ppid : 0, self ? self->pgid : sb->pid, self ? self->sid : sb->pid,
             (unsigned long long)cpu, (unsigned long long)children, sb->live_threads,
             (unsigned long long)start, (unsigned long long)bytes,
             (unsigned long long)(resident / FJ_PAGE_SIZE));
    text_add(t, " 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n");
}

static void render_statm(struct sandbox *sb, struct sb_thread *thread, struct text *t) {
    unsigned long long pages = sb->mm.mapped_bytes / FJ_PAGE_SIZE;
    text_add(t, "%llu %llu 0 0 0 %llu 0\n", pages,
             (unsigned long long)(mm_resident_bytes(&sb->mm) / FJ_PAGE_SIZE), pages);
}

static void render_comm(struct sandbox *sb, struct sb_thread *thread, struct text *t) {
    text_add(t, "%.15s\n", sb_thread_name(sb, thread));
}

/* Bytes [start, end) of the guest's memory, NUL-separated strings as exec
 * put them (a program may have rewritten them since, as on Linux). */
static void add_guest_strings(struct sandbox *sb, gva_t start, gva_t end, struct text *t) {
    const char *p = end > start ? mm_read_ptr(&sb->mm, start, end - start) : NULL;
    if (!p)
        return;
    size_t at = t->len;
    text_add(t, "%*s", (int)(end - start), "");
    if (t->len == at + (end - start))
        memcpy(t->p + at, p, end - start);
}

/* As Linux: the argument strings; when a program wrote over their last
 * NUL (setproctitle), the title goes on into the environment's, up to a
 * NUL. */
static void render_cmdline(struct sandbox *sb, struct sb_thread *thread, struct text *t) {
    const struct mm *mm = &sb->mm;
    add_guest_strings(sb, mm->arg_start, mm->arg_end, t);
    if (!t->len || t->p[t->len - 1] == 0 || mm->env_end <= mm->env_start)
        return;
    const char *env = mm_read_ptr(&sb->mm, mm->env_start, mm->env_end - mm->env_start);
    if (env)
        add_guest_strings(sb, mm->env_start,
                          mm->env_start + strnlen(env, mm->env_end - mm->env_start), t);
}

static void render_environ(struct sandbox *sb, struct sb_thread *thread, struct text *t) {
    add_guest_strings(sb, sb->mm.env_start, sb->mm.env_end, t);
}

/* The host's processor blocks, one per core the sandbox has (its threads
 * run there), without the flags the guest cannot use (kvm_cpuid.h). */
static void render_cpuinfo(struct sandbox *sb, struct sb_thread *thread, struct text *t) {
    unsigned cores = fj_guest_cpus();
    FILE *f = fopen("/proc/cpuinfo", "re");
    char line[8192];
    unsigned processors = 0;
    while (f && fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "processor", 9) && ++processors > cores)
            break;
        if (strncmp(line, "flags", 5) || !strchr(line, ':')) {
            text_add(t, "%s", line);
            continue;
        }
        char *save = NULL, *colon = strchr(line, ':');
        *colon = 0;
        text_add(t, "%s:", line);
        for (char *w = strtok_r(colon + 1, " \n", &save); w; w = strtok_r(NULL, " \n", &save))
            if (!kvm_cpu_flag_hidden(w, sb->vm.xcr0))
                text_add(t, " %s", w);
        text_add(t, "\n");
    }
    if (f)
        fclose(f);
}

/* What uname(2) tells the guest (sys_proc.c), as a kernel version line. */
static void render_version(struct sandbox *sb, struct sb_thread *thread, struct text *t) {
    struct utsname u;
    if (uname(&u) == 0)
        text_add(t, "Linux version %s (forkd-sandbox) %s\n", u.release, u.version);
}

/* The filesystem types the sandbox's mounts use (mounts[] above). */
static void render_filesystems(struct sandbox *sb, struct sb_thread *thread, struct text *t) {
    text_add(t, "nodev\trootfs\nnodev\tproc\nnodev\ttmpfs\n");
}

enum proc_scope { PROC_SYSTEM, PROC_OWN, PROC_TASK };

struct proc_file {
    const char *name;
    enum proc_scope scope; /* /proc/<name>, /proc/self/<name>, /proc/self/task/<tid>/<name> */
    void (*render)(struct sandbox *sb, struct sb_thread *thread, struct text *t);
};

static const struct proc_file proc_files[] = {
    {"maps", PROC_OWN, render_maps},
    {"status", PROC_OWN, render_status},
    {"stat", PROC_OWN, render_pid_stat},
    {"statm", PROC_OWN, render_statm},
    {"mounts", PROC_OWN, render_mounts},
    {"mountinfo", PROC_OWN, render_mountinfo},
    {"cmdline", PROC_OWN, render_cmdline},
    {"environ", PROC_OWN, render_environ},
    {"comm", PROC_OWN, render_comm},
    {"meminfo", PROC_SYSTEM, render_meminfo},
    {"vmstat", PROC_SYSTEM, render_vmstat},
    {"stat", PROC_SYSTEM, render_stat},
    {"uptime", PROC_SYSTEM, render_uptime},
    {"loadavg", PROC_SYSTEM, render_loadavg},
    {"mounts", PROC_SYSTEM, render_mounts},
    {"cpuinfo", PROC_SYSTEM, render_cpuinfo},
    {"version", PROC_SYSTEM, render_version},
    {"filesystems", PROC_SYSTEM, render_filesystems},
    {"stat", PROC_TASK, render_pid_stat},
    {"status", PROC_TASK, render_status},
    {"comm", PROC_TASK, render_comm},
    {"smaps", PROC_OWN, render_smaps},
    {"smaps_rollup", PROC_OWN, render_smaps_rollup},
    {"io", PROC_OWN, render_io},
    {"net/dev", PROC_SYSTEM, sysf_net_dev},
    {"net/tcp", PROC_SYSTEM, sysf_net_tcp},
    {"net/tcp6", PROC_SYSTEM, sysf_net_tcp6},
    {"net/udp", PROC_SYSTEM, sysf_net_udp},
    {"net/udp6", PROC_SYSTEM, sysf_net_udp6},
    {"net/unix", PROC_SYSTEM, sysf_net_unix},
};

/* The thread named by "task/<tid>..." in rest (NULL if none lives), and in
 * *after what follows the tid. */
static struct sb_thread *task_thread(struct sandbox *target, const char *rest, const char **after) {
    char *end;
    unsigned long tid = strtoul(rest + 5, &end, 10);
    *after = end;
    return end == rest + 5 ? NULL : sb_thread_by_tid(target, (uint32_t)tid);
}

/* The synthesized file at path, or NULL; *target is the process it is of
 * (the caller for the system's files), *thread the thread of a
 * task/<tid>/ file (NULL otherwise). */
static const struct proc_file *proc_file_at(struct sandbox *sb, const char *path, size_t *index,
                                            struct sandbox **target, struct sb_thread **thread) {
    const char *leaf = NULL;
    enum proc_scope scope = PROC_OWN;
    *thread = NULL;
    if (!(*target = sb_proc_of_path(sb, path, &leaf))) {
        *target = sb;
        leaf = !strncmp(path, "/proc/", 6) ? path + 6 : NULL;
        scope = PROC_SYSTEM;
    } else if (!strncmp(leaf, "task/", 5)) {
        const char *end;
        if (!(*thread = task_thread(*target, leaf, &end)) || *end != '/')
            return NULL;
        leaf = end + 1;
        scope = PROC_TASK;
    }
    for (size_t i = 0; leaf && i < FJ_ARRAY_SIZE(proc_files); i++)
        if (proc_files[i].scope == scope && !strcmp(proc_files[i].name, leaf)) {
            *index = i;
            return &proc_files[i];
        }
    return NULL;
}

bool sysf_proc_dir_exists(struct sandbox *sb, const char *path) {
    const char *rest;
    struct sandbox *target = sb_proc_of_path(sb, path, &rest);
    if (!target || view_proc_dir(path) != VP_TASK)
        return target != NULL;
    const char *end;
    return task_thread(target, rest, &end) != NULL;
}

bool sysf_proc_file(struct sandbox *sb, const char *path, struct stat *st) {
    size_t i;
    struct sandbox *target;
    struct sb_thread *thread;
    if (!proc_file_at(sb, path, &i, &target, &thread))
        return false;
    text_stat(st, 0x70726f63 + i, 0x16 /* proc */);
    return true;
}

int64_t sysf_open_proc(struct sandbox *sb, const char *path, int flags) {
    size_t i;
    struct sandbox *target;
    struct sb_thread *thread;
    const struct proc_file *pf = proc_file_at(sb, path, &i, &target, &thread);
    if (!pf)
        return -ENOENT;
    struct text t = {0};
    pf->render(target, thread, &t);
    return text_install(sb, path, flags, &t);
}
