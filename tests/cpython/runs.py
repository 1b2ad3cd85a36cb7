"""One of CPython's test modules run natively and in a fresh sandbox, both
through runner.py with the same exclusions: each test's outcome by id."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from cpython.suites import EXCLUDED

from forkd_jupyter.vmm import Sandbox
from forkd_jupyter.vmm.guest_env import python_elf

RUNNER = Path(__file__).parent / "runner.py"


class GuestRunFailed(Exception):
    """The module could not be run in the sandbox (the guest's traceback)."""


def run_native(module: str, timeout: float = 900) -> dict[str, str]:
    """Raises subprocess.TimeoutExpired, or ValueError when the run printed
    no outcomes."""
    out = subprocess.run(
        [python_elf(), str(RUNNER), module, json.dumps(EXCLUDED)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd="/tmp",
    )
    if "\nOUTCOMES " not in out.stdout:
        raise ValueError(f"{module}: no outcomes natively: {out.stderr[-300:]}")
    return json.loads(out.stdout.rsplit("\nOUTCOMES ", 1)[1])


def run_in_sandbox(module: str, timeout: float = 900) -> dict[str, str]:
    """Raises GuestRunFailed, or SandboxError (a timeout, a crash)."""
    sb = Sandbox.spawn(memory_mib=2048)
    try:
        code = RUNNER.read_text().split('\nif __name__ == "__main__":')[0]
        code += f"\n_outcomes = __import__('json').dumps(run_module({module!r}, {EXCLUDED!r}))"
        result = sb.run(code, timeout=timeout)
        if result.error is not None:
            raise GuestRunFailed(f"{result.error.ename}: {result.error.evalue}\n"
                                 + "".join(result.error.traceback))  # fmt: skip
        return json.loads(sb.pull("_outcomes"))
    finally:
        sb.close()
