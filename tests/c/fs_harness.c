/* A guest without a VM for the files family (fs_harness.h). */
#define _GNU_SOURCE
#include "fs_harness.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/proc.h"
#include "core/shm.h"
#include "fs/fs_memfs.h"
#include "fs/fs_view.h"

int g_pass, g_fail;
struct sandbox h_sb;
static struct sb_thread h_main_thread; /* the caller of every call (sb_self) */
int h_wait_calls, h_wait_last_fd;
int64_t h_wait_last_timeout;
uint64_t h_raised;

static struct kvm_vm h_vm;
static gva_t h_top = LAYOUT_USER_MIN;
static struct fs_view_config h_cfg;
static struct sb_procs h_procs;

/* ------------------------------------------------------------ stubs */

uint64_t fj_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void kvm_vm_discard(struct kvm_vm *vm, gpa_t gpa, uint64_t len) { memset(vm->ram + gpa, 0, len); }
/* Plain memory: what is released reads as zero, nothing is kept. */
void kvm_vm_release(struct kvm_vm *vm, gpa_t gpa, uint64_t len) { memset(vm->ram + gpa, 0, len); }
void kvm_vm_reuse(struct kvm_vm *vm, gpa_t gpa, uint64_t len) {
    (void)vm, (void)gpa, (void)len;
}
/* The harness's RAM is plain memory, no VM: nothing to register. */
int kvm_vm_cover(struct kvm_vm *vm, gpa_t gpa, uint64_t len) {
    (void)vm, (void)gpa, (void)len;
    return 0;
}
/* The harness maps no shared objects over its RAM. */
void kvm_vm_drop_foreign(struct kvm_vm *vm, gpa_t gpa, uint64_t len) {
    (void)vm, (void)gpa, (void)len;
}

int sb_wait_fd(struct sandbox *sb, int host_fd, short events, int64_t timeout_ns) {
    h_wait_calls++;
    h_wait_last_fd = host_fd;
    h_wait_last_timeout = timeout_ns;
    return timeout_ns >= 0 ? -ETIMEDOUT : -EINTR;
}

bool sb_signal_pending(struct sandbox *sb) { return false; }
/* One thread: nothing else waits on its files. */
void sb_notify(struct sandbox *sb) { (void)sb; }
void sb_raise(struct sandbox *sb, int signo) { h_raised |= 1ULL << signo; }
/* No vCPU thread: sb_self is the main thread. */
_Thread_local struct sb_thread *sb_current;
_Thread_local bool sb_serving_fast;
/* One process, outside any session: no controlling terminal is taken. */
struct sb_proc_slot *sb_proc_self(struct sandbox *sb) { return NULL; }
/* One process, one thread: /proc/self is the only process directory. */
struct sandbox *sb_proc_of_path(struct sandbox *sb, const char *path, const char **rest) {
    if (strncmp(path, "/proc/self", 10) || (path[10] && path[10] != '/'))
        return NULL;
    *rest = path[10] ? path + 11 : path + 10;
    return sb;
}
bool sb_proc_slot_live(const struct sb_proc_slot *s) { return false; }
struct sandbox *sb_proc_find(struct sandbox *sb, uint32_t pid) { return NULL; }
struct sb_thread *sb_thread_by_tid(struct sandbox *sb, uint32_t tid) { return NULL; }
int sb_proc_kill(struct sandbox *sb, int64_t which, int signo) { return -ESRCH; }
/* The harness links no socket kind. */
bool file_is_socket(const struct file *f) { return false; }
struct sock *sock_of(const struct file *f) { return NULL; }
/* Nor vCPU threads: no CPU time. */
uint64_t sb_process_cpu_ns(struct sandbox *sb) { return 0; }
uint64_t sb_thread_cpu_ns(struct sandbox *sb, struct sb_thread *t) { return 0; }
void sb_ctx_switches(struct sandbox *sb, struct sb_thread *only, uint64_t out[2]) { out[0] = out[1] = 0; }
/* Nor the VM: /proc/cpuinfo keeps every flag. */
bool kvm_cpu_flag_hidden(const char *name, uint64_t xcr0) { return false; }
/* Nor shared mappings: a layer file's content is memfs's (core/shm.c). */
int64_t sb_shm_pread(struct sandbox *sb, struct memfs_node *node, void *buf, uint64_t len, uint64_t off) {
    return memfs_pread(fs_view_layer(sb->view), node, buf, len, off);
}
int64_t sb_shm_pwrite(struct sandbox *sb, struct memfs_node *node, const void *buf, uint64_t len,
                      uint64_t off) {
    return memfs_pwrite(fs_view_layer(sb->view), node, buf, len, off);
}
int sb_shm_truncate(struct sandbox *sb, struct memfs_node *node, uint64_t len) {
    return memfs_truncate(fs_view_layer(sb->view), node, len);
}

