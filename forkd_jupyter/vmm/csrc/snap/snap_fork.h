/* The memory of forked processes (snap_fork.c). */
#ifndef SNAP_FORK_H
#define SNAP_FORK_H

#include "core/sandbox.h"

/* Lets the processes of sb's sandbox fork (sets procs->fork_memory). */
void snap_fork_attach(struct sandbox *sb);

#endif
