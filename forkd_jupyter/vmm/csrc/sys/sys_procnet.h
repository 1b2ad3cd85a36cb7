/* The files of /proc/net (sys_procnet.c), rendered as sys_procfs.c's table
 * renders its files: dev, tcp, tcp6, udp, udp6, unix. */
#ifndef SYS_PROCNET_H
#define SYS_PROCNET_H

#include "core/sandbox.h"
#include "sys/sys_text.h"

void sysf_net_dev(struct sandbox *sb, struct sb_thread *thread, struct text *t);
void sysf_net_tcp(struct sandbox *sb, struct sb_thread *thread, struct text *t);
void sysf_net_tcp6(struct sandbox *sb, struct sb_thread *thread, struct text *t);
void sysf_net_udp(struct sandbox *sb, struct sb_thread *thread, struct text *t);
void sysf_net_udp6(struct sandbox *sb, struct sb_thread *thread, struct text *t);
void sysf_net_unix(struct sandbox *sb, struct sb_thread *thread, struct text *t);

#endif
