/* The poller (fast_calls.h). Lock order: big_lock, then sb->calls_lock;
 * the poller never holds calls_lock while it takes big_lock. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/call_sites.h"
#include "kvm/kvm_calls.h"
#include "run/fast_calls.h"
#include "sys/sys.h"

/* How long an awake poller spins without a call before it sleeps (an
 * import computes up to a millisecond between its bursts of calls). */
#define FAST_IDLE_NS 1000000ULL
/* Calls by exit closer together than this wake the poller. */
#define FAST_WAKE_GAP_NS 1000000ULL
/* A poller that finds itself descheduled (a look at the boxes FAST_STALL_NS
 * after the one before) FAST_STALLS times within FAST_STALL_WINDOW_NS is
 * competing for a core: callers would spin for nothing. It sleeps, and is
 * not woken again for FAST_BACKOFF_NS. After spells in a row that served no call
 * (calls by exit that came in pairs, then none), it is not woken for a
 * while that doubles with each, up to 64 idle spells' time. */
#define FAST_STALL_NS 100000ULL
#define FAST_STALLS 5
#define FAST_STALL_WINDOW_NS 10000000ULL
#define FAST_BACKOFF_NS 2000000ULL

struct sb_fast {
    pthread_t thread;
    pthread_cond_t cond; /* with sb->calls_lock: wake, quit */
    bool wake, quit;
    int waker_cpu; /* the core the waking vCPU thread ran on (the poller keeps off it), or -1 */
    bool rewrite_sites; /* call sites skip SYSCALL (core/call_sites.h) */
    uint64_t last_exit_ns; /* the last call the poller could have served that came by exit */
    _Atomic uint64_t quiet_until_ns; /* not woken before (see FAST_STALLS) */
    unsigned fruitless; /* awake spells in a row that served no call */
};

static _Atomic int spinning; /* pollers of this host process awake now */
static int max_spinning;
static pthread_once_t config_once = PTHREAD_ONCE_INIT;

static void read_config(void)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    max_spinning = cores > 1 ? (int)cores : 0; /* one core: a spinning poller only delays the guest */
}

/* A thread woken by a vCPU thread tends to be put on the waker's core,
 * where its spinning would keep the guest it waits for from running: the
 * poller spins anywhere else (any core when `avoid` is -1). */
static void keep_off_core(int avoid)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    for (long c = 0; c < cores && c < CPU_SETSIZE; c++)
        if (c != avoid)
            CPU_SET(c, &set);
    (void)pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

/* FORKD_JUPYTER_FAST_CALLS, read at each start (one host process can
 * compare the ways): "0" off, "poll" without rewriting call sites, else on. */
static const char *setting(void)
{
    const char *v = getenv("FORKD_JUPYTER_FAST_CALLS");
    return v ? v : "1";
}

/* Serves box id of sb if it is still posted: takes it, makes the call as
 * its thread, answers (or refuses), all under big_lock. */
static void serve(struct sandbox *sb, unsigned id)
{
    pthread_mutex_lock(sb->big_lock);
    struct kvm_call_box *box = kvm_calls_box(&sb->vm, id);
    uint32_t posted = KVM_CALL_POSTED;
    if (!atomic_compare_exchange_strong(&box->state, &posted, KVM_CALL_TAKEN)) {
        pthread_mutex_unlock(sb->big_lock);
        return;
    }
    uint64_t nr = box->nr, a[6];
    memcpy(a, box->args, sizeof(a));
    struct sb_thread *t = sb->threads[id];
    if (sb->fast->rewrite_sites && t)
        sb_patch_call_site(sb, t, box->rip, nr); /* its next call skips SYSCALL */
    int64_t ret = SB_EWOULDWAIT;
    if (t && t->state == SB_T_RUNNING && !sb->exited && sys_fast_eligible(sb, nr, a)) {
        struct sb_thread *was = sb_current;
        sb_current = t;
        sb_serving_fast = true;
        ret = sys_dispatch(sb, nr, a);
        sb_serving_fast = false;
        sb_current = was;
        if (ret == SB_EWOULDWAIT || ret == SB_ERESTART) { /* made again by exit: count it once */
            sb->stats.calls--;
            sb->stats.per_nr[nr]--;
            ret = SB_EWOULDWAIT;
        }
    }
    if (ret == SB_EWOULDWAIT) {
        atomic_store(&box->state, KVM_CALL_REFUSED);
    } else {
        sb->stats.fast_calls++;
        box->ret = (uint64_t)ret;
        atomic_store(&box->state, KVM_CALL_DONE);
    }
    pthread_mutex_unlock(sb->big_lock);
}

/* With calls_lock held: the first box posted, or -1. Thread slots are read without
 * big_lock: a slot seen late only delays its box to the next look. */
