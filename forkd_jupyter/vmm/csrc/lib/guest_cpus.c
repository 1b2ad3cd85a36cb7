/* How many cores the guest has (fj.h: fj_guest_cpus). */
#define _GNU_SOURCE
#include <unistd.h>

#include "lib/fj.h"

unsigned fj_guest_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > FJ_GUEST_CPUS_MAX ? FJ_GUEST_CPUS_MAX : (unsigned)n;
}
