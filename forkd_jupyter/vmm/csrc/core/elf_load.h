/* Loading ELF images into the guest and building the initial stack. */
#ifndef ELF_LOAD_H
#define ELF_LOAD_H

#include "core/mm.h"

struct elf_image {
    gva_t base;   /* load bias */
    gva_t entry;
    gva_t phdr;   /* address of the program headers in guest memory */
    uint16_t phnum;
    gva_t end;    /* end of the highest segment */
    char interp[256]; /* PT_INTERP, or "" */
};

/* Maps the PT_LOAD segments of host_path; position-independent images go at
 * hint (or anywhere when 0). -errno; -ENOEXEC for a file that is not an
 * x86-64 ELF executable or shared object. */
int elf_load(struct mm *mm, const char *host_path, gva_t hint, struct elf_image *out);
/* The same from the open file fd (left open), whose mapping the guest sees
 * under name. */
int elf_load_fd(struct mm *mm, int fd, const char *name, gva_t hint, struct elf_image *out);

/* Writes argc/argv/envp/auxv below stack_top as the kernel would for an
 * exec of exe with dynamic loader interp; returns the initial rsp. */
int elf_build_stack(struct mm *mm, gva_t stack_top, const char *const *argv, const char *const *envp,
                    const struct elf_image *exe, const struct elf_image *interp, const char *execfn,
                    uint32_t uid, gva_t *rsp_out);

#endif
