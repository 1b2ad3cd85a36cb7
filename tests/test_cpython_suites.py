"""CPython's own regression tests for threads, queues, select, signals,
weak references, the garbage collector and asyncio pass in a sandbox as
they do natively (tests/cpython/suites.py says which modules, and which
differences are allowed and why)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from cpython.suites import EXCLUDED, MODULES, allowed_reason

from forkd_jupyter.vmm import Sandbox
from forkd_jupyter.vmm.guest_env import python_elf

pytestmark = pytest.mark.kvm

RUNNER = Path(__file__).parent / "cpython" / "runner.py"


def run_native(module: str) -> dict[str, str]:
    out = subprocess.run(
        [python_elf(), str(RUNNER), module, json.dumps(EXCLUDED)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd="/tmp",
    )
    return json.loads(out.stdout.rsplit("\nOUTCOMES ", 1)[1])


def run_in_sandbox(module: str) -> dict[str, str]:
    sb = Sandbox.spawn(memory_mib=2048)
    try:
        code = RUNNER.read_text().split('\nif __name__ == "__main__":')[0]
        code += f"\n_outcomes = __import__('json').dumps(run_module({module!r}, {EXCLUDED!r}))"
        result = sb.run(code, timeout=900)
        assert result.error is None, "".join(result.error.traceback)
        return json.loads(sb.pull("_outcomes"))
    finally:
        sb.close()


@pytest.mark.parametrize("module", MODULES)
def test_module_passes_as_natively(module):
    native = run_native(module)
    guest = run_in_sandbox(module)
    passed_natively = [test for test, outcome in native.items() if outcome == "ok"]
    assert passed_natively, f"{module}: nothing passed natively"
    unexplained = {
        test: guest.get(test, "missing")[-600:]
        for test in passed_natively
        if guest.get(test) != "ok" and not allowed_reason(guest.get(test, ""))
    }
    assert not unexplained, json.dumps(unexplained, indent=1)
