/* Shared by the two halves of the files family (sys_file_path.c for
 * path-based calls, sys_file_fd.c for descriptor-based ones). */
#ifndef SYS_FILE_H
#define SYS_FILE_H

#include "sandbox.h"
#include "view_impl.h"

int sysf_path(struct sandbox *sb, uint64_t gva, char *out);
int sysf_resolve_at(struct sandbox *sb, int dirfd, const char *path, bool follow, struct view_node *n);
int64_t sysf_openat(struct sandbox *sb, int dirfd, uint64_t path_gva, int flags, uint32_t mode);

#endif
