"""The guest agent run natively, as a child of this interpreter, under the
guest's limits: fd 3 is one end of a socketpair, stdout/stderr are pipes,
and a sitecustomize makes starting a thread or a process fail as it does in
the sandbox (the agent itself is run unmodified). Plus the host codec
(Demux, FrameDecoder, RunAccumulator) at every chunk boundary."""

from __future__ import annotations

import base64
import os
import pickle
import selectors
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections import deque
from pathlib import Path

import pytest

from forkd_jupyter.vmm.results import GuestError, RunAccumulator, RunResult
from forkd_jupyter.vmm.wire import (
    CHANNEL_CTL,
    CHANNEL_EXIT,
    CHANNEL_STDERR,
    CHANNEL_STDOUT,
    Demux,
    FrameDecoder,
    WireError,
    encode_frame,
    encode_outer,
)

AGENT = Path(__file__).resolve().parent.parent / "forkd_jupyter" / "guest" / "agent.py"

# Installed as sitecustomize in the child: the agent must start no thread
# (they are the user's) and no process (the guest has no fork/exec).
# Attempts are logged so a test can prove the agent made none.
GUEST_LIMITS = textwrap.dedent("""
    import _posixsubprocess, _thread, errno, os, sys, threading

    def _record(what):
        log = os.environ.get("FORKD_TEST_ATTEMPTS")
        if log:
            with open(log, "a") as f:
                f.write(what + "\\n")

    def _no_thread(*args, **kwargs):
        _record("thread")
        raise RuntimeError("can't start new thread")

    def _no_process(*args, **kwargs):
        _record("process")
        raise OSError(errno.ENOSYS, "Function not implemented")

    _thread.start_new_thread = _thread.start_new = threading._start_new_thread = _no_thread
    _posixsubprocess.fork_exec = _no_process
    for _name in ("fork", "forkpty", "posix_spawn", "posix_spawnp", "system", "execv", "execve"):
        if hasattr(os, _name):
            setattr(os, _name, _no_process)

    if os.environ.get("FORKD_TEST_HIDE_IPYTHON"):
        class _HideIPython:
            def find_spec(self, name, path=None, target=None):
                if name == "IPython" or name.startswith("IPython."):
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                return None
        sys.meta_path.insert(0, _HideIPython())
""")


