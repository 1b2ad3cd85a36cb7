/* The line discipline of a pseudo-terminal (file/pty.h), as Linux's n_tty
 * does what shells, REPLs and password prompts rely on: input mapping
 * (ICRNL, INLCR, IGNCR), signals from the keyboard (ISIG: VINTR, VQUIT,
 * VSUSP to the foreground group), canonical line editing (VERASE, VWERASE,
 * VKILL, VEOF, VEOL, VLNEXT), echo (ECHO, ECHOE, ECHOK, ECHONL, ECHOCTL)
 * and output processing (OPOST, ONLCR). Not modelled: parity, flow control
 * (VSTART and VSTOP are swallowed), VMIN above 1 and VTIME (a raw read
 * returns what is there, at least one byte unless VMIN is 0). */
#define _GNU_SOURCE
#include <signal.h>
#include <string.h>
#include <termios.h>

#include "core/proc.h"
#include "file/pty.h"

void pty_ldisc_init(struct pty *p) {
    /* Linux's tty_std_termios, as a new pseudo-terminal has it */
    static const uint8_t cc[19] = {003, 034, 0177, 025, 004, 0,   1,   0, 021,
                                   023, 032, 0,    022, 017, 027, 026, 0};
    p->tio = (struct pty_termios){
        .iflag = ICRNL | IXON,
        .oflag = OPOST | ONLCR,
        .cflag = B38400 | CS8 | CREAD | HUPCL,
        .lflag = ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN,
    };
    memcpy(p->tio.cc, cc, sizeof(cc));
    p->ws = (struct winsize){.ws_row = 24, .ws_col = 80};
}

static bool has(const struct pty *p, uint32_t lflag) { return p->tio.lflag & lflag; }

/* Output processing of one byte into out (as much as fits). */
static void put_out(struct pty *p, uint8_t c) {
    if ((p->tio.oflag & OPOST) && (p->tio.oflag & ONLCR) && c == '\n' && ring_space(&p->out) >= 2) {
        ring_put(&p->out, "\r\n", 2);
        return;
    }
    ring_put(&p->out, &c, 1);
}

static void echo(struct pty *p, uint8_t c) {
    if (!has(p, ECHO)) {
        if (c == '\n' && has(p, ECHONL))
            put_out(p, c);
        return;
    }
    if (has(p, ECHOCTL) && (c < 0x20 || c == 0x7f) && c != '\n' && c != '\t') {
        uint8_t caret[2] = {'^', c == 0x7f ? '?' : c + 0x40};
        ring_put(&p->out, caret, 2);
        return;
    }
    put_out(p, c);
}

/* Removes the last character of the line being edited, and its echo. */
static void erase_one(struct pty *p) {
    if (!p->line_len)
        return;
    uint8_t c = p->line[--p->line_len];
    if (has(p, ECHO) && has(p, ECHOE)) {
        int width = has(p, ECHOCTL) && (c < 0x20 || c == 0x7f) ? 2 : 1;
        for (int i = 0; i < width; i++)
            ring_put(&p->out, "\b \b", 3);
    }
}

/* The line being edited is ready to be read (with its delimiter, if any). */
static bool commit_line(struct pty *p) {
    if (p->n_ready == PTY_MAX_LINES || ring_space(&p->in) < p->line_len)
        return false;
    ring_put(&p->in, p->line, p->line_len);
    p->ready[p->n_ready++] = p->line_len;
    p->line_len = 0;
    return true;
}

static void keyboard_signal(struct sandbox *sb, struct pty *p, int signo, uint8_t c) {
    if (!(p->tio.lflag & NOFLSH)) {
        p->line_len = 0;
        pty_flush(p, 0);
    }
    echo(p, c);
    if (p->fg_pgrp)
        sb_proc_kill(sb, -(int64_t)p->fg_pgrp, signo);
}

/* One canonical-mode byte; false when it cannot be taken now. */
static bool canonical(struct pty *p, uint8_t c) {
    const uint8_t *cc = p->tio.cc;
    if (c == cc[VERASE] && c) {
        erase_one(p);
    } else if (c == cc[VWERASE] && c && has(p, IEXTEN)) {
        while (p->line_len && p->line[p->line_len - 1] == ' ')
            erase_one(p);
        while (p->line_len && p->line[p->line_len - 1] != ' ')
            erase_one(p);
    } else if (c == cc[VKILL] && c) {
        while (p->line_len)
            erase_one(p);
    } else if (c == cc[VEOF] && c) {
        return commit_line(p); /* the byte itself is not part of the line */
    } else if (c == '\n' || (c == cc[VEOL] && c) || (c == cc[VEOL2] && c)) {
        if (p->line_len == PTY_LINE_MAX)
            p->line_len--; /* the delimiter always fits */
        p->line[p->line_len++] = c;
        if (!commit_line(p)) {
            p->line_len--;
            return false;
        }
        echo(p, c);
    } else if (p->line_len < PTY_LINE_MAX) {
        p->line[p->line_len++] = c;
        echo(p, c);
    } /* a full line drops what comes, as Linux does */
    return true;
}

