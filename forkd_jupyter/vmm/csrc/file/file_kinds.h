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
int file_layer_anon(struct memfs *fs, uint32_t perms, int flags, const char *path,
                    struct file **out);
struct file *file_vdir_new(int flags, const char *path);
struct file *file_dev_new(const char *name, int flags, const char *path);
/* A pipe: out[0] read end, out[1] write end. */
int file_pipe_new(int flags, struct file *out[2]);
bool file_is_pipe(const struct file *f);
/* F_GETPIPE_SZ (want < 0) and F_SETPIPE_SZ: the pipe's capacity, a power
 * of two from 4096 to 65536 bytes (-EPERM above, -EBUSY below what it
 * holds, -EBADF for another kind). */
int64_t file_pipe_size(struct file *f, int64_t want);
/* A new description of pipe f's buffer, the end flags' access mode names
 * (open of /proc/self/fd/N); NULL when out of memory. */
struct file *file_pipe_reopen(struct file *f, int flags);
/* An open of FIFO node (layer fs) as Linux makes it: an end of the node's
 * pipe; a blocking read-only (write-only) open with no writer (reader)
 * open waits for a writer's (reader's) open, a non-blocking write-only one
 * with no reader is -ENXIO, O_RDWR never waits. -EINTR or SB_ERESTART
 * when the wait is cut. */
int file_fifo_open(struct sandbox *sb, struct memfs *fs, struct memfs_node *node, int flags,
                   struct file **out);

/* file_socket.c: a connected pair of AF_UNIX sockets of type (SOCK_STREAM
 * or SOCK_DGRAM; O_NONBLOCK in flags applies to both). The rest of the
 * socket kind is in file/sock.h. */
int file_socketpair_new(int type, int flags, struct file *out[2]);
bool file_is_socket(const struct file *f);

/* file_pidfd.c: a descriptor of process pid (pidfd_open), readable once
 * it has ended; file_pidfd_pid is -1 for other kinds. */
struct file *file_pidfd_new(uint32_t pid, int flags);
int64_t file_pidfd_pid(const struct file *f);

/* file_eventfd.c */
struct file *file_eventfd_new(uint64_t initial, int flags);

/* file_timerfd.c: a timerfd on clock (CLOCK_REALTIME, _MONOTONIC or
 * _BOOTTIME); get gives the time to the next expiry (0: disarmed) and the
 * period, set arms it (value 0: disarms) and drops unread expirations
 * (-EINVAL for another kind). */
struct file *file_timerfd_new(clockid_t clock, int flags);
int file_timerfd_get(struct file *f, uint64_t *value_ns, uint64_t *period_ns);
int file_timerfd_set(struct file *f, bool absolute, uint64_t value_ns, uint64_t period_ns);

/* file_signalfd.c: a signalfd of mask (VMM bits; SIGKILL and SIGSTOP are
 * dropped); set_mask changes an existing one (-EINVAL for another kind). */
struct file *file_signalfd_new(uint64_t mask, int flags);
int file_signalfd_set_mask(struct file *f, uint64_t mask);

/* file_epoll.c: an epoll instance and its interest list. */
struct epoll_event;
struct file *file_epoll_new(int flags);
bool file_is_epoll(const struct file *f);
int file_epoll_ctl(struct sandbox *sb, struct file *ep, int op, int fd, struct file *target,
                   uint32_t events, uint64_t data);
/* Fills out with up to max ready events; returns how many. */
int file_epoll_collect(struct sandbox *sb, struct file *ep, struct epoll_event *out, int max);
/* The watched descriptors and their events (for a blocking wait). */
int file_epoll_fds(struct sandbox *sb, struct file *ep, int *fds, short *events, int max);

bool file_is_dir(const struct file *f);
/* The memfs a layer file belongs to (NULL for other kinds). */
struct memfs *file_layer_fs(const struct file *f);

#endif