class Agent:
    """A natively running agent and a minimal host side for it."""

    def __init__(self, root: Path, hide_ipython: bool = False) -> None:
        site_dir = root / "site"
        site_dir.mkdir(parents=True, exist_ok=True)
        (site_dir / "sitecustomize.py").write_text(GUEST_LIMITS)
        work = root / "work"
        work.mkdir(exist_ok=True)
        self.attempts = root / "attempts.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MPL", "IPYTHON"))}
        env.update(
            PYTHONPATH=str(site_dir),
            PYTHONDONTWRITEBYTECODE="1",
            HOME=str(work),
            TMPDIR=str(root),
            IPYTHONDIR=str(root / "ipython"),
            MPLCONFIGDIR=str(root / "mpl"),
            FORKD_TEST_ATTEMPTS=str(self.attempts),
        )
        if hide_ipython:
            env["FORKD_TEST_HIDE_IPYTHON"] = "1"
        self.host, guest = socket.socketpair()
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-u", str(AGENT)],
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            close_fds=False,  # Python's own fds are not inheritable; fd 3 is
            preexec_fn=lambda: os.dup2(guest.fileno(), 3),
        )
        guest.close()
        self.sel = selectors.DefaultSelector()
        for f, tag in (
            (self.host, CHANNEL_CTL),
            (self.proc.stdout, CHANNEL_STDOUT),
            (self.proc.stderr, CHANNEL_STDERR),
        ):
            os.set_blocking(f.fileno(), False)
            self.sel.register(f.fileno(), selectors.EVENT_READ, tag)
        self.decoder = FrameDecoder()
        self.inbox: deque[dict] = deque()
        self.streams: deque[tuple[int, bytes]] = deque()
        self.next_id = 1
        self.ready = self.wait_message(60)
        self.startup_s = time.perf_counter() - started
        assert self.ready["op"] == "ready", self.ready

    # --------------------------------------------------------------- reading
    def _pump(self, timeout: float) -> None:
        for key, _ in self.sel.select(timeout):
            try:
                data = os.read(key.fd, 1 << 16)
            except BlockingIOError:
                continue
            if not data:
                self.sel.unregister(key.fd)
            elif key.data == CHANNEL_CTL:
                self.inbox.extend(self.decoder.feed(data))
            else:
                self.streams.append((key.data, data))

    def _drain_pipes(self) -> None:
        """Output written before a frame is readable once the frame is."""
        for f, ch in ((self.proc.stdout, CHANNEL_STDOUT), (self.proc.stderr, CHANNEL_STDERR)):
            while True:
                try:
                    data = os.read(f.fileno(), 1 << 16)
                except (BlockingIOError, ValueError):
                    break
                if not data:
                    break
                self.streams.append((ch, data))

    def wait_message(self, timeout: float = 30, on_idle=None) -> dict:
        deadline = time.monotonic() + timeout
        while not self.inbox:
            if on_idle is not None:
                on_idle()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no frame from the agent; stderr:\n" + self.stderr_tail())
            if self.proc.poll() is not None and not self.sel.get_map():
                raise RuntimeError("agent exited:\n" + self.stderr_tail())
            self._pump(min(left, 0.05))
        return self.inbox.popleft()

    def stderr_tail(self) -> str:
        return b"".join(d for ch, d in self.streams if ch == CHANNEL_STDERR).decode()[-3000:]

    # -------------------------------------------------------------- requests
    def send(self, op: str, **fields) -> int:
        rid = self.next_id
        self.next_id += 1
        self.host.sendall(encode_frame({"op": op, "id": rid, **fields}))
        return rid

    def collect(self, rid: int, timeout: float = 60, on_output=None) -> tuple[RunResult, list]:
        acc = RunAccumulator(rid, on_output)
        extra: list[dict] = []

        def feed_streams() -> None:
            while self.streams:
                acc.feed_stream(*self.streams.popleft())

        while True:
            msg = self.wait_message(timeout, on_idle=feed_streams)
            if msg.get("op") == "done":
                self._drain_pipes()
            feed_streams()
            assert msg.get("id") == rid, msg
            if acc.feed_message(msg):
                return acc.result(), extra
            if msg["op"] not in ("display", "result", "clear_output"):
                extra.append(msg)

    def run(self, code: str, **kw) -> RunResult:
        on_output = kw.pop("on_output", None)
        return self.collect(self.send("run", code=code, **kw), on_output=on_output)[0]

    def ok(self, code: str, **kw) -> RunResult:
        r = self.run(code, **kw)
        assert r.error is None, f"{r.error}\n{r.error.plain_traceback}\n{r.stderr}"
        return r

    def value(self, expr: str):
        self.ok(f"__v = ({expr})", store_history=False)
        result, extra = self.collect(self.send("pull", name="__v"))
        assert result.error is None, result.error
        return pickle.loads(base64.b64decode(extra[0]["pickle"]))

    def wait_for_output(self, text: str, timeout: float = 30) -> None:
        """Waits until the running cell has printed text (streams kept)."""
        deadline = time.monotonic() + timeout
        while text.encode() not in b"".join(d for ch, d in self.streams if ch == CHANNEL_STDOUT):
            assert time.monotonic() < deadline, "the cell never started"
            self._pump(0.05)

    def close(self) -> int:
        if self.proc.poll() is None:
            try:
                self.host.sendall(encode_frame({"op": "shutdown"}))
            except OSError:
                pass
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.sel.close()
        self.host.close()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return self.proc.returncode


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    a = Agent(tmp_path_factory.mktemp("agent"))
    yield a
    a.close()


@pytest.fixture
def fresh(tmp_path):
    agents: list[Agent] = []

    def start(**kw) -> Agent:
        agents.append(Agent(tmp_path / f"a{len(agents)}", **kw))
        return agents[-1]

    yield start
    for a in agents:
        a.close()


