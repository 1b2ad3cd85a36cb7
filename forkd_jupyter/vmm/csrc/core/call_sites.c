/* Patching system-call sites (call_sites.h). */
#define _GNU_SOURCE
#include <string.h>
#include <sys/mman.h>

#include "core/call_sites.h"

#define SITE_LEN 7              /* b8 imm32 (mov eax, NR), 0f 05 (syscall) */
#define TRAMP_LEN 40
#define TRAMP_AREA (64u << 10)  /* a guest mapping of trampolines */
#define TRAMP_MAX_AREAS 16
#define REACH ((1LL << 31) - (1LL << 20)) /* what a jmp rel32 reaches, with margin */

/* A trampoline for the site at S calling NR (offsets in the slot T):
 *   0  b8 NR                 mov eax, NR
 *   5  48 8d 0d 0e 00 00 00  lea rcx, [rip + 14]      ; RCX = T+26, the return point
 *  12  41 bb 02 02 00 00     mov r11d, 0x202          ; RFLAGS as at a call: IF only
 *  18  ff 25 08 00 00 00     jmp [rip + 8]            ; to the stub's fast path (T+32)
 *  24  0f 05                 syscall                  ; what a rewind makes again (RCX - 2)
 *  26  e9 rel32              jmp S+7                  ; after the site's SYSCALL
 *  31  90
 *  32  fast path address (8 bytes) */
static void write_tramp(uint8_t t[TRAMP_LEN], gva_t at, gva_t site, uint32_t nr)
{
    static const uint8_t body[26] = {0xb8, 0, 0, 0, 0, 0x48, 0x8d, 0x0d, 0x0e, 0, 0, 0, 0x41,
                                     0xbb, 0x02, 0x02, 0, 0, 0xff, 0x25, 0x08, 0, 0, 0, 0x0f, 0x05};
    memset(t, 0x90, TRAMP_LEN);
    memcpy(t, body, sizeof(body));
    memcpy(t + 1, &nr, 4);
    t[26] = 0xe9;
    int32_t back = (int32_t)((int64_t)(site + SITE_LEN) - (int64_t)(at + 31));
    memcpy(t + 27, &back, 4);
    uint64_t fast = layout_sys_va(SYS_PAGE_SYSCALL) + LAYOUT_STUB_FAST;
    memcpy(t + 32, &fast, 8);
}

static bool reaches(gva_t from, gva_t to)
{
    int64_t d = (int64_t)to - (int64_t)from;
    return d > -REACH && d < REACH;
}

/* A free trampoline slot within reach of site, in the area being filled or
 * a new one; 0 when there is none. */
static gva_t tramp_slot(struct sandbox *sb, gva_t site)
{
    if (!sb->call_tramps || sb->call_tramps_used == TRAMP_AREA / TRAMP_LEN) {
        if (sb->call_tramp_areas == TRAMP_MAX_AREAS)
            return 0;
        gva_t at;
        if (mm_map(&sb->mm, 0, TRAMP_AREA, PROT_READ | PROT_EXEC, false, false, false, MM_ANON, &at) < 0)
            return 0;
        mm_name_set(&sb->mm, at, TRAMP_AREA, "[forkd-calls]");
        sb->call_tramps = at;
        sb->call_tramps_used = 0;
        sb->call_tramp_areas++;
    }
    gva_t slot = sb->call_tramps + (gva_t)sb->call_tramps_used * TRAMP_LEN;
    if (!reaches(site + 5, slot) || !reaches(slot + 31, site + SITE_LEN))
        return 0;
    sb->call_tramps_used++;
    return slot;
}

/* No thread of sb but `caller` can be running guest code until big_lock
 * (held) is let go: each other one is blocked in a call (a wait gives
 * big_lock back and takes it again before it returns to the guest), or
 * not started, or gone. A thread in KVM_RUN, or on its way out of it, is
 * never `waiting`. */
static bool others_out_of_guest(struct sandbox *sb, const struct sb_thread *caller)
{
    for (unsigned i = 0; i < LAYOUT_MAX_VCPUS; i++) {
        const struct sb_thread *u = sb->threads[i];
        if (u && u != caller && u->state == SB_T_RUNNING && !u->waiting)
            return false;
    }
    return true;
}

void sb_patch_call_site(struct sandbox *sb, const struct sb_thread *caller, gva_t ret, uint64_t nr)
{
    if (sb->vfork_parent || sb->vfork_children || ret < LAYOUT_USER_MIN + SITE_LEN || nr > UINT32_MAX ||
        !others_out_of_guest(sb, caller))
        return;
    gva_t site = ret - SITE_LEN;
    const uint8_t *code = mm_read_ptr(&sb->mm, site, SITE_LEN);
    uint32_t imm;
    if (!code || code[0] != 0xb8 || code[5] != 0x0f || code[6] != 0x05)
        return;
    memcpy(&imm, code + 1, 4);
    const struct mm_vma *v = mm_vma_at(&sb->mm, site);
    /* A program's or library's own text only (never memory a program
     * writes code into itself). */
    if (imm != nr || !v || v->end < ret || !(v->prot & PROT_EXEC) || (v->kind != MM_FILE && v->kind != MM_IMAGE))
        return;
    gva_t slot = tramp_slot(sb, site);
    if (!slot)
        return;
    uint8_t t[TRAMP_LEN];
    write_tramp(t, slot, site, (uint32_t)nr);
    uint8_t jmp[5] = {0xe9};
    int32_t to = (int32_t)((int64_t)slot - (int64_t)(site + 5));
    memcpy(jmp + 1, &to, 4);
    /* The trampoline first: the site leads to it once rewritten. */
    if (mm_copy_to(&sb->mm, slot, t, TRAMP_LEN) == 0)
        (void)mm_copy_to(&sb->mm, site, jmp, sizeof(jmp));
}
