/* System-call sites that skip the SYSCALL instruction.
 *
 * Under kvm_pvm the SYSCALL instruction alone costs ~23 us (the jump to
 * LSTAR goes through the hypervisor), a call served by the poller ~3 us
 * more. A site `mov eax, NR; syscall` (glibc's wrappers are made of them)
 * in a program's or library's text is rewritten, the first time a call
 * comes from it, into `jmp T; syscall`: the trampoline T sets EAX, RCX and
 * R11 as SYSCALL would, jumps to the stub's fast path and comes back after
 * the site's SYSCALL. The site's own SYSCALL instruction stays, so code
 * that jumps to it still makes its call; the trampoline keeps one of its
 * own right before its return point, so a call the VMM rewinds (RIP := RCX
 * - 2) is made again with a real SYSCALL.
 *
 * Only while no other thread of the process can be running guest code (no
 * other vCPU can be executing the bytes being rewritten: each is blocked
 * in a call, as a pool's idle workers are), in no vfork parent or child,
 * and where SYSCALL stays in CPL3 (the fast path returns to the caller
 * itself). */
#ifndef CALL_SITES_H
#define CALL_SITES_H

#include "core/sandbox.h"

/* Under big_lock, for caller's call numbered nr that returns to ret:
 * patches its site when it is one (see above); nothing otherwise. */
void sb_patch_call_site(struct sandbox *sb, const struct sb_thread *caller, gva_t ret, uint64_t nr);

#endif