# ------------------------------------------------------------ the agent


def test_ready_message(agent):
    r = agent.ready
    assert r["python"] == sys.version.split()[0]
    assert r["pid"] == agent.proc.pid
    assert r["ipython"] is True
    assert r["cwd"].endswith("work")
    print(
        f"\nagent ready after {agent.startup_s * 1000:.0f} ms "
        f"(agent's own start-up {r['startup_ms']} ms)"
    )


def test_guest_limits_hold_and_the_agent_needs_no_thread_or_process(fresh):
    a = fresh()
    a.ok("import numpy, json\nfrom IPython.display import display\ndisplay({'a': 1}, raw=True)")
    a.ok("%timeit -n1 -r1 sum(range(10))")
    a.ok("%who")
    assert a.value("__import__('threading').active_count()") == 1
    assert not a.attempts.exists(), a.attempts.read_text()
    r = a.run("import threading\nthreading.Thread(target=print).start()")
    assert r.error.ename == "RuntimeError" and "can't start new thread" in r.error.evalue
    r = a.run("import subprocess\nsubprocess.run(['true'])")
    assert r.error.ename == "OSError"
    assert a.attempts.read_text().split() == ["thread", "process"]


def test_terminal_front_end_is_not_imported(fresh):
    a = fresh()
    loaded = a.value("[m for m in ('prompt_toolkit', 'jedi') if m in __import__('sys').modules]")
    assert loaded == []
    # The IPython package still behaves as if fully imported.
    assert a.value("__import__('IPython').get_ipython() is get_ipython()") is True
    assert a.value("__import__('IPython').version_info[0]") >= 8
    assert a.value("'prompt_toolkit' in __import__('sys').modules") is True


def test_state_persists_and_history(agent):
    first = agent.ok("x = 41")
    second = agent.ok("x + 1")
    assert second.result["text/plain"] == "42"
    n = second.execution_count
    assert n == first.execution_count + 1
    assert agent.value(f"Out[{n}]") == 42
    assert agent.value(f"_{n}") == 42
    assert agent.value(f"In[{n}]").strip() == "x + 1"
    agent.ok("x * 2")
    assert agent.value("_") == 82
    assert agent.value("__") == 42


def test_silent_and_unstored_runs_do_not_count(agent):
    before = agent.ok("1").execution_count
    quiet = agent.ok("2 + 2", silent=True)
    assert quiet.result is None
    unstored = agent.ok("3 + 3", store_history=False)
    assert unstored.result["text/plain"] == "6"
    assert agent.ok("4").execution_count == before + 1


def test_display_and_rich_result(agent):
    r = agent.ok(
        "from IPython.display import display, HTML\ndisplay(HTML('<b>hi</b>'))\n"
        "display('plain', metadata={'k': 1})"
    )
    assert r.displays[0]["text/html"] == "<b>hi</b>"
    assert r.displays[1]["text/plain"] == "'plain'"
    assert r.display_metadata[1] == {"k": 1}
    assert r.result is None


def test_dataframe_result_has_html(agent):
    pytest.importorskip("pandas")
    r = agent.ok("import pandas as pd\npd.DataFrame({'a': [1, 2]})")
    assert "<table" in r.result["text/html"]
    assert "a" in r.result["text/plain"]


def test_clear_output_drops_earlier_output(agent):
    # Natively, stdout is a pipe apart from the frame socket, so output
    # written just after a frame can be read before it: only what came
    # before clear_output is decidable here. The exact order (``new`` kept)
    # is checked in the sandbox, where one stream carries both
    # (test_vmm_basics.py).
    r = agent.ok(
        "from IPython.display import clear_output, display\n"
        "print('old')\ndisplay(1)\nclear_output()\nprint('new')"
    )
    assert "old" not in r.stdout and r.displays == []


def test_magics(agent):
    assert "per loop" in agent.ok("%timeit -n1 -r1 sum(range(100))").stdout
    assert "Wall time" in agent.ok("%%time\nsum(range(100))").stdout
    agent.ok("magic_probe_variable = 1")
    assert "magic_probe_variable" in agent.ok("%who").stdout


