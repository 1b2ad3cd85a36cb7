/* The guest's standard streams and its control channel:
 *   fd 0  reads end-of-file
 *   fd 1, 2  writes become SB_CH_STDOUT / SB_CH_STDERR frames to the host
 *   fd 3  the control channel: reads come from the host socket, writes
 *         become SB_CH_CTL frames (ordered with the output frames) */
#ifndef FILE_STDIO_H
#define FILE_STDIO_H

#include "core/fdt.h"
#include "core/sandbox.h"

struct file *file_stdio_stdin(void);
struct file *file_stdio_out(enum sb_channel ch);
/* Owns a duplicate of host_fd (the sandbox's socket to the host). */
struct file *file_stdio_ctl(int host_fd);
/* A stream or control channel rebuilt from a saved snapshot: kind is its
 * file_ops kind, priv its channel; a control channel is unconnected (as a
 * clone). NULL for an unknown kind. */
struct file *file_stdio_restore(const char *kind, uintptr_t priv, int flags);
/* Connects every cloned (unconnected) control-channel file in t to host_fd. */
void file_stdio_attach_ctl(struct fdt *t, int host_fd);

#endif
