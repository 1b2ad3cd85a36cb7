"""Sandbox: one guest CPython in one KVM VM, driven through its agent.

Threads per sandbox: the vCPU thread (inside ``fj_sandbox_run``, GIL
released) and a reader thread that demultiplexes the guest's output stream.
Invariants: one run at a time (``_run_lock``); the C handle is destroyed only
after the vCPU thread has returned; signals are sent to the vCPU thread only
while it is alive (``_life_lock``).
"""

from __future__ import annotations

import base64
import errno
import itertools
import json
import pickle
import queue
import signal
import socket
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from .. import python_env
from ..modes import BranchMode
from ..python_env import PythonEnv
from . import chain_lock, guest_env, image_store
from ._ffi import c_strings, ffi, lib
from .errors import SandboxClosed, SandboxCrashed, SandboxError, SandboxTimeout, SpawnError, check
from .layer import LayerFiles
from .managed import ProcessTable
from .results import RunAccumulator, RunResult
from .snapshot import MODES, Snapshot, register_child_factory
from .spares import SpareTrimmer
from .wire import CHANNEL_CTL, CHANNEL_EXIT, Demux, FrameDecoder, encode_frame

OutputCallback = Callable[[str, str], None]
InputCallback = Callable[[str, bool], None]
# ("display", {"data", "metadata", "transient"?, "update"?}) or
# ("clear_output", {"wait"}), as the guest makes them.
DisplayCallback = Callable[[str, dict], None]


def _call_name(nr: int) -> str:
    name = lib.fj_syscall_name(nr)
    return ffi.string(name).decode() if name != ffi.NULL else f"syscall_{nr}"


def display_event(msg: dict) -> tuple[str, dict] | None:
    """A guest frame as a live display event, or None for other frames."""
    op = msg.get("op")
    if op == "display":
        fields = {"data": msg.get("data") or {}, "metadata": msg.get("metadata") or {}}
        for key in ("transient", "update"):
            if msg.get(key):
                fields[key] = msg[key]
        return "display", fields
    if op == "clear_output":
        return "clear_output", {"wait": bool(msg.get("wait"))}
    return None


_ids = itertools.count(1)
_sandbox_ids = itertools.count(1)


class _Native:
    """Owns the C handle and the host socket; closes them exactly once."""

    def __init__(self, handle: Any, sock: socket.socket) -> None:
        self.handle = handle
        self.sock = sock
        self.life_lock = threading.Lock()
        self.running = False
        self.destroyed = False

    def signal(self, signo: int) -> bool:
        with self.life_lock:
            if not self.running or self.destroyed:
                return False
            lib.fj_sandbox_signal(self.handle, signo)
            return True

    def destroy(self) -> None:
        with self.life_lock:
            if self.destroyed:
                return
            if self.running:  # finalizer path: stop the guest first
                lib.fj_sandbox_kill(self.handle)
                return
            self.destroyed = True
            lib.fj_sandbox_destroy(self.handle)
            self.sock.close()


