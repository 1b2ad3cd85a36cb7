/* Pseudo-terminals inside the sandbox: opening /dev/ptmx makes a pair, its
 * master end the descriptor returned and its terminal end /dev/pts/N. What
 * os.openpty, pty.fork, a shell with job control and a terminal of the
 * process API use. They live in the VMM; no host terminal is involved.
 *
 * The parts, each calling only those listed before it: pty_ldisc.c (the
 * line discipline: input processing, canonical lines, echo, output
 * processing, termios), file_pty.c (a pair's life, the files of its ends,
 * their ioctls, /dev/pts and /dev/tty).
 *
 * Invariants, all under the sandbox's big_lock (one per sandbox, shared by
 * its processes):
 * - A pty is on its sandbox's list (procs->ptys) from the master's open
 *   until its last description of either end is released; then it is
 *   freed. Its index is the lowest one free on that list.
 * - in holds what reads of the terminal end get: in canonical mode only
 *   whole lines (each a record of ready[]; a record of 0 bytes is an
 *   end-of-file), in raw mode every byte. out holds what reads of the
 *   master get: the terminal's output and the echo, after output
 *   processing. */
#ifndef PTY_H
#define PTY_H

#include <stdint.h>
#include <sys/ioctl.h>

#include "core/sandbox.h"
#include "file/ring.h"

#define PTY_MAX 64        /* pairs per sandbox at once */
#define PTY_LINE_MAX 4095 /* N_TTY_BUF_SIZE - 1: the longest canonical line */
#define PTY_MAX_LINES 256 /* lines ready to be read at once */
#define PTY_MAJOR 136     /* /dev/pts/N, as on Linux */

/* The kernel's struct termios (TCGETS/TCSETS), not glibc's. */
struct pty_termios {
    uint32_t iflag, oflag, cflag, lflag;
    uint8_t line;
    uint8_t cc[19];
};

struct pty {
    int index;
    int masters, slaves; /* open descriptions of each end */
    bool slave_opened;   /* once: the master reads EIO when no terminal end is left */
    bool locked;         /* TIOCSPTLCK: the terminal end cannot be opened */
    struct sb_procs *space;
    struct pty *next;
    struct pty_termios tio;
    struct winsize ws;
    uint32_t session, fg_pgrp; /* the session it controls (0: none), its foreground group */
    bool lnext;                /* the next input byte is taken literally (VLNEXT) */
    struct ring in, out;
    uint8_t line[PTY_LINE_MAX];
    uint32_t line_len;
    uint32_t ready[PTY_MAX_LINES]; /* canonical: lengths of the lines in `in`, oldest first */
    int n_ready;
};

/* pty_ldisc.c */
void pty_ldisc_init(struct pty *p);
/* The master writes buf: processed byte by byte (signals, editing, echo).
 * Returns how many bytes were taken (fewer when `in` is full). */
uint64_t pty_input(struct sandbox *sb, struct pty *p, const uint8_t *buf, uint64_t len);
/* The terminal end writes buf: output processing into `out`, waiting for
 * room unless nonblock; -EIO once no master is left. */
int64_t pty_output(struct sandbox *sb, struct pty *p, const uint8_t *buf, uint64_t len,
                   bool nonblock);
/* What a read of the terminal end gets now: bytes (0: end of file), or
 * -EAGAIN when nothing is ready. */
int64_t pty_take_input(struct pty *p, uint8_t *buf, uint64_t len);
bool pty_input_ready(const struct pty *p);
/* TCSETS: the new settings (a line being edited is made ready when
 * canonical mode ends). */
void pty_set_termios(struct pty *p, const struct pty_termios *t);
/* TCFLSH: drops what waits in (which 0), out (1) or both (2). */
void pty_flush(struct pty *p, int which);

/* file_pty.c */
/* Opens /dev/ptmx (a new pair), /dev/tty (the caller's controlling
 * terminal) or /dev/pts/N; -ENOENT, -ENXIO, -EIO (locked), -ENOSPC. */
int file_pty_open(struct sandbox *sb, const char *path, int flags, struct file **out);
/* The stat of /dev/pts/N (-ENOENT when no such pair). */
int file_pty_stat_path(struct sandbox *sb, const char *path, struct stat *st);
/* /dev/ptmx, /dev/tty or /dev/pts/N. */
bool file_pty_path(const char *path);
/* The indexes of the sandbox's pairs, for a listing of /dev/pts. */
int file_pty_indexes(struct sandbox *sb, int *out, int max);

#endif
