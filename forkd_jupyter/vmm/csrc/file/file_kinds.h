/* Open-file kinds of the view: host files and directories (read-only), layer
 * files and directories (memfs), synthesized directories, devices, pipes. */
#ifndef FILE_KINDS_H
#define FILE_KINDS_H

#include "core/fdt.h"
#include "fs/view_impl.h"

/* Takes over host_fd. */
struct file *file_host_new(int host_fd, int flags, const char *path, bool dir);
/* Takes over the node reference. */
struct file *file_layer_new(struct memfs *fs, struct memfs_node *node, int flags, const char *path);
/* A regular layer file with no name (O_TMPFILE, memfd_create): made in the
 * layer's root directory, which the guest never sees, and unlinked at once,
 * so it lives exactly as long as its descriptions. */
int file_layer_anon(struct memfs *fs, uint32_t perms, int flags, const char *path, struct file **out);
struct file *file_vdir_new(int flags, const char *path);
struct file *file_dev_new(const char *name, int flags, const char *path);
/* A pipe: out[0] read end, out[1] write end. */
int file_pipe_new(int flags, struct file *out[2]);

bool file_is_dir(const struct file *f);
/* The memfs a layer file belongs to (NULL for other kinds). */
struct memfs *file_layer_fs(const struct file *f);

#endif
