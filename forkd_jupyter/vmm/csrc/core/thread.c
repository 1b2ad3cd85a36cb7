/* Guest threads (sandbox.h): clone of a thread onto a vCPU of its own, thread
 * exit, futex wake-ups. All under big_lock.
 *
 * Invariants: threads[id] runs on vCPU id for its whole life; a slot whose
 * thread exited keeps its vCPU (KVM never reuses an id) and hands it to the
 * next thread created there, once the old host thread is joined. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/proc.h"
#include "kvm/kvm_cpu.h"

#define CLONE_VM_ 0x100ULL
#define CLONE_SIGHAND_ 0x800ULL
#define CLONE_THREAD_ 0x10000ULL
#define CLONE_SETTLS_ 0x80000ULL
#define CLONE_PARENT_SETTID_ 0x100000ULL
#define CLONE_CHILD_CLEARTID_ 0x200000ULL
#define CLONE_CHILD_SETTID_ 0x1000000ULL
#define HOST_STACK_BYTES (1u << 20)

struct sb_thread *sb_thread_add(struct sandbox *sb, unsigned id)
{
    if (id >= LAYOUT_MAX_VCPUS || sb->threads[id])
        return NULL;
    struct sb_thread *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->sb = sb;
    t->id = id;
    t->own_cpu.fd = -1;
    t->cpu = id == 0 ? &sb->vm.vcpu : &t->own_cpu;
    t->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (t->wake_fd < 0) {
        free(t);
        return NULL;
    }
    sb->threads[id] = t;
    return t;
}

struct sb_thread *sb_thread_by_tid(struct sandbox *sb, uint32_t tid)
{
    for (unsigned i = 0; i < LAYOUT_MAX_VCPUS; i++) {
        struct sb_thread *t = sb->threads[i];
        if (t && t->tid == tid && t->state != SB_T_EXITED)
            return t;
    }
    return NULL;
}

/* A futex's identity: (0, address) private to a process, or (object
 * inode, offset) in shared memory. */
struct futex_key {
    uint64_t obj, at;
};

static struct futex_key key_of(struct sandbox *sb, gva_t addr)
{
    for (size_t i = 0; i < sb->vm.n_foreign; i++) {
        const struct kvm_foreign *f = &sb->vm.foreign[i];
        if (!f->detached && addr >= f->gpa && addr < f->gpa + f->len)
            return (struct futex_key){f->ino, f->off + (addr - f->gpa)};
    }
    return (struct futex_key){0, addr};
}

void sb_futex_arm(struct sandbox *sb, struct sb_thread *t, gva_t addr)
{
    struct futex_key k = key_of(sb, addr);
    t->futex_obj = k.obj;
    t->futex_addr = k.at;
}

/* t waits on the futex k and has not been woken yet. */
static bool futex_waiter(const struct sb_thread *t, struct futex_key k)
{
    return t && t->waiting && t->wait_kind == SB_WAIT_FUTEX && !t->futex_woken && t->futex_obj == k.obj &&
           t->futex_addr == k.at;
}

/* The processes whose threads may wait on k: every one for shared memory. */
static unsigned futex_procs(struct sandbox *sb, struct futex_key k, struct sandbox **out)
{
    if (!k.obj) {
        out[0] = sb;
        return 1;
    }
    unsigned n = 0;
    for (unsigned i = 0; i < SB_MAX_PROCS; i++)
        if (sb->procs->slot[i].sb)
            out[n++] = sb->procs->slot[i].sb;
    return n;
}

int sb_futex_wake(struct sandbox *sb, gva_t addr, int n, uint32_t bitset)
{
    struct futex_key k = key_of(sb, addr);
    struct sandbox *procs[SB_MAX_PROCS];
    unsigned np = futex_procs(sb, k, procs);
    int woken = 0;
    for (unsigned p = 0; p < np; p++)
        for (unsigned i = 0; i < LAYOUT_MAX_VCPUS && woken < n; i++) {
            struct sb_thread *t = procs[p]->threads[i];
            if (!futex_waiter(t, k) || !(t->futex_bitset & bitset))
                continue;
            t->futex_woken = true;
            sb_kick(t);
            woken++;
        }
    return woken;
}

int sb_futex_requeue(struct sandbox *sb, gva_t from, gva_t to, int n)
{
    struct futex_key kf = key_of(sb, from), kt = key_of(sb, to);
    struct sandbox *procs[SB_MAX_PROCS];
    unsigned np = futex_procs(sb, kf, procs);
    int moved = 0;
    for (unsigned p = 0; p < np; p++)
        for (unsigned i = 0; i < LAYOUT_MAX_VCPUS && moved < n; i++) {
            struct sb_thread *t = procs[p]->threads[i];
            if (futex_waiter(t, kf)) {
                t->futex_obj = kt.obj;
                t->futex_addr = kt.at;
                moved++;
            }
        }
    return moved;
}

