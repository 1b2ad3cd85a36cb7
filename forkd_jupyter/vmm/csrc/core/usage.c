/* What a process's threads used, read from their host threads: CPU time,
 * context switches; and that use in the guest's struct rusage.
 *
 * Invariant: a thread's host thread is read only while it is live
 * (kick_armed, under job_lock); an ended one's CPU time is in
 * exited_cpu_ns. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "core/sandbox.h"

static uint64_t thread_cpu_ns(pthread_t host) {
    clockid_t c;
    return pthread_getcpuclockid(host, &c) == 0 ? fj_clock_ns(c) : 0;
}

uint64_t sb_thread_cpu_ns(struct sandbox *sb, struct sb_thread *t) {
    pthread_mutex_lock(&sb->job_lock); /* host stays a live thread while kick_armed */
    uint64_t ns = atomic_load(&t->kick_armed) ? thread_cpu_ns(t->host) : 0;
    pthread_mutex_unlock(&sb->job_lock);
    return ns;
}

uint64_t sb_process_cpu_ns(struct sandbox *sb) {
    uint64_t ns = atomic_load(&sb->exited_cpu_ns);
    pthread_mutex_lock(&sb->job_lock); /* host stays a live thread while kick_armed */
    for (unsigned i = 0; i < LAYOUT_MAX_VCPUS; i++) {
        struct sb_thread *t = sb->threads[i];
        if (t && atomic_load(&t->kick_armed))
            ns += thread_cpu_ns(t->host);
    }
    pthread_mutex_unlock(&sb->job_lock);
    return ns;
}

/* Adds the "voluntary_ctxt_switches" and "nonvoluntary_ctxt_switches" of a
 * host thread's status to out. */
static void add_host_ctx_switches(pid_t tid, uint64_t out[2]) {
    char path[64], line[128];
    snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)tid);
    FILE *f = fopen(path, "re");
    if (!f)
        return; /* the thread ended meanwhile */
    unsigned long long n;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "voluntary_ctxt_switches: %llu", &n) == 1)
            out[0] += n;
        else if (sscanf(line, "nonvoluntary_ctxt_switches: %llu", &n) == 1)
            out[1] += n;
    }
    fclose(f);
}

void sb_ctx_switches(struct sandbox *sb, struct sb_thread *only, uint64_t out[2]) {
    pid_t tids[LAYOUT_MAX_VCPUS];
    unsigned n = 0;
    out[0] = out[1] = 0;
    pthread_mutex_lock(&sb->job_lock); /* host_tid is a live thread's while kick_armed */
    for (unsigned i = 0; i < LAYOUT_MAX_VCPUS; i++) {
        struct sb_thread *t = sb->threads[i];
        if (t && (!only || t == only) && atomic_load(&t->kick_armed))
            tids[n++] = t->host_tid;
    }
    pthread_mutex_unlock(&sb->job_lock);
    for (unsigned i = 0; i < n; i++) /* files read without the lock: a tid gone is skipped */
        add_host_ctx_switches(tids[i], out);
}

void sb_usage_rusage(const struct sb_usage *usage, struct rusage *ru) {
    memset(ru, 0, sizeof(*ru));
    ru->ru_utime.tv_sec = (time_t)(usage->cpu_ns / 1000000000ULL);
    ru->ru_utime.tv_usec = (long)(usage->cpu_ns % 1000000000ULL / 1000);
    ru->ru_maxrss = (long)usage->maxrss_kib;
}