int sys_read_timespec(struct sandbox *sb, gva_t at, int64_t *ns) {
    struct timespec ts;
    if (mm_copy_from(&sb->mm, &ts, at, sizeof(ts)) < 0)
        return -EFAULT;
    if (ts.tv_sec < 0 || ts.tv_nsec < 0 || ts.tv_nsec >= 1000000000)
        return -EINVAL;
    *ns = ts.tv_sec * 1000000000LL + ts.tv_nsec;
    return 0;
}

/* ------------------------------------------------------------ set-up */

int h_init(const char *const *roots, size_t n_roots, const char *agent_dir, const char *exe) {
    h_vm.ram_bytes = H_RAM_BYTES;
    h_vm.ram = calloc(1, H_RAM_BYTES);
    if (!h_vm.ram)
        return -ENOMEM;
    h_sb.mm.vm = &h_vm;
    h_sb.procs = &h_procs; /* its pseudo-terminals and wake-ups */
    h_main_thread.sb = &h_sb;
    h_sb.threads[0] = &h_main_thread;
    h_cfg = (struct fs_view_config){.ro_roots = roots,
                                    .n_ro_roots = n_roots,
                                    .agent_host_dir = agent_dir,
                                    .exe_path = exe,
                                    .layer_bytes_limit = 256ULL << 20,
                                    .cwd = "/sandbox"};
    snprintf(h_sb.exe_path, sizeof(h_sb.exe_path), "%s", exe);
    h_sb.view = fs_view_new(&h_cfg);
    if (!h_sb.view)
        return -ENOMEM;
    return fdt_init(&h_sb.fdt);
}

void h_reset(void) {
    fdt_destroy(&h_sb.fdt);
    fs_view_free(h_sb.view);
    h_sb.view = fs_view_new(&h_cfg);
    fdt_init(&h_sb.fdt);
}

void h_use_roots(const char *const *roots, size_t n_roots) {
    h_cfg.ro_roots = roots;
    h_cfg.n_ro_roots = n_roots;
    h_reset();
}

void h_fini(void) {
    fdt_destroy(&h_sb.fdt);
    fs_view_free(h_sb.view);
    free(h_vm.ram);
}

/* ------------------------------------------------------ guest memory */

gva_t h_alloc(uint64_t len) {
    gva_t at = h_top;
    h_top = FJ_ALIGN_UP(h_top + len, 64);
    if (h_top > H_RAM_BYTES) {
        fprintf(stderr, "harness: guest memory exhausted\n");
        abort();
    }
    return at;
}

gva_t h_str(const char *s) {
    gva_t at = h_alloc(strlen(s) + 1);
    memcpy(h_vm.ram + at, s, strlen(s) + 1);
    return at;
}

void *h_ptr(gva_t at) { return h_vm.ram + at; }
gva_t h_mark(void) { return h_top; }
void h_release(gva_t mark) { h_top = mark; }

/* ------------------------------------------------------ system calls */

int64_t h_sys(uint32_t nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
              uint64_t a5) {
    const uint64_t a[6] = {a0, a1, a2, a3, a4, a5};
    const struct {
        const struct sys_entry *entries;
        size_t count;
    } files_family[] = {
        {sys_file_path_entries, sys_file_path_count},
        {sys_file_names_entries, sys_file_names_count},
        {sys_file_attr_entries, sys_file_attr_count},
        {sys_file_fd_entries, sys_file_fd_count},
    };
    for (size_t t = 0; t < sizeof(files_family) / sizeof(files_family[0]); t++)
        for (size_t i = 0; i < files_family[t].count; i++)
            if (files_family[t].entries[i].nr == nr) {
                int64_t r = files_family[t].entries[i].handler(&h_sb, a);
                sys_call_done(&h_main_thread); /* as sys_dispatch does */
                return r;
            }
    return -ENOSYS;
}

#define WITH_MARK(expr)                                                                            \
    do {                                                                                           \
        gva_t m_ = h_mark();                                                                       \
        int64_t r_ = (expr);                                                                       \
        h_release(m_);                                                                             \
        return r_;                                                                                 \
    } while (0)

int64_t g_openat(int dirfd, const char *path, int flags, unsigned mode) {
    WITH_MARK(h_sys(257, (uint64_t)dirfd, h_str(path), (uint64_t)flags, mode, 0, 0));
}

int64_t g_open(const char *path, int flags, unsigned mode) {
    return g_openat(AT_FDCWD, path, flags, mode);
}
int64_t g_close(int fd) { return h_sys(3, (uint64_t)fd, 0, 0, 0, 0, 0); }

static int64_t stat_call(uint32_t nr, int dirfd, const char *path, struct stat *st, int flags) {
    gva_t m = h_mark();
    gva_t out = h_alloc(sizeof(*st));
    int64_t r;
    if (nr == 262)
        r = h_sys(nr, (uint64_t)dirfd, path ? h_str(path) : 0, out, (uint64_t)flags, 0, 0);
    else if (nr == 5)
        r = h_sys(nr, (uint64_t)dirfd, out, 0, 0, 0, 0);
    else
        r = h_sys(nr, h_str(path), out, 0, 0, 0, 0);
    if (r == 0)
        memcpy(st, h_ptr(out), sizeof(*st));
    h_release(m);
    return r;
}

