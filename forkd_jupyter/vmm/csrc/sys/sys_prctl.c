/* prctl(2) and arch_prctl(2): a process's and its threads' settings
 * (struct sb_prctl, sb_thread.comm) and the FS base. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

#include "core/sandbox.h"
#include "kvm/kvm_cpu.h"
#include "sys/sys.h"

#define CAP_LAST 40 /* CAP_CHECKPOINT_RESTORE, the last Linux 6.x knows */
#define ARCH_SET_GS 0x1001
#define ARCH_SET_FS 0x1002
#define ARCH_GET_FS 0x1003
#define ARCH_GET_GS 0x1004

static int64_t sys_arch_prctl(struct sandbox *sb, const uint64_t a[6]) {
    switch (a[0]) {
    case ARCH_SET_FS:
        return kvm_vcpu_set_fs_base(sb_cpu(sb), a[1]);
    case ARCH_GET_FS: {
        uint64_t base = kvm_vcpu_get_fs_base(sb_cpu(sb));
        return mm_copy_to(&sb->mm, a[1], &base, sizeof(base));
    }
    case ARCH_SET_GS:
    case ARCH_GET_GS:
        return -EPERM;
    default:
        return -EINVAL;
    }
}

#define TIMER_SLACK_DEFAULT_NS 50000

static int64_t put_int(struct sandbox *sb, gva_t at, int v) {
    return mm_copy_to(&sb->mm, at, &v, sizeof(v));
}

static int64_t sys_prctl(struct sandbox *sb, const uint64_t a[6]) {
    struct sb_prctl *p = &sb->prctl;
    switch (a[0]) {
    case PR_SET_PDEATHSIG:
        if (a[1] >= SB_NSIG)
            return -EINVAL;
        p->pdeath_signal = (int)a[1];
        return 0;
    case PR_GET_PDEATHSIG:
        return put_int(sb, a[1], p->pdeath_signal);
    case PR_SET_CHILD_SUBREAPER:
        p->child_subreaper = a[1] != 0;
        return 0;
    case PR_GET_CHILD_SUBREAPER:
        return put_int(sb, a[1], p->child_subreaper);
    case PR_SET_NO_NEW_PRIVS:
        if (a[1] != 1 || a[2] || a[3] || a[4])
            return -EINVAL;
        p->no_new_privs = true;
        return 0;
    case PR_GET_NO_NEW_PRIVS:
        return a[1] || a[2] || a[3] || a[4] ? -EINVAL : p->no_new_privs;
    case PR_SET_KEEPCAPS:
        if (a[1] > 1)
            return -EINVAL;
        p->keep_caps = a[1];
        return 0;
    case PR_GET_KEEPCAPS:
        return p->keep_caps;
    case PR_SET_THP_DISABLE:
        if (a[2] || a[3] || a[4])
            return -EINVAL;
        p->thp_disable = a[1] != 0;
        return 0;
    case PR_GET_THP_DISABLE:
        return a[1] || a[2] || a[3] || a[4] ? -EINVAL : p->thp_disable;
    case PR_SET_TIMERSLACK: /* kept, not applied: sleeps end when they are due */
        p->timer_slack_ns = a[1];
        return 0;
    case PR_GET_TIMERSLACK:
        return (int64_t)(p->timer_slack_ns ? p->timer_slack_ns : TIMER_SLACK_DEFAULT_NS);
    case PR_GET_TID_ADDRESS:
        return mm_copy_to(&sb->mm, a[1], &sb_self(sb)->clear_child_tid, sizeof(uint64_t));
    case PR_SET_NAME: { /* up to 15 bytes, as Linux cuts it */
        char name[16] = {0};
        for (unsigned i = 0; i < 15; i++) {
            const char *c = mm_read_ptr(&sb->mm, a[1] + i, 1);
            if (!c)
                return i ? 0 : -EFAULT; /* Linux copies what it can read */
            if (!(name[i] = *c))
                break;
        }
        memcpy(sb_self(sb)->comm, name, sizeof(name));
        return 0;
    }
    case PR_GET_NAME: {
        char name[16] = {0};
        snprintf(name, sizeof(name), "%s", sb_thread_name(sb, sb_self(sb)));
        return mm_copy_to(&sb->mm, a[1], name, sizeof(name));
    }
    case PR_GET_DUMPABLE:
        return 1;
    case PR_SET_DUMPABLE:
        return a[1] <= 1 ? 0 : -EINVAL; /* nothing to dump: a sandbox makes no core files */
    case PR_GET_SECCOMP:
        return 0;
    case PR_CAPBSET_READ: /* the bounding set of an unprivileged process: all */
        return a[1] <= CAP_LAST ? 1 : -EINVAL;
    case PR_CAPBSET_DROP:
        return a[1] <= CAP_LAST ? -EPERM : -EINVAL;
    case PR_CAP_AMBIENT: /* empty; raising one needs it permitted: never */
        if (a[1] == PR_CAP_AMBIENT_CLEAR_ALL)
            return a[2] || a[3] || a[4] ? -EINVAL : 0;
        if (a[1] != PR_CAP_AMBIENT_IS_SET && a[1] != PR_CAP_AMBIENT_RAISE &&
            a[1] != PR_CAP_AMBIENT_LOWER)
            return -EINVAL;
        if (a[2] > CAP_LAST || a[3] || a[4])
            return -EINVAL;
        return a[1] == PR_CAP_AMBIENT_RAISE ? -EPERM : 0;
    default:
        return -EINVAL;
    }
}

const struct sys_entry sys_prctl_entries[] = {
    {157, "prctl", sys_prctl, SYS_PARTIAL,
     "PR_SET_NAME and PR_GET_NAME (the thread's name, in /proc; branches keep it, a snapshot "
     "saved to disk does not), the parent-death signal, child subreaper, "
     "no_new_privs, keepcaps, THP disable and timer slack (kept), the clear-child-tid address, "
     "dumpable, seccomp (none), the capability bounding and ambient sets (no capabilities); "
     "EINVAL otherwise"},
    {158, "arch_prctl", sys_arch_prctl, SYS_PARTIAL, "FS base"},
};
const size_t sys_prctl_count = FJ_ARRAY_SIZE(sys_prctl_entries);
