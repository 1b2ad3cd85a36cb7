/* A process restored from its snapshot (snapshot.h): its memory mapped
 * copy-on-write (a diff chain's layers placed over the image), its
 * registers, its other threads (not started: fj_sandbox_run starts them)
 * and its address space. For a child's first process (snap_spawn.c) and
 * every other one (snap_procs.c). */
#define _GNU_SOURCE
#include "snap/snapshot.h"

#include "api/vmm_api.h"

#include "api/snapshot_api.h" /* after vmm_api.h: it uses fj_sandbox */
#include "core/proc.h"
#include "kvm/kvm_cpu.h"
#include "snap/snap_hint.h"

/* The threads of a child (not started: fj_sandbox_run starts them). */
static int restore_threads(struct sandbox *sb, const struct snapshot *snap) {
    struct sb_thread *main_thread = sb->threads[0];
    sb->procs->next_id = snap->next_tid ? snap->next_tid : snap->pid + 1;
    sb->sig = snap->sig;
    copy_thread_signals(&main_thread->sig, &snap->sig);
    if (snap->names)
        memcpy(main_thread->comm, snap->names[0], sizeof(main_thread->comm));
    for (uint32_t i = 0; i < snap->n_threads; i++) {
        const struct snap_thread *st = &snap->threads[i];
        struct sb_thread *t = sb_thread_add(sb, st->id);
        if (!t)
            return -EINVAL;
        int err;
        if ((err = kvm_vcpu_create(&sb->vm, st->id, t->cpu)) < 0 ||
            (err = kvm_cpu_setup_vcpu(&sb->vm, t->cpu)) < 0 ||
            (err = kvm_state_restore(t->cpu, &st->cpu)) < 0)
            return err;
        t->tid = st->tid;
        t->sig = st->sig;
        t->clear_child_tid = st->clear_child_tid;
        t->robust_list = st->robust_list;
        if (snap->names)
            memcpy(t->comm, snap->names[1 + i], sizeof(t->comm));
        t->state = SB_T_NEW;
        sb->live_threads++;
    }
    return 0;
}

int snapshot_restore_process(struct sandbox *sb, struct snapshot *snap) {
    int err;
    if ((err = kvm_vm_create_cow(&sb->vm, snap->ram_bytes, snapshot_chain_root(snap)->image_fd)) <
            0 ||
        (err = snapshot_map_memory(snap, &sb->vm, SNAP_MAP_SHORT_RUNS_MAX)) < 0)
        return err;
    sb->hint = hint_get(snap->hint);
    hint_prefault(sb->hint, &sb->vm);
    sb->limits = snap->limits; /* (the fd table's limit comes with its clone) */
    sb->prctl = snap->prctl;
    if ((err = kvm_cpu_prepare(&sb->vm)) < 0 ||
        (err = kvm_state_restore(&sb->vm.vcpu, &snap->cpu)) < 0 ||
        (err = restore_threads(sb, snap)) < 0)
        return err;
    return mm_clone(&sb->mm, &snap->mm, &sb->vm);
}
