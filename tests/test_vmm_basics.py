"""The sandbox runs the notebook's own CPython and an IPython shell."""

from __future__ import annotations

import sys
import time

import pytest
from guest_helpers import run_ok, value

from forkd_jupyter.vmm import GuestError, RunResult

pytestmark = pytest.mark.kvm


def test_same_python_as_the_notebook(sandbox):
    assert value(sandbox, "__import__('sys').version") == sys.version
    assert value(sandbox, "__import__('sys').prefix") == sys.prefix


def test_state_persists_and_execution_count_grows(sandbox):
    first = run_ok(sandbox, "x = 41")
    second = run_ok(sandbox, "x + 1")
    assert isinstance(second, RunResult)
    assert second.result["text/plain"] == "42"
    assert second.execution_count == first.execution_count + 1


def test_stdout_stderr_and_last_expression(sandbox):
    r = run_ok(sandbox, "import sys\nprint('out'); print('err', file=sys.stderr)\n'last'")
    assert r.stdout == "out\n"
    assert r.stderr == "err\n"
    assert r.result["text/plain"] == "'last'"
    assert r.error is None


def test_exception_reported_with_traceback(sandbox):
    r = sandbox.run("def f():\n    raise ValueError('boom')\nf()")
    assert isinstance(r.error, GuestError)
    assert r.error.ename == "ValueError"
    assert r.error.evalue == "boom"
    assert "f()" in r.error.plain_traceback
    assert "raise ValueError" in r.error.plain_traceback
    # The sandbox keeps working after a guest exception.
    assert run_ok(sandbox, "1 + 1").result["text/plain"] == "2"


def test_output_streams_while_the_cell_runs(sandbox):
    seen: list[tuple[float, str, str]] = []
    start = time.monotonic()
    run_ok(
        sandbox,
        "import time\nprint('a', flush=True)\ntime.sleep(0.8)\nprint('b')",
        on_output=lambda stream, text: seen.append((time.monotonic() - start, stream, text)),
    )
    total = time.monotonic() - start
    assert "".join(t for _, _, t in seen) == "a\nb\n"
    first_at = seen[0][0]
    assert first_at < total - 0.5, f"first output came at {first_at:.2f}s of {total:.2f}s"


def test_clear_output_keeps_only_what_follows_it(sandbox):
    r = run_ok(
        sandbox,
        "from IPython.display import clear_output, display\n"
        "print('old')\ndisplay(1)\nclear_output()\nprint('new')",
    )
    assert r.stdout == "new\n" and r.displays == []


def test_one_megabyte_of_output_is_streamed(sandbox):
    chunks: list[str] = []
    r = run_ok(sandbox, "print('x' * 1_000_000)", on_output=lambda s, t: chunks.append(t))
    assert len(r.stdout) == 1_000_001
    assert "".join(chunks) == r.stdout


def test_display_and_history(sandbox):
    r = run_ok(sandbox, "from IPython.display import display, HTML\ndisplay(HTML('<b>hi</b>'))")
    assert r.displays and r.displays[0]["text/html"] == "<b>hi</b>"
    run_ok(sandbox, "y = 5")
    r = run_ok(sandbox, "y * 2")
    n = r.execution_count
    assert value(sandbox, f"Out[{n}]") == 10
    assert "y * 2" in value(sandbox, f"In[{n}]")


def test_matplotlib_figure_becomes_png(sandbox):
    pytest.importorskip("matplotlib")
    r = run_ok(sandbox, "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()")
    assert any("image/png" in d for d in r.displays)


def test_stats_report_system_calls_and_memory(sandbox):
    st = sandbox.stats()
    assert st["syscalls"] > 1000
    assert st["memory_bytes"] > 10 << 20
    assert st["open_fds"] >= 4