int64_t g_stat(const char *path, struct stat *st) { return stat_call(4, 0, path, st, 0); }
int64_t g_lstat(const char *path, struct stat *st) { return stat_call(6, 0, path, st, 0); }
int64_t g_fstat(int fd, struct stat *st) { return stat_call(5, fd, NULL, st, 0); }
int64_t g_fstatat(int dirfd, const char *path, struct stat *st, int flags) {
    return stat_call(262, dirfd, path, st, flags);
}

int64_t g_read(int fd, void *buf, uint64_t len) {
    gva_t m = h_mark();
    gva_t at = h_alloc(len);
    int64_t r = h_sys(0, (uint64_t)fd, at, len, 0, 0, 0);
    if (r > 0)
        memcpy(buf, h_ptr(at), (size_t)r);
    h_release(m);
    return r;
}

int64_t g_write(int fd, const void *buf, uint64_t len) {
    gva_t m = h_mark();
    gva_t at = h_alloc(len);
    memcpy(h_ptr(at), buf, len);
    int64_t r = h_sys(1, (uint64_t)fd, at, len, 0, 0, 0);
    h_release(m);
    return r;
}

int64_t g_readlink(const char *path, char *buf, uint64_t len) {
    gva_t m = h_mark();
    gva_t at = h_alloc(len);
    int64_t r = h_sys(89, h_str(path), at, len, 0, 0, 0);
    if (r >= 0) {
        memcpy(buf, h_ptr(at), (size_t)r);
        if ((uint64_t)r < len)
            buf[r] = 0;
    }
    h_release(m);
    return r;
}

int64_t g_mkdir(const char *path, unsigned mode) {
    WITH_MARK(h_sys(83, h_str(path), mode, 0, 0, 0, 0));
}
int64_t g_unlink(const char *path) { WITH_MARK(h_sys(87, h_str(path), 0, 0, 0, 0, 0)); }
int64_t g_rmdir(const char *path) { WITH_MARK(h_sys(84, h_str(path), 0, 0, 0, 0, 0)); }
int64_t g_rename(const char *from, const char *to) {
    WITH_MARK(h_sys(82, h_str(from), h_str(to), 0, 0, 0, 0));
}
int64_t g_symlink(const char *target, const char *path) {
    WITH_MARK(h_sys(88, h_str(target), h_str(path), 0, 0, 0, 0));
}
int64_t g_access(const char *path, int mode) {
    WITH_MARK(h_sys(21, h_str(path), (uint64_t)mode, 0, 0, 0, 0));
}
int64_t g_chdir(const char *path) { WITH_MARK(h_sys(80, h_str(path), 0, 0, 0, 0, 0)); }

/* ------------------------------------------------------- directories */

int64_t g_list(int fd, uint64_t bufsize, struct h_dirent *out, size_t max) {
    gva_t m = h_mark();
    gva_t at = h_alloc(bufsize);
    int64_t count = 0;
    for (int round = 0; round < 100000; round++) {
        /* Poison the buffer: records must be written whole. */
        memset(h_ptr(at), 0xa5, bufsize);
        int64_t n = h_sys(217, (uint64_t)fd, at, bufsize, 0, 0, 0);
        if (n < 0) {
            count = n;
            break;
        }
        if (n == 0)
            break;
        CHECK((uint64_t)n <= bufsize);
        const uint8_t *b = h_ptr(at);
        for (int64_t off = 0; off < n;) {
            uint16_t reclen;
            uint64_t ino;
            memcpy(&reclen, b + off + 16, 2);
            memcpy(&ino, b + off, 8);
            CHECK(off % 8 == 0);
            CHECK(reclen % 8 == 0 && reclen >= 24);
            CHECK(off + reclen <= n);
            if (reclen < 24 || off + reclen > n)
                break;
            const char *name = (const char *)b + off + 19;
            size_t nlen = strnlen(name, reclen - 19);
            CHECK(nlen < (size_t)(reclen - 19) && nlen > 0);
            if ((size_t)count < max) {
                snprintf(out[count].name, sizeof(out[count].name), "%.*s", (int)nlen, name);
                out[count].type = b[off + 18];
                out[count].ino = ino;
            }
            count++;
            off += reclen;
        }
    }
    h_release(m);
    return count;
}

int64_t g_list_path(const char *path, struct h_dirent *out, size_t max) {
    int64_t fd = g_open(path, O_RDONLY | O_DIRECTORY, 0);
    if (fd < 0)
        return fd;
    int64_t n = g_list((int)fd, 4096, out, max);
    g_close((int)fd);
    return n;
}

int h_find(const struct h_dirent *d, int64_t n, const char *name) {
    for (int64_t i = 0; i < n; i++)
        if (!strcmp(d[i].name, name))
            return (int)i;
    return -1;
}
