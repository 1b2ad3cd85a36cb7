/* execve (exec.c). */
#ifndef EXEC_H
#define EXEC_H

#include "core/sandbox.h"
#include "core/sig.h"

/* What sb_exec returns when the new program is in place: the registers are
 * the new program's (the system call returns nothing). */
#define EXEC_DONE SIG_REGS_REPLACED

/* execve(program, argv, envp) of the calling process: program a path in
 * the sandbox's view, argv and envp guest addresses; for a process besides
 * the first, with one thread. EXEC_DONE or -errno (the old program then
 * carries on). */
int64_t sb_exec(struct sandbox *sb, const char *program, gva_t argv, gva_t envp);

#endif
