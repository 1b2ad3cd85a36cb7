/* The sandbox API the Python layer (forkd_jupyter.vmm) calls. All functions
 * return 0 or a negative errno unless stated otherwise. */
typedef struct sandbox fj_sandbox;

struct fj_spawn_config {
    uint64_t mem_bytes;            /* guest RAM, a multiple of 2 MiB */
    const char *exe_path;          /* host path of the ELF to run (visible at the same guest path) */
    const char *const *argv;       /* NULL-terminated */
    const char *const *envp;       /* NULL-terminated */
    const char *const *ro_roots;   /* host paths the guest may read */
    size_t n_ro_roots;
    const char *agent_host_dir;    /* shown at /opt/forkd */
    const char *cwd;               /* guest working directory (in the writable layer) */
    uint64_t layer_bytes_limit;    /* bytes the writable layer may hold */
    int ctl_fd;                    /* host socket end; the sandbox dups it */
};

struct fj_sandbox_stats {
    uint64_t syscalls;
    uint64_t unsupported_syscalls;
    uint64_t fast_syscalls;        /* of syscalls, those served without a VM exit */
    uint64_t mapped_bytes;         /* guest mappings */
    uint64_t resident_bytes;       /* guest RAM the host holds for it */
    uint64_t spare_bytes;          /* of it, freed memory kept zeroed for reuse (fj_sandbox_trim) */
    uint64_t layer_bytes;          /* writable layer data */
    uint64_t uptime_ns;
    uint64_t kvm_pages_4k;         /* guest memory KVM maps, by page size (0 when unknown) */
    uint64_t kvm_pages_2m;
    int open_fds;
    int exited;
    int exit_status;
    int fatal_signal;
};

struct fj_syscall_info {
    uint32_t nr;
    const char *name;
    int level;                     /* 0 full, 1 partial, 2 stub, 3 refused */
    const char *note;
    const char *family;
    const char *fast;              /* when the poller serves it without a VM exit ("" never) */
};

int fj_sandbox_create(const struct fj_spawn_config *cfg, fj_sandbox **out);
/* Runs the guest on the calling thread until it exits; returns its exit
 * status (128 + signal when killed). */
int fj_sandbox_run(fj_sandbox *sb);
/* Any thread: queues signo for the guest and wakes it. */
int fj_sandbox_signal(fj_sandbox *sb, int signo);
/* Any thread: ends the guest (as by SIGKILL). */
int fj_sandbox_kill(fj_sandbox *sb);
/* After fj_sandbox_run returned. */
void fj_sandbox_destroy(fj_sandbox *sb);
int fj_sandbox_get_stats(fj_sandbox *sb, struct fj_sandbox_stats *out);
/* Any thread: returns to the host the memory the guest's processes freed
 * and the VMM kept for their next mappings (kvm_vm_release); the sandbox
 * calls it between requests. Returns the bytes returned. */
uint64_t fj_sandbox_trim(fj_sandbox *sb);
/* Fills up to max (number, count) pairs of unsupported calls; returns how many. */
int fj_sandbox_unsupported(fj_sandbox *sb, uint32_t *nrs, uint32_t *counts, int max);
/* Every system call the guest made, by number: how many and the VMM's time
 * serving them (ns; the VM exit itself is not in it). Returns how many
 * numbers were written (at most max). */
int fj_sandbox_syscall_profile(fj_sandbox *sb, uint32_t *nrs, uint32_t *counts, uint64_t *ns,
                               int max);
const char *fj_sandbox_exit_reason(fj_sandbox *sb);

/* The system-call table, by index 0..n-1; returns -ENOENT past the end. */
int fj_syscall_table_entry(int index, struct fj_syscall_info *out);
const char *fj_syscall_name(uint32_t nr);
