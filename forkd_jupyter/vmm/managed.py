"""Managed processes and terminals of one sandbox, seen from the host
(docs/processes.md): programs started beside the cells, whose output is
kept in a capped log while they run and after they end.

The guest side is the agent's supervisor (guest/forkd_agent/supervisor.py);
the two talk in ``proc_*`` frames (docs/agent-protocol.md).

Invariants:

* a process's log keeps at most ``log_limit`` bytes: the newest output;
  older chunks are dropped whole (counted in ``dropped_bytes``), so a
  runaway program never grows the host's memory without bound;
* every chunk has a sequence number, increasing from 1, so a reader that
  follows a log (SSE) can resume after the last chunk it saw and is told
  when chunks it never saw were dropped;
* a process is ``starting`` until the guest answers, then ``running``,
  then ``exited`` (exit code or signal), or ``failed`` (it never started),
  or ``lost`` (the sandbox ended under it); the last three never change;
* at most MAX_ALIVE processes run at once per sandbox; the records of
  ended ones are kept, the oldest forgotten beyond MAX_KEPT.
"""

from __future__ import annotations

import base64
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable

from .errors import ProcessLimit, ProcessNotFound, ProcessNotRunning, SandboxError

MAX_ALIVE = 16
MAX_KEPT = 64
DEFAULT_LOG_LIMIT = 1 << 20
MAX_LOG_LIMIT = 64 << 20
ENDED = ("exited", "failed", "lost")

_ids = itertools.count(1)
# What a branch's copy of a record keeps besides its id, log and counters.
_COPIED = ("state", "pid", "exit_code", "signal", "error", "started_at", "ended_at",
           "dropped_bytes", "_kept", "_seq")  # fmt: skip


class ManagedProcess:
    def __init__(self, argv: list[str], tty: bool, log_limit: int, cols: int, rows: int) -> None:
        self.id = f"p-{next(_ids)}"
        self.argv = list(argv)
        self.tty = tty
        self.cols, self.rows = cols, rows
        self.log_limit = log_limit
        self.state = "starting"
        self.pid: int | None = None
        self.exit_code: int | None = None
        self.signal: int | None = None
        self.error: str | None = None
        self.started_at = time.time()
        self.ended_at: float | None = None
        self.output_bytes = {"stdout": 0, "stderr": 0, "tty": 0}
        self.dropped_bytes = 0
        self._chunks: deque[tuple[int, str, bytes]] = deque()
        self._kept = 0
        self._seq = 0
        self._changed = threading.Condition()
        self.listeners: set[Callable[[], None]] = set()

    @property
    def ended(self) -> bool:
        return self.state in ENDED

    def copy(self) -> ManagedProcess:
        """This record as a branch inherits it: the same id, state and kept
        log, listeners of its own."""
        with self._changed:
            c = ManagedProcess(self.argv, self.tty, self.log_limit, self.cols, self.rows)
            c.id = self.id
            for name in _COPIED:
                setattr(c, name, getattr(self, name))
            c.output_bytes = dict(self.output_bytes)
            c._chunks = deque(self._chunks)
            return c

    def to_dict(self) -> dict:
        with self._changed:
            return {
                "id": self.id,
                "argv": self.argv,
                "tty": self.tty,
                "state": self.state,
                "pid": self.pid,
                "exit_code": self.exit_code,
                "signal": self.signal,
                "error": self.error,
                "started_at": self.started_at,
                "ended_at": self.ended_at,
                "output_bytes": dict(self.output_bytes),
                "log_bytes": self._kept,
                "dropped_bytes": self.dropped_bytes,
                "log_limit_bytes": self.log_limit,
                "last_seq": self._seq,
            }

    def after(self, seq: int) -> tuple[list[tuple[int, str, bytes]], bool]:
        """The kept chunks after ``seq``, and whether some after it were
        dropped before they could be read."""
        with self._changed:
            chunks = [c for c in self._chunks if c[0] > seq]
            first = chunks[0][0] if chunks else self._seq + 1
            return chunks, first > seq + 1

    def wait(self, timeout: float | None = None) -> bool:
        """Waits until the process ended; whether it did."""
        with self._changed:
            return self._changed.wait_for(lambda: self.ended, timeout)

    # ------------------------------------------------------- from the guest
    def _update(self, **fields: object) -> None:
        with self._changed:
            for name, value in fields.items():
                setattr(self, name, value)
            if self.ended and self.ended_at is None:
                self.ended_at = time.time()
            self._changed.notify_all()
        self._tell()

    def _append(self, stream: str, data: bytes) -> None:
        with self._changed:
            self.output_bytes[stream] = self.output_bytes.get(stream, 0) + len(data)
            if len(data) > self.log_limit:  # keep the newest bytes of one huge chunk
                self.dropped_bytes += len(data) - self.log_limit
                data = data[len(data) - self.log_limit :]
            self._seq += 1
            self._chunks.append((self._seq, stream, data))
            self._kept += len(data)
            while self._kept > self.log_limit:
                _, _, old = self._chunks.popleft()
                self._kept -= len(old)
                self.dropped_bytes += len(old)
            self._changed.notify_all()
        self._tell()

    def _tell(self) -> None:
        for listener in list(self.listeners):
            listener()