class Sandbox:
    """A running sandbox. Create with :meth:`spawn`."""

    def __init__(self, native: _Native, memory_mib: int, live_fork: bool) -> None:
        self.id = f"sb-{next(_sandbox_ids)}"
        self.memory_mib = memory_mib
        self.live_fork = live_fork
        self.python: str | None = None  # the interpreter as the kernel names it (sys.executable)
        self.layer_limit_bytes: int | None = None  # the writable layer's size cap, when known
        self._native = native
        self._run_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._active: tuple[int, queue.Queue] | None = None
        self._active_lock = threading.Lock()
        self._spares = SpareTrimmer(self._trim, self._request_active)
        self._exit_info: dict | None = None
        self._ready = threading.Event()
        self._ready_info: dict = {}
        self._closed = False
        self._unclaimed = bytearray()  # output written while no request is active (start-up)
        self._last_snapshot: Snapshot | None = None
        self.parent_snapshot: Snapshot | None = None  # set for children
        # A child reports the pages its first cell touched, so that its
        # lineage's next children are spawned with them already faulted in.
        self._learn_working_set = False
        self._vcpu = threading.Thread(target=self._vcpu_main, name=f"{self.id}-vcpu", daemon=True)
        self._reader = threading.Thread(
            target=self._read_main, name=f"{self.id}-reader", daemon=True
        )
        self._finalizer = weakref.finalize(self, native.destroy)
        self.files = LayerFiles(native.handle)  # the writable layer, from the host side
        self.processes = ProcessTable(self._send_frame, self._enable_processes)

    # ----------------------------------------------------------------- spawn
    @classmethod
    def spawn(
        cls,
        memory_mib: int = 2048,
        live_fork: bool = True,
        *,
        timeout: float = 60.0,
        layer_mib: int | None = None,
        python: PythonEnv | None = None,
    ) -> Sandbox:
        """A new sandbox running ``python`` (forkd_jupyter.python_env; by
        default the interpreter running this code, venv and all)."""
        if not isinstance(memory_mib, int) or memory_mib < 64 or memory_mib > 65536:
            raise ValueError("memory_mib must be an integer between 64 and 65536")
        try:
            env = python or python_env.current()
        except (OSError, python_env.PythonEnvError) as e:
            raise SpawnError(str(e)) from None
        keep: list = []
        host, guest = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        cfg = ffi.new("struct fj_spawn_config *")
        cfg.mem_bytes = memory_mib << 20
        exe = ffi.new("char[]", env.elf.encode())
        keep.append(exe)
        cfg.exe_path = exe
        cfg.argv = c_strings(guest_env.guest_argv(env), keep)
        variables = guest_env.guest_env(env, memory_mib)
        cfg.envp = c_strings([f"{k}={v}" for k, v in variables.items()], keep)
        roots = guest_env.read_only_roots(env)
        cfg.ro_roots = c_strings(roots, keep)
        cfg.n_ro_roots = len(roots)
        agent_dir = ffi.new("char[]", str(guest_env.AGENT_HOST_DIR).encode())
        keep.append(agent_dir)
        cfg.agent_host_dir = agent_dir
        cwd = ffi.new("char[]", guest_env.GUEST_CWD.encode())
        keep.append(cwd)
        cfg.cwd = cwd
        cfg.layer_bytes_limit = (
            layer_mib if layer_mib is not None else min(memory_mib, 1024)
        ) << 20
        cfg.ctl_fd = guest.fileno()
        out = ffi.new("fj_sandbox **")
        try:
            check(lib.fj_sandbox_create(cfg, out), "create sandbox")
        except SandboxError as e:
            host.close()
            if isinstance(e, SpawnError):
                raise
            raise SpawnError(str(e)) from None
        finally:
            guest.close()
        sb = cls(_Native(out[0], host), memory_mib, live_fork)
        sb.python = env.executable
        sb.layer_limit_bytes = cfg.layer_bytes_limit
        sb._start()
        sb._wait_ready(timeout)
        return sb

    @classmethod
    def _adopt(
        cls, handle: Any, sock: socket.socket, memory_mib: int, live_fork: bool, parent: Snapshot
    ) -> Sandbox:
        """Wraps a child made by fj_snapshot_spawn: its agent is already
        serving (it was waiting for a request at the pause, or is finishing
        the cell it was running)."""
        sb = cls(_Native(handle, sock), memory_mib, live_fork)
        sb.parent_snapshot = parent
        sb.layer_limit_bytes = parent.layer_limit_bytes
        sb._learn_working_set = True
        sb._ready_info = {"pid": parent._guest_pid}
        sb.python = parent.python
        sb._ready.set()
        sb._start()
        if parent._processes is not None:
            sb.processes.inherit(parent._processes)
        return sb

    def _start(self) -> None:
        self._native.running = True
        self._vcpu.start()
        self._reader.start()

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self._exit_info is not None:
                info = self._exit_info
                self.close()
                output = self._unclaimed.decode(errors="replace").strip()
                raise SpawnError(
                    f"the guest exited during start-up ({info.get('reason')})"
                    + (f":\n{output[-4000:]}" if output else "")
                )
            if time.monotonic() > deadline:
                self.close()
                raise SpawnError(f"the guest agent was not ready within {timeout:.0f} s")

    # --------------------------------------------------------------- threads
    def _vcpu_main(self) -> None:
        lib.fj_sandbox_run(self._native.handle)
        with self._native.life_lock:
            self._native.running = False

    def _read_main(self) -> None:
        demux, frames = Demux(), FrameDecoder()
        sock = self._native.sock
        while True:
            try:
                data = sock.recv(1 << 20)
            except OSError:
                data = b""
            if not data:
                break
            for channel, payload in demux.feed(data):
                if channel == CHANNEL_CTL:
                    for msg in frames.feed(payload):
                        self._on_message(msg)
                elif channel == CHANNEL_EXIT:
                    self._on_exit(json.loads(payload))
                    return  # nothing follows the exit frame
                else:
                    self._deliver(("stream", channel, payload))
        if self._exit_info is None:
            self._on_exit({"status": -1, "signal": 0})

    def _on_message(self, msg: dict) -> None:
        op = msg.get("op")
        if op == "ready":
            self._ready_info = msg
            self._ready.set()
            return
        if isinstance(op, str) and op.startswith("proc_"):
            self.processes.on_frame(msg)  # managed processes: never part of a request
            return
        self._deliver(("msg", msg))

    def _on_exit(self, info: dict) -> None:
        info["reason"] = (
            ffi.string(lib.fj_sandbox_exit_reason(self._native.handle)).decode(errors="replace")
            or "exited"
        )
        self._exit_info = info
        self._deliver(("exit", info))
        self.processes.sandbox_ended(info["reason"])

    def _deliver(self, item: tuple) -> None:
        with self._active_lock:
            active = self._active
        if active is not None:
            active[1].put(item)
        elif item[0] == "stream" and len(self._unclaimed) < 65536:
            self._unclaimed += item[2][: 65536 - len(self._unclaimed)]

    # ------------------------------------------------------------------- API
    @property
    def alive(self) -> bool:
        return not self._closed and self._exit_info is None

    @property
    def exit_reason(self) -> str | None:
        """None while alive; why the guest stopped otherwise."""
        if self._exit_info is not None:
            return str(self._crash_error()).split(": ", 1)[-1]
        return "closed" if self._closed else None

    @property
    def guest_pid(self) -> int | None:
        return self._ready_info.get("pid")

    def _check_alive(self) -> None:
        if self._closed:
            raise SandboxClosed(f"sandbox {self.id} is closed")
        if self._exit_info is not None:
            raise self._crash_error()

    def _crash_error(self) -> SandboxCrashed:
        info = self._exit_info or {}
        return SandboxCrashed(
            f"sandbox {self.id} died: {info.get('reason', 'exited')}",
            signal=info.get("signal", 0),
            status=info.get("status"),
        )

    def _request(
        self,
        request: dict,
        on_output: OutputCallback | None,
        timeout: float | None,
        on_input: InputCallback | None = None,
        on_display: DisplayCallback | None = None,
    ) -> tuple[RunResult, list[dict]]:
        """Sends one request and collects everything up to its ``done``.
        An ``input()`` in the guest calls ``on_input(prompt, password)``,
        which must not block (the answer goes to ``send_input``); without
        it the guest's input() gets end of input at once."""
        with self._run_lock:
            self._check_alive()
            rid = next(_ids)
            request = dict(request, id=rid)
            q: queue.Queue = queue.Queue()
            acc = RunAccumulator(rid, on_output)
            extra: list[dict] = []
            with self._active_lock:
                self._active = (rid, q)
            try:
                with self._send_lock:
                    self._native.sock.sendall(encode_frame(request))
                deadline = None if timeout is None else time.monotonic() + timeout
                interrupted_at = None
                while True:
                    wait = None if deadline is None else max(0.0, deadline - time.monotonic())
                    try:
                        item = q.get(timeout=wait)
                    except queue.Empty:
                        if interrupted_at is None:
                            self.interrupt()
                            interrupted_at = time.monotonic()
                            deadline = interrupted_at + 10.0
                            continue
                        raise SandboxTimeout(f"run did not finish within {timeout} s") from None
                    if item[0] == "stream":
                        acc.feed_stream(item[1], item[2])
                    elif item[0] == "exit":
                        raise self._crash_error()
                    else:
                        msg = item[1]
                        if msg.get("id") not in (rid, None):
                            continue
                        if msg.get("op") == "input_request":
                            prompt, password = str(msg.get("prompt", "")), bool(msg.get("password"))
                            if on_input is None:
                                self.send_input(None)
                            else:
                                on_input(prompt, password)
                            continue
                        if msg.get("op") not in ("display", "result", "done"):
                            extra.append(msg)
                        event = display_event(msg) if on_display is not None else None
                        if event is not None:
                            on_display(*event)
                        if acc.feed_message(msg):
                            result = acc.result()
                            if interrupted_at is not None:
                                raise SandboxTimeout(
                                    f"run did not finish within {timeout} s; it was interrupted"
                                )
                            return result, extra
            except (BrokenPipeError, ConnectionResetError):
                raise self._crash_error() from None
            finally:
                with self._active_lock:
                    self._active = None
                self._spares.after_request()

    def _request_active(self) -> bool:
        with self._active_lock:
            return self._active is not None

    def _trim(self) -> None:
        """Returns to the host the memory the guest freed, which the VMM
        kept zeroed for its next mappings (a freed buffer's pages serve the
        next allocation without faults): vmm/spares.py says when."""
        with self._send_lock:  # close() frees the native sandbox under it
            if self._finalizer.alive and not self._native.destroyed:
                lib.fj_sandbox_trim(self._native.handle)

    def run(
        self,
        code: str,
        on_output: OutputCallback | None = None,
        timeout: float | None = None,
        silent: bool = False,
        on_input: InputCallback | None = None,
        on_display: DisplayCallback | None = None,
    ) -> RunResult:
        """Runs a cell in the guest; state persists between runs. A
        ``silent`` run leaves no trace in the history or execution count.
        ``on_display(kind, fields)`` sees each display and clear_output as
        the guest makes it, in order with the output (the result still
        holds the displays that remain at the end)."""
        if not isinstance(code, str):
            raise TypeError("code must be a str")
        request = {"op": "run", "code": code}
        if silent:
            request.update(silent=True, store_history=False)
        result, _ = self._request(request, on_output, timeout, on_input, on_display)
        self._learn_first_cell()
        return result

    def rehearse(self, code: str, timeout: float | None = 60.0) -> None:
        """Runs code as a stored cell runs, then forgets it: the execution
        count, In, Out and the _ names are as before, while the pages the
        cell path writes are this sandbox's own from now on (a ready child
        of a warm base, so the user's first cell does not pay for them).
        A guest error raises SandboxError."""
        self._request_ok({"op": "rehearse", "code": code}, "rehearse", timeout)
        self._learn_first_cell()

    def _learn_first_cell(self) -> None:
        """After a child's first cell: what it wrote becomes its snapshot's
        working-set hint for later children."""
        if self._learn_working_set:
            self._learn_working_set = False
            with self._send_lock:  # close() frees the native sandbox under it
                if self._finalizer.alive:
                    lib.fj_sandbox_learn_working_set(self._native.handle)  # a hint: may fail

    def _request_ok(self, request: dict, what: str, timeout: float | None) -> list:
        """A request that is not a cell: a guest error raises SandboxError
        ("what: ename: evalue"); returns the frames that came before done."""
        result, extra = self._request(request, None, timeout)
        if result.error is not None:
            raise SandboxError(f"{what}: {result.error.ename}: {result.error.evalue}")
        return extra

    def refresh(self, timeout: float | None = 60.0) -> None:
        """Re-seeds what the guest seeded once at start-up (random's state,
        numpy's global generator): a child of a warm base then starts as if
        booted itself (docs/agent-protocol.md, op ``fresh``)."""
        self._request_ok({"op": "fresh"}, "refresh", timeout)

    def preload(self, modules: list[str], timeout: float | None = 300.0) -> None:
        """Imports modules outside the cell history (In, Out and the
        execution count stay untouched)."""
        self._request_ok({"op": "preload", "modules": list(modules)}, "preload", timeout)

    def exec(
        self,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        stdin: str | None = None,
        timeout: float | None = None,
        max_output_bytes: int = 1 << 20,
    ) -> dict:
        """Runs a program once in the sandbox, outside the cell history:
        ``{"exit_code", "stdout", "stderr", "stdout_truncated",
        "stderr_truncated", "timed_out", "duration_ms"}`` (exit_code < 0:
        killed by that signal). ``env`` adds to the guest's environment;
        each output keeps its first ``max_output_bytes``. A program that
        cannot start raises SandboxError."""
        request = {"op": "exec", "argv": list(argv), "env": env, "cwd": cwd, "stdin": stdin,
                   "timeout": timeout, "max_output_bytes": max_output_bytes}  # fmt: skip
        wait = None if timeout is None else timeout + 30.0
        extra = self._request_ok(request, f"exec {argv[0] if argv else ''!r}", wait)
        for msg in extra:
            if msg.get("op") == "process":
                return {k: v for k, v in msg.items() if k not in ("op", "id")}
        raise SandboxError("exec: the guest sent no result")

    def _enable_processes(self) -> None:
        """The guest's supervisor of managed processes runs (a request, so
        the first call waits for a running cell; later ones are no-ops in
        the guest, and a branch inherits the supervisor)."""
        self._request_ok({"op": "proc_enable"}, "managed processes", None)

    def _send_frame(self, msg: dict) -> None:
        """A control frame outside any request (managed processes)."""
        with self._send_lock:
            if self._closed or self._exit_info is not None:
                raise SandboxClosed(f"sandbox {self.id} is not running")
            try:
                self._native.sock.sendall(encode_frame(msg))
            except OSError:
                raise SandboxClosed(f"sandbox {self.id} is not running") from None

    def send_input(self, value: str | None) -> None:
        """Answers the running cell's ``input()`` (None: end of input)."""
        with self._send_lock:
            if self._closed or self._exit_info is not None:
                raise SandboxClosed(f"sandbox {self.id} is not running")
            self._native.sock.sendall(encode_frame({"op": "input_reply", "value": value}))

    def push(self, name: str, value: Any, timeout: float | None = 60.0) -> None:
        """Sets a (picklable) variable in the guest's namespace."""
        self.push_pickled(name, pickle.dumps(value), timeout)

    def pull(self, name: str, timeout: float | None = 60.0) -> Any:
        """Returns a (picklable) variable of the guest's namespace."""
        return pickle.loads(self.pull_pickled(name, timeout))

    def push_pickled(self, name: str, data: bytes, timeout: float | None = 60.0) -> None:
        """Like push, with the value already pickled (unpickled only in the
        guest, so the host never needs the value's classes)."""
        payload = base64.b64encode(data).decode()
        self._request_ok({"op": "push", "name": name, "pickle": payload}, f"push {name!r}", timeout)

    def pull_pickled(self, name: str, timeout: float | None = 60.0) -> bytes:
        """The guest variable's pickle, as the guest made it."""
        extra = self._request_ok({"op": "pull", "name": name}, f"pull {name!r}", timeout)
        for msg in extra:
            if msg.get("op") == "value":
                return base64.b64decode(msg["pickle"])
        raise SandboxError(f"pull {name!r}: the guest sent no value")

    def snapshot(self, mode: BranchMode = "live", wait: bool = True) -> Snapshot:
        """Freezes this sandbox at one instant. ``live`` pauses the guest only
        to save its registers and arm copy-on-write (the memory copy runs in
        the background: ``wait=False`` returns while the status is
        ``writing``); ``full`` copies memory inside the pause; ``diff``
        copies the pages written since the last snapshot inside the pause
        and compares them with the chain there, or, with ``wait=False``,
        may stage them (copy them aside in the pause, compare them and write
        the changed ones after it) and returns as the guest resumes, the
        status ``writing`` until then (docs/snapshots.md, "Staged diffs")."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        if not wait and mode == "full":
            raise ValueError("wait=False is only valid with mode='live' or mode='diff'")
        if mode == "live" and not self.live_fork:
            raise SandboxError(
                f"sandbox {self.id} was spawned with live_fork=False and cannot be "
                "branched live; use mode='full' or mode='diff'"
            )
        self._check_alive()
        image_store.ensure()  # full images held in 2 MiB pages where the machine allows
        if mode != "diff":  # a diff holds freed memory as zero without a copy
            self._spares.now()  # not copied into the image as zeros
        out = ffi.new("fj_snapshot **")
        # A process between vfork and exec runs on its parent's memory: the
        # pause is refused (EBUSY) for the moment it takes to exec.
        deadline = time.monotonic() + 2.0
        while True:
            # A diff reads its parent's image (what the guest wrote back
            # unchanged stays out of it): no fold may rewire that link meanwhile.
            with self._send_lock, chain_lock.reading():  # never between a frame's halves
                flags = lib.FJ_SNAP_MAY_STAGE if mode == "diff" and not wait else 0
                ret = lib.fj_sandbox_snapshot(self._native.handle, MODES[mode] | flags, out)
                # What the guest's managed processes were, for a child of it.
                inherited = self.processes.branch() if ret == 0 else None
            if ret != -errno.EBUSY or time.monotonic() > deadline:
                break
            time.sleep(0.002)
        check(ret, f"{mode} snapshot")
        # A diff builds on the previous snapshot (for a child: the one it was
        # spawned from); full and live images stand alone.
        base = self._last_snapshot or self.parent_snapshot
        parent = base if mode == "diff" and base is not None and not base.closed else None
        snap = Snapshot(out[0], mode, self, parent)
        snap._processes = inherited
        self._last_snapshot = snap
        if wait:
            snap.wait()
        return snap

    def interrupt(self) -> None:
        """Delivers SIGINT to the guest: a running cell raises KeyboardInterrupt."""
        if self._closed:
            raise SandboxClosed(f"sandbox {self.id} is closed")
        self._native.signal(signal.SIGINT)

    def _native_stats(self):
        if self._native.destroyed:
            raise SandboxClosed(f"sandbox {self.id} is closed")
        st = ffi.new("struct fj_sandbox_stats *")
        lib.fj_sandbox_get_stats(self._native.handle, st)
        return st

    @property
    def resident_bytes(self) -> int:
        """Guest RAM resident on the host (what a full copy of it copies at
        most): its RAM file's pages; for a child, the image it shares plus
        its own pages (copies and fresh memory)."""
        return self._native_stats().resident_bytes

    @property
    def layer_bytes(self) -> int:
        """Bytes the writable layer holds."""
        return self._native_stats().layer_bytes

    def stats(self) -> dict:
        """System calls served, unsupported calls by name, memory in use;
        ``calls``: per system call name, ``{"count", "vmm_ms"}`` (the time the
        VMM spent serving them, blocking waits included; the VM exit each
        call costs is not in it); ``fast_syscalls``: of ``syscalls``, those
        served without a VM exit (docs/design.md, "System calls without an
        exit"); ``kvm_pages``: guest memory KVM maps for
        the sandbox's first process now, ``{"4k", "2m"}`` mappings
        (docs/snapshots.md, "Where images live"); ``spare_bytes``: of
        ``memory_bytes``, memory the guest freed and the VMM keeps zeroed
        for its next mappings until the request ends (docs/design.md,
        "Freed memory")."""
        st = self._native_stats()
        nrs = ffi.new("uint32_t[512]")
        counts = ffi.new("uint32_t[512]")
        n = lib.fj_sandbox_unsupported(self._native.handle, nrs, counts, 512)
        unsupported = {_call_name(nrs[i]): counts[i] for i in range(n)}
        ns = ffi.new("uint64_t[512]")
        n = lib.fj_sandbox_syscall_profile(self._native.handle, nrs, counts, ns, 512)
        calls = {_call_name(nrs[i]): {"count": counts[i], "vmm_ms": ns[i] / 1e6} for i in range(n)}
        return {
            "syscalls": st.syscalls,
            "unsupported_syscalls": st.unsupported_syscalls,
            "fast_syscalls": st.fast_syscalls,
            "unsupported": unsupported,
            "calls": calls,
            "memory_bytes": st.resident_bytes,
            "spare_bytes": st.spare_bytes,
            "mapped_bytes": st.mapped_bytes,
            "layer_bytes": st.layer_bytes,
            "open_fds": st.open_fds,
            "uptime_s": st.uptime_ns / 1e9,
            "kvm_pages": {"4k": st.kvm_pages_4k, "2m": st.kvm_pages_2m},
        }

    def close(
        self, timeout: float = 5.0, graceful: bool = True, release_delay: float = 0.0
    ) -> None:
        """Stops the guest and returns its memory and file descriptors.
        ``graceful=False`` kills it at once instead of asking its agent to
        exit (which a guest busy with a cell only does when the cell ends).
        ``release_delay``: seconds to wait, the guest already stopped, before
        the memory goes back to the host (unmapping a large guest holds the
        process's address-space lock, which a spawn that follows at once
        would otherwise wait for)."""
        if self._closed:
            return
        self._closed = True
        self._spares.cancel()
        if graceful and self._exit_info is None and self._native.running:
            try:
                self._native.sock.sendall(encode_frame({"op": "shutdown"}))
            except OSError:
                pass
            self._vcpu.join(timeout)
        if self._vcpu.is_alive():
            self._native.signal(signal.SIGKILL)
            self._vcpu.join(timeout)
        if self._vcpu.is_alive():
            raise SandboxError(f"sandbox {self.id}: the vCPU did not stop")
        try:
            self._native.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._reader.join(timeout)
        if release_delay > 0:
            time.sleep(release_delay)
        with self._send_lock:
            self._finalizer()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "alive" if self.alive else "closed" if self._closed else "dead"
        return f"<Sandbox {self.id} {self.memory_mib} MiB {state}>"


register_child_factory(Sandbox._adopt)
