/* execve: a process replaces its program. The new program gets a new VM
 * (fresh memory, the same size), loaded as at spawn; files marked
 * close-on-exec close, handled signals return to their default action.
 * A vfork child lets its parent go here.
 *
 * What runs: an x86-64 ELF of the view, a read-only host file or one the
 * guest wrote in its layer (a program it compiled, a venv's copied
 * interpreter), with the dynamic loader it names, found in the view too;
 * or a "#!" script whose interpreter is one, up to four interpreters deep. */
#define _GNU_SOURCE
#include "core/exec.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/file_locks.h"
#include "core/proc.h"
#include "core/shm.h"
#include "core/sysv_shm.h"
#include "fs/fs_memfs.h"
#include "fs/view_impl.h"

#define EXEC_MAX_STRINGS (1u << 16)
#define EXEC_MAX_BYTES (2u << 20) /* argv and envp together, as ARG_MAX */
#define EXEC_MAX_INTERP 4
#define SA_ONSTACK_ 0x08000000ULL

/* A NULL-terminated vector of strings copied out of the guest. */
struct strv {
    char **v;
    size_t n, cap, bytes;
};

static void strv_free(struct strv *s) {
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof(*s));
}

static int strv_insert(struct strv *s, size_t at, const char *str) {
    size_t len = strlen(str) + 1;
    if (s->n + 2 > EXEC_MAX_STRINGS || s->bytes + len > EXEC_MAX_BYTES)
        return -E2BIG;
    if (s->n + 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        char **v = realloc(s->v, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        s->v = v;
        s->cap = cap;
    }
    char *copy = strdup(str);
    if (!copy)
        return -ENOMEM;
    memmove(&s->v[at + 1], &s->v[at], (s->n - at) * sizeof(*s->v));
    s->v[at] = copy;
    s->n++;
    s->v[s->n] = NULL;
    s->bytes += len;
    return 0;
}

static void strv_drop_first(struct strv *s) {
    if (!s->n)
        return;
    s->bytes -= strlen(s->v[0]) + 1;
    free(s->v[0]);
    memmove(s->v, s->v + 1, s->n * sizeof(*s->v)); /* the NULL moves too */
    s->n--;
}

static int strv_from_guest(struct sandbox *sb, gva_t addr, struct strv *s, size_t *total) {
    char *buf = malloc(EXEC_MAX_BYTES);
    if (!buf)
        return -ENOMEM;
    int err = 0;
    for (size_t i = 0; addr && err == 0; i++) {
        uint64_t p;
        if (mm_copy_from(&sb->mm, &p, addr + i * 8, 8) < 0) {
            err = -EFAULT;
            break;
        }
        if (!p)
            break;
        int len = mm_copy_string(&sb->mm, buf, p, EXEC_MAX_BYTES - *total);
        if (len < 0) {
            err = len == -ENAMETOOLONG ? -E2BIG : len;
            break;
        }
        *total += (size_t)len + 1;
        err = strv_insert(s, s->n, buf);
    }
    free(buf);
    return err;
}

/* The file at path (resolved from the cwd) if it may be executed: a
 * regular file with an execute bit, a host file of the view or a file of
 * the writable layer. n needs view_node_release after success. */
static int resolve_program(struct sandbox *sb, const char *path, struct view_node *n,
                           struct stat *st) {
    int err = view_resolve(sb->view, fs_view_cwd(sb->view), path, true, n);
    if (err < 0)
        return err;
    if (n->kind == VK_NONE)
        err = -ENOENT;
    else if (n->kind != VK_HOST && n->kind != VK_LAYER)
        err = -EACCES;
    else if ((err = view_stat(sb->view, n, st)) == 0 &&
             (!S_ISREG(st->st_mode) || !(st->st_mode & 0111)))
        err = -EACCES;
    if (err < 0)
        view_node_release(sb->view, n);
    return err;
}

/* A layer file's content in a memfd of its own: the loader reads a file
 * descriptor, and the layer's file may change or go while it loads. */
static int copy_out_of_layer(struct sandbox *sb, struct memfs_node *node, uint64_t size) {
    int fd = memfd_create("forkd-exec", MFD_CLOEXEC);
    int err = fd < 0 ? -errno : sb_shm_copy_file(sb, node, fd, size);
    if (err < 0 && fd >= 0)
        close(fd);
    return err < 0 ? err : fd;
}

/* The program at path opened for loading, and in name the path the guest
 * knows it by: a host file's host path (the guest sees read-only roots at
 * their host paths), a layer file's guest path. An fd or -errno. */
static int open_program(struct sandbox *sb, const char *path, char *name) {
    struct view_node n;
    struct stat st;
    int err = resolve_program(sb, path, &n, &st);
    if (err < 0)
        return err;
    int fd;
    if (n.kind == VK_HOST) {
        fd = view_open_host(&n, &st);
        strcpy(name, n.host);
    } else {
        fd = copy_out_of_layer(sb, n.node, (uint64_t)st.st_size);
        strcpy(name, n.path);
    }
    view_node_release(sb->view, &n);
    return fd;
}

/* program_source.open_interp: the dynamic loader, through the view. */
static int open_interp_in_view(void *ctx, const char *interp) {
    char name[PATH_MAX];
    return open_program(ctx, interp, name);
}

/* The first bytes of the program at path, to tell a script. */
static int read_head(struct sandbox *sb, const char *path, char *head, size_t cap, size_t *got) {
    struct view_node n;
    struct stat st;
    int err = resolve_program(sb, path, &n, &st);
    if (err < 0)
        return err;
    int64_t r;
    if (n.kind == VK_HOST) {
        int fd = view_open_host(&n, &st);
        r = fd < 0 ? fd : pread(fd, head, cap, 0);
        if (r < 0 && fd >= 0)
            r = -errno;
        if (fd >= 0)
            close(fd);
    } else {
        r = sb_shm_pread(sb, n.node, head, cap, 0);
    }
    view_node_release(sb->view, &n);
    *got = r < 0 ? 0 : (size_t)r;
    return r < 0 ? (int)r : 0;
}

/* "#!interp [arg]" at the start of head: argv becomes interp [arg] path
 * argv[1:]. 1 when it was a script, 0 when not, -errno. */
static int take_script(char *head, size_t got, const char *path, struct strv *argv, char *next) {
    if (got < 2 || head[0] != '#' || head[1] != '!')
        return 0;
    head[got < 255 ? got : 255] = 0;
    char *end = strchr(head, '\n');
    if (!end)
        return -ENOEXEC;
    *end = 0;
    char *interp = head + 2;
    interp += strspn(interp, " \t");
    char *arg = interp + strcspn(interp, " \t");
    if (*arg) {
        *arg++ = 0;
        arg += strspn(arg, " \t");
        for (char *e = arg + strlen(arg);
             e > arg && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r');)
            *--e = 0;
    }
    if (!*interp)
        return -ENOEXEC;
    strv_drop_first(argv);
    int err = strv_insert(argv, 0, path);
    if (err == 0 && *arg)
        err = strv_insert(argv, 0, arg);
    if (err == 0)
        err = strv_insert(argv, 0, interp);
    strcpy(next, interp);
    return err < 0 ? err : 1;
}

/* After the new program is in place: what execve resets. */
static void reset_for_exec(struct sandbox *sb, const char *exe) {
    for (int fd = 0; fd < sb->fdt.cap; fd++)
        if (sb->fdt.slots[fd].f && sb->fdt.slots[fd].cloexec)
            file_locks_closing(sb, sb->fdt.slots[fd].f);
    fdt_close_on_exec(&sb->fdt);
    for (int s = 1; s < SB_NSIG; s++) {
        struct sb_sigaction *a = &sb->sig.act[s];
        if (a->handler > 1) /* handled: back to the default; ignored stays ignored */
            memset(a, 0, sizeof(*a));
        a->flags &= ~SA_ONSTACK_;
    }
    struct sb_thread *t = sb->threads[0];
    t->sig.altstack_sp = 0;
    t->sig.altstack_size = 0;
    t->sig.altstack_flags = 2; /* SS_DISABLE */
    t->clear_child_tid = 0;
    t->robust_list = 0;
    t->comm[0] = 0; /* named after the new program */
    sysv_detach_all(sb);
    sb->prctl.keep_caps = false;
    snprintf(sb->exe_path, sizeof(sb->exe_path), "%s", exe);
    (void)fs_view_set_exe(sb->view, exe);
}

/* Replaces sb's VM and address space with a fresh one running exe. */
static int load_new_program(struct sandbox *sb, const struct program_source *exe, struct strv *argv,
                            struct strv *envp) {
    struct kvm_vm nvm;
    struct mm nmm;
    int err = kvm_vm_create(&nvm, sb->vm.ram_bytes, -1);
    if (err < 0)
        return err;
    if ((err = sandbox_load_into(&nvm, &nmm, exe, (const char *const *)argv->v,
                                 (const char *const *)envp->v)) < 0) {
        mm_destroy(&nmm);
        kvm_vm_destroy(&nvm);
        return err;
    }
    /* The old program is gone from here on. */
    if (sb->lineage_release) {
        sb->lineage_release(sb);
        sb->lineage_release = NULL;
        sb->last_snap = NULL;
        sb->hint = NULL;
        sb->copier = NULL;
    }
    sb_proc_vfork_release(sb);
    mm_destroy(&sb->mm);
    pthread_mutex_lock(&sb->job_lock); /* kicks read the vCPU's run page */
    pthread_mutex_lock(&sb->calls_lock);
    kvm_vm_destroy(&sb->vm);
    sb->vm = nvm;
    pthread_mutex_unlock(&sb->calls_lock);
    pthread_mutex_unlock(&sb->job_lock);
    sb->mm = nmm;
    sb->mm.vm = &sb->vm;
    sb->call_tramps = 0; /* the old program's trampolines went with it */
    sb->call_tramps_used = sb->call_tramp_areas = 0;
    return 0;
}

int64_t sb_exec(struct sandbox *sb, const char *program, gva_t argv_addr, gva_t envp_addr) {
    if (sb == sb->procs->first)
        return -EPERM; /* the sandbox's first process is its agent */
    if (sb->live_threads > 1)
        return -EBUSY; /* documented: exec from a process with one thread */
    char path[PATH_MAX], next[PATH_MAX], head[256], name[PATH_MAX];
    if (!program[0])
        return -ENOENT;
    if (strlen(program) >= sizeof(path))
        return -ENAMETOOLONG;
    strcpy(path, program);
    struct strv argv = {0}, envp = {0};
    size_t total = 0;
    /* Both end NULL-terminated, even empty (an insert makes room for it). */
    int err = strv_insert(&argv, 0, path);
    if (err == 0 && (err = strv_insert(&envp, 0, "")) == 0) {
        strv_drop_first(&argv);
        strv_drop_first(&envp);
        if ((err = strv_from_guest(sb, argv_addr, &argv, &total)) == 0)
            err = strv_from_guest(sb, envp_addr, &envp, &total);
    }
    for (int depth = 0; err == 0; depth++) {
        size_t got = 0;
        if ((err = read_head(sb, path, head, sizeof(head), &got)) < 0)
            break;
        int script = take_script(head, got, path, &argv, next);
        if (script < 0) {
            err = script;
        } else if (script) {
            if (depth == EXEC_MAX_INTERP)
                err = -ELOOP;
            strcpy(path, next);
        } else {
            struct program_source exe = {.name = name, .open_interp = open_interp_in_view, .ctx = sb};
            if ((exe.fd = err = open_program(sb, path, name)) < 0)
                break;
            err = load_new_program(sb, &exe, &argv, &envp);
            close(exe.fd);
            if (err == 0)
                reset_for_exec(sb, name);
            break;
        }
    }
    strv_free(&argv);
    strv_free(&envp);
    return err < 0 ? err : EXEC_DONE;
}