def test_stdout_streams_before_done(agent):
    seen: list[tuple[float, str, str]] = []
    start = time.monotonic()
    r = agent.ok(
        "import sys, time\nprint('a')\ntime.sleep(1.0)\nprint('b')\nprint('e', file=sys.stderr)",
        on_output=lambda s, t: seen.append((time.monotonic() - start, s, t)),
    )
    total = time.monotonic() - start
    assert r.stdout == "a\nb\n" and r.stderr == "e\n"
    # All of "a\n" came while the cell still slept (print's text and its
    # newline may come as one piece or two, as the stream is cut).
    early = "".join(t for at, s, t in seen if s == "stdout" and at < total - 0.5)
    assert early == "a\n", (seen, total)


def test_exception_gives_ename_evalue_traceback(agent):
    r = agent.run("def f():\n    raise ValueError('boom')\nf()")
    assert isinstance(r.error, GuestError)
    assert (r.error.ename, r.error.evalue) == ("ValueError", "boom")
    assert "raise ValueError('boom')" in r.error.plain_traceback
    assert r.execution_count is not None
    syntax = agent.run("1 +")
    assert syntax.error.ename == "SyntaxError"
    usage = agent.run("%no_such_magic")
    assert usage.error.ename == "UsageError"
    assert agent.ok("6 * 7").result["text/plain"] == "42"


def test_a_statement_that_fails_to_compile_is_the_cell_error_not_output(agent):
    """IPython runs a cell statement by statement; one that parses but does
    not compile (or an interrupt landing between two statements) fails in
    run_ast_nodes, after the earlier ones ran: that is the cell's error, as
    any other, and its traceback is not printed as output. %tb prints."""
    r = agent.run("print('ran')\nreturn 1")
    assert r.stdout == "ran\n" and r.stderr == ""
    assert r.error.ename == "SyntaxError" and "outside function" in r.error.evalue
    assert "return 1" in r.error.plain_traceback
    shown = agent.run("%tb")
    assert shown.error is None and "SyntaxError" in shown.stdout


def test_exit_does_not_stop_the_agent(agent):
    agent.run("exit()")
    agent.run("import sys\nsys.exit(3)")
    assert agent.ok("'alive'").result["text/plain"] == "'alive'"


def test_push_pull_round_trip(agent):
    value = {"a": [1, 2.5, None], "b": {"nested": (1, "x")}, "c": b"\x00\xff"}
    data = base64.b64encode(pickle.dumps(value)).decode()
    pushed, _ = agent.collect(agent.send("push", name="pushed", pickle=data))
    assert pushed.error is None
    assert agent.ok("pushed['b']['nested'][1]").result["text/plain"] == "'x'"
    agent.ok("pushed['d'] = 4")
    result, extra = agent.collect(agent.send("pull", name="pushed"))
    assert result.error is None
    assert pickle.loads(base64.b64decode(extra[0]["pickle"])) == {**value, "d": 4}
    missing, extra = agent.collect(agent.send("pull", name="no_such_name"))
    assert missing.error.ename == "NameError" and extra == []
    agent.ok("unpicklable = lambda: 0")
    bad, _ = agent.collect(agent.send("pull", name="unpicklable"))
    assert bad.error is not None


def test_ping_and_protocol_errors(agent):
    result, extra = agent.collect(agent.send("ping"))
    assert result.error is None and [m["op"] for m in extra] == ["pong"]
    bogus, _ = agent.collect(agent.send("frobnicate"))
    assert bogus.error.ename == "ProtocolError"
    bad_push, _ = agent.collect(agent.send("push", name="not an identifier", pickle=""))
    assert bad_push.error.ename == "ProtocolError"


