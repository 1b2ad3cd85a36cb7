"""Managed processes and terminals (docs/agent-protocol.md, "Managed
processes"): programs the host starts, stops and talks to while cells run.

One thread serves them all with one selector: each program's output
(stdout and stderr pipes, or a terminal's master side), its stdin when
bytes wait to be written, a pidfd per program for its end, and a wake-up
pipe for commands from the host.

Invariants:

* the thread never blocks except in ``select`` (every descriptor it reads
  or writes is non-blocking), so a program that stops reading its stdin
  cannot stall the output of the others; an idle supervisor uses no CPU;
* every program started runs in a session of its own (a terminal's
  program has the terminal as its controlling terminal), so a signal to it
  reaches its whole process group;
* for each program the host gets ``proc_started`` (or ``proc_failed``),
  then its output as ``proc_output`` frames, then exactly one ``proc_exit``
  once it ended and what it had written was read; nothing about that
  program follows, and its record here is gone.
"""

from __future__ import annotations

import base64
import fcntl
import os
import queue
import selectors
import shutil
import signal
import struct
import subprocess
import termios
import threading

from .channel import Channel

CHUNK = 1 << 16
DEFAULT_TERM = "xterm-256color"
KEPT_ENDS = 256  # ends remembered for a branch's host (proc_sync)


class _Program:
    def __init__(self, pid_id: str, popen: subprocess.Popen, tty: bool) -> None:
        self.id = pid_id
        self.popen = popen
        self.tty = tty
        self.outputs: dict[int, str] = {}  # fd -> stream name, until its end of file
        self.stdin_fd: int | None = None
        self.pending = bytearray()  # stdin bytes not yet written
        self.close_stdin = False  # close it once pending is written
        self.pidfd = -1
        self.owned: list[int] = []  # closed when the program ends


