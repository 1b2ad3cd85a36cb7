/* A process's life besides the first (proc.h): made by fork or vfork,
 * started on a host thread of its own, letting a vfork parent go, freed
 * when its host threads end; and the end of every process with the first.
 *
 * Invariants: a vfork child runs on its parent's memory until it lets go;
 * a process is freed only once no vfork child runs on its memory. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "core/proc.h"
#include "core/sysv_shm.h"
#include "fs/fs_view.h"

static struct sb_proc_slot *free_slot(struct sb_procs *p) {
    for (unsigned i = 0; i < SB_MAX_PROCS; i++)
        if (!p->slot[i].used)
            return &p->slot[i];
    return NULL;
}

struct sandbox *sb_proc_child(struct sandbox *parent, int *err) {
    struct sb_procs *p = parent->procs;
    struct sb_proc_slot *s = free_slot(p), *ps = sb_proc_self(parent);
    if (!s || !ps) {
        *err = -EAGAIN;
        return NULL;
    }
    struct sandbox *c = sandbox_alloc(parent->ctl_host_fd, err);
    if (!c)
        return NULL;
    c->procs = p;
    c->big_lock = &p->lock;
    c->parent = parent;
    c->pid = sb_new_id(parent);
    c->threads[0]->tid = c->pid;
    c->thread_main = parent->thread_main;
    memcpy(c->exe_path, parent->exe_path, sizeof(c->exe_path));
    c->brk_hint = parent->brk_hint;
    /* Actions are inherited, pending signals are not; the calling thread's
     * mask and alternate stack become the child's main thread's. */
    c->sig = parent->sig;
    c->sig.pending = 0;
    struct sb_thread *caller = sb_self(parent), *main_thread = c->threads[0];
    main_thread->sig = caller->sig;
    main_thread->sig.pending = 0;
    memset(main_thread->sig.fault_addr, 0, sizeof(main_thread->sig.fault_addr));
    if ((*err = fdt_share(&c->fdt, &parent->fdt)) < 0 ||
        !(c->view = fs_view_share(parent->view, c->exe_path))) {
        if (*err == 0)
            *err = -ENOMEM;
        c->procs = NULL; /* not in the table yet */
        sandbox_free(c);
        return NULL;
    }
    *s = (struct sb_proc_slot){.sb = c,
                               .pid = c->pid,
                               .ppid = parent->pid,
                               .pgid = ps->pgid,
                               .sid = ps->sid,
                               .used = true};
    return c;
}

void sb_proc_discard(struct sandbox *child) {
    struct sb_proc_slot *s = sb_proc_self(child);
    if (s)
        memset(s, 0, sizeof(*s));
    sb_proc_vfork_release(child);
    child->procs = NULL;
    sandbox_free(child);
}

int sb_proc_start(struct sandbox *child) {
    struct sb_procs *p = child->procs;
    p->hosted++;
    child->thread_main = p->process_main;
    int err = sb_thread_start(child->threads[0]);
    child->thread_main = child->parent->thread_main; /* its later threads */
    if (err < 0) {
        p->hosted--;
        child->threads[0]->state = SB_T_EXITED;
        sb_proc_discard(child);
    }
    return err;
}

bool sb_proc_unstarted(const struct sandbox *sb) {
    return sb->threads[0]->state == SB_T_NEW && !sb->threads[0]->host_started;
}

int sb_procs_start_restored(struct sandbox *first) {
    struct sb_procs *p = first->procs;
    for (unsigned i = 0; i < SB_MAX_PROCS; i++) {
        struct sandbox *c = p->slot[i].sb;
        if (!c || c == first || !sb_proc_unstarted(c))
            continue;
        int err = sb_proc_start(c); /* its main thread; on failure it is discarded */
        for (unsigned t = 1; t < LAYOUT_MAX_VCPUS && err == 0; t++)
            if (c->threads[t] && c->threads[t]->state == SB_T_NEW)
                err = sb_thread_start(c->threads[t]);
        if (err < 0)
            return err;
    }
    return 0;
}

void sb_proc_vfork_release(struct sandbox *child) {
    struct sandbox *parent = child->vfork_parent;
    if (!parent)
        return;
    /* KVM logged the child's writes in its own VM: the parent's next diff
     * snapshot must see them. */
    uint64_t *bits = calloc(1, kvm_vm_bitmap_bytes(&child->vm));
    if (bits && kvm_vm_collect_dirty(&child->vm, bits) == 0 && parent->vm.vmm_dirty)
        for (size_t i = 0; i < kvm_vm_bitmap_bytes(&child->vm) / 8; i++)
            parent->vm.vmm_dirty[i] |= bits[i];
    else if (parent->vm.vmm_dirty) /* unknown: everything counts as written */
        memset(parent->vm.vmm_dirty, 0xff, kvm_vm_bitmap_bytes(&parent->vm));
    free(bits);
    child->vfork_parent = NULL;
    parent->vfork_children--;
    if (child->vfork_thread)
        child->vfork_thread->vfork_waiting = false;
    child->vfork_thread = NULL;
    sb_kick_all(parent);
    pthread_cond_broadcast(&child->procs->changed);
}

/* Kills sb's vfork children and waits until none runs on its memory. */
static void wait_vfork_children(struct sandbox *sb) {
    struct sb_procs *p = sb->procs;
    while (sb->vfork_children) {
        for (unsigned i = 0; i < SB_MAX_PROCS; i++) {
            struct sandbox *c = p->slot[i].sb;
            if (c && c->vfork_parent == sb && !c->exited)
                sb_proc_signal(c, SIGKILL);
        }
        pthread_cond_wait(&p->changed, &p->lock);
    }
}

void sb_proc_finish(struct sandbox *sb) {
    struct sb_procs *p = sb->procs;
    pthread_mutex_lock(&p->lock);
    sb_proc_vfork_release(sb);
    wait_vfork_children(sb);
    while (sb->pins) /* a stop of every process holds it */
        pthread_cond_wait(&p->changed, &p->lock);
    /* Its files close now, before its parent can see it ended (as on
     * Linux): a pipe's other end sees EOF, its locks are free. */
    fdt_destroy(&sb->fdt);
    sysv_detach_all(sb); /* its mappings go with its address space */
    if (sb->exited)
        sb_proc_ended(sb);
    struct sb_proc_slot *s = sb_proc_self(sb);
    if (s) {
        s->sb = NULL;
        if (s->reaped)
            s->used = false;
    }
    sb_notify(sb);
    pthread_mutex_unlock(&p->lock);
    struct sb_thread *self = sb->threads[0];
    if (self->host_started && pthread_equal(self->host, pthread_self())) {
        pthread_detach(self->host);
        self->host_started = false;
    }
    sb->procs = NULL;
    sandbox_free(sb);
    pthread_mutex_lock(&p->lock);
    p->hosted--;
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->lock);
}

void sb_procs_end(struct sandbox *first) {
    struct sb_procs *p = first->procs;
    pthread_mutex_lock(&p->lock);
    while (p->hosted) {
        sb_proc_kill_others(first);
        pthread_cond_wait(&p->changed, &p->lock);
    }
    pthread_mutex_unlock(&p->lock);
}
