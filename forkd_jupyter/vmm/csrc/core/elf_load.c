/* ELF loader: copies segments into guest RAM (guest memory is private to the
 * guest, so file-backed mappings are copies). */
#define _GNU_SOURCE
#include "core/elf_load.h"

#include <elf.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#include "kvm/kvm_vdso.h"
#include "kvm/vdso_data.h"

static int read_exact(int fd, void *buf, size_t len, off_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t r = pread(fd, (char *)buf + done, len - done, off + (off_t)done);
        if (r < 0)
            return -errno;
        if (r == 0)
            return -ENOEXEC;
        done += (size_t)r;
    }
    return 0;
}

static int check_header(const Elf64_Ehdr *eh)
{
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_ident[EI_DATA] != ELFDATA2LSB || eh->e_machine != EM_X86_64 ||
        (eh->e_type != ET_EXEC && eh->e_type != ET_DYN) || eh->e_phentsize != sizeof(Elf64_Phdr) ||
        eh->e_phnum == 0 || eh->e_phnum > 64)
        return -ENOEXEC;
    return 0;
}

static int load_segments(struct mm *mm, int fd, const Elf64_Phdr *ph, int n, gva_t base)
{
    for (int i = 0; i < n; i++) {
        if (ph[i].p_type != PT_LOAD || ph[i].p_filesz == 0)
            continue;
        void *dst = mm_write_ptr(mm, base + ph[i].p_vaddr, ph[i].p_filesz);
        if (!dst)
            return -ENOEXEC;
        int err = read_exact(fd, dst, ph[i].p_filesz, (off_t)ph[i].p_offset);
        if (err < 0)
            return err;
    }
    return 0;
}

