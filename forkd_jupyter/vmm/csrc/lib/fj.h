/* Common definitions of the VMM core.
 *
 * Address kinds are kept apart by type name: gpa_t is a guest-physical
 * address, gva_t a guest-virtual one, and host addresses are plain pointers.
 * Inside the user window guest-virtual equals guest-physical (see
 * kvm_layout.h), but code still converts explicitly so that the rule can
 * change in one place. */
#ifndef FJ_H
#define FJ_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

typedef uint64_t gpa_t;
typedef uint64_t gva_t;

#define FJ_PAGE_SIZE 4096ULL
#define FJ_HUGE_SIZE (2ULL << 20)
#define FJ_ALIGN_UP(x, a) (((x) + (a) - 1) & ~((uint64_t)(a) - 1))
#define FJ_ALIGN_DOWN(x, a) ((x) & ~((uint64_t)(a) - 1))
#define FJ_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define FJ_MIN(a, b) ((a) < (b) ? (a) : (b))
#define FJ_MAX(a, b) ((a) > (b) ? (a) : (b))

uint64_t fj_now_ns(void); /* CLOCK_MONOTONIC */
uint64_t fj_clock_ns(clockid_t clock); /* any clock in ns; 0 when it cannot be read */

/* The cores the guest has: its threads may run on every core the host has
 * online, numbered from 0 (sched_getaffinity, /proc/stat, /proc/cpuinfo and
 * /sys/devices/system/cpu all say the same), 1 to FJ_GUEST_CPUS_MAX. */
#define FJ_GUEST_CPUS_MAX 64
unsigned fj_guest_cpus(void);

#endif
