"""Managed processes in the VMM layer (vmm.Sandbox.processes): once the
agent's supervisor runs, cells, input() replies and process frames share fd
3 without waiting for each other; a branch of such a sandbox inherits a
working supervisor; processes still running when the sandbox ends are
``lost``; a runaway writer's log stays within its cap."""

from __future__ import annotations

import threading
import time

import pytest

from forkd_jupyter.vmm import ProcessNotFound, ProcessNotRunning, Sandbox, SandboxError

pytestmark = pytest.mark.kvm


def _output(proc) -> bytes:
    return b"".join(chunk[2] for chunk in proc.after(0)[0])


def test_processes_beside_a_cell_and_input(tmp_path):
    with Sandbox.spawn(memory_mib=512) as sb:
        first = sb.processes.start(["true"])
        assert first.wait(30) and first.exit_code == 0
        cell = {}
        runner = threading.Thread(
            target=lambda: cell.update(r=sb.run("import time\ntime.sleep(3)\n'slept'")),
            daemon=True,
        )
        runner.start()
        time.sleep(0.5)
        started = time.monotonic()
        echo = sb.processes.start(["sh", "-c", "read line; echo got $line"])
        sb.processes.write(echo.id, b"hello\n")
        assert echo.wait(10) and _output(echo) == b"got hello\n"
        assert time.monotonic() - started < 2.0 and runner.is_alive()
        runner.join(30)
        assert cell["r"].result["text/plain"] == "'slept'"
        # input() now takes its reply from the inbox's reader thread.
        r = sb.run("input('name? ')", on_input=lambda prompt, pw: sb.send_input("ada"))
        assert r.error is None and r.result["text/plain"] == "'ada'"
        # An interrupt still reaches a waiting input() and the cell only.
        r = sb.run("input('x')", on_input=lambda prompt, pw: sb.interrupt())
        assert r.error is not None and r.error.ename == "KeyboardInterrupt"
        assert sb.run("1 + 1").result["text/plain"] == "2"
        with pytest.raises(ProcessNotFound):
            sb.processes.get("p-0")
        with pytest.raises(ProcessNotRunning):
            sb.processes.write(echo.id, b"late")
        with pytest.raises(SandboxError, match="could not start"):
            sb.processes.start(["/no/such/program"])


def test_a_branch_inherits_the_supervisor_and_processes_end_with_the_sandbox():
    with Sandbox.spawn(memory_mib=512) as sb:
        done = sb.processes.start(["sh", "-c", "echo parent"])
        assert done.wait(30) and _output(done) == b"parent\n"
        sb.run("x = 41")
        snap = sb.snapshot(mode="full")
        [child] = snap.spawn()
        with child:
            assert child.run("x + 1").result["text/plain"] == "42"
            proc = child.processes.start(["sh", "-c", "echo child $PPID"])
            assert proc.wait(30) and _output(proc).startswith(b"child ")
            term = child.processes.start(["sh"], tty=True, cols=50, rows=10)
            child.processes.write(term.id, b"stty size\n")
            deadline = time.monotonic() + 20
            while b"10 50" not in _output(term) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert b"10 50" in _output(term)
            sleeper = child.processes.start(["sleep", "600"])
        assert term.state == sleeper.state == "lost" and "ended" in sleeper.error
        snap.close()


def test_a_runaway_writer_is_capped():
    with Sandbox.spawn(memory_mib=512) as sb:
        proc = sb.processes.start(["sh", "-c", "yes | head -c 20000000"], log_limit=65536)
        assert proc.wait(120)
        doc = proc.to_dict()
        assert doc["output_bytes"]["stdout"] == 20_000_000
        assert doc["log_bytes"] <= 65536 and doc["dropped_bytes"] >= 20_000_000 - 65536
        chunks, gap = proc.after(0)
        assert gap and chunks and all(c[2].strip(b"y\n") == b"" for c in chunks)
