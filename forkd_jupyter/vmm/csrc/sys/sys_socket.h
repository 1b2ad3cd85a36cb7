/* Shared by the sockets family: sys_socket.c (making, naming, connecting
 * sockets and their options) and sys_socket_msg.c (sending and receiving). */
#ifndef SYS_SOCKET_H
#define SYS_SOCKET_H

#include "file/sock.h"
#include "sys/sys.h"

/* The socket at fd: NULL with *err -EBADF (not open) or -ENOTSOCK. */
struct file *sys_sock_at(struct sandbox *sb, uint64_t fd, int64_t *err);
/* A guest address of len bytes at gva (EINVAL, EFAULT). */
int sys_sock_read_addr(struct sandbox *sb, gva_t gva, uint64_t len, struct sock_addr *out);
/* Writes a to the guest's (addr, *addrlen) as accept and getsockname do:
 * truncated to *addrlen, which becomes a's length. addr 0: nothing. */
int64_t sys_sock_write_addr(struct sandbox *sb, gva_t addr, gva_t addrlen,
                            const struct sock_addr *a);
/* What a names for a socket of s's type: *target, the socket bound there
 * (NULL when nothing is), or -errno: ENOENT (no such path), ECONNREFUSED
 * (a path that names no socket), ENETUNREACH (outside the sandbox). */
int sys_sock_target(struct sandbox *sb, const struct sock *s, const struct sock_addr *a,
                    struct sock **target);

#endif
