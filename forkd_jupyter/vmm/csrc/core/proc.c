/* The table of a sandbox's processes (proc.h): ids, groups and sessions, a
 * process's end (zombie, SIGCHLD, orphans), wait4's search and kill(2) to
 * other processes. All under big_lock (procs->lock).
 *
 * Signals sent here are queued and announced by a kick: the receiving
 * process's own vCPU thread delivers them (core/sig.c), so this file never
 * calls sig.c (which calls sb_exit here). */
#define _GNU_SOURCE
#include "core/proc.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SA_NOCLDWAIT_ 2ULL

int sb_procs_new(struct sandbox *sb, uint32_t pid) {
    struct sb_procs *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->changed, NULL);
    p->first = sb;
    p->next_id = pid + 1;
    p->slot[0] = (struct sb_proc_slot){
        .sb = sb, .pid = pid, .ppid = 1, .pgid = pid, .sid = pid, .used = true};
    sb->procs = p;
    sb->big_lock = &p->lock;
    sb->pid = pid;
    sb->threads[0]->tid = pid;
    return 0;
}

void sb_procs_free(struct sb_procs *p) {
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->changed);
    free(p);
}

uint32_t sb_new_id(struct sandbox *sb) { return sb->procs->next_id++; }

struct sb_proc_slot *sb_proc_slot_of(struct sb_procs *p, uint32_t pid) {
    for (unsigned i = 0; i < SB_MAX_PROCS; i++)
        if (p->slot[i].used && p->slot[i].pid == pid)
            return &p->slot[i];
    return NULL;
}

struct sb_proc_slot *sb_proc_self(struct sandbox *sb) {
    return sb_proc_slot_of(sb->procs, sb->pid);
}

bool sb_proc_slot_live(const struct sb_proc_slot *s) { return s->used && !s->zombie && !s->reaped; }

struct sandbox *sb_proc_find(struct sandbox *sb, uint32_t pid) {
    struct sb_proc_slot *s = sb_proc_slot_of(sb->procs, pid);
    return s && sb_proc_slot_live(s) ? s->sb : NULL;
}

struct sandbox *sb_proc_of_path(struct sandbox *sb, const char *path, const char **rest) {
    if (strncmp(path, "/proc/", 6))
        return NULL;
    const char *p = path + 6, *end;
    struct sandbox *target = NULL;
    if (!strncmp(p, "self", 4)) {
        target = sb;
        end = p + 4;
    } else {
        char *e;
        unsigned long pid = strtoul(p, &e, 10);
        end = e;
        target = e != p && p[0] != '0' && pid <= UINT32_MAX ? sb_proc_find(sb, (uint32_t)pid) : NULL;
    }
    if (!target || (*end && *end != '/'))
        return NULL;
    *rest = *end ? end + 1 : end;
    return target;
}

unsigned sb_proc_others(struct sandbox *sb) {
    unsigned n = 0;
    for (unsigned i = 0; i < SB_MAX_PROCS; i++)
        n += sb->procs->slot[i].used && sb->procs->slot[i].pid != sb->pid;
    return n;
}

void sb_proc_signal(struct sandbox *target, int signo) {
    target->sig.pending |= 1ULL << signo;
    sb_kick_all(target);
    sb_notify(target); /* blocked, it may make a signalfd of the target readable */
}

/* A zombie nobody will wait for leaves; a slot is free once its process
 * was reaped and its VMM state freed. */
static void reaped(struct sb_proc_slot *s) {
    s->zombie = false;
    s->reaped = true;
    if (!s->sb)
        s->used = false;
}

bool sb_proc_leaves_zombie(struct sandbox *sb) {
    struct sb_proc_slot *self = sb_proc_self(sb);
    struct sandbox *parent = self ? sb_proc_find(sb, self->ppid) : NULL;
    const struct sb_sigaction *act = parent ? &parent->sig.act[SIGCHLD] : NULL;
    return act && act->handler != 1 /* SIG_IGN */ && !(act->flags & SA_NOCLDWAIT_);
}

int sb_proc_wait_status(const struct sandbox *sb) {
    return sb->fatal_signal ? sb->fatal_signal & 0x7f : (sb->exit_status & 0xff) << 8;
}

/* The live ancestor of sb nearest to it that is a child subreaper
 * (PR_SET_CHILD_SUBREAPER), or NULL: who adopts sb's orphans. */
static struct sandbox *subreaper_of(struct sandbox *sb) {
    struct sb_proc_slot *s = sb_proc_self(sb);
    for (unsigned hops = 0; s && s->ppid != 1 && hops < SB_MAX_PROCS; hops++) {
        struct sandbox *up = sb_proc_find(sb, s->ppid);
        if (!up || up->exited)
            return NULL;
        if (up->prctl.child_subreaper)
            return up;
        s = sb_proc_self(up);
    }
    return NULL;
}