static int find_posted(struct sandbox *sb)
{
    for (unsigned i = 0; i < LAYOUT_MAX_VCPUS; i++)
        if (sb->threads[i] && atomic_load_explicit(&kvm_calls_box(&sb->vm, i)->state,
                                                    memory_order_acquire) == KVM_CALL_POSTED)
            return (int)i;
    return -1;
}

static void spin_while_called(struct sandbox *sb, struct sb_fast *f)
{
    atomic_store(kvm_calls_awake(&sb->vm), 1);
    uint64_t last = fj_now_ns(), look = last, window = last;
    unsigned served = 0, stalls = 0;
    while (!f->quit) {
        uint64_t now = fj_now_ns();
        if (now - window > FAST_STALL_WINDOW_NS) {
            window = now;
            stalls = 0;
        }
        if (now - look > FAST_STALL_NS && ++stalls == FAST_STALLS)
            break;
        look = now;
        int id = find_posted(sb);
        if (id >= 0) {
            pthread_mutex_unlock(&sb->calls_lock);
            serve(sb, (unsigned)id);
            pthread_mutex_lock(&sb->calls_lock);
            last = look = fj_now_ns();
            served++;
            continue;
        }
        if (now - last > FAST_IDLE_NS)
            break;
        pthread_mutex_unlock(&sb->calls_lock);
        for (int i = 0; i < 16; i++)
            __builtin_ia32_pause();
        pthread_mutex_lock(&sb->calls_lock);
    }
    atomic_store(kvm_calls_awake(&sb->vm), 0);
    f->fruitless = served ? 0 : f->fruitless + 1;
    if (stalls >= FAST_STALLS)
        atomic_store(&f->quiet_until_ns, fj_now_ns() + FAST_BACKOFF_NS);
    else if (f->fruitless >= 2)
        atomic_store(&f->quiet_until_ns, fj_now_ns() + (FAST_IDLE_NS << FJ_MIN(f->fruitless, 6u)));
}

static void *poller_main(void *arg)
{
    struct sandbox *sb = arg;
    struct sb_fast *f = sb->fast;
    pthread_mutex_lock(&sb->calls_lock);
    for (;;) {
        while (!f->wake && !f->quit)
            pthread_cond_wait(&f->cond, &sb->calls_lock);
        if (f->quit)
            break;
        f->wake = false;
        if (atomic_fetch_add(&spinning, 1) < max_spinning) {
            keep_off_core(f->waker_cpu);
            spin_while_called(sb, f);
        }
        atomic_fetch_sub(&spinning, 1);
    }
    pthread_mutex_unlock(&sb->calls_lock);
    return NULL;
}

void fast_calls_start(struct sandbox *sb)
{
    pthread_once(&config_once, read_config);
    if (!strcmp(setting(), "0") || sb->fast)
        return;
    struct sb_fast *f = calloc(1, sizeof(*f));
    if (!f)
        return;
    f->rewrite_sites = strcmp(setting(), "poll") != 0;
    pthread_cond_init(&f->cond, NULL);
    sb->fast = f;
    /* The poller takes no signal meant for vCPU threads (kicks, timers). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int err = pthread_create(&f->thread, NULL, poller_main, sb);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err != 0) {
        sb->fast = NULL;
        pthread_cond_destroy(&f->cond);
        free(f);
    }
}

void fast_calls_stop(struct sandbox *sb)
{
    struct sb_fast *f = sb->fast;
    if (!f)
        return;
    pthread_mutex_lock(&sb->calls_lock);
    f->quit = true;
    pthread_cond_signal(&f->cond);
    pthread_mutex_unlock(&sb->calls_lock);
    pthread_join(f->thread, NULL);
    sb->fast = NULL;
    pthread_cond_destroy(&f->cond);
    free(f);
}

bool fast_calls_rewrite_sites(struct sandbox *sb) { return sb->fast && sb->fast->rewrite_sites; }

void fast_calls_after_exit(struct sandbox *sb, struct kvm_vcpu *cpu, uint64_t nr, const uint64_t a[6])
{
    struct sb_fast *f = sb->fast;
    if (!f || cpu->syscall_mode != 1 || !sys_fast_eligible(sb, nr, a))
        return;
    if (!kvm_calls_enabled(&sb->vm))
        kvm_calls_enable(&sb->vm, sys_fast_offered());
    /* Woken only for calls that come close together (a program that makes
     * one now and then, a loop that logs every few milliseconds, would keep
     * a core spinning for nothing) and not while it backs off. */
    uint64_t now = fj_now_ns(), last = f->last_exit_ns;
    f->last_exit_ns = now;
    if (now - last > FAST_WAKE_GAP_NS || now < atomic_load(&f->quiet_until_ns) ||
        atomic_load(kvm_calls_awake(&sb->vm)) || atomic_load(&spinning) >= max_spinning)
        return;
    pthread_mutex_lock(&sb->calls_lock);
    f->wake = true;
    f->waker_cpu = sched_getcpu();
    pthread_cond_signal(&f->cond);
    pthread_mutex_unlock(&sb->calls_lock);
}