def test_matplotlib_figure_becomes_png(agent):
    pytest.importorskip("matplotlib")
    pytest.importorskip("matplotlib_inline")
    agent.ok("%matplotlib inline")
    assert agent.run("get_ipython().enable_gui('qt')").error.ename == "UsageError"
    shown = agent.ok("import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()")
    implicit = agent.ok("plt.figure()\nplt.bar([1, 2], [3, 4]);")
    for r in (shown, implicit):
        pngs = [d["image/png"] for d in r.displays if "image/png" in d]
        assert len(pngs) == 1, r.displays
        assert base64.b64decode(pngs[0]).startswith(b"\x89PNG\r\n\x1a\n")
    assert agent.ok("1").displays == []  # figures are shown once


SYS_CLOCK_NANOSLEEP = 230  # x86-64


def wait_in_syscall(pid: int, nr: int, timeout: float = 30) -> None:
    """Waits until the process is blocked in system call nr. A SIGINT
    that lands after CPython last checked for signals (print() returning)
    and before time.sleep() entered the kernel is only acted on when the
    sleep ends, as in any interpreter; the test interrupts the sleep itself."""
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}/syscall").read_text().split()[0] != str(nr):
        assert time.monotonic() < deadline, "never entered the system call"
        time.sleep(0.005)


def test_interrupt_a_busy_loop_and_keep_serving(fresh):
    a = fresh()
    for code, blocked_in in (
        ("print('go', flush=True)\nwhile True:\n    pass", None),
        ("import time\nprint('go', flush=True)\ntime.sleep(60)", SYS_CLOCK_NANOSLEEP),
    ):
        rid = a.send("run", code=code)
        a.wait_for_output("go\n")  # print writes the newline apart
        if blocked_in is not None:
            wait_in_syscall(a.proc.pid, blocked_in)
        started = time.monotonic()
        a.proc.send_signal(signal.SIGINT)
        r, _ = a.collect(rid, timeout=20)
        assert r.error is not None and r.error.ename == "KeyboardInterrupt"
        assert time.monotonic() - started < 10
        assert r.stdout == "go\n"
    assert a.ok("21 * 2").result["text/plain"] == "42"


def test_sigint_while_idle_is_harmless(fresh):
    a = fresh()
    a.ok("y = 1")
    for _ in range(5):
        a.proc.send_signal(signal.SIGINT)
        time.sleep(0.05)
    time.sleep(0.2)
    assert a.proc.poll() is None
    r = a.ok("import time\ntime.sleep(0.3)\ny + 1")  # a stale interrupt must not hit it
    assert r.result["text/plain"] == "2"
    result, extra = a.collect(a.send("ping"))
    assert [m["op"] for m in extra] == ["pong"]


def test_shutdown_exits_zero(fresh):
    a = fresh()
    a.host.sendall(encode_frame({"op": "shutdown"}))
    assert a.proc.wait(30) == 0
    assert a.close() == 0


def test_plain_runner_without_ipython(fresh):
    a = fresh(hide_ipython=True)
    assert a.ready["ipython"] is False
    a.ok("x = 20")
    r = a.ok("print('p')\nx + 1")
    assert (r.stdout, r.result["text/plain"]) == ("p\n", "21")
    n = r.execution_count
    assert a.value(f"Out[{n}]") == 21 and a.value("_") == 21
    assert a.value(f"In[{n}]") == "print('p')\nx + 1"
    shown = a.ok("class H:\n    def _repr_html_(self):\n        return '<i>h</i>'\ndisplay(H())")
    assert shown.displays[0]["text/html"] == "<i>h</i>"
    err = a.run("def g():\n    return 1 / 0\ng()")
    assert err.error.ename == "ZeroDivisionError"
    assert "return 1 / 0" in err.error.plain_traceback
    assert "forkd_agent" not in err.error.plain_traceback
    assert a.run("1 +").error.ename == "SyntaxError"
    rid = a.send("run", code="print('go', flush=True)\nwhile True:\n    pass")
    a.wait_for_output("go\n")  # print writes the newline apart
    a.proc.send_signal(signal.SIGINT)
    assert a.collect(rid, timeout=20)[0].error.ename == "KeyboardInterrupt"
    assert a.ok("x").result["text/plain"] == "20"
    assert not a.attempts.exists()