void sb_proc_ended(struct sandbox *sb) {
    struct sb_procs *p = sb->procs;
    struct sb_proc_slot *self = sb_proc_self(sb);
    struct sandbox *adopter = subreaper_of(sb);
    for (unsigned i = 0; i < SB_MAX_PROCS; i++) {
        struct sb_proc_slot *s = &p->slot[i];
        if (!s->used || s->ppid != sb->pid)
            continue;
        if (s->sb && !s->sb->exited && s->sb->prctl.pdeath_signal)
            sb_proc_signal(s->sb, s->sb->prctl.pdeath_signal);
        s->ppid = adopter ? adopter->pid : 1;
        if (s->zombie && adopter)
            sb_proc_signal(adopter, SIGCHLD); /* it waits for the orphan as for its own */
        else if (s->zombie)
            reaped(s);
    }
    if (!self)
        return;
    self->wait_status = sb_proc_wait_status(sb);
    mm_resident_bytes(&sb->mm); /* samples the peak */
    self->usage.cpu_ns = sb_process_cpu_ns(sb) + sb->children.cpu_ns;
    self->usage.maxrss_kib = FJ_MAX(sb->mm.resident_peak / 1024, sb->children.maxrss_kib);
    if (!sb_proc_leaves_zombie(sb)) {
        reaped(self);
    } else {
        self->zombie = true;
        sb_proc_signal(sb_proc_find(sb, self->ppid), SIGCHLD);
    }
    sb_notify(sb); /* a wait4 blocked in the parent looks again */
}

void sb_exit(struct sandbox *sb, int status, int fatal_signal, const char *why) {
    if (sb->exited)
        return;
    sb->exited = true;
    sb->exit_status = fatal_signal ? 128 + fatal_signal : (status & 0xff);
    sb->fatal_signal = fatal_signal;
    snprintf(sb->exit_reason, sizeof(sb->exit_reason), "%s", why);
    struct sb_procs *p = sb->procs;
    if (!p || sb == p->first) {
        char msg[320];
        int n = snprintf(msg, sizeof(msg), "{\"status\":%d,\"signal\":%d}", sb->exit_status,
                         fatal_signal);
        sb_emit(sb, SB_CH_EXIT, msg, (size_t)n);
        if (p) /* the sandbox ends with its first process */
            sb_proc_kill_others(sb);
    }
    sb_kick_all(sb); /* every other thread leaves its loop */
}

static bool matches(const struct sb_proc_slot *s, int64_t which, uint32_t own_pgid) {
    if (which > 0)
        return s->pid == (uint64_t)which;
    if (which == -1)
        return true;
    return s->pgid == (which == 0 ? own_pgid : (uint64_t)-which);
}

int sb_proc_reap(struct sandbox *sb, int64_t which, bool keep, uint32_t *pid, int *status,
                 struct sb_usage *usage) {
    struct sb_proc_slot *self = sb_proc_self(sb);
    bool any = false;
    for (unsigned i = 0; i < SB_MAX_PROCS; i++) {
        struct sb_proc_slot *s = &sb->procs->slot[i];
        if (!s->used || s->reaped || s->ppid != sb->pid ||
            !matches(s, which, self ? self->pgid : 0))
            continue;
        any = true;
        if (!s->zombie)
            continue;
        *pid = s->pid;
        *status = s->wait_status;
        *usage = s->usage;
        if (!keep) {
            reaped(s);
            sb->children.cpu_ns += s->usage.cpu_ns;
            sb->children.maxrss_kib = FJ_MAX(sb->children.maxrss_kib, s->usage.maxrss_kib);
        }
        return 1;
    }
    return any ? 0 : -ECHILD;
}

int sb_proc_kill(struct sandbox *sb, int64_t which, int signo) {
    struct sb_proc_slot *self = sb_proc_self(sb);
    bool found = false;
    for (unsigned i = 0; i < SB_MAX_PROCS; i++) {
        struct sb_proc_slot *s = &sb->procs->slot[i];
        if (!s->used || s->reaped || !matches(s, which, self ? self->pgid : 0))
            continue;
        if (which == -1 && s->sb == sb->procs->first)
            continue;
        found = true;
        if (signo && s->sb && !s->zombie && !s->sb->exited)
            sb_proc_signal(s->sb, signo);
    }
    return found ? 0 : -ESRCH;
}

void sb_proc_kill_others(struct sandbox *first) {
    for (unsigned i = 0; i < SB_MAX_PROCS; i++) {
        struct sandbox *c = first->procs->slot[i].sb;
        if (c && c != first && !c->exited)
            sb_proc_signal(c, SIGKILL);
    }
}

int sb_proc_setpgid(struct sandbox *sb, uint32_t pid, uint32_t pgid) {
    struct sb_proc_slot *self = sb_proc_self(sb);
    struct sb_proc_slot *s = pid == 0 ? self : sb_proc_slot_of(sb->procs, pid);
    if (!self || !s || s->reaped || (s != self && s->ppid != sb->pid))
        return -ESRCH;
    if (s->sid != self->sid || s->pid == s->sid)
        return -EPERM;
    s->pgid = pgid ? pgid : s->pid;
    return 0;
}

int64_t sb_proc_setsid(struct sandbox *sb) {
    struct sb_proc_slot *self = sb_proc_self(sb);
    if (!self || self->pgid == self->pid)
        return -EPERM;
    self->pgid = self->sid = self->pid;
    return self->pid;
}