/* A free slot: never used, or its thread exited and its host thread is
 * joined here (it let go of big_lock when it left its loop, so this cannot
 * wait on us). */
static struct sb_thread *free_slot(struct sandbox *sb)
{
    for (unsigned id = 1; id < LAYOUT_MAX_VCPUS; id++) {
        struct sb_thread *t = sb->threads[id];
        if (!t)
            return sb_thread_add(sb, id);
        if (t->state != SB_T_EXITED || t->unusable)
            continue;
        if (t->host_started) {
            pthread_join(t->host, NULL);
            t->host_started = false;
        }
        return t;
    }
    return NULL;
}

int sb_copy_cpu_state(struct sb_thread *parent, struct kvm_vcpu *cpu, bool set_tls, gva_t stack, gva_t tls)
{
    struct kvm_state st;
    int err = kvm_state_save(parent->cpu, &st);
    if (err < 0)
        return err;
    struct kvm_sregs own;
    if ((err = kvm_vcpu_get_sregs(cpu, &own)) < 0)
        return err;
    st.sregs.tr = own.tr;
    if (set_tls)
        st.sregs.fs.base = tls;
    st.regs.rax = 0;
    if (stack)
        st.regs.rsp = stack;
    return kvm_state_restore(cpu, &st);
}

bool sb_clone_makes_thread(uint64_t flags)
{
    const uint64_t thread = CLONE_VM_ | CLONE_SIGHAND_ | CLONE_THREAD_;
    return (flags & thread) == thread;
}

int sb_thread_clone(struct sandbox *sb, uint64_t flags, gva_t stack, gva_t parent_tid, gva_t child_tid,
                    gva_t tls)
{
    struct sb_thread *parent = sb_self(sb);
    struct sb_thread *t = free_slot(sb);
    if (!t)
        return -EAGAIN;
    t->state = SB_T_EXITED; /* until it starts: never stopped for, captured or signalled */
    int err = 0;
    if (t->cpu->fd < 0 && ((err = kvm_vcpu_create(&sb->vm, t->id, t->cpu)) < 0 ||
                           (err = kvm_cpu_setup_vcpu(&sb->vm, t->cpu)) < 0)) {
        kvm_vcpu_destroy(t->cpu);
        t->unusable = true; /* the id may stay taken in KVM: never tried again */
        return err == -ENOMEM ? -ENOMEM : -EAGAIN;
    }
    if ((err = sb_copy_cpu_state(parent, t->cpu, flags & CLONE_SETTLS_, stack, tls)) < 0)
        return -EAGAIN;
    uint32_t tid = sb_new_id(sb);
    if ((flags & CLONE_PARENT_SETTID_) && mm_copy_to(&sb->mm, parent_tid, &tid, 4) < 0)
        return -EFAULT;
    if ((flags & CLONE_CHILD_SETTID_) && mm_copy_to(&sb->mm, child_tid, &tid, 4) < 0)
        return -EFAULT;
    t->tid = tid;
    memset(&t->sig, 0, sizeof(t->sig));
    t->sig.blocked = parent->sig.blocked;
    t->clear_child_tid = flags & CLONE_CHILD_CLEARTID_ ? child_tid : 0;
    t->affinity = parent->affinity;
    memcpy(t->comm, parent->comm, sizeof(t->comm));
    t->robust_list = 0;
    t->waiting = t->futex_woken = false;
    t->sigwait_set = 0;
    t->state = SB_T_NEW;
    sb->live_threads++;
    if ((err = sb_thread_start(t)) < 0) {
        t->state = SB_T_EXITED;
        sb->live_threads--;
        return -EAGAIN;
    }
    return tid;
}

int sb_thread_start(struct sb_thread *t)
{
    struct sandbox *sb = t->sb;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, HOST_STACK_BYTES);
    pthread_mutex_lock(&sb->job_lock);
    sb->running++;
    t->state = SB_T_RUNNING;
    int rc = pthread_create(&t->host, &attr, sb->thread_main, t);
    if (rc != 0)
        sb->running--;
    else
        t->host_started = true;
    pthread_cond_broadcast(&sb->job_cond);
    pthread_mutex_unlock(&sb->job_lock);
    pthread_attr_destroy(&attr);
    return -rc;
}

void sb_thread_exit(struct sandbox *sb, int status)
{
    struct sb_thread *t = sb_self(sb);
    if (sb->live_threads <= 1) {
        sb_exit(sb, status, 0, "exited");
        return;
    }
    t->state = SB_T_EXITED;
    sb->live_threads--;
    if (t->clear_child_tid) {
        uint32_t zero = 0;
        if (mm_copy_to(&sb->mm, t->clear_child_tid, &zero, 4) == 0)
            sb_futex_wake(sb, t->clear_child_tid, 1, ~0u);
    }
}