class ProcessTable:
    """The managed processes of one sandbox. ``send`` writes a control
    frame to the guest; ``enable`` makes the guest's supervisor ready (a
    request: it waits for a running cell to end, the first time only)."""

    def __init__(self, send: Callable[[dict], None], enable: Callable[[], None]) -> None:
        self._send = send
        self._enable = enable
        self._enabled = False
        self._lock = threading.Lock()
        self._procs: dict[str, ManagedProcess] = {}
        self._gone: str | None = None  # why the sandbox ended, once it did

    # ------------------------------------------------------------------ API
    def start(
        self,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        tty: bool = False,
        cols: int = 80,
        rows: int = 24,
        term: str | None = None,
        log_limit: int = DEFAULT_LOG_LIMIT,
        timeout: float = 60.0,
    ) -> ManagedProcess:
        """Starts argv; returns once it runs. SandboxError when it cannot
        start (its reason from the guest), ProcessLimit at MAX_ALIVE."""
        if not argv or not all(isinstance(a, str) for a in argv):
            raise ValueError("argv must be a non-empty list of strings")
        if not 0 < log_limit <= MAX_LOG_LIMIT:
            raise ValueError(f"log_limit must be from 1 to {MAX_LOG_LIMIT} bytes")
        self._ensure_enabled()
        proc = ManagedProcess(argv, tty, log_limit, cols, rows)
        with self._lock:
            self._check_open()
            alive = sum(1 for p in self._procs.values() if not p.ended)
            if alive >= MAX_ALIVE:
                raise ProcessLimit(
                    f"this sandbox already runs {alive} managed processes (the limit); "
                    "stop one first",
                    limit=MAX_ALIVE,
                )
            self._procs[proc.id] = proc
            self._forget_oldest_ended()
        try:
            self._send({"op": "proc_start", "proc": proc.id, "argv": list(argv), "env": env,
                        "cwd": cwd, "tty": tty, "cols": cols, "rows": rows,
                        "term": term})  # fmt: skip
        except SandboxError as e:
            proc._update(state="failed", error=str(e))
            raise
        with proc._changed:
            proc._changed.wait_for(lambda: proc.state != "starting", timeout)
        if proc.state == "starting":
            proc._update(state="failed", error=f"the guest did not start it within {timeout} s")
        if proc.state == "failed":
            raise SandboxError(f"{argv[0]!r} could not start: {proc.error}")
        return proc

    def get(self, pid_id: str) -> ManagedProcess:
        with self._lock:
            proc = self._procs.get(pid_id)
        if proc is None:
            raise ProcessNotFound(f"no process {pid_id!r} in this sandbox")
        return proc

    def list(self) -> list[ManagedProcess]:
        with self._lock:
            return list(self._procs.values())

    def write(self, pid_id: str, data: bytes, eof: bool = False) -> None:
        """Sends bytes to the process's stdin (a terminal: as typed);
        ``eof`` closes its stdin after them (not for terminals)."""
        self._to_running(pid_id, "proc_stdin", data=base64.b64encode(data).decode(), eof=eof)

    def signal(self, pid_id: str, signo: int) -> None:
        """Signals the process's whole process group."""
        self._to_running(pid_id, "proc_signal", signal=int(signo))

    def resize(self, pid_id: str, cols: int, rows: int) -> None:
        proc = self.get(pid_id)
        if not proc.tty:
            raise ProcessNotRunning(f"process {pid_id} has no terminal to resize")
        proc.cols, proc.rows = cols, rows
        self._to_running(pid_id, "proc_resize", cols=cols, rows=rows)

    def stop(self, pid_id: str, grace: float = 5.0) -> ManagedProcess:
        """SIGTERM to its group, SIGKILL after ``grace`` seconds if it has
        not ended by then; returns at once."""
        proc = self.get(pid_id)
        if proc.ended:
            return proc
        self.signal(pid_id, 15)

        def kill_late() -> None:
            if not proc.wait(grace):
                try:
                    self.signal(pid_id, 9)
                except SandboxError:
                    pass  # the sandbox ended meanwhile

        threading.Thread(target=kill_late, name=f"stop-{pid_id}", daemon=True).start()
        return proc

    # ------------------------------------------------------------ branches
    def branch(self) -> tuple[bool, list[ManagedProcess]] | None:
        """What a branch taken now inherits: whether the guest's supervisor
        runs, and a copy of every record; None when there is nothing."""
        with self._lock:
            if not self._enabled:
                return None
            return True, [p.copy() for p in self._procs.values()]

    def inherit(self, inherited: tuple[bool, list[ManagedProcess]]) -> None:
        """A branch's table starts as its source's was. The records may lag
        the pause by frames in flight, so the guest's supervisor is asked
        which of them still run (``proc_sync``)."""
        enabled, procs = inherited
        with self._lock:
            self._enabled = enabled
            self._procs = {p.id: p for p in procs}
        if any(not p.ended for p in procs):
            try:
                self._send({"op": "proc_sync"})
            except SandboxError:
                pass  # the branch ended at once: sandbox_ended marks them lost

    # --------------------------------------------------------- from the host
    def on_frame(self, msg: dict) -> None:
        """A ``proc_*`` frame from the guest (the sandbox's reader thread)."""
        if msg.get("op") == "proc_synced":
            self._synced(msg)
            return
        with self._lock:
            proc = self._procs.get(msg.get("proc"))
        if proc is None:
            return
        op = msg.get("op")
        if op == "proc_output":
            stream = msg.get("stream") if msg.get("stream") in ("stdout", "stderr") else "tty"
            proc._append(stream, base64.b64decode(msg.get("data") or ""))
        elif op == "proc_started":
            proc._update(state="running", pid=msg.get("pid"))
        elif op == "proc_failed" and not proc.ended:
            proc._update(state="failed", error=str(msg.get("error")))
        elif op == "proc_exit":
            proc._update(state="exited", exit_code=msg.get("exit_code"), signal=msg.get("signal"))

    def _synced(self, msg: dict) -> None:
        """The guest's answer to ``proc_sync``: what runs, what ended (and
        how); a record it does not know any more ended before the branch
        without its end reaching this table."""
        running = msg.get("running") or {}
        ended = msg.get("ended") or {}
        for proc in self.list():
            if proc.ended:
                continue
            if proc.id in running:
                proc._update(state="running", pid=running[proc.id])
            elif proc.id in ended:
                code, signo = ended[proc.id]
                proc._update(state="exited", exit_code=code, signal=signo)
            else:
                proc._update(state="lost", error="it had ended when the branch was taken")

    def sandbox_ended(self, why: str) -> None:
        """Every process still running ended with the sandbox."""
        with self._lock:
            self._gone = why
            alive = [p for p in self._procs.values() if not p.ended]
        for proc in alive:
            proc._update(state="lost", error=f"the sandbox ended ({why})")

    # -------------------------------------------------------------- helpers
    def _ensure_enabled(self) -> None:
        with self._lock:
            self._check_open()
            if self._enabled:
                return
        self._enable()
        with self._lock:
            self._enabled = True

    def _check_open(self) -> None:
        if self._gone is not None:
            raise SandboxError(f"the sandbox ended ({self._gone})")

    def _to_running(self, pid_id: str, op: str, **fields: object) -> None:
        proc = self.get(pid_id)
        if proc.ended:
            raise ProcessNotRunning(f"process {pid_id} is not running ({proc.state})")
        self._send({"op": op, "proc": pid_id, **fields})

    def _forget_oldest_ended(self) -> None:
        ended = [p for p in self._procs.values() if p.ended]
        for proc in ended[: max(0, len(ended) - MAX_KEPT)]:
            del self._procs[proc.id]
