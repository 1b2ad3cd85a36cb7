"""Helpers for tests that run code in sandboxes."""

from __future__ import annotations

import pytest

from forkd_jupyter.vmm import Sandbox

# Guest code defining code(fn, *args): 0 when fn(*args) returns, else the
# errno of the OSError it raised.
ERRNO_OF = (
    "def code(fn, *args):\n"
    "    try:\n        fn(*args)\n        return 0\n"
    "    except OSError as e:\n        return e.errno\n"
)


def run_ok(sb: Sandbox, code: str, **kw):
    """Runs code and fails the test with the guest traceback on an error."""
    result = sb.run(code, **kw)
    if result.error is not None:
        pytest.fail(
            f"guest error {result.error.ename}: {result.error.evalue}\n"
            + "\n".join(result.error.traceback)
        )
    return result


def value(sb: Sandbox, expr: str):
    """Evaluates expr in the guest and returns it through pickle."""
    run_ok(sb, f"__forkd_tmp = ({expr})")
    return sb.pull("__forkd_tmp")