HISTORY_STATE = (
    "(sorted(k for k in globals() if k != '__v'), list(In), dict(Out), _, __, _i, _ii, _iii)"
)
IPYTHON_STATE = (
    "(lambda ip: (ip.execution_count, sorted(ip.user_ns_hidden), ip.displayhook._,"
    " len(ip.history_manager.db_input_cache), dict(ip.history_manager.output_hist_reprs),"
    " ip.history_manager._i00, sorted(ip.compile._filename_map.values()),"
    " sorted(k for k in __import__('linecache').cache if k.startswith('<ipython-input'))))"
    "(get_ipython())"
)


@pytest.mark.parametrize("hide_ipython", [False, True], ids=["ipython", "plain"])
def test_a_rehearsed_cell_leaves_no_trace(fresh, hide_ipython):
    """A rehearsal runs a cell as a stored cell (its output and result are
    sent), then the history is as before: the next cell is number 1."""
    a = fresh(hide_ipython=hide_ipython)
    a.ok("kept = 5")
    a.ok("kept * 2")  # cell 2: something in In, Out, _ and _i already
    before = a.value(HISTORY_STATE)
    ipython_before = None if hide_ipython else a.value(IPYTHON_STATE)
    result, _ = a.collect(a.send("rehearse", code="_fj_r = kept + 1\nprint('r')\n_fj_r"))
    assert result.error is None, result.error
    assert (result.stdout, result.result["text/plain"]) == ("r\n", "6")
    assert a.value(HISTORY_STATE) == before
    if not hide_ipython:
        assert a.value(IPYTHON_STATE) == ipython_before
    nxt = a.ok("kept + 2")
    assert nxt.execution_count == 3 and a.value("Out[3]") == 7 and a.value("_") == 7
    failing, _ = a.collect(a.send("rehearse", code="1 / 0"))
    assert failing.error.ename == "ZeroDivisionError"
    assert a.value("hasattr(__import__('sys'), 'last_value')") is False
    assert a.ok("4").execution_count == 4
    bad, _ = a.collect(a.send("rehearse", code=7))
    assert bad.error is not None and "rehearse needs a string" in bad.error.evalue


# ------------------------------------------------------ the host codec

FRAMES = [
    {"op": "display", "id": 7, "data": {"text/plain": "π ≈ 3.14 🎉"}, "metadata": {}},
    {
        "op": "result",
        "id": 7,
        "data": {"text/plain": "'\ud800'"},
        "metadata": {},
        "execution_count": 3,
    },
    {"op": "done", "id": 7, "execution_count": 3, "error": None},
]


def _splits(data: bytes):
    """The stream cut into two pieces at every offset, then byte by byte."""
    for i in range(len(data) + 1):
        yield [data[:i], data[i:]]
    yield [data[i : i + 1] for i in range(len(data))]


def test_frame_decoder_every_boundary():
    stream = b"".join(encode_frame(f) for f in FRAMES)
    for pieces in _splits(stream):
        dec = FrameDecoder()
        got = [m for p in pieces for m in dec.feed(p)]
        assert got == FRAMES
        assert dec.pending == 0


def test_frame_decoder_rejects_garbage():
    for bad in (b"\x03\x00\x00\x00[1]", b"\x02\x00\x00\x00{x", b"\x02\x00\x00\x00\xff\xfe"):
        dec = FrameDecoder()
        with pytest.raises(WireError):
            dec.feed(bad)
        with pytest.raises(WireError):  # the framing is lost for good
            dec.feed(encode_frame({"op": "ping"}))
    with pytest.raises(WireError):
        FrameDecoder(max_frame=10).feed(b"\xff\x00\x00\x00")


def test_demux_every_boundary():
    frames = [
        (CHANNEL_STDOUT, b"out"),
        (CHANNEL_CTL, b""),
        (CHANNEL_STDERR, "é".encode()),
        (CHANNEL_CTL, b"\x01\x02"),
        (CHANNEL_EXIT, b'{"status": 0}'),
    ]
    stream = b"".join(encode_outer(ch, p) for ch, p in frames)
    for pieces in _splits(stream):
        demux = Demux()
        assert [f for p in pieces for f in demux.feed(p)] == frames
        assert demux.pending == 0
    with pytest.raises(WireError):
        Demux(max_frame=4).feed(encode_outer(CHANNEL_STDOUT, b"12345"))