class Supervisor:
    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self._commands: queue.SimpleQueue = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._programs: dict[str, _Program] = {}
        self._ends: dict[str, list] = {}  # the newest ends (exit code, signal), for proc_sync
        self._by_fd: dict[int, _Program] = {}
        self._setsid = shutil.which("setsid")
        threading.Thread(target=self._main, name="forkd-supervisor", daemon=True).start()

    def submit(self, msg: dict | None) -> None:
        """A ``proc_*`` frame from the host (None: the host is gone)."""
        self._commands.put(msg)
        try:
            os.write(self._wake_w, b"!")
        except BlockingIOError:
            pass  # a wake-up is already pending

    # ---------------------------------------------------------------- loop
    def _main(self) -> None:
        while True:
            for key, events in self._sel.select():
                if key.data is None:
                    if not self._drain_commands():
                        self._kill_all()
                        return
                elif key.data == "exit":
                    self._ended(self._by_fd[key.fd])
                else:
                    program = self._by_fd.get(key.fd)
                    if program is None:
                        continue  # ended earlier in this round
                    if events & selectors.EVENT_WRITE:
                        self._write_stdin(program)
                    if events & selectors.EVENT_READ and key.fd in program.outputs:
                        self._read_output(program, key.fd)

    def _drain_commands(self) -> bool:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        while True:
            try:
                msg = self._commands.get_nowait()
            except queue.Empty:
                return True
            if msg is None:
                return False
            try:
                self._command(msg)
            except Exception as e:  # a fault here must not end the supervisor
                self._send("proc_failed", msg.get("proc"), error=f"{type(e).__name__}: {e}")

    def _command(self, msg: dict) -> None:
        op, pid_id = msg.get("op"), msg.get("proc")
        if op == "proc_start":
            self._start(pid_id, msg)
            return
        if op == "proc_sync":  # a branch's host asks what runs and what ended
            running = {p.id: p.popen.pid for p in self._programs.values()}
            self.channel.send({"op": "proc_synced", "running": running, "ended": self._ends})
            return
        program = self._programs.get(pid_id)
        if program is None:
            return  # it ended; the host has (or will get) its proc_exit
        if op == "proc_stdin":
            if program.stdin_fd is None:
                return
            program.pending += base64.b64decode(msg.get("data") or "")
            program.close_stdin |= bool(msg.get("eof")) and not program.tty
            self._write_stdin(program)
        elif op == "proc_signal":
            _signal_group(program.popen.pid, int(msg.get("signal", signal.SIGTERM)))
        elif op == "proc_resize" and program.tty and program.stdin_fd is not None:
            _set_size(program.stdin_fd, int(msg["rows"]), int(msg["cols"]))

    # --------------------------------------------------------------- start
    def _start(self, pid_id: object, msg: dict) -> None:
        if not isinstance(pid_id, str) or pid_id in self._programs:
            self._send("proc_failed", pid_id, error="a process needs a new string 'proc' id")
            return
        argv, cwd = msg.get("argv"), msg.get("cwd") or None
        env = dict(os.environ)
        env.update(msg.get("env") or {})
        try:
            if msg.get("tty"):
                program = self._spawn_on_terminal(pid_id, argv, env, cwd, msg)
            else:
                popen = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, env=env, cwd=cwd,
                                         start_new_session=True)  # fmt: skip
                program = _Program(pid_id, popen, tty=False)
                program.outputs = {popen.stdout.fileno(): "stdout", popen.stderr.fileno(): "stderr"}
                program.stdin_fd = popen.stdin.fileno()
            program.pidfd = os.pidfd_open(program.popen.pid)
        except Exception as e:
            self._send("proc_failed", pid_id, error=f"{type(e).__name__}: {e}")
            return
        for fd in {*program.outputs, program.stdin_fd}:
            os.set_blocking(fd, False)
        self._programs[pid_id] = program
        self._send("proc_started", pid_id, pid=program.popen.pid)
        self._by_fd[program.pidfd] = program
        self._sel.register(program.pidfd, selectors.EVENT_READ, "exit")
        for fd in program.outputs:
            self._by_fd[fd] = program
            self._sel.register(fd, selectors.EVENT_READ, "io")

    def _spawn_on_terminal(self, pid_id: str, argv: list, env: dict, cwd: str | None,
                           msg: dict) -> _Program:  # fmt: skip
        """A program on a new terminal, which becomes its controlling one."""
        _check_runnable(argv, env)  # setsid would start, then fail to exec it
        master, slave = os.openpty()
        try:
            os.set_inheritable(master, False)
            _set_size(master, int(msg.get("rows") or 24), int(msg.get("cols") or 80))
            env["TERM"] = str(msg.get("term") or env.get("TERM") or DEFAULT_TERM)
            if self._setsid:  # setsid --ctty: the agent need not fork itself
                popen = subprocess.Popen([self._setsid, "--ctty", *argv], stdin=slave,
                                         stdout=slave, stderr=slave, env=env, cwd=cwd)  # fmt: skip
            else:
                popen = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                                         cwd=cwd, start_new_session=True,
                                         preexec_fn=_take_terminal)  # fmt: skip
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        program = _Program(pid_id, popen, tty=True)
        program.outputs = {master: "tty"}
        program.stdin_fd = master
        program.owned.append(master)
        return program

    # ------------------------------------------------------------------ io
    def _read_output(self, program: _Program, fd: int) -> bool:
        """Reads one chunk; False when nothing more is there now (it would
        block, or the output ended: then it is no longer watched)."""
        try:
            data = os.read(fd, CHUNK)
        except BlockingIOError:
            return False
        except OSError:  # EIO: a terminal whose other side is closed
            data = b""
        if data:
            self._send("proc_output", program.id, stream=program.outputs[fd], data=data)
            return True
        del program.outputs[fd]
        self._watch(program, fd)
        return False

    def _write_stdin(self, program: _Program) -> None:
        fd = program.stdin_fd
        try:
            while program.pending:
                written = os.write(fd, program.pending)
                del program.pending[:written]
        except BlockingIOError:
            pass
        except OSError:  # the program closed its stdin: what is left is dropped
            program.pending.clear()
        if not program.pending and program.close_stdin:
            self._forget_fd(fd)
            program.popen.stdin.close()
            program.stdin_fd = None
            return
        self._watch(program, fd)

    def _watch(self, program: _Program, fd: int) -> None:
        """(Re)registers fd for what is still wanted of it."""
        events = selectors.EVENT_READ if fd in program.outputs else 0
        if fd == program.stdin_fd and program.pending:
            events |= selectors.EVENT_WRITE
        if not events:
            self._forget_fd(fd)
            return
        self._by_fd[fd] = program
        try:
            self._sel.modify(fd, events, "io")
        except KeyError:
            self._sel.register(fd, events, "io")

    def _forget_fd(self, fd: int) -> None:
        try:
            self._sel.unregister(fd)
        except KeyError:
            pass
        self._by_fd.pop(fd, None)

    # ----------------------------------------------------------------- end
    def _ended(self, program: _Program) -> None:
        code = program.popen.wait()
        for fd in list(program.outputs):  # what it wrote before it ended is all there
            while fd in program.outputs and self._read_output(program, fd):
                pass
        for fd in {*program.outputs, program.stdin_fd, program.pidfd} - {None}:
            self._forget_fd(fd)
        for stream in (program.popen.stdin, program.popen.stdout, program.popen.stderr):
            if stream is not None:
                stream.close()
        for fd in (*program.owned, program.pidfd):
            os.close(fd)
        del self._programs[program.id]
        end = [code, None] if code >= 0 else [None, -code]
        self._ends[program.id] = end
        while len(self._ends) > KEPT_ENDS:
            del self._ends[next(iter(self._ends))]
        self._send("proc_exit", program.id, exit_code=end[0], signal=end[1])

    def _kill_all(self) -> None:
        for program in self._programs.values():
            _signal_group(program.popen.pid, signal.SIGKILL)

    def _send(self, op: str, pid_id: object, **fields: object) -> None:
        if "data" in fields:
            fields["data"] = base64.b64encode(fields["data"]).decode("ascii")
        self.channel.send({"op": op, "proc": pid_id, **fields})


def _signal_group(pid: int, signo: int) -> None:
    try:
        os.killpg(pid, signo)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, signo)
        except ProcessLookupError:
            pass


def _set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _check_runnable(argv: list, env: dict) -> None:
    """FileNotFoundError / PermissionError as exec would give them."""
    if not argv or not isinstance(argv[0], str):
        raise TypeError("argv must be a non-empty list of strings")
    name = argv[0]
    found = name if "/" in name else shutil.which(name, path=env.get("PATH", os.defpath))
    if found is None or not os.path.exists(found):
        raise FileNotFoundError(2, "No such file or directory", name)
    if not os.access(found, os.X_OK) or os.path.isdir(found):
        raise PermissionError(13, "Permission denied", name)


def _take_terminal() -> None:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
