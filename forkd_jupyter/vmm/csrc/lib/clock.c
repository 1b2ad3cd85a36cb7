/* Host clocks in nanoseconds (fj.h: fj_clock_ns, fj_now_ns). */
#define _GNU_SOURCE
#include "lib/fj.h"

uint64_t fj_clock_ns(clockid_t clock)
{
    struct timespec ts;
    if (clock_gettime(clock, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t fj_now_ns(void) { return fj_clock_ns(CLOCK_MONOTONIC); }
