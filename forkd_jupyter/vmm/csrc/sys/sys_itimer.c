/* Interval timers: alarm, setitimer, getitimer. Each is a host POSIX timer
 * (ITIMER_REAL on CLOCK_MONOTONIC; VIRTUAL and PROF on the CPU clock of the
 * vCPU thread that set them) whose expiry sends SB_TIMER_SIGNAL to that
 * host thread; the handler queues SIGALRM/SIGVTALRM/SIGPROF for the
 * process as an interrupt does (pending_external), so the guest gets it at
 * its next exit or wait. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/sandbox.h"
#include "sys/sys.h"

static void timer_fired(int sig, siginfo_t *si, void *uc)
{
    (void)sig, (void)uc;
    struct sb_thread *t = sb_current; /* NULL once the sandbox ended on this thread */
    int signo = si->si_value.sival_int;
    if (!t || signo <= 0 || signo >= SB_NSIG)
        return;
    atomic_fetch_or(&t->sb->pending_external, 1ULL << signo);
    if (t->cpu->run)
        t->cpu->run->immediate_exit = 1; /* async-signal-safe: a store */
}

static void install_once(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = timer_fired;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SB_TIMER_SIGNAL, &sa, NULL);
}

static const int timer_signal[3] = {SIGALRM, SIGVTALRM, SIGPROF};

static int timer_of(struct sandbox *sb, unsigned which, timer_t *out)
{
    if (which > 2)
        return -EINVAL;
    if (!sb->itimer_made[which]) {
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        pthread_once(&once, install_once);
        clockid_t clock = CLOCK_MONOTONIC;
        if (which != 0 && pthread_getcpuclockid(pthread_self(), &clock) != 0)
            return -EINVAL;
        struct sigevent ev;
        memset(&ev, 0, sizeof(ev));
        ev.sigev_notify = SIGEV_THREAD_ID;
        ev.sigev_signo = SB_TIMER_SIGNAL;
        ev.sigev_value.sival_int = timer_signal[which];
        ev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
        if (timer_create(clock, &ev, &sb->itimer[which]) < 0)
            return -errno;
        sb->itimer_made[which] = true;
    }
    *out = sb->itimer[which];
    return 0;
}

struct g_itimerval {
    struct timeval interval, value;
};

static struct timeval to_tv(struct timespec ts)
{
    return (struct timeval){ts.tv_sec, (ts.tv_nsec + 999) / 1000};
}

static int get_old(struct sandbox *sb, unsigned which, struct g_itimerval *old)
{
    memset(old, 0, sizeof(*old));
    if (which > 2)
        return -EINVAL;
    if (!sb->itimer_made[which])
        return 0;
    struct itimerspec cur;
    if (timer_gettime(sb->itimer[which], &cur) < 0)
        return -errno;
    old->interval = to_tv(cur.it_interval);
    old->value = to_tv(cur.it_value);
    return 0;
}

static int set_new(struct sandbox *sb, unsigned which, const struct g_itimerval *in)
{
    if (in->value.tv_usec < 0 || in->value.tv_usec >= 1000000 || in->interval.tv_usec < 0 ||
        in->interval.tv_usec >= 1000000 || in->value.tv_sec < 0 || in->interval.tv_sec < 0)
        return -EINVAL;
    timer_t id = 0;
    int err = timer_of(sb, which, &id);
    if (err < 0)
        return err;
    struct itimerspec spec = {
        .it_interval = {in->interval.tv_sec, in->interval.tv_usec * 1000},
        .it_value = {in->value.tv_sec, in->value.tv_usec * 1000},
    };
    return timer_settime(id, 0, &spec, NULL) < 0 ? -errno : 0;
}

static int64_t sys_getitimer(struct sandbox *sb, const uint64_t a[6])
{
    struct g_itimerval old;
    int err = get_old(sb, (unsigned)a[0], &old);
    return err < 0 ? err : mm_copy_to(&sb->mm, a[1], &old, sizeof(old));
}

static int64_t sys_setitimer(struct sandbox *sb, const uint64_t a[6])
{
    struct g_itimerval in, old;
    if (a[1] && mm_copy_from(&sb->mm, &in, a[1], sizeof(in)) < 0)
        return -EFAULT;
    int err = get_old(sb, (unsigned)a[0], &old);
    if (err == 0 && a[1])
        err = set_new(sb, (unsigned)a[0], &in);
    if (err == 0 && a[2])
        err = mm_copy_to(&sb->mm, a[2], &old, sizeof(old));
    return err;
}

static int64_t sys_alarm(struct sandbox *sb, const uint64_t a[6])
{
    struct g_itimerval in = {.value = {(time_t)(uint32_t)a[0], 0}}, old;
    int err = get_old(sb, 0, &old);
    if (err == 0)
        err = set_new(sb, 0, &in);
    if (err < 0)
        return err;
    /* Seconds left of the previous alarm, rounded as Linux does. */
    int64_t secs = old.value.tv_sec;
    if ((secs == 0 && old.value.tv_usec) || old.value.tv_usec >= 500000)
        secs++;
    return secs;
}

const struct sys_entry sys_itimer_entries[] = {
    {36, "getitimer", sys_getitimer, SYS_FULL, NULL},
    {37, "alarm", sys_alarm, SYS_FULL, NULL},
    {38, "setitimer", sys_setitimer, SYS_PARTIAL,
     "VIRTUAL and PROF count the CPU time of the thread that set them"},
};
const size_t sys_itimer_count = FJ_ARRAY_SIZE(sys_itimer_entries);
