/* Kicks (sandbox.h: sb_kick, sb_kick_all): ending a vCPU thread's blocking
 * wait (its wake_fd) and its KVM_RUN (immediate_exit, and SB_KICK_SIGNAL,
 * whose handler run/run_loop.c installs). Calls nothing else of core/. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>

#include "core/sandbox.h"

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