uint64_t pty_input(struct sandbox *sb, struct pty *p, const uint8_t *buf, uint64_t len) {
    const uint8_t *cc = p->tio.cc;
    uint32_t iflag = p->tio.iflag;
    uint64_t i = 0;
    for (; i < len; i++) {
        uint8_t c = buf[i];
        if (p->lnext) {
            p->lnext = false;
        } else {
            if (c == '\r' && (iflag & IGNCR))
                continue;
            if (c == '\r' && (iflag & ICRNL))
                c = '\n';
            else if (c == '\n' && (iflag & INLCR))
                c = '\r';
            if ((iflag & IXON) && c && (c == cc[VSTART] || c == cc[VSTOP]))
                continue;
            if (has(p, ISIG) && c) {
                int signo = c == cc[VINTR]   ? SIGINT
                            : c == cc[VQUIT] ? SIGQUIT
                            : c == cc[VSUSP] ? SIGTSTP
                                             : 0;
                if (signo) {
                    keyboard_signal(sb, p, signo, c);
                    continue;
                }
            }
            if (has(p, IEXTEN) && c && c == cc[VLNEXT]) {
                p->lnext = true;
                if (has(p, ECHO) && has(p, ECHOCTL))
                    ring_put(&p->out, "^\b", 2);
                continue;
            }
        }
        if (has(p, ICANON)) {
            if (!canonical(p, c))
                break;
        } else {
            if (!ring_space(&p->in))
                break;
            ring_put(&p->in, &c, 1);
            echo(p, c);
        }
    }
    return i;
}

static bool no_master(const void *p) { return ((const struct pty *)p)->masters == 0; }

int64_t pty_output(struct sandbox *sb, struct pty *p, const uint8_t *buf, uint64_t len,
                   bool nonblock) {
    if (!(p->tio.oflag & OPOST) || !(p->tio.oflag & ONLCR)) {
        int64_t r = ring_write(sb, &p->out, buf, len, nonblock, no_master, p);
        return r == -EPIPE ? -EIO : r;
    }
    uint8_t chunk[2 * RING_ATOMIC];
    uint64_t done = 0;
    while (done < len) { /* a chunk at a time, each newline made CR LF */
        uint64_t take = 0, n = 0;
        while (done + take < len && n + 2 <= sizeof(chunk) && take < RING_ATOMIC) {
            uint8_t c = buf[done + take++];
            if (c == '\n')
                chunk[n++] = '\r';
            chunk[n++] = c;
        }
        int64_t r = ring_write(sb, &p->out, chunk, n, nonblock, no_master, p);
        if (r < 0)
            return done ? (int64_t)done : r == -EPIPE ? -EIO : r;
        if ((uint64_t)r < n) /* a partial chunk: count the input bytes it held */
            return (int64_t)(done + (uint64_t)r * take / n);
        done += take;
    }
    return (int64_t)done;
}

bool pty_input_ready(const struct pty *p) {
    if (has(p, ICANON))
        return p->n_ready > 0;
    return p->in.len > 0 || p->tio.cc[VMIN] == 0;
}

int64_t pty_take_input(struct pty *p, uint8_t *buf, uint64_t len) {
    if (!has(p, ICANON)) {
        if (!p->in.len)
            return p->tio.cc[VMIN] == 0 ? 0 : -EAGAIN;
        return (int64_t)ring_get(&p->in, buf, len, false);
    }
    if (!p->n_ready)
        return -EAGAIN;
    uint64_t n = ring_get(&p->in, buf, FJ_MIN(len, (uint64_t)p->ready[0]), false);
    p->ready[0] -= (uint32_t)n;
    if (p->ready[0] == 0) { /* the line is read whole (or it was an end of file) */
        memmove(p->ready, p->ready + 1, (size_t)(p->n_ready - 1) * sizeof(p->ready[0]));
        p->n_ready--;
    }
    return (int64_t)n;
}

void pty_set_termios(struct pty *p, const struct pty_termios *t) {
    bool was_canonical = has(p, ICANON);
    p->tio = *t;
    if (was_canonical && !has(p, ICANON)) { /* the line being edited is input now */
        uint32_t n = FJ_MIN(p->line_len, (uint32_t)ring_space(&p->in));
        ring_put(&p->in, p->line, n);
        p->line_len = 0;
        p->n_ready = 0;
    } else if (!was_canonical && has(p, ICANON) && p->in.len) {
        p->ready[0] = (uint32_t)p->in.len; /* what waits reads as one line */
        p->n_ready = 1;
    }
}

void pty_flush(struct pty *p, int which) {
    if (which == 0 || which == 2) {
        p->in.head = p->in.len = 0;
        p->n_ready = 0;
        p->line_len = 0;
    }
    if (which == 1 || which == 2)
        p->out.head = p->out.len = 0;
}
