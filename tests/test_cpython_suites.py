"""CPython's own regression tests for threads, queues, select, signals,
weak references, the garbage collector and asyncio pass in a sandbox as
they do natively (tests/cpython/suites.py says which modules, and which
differences are allowed and why)."""

from __future__ import annotations

import json

import pytest
from cpython.runs import run_in_sandbox, run_native
from cpython.suites import MODULES, allowed_reason

pytestmark = pytest.mark.kvm


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