def _session_stream() -> tuple[bytes, RunResult]:
    """A run as the VMM would deliver it: output and control bytes in one
    ordered stream, the control stream cut across outer frames."""
    ctl = b"".join(encode_frame(f) for f in FRAMES)
    text = "héllo wörld ✓\n".encode()
    outer = [
        encode_outer(CHANNEL_STDOUT, text[:2]),  # splits the 'é'
        encode_outer(CHANNEL_STDOUT, text[2:]),
        encode_outer(CHANNEL_CTL, ctl[:5]),
        encode_outer(CHANNEL_STDERR, b"warn\n"),
        encode_outer(CHANNEL_CTL, ctl[5:]),
    ]
    expected = RunResult(
        stdout=text.decode(),
        stderr="warn\n",
        result=FRAMES[1]["data"],
        displays=[FRAMES[0]["data"]],
        error=None,
        execution_count=3,
        display_metadata=[{}],
        result_metadata={},
    )
    return b"".join(outer), expected


def test_accumulator_over_demuxed_stream_every_boundary():
    stream, expected = _session_stream()
    for pieces in _splits(stream):
        demux, dec = Demux(), FrameDecoder()
        seen: list[tuple[str, str]] = []
        acc = RunAccumulator(7, lambda s, t, seen=seen: seen.append((s, t)))
        finished = False
        for piece in pieces:
            for ch, payload in demux.feed(piece):
                if ch == CHANNEL_CTL:
                    for msg in dec.feed(payload):
                        finished = acc.feed_message(msg)
                else:
                    acc.feed_stream(ch, payload)
        assert finished
        assert acc.result() == expected
        assert "".join(t for s, t in seen if s == "stdout") == expected.stdout


def test_accumulator_utf8_at_every_offset():
    data = "aé€😀z".encode()
    for i in range(len(data) + 1):
        for j in range(i, len(data) + 1):
            seen: list[str] = []
            acc = RunAccumulator(1, lambda s, t, seen=seen: seen.append(t))
            for part in (data[:i], data[i:j], data[j:]):
                acc.feed_stream(CHANNEL_STDOUT, part)
            acc.feed_message({"op": "done", "id": 1, "execution_count": 1, "error": None})
            assert acc.result().stdout == "".join(seen) == "aé€😀z"


def test_accumulator_ids_errors_and_clear():
    acc = RunAccumulator(2)
    assert acc.feed_message({"op": "display", "id": 1, "data": {"text/plain": "other"}}) is False
    acc.feed_stream(CHANNEL_STDOUT, b"\xe2\x82")  # an incomplete character at the end
    acc.feed_message({"op": "display", "id": 2, "data": {"text/plain": "mine"}})
    acc.feed_message({"op": "clear_output", "id": 2, "wait": True})
    assert acc.feed_message({"op": "pong", "id": 2}) is False
    acc.feed_message({"op": "display", "id": 2, "data": {"text/plain": "after"}})
    with pytest.raises(RuntimeError):
        acc.result()
    err = {"ename": "KeyboardInterrupt", "evalue": "", "traceback": ["\x1b[31mKI\x1b[0m"]}
    assert acc.feed_message({"op": "done", "id": 2, "execution_count": 5, "error": err})
    r = acc.result()
    assert r.displays == [{"text/plain": "after"}]
    assert r.stdout == ""  # cleared before the replacement character was flushed
    assert r.error == GuestError("KeyboardInterrupt", "", ["\x1b[31mKI\x1b[0m"])
    assert r.error.plain_traceback == "KI" and str(r.error) == "KeyboardInterrupt"
    assert pickle.loads(pickle.dumps(r.error)) == r.error
    assert RunResult.from_dict(r.to_dict()) == r