int elf_load(struct mm *mm, const char *host_path, gva_t hint, struct elf_image *out)
{
    int fd = open(host_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int err = elf_load_fd(mm, fd, host_path, hint, out);
    close(fd);
    return err;
}

int elf_load_fd(struct mm *mm, int fd, const char *name, gva_t hint, struct elf_image *out)
{
    memset(out, 0, sizeof(*out));
    Elf64_Ehdr eh;
    Elf64_Phdr ph[64];
    int err = read_exact(fd, &eh, sizeof(eh), 0);
    if (err == 0)
        err = check_header(&eh);
    if (err == 0)
        err = read_exact(fd, ph, eh.e_phnum * sizeof(Elf64_Phdr), (off_t)eh.e_phoff);
    if (err < 0)
        return err;
    uint64_t lo = UINT64_MAX, hi = 0;
    gva_t phdr_vaddr = 0;
    for (int i = 0; i < eh.e_phnum; i++) {
        if (ph[i].p_type == PT_LOAD) {
            if (ph[i].p_filesz > ph[i].p_memsz || ph[i].p_vaddr + ph[i].p_memsz < ph[i].p_vaddr)
                return -ENOEXEC;
            lo = FJ_MIN(lo, FJ_ALIGN_DOWN(ph[i].p_vaddr, FJ_PAGE_SIZE));
            hi = FJ_MAX(hi, ph[i].p_vaddr + ph[i].p_memsz);
            if (ph[i].p_offset <= eh.e_phoff && eh.e_phoff < ph[i].p_offset + ph[i].p_filesz)
                phdr_vaddr = ph[i].p_vaddr + (eh.e_phoff - ph[i].p_offset);
        } else if (ph[i].p_type == PT_PHDR) {
            phdr_vaddr = ph[i].p_vaddr;
        } else if (ph[i].p_type == PT_INTERP) {
            if (ph[i].p_filesz >= sizeof(out->interp))
                return -ENOEXEC;
            if ((err = read_exact(fd, out->interp, ph[i].p_filesz, (off_t)ph[i].p_offset)) < 0)
                return err;
            out->interp[ph[i].p_filesz] = 0;
        }
    }
    if (hi <= lo)
        return -ENOEXEC;
    uint64_t span = FJ_ALIGN_UP(hi, FJ_PAGE_SIZE) - lo;
    gva_t at;
    bool fixed = eh.e_type == ET_EXEC;
    err = mm_map(mm, fixed ? lo : hint, span, PROT_READ | PROT_WRITE | PROT_EXEC, fixed, false, false,
                 MM_IMAGE, &at);
    if (err < 0)
        return err;
    mm_name_set(mm, at, span, name);
    gva_t base = fixed ? 0 : at - lo;
    if ((err = load_segments(mm, fd, ph, eh.e_phnum, base)) < 0)
        return err;
    out->base = base;
    out->entry = base + eh.e_entry;
    out->phdr = base + phdr_vaddr;
    out->phnum = eh.e_phnum;
    out->end = base + hi;
    return 0;
}

/* Pushes bytes below *sp (guest address), returning where they landed. */
static int push_bytes(struct mm *mm, gva_t *sp, const void *data, size_t len, gva_t *at)
{
    *sp -= len;
    *at = *sp;
    return mm_copy_to(mm, *sp, data, len);
}

int elf_build_stack(struct mm *mm, gva_t stack_top, const char *const *argv, const char *const *envp,
                    const struct elf_image *exe, const struct elf_image *interp, const char *execfn,
                    uint32_t uid, gva_t *rsp_out)
{
    size_t argc = 0, envc = 0;
    while (argv[argc])
        argc++;
    while (envp[envc])
        envc++;
    gva_t sp = stack_top - 16;
    gva_t *argv_at = calloc(argc + envc + 1, sizeof(gva_t));
    if (!argv_at)
        return -ENOMEM;
    gva_t *envp_at = argv_at + argc;
    int err = 0;
    gva_t execfn_at, platform_at, random_at;
    uint8_t rnd[16];
    if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
        memset(rnd, 0x5a, sizeof(rnd));
    err |= push_bytes(mm, &sp, execfn, strlen(execfn) + 1, &execfn_at);
    /* The strings in order, the arguments below the environment, as Linux
     * lays them out: each list is one range (mm->arg_start, env_start). */
    mm->env_end = sp;
    for (size_t i = envc; i-- > 0;)
        err |= push_bytes(mm, &sp, envp[i], strlen(envp[i]) + 1, &envp_at[i]);
    mm->env_start = mm->arg_end = sp;
    for (size_t i = argc; i-- > 0;)
        err |= push_bytes(mm, &sp, argv[i], strlen(argv[i]) + 1, &argv_at[i]);
    mm->arg_start = sp;
    err |= push_bytes(mm, &sp, "x86_64", 7, &platform_at);
    sp &= ~15ULL;
    err |= push_bytes(mm, &sp, rnd, sizeof(rnd), &random_at);
    uint64_t aux[][2] = {
        {AT_PHDR, exe->phdr},  {AT_PHENT, sizeof(Elf64_Phdr)}, {AT_PHNUM, exe->phnum},
        {AT_PAGESZ, 4096},     {AT_BASE, interp ? interp->base : 0}, {AT_FLAGS, 0},
        {AT_ENTRY, exe->entry}, {AT_UID, uid}, {AT_EUID, uid}, {AT_GID, uid}, {AT_EGID, uid},
        {AT_PLATFORM, platform_at}, {AT_HWCAP, 0x178bfbff}, {AT_CLKTCK, 100}, {AT_SECURE, 0},
        {AT_RANDOM, random_at}, {AT_HWCAP2, 0}, {AT_EXECFN, execfn_at},
        /* Last before AT_NULL: dropped (made AT_NULL) without a vDSO. */
        {kvm_vdso_available() ? AT_SYSINFO_EHDR : AT_NULL, FJ_VDSO_VA}, {AT_NULL, 0},
    };
    size_t words = 1 + argc + 1 + envc + 1 + FJ_ARRAY_SIZE(aux) * 2;
    sp = (sp - words * 8) & ~15ULL;
    uint64_t *w = calloc(words, 8);
    if (!w) {
        free(argv_at);
        return -ENOMEM;
    }
    size_t k = 0;
    w[k++] = argc;
    for (size_t i = 0; i < argc; i++)
        w[k++] = argv_at[i];
    w[k++] = 0;
    for (size_t i = 0; i < envc; i++)
        w[k++] = envp_at[i];
    w[k++] = 0;
    memcpy(&w[k], aux, sizeof(aux));
    err |= mm_copy_to(mm, sp, w, words * 8);
    free(w);
    free(argv_at);
    if (err)
        return -EFAULT;
    *rsp_out = sp;
    return 0;
}
