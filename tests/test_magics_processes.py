"""The `%forkd` sub-commands on programs, in a real notebook through a real
kernel and the real daemon: exec (output and exit code), start, logs -f
(streamed into the cell), ps, stop, and a clear error for a bad use."""

from __future__ import annotations

import pytest
from test_magics import outputs, run_notebook, text_of

pytestmark = pytest.mark.kvm

CELLS = [
    "%load_ext forkd_jupyter",
    "sb = %forkd spawn --name procs --mem 512",
    "code = %forkd exec -- sh -c 'echo $((6*7)); echo warn >&2; exit 3'\ncode",
    "pid = %forkd start -- sh -c 'echo up; sleep 0.5; echo down'\npid",
    "%forkd logs {pid} -f",
    "slow = %forkd start -- sleep 600\n%forkd ps",
    "%forkd stop {slow} --grace 1\nimport time; time.sleep(3)\n%forkd ps",
    "%forkd exec",
    "%forkd kill procs",
]


@pytest.fixture(scope="module")
def cells(daemon):
    return run_notebook(CELLS)


def test_exec_prints_output_and_returns_the_exit_code(cells):
    streams = {o.name: o.text for o in outputs(cells[2], "stream")}
    assert streams == {"stdout": "42\n", "stderr": "warn\n"}
    [result] = outputs(cells[2], "execute_result")
    assert result.data["text/plain"] == "3"


def test_start_logs_ps_and_stop(cells):
    [pid] = outputs(cells[3], "execute_result")
    assert pid.data["text/plain"].startswith("'p-")
    assert text_of(cells[4]) == "up\ndown\n"
    listing = text_of(cells[5])
    assert "sleep 600" in listing and "running" in listing
    after = text_of(cells[6]).splitlines()
    [line] = [row for row in after if "sleep 600" in row]
    assert "exited" in line, after


def test_a_bad_use_is_a_usage_error(cells):
    assert "give the program to run" in text_of(cells[7])
