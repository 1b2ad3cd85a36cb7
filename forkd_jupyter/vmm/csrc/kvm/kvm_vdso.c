/* The guest's clock page (vdso_data.h): calibration of the TSC against the
 * host's clocks and the refresh before each guest entry.
 *
 * Invariants: the guest's clocks never go backwards across a refresh (a
 * base is never set below what the previous one gives at that instant);
 * the rate used is the measured TSC rate lowered by a margin, so between
 * refreshes a guest clock lags the host's by at most that margin of the
 * time since the last exit, and each refresh moves it forward onto the
 * host's; without an invariant TSC that is the host's clock source, the
 * page stays disabled and the guest makes system calls. */
#define _GNU_SOURCE
#include "kvm/kvm_vdso.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "kvm/vdso_data.h"

/* The image, from the build (vmm/_build.py); empty when it could not be built. */
extern const unsigned char fj_vdso_image[];
extern const unsigned int fj_vdso_image_len;

#define MSR_IA32_TSC 0x10
#define CALIBRATE_NS 2000000ULL          /* first estimate over 2 ms */
#define REFINE_AFTER_NS 2000000000ULL    /* then over >= 2 s since the first sample */
#define MARGIN_FIRST 20000               /* rate lowered by 1/20000 (50 ppm) at first */
#define MARGIN_REFINED 1000000           /* 1 ppm once refined */

static pthread_once_t cal_once = PTHREAD_ONCE_INIT;
static bool cal_usable;
static uint64_t cal_tsc0, cal_mono0;
static _Atomic uint64_t cal_mult;
static _Atomic uint64_t cal_refined_at;

static inline uint64_t rdtsc_ordered(void)
{
    uint32_t lo, hi;
    __asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi)::"memory");
    return ((uint64_t)hi << 32) | lo;
}

static bool host_tsc_is_clock(void)
{
    char src[32] = "";
    FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "re");
    if (f) {
        if (!fgets(src, sizeof(src), f))
            src[0] = 0;
        fclose(f);
    }
    if (strncmp(src, "tsc", 3) != 0)
        return false;
    bool constant = false, nonstop = false;
    char line[4096];
    f = fopen("/proc/cpuinfo", "re");
    if (!f)
        return false;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "flags", 5) == 0) {
            constant = strstr(line, " constant_tsc") != NULL;
            nonstop = strstr(line, " nonstop_tsc") != NULL;
            break;
        }
    }
    fclose(f);
    return constant && nonstop;
}

static uint64_t rate(uint64_t dns, uint64_t dtsc, uint64_t margin)
{
    uint64_t mult = (uint64_t)(((unsigned __int128)dns << 32) / dtsc);
    return mult - mult / margin;
}

static void calibrate(void)
{
    if (!host_tsc_is_clock())
        return;
    cal_tsc0 = rdtsc_ordered();
    cal_mono0 = fj_clock_ns(CLOCK_MONOTONIC);
    uint64_t tsc, mono;
    do {
        mono = fj_clock_ns(CLOCK_MONOTONIC);
        tsc = rdtsc_ordered();
    } while (mono - cal_mono0 < CALIBRATE_NS);
    if (tsc <= cal_tsc0)
        return;
    atomic_store(&cal_mult, rate(mono - cal_mono0, tsc - cal_tsc0, MARGIN_FIRST));
    cal_usable = true;
}

/* A rate measured over the whole time since the first sample (finer with
 * every second), taken at most once a second. */
static uint64_t current_rate(uint64_t tsc, uint64_t mono)
{
    uint64_t since = mono - cal_mono0;
    if (since >= REFINE_AFTER_NS && mono - atomic_load(&cal_refined_at) >= 1000000000ULL) {
        atomic_store(&cal_refined_at, mono);
        atomic_store(&cal_mult, rate(since, tsc - cal_tsc0, MARGIN_REFINED));
    }
    return atomic_load(&cal_mult);
}

bool kvm_vdso_available(void)
{
    return fj_vdso_image_len > 0 && fj_vdso_image_len <= FJ_VDSO_PAGES * FJ_PAGE_SIZE;
}

static struct vdso_data *data_page(struct kvm_vm *vm)
{
    return (struct vdso_data *)(vm->sys + (uint64_t)FJ_VDSO_DATA_PAGE * FJ_PAGE_SIZE);
}

void kvm_vdso_write(struct kvm_vm *vm)
{
    vm->vdso_state = 0;
    memset(data_page(vm), 0, FJ_PAGE_SIZE);
    if (kvm_vdso_available())
        memcpy(vm->sys + (uint64_t)FJ_VDSO_FIRST_PAGE * FJ_PAGE_SIZE, fj_vdso_image, fj_vdso_image_len);
}

/* guest TSC - host TSC, read once per vCPU (the VMM never sets the TSC). */
static int learn_tsc_offset(struct kvm_vm *vm)
{
    struct {
        struct kvm_msrs hdr;
        struct kvm_msr_entry e;
    } m = {.hdr.nmsrs = 1, .e.index = MSR_IA32_TSC};
    uint64_t before = rdtsc_ordered();
    if (ioctl(vm->vcpu.fd, KVM_GET_MSRS, &m) != 1)
        return -1;
    uint64_t after = rdtsc_ordered();
    vm->vdso_tsc_offset = (int64_t)(m.e.data - (before + (after - before) / 2));
    return 0;
}

void kvm_vdso_refresh(struct kvm_vm *vm)
{
    if (vm->vdso_state == 2)
        return;
    if (vm->vdso_state == 0) {
        pthread_once(&cal_once, calibrate);
        if (!kvm_vdso_available() || !cal_usable || learn_tsc_offset(vm) < 0) {
            vm->vdso_state = 2;
            return;
        }
    }
    struct vdso_data *d = data_page(vm);
    uint64_t t0 = rdtsc_ordered();
    uint64_t mono = fj_clock_ns(CLOCK_MONOTONIC);
    uint64_t real = fj_clock_ns(CLOCK_REALTIME);
    uint64_t boot = fj_clock_ns(CLOCK_BOOTTIME);
    uint64_t t1 = rdtsc_ordered();
    uint64_t host_tsc = t0 + (t1 - t0) / 2;
    uint64_t tsc = host_tsc + (uint64_t)vm->vdso_tsc_offset;
    uint64_t mult = current_rate(host_tsc, mono);
    if (vm->vdso_state == 1 && tsc > d->tsc_base) {
        /* Never below what the guest may already have read. */
        uint64_t seen = d->base_ns[VDSO_MONOTONIC] +
                        (uint64_t)(((unsigned __int128)(tsc - d->tsc_base) * d->mult) >> 32);
        if (seen > mono) {
            boot += seen - mono;
            mono = seen;
        }
    }
    d->seq++;
    atomic_thread_fence(memory_order_release);
    d->tsc_base = tsc;
    d->mult = mult;
    d->base_ns[VDSO_REALTIME] = real;
    d->base_ns[VDSO_MONOTONIC] = mono;
    d->base_ns[VDSO_BOOTTIME] = boot;
    d->enabled = 1;
    atomic_thread_fence(memory_order_release);
    d->seq++;
    vm->vdso_state = 1;
}
