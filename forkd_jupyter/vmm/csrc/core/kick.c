/* Kicks (sandbox.h: sb_kick, sb_kick_all, sb_notify): ending a vCPU
 * thread's blocking wait (its wake_fd) and its KVM_RUN (immediate_exit, and
 * SB_KICK_SIGNAL, whose handler run/run_loop.c installs). Calls nothing else
 * of core/. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>

#include "core/proc.h"

_Thread_local struct sb_thread *sb_current;
_Thread_local bool sb_serving_fast;

void sb_kick(struct sb_thread *t)
{
    uint64_t one = 1;
    if (write(t->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        return;
    if (t->cpu->run)
        t->cpu->run->immediate_exit = 1;
    if (atomic_load(&t->kick_armed))
        pthread_kill(t->host, SB_KICK_SIGNAL);
}

void sb_kick_all(struct sandbox *sb)
{
    pthread_mutex_lock(&sb->job_lock); /* kick_armed and host stay valid meanwhile */
    for (unsigned i = 0; i < LAYOUT_MAX_VCPUS; i++)
        if (sb->threads[i] && sb->threads[i]->state != SB_T_EXITED)
            sb_kick(sb->threads[i]);
    pthread_mutex_unlock(&sb->job_lock);
}


/* Every process of the sandbox: a pipe or socket pair may join two. */
void sb_notify(struct sandbox *sb)
{
    struct sb_procs *p = sb->procs;
    atomic_fetch_add(&p->notify_seq, 1);
    for (unsigned k = 0; k < SB_MAX_PROCS; k++) {
        struct sandbox *s = p->slot[k].sb;
        for (unsigned i = 0; s && i < LAYOUT_MAX_VCPUS; i++) {
            struct sb_thread *t = s->threads[i];
            if (t && t->waiting && t->wait_kind == SB_WAIT_FILES && t != sb_current) {
                uint64_t one = 1;
                (void)!write(t->wake_fd, &one, sizeof(one));
            }
        }
    }
}
